//! Payload decoding: `(topic, payload bytes, receive time)` → samples, or the
//! reason the message carries none. Pure: no broker, no clock, no state.
//!
//! Accepted shapes:
//! - a bare number, surrounding whitespace tolerated (`21.5`, ` 48 \n`,
//!   `1.234e3`);
//! - a boolean word, any case: `on/true/online/yes/open` → 1,
//!   `off/false/offline/no/closed` → 0;
//! - a JSON string holding either of the above;
//! - a JSON object: each numeric or boolean leaf (or string leaf holding a
//!   number or boolean word) becomes the series `<topic>/<key>/<key>…`;
//!   other leaves (text, null, arrays) are skipped. A top-level `ts` or
//!   `timestamp` is the sample time of every leaf, not a series: epoch
//!   seconds (integer or fractional; values above 10^11 are taken as
//!   milliseconds) or an RFC 3339 string with an offset.
//!
//! Samples without a time of their own take the receive time.

use serde_json::{Map, Value};

use crate::model::{RejectReason, Sample, UnixMillis};

/// Bounds on what one message may cost.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_payload_bytes: usize,
    pub max_json_leaves: usize,
}

/// Epoch seconds above this are taken as milliseconds (10^11 s is the year
/// 5138; 10^11 ms is 1973).
const MILLIS_THRESHOLD: f64 = 1e11;
/// 9999-12-31: later times are typos, and librrd's time_t math stays safe.
const MAX_TIME_MS: i64 = 253_402_300_799_000;

/// Decodes one message into samples.
pub fn decode(
    topic: &str,
    payload: &[u8],
    received_ms: UnixMillis,
    limits: &DecodeLimits,
) -> Result<Vec<Sample>, RejectReason> {
    if payload.len() > limits.max_payload_bytes {
        return Err(RejectReason::Oversize);
    }
    let text = std::str::from_utf8(payload)
        .map_err(|_| RejectReason::NotNumeric)?
        .trim();
    match text.as_bytes().first() {
        None => Err(RejectReason::Empty),
        Some(b'{') => {
            let object: Map<String, Value> =
                serde_json::from_str(text).map_err(|_| RejectReason::BadJson)?;
            decode_object(topic, object, received_ms, limits)
        }
        Some(b'"') => {
            let inner: String = serde_json::from_str(text).map_err(|_| RejectReason::BadJson)?;
            let value = parse_scalar(inner.trim())?;
            Ok(vec![Sample {
                series: topic.to_owned(),
                time_ms: received_ms,
                value,
            }])
        }
        Some(_) => {
            let value = parse_scalar(text)?;
            Ok(vec![Sample {
                series: topic.to_owned(),
                time_ms: received_ms,
                value,
            }])
        }
    }
}

/// A number or a boolean word, as a finite `f64`.
pub fn parse_scalar(text: &str) -> Result<f64, RejectReason> {
    if let Some(b) = parse_bool_word(text) {
        return Ok(if b { 1.0 } else { 0.0 });
    }
    // Rust's parser takes "inf" and "NaN"; those and overflow (1e400 → inf)
    // are refused: librrd would store them as unknown, silently.
    let starts_like_number = text
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b"+-.".contains(&b));
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(RejectReason::NotFinite),
        Err(_) if starts_like_number => Err(RejectReason::NotNumeric),
        Err(_) => match text.to_ascii_lowercase().as_str() {
            "nan" | "-nan" | "inf" | "-inf" | "infinity" | "-infinity" => {
                Err(RejectReason::NotFinite)
            }
            _ => Err(RejectReason::NotNumeric),
        },
    }
}

fn parse_bool_word(text: &str) -> Option<bool> {
    const TRUE: [&str; 5] = ["on", "true", "online", "yes", "open"];
    const FALSE: [&str; 5] = ["off", "false", "offline", "no", "closed"];
    if text.len() > 7 {
        return None;
    }
    if TRUE.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if FALSE.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

fn decode_object(
    topic: &str,
    mut object: Map<String, Value>,
    received_ms: UnixMillis,
    limits: &DecodeLimits,
) -> Result<Vec<Sample>, RejectReason> {
    let stamp = object.remove("ts").or_else(|| object.remove("timestamp"));
    let time_ms = match stamp {
        None => received_ms,
        Some(v) => parse_time(&v).ok_or(RejectReason::BadTimestamp)?,
    };
    let mut samples = Vec::new();
    let mut prefix = String::with_capacity(topic.len() + 32);
    prefix.push_str(topic);
    walk(
        &object,
        &mut prefix,
        time_ms,
        limits.max_json_leaves,
        &mut samples,
    )?;
    if samples.is_empty() {
        return Err(RejectReason::NotNumeric);
    }
    Ok(samples)
}

fn walk(
    object: &Map<String, Value>,
    prefix: &mut String,
    time_ms: UnixMillis,
    max_leaves: usize,
    out: &mut Vec<Sample>,
) -> Result<(), RejectReason> {
    for (key, value) in object {
        let len = prefix.len();
        prefix.push('/');
        prefix.push_str(key);
        let leaf = match value {
            Value::Object(inner) => {
                walk(inner, prefix, time_ms, max_leaves, out)?;
                None
            }
            Value::Number(n) => n.as_f64().filter(|v| v.is_finite()),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::String(s) => parse_scalar(s.trim()).ok(),
            Value::Null | Value::Array(_) => None,
        };
        if let Some(value) = leaf {
            if out.len() >= max_leaves {
                return Err(RejectReason::TooManyLeaves);
            }
            out.push(Sample {
                series: prefix.clone(),
                time_ms,
                value,
            });
        }
        prefix.truncate(len);
    }
    Ok(())
}

/// A payload timestamp in milliseconds, or `None` if it is not one.
pub fn parse_time(v: &Value) -> Option<UnixMillis> {
    let ms = match v {
        Value::Number(n) => epoch_to_ms(n.as_f64()?)?,
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(secs) => epoch_to_ms(secs)?,
            Err(_) => chrono::DateTime::parse_from_rfc3339(s.trim())
                .ok()?
                .timestamp_millis(),
        },
        _ => return None,
    };
    (0..=MAX_TIME_MS).contains(&ms).then_some(ms)
}

fn epoch_to_ms(v: f64) -> Option<UnixMillis> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let ms = if v > MILLIS_THRESHOLD { v } else { v * 1000.0 };
    (ms <= MAX_TIME_MS as f64).then(|| ms.round() as i64)
}

#[cfg(test)]
mod tests;
