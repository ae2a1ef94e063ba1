//! The poll stage: values fetched on a schedule from what does not speak
//! MQTT (munin-node, Prometheus exporters), handed to the same intake as
//! MQTT messages (journal, then cache), so that nothing downstream can tell
//! a polled sample from a published one.
//!
//! - `schedule.rs`: when a job runs (phase, skips, backoff). Pure.
//! - `job.rs`: one job's task: wait, poll within its timeout, hand over,
//!   say how it went.
//! - `status.rs`: what each job did last, for the jobs page and `/metrics`.
//! - `munin/`, `prometheus/`, `ping.rs`: the protocols, each a pure core
//!   and a small client.
//!
//! This file is the supervisor: it starts a task per job, and on reload
//! stops, starts or keeps each one (an unchanged job keeps its schedule).

mod job;
pub mod munin;
mod ping;
pub mod prometheus;
mod schedule;
mod snmp;
pub mod status;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tracing::info;

pub use self::status::{JobStatus, JobsStatus};
use crate::cache::Intake;
use crate::clock::Stamper;
use crate::config::Config;
use crate::config::poll::PollJob;
use crate::model::{Sample, SeriesMeta};

/// Rounds in progress at once, over all jobs: a slow network must not
/// open hundreds of connections together.
const MAX_CONCURRENT_ROUNDS: usize = 8;

/// Why a round failed, counted apart in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PollErrorKind {
    /// The target could not be reached (refused, no route, unknown host).
    Connect,
    /// It did not answer within the job's timeout.
    Timeout,
    /// It answered something that is not its protocol.
    Protocol,
    /// HTTP said no (a status other than 200).
    Http,
    /// The connection broke.
    Io,
}

impl PollErrorKind {
    pub const ALL: [PollErrorKind; 5] = [
        PollErrorKind::Connect,
        PollErrorKind::Timeout,
        PollErrorKind::Protocol,
        PollErrorKind::Http,
        PollErrorKind::Io,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PollErrorKind::Connect => "connect",
            PollErrorKind::Timeout => "timeout",
            PollErrorKind::Protocol => "protocol",
            PollErrorKind::Http => "http",
            PollErrorKind::Io => "io",
        }
    }
}

/// A failed round, or the failed part of one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {message}", kind.as_str())]
pub struct PollError {
    pub kind: PollErrorKind,
    pub message: String,
}

impl PollError {
    pub fn new(kind: PollErrorKind, message: impl Into<String>) -> PollError {
        PollError {
            kind,
            message: message.into(),
        }
    }

    pub fn protocol(message: impl Into<String>) -> PollError {
        PollError::new(PollErrorKind::Protocol, message)
    }

    /// An I/O error, sorted: could not connect, timed out, or broke.
    pub fn io(context: &str, e: &std::io::Error) -> PollError {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::ConnectionRefused
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::AddrNotAvailable
            | K::NotFound => PollErrorKind::Connect,
            K::TimedOut => PollErrorKind::Timeout,
            _ => PollErrorKind::Io,
        };
        PollError::new(kind, format!("{context}: {e}"))
    }

    pub fn timeout(what: &str) -> PollError {
        PollError::new(PollErrorKind::Timeout, format!("{what}: no answer in time"))
    }
}

/// What one round brought.
#[derive(Debug, Default, PartialEq)]
pub struct Polled {
    pub samples: Vec<Sample>,
    /// What the target says of its series (labels, units, DS types).
    pub meta: Vec<(String, SeriesMeta)>,
    /// What failed, if anything; the samples before it are kept.
    pub error: Option<PollError>,
}

impl Polled {
    pub fn failed(error: PollError) -> Polled {
        Polled {
            error: Some(error),
            ..Polled::default()
        }
    }
}

/// What the stage needs from the rest of the daemon.
pub struct PollDeps {
    pub intake: Intake,
    pub stamper: Stamper,
    pub status: JobsStatus,
}

