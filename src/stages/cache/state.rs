//! The whole cache as plain data: series → file buffers, and (through its
//! `Scheduler`) when each file goes to librrd. Pure (time is passed in);
//! the task is a loop around it: it sends the batches `pump` returns and
//! answers the waiters the scheduler releases.
//!
//! A file is due `flush_after` (plus its fixed jitter) after its oldest
//! waiting row arrived, but never before that row's step has ended: with
//! the default five minutes, a file is written about once per five minutes
//! with five rows in one librrd call.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::buffer::FileBuffer;
use super::scheduler::{Flush, Scheduler, Waiter};
use super::snapshot::{FileState, Snapshot};
use crate::config::Config;
use crate::model::path::{fnv1a, rel_path_for_series};
use crate::model::{FileSpec, RejectReason, Sample, SeriesMeta, UnixMillis};
use crate::rrd::WriteBatch;

pub(crate) type FileId = usize;

/// Where a series' samples go.
#[derive(Debug, Clone, Copy)]
struct Slot {
    file: FileId,
    ds: usize,
}

/// A file that holds rows but was never written.
#[derive(Debug, Clone)]
pub struct Unwritten {
    pub spec: Arc<FileSpec>,
    /// The start of its first row's step.
    pub first_s: i64,
    /// When it is due to be written (`None`: being written now).
    pub due_ms: Option<UnixMillis>,
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
    /// When each file goes to librrd, and who waits for it.
    sched: Scheduler,
    /// Ids of pruned files, reused for new ones; their buffers are empty
    /// placeholders sharing `vacant_spec`.
    vacant: Vec<FileId>,
    vacant_spec: Arc<FileSpec>,
    /// Files declared in config: never pruned.
    pinned: Vec<bool>,
    /// What discovery said of each series (`describe.rs`).
    meta: HashMap<String, SeriesMeta>,
    /// Files' last updates from the index at start, for the buffers made
    /// for them later (taken out as they are).
    last_updates: HashMap<String, i64>,
    /// DS whose file holds them as another kind (gauge or counter) than
    /// the configuration now wants, by file path, with the file's type:
    /// they are written as the file holds them (`describe.rs`).
    kinds_on_disk: HashMap<String, crate::rrd::DsKinds>,
}

/// How samples come to the cache, which decides what is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// Just received: times checked against now.
    Live,
    /// From the journal at start.
    Replayed,
    /// After waiting for the clock.
    Released,
}

impl Cache {
    pub fn new(config: Arc<Config>) -> Self {
        let mut cache = Cache {
            config: config.clone(),
            files: Vec::new(),
            by_path: HashMap::new(),
            series: HashMap::new(),
            sched: Scheduler::new(WRITE_WINDOW, config.cache.flush_after),
            vacant: Vec::new(),
            vacant_spec: Arc::new(FileSpec {
                rel_path: String::new(),
                template: String::new(),
                step_secs: 1,
                ds: Vec::new(),
                rras: Vec::new().into(),
            }),
            pinned: Vec::new(),
            meta: HashMap::new(),
            last_updates: HashMap::new(),
            kinds_on_disk: HashMap::new(),
        };
        for spec in &config.files {
            let id = cache.add_file(Arc::new(spec.clone()), true);
            for (ds, d) in spec.ds.iter().enumerate() {
                cache.series.insert(d.series.clone(), Slot { file: id, ds });
            }
        }
        cache
    }

    /// The files' last updates as the index says at start (rel path →
    /// Unix seconds): what is at or before them is late before librrd is
    /// asked, and samples that waited for the clock go after them.
    pub fn know_last_updates(&mut self, mut last_updates: HashMap<String, i64>) {
        for buffer in &mut self.files {
            if let Some(t) = last_updates.remove(&buffer.spec.rel_path) {
                buffer.set_written_upto(t);
            }
        }
        self.last_updates = last_updates;
    }

    fn add_file(&mut self, spec: Arc<FileSpec>, pinned: bool) -> FileId {
        let mut buffer = FileBuffer::new(spec);
        if let Some(t) = self.last_updates.remove(&buffer.spec.rel_path) {
            buffer.set_written_upto(t);
        }
        let id = match self.vacant.pop() {
            Some(id) => {
                self.files[id] = buffer;
                self.pinned[id] = pinned;
                id
            }
            None => {
                self.files.push(buffer);
                self.pinned.push(pinned);
                self.files.len() - 1
            }
        };
        self.by_path
            .insert(self.files[id].spec.rel_path.clone(), id);
        id
    }

