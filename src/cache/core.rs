//! The whole cache as plain data: series → file buffers, and when each file
//! is due to be written. Pure (time is passed in); `task` drives it.
//!
//! A file is due `flush_after` (plus its fixed jitter) after its oldest
//! waiting row arrived, but never before that row's step has ended: with
//! the default five minutes, a file is written about once per five minutes
//! with five rows in one librrd call.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::buffer::FileBuffer;
use super::snapshot::{FileState, Snapshot};
use crate::config::Config;
use crate::model::{FileSpec, RejectReason, Sample, SeriesMeta, UnixMillis};
use crate::rrd::WriteBatch;
use crate::rrd::path::{fnv1a, rel_path_for_series};

pub(crate) type FileId = usize;

/// Where a series' samples go.
#[derive(Debug, Clone, Copy)]
struct Slot {
    file: FileId,
    ds: usize,
}

/// What one call to `ingest` did.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct IngestOutcome {
    pub accepted: u64,
    /// Samples a rule said to ignore.
    pub ignored: u64,
    pub rejected: Vec<(RejectReason, String)>,
}

pub(crate) struct Cache {
    config: Arc<Config>,
    files: Vec<FileBuffer>,
    by_path: HashMap<String, FileId>,
    series: HashMap<String, Slot>,
    /// (due time, file) for every file with rows and no batch in flight.
    due: BTreeSet<(UnixMillis, FileId)>,
    due_of: Vec<Option<UnixMillis>>,
    /// Writes in a row that librrd could not finish, per file (backoff).
    failures: Vec<u32>,
    /// Ids of pruned files, reused for new ones; their buffers are empty
    /// placeholders sharing `vacant_spec`.
    vacant: Vec<FileId>,
    vacant_spec: Arc<FileSpec>,
    /// Files declared in config: never pruned.
    pinned: Vec<bool>,
    /// What discovery said of each series (`describe.rs`).
    meta: HashMap<String, SeriesMeta>,
}

impl Cache {
    pub fn new(config: Arc<Config>) -> Self {
        let mut cache = Cache {
            config: config.clone(),
            files: Vec::new(),
            by_path: HashMap::new(),
            series: HashMap::new(),
            due: BTreeSet::new(),
            due_of: Vec::new(),
            failures: Vec::new(),
            vacant: Vec::new(),
            vacant_spec: Arc::new(FileSpec {
                rel_path: String::new(),
                template: String::new(),
                step_secs: 1,
                ds: Vec::new(),
                rras: Vec::new(),
            }),
            pinned: Vec::new(),
            meta: HashMap::new(),
        };
        for spec in &config.files {
            let id = cache.add_file(Arc::new(spec.clone()), true);
            for (ds, d) in spec.ds.iter().enumerate() {
                cache.series.insert(d.series.clone(), Slot { file: id, ds });
            }
        }
        cache
    }

    fn add_file(&mut self, spec: Arc<FileSpec>, pinned: bool) -> FileId {
        let buffer = FileBuffer::new(spec);
        let id = match self.vacant.pop() {
            Some(id) => {
                self.files[id] = buffer;
                self.due_of[id] = None;
                self.failures[id] = 0;
                self.pinned[id] = pinned;
                id
            }
            None => {
                self.files.push(buffer);
                self.due_of.push(None);
                self.failures.push(0);
                self.pinned.push(pinned);
                self.files.len() - 1
            }
        };
        self.by_path
            .insert(self.files[id].spec.rel_path.clone(), id);
        id
    }

    /// The file written to `rel_path`, if the cache has it.
    pub fn file_id(&self, rel_path: &str) -> Option<FileId> {
        self.by_path.get(rel_path).copied()
    }

    /// Each series' latest sample (value, sample time), `None` for series
    /// the cache has not seen since start.
    pub fn latest(&self, series: &[String]) -> Vec<Option<(f64, UnixMillis)>> {
        series
            .iter()
            .map(|s| {
                let slot = self.series.get(s)?;
                self.files[slot.file].latest(slot.ds)
            })
            .collect()
    }

