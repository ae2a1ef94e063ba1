//! `POST /rrd/api/values`: values pushed over HTTP by a script or a device
//! that does not speak MQTT (Grafolean's custom bots; a cron job with
//! `curl`). The body is a JSON object of series → value, and optionally
//! `"ts"` (Unix seconds) for all of them:
//!
//! ```text
//! curl -H 'Authorization: Bearer garden:SECRET' \
//!      -d '{"garden/soil/moisture": 41.5, "garden/shed": {"temp": 7}}' \
//!      http://127.0.0.1:8088/rrd/api/values
//! ```
//!
//! Each value goes through the MQTT decoder as the payload of a message on
//! its series (a number, an on/off word, a JSON object of leaves), with
//! the same limits and refusals counted by reason. A bot may push only
//! the series its `publish` filters allow: one outside refuses the whole
//! request (403), nothing kept. The answer comes once the journal has the
//! samples.

use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value, json};
use tracing::warn;

use super::State;
use crate::cache::{Intake, Journaled};
use crate::clock::Stamper;
use crate::config::Bot;
use crate::metrics::{Refusals, log_refusal};
use crate::model::{RejectReason, Sample, UnixMillis};
use crate::mqtt::decode::{DecodeLimits, decode};
use crate::password::{Logins, Verdict};

/// What the push endpoint needs; absent when no `[[web.bots]]` exist.
pub(crate) struct Push {
    logins: Arc<Logins>,
    bots: Vec<Bot>,
    intake: Intake,
    stamper: Stamper,
    refusals: std::sync::Mutex<Refusals>,
}

impl Push {
    pub fn new(
        bots: Vec<Bot>,
        intake: Intake,
        stamper: Stamper,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Option<Push> {
        if bots.is_empty() {
            return None;
        }
        Some(Push {
            logins: Arc::new(Logins::new(
                bots.iter().map(|b| (b.name.clone(), b.token_hash.clone())),
            )),
            bots,
            intake,
            stamper,
            refusals: std::sync::Mutex::new(Refusals::new(metrics)),
        })
    }
}

/// What a pushed body comes to. Pure.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Pushed {
    pub samples: Vec<Sample>,
    /// Series refused, and why.
    pub refused: Vec<(String, RejectReason)>,
}

/// A body that is refused whole.
#[derive(Debug, PartialEq)]
pub(crate) enum Refused {
    /// 400/413: not a JSON object of values, too big, too many.
    Body(RejectReason, String),
    /// 403: series outside the bot's `publish`.
    NotAllowed(Vec<String>),
}

/// Decodes a pushed body for `bot`, as received at `now_ms`.
pub(crate) fn read_body(
    body: &[u8],
    bot: &Bot,
    now_ms: UnixMillis,
    limits: &DecodeLimits,
) -> Result<Pushed, Refused> {
    if body.len() > limits.max_payload_bytes {
        return Err(Refused::Body(
            RejectReason::Oversize,
            format!(
                "over limits.max_payload_bytes ({})",
                limits.max_payload_bytes
            ),
        ));
    }
    let object: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => o,
        Ok(_) => {
            return Err(Refused::Body(
                RejectReason::BadJson,
                "expected a JSON object of series → value".into(),
            ));
        }
        Err(e) => {
            return Err(Refused::Body(
                RejectReason::BadJson,
                format!("not JSON: {e}"),
            ));
        }
    };
    let ts_ms = match object.get("ts") {
        None => None,
        Some(ts) => Some(epoch_ms(ts).ok_or_else(|| {
            Refused::Body(
                RejectReason::BadTimestamp,
                "ts must be Unix seconds (or milliseconds)".into(),
            )
        })?),
    };
    let values: Vec<(&String, &Value)> = object.iter().filter(|(k, _)| *k != "ts").collect();
    if values.len() > limits.max_json_leaves {
        return Err(Refused::Body(
            RejectReason::TooManyLeaves,
            format!(
                "more than limits.max_json_leaves ({})",
                limits.max_json_leaves
            ),
        ));
    }
    let not_allowed: Vec<String> = values
        .iter()
        .filter(|(series, _)| !valid_series(series) || !bot.may_push(series))
        .map(|(series, _)| (*series).clone())
        .collect();
    if !not_allowed.is_empty() {
        return Err(Refused::NotAllowed(not_allowed));
    }
    let mut pushed = Pushed::default();
    for (series, value) in values {
        let payload = match value {
            Value::String(s) => s.clone().into_bytes(),
            other => other.to_string().into_bytes(),
        };
        match decode(series, &payload, now_ms, limits) {
            Ok(samples) => pushed.samples.extend(samples.into_iter().map(|mut s| {
                if let Some(ts) = ts_ms
                    && s.time_ms == now_ms
                {
                    s.time_ms = ts;
                }
                s
            })),
            Err(reason) => pushed.refused.push((series.clone(), reason)),
        }
    }
    Ok(pushed)
}

