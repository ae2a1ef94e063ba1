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
//!
//! Families with formats or conventions of their own are routed by topic
//! first (`route.rs`): collectd, janitoo, Shelly, and what is not data at
//! all (availability, bridge state, attributes), which yields no sample
//! and no refusal.

mod collectd;
mod janitoo;
pub(crate) mod route;
mod shelly;

use std::borrow::Cow;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use self::route::{ObjectRules, Route, route};
use crate::model::{RejectReason, Sample, UnixMillis};

/// Bounds on what one message may cost.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_payload_bytes: usize,
    pub max_json_leaves: usize,
    pub max_json_depth: usize,
}

/// A payload's epoch time is read in the unit its magnitude says: below
/// 10^11 seconds (10^11 s is the year 5138), below 10^14 milliseconds,
/// below 10^17 microseconds, above nanoseconds. Each unit's range starts
/// where the previous one's reaches 5138 and covers 1973 onwards, so for any
/// time since 1973 the reading is unambiguous.
const EPOCH_UNITS: [(f64, f64); 4] = [
    (1e11, 1e3),
    (1e14, 1.0),
    (1e17, 1e-3),
    (f64::INFINITY, 1e-6),
];
/// 9999-12-31: later times are typos, and librrd's time_t math stays safe.
const MAX_TIME_MS: i64 = 253_402_300_799_000;

/// Decodes one message into samples; none (and `Ok`) for a message that
/// is not data.
pub fn decode(
    topic: &str,
    payload: &[u8],
    received_ms: UnixMillis,
    limits: &DecodeLimits,
) -> Result<Vec<Sample>, RejectReason> {
    if payload.len() > limits.max_payload_bytes {
        return Err(RejectReason::Oversize);
    }
    // What is not data is acknowledged whatever its payload: the payload is
    // read only after the route says it is data.
    let (rules, text) = match route(topic) {
        Route::NotData => return Ok(Vec::new()),
        Route::Generic(rules) => (rules, payload_text(payload)?),
        Route::Collectd => {
            let text = payload_text(payload)?;
            if !text.starts_with('{') && text.contains(':') {
                return collectd::decode(topic, text, received_ms, limits);
            }
            (route::GENERIC, text)
        }
        Route::Janitoo => return janitoo::decode(payload_text(payload)?, received_ms, limits),
        Route::WattMinutes => {
            return shelly::watt_minutes(topic, payload_text(payload)?, received_ms);
        }
        Route::ShellyRpc => {
            return shelly::rpc(topic, payload_text(payload)?, received_ms, limits);
        }
    };
    if text.starts_with('{') {
        return decode_object(topic, text, received_ms, limits, &rules);
    }
    let value = if text.starts_with('"') {
        let inner: String = serde_json::from_str(text).map_err(|_| RejectReason::BadJson)?;
        parse_scalar(inner.trim())?
    } else {
        parse_scalar(text)?
    };
    Ok(vec![Sample {
        series: topic.to_owned(),
        time_ms: received_ms,
        value,
    }])
}

/// The payload as text, trimmed; an empty one is refused.
fn payload_text(payload: &[u8]) -> Result<&str, RejectReason> {
    let text = std::str::from_utf8(payload)
        .map_err(|_| RejectReason::NotNumeric)?
        .trim();
    if text.is_empty() {
        return Err(RejectReason::Empty);
    }
    Ok(text)
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

/// What a lone on/off word (`ON`, `"closed"`) says of its series: it is a
/// state, whatever its topic; `open`/`closed` are an opening's and
/// `online`/`offline` a connection's (Home Assistant's device classes,
/// said Open and Closed, Connected and Disconnected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateWord {
    pub device_class: Option<&'static str>,
}

