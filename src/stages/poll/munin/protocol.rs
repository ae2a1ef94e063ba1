//! munin-node's answers, parsed. Pure: lines in, graphs and values out.
//!
//! The protocol (munin's `Munin/Node/Server.pm`): a greeting
//! `# munin node at <host>`, then commands answered by one line (`cap`,
//! `list`) or by lines ending with a line `.` (`config`, `fetch`). A
//! `config` answer is `graph_*` attributes and `<field>.<attribute>
//! <value>` lines; with the `multigraph` capability, `multigraph <name>`
//! starts another graph within the same answer. A `fetch` answer is
//! `<field>.value <number|U>` lines (or `epoch:number`, munin's own
//! timestamp), split by `multigraph` the same way. Lines starting with `#`
//! are comments (`# Timed out`, `# Unknown service`).

use crate::model::{Draw, DsType};

/// One graph: a plugin, or a `multigraph` section of one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    /// The plugin's name, or the multigraph's (`diskstats_latency.sda`).
    pub name: String,
    pub title: Option<String>,
    pub vlabel: Option<String>,
    pub category: Option<String>,
    /// `graph_order`: the fields in drawing order (others follow).
    pub order: Vec<String>,
    /// `graph no`: the graph is not drawn (its values are still logged).
    pub hidden: bool,
    pub fields: Vec<Field>,
}

/// One field of a graph, as its `config` describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Field {
    pub name: String,
    pub label: Option<String>,
    pub ds_type: Option<DsType>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// A `cdef` that only multiplies or divides the field by a constant.
    pub scale: Option<f64>,
    /// A `cdef` that does anything else: its values are logged unscaled.
    pub unsupported_cdef: Option<String>,
    pub draw: Option<Draw>,
    pub colour: Option<(u8, u8, u8)>,
    pub warning: Option<f64>,
    pub critical: Option<f64>,
    /// `graph no`: not drawn on its own (the `negative` of another field).
    pub hidden: bool,
    /// A value given with the config (`dirtyconfig`).
    pub value: Option<Value>,
}

/// A fetched value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// `U`: unknown this round.
    Unknown,
    Number(f64),
    /// `epoch:number`: munin's own time, seconds.
    At(i64, f64),
}

/// `# munin node at <host>` → the node's name.
pub fn greeting_host(line: &str) -> Option<&str> {
    line.trim()
        .strip_prefix("# munin node at ")
        .map(str::trim)
        .filter(|h| !h.is_empty())
}

/// `list`'s answer: plugin names.
pub fn parse_list(line: &str) -> Vec<String> {
    line.split_whitespace()
        .filter(|p| !p.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// A `config` answer (the lines before the final `.`).
pub fn parse_config(plugin: &str, lines: &[String]) -> Vec<Graph> {
    let mut graphs = vec![Graph {
        name: plugin.to_owned(),
        ..Graph::default()
    }];
    for line in lines {
        let line = line.trim_end();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, rest) = match line.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (line, ""),
        };
        if key == "multigraph" {
            start_graph(&mut graphs, rest);
            continue;
        }
        let graph = graphs.last_mut().expect("never empty");
        if let Some(attr) = key.strip_prefix("graph_") {
            graph_attribute(graph, attr, rest);
            continue;
        }
        if key == "graph" {
            graph.hidden = rest == "no";
            continue;
        }
        let Some((field, attr)) = key.split_once('.') else {
            continue;
        };
        if !valid_field_name(field) {
            continue;
        }
        let f = field_mut(graph, field);
        field_attribute(f, attr, rest);
    }
    // A plugin that is only multigraphs has an empty first section.
    graphs.retain(|g| !g.fields.is_empty() || g.title.is_some());
    graphs
}

/// A `fetch` answer: (graph, field, value), the graph being the plugin
/// or the `multigraph` the line follows. Lines that are not values are
/// skipped; a value that is not a number is unknown.
pub fn parse_fetch(plugin: &str, lines: &[String]) -> Vec<(String, String, Value)> {
    let mut graph = plugin.to_owned();
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("multigraph ") {
            graph = name.trim().to_owned();
            continue;
        }
        let Some((key, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let Some(field) = key.strip_suffix(".value") else {
            continue;
        };
        if valid_field_name(field) {
            out.push((graph.clone(), field.to_owned(), parse_value(rest.trim())));
        }
    }
    out
}

/// `N`, `U`, `epoch:N`; scientific notation is a number (`1e+05`).
pub fn parse_value(text: &str) -> Value {
    let number = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
    if let Some((epoch, v)) = text.split_once(':')
        && let (Ok(t), Some(v)) = (epoch.parse::<i64>(), number(v))
    {
        return Value::At(t, v);
    }
    number(text).map_or(Value::Unknown, Value::Number)
}

/// Munin field names: `[A-Za-z_][A-Za-z0-9_]*` (munin cleans others).
fn valid_field_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 64
}

