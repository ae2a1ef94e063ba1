//! A Prometheus exporter as a source (Debian's `prometheus-node-exporter`
//! on the Pi itself, any `/metrics`): one HTTP GET per round, the
//! exposition parsed (`parse.rs`), the wanted samples kept (`select.rs`),
//! each a series `<prefix>/<metric>/<label values in label-name order>`.
//!
//! Types: a counter is logged as DDERIVE with min 0 (a rate, and a reset
//! is not a negative spike; the D variant because exposition values are
//! floats, `node_cpu_seconds_total 10517.13`, which librrd's DERIVE
//! refuses), a gauge as GAUGE. Summaries and histograms give
//! their `_sum` and `_count` (counters) unless `include` asks for their
//! buckets or quantiles by name.

mod client;
pub mod parse;
pub mod select;

use tokio::time::Instant;

use self::parse::{MetricType, PromSample};
use super::{PollError, Polled};
use crate::config::poll::PollJob;
use crate::model::{DsType, Sample, SeriesMeta, UnixMillis};

/// One round against `job`'s exporter, by `deadline`.
pub async fn poll(job: &PollJob, started_ms: UnixMillis, deadline: Instant) -> Polled {
    match client::get(job, deadline).await {
        Ok((body, openmetrics)) => to_polled(job, &body, openmetrics, started_ms),
        Err(e) => Polled::failed(e),
    }
}

/// An exposition → samples and what is known of their series. Pure.
pub fn to_polled(job: &PollJob, text: &str, openmetrics: bool, started_ms: UnixMillis) -> Polled {
    let exposition = parse::parse(text, openmetrics);
    let selection = select::Selector::for_job(job);
    let mut polled = Polled::default();
    for s in exposition
        .samples
        .iter()
        .filter(|s| selection.keeps(s) && s.value.is_finite())
    {
        let series = series_name(&job.prefix, s);
        polled.samples.push(Sample {
            series: series.clone(),
            time_ms: s.time_ms.unwrap_or(started_ms),
            value: s.value,
        });
        polled.meta.push((series, meta(job, s)));
    }
    if exposition.bad_lines > 0 {
        polled.error = Some(PollError::protocol(format!(
            "{} lines not understood, the first: {:?}",
            exposition.bad_lines,
            exposition.first_bad.unwrap_or_default()
        )));
    }
    polled
}

/// `<prefix>/<name>/<value of each label, by label name>`; a `/`, `+` or
/// `#` in a value becomes `_` (they would split or widen topic levels),
/// an empty value `-`.
pub fn series_name(prefix: &str, s: &PromSample) -> String {
    let mut labels: Vec<&(String, String)> = s.labels.iter().collect();
    labels.sort();
    let mut name = format!("{prefix}/{}", s.name);
    for (_, value) in labels {
        name.push('/');
        if value.is_empty() {
            name.push('-');
        }
        name.extend(value.chars().map(|c| match c {
            '/' | '+' | '#' => '_',
            c => c,
        }));
    }
    name
}

fn meta(job: &PollJob, s: &PromSample) -> SeriesMeta {
    let counter = matches!(s.kind, MetricType::Counter)
        || (matches!(s.kind, MetricType::Summary | MetricType::Histogram)
            && (s.name.ends_with("_sum") || s.name.ends_with("_count")));
    let label = if s.labels.is_empty() {
        s.name.clone()
    } else {
        let pairs: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
        format!("{}{{{}}}", s.name, pairs.join(","))
    };
    SeriesMeta {
        label: Some(label),
        unit: unit(&s.name, counter),
        ds_type: Some(if counter {
            DsType::Dderive
        } else {
            DsType::Gauge
        }),
        min: counter.then_some(0.0),
        device: Some(job.host.clone()),
        ..SeriesMeta::default()
    }
}

/// The unit a metric's name ends with (Prometheus' naming rules), as a
/// rate for a counter.
fn unit(name: &str, counter: bool) -> Option<String> {
    let base = name.strip_suffix("_total").unwrap_or(name);
    let unit = [
        ("_bytes", "B"),
        ("_seconds", "s"),
        ("_celsius", "°C"),
        ("_volts", "V"),
        ("_amperes", "A"),
        ("_watts", "W"),
        ("_joules", "J"),
        ("_hertz", "Hz"),
        ("_percent", "%"),
    ]
    .into_iter()
    .find(|(suffix, _)| base.ends_with(suffix))?
    .1;
    match (counter, unit) {
        (false, u) => Some(u.to_owned()),
        (true, "B") => Some("B/s".to_owned()),
        (true, "J") => Some("W".to_owned()),
        // Seconds per second (CPU time): a share, without a unit.
        (true, _) => None,
    }
}

#[cfg(test)]
mod tests;
