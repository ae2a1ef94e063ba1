//! janitoo value messages on `/values/<genre>/<hadd>/<uuid>`, in their three
//! shapes: one value object (`{"uuid", "hadd", "index", "genre", "data",
//! …}`), several indexes (`{"0": {…}, "1": {…}}`), or values nested under
//! other keys. Only genres basic (1) and user (2) are data; each value is
//! the series `janitoo/<hadd>/<uuid>/<index>`, janitoo's own key.

use serde_json::Value;

use crate::model::{RejectReason, Sample, UnixMillis};

use super::{DecodeLimits, parse_scalar};

pub(crate) fn decode(
    text: &str,
    received_ms: UnixMillis,
    limits: &DecodeLimits,
) -> Result<Vec<Sample>, RejectReason> {
    let value: Value = serde_json::from_str(text).map_err(|_| RejectReason::BadJson)?;
    let mut samples = Vec::new();
    walk(&value, 0, received_ms, limits, &mut samples)?;
    if samples.is_empty() {
        return Err(RejectReason::NotNumeric);
    }
    Ok(samples)
}

fn walk(
    v: &Value,
    depth: usize,
    time_ms: UnixMillis,
    limits: &DecodeLimits,
    out: &mut Vec<Sample>,
) -> Result<(), RejectReason> {
    if depth > limits.max_json_depth {
        return Err(RejectReason::TooDeep);
    }
    let Value::Object(map) = v else {
        return Ok(());
    };
    if map.contains_key("uuid") && map.contains_key("data") {
        if let Some(sample) = value_sample(map, time_ms) {
            if out.len() >= limits.max_json_leaves {
                return Err(RejectReason::TooManyLeaves);
            }
            out.push(sample);
        }
        return Ok(());
    }
    for child in map.values() {
        walk(child, depth + 1, time_ms, limits, out)?;
    }
    Ok(())
}

/// One janitoo value, if it is basic or user data with a numeric `data`.
fn value_sample(map: &serde_json::Map<String, Value>, time_ms: UnixMillis) -> Option<Sample> {
    let genre = map.get("genre").and_then(Value::as_u64).unwrap_or(2);
    if !(1..=2).contains(&genre) {
        return None;
    }
    let uuid = map.get("uuid")?.as_str()?;
    let hadd = map.get("hadd").and_then(Value::as_str).unwrap_or("unknown");
    let index = map.get("index").and_then(Value::as_u64).unwrap_or(0);
    let value = match map.get("data")? {
        Value::Number(n) => n.as_f64()?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => parse_scalar(s.trim()).ok()?,
        _ => return None,
    };
    value.is_finite().then(|| Sample {
        series: format!("janitoo/{hadd}/{uuid}/{index}"),
        time_ms,
        value,
    })
}
