//! Discovery metadata: Home Assistant MQTT discovery configs and Homie
//! attributes → names, units and DS types of the series their values
//! become. Pure.
//!
//! A Home Assistant config names its state topic and a value template; the
//! series it describes is the one our decoder makes of that topic
//! (`{{ value_json.a.b }}` → `<state_topic>/a/b`, `{{ value }}` →
//! `<state_topic>`), so metadata and values meet whichever comes first.
//! Other templates are reported as unsupported: their values are still
//! logged, under the decoder's own names.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::model::{DsType, SeriesMeta};

/// What one discovery message says.
#[derive(Debug, Default, PartialEq)]
pub struct Discovered {
    pub series: Vec<(String, SeriesMeta)>,
    /// Components whose value template we cannot follow, with the template.
    pub unsupported: Vec<String>,
}

/// Whether `topic` carries discovery metadata rather than values.
pub fn is_discovery(topic: &str) -> bool {
    (topic.starts_with("homeassistant/") && topic.ends_with("/config"))
        || (topic.starts_with("homie/") && homie_attribute(topic).is_some())
}

/// Parses a discovery message. An empty payload (a removed config) gives
/// `Ok` with nothing: the caller forgets what that topic described.
pub fn parse(topic: &str, payload: &[u8]) -> Result<Discovered, String> {
    let text = std::str::from_utf8(payload).map_err(|_| "not UTF-8".to_owned())?;
    if text.trim().is_empty() {
        return Ok(Discovered::default());
    }
    if topic.starts_with("homeassistant/") {
        return home_assistant(topic, text);
    }
    homie(topic, text.trim())
}

/// Home Assistant's abbreviations of the keys we read.
const ABBREVIATIONS: [(&str, &str); 10] = [
    ("stat_t", "state_topic"),
    ("val_tpl", "value_template"),
    ("unit_of_meas", "unit_of_measurement"),
    ("stat_cla", "state_class"),
    ("exp_aft", "expire_after"),
    ("dev_cla", "device_class"),
    ("dev", "device"),
    ("cmps", "components"),
    ("obj_id", "object_id"),
    ("p", "platform"),
];

fn expand(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| {
            let long = ABBREVIATIONS
                .iter()
                .find(|(short, _)| short == k)
                .map_or(k.as_str(), |(_, long)| long);
            (long.to_owned(), v.clone())
        })
        .collect()
}

fn home_assistant(topic: &str, text: &str) -> Result<Discovered, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let top = expand(v.as_object().ok_or("not a JSON object")?);
    let levels: Vec<&str> = topic.split('/').collect();
    let mut out = Discovered::default();
    if levels.get(1) == Some(&"device") {
        // Device-based discovery: components share the top level's options.
        let components = top
            .get("components")
            .and_then(Value::as_object)
            .ok_or("a device config without components")?;
        for (id, c) in components {
            let c = expand(c.as_object().ok_or("a component that is not an object")?);
            let platform = c.get("platform").and_then(Value::as_str).unwrap_or("");
            if has_state(platform) {
                component(&c, &top, id, platform, &mut out);
            }
        }
    } else if has_state(levels.get(1).copied().unwrap_or("")) {
        let object_id = levels
            .get(levels.len().saturating_sub(2))
            .copied()
            .unwrap_or("");
        component(&top, &Map::new(), object_id, levels[1], &mut out);
    }
    Ok(out)
}

/// Platforms whose state topic carries no reading.
fn has_state(platform: &str) -> bool {
    ![
        "button",
        "scene",
        "device_automation",
        "tag",
        "notify",
        "text",
        "image",
        "camera",
        "update",
        "event",
    ]
    .contains(&platform)
}

/// Platforms whose state is on or off.
const ON_OFF: [&str; 6] = ["binary_sensor", "switch", "light", "fan", "siren", "lock"];