fn start_graph(graphs: &mut Vec<Graph>, name: &str) {
    let name = name.trim();
    if name.is_empty() {
        return;
    }
    graphs.push(Graph {
        name: name.to_owned(),
        ..Graph::default()
    });
}

fn graph_attribute(graph: &mut Graph, attr: &str, value: &str) {
    let text = || (!value.is_empty()).then(|| value.to_owned());
    match attr {
        "title" => graph.title = text(),
        "vlabel" => graph.vlabel = text(),
        "category" => graph.category = text().map(|c| c.to_lowercase()),
        "order" => {
            // `graph_order a b=other.field c`: the name before '='.
            graph.order = value
                .split_whitespace()
                .map(|f| f.split('=').next().unwrap_or(f).to_owned())
                .collect();
        }
        _ => {}
    }
}

fn field_mut<'g>(graph: &'g mut Graph, name: &str) -> &'g mut Field {
    match graph.fields.iter().position(|f| f.name == name) {
        Some(i) => &mut graph.fields[i],
        None => {
            graph.fields.push(Field {
                name: name.to_owned(),
                ..Field::default()
            });
            graph.fields.last_mut().expect("just pushed")
        }
    }
}

fn field_attribute(f: &mut Field, attr: &str, value: &str) {
    let number = || value.parse::<f64>().ok().filter(|v| v.is_finite());
    match attr {
        "label" => f.label = (!value.is_empty()).then(|| value.to_owned()),
        "type" => f.ds_type = DsType::from_rrd_str(&value.to_uppercase()),
        "min" => f.min = number(),
        "max" => f.max = number(),
        "cdef" => match plain_scale(&f.name, value) {
            Some(scale) => f.scale = Some(scale),
            None => f.unsupported_cdef = Some(value.to_owned()),
        },
        "draw" => f.draw = draw(value),
        "colour" => f.colour = colour(value),
        "warning" => f.warning = upper_bound(value),
        "critical" => f.critical = upper_bound(value),
        "graph" => f.hidden = value == "no",
        "value" => f.value = Some(parse_value(value)),
        _ => {}
    }
}

/// `field,8,*` → 8; `field,1000,/` → 0.001; anything else → `None`.
fn plain_scale(field: &str, cdef: &str) -> Option<f64> {
    let parts: Vec<&str> = cdef.split(',').map(str::trim).collect();
    let [name, k, op] = parts.as_slice() else {
        return None;
    };
    let k: f64 = k
        .parse()
        .ok()
        .filter(|k: &f64| k.is_finite() && *k != 0.0)?;
    if *name != field {
        return None;
    }
    match *op {
        "*" => Some(k),
        "/" => Some(1.0 / k),
        _ => None,
    }
}

/// LINE, LINE1, LINE2…, AREA, STACK, AREASTACK, LINESTACK1….
fn draw(value: &str) -> Option<Draw> {
    let v = value.to_uppercase();
    if v.contains("STACK") {
        Some(Draw::Stack)
    } else if v.starts_with("AREA") {
        Some(Draw::Area)
    } else if v.starts_with("LINE") {
        Some(Draw::Line)
    } else {
        None
    }
}

