//! `/rrd/jobs`: every poll job with its state — last answer, last round
//! (duration and samples), errors, skipped rounds, next run — for admins
//! (a job's target and errors say how the network is laid out).

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use super::access::Access;
use super::chrome::Chrome;
use super::{State, WebError};
use crate::clock::local;
use crate::poll::JobStatus;

#[derive(Template, WebTemplate)]
#[template(path = "jobs.html")]
pub(crate) struct JobsPage {
    chrome: Chrome,
    jobs: Vec<JobRow>,
}

/// One job as the page says it.
pub(crate) struct JobRow {
    name: String,
    kind: &'static str,
    target: String,
    interval: String,
    state: &'static str,
    state_class: &'static str,
    last_success: String,
    last_round: String,
    samples: String,
    next_run: String,
    skipped: String,
    last_error: Option<String>,
}

pub(crate) async fn list(state: web::Data<State>, access: Access) -> Result<JobsPage, WebError> {
    if !access.sees_all() {
        return Err(WebError::Forbidden("the poll jobs are for admins".into()));
    }
    let jobs = state
        .jobs
        .snapshot()
        .into_iter()
        .map(|(name, s)| row(name, &s))
        .collect();
    Ok(JobsPage {
        chrome: Chrome::of(&state, &access),
        jobs,
    })
}

fn row(name: String, s: &JobStatus) -> JobRow {
    let time = |ms: Option<i64>| {
        ms.map_or_else(|| "never".to_owned(), |t| local::text(t.div_euclid(1000)))
    };
    let (state, state_class) = if s.paused {
        ("paused", "paused")
    } else if s.failing > 0 {
        ("failing", "failing")
    } else if s.rounds_total == 0 {
        ("waiting", "waiting")
    } else {
        ("answering", "ok")
    };
    let skipped = match (s.skipped_busy, s.skipped_backoff) {
        (0, 0) => String::new(),
        (busy, backoff) => format!("{busy} while busy, {backoff} backing off"),
    };
    JobRow {
        name,
        kind: s.kind.as_str(),
        target: s.target.clone(),
        interval: humantime::format_duration(std::time::Duration::from_secs(s.interval_s))
            .to_string(),
        state,
        state_class,
        last_success: time(s.last_success_ms),
        last_round: s.last_duration_ms.map_or_else(
            || "none yet".to_owned(),
            |d| format!("{} ms, {} samples", d, s.last_samples),
        ),
        samples: format!("{} in {} rounds", s.samples_total, s.rounds_total),
        next_run: if s.paused {
            "paused".to_owned()
        } else {
            time(s.next_run_ms)
        },
        skipped,
        last_error: s.last_error.as_ref().map(|(t, kind, message)| {
            let failing = if s.failing > 1 {
                format!(" ({} rounds in a row)", s.failing)
            } else {
                String::new()
            };
            format!(
                "{} — {}: {message}{failing}",
                local::text(t.div_euclid(1000)),
                kind.as_str()
            )
        }),
    }
}
