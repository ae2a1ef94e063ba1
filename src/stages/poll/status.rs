//! What every job did last: written by the jobs, read by the jobs page and
//! `/metrics`. One lock around a small map; a job takes it twice a round.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::config::poll::{Origin, PollKind};
use crate::model::UnixMillis;

use super::PollErrorKind;

/// One job's state.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    pub kind: PollKind,
    pub target: String,
    pub interval_s: u64,
    pub origin: Origin,
    pub paused: bool,
    pub next_run_ms: Option<UnixMillis>,
    pub last_success_ms: Option<UnixMillis>,
    /// The last failure: when, its kind, what was said.
    pub last_error: Option<(UnixMillis, PollErrorKind, String)>,
    pub last_duration_ms: Option<u64>,
    /// Samples the last round gave.
    pub last_samples: usize,
    pub samples_total: u64,
    pub rounds_total: u64,
    pub errors: BTreeMap<PollErrorKind, u64>,
    pub skipped_busy: u64,
    pub skipped_backoff: u64,
    /// Failed rounds in a row (0: the target answers).
    pub failing: u32,
}

impl JobStatus {
    pub fn new(kind: PollKind, target: String, interval_s: u64, origin: Origin) -> JobStatus {
        JobStatus {
            kind,
            target,
            interval_s,
            origin,
            paused: false,
            next_run_ms: None,
            last_success_ms: None,
            last_error: None,
            last_duration_ms: None,
            last_samples: 0,
            samples_total: 0,
            rounds_total: 0,
            errors: BTreeMap::new(),
            skipped_busy: 0,
            skipped_backoff: 0,
            failing: 0,
        }
    }
}

/// Every job's status, by name. Cloneable; clones share it.
#[derive(Debug, Clone, Default)]
pub struct JobsStatus(Arc<Mutex<BTreeMap<String, JobStatus>>>);

impl JobsStatus {
    /// A copy of every job's status, by name.
    pub fn snapshot(&self) -> BTreeMap<String, JobStatus> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn get(&self, name: &str) -> Option<JobStatus> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Changes one job's status (made with `fresh` if it has none).
    pub fn update(
        &self,
        name: &str,
        fresh: impl FnOnce() -> JobStatus,
        change: impl FnOnce(&mut JobStatus),
    ) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        change(all.entry(name.to_owned()).or_insert_with(fresh));
    }

    /// Changes one job's status, if it has one (the supervisor makes it
    /// before the job starts, and removes it with the job).
    pub fn change(&self, name: &str, change: impl FnOnce(&mut JobStatus)) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = all.get_mut(name) {
            change(s);
        }
    }

    pub fn remove(&self, name: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }
}