    pub fn file_count(&self) -> usize {
        self.files.len() - self.vacant.len()
    }

    /// Forgets the files whose series sent nothing for `dead_after` and
    /// have nothing left to write (never files declared in config). Their
    /// RRD files stay; a new sample brings a series back. Returns their
    /// paths, for the index to mark them stale.
    pub fn prune_dead(&mut self, now_ms: UnixMillis, dead_after: Duration) -> Vec<String> {
        let limit = now_ms.saturating_sub(dead_after.as_millis() as i64);
        let dead: Vec<FileId> = (0..self.files.len())
            .filter(|&id| {
                let b = &self.files[id];
                !self.pinned[id]
                    && !b.spec.ds.is_empty()
                    && b.pending_rows() == 0
                    && !b.is_writing()
                    && self.due_of[id].is_none()
                    && b.last_sample_ms < limit
            })
            .collect();
        let mut paths = Vec::with_capacity(dead.len());
        for id in dead {
            let buffer = std::mem::replace(
                &mut self.files[id],
                FileBuffer::new(self.vacant_spec.clone()),
            );
            for ds in &buffer.spec.ds {
                self.series.remove(&ds.series);
            }
            self.by_path.remove(&buffer.spec.rel_path);
            self.vacant.push(id);
            paths.push(buffer.spec.rel_path.clone());
        }
        paths
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    pub fn pending_rows(&self) -> usize {
        self.files.iter().map(FileBuffer::pending_rows).sum()
    }

    #[cfg(test)]
    pub fn spec(&self, file: FileId) -> &Arc<FileSpec> {
        &self.files[file].spec
    }

    /// Adds samples received at `now_ms`; refusals are returned with the
    /// series they concern. Their times are checked first: not later than
    /// `limits.max_future` after `now_ms`, not older than their file's
    /// finest archive reaches.
    pub fn ingest(&mut self, samples: Vec<Sample>, now_ms: UnixMillis) -> IngestOutcome {
        self.ingest_checked(samples, now_ms, true)
    }

    /// Adds samples the journal gives back at start. They passed the time
    /// checks when they were received and were acknowledged then: a long
    /// outage must not make them "too old" now.
    pub fn replay(&mut self, samples: Vec<Sample>, now_ms: UnixMillis) -> IngestOutcome {
        self.ingest_checked(samples, now_ms, false)
    }

    fn ingest_checked(
        &mut self,
        samples: Vec<Sample>,
        now_ms: UnixMillis,
        check_times: bool,
    ) -> IngestOutcome {
        let mut outcome = IngestOutcome::default();
        let max_future_ms =
            i64::try_from(self.config.limits.max_future.as_millis()).unwrap_or(i64::MAX);
        for mut s in samples {
            if check_times && s.time_ms > now_ms.saturating_add(max_future_ms) {
                outcome.rejected.push((RejectReason::Future, s.series));
                continue;
            }
            if let Some(rule) = self.config.rules.iter().find(|r| r.matches(&s.series)) {
                if rule.ignore {
                    outcome.ignored += 1;
                    continue;
                }
                s.value *= rule.scale.unwrap_or(1.0);
                if let Some(name) = &rule.rename {
                    s.series.clone_from(name);
                }
            }
            let slot = match self.slot_for(&s.series) {
                Ok(slot) => slot,
                Err(reason) => {
                    outcome.rejected.push((reason, s.series));
                    continue;
                }
            };
            let buffer = &mut self.files[slot.file];
            if check_times
                && buffer.spec.finest_reach_secs().is_some_and(|reach| {
                    s.time_ms < now_ms.saturating_sub(reach.saturating_mul(1000))
                })
            {
                outcome.rejected.push((RejectReason::TooOld, s.series));
                continue;
            }
            match buffer.add(slot.ds, s.time_ms, s.value, now_ms) {
                Ok(()) => {
                    outcome.accepted += 1;
                    if self.due_of[slot.file].is_none() && !buffer.is_writing() {
                        self.schedule(slot.file);
                    }
                }
                Err(reason) => outcome.rejected.push((reason, s.series)),
            }
        }
        outcome
    }

    fn slot_for(&mut self, series: &str) -> Result<Slot, RejectReason> {
        if let Some(slot) = self.series.get(series) {
            return Ok(*slot);
        }
        if self.series.len() >= self.config.limits.max_series {
            return Err(RejectReason::SeriesLimit);
        }
        let rel_path = rel_path_for_series(series);
        if self.by_path.contains_key(&rel_path) {
            return Err(RejectReason::PathTaken);
        }
        let spec = Arc::new(
            self.wanted_spec(&self.config, series, rel_path)
                .ok_or(RejectReason::NoTemplate)?,
        );
        let slot = Slot {
            file: self.add_file(spec, false),
            ds: 0,
        };
        self.series.insert(series.to_owned(), slot);
        Ok(slot)
    }

    /// Sets the file's due time from its oldest waiting row.
    fn schedule(&mut self, file: FileId) {
        if let Some(old) = self.due_of[file].take() {
            self.due.remove(&(old, file));
        }
        let buffer = &self.files[file];
        let (Some(since), Some(first_end)) = (buffer.pending_since_ms, buffer.first_row_end())
        else {
            return;
        };
        let jitter_ms = self.config.cache.flush_jitter.as_millis() as u64;
        let jitter = (fnv1a(buffer.spec.rel_path.as_bytes()) % (jitter_ms + 1)) as i64;
        let after = since + self.config.cache.flush_after.as_millis() as i64 + jitter;
        let at = after.max(first_end * 1000);
        self.due.insert((at, file));
        self.due_of[file] = Some(at);
    }

    /// When the next file is due, if any.
    pub fn next_due(&self) -> Option<UnixMillis> {
        self.due.first().map(|&(at, _)| at)
    }

    /// Removes and returns the files due by `now_ms`; their batches are made
    /// when a write slot frees up (`take`).
    pub fn pop_due(&mut self, now_ms: UnixMillis) -> Vec<FileId> {
        let mut due = Vec::new();
        while let Some(&(at, file)) = self.due.first()
            && at <= now_ms
        {
            self.due.pop_first();
            self.due_of[file] = None;
            due.push(file);
        }
        due
    }

    /// `pop_due` and `take` at once: the batches of every due file.
    #[cfg(test)]
    pub fn take_due(&mut self, now_ms: UnixMillis) -> Vec<WriteBatch> {
        let due = self.pop_due(now_ms);
        due.into_iter()
            .filter_map(|file| {
                let batch = self.take(file, now_ms, false);
                if batch.is_none() {
                    self.reschedule(file);
                }
                batch
            })
            .collect()
    }

    pub fn has_rows(&self, file: FileId) -> bool {
        self.files[file].pending_rows() > 0
    }

    pub fn is_writing(&self, file: FileId) -> bool {
        self.files[file].is_writing()
    }

    /// Schedules a file that was due but had only an open row.
    pub fn reschedule(&mut self, file: FileId) {
        self.schedule(file);
    }

    /// Freezes and returns this file's rows (all of them when `force`).
    pub fn take(&mut self, file: FileId, now_ms: UnixMillis, force: bool) -> Option<WriteBatch> {
        let rows = self.files[file].take_batch(now_ms.div_euclid(1000), force)?;
        if let Some(old) = self.due_of[file].take() {
            self.due.remove(&(old, file));
        }
        Some(WriteBatch {
            file,
            spec: self.files[file].spec.clone(),
            rows,
            apply_layout: self.config.cache.apply_layout_changes,
        })
    }

    /// Files that have rows, whether or not a batch of theirs is in flight.
    pub fn files_with_rows(&self) -> impl Iterator<Item = (FileId, bool)> + '_ {
        self.files
            .iter()
            .enumerate()
            .filter(|(_, b)| b.pending_rows() > 0)
            .map(|(id, b)| (id, b.is_writing()))
    }