fn component(
    c: &Map<String, Value>,
    shared: &Map<String, Value>,
    id: &str,
    platform: &str,
    out: &mut Discovered,
) {
    let get = |k: &str| c.get(k).or_else(|| shared.get(k));
    let Some(state_topic) = get("state_topic").and_then(Value::as_str) else {
        return; // a button or a scene: nothing to log
    };
    let base = get("~").and_then(Value::as_str).unwrap_or("");
    let state_topic = if let Some(rest) = state_topic.strip_prefix('~') {
        format!("{base}{rest}")
    } else if let Some(rest) = state_topic.strip_suffix('~') {
        format!("{rest}{base}")
    } else {
        state_topic.to_owned()
    };
    let path = match get("value_template").and_then(Value::as_str) {
        None => Some(Vec::new()),
        Some(t) => value_path(t),
    };
    let Some(path) = path else {
        out.unsupported.push(format!(
            "{id}: {}",
            get("value_template")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ));
        return;
    };
    let mut series = state_topic.trim_end_matches('/').to_owned();
    for p in &path {
        series.push('/');
        series.push_str(p);
    }
    let label = match c.get("name") {
        Some(Value::String(n)) => Some(n.clone()),
        // `null`: the entity is the device itself; use the device's name.
        _ => get("device")
            .and_then(|d| d.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    };
    let (ds_type, min) = match get("state_class").and_then(Value::as_str) {
        Some("measurement") => (Some(DsType::Gauge), None),
        Some("total_increasing") => (Some(DsType::Dderive), Some(0.0)),
        Some("total") => (Some(DsType::Dderive), None),
        _ => (None, None),
    };
    let meta = SeriesMeta {
        label,
        unit: get("unit_of_measurement")
            .and_then(Value::as_str)
            .map(str::to_owned),
        ds_type,
        min,
        hold: get("expire_after")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0)
            .map(Duration::from_secs),
        device_class: get("device_class")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| (platform == "lock").then(|| "lock".to_owned())),
        device: get("device")
            .and_then(|d| d.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        binary: ON_OFF.contains(&platform).then_some(true),
        ..SeriesMeta::default()
    };
    out.series.push((series, meta));
}

/// The JSON path a value template reads: `{{ value }}` → `[]`,
/// `{{ value_json.a.b }}` or `{{ value_json['a']["b"] }}` → `[a, b]`,
/// optionally piped through `float`, `int` or `round(n)`. `None` for any
/// other template.
pub fn value_path(template: &str) -> Option<Vec<String>> {
    let inner = template.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    let mut parts = inner.split('|');
    let expr = parts.next()?.trim();
    for filter in parts {
        let f = filter.trim();
        let name = f.split('(').next().unwrap_or("").trim();
        if !["float", "int", "round"].contains(&name) {
            return None;
        }
    }
    if expr == "value" {
        return Some(Vec::new());
    }
    let mut rest = expr.strip_prefix("value_json")?;
    let mut path = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            path.push(r[..end].to_owned());
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let quote = r.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let r = &r[1..];
            let end = r.find(quote)?;
            path.push(r[..end].to_owned());
            rest = r[end + 1..].strip_prefix(']')?;
        } else {
            return None;
        }
    }
    (!path.is_empty()).then_some(path)
}

/// `(property's series, attribute)` of a Homie property attribute topic
/// (`homie/<device>/<node>/<property>/$<attribute>`), or of a Homie 5
/// device description (`homie/5/<device>/$description`).
fn homie_attribute(topic: &str) -> Option<(&str, &str)> {
    let (series, attribute) = topic.rsplit_once("/$")?;
    let levels = series.split('/').count();
    match attribute {
        "name" | "unit" | "datatype" if levels == 4 => Some((series, attribute)),
        "description" if levels == 3 && series.starts_with("homie/5/") => Some((series, attribute)),
        _ => None,
    }
}

fn homie(topic: &str, text: &str) -> Result<Discovered, String> {
    let (series, attribute) = homie_attribute(topic).ok_or("not a Homie attribute")?;
    let mut meta = SeriesMeta::default();
    match attribute {
        "name" => meta.label = Some(text.to_owned()),
        "unit" => meta.unit = Some(text.to_owned()),
        "datatype" if ["integer", "float", "boolean"].contains(&text) => {
            meta.ds_type = Some(DsType::Gauge);
        }
        "datatype" => {}
        "description" => return homie_description(series, text),
        _ => {}
    }
    Ok(Discovered {
        series: vec![(series.to_owned(), meta)],
        unsupported: Vec::new(),
    })
}

/// Homie 5: `{"nodes": {"<node>": {"properties": {"<prop>": {"name",
/// "unit", "datatype"}}}}}`; values are on `homie/5/<device>/<node>/<prop>`.
fn homie_description(device: &str, text: &str) -> Result<Discovered, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut out = Discovered::default();
    let nodes = v
        .get("nodes")
        .and_then(Value::as_object)
        .ok_or("no nodes")?;
    for (node, n) in nodes {
        let Some(props) = n.get("properties").and_then(Value::as_object) else {
            continue;
        };
        for (prop, p) in props {
            let text = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
            out.series.push((
                format!("{device}/{node}/{prop}"),
                SeriesMeta {
                    label: text("name"),
                    unit: text("unit"),
                    ..SeriesMeta::default()
                },
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
