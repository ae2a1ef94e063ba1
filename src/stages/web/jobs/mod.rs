//! `/rrd/jobs`: every poll job with its state — last answer, last round
//! (duration and samples), errors, skipped rounds, next run — for admins
//! (a job's target and errors say how the network is laid out). Admins
//! add, edit, pause and remove jobs here as Grafolean's bots are managed
//! (`editor.rs`); those are kept by `store.rs`; the configuration file's
//! jobs are read-only.

pub(crate) mod editor;
mod store;

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

pub use self::store::JobsSaved;
pub(crate) use self::store::StoredJobs;
use super::access::Access;
use super::chrome::Chrome;
use super::{State, WebError};
use crate::clock::local;
use crate::config::poll::{Origin, RawPoll};
use crate::poll::JobStatus;

#[derive(Template, WebTemplate)]
#[template(path = "jobs.html")]
pub(crate) struct JobsPage {
    chrome: Chrome,
    jobs: Vec<JobRow>,
    /// Admins change jobs; others never reach the page.
    token: String,
}

/// One job as the page says it.
pub(crate) struct JobRow {
    name: String,
    kind: String,
    target: String,
    interval: String,
    /// Made in the browser: it has edit, pause and remove buttons.
    editable: bool,
    /// Its series' device page, once it has files.
    graphs: Option<String>,
    paused: bool,
    state: &'static str,
    state_class: &'static str,
    last_success: String,
    last_round: String,
    samples: String,
    next_run: String,
    skipped: String,
    last_error: Option<String>,
}

/// Only admins see and change jobs.
fn require_admin(access: &Access) -> Result<(), WebError> {
    if access.sees_all() {
        Ok(())
    } else {
        Err(WebError::Forbidden("the poll jobs are for admins".into()))
    }
}

pub(crate) async fn list(state: web::Data<State>, access: Access) -> Result<JobsPage, WebError> {
    require_admin(&access)?;
    let statuses = state.jobs.snapshot();
    let running = state.config.borrow().polls.clone();
    let index = state.index(&access);
    let devices = state.devices(&index);
    let mut jobs: Vec<JobRow> = running
        .iter()
        .map(|job| {
            let editable = job.origin == Origin::Browser;
            let mut row = match statuses.get(&job.name) {
                Some(s) => row(job.name.clone(), s, editable),
                None => starting(job.name.clone(), job.kind.as_str(), editable),
            };
            // Paused or not as configured, even before the poll stage has
            // followed the change (a page right after a Pause).
            if job.paused && !row.paused {
                row.paused = true;
                row.state = "paused";
                row.state_class = "paused";
                row.next_run = "paused".into();
            } else if !job.paused && row.paused {
                row.paused = false;
                row.state = "starting";
                row.state_class = "waiting";
                row.next_run = "in a moment".into();
            }
            let device = crate::model::path::rel_path_for_series(&job.prefix);
            row.graphs = devices.iter().any(|d| d.path == device).then(|| {
                format!(
                    "/rrd/device-dashboard?device={}",
                    super::pages::url_escape(&device)
                )
            });
            row
        })
        .collect();
    // Stored jobs the daemon does not run, with the reason.
    for stored in state.stored_jobs.all() {
        if running
            .iter()
            .any(|j| j.name == stored.name && j.origin == Origin::Browser)
        {
            continue;
        }
        jobs.push(not_running(&stored, &running));
    }
    Ok(JobsPage {
        chrome: Chrome::of(&state, &access),
        jobs,
        token: state.form_tokens.token(&access),
    })
}

fn row(name: String, s: &JobStatus, editable: bool) -> JobRow {
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
        kind: s.kind.as_str().to_owned(),
        target: s.target.clone(),
        interval: humantime::format_duration(std::time::Duration::from_secs(s.interval_s))
            .to_string(),
        editable,
        graphs: None,
        paused: s.paused,
        state,
        state_class,
        last_success: time(s.last_success_ms),
        last_round: s.last_duration_ms.map_or_else(
            || "none yet".to_owned(),
            |d| format!("{} ms, {}", d, samples(s.last_samples as u64)),
        ),
        samples: format!(
            "{} in {} round{}",
            samples(s.samples_total),
            s.rounds_total,
            if s.rounds_total == 1 { "" } else { "s" }
        ),
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

fn samples(n: u64) -> String {
    if n == 1 {
        "1 sample".to_owned()
    } else {
        format!("{n} samples")
    }
}

/// A job the configuration has and the poll stage has not picked up yet
/// (a moment after a save).
fn starting(name: String, kind: &str, editable: bool) -> JobRow {
    JobRow {
        name,
        kind: kind.to_owned(),
        target: String::new(),
        interval: String::new(),
        editable,
        graphs: None,
        paused: false,
        state: "starting",
        state_class: "waiting",
        last_success: "never".into(),
        last_round: "none yet".into(),
        samples: "none yet".into(),
        next_run: "in a moment".into(),
        skipped: String::new(),
        last_error: None,
    }
}

/// A job made in the browser that the daemon left out, and why.
fn not_running(stored: &RawPoll, running: &[crate::config::poll::PollJob]) -> JobRow {
    let why = if running.iter().any(|j| j.name == stored.name) {
        "the configuration file has a job of this name, which runs instead".to_owned()
    } else {
        match crate::config::check_poll(stored) {
            Err(problems) => editor::describe(&problems),
            Ok(_) => "not applied yet: see the daemon's log".to_owned(),
        }
    };
    JobRow {
        last_error: Some(why),
        state: "not running",
        state_class: "failing",
        target: stored.target.clone(),
        next_run: "never".into(),
        ..starting(stored.name.clone(), stored.kind.as_str(), true)
    }
}