/// `RRGGBB`, with or without `#`.
fn colour(value: &str) -> Option<(u8, u8, u8)> {
    let hex = value.trim_start_matches('#');
    if hex.len() != 6 || !hex.is_ascii() {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

/// `80`, `:80`, `10:80` → 80; `10:` (a lower bound only) → none.
fn upper_bound(value: &str) -> Option<f64> {
    let upper = value.rsplit(':').next().unwrap_or(value);
    upper.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn the_greeting_names_the_node() {
        assert_eq!(greeting_host("# munin node at pi.lan\n"), Some("pi.lan"));
        assert_eq!(greeting_host("hello"), None);
        assert_eq!(greeting_host("# munin node at "), None);
    }

    #[test]
    fn a_config_gives_graph_and_fields() {
        let graphs = parse_config(
            "if_eth0",
            &lines(
                "graph_order down up\n\
                 graph_title eth0 traffic\n\
                 graph_vlabel bits in (-) / out (+) per ${graph_period}\n\
                 graph_category Network\n\
                 down.label received\n\
                 down.type DERIVE\n\
                 down.graph no\n\
                 down.cdef down,8,*\n\
                 down.min 0\n\
                 up.label bps\n\
                 up.type DERIVE\n\
                 up.cdef up,8,*\n\
                 up.draw AREASTACK\n\
                 up.colour 00cc00\n\
                 up.warning 10:80\n\
                 up.critical 95\n\
                 up.max 1e9\n",
            ),
        );
        assert_eq!(graphs.len(), 1);
        let g = &graphs[0];
        assert_eq!(g.name, "if_eth0");
        assert_eq!(g.title.as_deref(), Some("eth0 traffic"));
        assert_eq!(g.category.as_deref(), Some("network"));
        assert_eq!(g.order, ["down", "up"]);
        let (down, up) = (&g.fields[0], &g.fields[1]);
        assert_eq!(down.ds_type, Some(DsType::Derive));
        assert!(down.hidden);
        assert_eq!(down.scale, Some(8.0));
        assert_eq!(down.min, Some(0.0));
        assert_eq!(up.draw, Some(Draw::Stack));
        assert_eq!(up.colour, Some((0, 0xcc, 0)));
        assert_eq!((up.warning, up.critical), (Some(80.0), Some(95.0)));
        assert_eq!(up.max, Some(1e9));
    }

    #[test]
    fn multigraph_sections_are_graphs_of_their_own() {
        let graphs = parse_config(
            "diskstats",
            &lines(
                "multigraph diskstats_latency\n\
                 graph_title Disk latency\n\
                 vda_avgwait.label vda\n\
                 multigraph diskstats_latency.vda\n\
                 graph_title vda\n\
                 svctm.label service time\n\
                 svctm.value 0.5\n",
            ),
        );
        let names: Vec<&str> = graphs.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["diskstats_latency", "diskstats_latency.vda"]);
        assert_eq!(graphs[1].fields[0].value, Some(Value::Number(0.5)));
    }

    #[test]
    fn fetched_values_keep_their_graph() {
        let values = parse_fetch(
            "diskstats",
            &lines(
                "load.value 0.25\n\
                 big.value 1e+05\n\
                 u.value U\n\
                 at.value 1700000000:42\n\
                 junk.value abc\n\
                 # Timed out\n\
                 multigraph diskstats_iops.sda\n\
                 rdio.value 3\n\
                 bad-name.value 1\n\
                 novalue\n",
            ),
        );
        assert_eq!(
            values,
            vec![
                ("diskstats".into(), "load".into(), Value::Number(0.25)),
                ("diskstats".into(), "big".into(), Value::Number(1e5)),
                ("diskstats".into(), "u".into(), Value::Unknown),
                (
                    "diskstats".into(),
                    "at".into(),
                    Value::At(1_700_000_000, 42.0)
                ),
                ("diskstats".into(), "junk".into(), Value::Unknown),
                (
                    "diskstats_iops.sda".into(),
                    "rdio".into(),
                    Value::Number(3.0)
                ),
            ]
        );
    }

    #[test]
    fn only_plain_scales_are_cdefs_we_follow() {
        assert_eq!(plain_scale("a", "a,8,*"), Some(8.0));
        assert_eq!(plain_scale("a", "a,1000,/"), Some(0.001));
        assert_eq!(plain_scale("a", "b,8,*"), None);
        assert_eq!(plain_scale("a", "a,0,/"), None);
        assert_eq!(plain_scale("a", "a,b,+"), None);
        assert_eq!(plain_scale("a", "a,8,*,2,+"), None);
    }

    #[test]
    fn list_and_bounds() {
        assert_eq!(parse_list("cpu  load\tdf\n"), ["cpu", "load", "df"]);
        assert_eq!(upper_bound(":90"), Some(90.0));
        assert_eq!(upper_bound("10:"), None);
        assert_eq!(colour("#FF0000"), Some((255, 0, 0)));
        assert_eq!(colour("red"), None);
        assert_eq!(draw("LINE2"), Some(Draw::Line));
        assert_eq!(draw("AREA"), Some(Draw::Area));
        assert_eq!(draw("bogus"), None);
    }
}