    /// What discovery said of each series.
    pub fn discovered(&self) -> &HashMap<String, SeriesMeta> {
        &self.meta
    }

    /// What discovery said in a previous run (before any file is made).
    pub fn know_discovered(&mut self, meta: HashMap<String, SeriesMeta>) {
        let room = self.config.limits.max_series;
        self.meta = meta.into_iter().take(room).collect();
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
                    && !self.sched.is_scheduled(id)
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
        self.ingest_as(samples, now_ms, Arrival::Live)
    }

    /// Adds samples the journal gives back at start. They passed the time
    /// checks when they were received and were acknowledged then: a long
    /// outage must not make them "too old" now.
    pub fn replay(&mut self, samples: Vec<Sample>, now_ms: UnixMillis) -> IngestOutcome {
        self.ingest_as(samples, now_ms, Arrival::Replayed)
    }

    /// Adds samples that waited for the clock to be trusted, re-timed. They
    /// were acknowledged long ago: not checked against now, and one whose
    /// step is already written (the clock was set back, or never trusted)
    /// goes into the next step rather than be refused as late.
    pub fn release(&mut self, samples: Vec<Sample>, now_ms: UnixMillis) -> IngestOutcome {
        self.ingest_as(samples, now_ms, Arrival::Released)
    }

    fn ingest_as(
        &mut self,
        samples: Vec<Sample>,
        now_ms: UnixMillis,
        arrival: Arrival,
    ) -> IngestOutcome {
        let check_times = arrival == Arrival::Live;
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
            // Older than the finest archive reaches back from now: refused,
            // and for a new series before a file is made for it.
            let too_old = |reach_ms: Option<i64>| {
                check_times && reach_ms.is_some_and(|r| s.time_ms < now_ms.saturating_sub(r))
            };
            let new_file_too_old =
                |spec: &FileSpec| too_old(spec.finest_reach_secs().map(|r| r.saturating_mul(1000)));
            let slot = match self.slot_for(&s.series, new_file_too_old) {
                Ok(slot) => slot,
                Err(reason) => {
                    outcome.rejected.push((reason, s.series));
                    continue;
                }
            };
            let buffer = &mut self.files[slot.file];
            if too_old(buffer.finest_reach_ms) {
                outcome.rejected.push((RejectReason::TooOld, s.series));
                continue;
            }
            let was_waiting = buffer.pending_since_ms.is_some();
            let added = match arrival {
                Arrival::Released => buffer.add_waited(slot.ds, s.time_ms, s.value, now_ms),
                _ => buffer.add(slot.ds, s.time_ms, s.value, now_ms),
            };
            match added {
                Ok(()) => {
                    outcome.accepted += 1;
                    // A file's first waiting row sets its due time.
                    if !was_waiting && !buffer.is_writing() {
                        let at = self.due_at(slot.file);
                        self.sched.set_due(slot.file, at);
                    }
                }
                Err(reason) => outcome.rejected.push((reason, s.series)),
            }
        }
        outcome
    }

    /// The slot of `series`, made if new unless `refuse` says its sample
    /// does not belong in the file it would get.
    fn slot_for(
        &mut self,
        series: &str,
        refuse: impl Fn(&FileSpec) -> bool,
    ) -> Result<Slot, RejectReason> {
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
        if refuse(&spec) {
            return Err(RejectReason::TooOld);
        }
        let slot = Slot {
            file: self.add_file(spec, false),
            ds: 0,
        };
        self.series.insert(series.to_owned(), slot);
        Ok(slot)
    }

    /// When `file` is due: `flush_after` plus its fixed jitter after its
    /// oldest waiting row arrived, not before that row's step has ended;
    /// `None` with nothing waiting or a batch in flight.
    fn due_at(&self, file: FileId) -> Option<UnixMillis> {
        let buffer = &self.files[file];
        if buffer.is_writing() {
            return None;
        }
        let (since, first_end) = (buffer.pending_since_ms?, buffer.first_row_end()?);
        let jitter_ms = self.config.cache.flush_jitter.as_millis() as u64;
        let jitter = (fnv1a(buffer.spec.rel_path.as_bytes()) % (jitter_ms + 1)) as i64;
        let after = since + self.config.cache.flush_after.as_millis() as i64 + jitter;
        Some(after.max(first_end * 1000))
    }

    /// The files that hold rows but have none on disk yet (no file exists,
    /// or the index did not know it), for the web UI's first minutes.
    pub fn unwritten(&self) -> Vec<Unwritten> {
        self.files
            .iter()
            .enumerate()
            .filter(|(_, b)| !b.ever_written())
            .filter_map(|(id, b)| {
                let first_end = b.first_row_end()?;
                Some(Unwritten {
                    spec: b.spec.clone(),
                    first_s: first_end - i64::from(b.spec.step_secs),
                    due_ms: self.due_at(id),
                })
            })
            .collect()
    }

    /// When the next file is due, if any.
    pub fn next_due(&self) -> Option<UnixMillis> {
        self.sched.next_due()
    }

    /// The batches to send now: files due by `now_ms` and forced ones, as
    /// far as the write window allows; and the waiters whose forced flush
    /// is done (their files had nothing to write, or all forced work is).
    pub fn pump(&mut self, now_ms: UnixMillis) -> (Vec<WriteBatch>, Vec<Waiter>) {
        self.sched.take_due(now_ms);
        let mut batches = Vec::new();
        let mut answered = Vec::new();
        while let Some((file, flush)) = {
            let files = &self.files;
            self.sched.next_write(|f| files[f].is_writing())
        } {
            match self.take(file, now_ms, flush == Flush::Forced) {
                Some(batch) => {
                    self.sched.started(file);
                    batches.push(batch);
                }
                None => {
                    answered.extend(self.sched.nothing_to_write(file, flush));
                    // Only an open row: due again once its step has ended.
                    let at = self.due_at(file);
                    self.sched.set_due(file, at);
                }
            }
        }
        answered.extend(self.sched.forcing_done());
        (batches, answered)
    }

    /// Every file's rows, now; `waiter` is answered (by `pump` or
    /// `on_written`) once librrd has answered for all of them.
    pub fn force_all(&mut self, waiter: Waiter) {
        let files: Vec<(FileId, bool)> = self.files_with_rows().collect();
        self.sched.force_all(files, waiter);
    }

    /// One file's rows ahead of every other (someone waits to draw it).
    /// Returns the waiter when there is nothing to wait for.
    pub fn force_file(&mut self, rel_path: &str, waiter: Waiter) -> Option<Waiter> {
        let Some(file) = self.file_id(rel_path) else {
            return Some(waiter);
        };
        let writing = self.files[file].is_writing();
        if !writing && self.files[file].pending_rows() == 0 {
            return Some(waiter);
        }
        self.sched.force_file(file, writing, waiter);
        None
    }

    /// Freezes and returns this file's rows (all of them when `force`).
    pub fn take(&mut self, file: FileId, now_ms: UnixMillis, force: bool) -> Option<WriteBatch> {
        let rows = self.files[file].take_batch(now_ms.div_euclid(1000), force)?;
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
    /// Returns the waiters whose forced batch this was; `pump` next.
    pub fn on_written(
        &mut self,
        file: FileId,
        done_upto: Option<i64>,
        last_update_s: Option<i64>,
        now_ms: UnixMillis,
    ) -> Vec<Waiter> {
        let buffer = &mut self.files[file];
        let complete = buffer.on_written(done_upto, now_ms);
        if let Some(t) = last_update_s {
            buffer.set_written_upto(t);
        }
        let answered = self.sched.answered(file, complete, now_ms);
        let at = self.due_at(file);
        self.sched.set_due(file, at);
        answered
    }

    /// Consecutive writes of `file` librrd could not finish.
    #[cfg(test)]
    pub fn failures(&self, file: FileId) -> u32 {
        self.sched.failures(file)
    }
}

/// What restoring a snapshot did.
#[derive(Debug, Default, PartialEq)]
pub struct RestoreReport {
    pub files: usize,
    pub rows: usize,
    /// Files whose rows could not be taken back, and why.
    pub dropped: Vec<DroppedRows>,
}

/// A file's snapshot rows that could not be taken back.
#[derive(Debug, PartialEq)]
pub struct DroppedRows {
    pub file: String,
    pub rows: usize,
    pub reason: String,
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
                    let at = self.due_at(file);
                    self.sched.set_due(file, at);
                }
                Err(reason) => report.dropped.push(DroppedRows {
                    file: state.rel_path.clone(),
                    rows: state.rows.len(),
                    reason,
                }),
            }
        }
        report
    }

    fn file_for(&mut self, state: &FileState) -> Result<FileId, String> {
        let (_, series) = state.ds.first().ok_or("no data source")?;
        let slot = self
            .slot_for(series, |_| false)
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

/// Batches in flight at most: enough to keep librrd busy while the cache
/// makes the next, few enough that rows exist once in memory.
pub(super) const WRITE_WINDOW: usize = 4;

mod describe;
mod reload;
pub use reload::{ReloadReport, Why};
#[cfg(test)]
mod tests;