struct Running {
    job: PollJob,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// Runs every job of the configuration until `stop_rx` says stop; follows
/// reloads. Returns once every job's task has ended (a round in progress
/// is abandoned: nothing of it was kept yet; one handing its samples over
/// finishes that first).
pub async fn run(
    mut config_rx: watch::Receiver<Arc<Config>>,
    deps: PollDeps,
    mut stop_rx: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONCURRENT_ROUNDS));
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        let config = config_rx.borrow_and_update().clone();
        follow(&config, &deps, &slots, &mut running);
        tokio::select! {
            changed = config_rx.changed() => if changed.is_err() { break },
            _ = stop_rx.changed() => break,
        }
    }
    for r in running.values() {
        let _ = r.stop.send(true);
    }
    for (_, r) in running.drain() {
        let _ = r.task.await;
    }
    info!("Poll jobs stopped.");
}

/// Brings the running jobs to what `config` says.
fn follow(
    config: &Config,
    deps: &PollDeps,
    slots: &Arc<Semaphore>,
    running: &mut HashMap<String, Running>,
) {
    let wanted: HashMap<&str, &PollJob> =
        config.polls.iter().map(|j| (j.name.as_str(), j)).collect();
    running.retain(|name, r| {
        let keep = wanted
            .get(name.as_str())
            .is_some_and(|job| **job == r.job && !job.paused);
        if !keep {
            let _ = r.stop.send(true);
            if !wanted.contains_key(name.as_str()) {
                deps.status.remove(name);
                info!(job = name, "Poll job removed.");
            }
        }
        keep
    });
    for (name, job) in wanted {
        deps.status.update(
            name,
            || fresh_status(job),
            |s| {
                *s = JobStatus {
                    paused: job.paused,
                    ..fresh_status(job)
                }
                .keeping_counts(s)
            },
        );
        if job.paused || running.contains_key(name) {
            continue;
        }
        let (stop, stop_rx) = watch::channel(false);
        let task = job::JobTask {
            job: job.clone(),
            intake: deps.intake.clone(),
            stamper: deps.stamper.clone(),
            status: deps.status.clone(),
            slots: slots.clone(),
            stop: stop_rx,
        };
        info!(job = name, kind = %job.kind, target = fresh_status(job).target,
            interval = ?job.interval, "Poll job started.");
        running.insert(
            name.to_owned(),
            Running {
                job: job.clone(),
                stop,
                task: tokio::spawn(task.run()),
            },
        );
    }
}

fn fresh_status(job: &PollJob) -> JobStatus {
    let target = match job.kind {
        crate::config::poll::PollKind::Prometheus => job.url(),
        crate::config::poll::PollKind::Ping => job.host.clone(),
        _ => job.address(),
    };
    JobStatus::new(job.kind, target, job.interval.as_secs(), job.origin)
}

impl JobStatus {
    /// This status with the counts and last results of `old` (a job whose
    /// settings changed keeps its history on the page).
    fn keeping_counts(mut self, old: &JobStatus) -> JobStatus {
        self.last_success_ms = old.last_success_ms;
        self.last_error = old.last_error.clone();
        self.last_duration_ms = old.last_duration_ms;
        self.last_samples = old.last_samples;
        self.samples_total = old.samples_total;
        self.rounds_total = old.rounds_total;
        self.errors = old.errors.clone();
        self.skipped_busy = old.skipped_busy;
        self.skipped_backoff = old.skipped_backoff;
        self.failing = old.failing;
        self.next_run_ms = if self.paused { None } else { old.next_run_ms };
        self
    }
}

/// A job as `[[poll]]` with only `name`, `kind` and `target` makes it.
#[cfg(test)]
pub(crate) fn test_job(kind: crate::config::poll::PollKind, target: &str) -> PollJob {
    let extra = if kind == crate::config::poll::PollKind::Snmp {
        "\nprofile = \"if\""
    } else {
        ""
    };
    let raw: crate::config::poll::RawPoll = toml::from_str(&format!(
        "name = \"job\"\nkind = \"{kind}\"\ntarget = \"{target}\"\ninterval = \"1m\"\ntimeout = \"5s\"{extra}"
    ))
    .expect("a valid job");
    crate::config::check_poll(&raw).expect("a valid job")
}