    /// Librrd's answer for a file's batch (see `FileBuffer::on_written`);
    /// `last_update_s` is the file's last update as librrd reports it.
    pub fn on_written(
        &mut self,
        file: FileId,
        done_upto: Option<i64>,
        last_update_s: Option<i64>,
        now_ms: UnixMillis,
    ) {
        let flush_after_ms = self.config.cache.flush_after.as_millis() as i64;
        let buffer = &mut self.files[file];
        let complete = buffer.on_written(done_upto, now_ms);
        if let Some(t) = last_update_s {
            buffer.set_written_upto(t);
        }
        if complete {
            self.failures[file] = 0;
        } else {
            // Most failures are a reader holding the file's lock: try again
            // soon, then less and less often (a full disk, a bad file).
            let n = self.failures[file].min(16);
            self.failures[file] += 1;
            let first = RETRY_AFTER.min(self.config.cache.flush_after);
            let retry_ms = first.saturating_mul(1 << n).min(RETRY_MAX).as_millis() as i64;
            // `schedule` waits flush_after from pending_since.
            buffer.pending_since_ms = Some(now_ms - flush_after_ms + retry_ms);
        }
        self.schedule(file);
    }
}

/// What restoring a snapshot did.
#[derive(Debug, Default, PartialEq)]
pub struct RestoreReport {
    pub files: usize,
    pub rows: usize,
    /// Files whose rows could not be taken back, and why.
    pub dropped: Vec<(String, usize, String)>,
}