/// The state a payload's lone word says; `None` for anything else. Cheap
/// enough for every message: a long payload, or one without a letter, is
/// turned away unread.
pub fn state_word(payload: &[u8]) -> Option<StateWord> {
    if payload.len() > 16 || !payload.iter().any(u8::is_ascii_alphabetic) {
        return None;
    }
    let text = std::str::from_utf8(payload).ok()?.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
        .trim();
    parse_bool_word(text)?;
    let is = |words: [&str; 2]| words.iter().any(|w| w.eq_ignore_ascii_case(text));
    let device_class = if is(["open", "closed"]) {
        Some("opening")
    } else if is(["online", "offline"]) {
        Some("connectivity")
    } else {
        None
    };
    Some(StateWord { device_class })
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

/// Walks a JSON object straight from the text, leaf by leaf: no `Value`
/// tree is built, which halved the cost of a typical sensor message.
pub(crate) fn decode_object(
    topic: &str,
    text: &str,
    received_ms: UnixMillis,
    limits: &DecodeLimits,
    rules: &ObjectRules,
) -> Result<Vec<Sample>, RejectReason> {
    let mut de = serde_json::Deserializer::from_str(text);
    walk_object(topic, received_ms, limits, rules, |seed| {
        seed.deserialize(&mut de).and_then(|()| de.end())
    })
}

/// The same for an object already parsed (a part of a larger message).
pub(crate) fn decode_value(
    topic: &str,
    value: &Value,
    received_ms: UnixMillis,
    limits: &DecodeLimits,
    rules: &ObjectRules,
) -> Result<Vec<Sample>, RejectReason> {
    walk_object(topic, received_ms, limits, rules, |seed| {
        seed.deserialize(value)
    })
}

/// Runs `walk` (a deserializer driving the seed it is given over an
/// object), then stamps the samples with the object's time.
fn walk_object(
    topic: &str,
    received_ms: UnixMillis,
    limits: &DecodeLimits,
    rules: &ObjectRules,
    walk: impl FnOnce(ObjectSeed<'_>) -> Result<(), serde_json::Error>,
) -> Result<Vec<Sample>, RejectReason> {
    let mut sink = Sink {
        prefix: String::with_capacity(topic.len() + 32),
        max_leaves: limits.max_json_leaves,
        max_depth: limits.max_json_depth,
        rules: *rules,
        times: vec![None; rules.time_keys.len()],
        samples: Vec::new(),
        too_many: false,
        too_deep: false,
    };
    sink.prefix.push_str(topic);
    let walked = walk(ObjectSeed {
        sink: &mut sink,
        depth: 0,
    });
    if let Err(e) = walked {
        return Err(if sink.too_many {
            RejectReason::TooManyLeaves
        } else if sink.too_deep {
            RejectReason::TooDeep
        } else {
            bad_json(e)
        });
    }
    let mut time_ms = received_ms;
    for (key, value) in rules.time_keys.iter().zip(&sink.times) {
        let Some(value) = value else { continue };
        match parse_time(value) {
            Some(t) => {
                time_ms = t;
                break;
            }
            None if key.strict => return Err(RejectReason::BadTimestamp),
            None => {}
        }
    }
    if sink.samples.is_empty() {
        return Err(RejectReason::NotNumeric);
    }
    for s in &mut sink.samples {
        s.time_ms = time_ms;
    }
    Ok(sink.samples)
}

fn bad_json(_: serde_json::Error) -> RejectReason {
    RejectReason::BadJson
}

/// What the walk collects. Sample times are set once the whole object has
/// been read, since `ts` may come after the values.
struct Sink {
    prefix: String,
    samples: Vec<Sample>,
    max_leaves: usize,
    max_depth: usize,
    rules: ObjectRules,
    /// The value of each of `rules.time_keys` found at the top level.
    times: Vec<Option<Value>>,
    too_many: bool,
    too_deep: bool,
}

impl Sink {
    fn leaf<E: de::Error>(&mut self, value: Option<f64>) -> Result<(), E> {
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return Ok(());
        };
        if self.samples.len() >= self.max_leaves {
            self.too_many = true;
            return Err(E::custom("too many leaves"));
        }
        self.samples.push(Sample {
            series: self.prefix.clone(),
            time_ms: 0,
            value,
        });
        Ok(())
    }
}

struct ObjectSeed<'s> {
    sink: &'s mut Sink,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ObjectSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth >= self.sink.max_depth {
            self.sink.too_deep = true;
            return Err(de::Error::custom("too deep"));
        }
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let time_key = (self.depth == 0)
                .then(|| self.sink.rules.time_keys.iter().position(|t| t.name == key))
                .flatten();
            if let Some(i) = time_key {
                self.sink.times[i] = Some(map.next_value()?);
                continue;
            }
            if self.sink.rules.skip_keys.contains(&key.as_ref()) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let len = self.sink.prefix.len();
            self.sink.prefix.push('/');
            self.sink.prefix.push_str(&key);
            map.next_value_seed(LeafSeed {
                sink: &mut *self.sink,
                depth: self.depth + 1,
            })?;
            self.sink.prefix.truncate(len);
        }
        Ok(())
    }
}

/// A JSON value under the current prefix: a leaf, a nested object, or
/// something skipped (text that is no number, null, arrays).
struct LeafSeed<'s> {
    sink: &'s mut Sink,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for LeafSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LeafSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.sink.leaf(Some(if v { 1.0 } else { 0.0 }))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.sink.leaf(Some(v as f64))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.sink.leaf(Some(v as f64))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.sink.leaf(Some(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.sink.leaf(parse_scalar(v.trim()).ok())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        ObjectSeed {
            sink: self.sink,
            depth: self.depth,
        }
        .visit_map(map)
    }
}

/// An object key, borrowed from the payload unless it has escapes.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
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

pub(crate) fn epoch_to_ms(v: f64) -> Option<UnixMillis> {
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    let (_, to_ms) = EPOCH_UNITS.iter().find(|(below, _)| v < *below)?;
    let ms = v * to_ms;
    (ms <= MAX_TIME_MS as f64).then(|| ms.round() as i64)
}

#[cfg(test)]
mod tests;
