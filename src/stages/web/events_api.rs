//! Events on the web side: `GET /rrd/events.json` (what the charts draw as
//! annotations) and `POST /rrd/events/add` (an editor's note). A user sees
//! an event about a device only if they see a file of that device; one
//! about no device, everyone sees.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::access::Access;
use super::form::{EditorForm, see_other};
use super::query::{RangeParams, parse_time};
use super::{State, WebError, is_about};
use crate::events::{self, Event};

#[derive(Debug, Deserialize)]
pub(crate) struct EventParams {
    #[serde(flatten)]
    range: RangeParams,
    /// Only events about this device's files (and those about none).
    device: Option<String>,
}

#[derive(Serialize)]
struct EventJson<'a> {
    time: i64,
    text: &'a str,
    device: Option<&'a str>,
}

/// Whether `access` may see `event`.
pub(super) fn sees(state: &State, access: &Access, event: &Event) -> bool {
    match &event.device {
        None => true,
        Some(d) => access.sees_all() || state.index(access).iter().any(|e| is_about(&e.path, d)),
    }
}

/// `GET /rrd/events.json?range=…|start=…&end=…[&device=…]`.
pub(crate) async fn list(
    state: web::Data<State>,
    access: Access,
    params: web::Query<EventParams>,
) -> Result<HttpResponse, WebError> {
    let range = params.range.resolve(state.now_s(), 1)?;
    let found = state.events.between(range.start_s, range.end_s, |e| {
        let wanted = match (&params.device, &e.device) {
            (Some(want), Some(d)) => is_about(want, d) || is_about(d, want),
            _ => true,
        };
        wanted && sees(&state, &access, e)
    });
    let json: Vec<EventJson> = found
        .iter()
        .map(|e| EventJson {
            time: e.time_s,
            text: &e.text,
            device: e.device.as_deref(),
        })
        .collect();
    Ok(HttpResponse::Ok().json(json))
}

/// `POST /rrd/events/add`: text, optional device (one the editor sees)
/// and time (`YYYY-MM-DDTHH:MM` in the web UI's time zone, or now).
pub(crate) async fn add(
    state: web::Data<State>,
    form: EditorForm,
) -> Result<HttpResponse, WebError> {
    let now_s = state.now_s();
    let time_s = match form.field("time").map(str::trim).unwrap_or("") {
        "" => now_s,
        t => {
            parse_time(t).ok_or_else(|| WebError::BadQuery(format!("time: {t:?} is not a time")))?
        }
    };
    let device = form
        .field("device")
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let max_future_s = state.config.borrow().limits.max_future.as_secs() as i64;
    let event = events::checked(
        Event {
            time_s,
            text: form.field("text").unwrap_or_default().to_owned(),
            device,
        },
        now_s,
        max_future_s,
    )
    .map_err(WebError::BadQuery)?;
    if !sees(&state, &form.access, &event) {
        return Err(WebError::BadQuery("device: not one of your devices".into()));
    }
    state
        .events
        .add(event)
        .await
        .map_err(|e| WebError::Storage(e.to_string()))?;
    Ok(see_other("/rrd/dashboards"))
}

/// `POST /rrd/events/delete`: the event at `time` (Unix seconds) with
/// `text`, if the editor sees it.
pub(crate) async fn delete(
    state: web::Data<State>,
    form: EditorForm,
) -> Result<HttpResponse, WebError> {
    let time_s: i64 = form
        .field("time")
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| WebError::BadQuery("time: Unix seconds".into()))?;
    let text = form.field("text").unwrap_or_default().to_owned();
    let seen = state.events.between(time_s, time_s, |e| {
        e.text == text && sees(&state, &form.access, e)
    });
    if seen.is_empty() {
        return Err(WebError::NotFound(format!("event {text:?} at {time_s}")));
    }
    state
        .events
        .remove(time_s, &text)
        .await
        .map_err(|e| WebError::Storage(e.to_string()))?;
    Ok(see_other("/rrd/dashboards"))
}
