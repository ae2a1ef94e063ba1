//! Shelly: Gen1 energy counters come in watt-minutes (stored in Wh, like
//! every other energy counter); Gen2 `NotifyStatus` notifications on
//! `<prefix>/events/rpc` carry partial status, which is written to the
//! series the full status (`<prefix>/status/<component>`) uses, so the two
//! merge into one set of files.

use serde_json::Value;

use crate::model::{RejectReason, Sample, UnixMillis};

use super::route::SHELLY_GEN2;
use super::{DecodeLimits, decode_value, parse_scalar, parse_time};

pub(crate) fn watt_minutes(
    topic: &str,
    text: &str,
    received_ms: UnixMillis,
) -> Result<Vec<Sample>, RejectReason> {
    Ok(vec![Sample {
        series: topic.to_owned(),
        time_ms: received_ms,
        value: parse_scalar(text)? / 60.0,
    }])
}

/// `{"method": "NotifyStatus", "params": {"ts": …, "switch:0": {…}}}`;
/// other methods (NotifyEvent…) are not data: `Ok` and no samples.
pub(crate) fn rpc(
    topic: &str,
    text: &str,
    received_ms: UnixMillis,
    limits: &DecodeLimits,
) -> Result<Vec<Sample>, RejectReason> {
    let v: Value = serde_json::from_str(text).map_err(|_| RejectReason::BadJson)?;
    if v.get("method").and_then(Value::as_str) != Some("NotifyStatus") {
        return Ok(Vec::new());
    }
    let Some(Value::Object(params)) = v.get("params") else {
        return Err(RejectReason::NotNumeric);
    };
    let time_ms = match params.get("ts") {
        Some(ts) => parse_time(ts).ok_or(RejectReason::BadTimestamp)?,
        None => received_ms,
    };
    let prefix = topic.strip_suffix("/events/rpc").unwrap_or(topic);
    let mut samples = Vec::new();
    for (component, status) in params.iter().filter(|(k, _)| k.as_str() != "ts") {
        if !status.is_object() {
            continue;
        }
        let series = format!("{prefix}/status/{component}");
        match decode_value(&series, status, time_ms, limits, &SHELLY_GEN2) {
            Ok(s) => samples.extend(s),
            Err(RejectReason::NotNumeric) => {}
            Err(e) => return Err(e),
        }
        if samples.len() > limits.max_json_leaves {
            return Err(RejectReason::TooManyLeaves);
        }
    }
    Ok(samples)
}