impl Cache {
    /// The cached rows of every file that has some, for a snapshot.
    pub fn snapshot(&self, now_ms: UnixMillis, journal_seq: u64) -> Snapshot {
        Snapshot {
            taken_at_ms: now_ms,
            journal_seq,
            files: self
                .files
                .iter()
                .filter(|b| b.pending_rows() > 0)
                .map(FileBuffer::to_state)
                .collect(),
        }
    }

    /// Takes back a snapshot's rows. A file whose layout the configuration
    /// has changed since (another step, other DS) cannot take them: its rows
    /// are reported as dropped rather than written into the wrong shape.
    pub fn restore(&mut self, snapshot: &Snapshot, now_ms: UnixMillis) -> RestoreReport {
        let mut report = RestoreReport::default();
        for state in &snapshot.files {
            match self.file_for(state) {
                Ok(file) => {
                    self.files[file].restore(state, now_ms);
                    report.files += 1;
                    report.rows += self.files[file].pending_rows();
                    self.schedule(file);
                }
                Err(reason) => {
                    report
                        .dropped
                        .push((state.rel_path.clone(), state.rows.len(), reason))
                }
            }
        }
        report
    }

    fn file_for(&mut self, state: &FileState) -> Result<FileId, String> {
        let (_, series) = state.ds.first().ok_or("no data source")?;
        let slot = self
            .slot_for(series)
            .map_err(|r| format!("series {series:?} is refused now ({r})"))?;
        let spec = &self.files[slot.file].spec;
        let same = spec.rel_path == state.rel_path
            && spec.step_secs == state.step_secs
            && spec.ds.len() == state.ds.len()
            && spec
                .ds
                .iter()
                .zip(&state.ds)
                .all(|(d, (name, series))| d.name == *name && d.series == *series);
        if !same {
            let ds: Vec<&str> = spec.ds.iter().map(|d| d.name.as_str()).collect();
            return Err(format!(
                "the configuration now maps it to {} with step {}s and DS {ds:?}",
                spec.rel_path, spec.step_secs
            ));
        }
        Ok(slot.file)
    }
}

/// How soon rows a write could not take are tried again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(5);
/// The longest wait between two tries of a file that keeps failing.
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(300);

mod describe;
mod reload;
pub use reload::ReloadReport;
#[cfg(test)]
mod tests;