/// Seconds, or milliseconds when it is that big (as the decoder reads
/// payload times).
fn epoch_ms(v: &Value) -> Option<UnixMillis> {
    let n = v.as_f64().filter(|n| n.is_finite() && *n > 0.0)?;
    let ms = if n >= 1e11 { n } else { n * 1000.0 };
    (ms < 1e15).then_some(ms.round() as i64)
}

/// A topic name: no wildcards, not empty, not `$`-reserved.
fn valid_series(series: &str) -> bool {
    !series.is_empty()
        && series.len() <= 1024
        && !series.starts_with('$')
        && rumqttc::valid_topic(series)
        && !series.contains('\0')
}

/// The bot and secret of an `Authorization: Bearer <bot>:<secret>` header.
fn bearer(req: &HttpRequest) -> Option<(String, String)> {
    let header = req.headers().get("authorization")?.to_str().ok()?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))?;
    let (bot, secret) = token.trim().split_once(':')?;
    Some((bot.to_owned(), secret.to_owned()))
}

fn unauthorized(why: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .insert_header(("WWW-Authenticate", "Bearer realm=\"datalog-rrd\""))
        .json(json!({ "error": why }))
}

/// The handler.
pub(crate) async fn values(
    state: web::Data<State>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let Some(push) = &state.push else {
        return unauthorized("no [[web.bots]] are configured");
    };
    let Some((name, secret)) = bearer(&req) else {
        return unauthorized("expected Authorization: Bearer <bot>:<secret>");
    };
    let addr = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    match push.logins.check(&name, &secret, &addr).await {
        Verdict::Accepted => {}
        Verdict::Refused { .. } => return unauthorized("wrong bot or token"),
        Verdict::Throttled(wait) => {
            return HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", wait.as_secs().max(1).to_string()))
                .json(json!({ "error": "too many failed attempts" }));
        }
    }
    let Some(bot) = push.bots.iter().find(|b| b.name == name) else {
        return unauthorized("wrong bot or token");
    };
    let limits = {
        let config = state.config.borrow();
        DecodeLimits {
            max_payload_bytes: config.limits.max_payload_bytes,
            max_json_leaves: config.limits.max_json_leaves,
            max_json_depth: config.limits.max_json_depth,
        }
    };
    let now_ms = push.stamper.now_ms();
    let refuse = |reason: RejectReason, series: &str| {
        let mut refusals = push.refusals.lock().unwrap_or_else(|p| p.into_inner());
        log_refusal!(
            refusals.refuse(reason, now_ms),
            bot = name,
            series,
            %reason,
            "Pushed value refused."
        );
    };
    let pushed = match read_body(&body, bot, now_ms, &limits) {
        Ok(p) => p,
        Err(Refused::Body(reason, why)) => {
            refuse(reason, "");
            let status = if reason == RejectReason::Oversize {
                actix_web::http::StatusCode::PAYLOAD_TOO_LARGE
            } else {
                actix_web::http::StatusCode::BAD_REQUEST
            };
            return HttpResponse::build(status).json(json!({ "error": why }));
        }
        Err(Refused::NotAllowed(series)) => {
            for s in &series {
                refuse(RejectReason::NotAllowed, s);
            }
            return HttpResponse::Forbidden().json(json!({
                "error": "outside this bot's publish filters (or not a topic name); nothing was kept",
                "series": series,
            }));
        }
    };
    for (series, reason) in &pushed.refused {
        refuse(*reason, series);
    }
    let accepted = pushed.samples.len();
    if accepted > 0 {
        let held = push.stamper.held(now_ms);
        let journaled = match push.intake.add(pushed.samples, held).await {
            Ok(j) => j,
            Err(_) => {
                return HttpResponse::ServiceUnavailable().json(json!({ "error": "stopping" }));
            }
        };
        let committed = push.intake.commit().await;
        if let (Journaled::Failed(e), _) | (_, Err(e)) = (journaled, committed) {
            warn!(bot = name, error = %e, "Cannot write the journal: pushed values not confirmed.");
            return HttpResponse::ServiceUnavailable()
                .json(json!({ "error": "the journal cannot be written; push again later" }));
        }
    }
    let refused: Vec<Value> = pushed
        .refused
        .iter()
        .map(|(s, r)| json!({ "series": s, "reason": r.as_str() }))
        .collect();
    HttpResponse::Ok().json(json!({ "accepted": accepted, "refused": refused }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DecodeLimits = DecodeLimits {
        max_payload_bytes: 1000,
        max_json_leaves: 4,
        max_json_depth: 4,
    };

    fn bot(publish: Option<&[&str]>) -> Bot {
        Bot {
            name: "garden".into(),
            token_hash: String::new(),
            publish: publish.map(|p| p.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn values_go_through_the_decoder() {
        let body = br#"{"garden/soil": 41.5, "garden/pump": "ON", "garden/shed": {"temp": 7, "rh": "x"}, "garden/bad": "warm"}"#;
        let pushed = read_body(body, &bot(Some(&["garden/#"])), 5_000, &LIMITS).unwrap();
        let got: Vec<(&str, f64)> = pushed
            .samples
            .iter()
            .map(|s| (s.series.as_str(), s.value))
            .collect();
        assert_eq!(
            got,
            // In the order of their names (serde_json's maps are sorted).
            [
                ("garden/pump", 1.0),
                ("garden/shed/temp", 7.0),
                ("garden/soil", 41.5)
            ]
        );
        assert!(pushed.samples.iter().all(|s| s.time_ms == 5_000));
        assert_eq!(
            pushed.refused,
            [("garden/bad".to_owned(), RejectReason::NotNumeric)]
        );
    }

    #[test]
    fn ts_times_every_value() {
        let pushed =
            read_body(br#"{"ts": 1700000000, "a": 1}"#, &bot(None), 5_000, &LIMITS).unwrap();
        assert_eq!(pushed.samples[0].time_ms, 1_700_000_000_000);
        let pushed = read_body(
            br#"{"ts": 1700000000123, "a": 1}"#,
            &bot(None),
            5_000,
            &LIMITS,
        )
        .unwrap();
        assert_eq!(pushed.samples[0].time_ms, 1_700_000_000_123);
        assert!(matches!(
            read_body(br#"{"ts": "now", "a": 1}"#, &bot(None), 5_000, &LIMITS),
            Err(Refused::Body(RejectReason::BadTimestamp, _))
        ));
    }

    #[test]
    fn outside_the_filters_nothing_is_kept() {
        let refused = read_body(
            br#"{"garden/soil": 1, "house/door": 1, "a/+/b": 2}"#,
            &bot(Some(&["garden/#"])),
            5_000,
            &LIMITS,
        )
        .unwrap_err();
        assert_eq!(
            refused,
            Refused::NotAllowed(vec!["a/+/b".into(), "house/door".into()])
        );
    }

    #[test]
    fn bad_bodies_are_refused_whole() {
        let b = bot(None);
        for (body, reason) in [
            (&b"[1,2]"[..], RejectReason::BadJson),
            (b"{not json", RejectReason::BadJson),
            (
                br#"{"a":1,"b":2,"c":3,"d":4,"e":5}"#,
                RejectReason::TooManyLeaves,
            ),
            (&[b' '; 2000][..], RejectReason::Oversize),
        ] {
            assert!(
                matches!(read_body(body, &b, 0, &LIMITS), Err(Refused::Body(r, _)) if r == reason),
                "{reason}"
            );
        }
    }
}
