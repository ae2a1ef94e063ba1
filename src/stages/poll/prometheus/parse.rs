//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0
//! text, parsed. Pure and total: any bytes give samples and a count of the
//! lines that were not understood, never a panic (`fuzz/` runs it).
//!
//! A line is `# HELP`, `# TYPE`, `# UNIT`, `# EOF`, another comment, or a
//! sample: `name{label="value",…} value [timestamp]`. Label values escape
//! `\\`, `\"` and `\n`; values may be `NaN`, `+Inf`, `-Inf`. Timestamps
//! are milliseconds in the Prometheus format and seconds in OpenMetrics.
//! A sample's family is the `# TYPE` whose name it is, or is once a
//! suffix (`_total`, `_sum`, `_count`, `_bucket`, `_created`, `_info`) is
//! taken off.

use std::collections::HashMap;

/// What `# TYPE` says of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    #[default]
    Untyped,
}

impl MetricType {
    fn from_word(word: &str) -> MetricType {
        match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" | "gaugehistogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            _ => MetricType::Untyped,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    pub name: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub time_ms: Option<i64>,
    /// Its family's type.
    pub kind: MetricType,
}

#[derive(Debug, Default, PartialEq)]
pub struct Exposition {
    pub samples: Vec<PromSample>,
    /// Lines that are neither comments nor samples.
    pub bad_lines: usize,
    /// The first of them, for the log.
    pub first_bad: Option<String>,
}

const SUFFIXES: [&str; 6] = ["_total", "_sum", "_count", "_bucket", "_created", "_info"];

/// Parses an exposition; `openmetrics`: timestamps are seconds.
pub fn parse(text: &str, openmetrics: bool) -> Exposition {
    let mut types: HashMap<&str, MetricType> = HashMap::new();
    let mut out = Exposition::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE")
                && let (Some(name), Some(kind)) = (words.next(), words.next())
            {
                types.insert(name, MetricType::from_word(kind));
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        match sample(line, openmetrics) {
            Some(mut s) => {
                s.kind = family_type(&types, &s.name);
                out.samples.push(s);
            }
            None => {
                out.bad_lines += 1;
                if out.first_bad.is_none() {
                    out.first_bad = Some(line.chars().take(80).collect());
                }
            }
        }
    }
    out
}

fn family_type(types: &HashMap<&str, MetricType>, name: &str) -> MetricType {
    if let Some(t) = types.get(name) {
        return *t;
    }
    SUFFIXES
        .iter()
        .filter_map(|s| name.strip_suffix(s))
        .find_map(|family| types.get(family).copied())
        .unwrap_or_default()
}

/// One sample line; `None` when it is not one.
fn sample(line: &str, openmetrics: bool) -> Option<PromSample> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_name(name) {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(inside)?;
        labels = parsed;
        rest = after;
    }
    let mut words = rest.split_whitespace();
    let value = number(words.next()?)?;
    let time_ms = match words.next() {
        None => None,
        Some(t) if openmetrics => {
            let secs: f64 = t.parse().ok().filter(|s: &f64| s.is_finite())?;
            Some((secs * 1000.0).round() as i64)
        }
        Some(t) => Some(t.parse::<i64>().ok()?),
    };
    // OpenMetrics exemplars (`# {…} 1.0`) may follow; anything else may not.
    match words.next() {
        None | Some("#") => {}
        Some(_) => return None,
    }
    Some(PromSample {
        name: name.to_owned(),
        labels,
        value,
        time_ms,
        kind: MetricType::Untyped,
    })
}

/// `a="x",b="y"}` → the labels and what follows the `}`.
fn label_set(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = text.find('=')?;
        let name = text[..eq].trim();
        if !valid_label_name(name) {
            return None;
        }
        let after_eq = text[eq + 1..].trim_start().strip_prefix('"')?;
        let (value, after) = quoted(after_eq)?;
        labels.push((name.to_owned(), value));
        text = after.trim_start();
        if let Some(after) = text.strip_prefix(',') {
            text = after;
        } else if !text.starts_with('}') {
            return None;
        }
    }
}

/// The rest of a quoted label value (after its `"`), unescaped, and what
/// follows the closing `"`.
fn quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &text[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

fn number(word: &str) -> Option<f64> {
    match word {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        w => w.parse().ok(),
    }
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_exporter_lines() {
        let text = "# HELP node_load1 1m load average.\n\
                    # TYPE node_load1 gauge\n\
                    node_load1 0.21\n\
                    # TYPE node_cpu_seconds_total counter\n\
                    node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1.23e+04\n\
                    node_cpu_seconds_total{cpu=\"0\",mode=\"user\",} 17.5 1700000000123\n\
                    # TYPE rpc summary\n\
                    rpc{quantile=\"0.5\"} NaN\n\
                    rpc_sum 3\n\
                    rpc_count 2\n\
                    untyped_thing -Inf\n";
        let e = parse(text, false);
        assert_eq!(e.bad_lines, 0);
        let kinds: Vec<(&str, MetricType)> = e
            .samples
            .iter()
            .map(|s| (s.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("node_load1", MetricType::Gauge),
                ("node_cpu_seconds_total", MetricType::Counter),
                ("node_cpu_seconds_total", MetricType::Counter),
                ("rpc", MetricType::Summary),
                ("rpc_sum", MetricType::Summary),
                ("rpc_count", MetricType::Summary),
                ("untyped_thing", MetricType::Untyped),
            ]
        );
        assert_eq!(e.samples[1].value, 12_300.0);
        assert_eq!(
            e.samples[2].labels,
            [("cpu".into(), "0".into()), ("mode".into(), "user".into())]
        );
        assert_eq!(e.samples[2].time_ms, Some(1_700_000_000_123));
        assert!(e.samples[3].value.is_nan());
    }

    #[test]
    fn openmetrics_counters_and_seconds() {
        let text = "# TYPE req counter\n\
                    req_total{path=\"/a \\\"b\\\"\\n\"} 7 1700000000.5 # {trace=\"x\"} 1\n\
                    # EOF\n";
        let e = parse(text, true);
        assert_eq!(e.bad_lines, 0);
        let s = &e.samples[0];
        assert_eq!(s.kind, MetricType::Counter);
        assert_eq!(s.labels[0].1, "/a \"b\"\n");
        assert_eq!(s.time_ms, Some(1_700_000_000_500));
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        let e = parse(
            "ok 1\n{x=\"1\"} 2\nbad{x=1} 3\nno_value\nfine{a=\"b\"} 4 5 6\n9name 1\nunterminated{a=\"b 1\nlast 2\n",
            false,
        );
        let names: Vec<&str> = e.samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ok", "last"]);
        assert_eq!(e.bad_lines, 6);
        assert_eq!(e.first_bad.as_deref(), Some("{x=\"1\"} 2"));
    }
}
