//! The RRD thread's loop: creates files on first use, writes each batch in
//! one librrd update, keeps the index, and draws and exports for the web UI
//! between writes (librrd's graph code must never run on two threads).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

use tokio::sync::watch;

use super::index::{Index, IndexWrite};
use super::plan::{UpdatePlan, plan_updates};
use super::read::ReadError;
use super::{IndexView, RrdCommand, WriteBatch, WriteReport, ffi};
use crate::metrics::Metrics;
use crate::model::{DsType, FileSpec};

/// How soon the index follows a change: a new file is listed within a
/// second, other changes reach the web UI within ten (rewriting the index
/// for every batch would cost more than the batch).
const INDEX_NEW_FILE: Duration = Duration::from_secs(1);
const INDEX_EVERY: Duration = Duration::from_secs(10);
/// Last updates alone reach `index.json` at most this often (and at stop):
/// the files hold them anyway, and on an SD card rewriting the index after
/// every flush cost as much as a tenth of the RRD updates themselves.
const INDEX_LAST_UPDATES_EVERY: Duration = Duration::from_secs(600);

pub(super) struct Worker {
    data_dir: PathBuf,
    /// Last update of each file this thread has opened, `None` if the file
    /// does not exist yet.
    last_update: HashMap<String, Option<i64>>,
    index: Index,
    metrics: Arc<Metrics>,
    /// When the index must be published (and its listing written), if it
    /// changed.
    index_due: Option<Instant>,
    /// When `index.json` was last written (or its write last failed).
    index_written_at: Instant,
    /// How far ahead of the clock a file's last update may be before it is
    /// reported as damaged by a wrong time (`limits.max_future`).
    pub max_future_s: i64,
    /// Files reported so: their refused rows are counted, not logged again.
    in_future: HashSet<String>,
    /// The spec each file was last checked against: another one (a reload)
    /// means checking it again.
    checked: HashMap<String, Arc<FileSpec>>,
    /// Where the index is published for the web UI.
    index_tx: watch::Sender<IndexView>,
    /// Files written, and directories files were created in, since the
    /// last [`RrdCommand::Sync`]: what it fsyncs.
    unsynced: std::collections::BTreeSet<PathBuf>,
}

/// Why a batch could not be written at all.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("cannot read {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error(
        "{path} has {found}, the configuration wants {wanted}: move the file away or fix the configuration"
    )]
    Layout {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("cannot create {path}: {reason}")]
    Create { path: PathBuf, reason: String },
    #[error("cannot update {path}: {reason}")]
    Update { path: PathBuf, reason: String },
    #[error("cannot bring {path} to its configured layout: {reason}")]
    Migrate { path: PathBuf, reason: String },
}

/// Each DS's newest known value among `rows`, by DS name.
fn last_written<'a>(
    spec: &'a FileSpec,
    rows: &'a [crate::model::Row],
) -> impl Iterator<Item = (&'a str, Option<f64>)> {
    spec.ds.iter().enumerate().map(|(i, d)| {
        let newest = rows
            .iter()
            .rev()
            .find_map(|r| r.values.get(i).copied().flatten());
        (d.name.as_str(), newest)
    })
}

impl Worker {
    pub fn new(
        data_dir: PathBuf,
        metrics: Arc<Metrics>,
        index_tx: watch::Sender<IndexView>,
    ) -> Self {
        let (index, problem) = Index::load(&data_dir);
        if let Some(problem) = problem {
            warn!(
                problem,
                "Index unreadable; rebuilding it as files are written."
            );
        }
        let worker = Worker {
            data_dir,
            last_update: HashMap::new(),
            index,
            metrics,
            index_due: None,
            index_written_at: Instant::now(),
            max_future_s: 300,
            in_future: HashSet::new(),
            checked: HashMap::new(),
            index_tx,
            unsynced: Default::default(),
        };
        // Published before the thread runs: the start reads the files' last
        // updates from it (clock evidence, late samples).
        worker.publish_index();
        worker
    }

    pub fn run(mut self, rx: Receiver<RrdCommand>) {
        self.read_last_values();
        loop {
            let wait = self.index_wait();
            match rx.recv_timeout(wait) {
                Ok(RrdCommand::Write { batch, reply }) => {
                    let report = self.write(&batch);
                    let _ = reply.send(report);
                }
                Ok(RrdCommand::MarkStale(paths)) => {
                    for path in &paths {
                        self.index.mark_stale(path);
                    }
                    if self.index.is_dirty() {
                        let due = Instant::now() + INDEX_EVERY;
                        self.index_due = Some(self.index_due.map_or(due, |d| d.min(due)));
                    }
                }
                Ok(RrdCommand::Graph { request, reply }) => {
                    let _ = reply.send(self.graph(&request));
                }
                Ok(RrdCommand::Xport { request, reply }) => {
                    let _ = reply.send(self.xport(&request));
                }
                Ok(RrdCommand::MeterArchives { request, reply }) => {
                    let _ = reply.send(self.meter_archives(&request));
                }
                Ok(RrdCommand::Bars { request, reply }) => {
                    let _ = reply.send(self.bars(&request));
                }
                Ok(RrdCommand::Copy { rel_path, reply }) => {
                    let path = self.file_path(&rel_path);
                    let _ = reply.send(std::fs::read(&path).map_err(|e| {
                        if e.kind() == std::io::ErrorKind::NotFound {
                            ReadError::NotFound(rel_path)
                        } else {
                            ReadError::Librrd {
                                path: path.display().to_string(),
                                reason: e.to_string(),
                            }
                        }
                    }));
                }
                Ok(RrdCommand::Sync(reply)) => {
                    let _ = reply.send(self.sync_written());
                }
                Ok(RrdCommand::Ping(reply)) => {
                    let _ = reply.send(());
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if self.index_due.is_some_and(|due| due <= now) {
                self.publish_index();
                self.index_due = None;
                self.write_index(IndexWrite::Listing);
            }
            if self.index.is_dirty() && self.index_written_at + INDEX_LAST_UPDATES_EVERY <= now {
                self.write_index(IndexWrite::Everything);
            }
        }
        self.publish_index();
        self.write_index(IndexWrite::Everything);
        info!(files = self.index.len(), "RRD thread stopped.");
    }

    /// How long the loop may wait for a command before the index is due.
    fn index_wait(&self) -> Duration {
        let mut due = self.index_due;
        if self.index.is_dirty() {
            let updates_due = self.index_written_at + INDEX_LAST_UPDATES_EVERY;
            due = Some(due.map_or(updates_due, |d| d.min(updates_due)));
        }
        due.map_or(INDEX_EVERY, |due| {
            due.saturating_duration_since(Instant::now())
        })
    }

    fn write_index(&mut self, what: IndexWrite) {
        match self.index.write(&self.data_dir, what) {
            Ok(0) => {}
            Ok(bytes) => {
                self.metrics.index_bytes.fetch_add(bytes, Relaxed);
                self.index_written_at = Instant::now();
            }
            Err(e) => {
                // Tried again with the next change, or in ten minutes.
                self.index_written_at = Instant::now();
                error!(dir = %self.data_dir.display(), error = %e, "Cannot write the index files.");
            }
        }
    }

    fn publish_index(&self) {
        self.index_tx.send_replace(Arc::new(self.index.entries()));
    }

    /// Each file's last values, read once at start (then kept as batches
    /// are written): a sensor that reports every hour shows its value
    /// after a restart, not "—" for an hour.
    fn read_last_values(&mut self) {
        let started = Instant::now();
        let mut read = 0;
        for rel_path in self.index.paths() {
            match ffi::last_values(&self.file_path(&rel_path)) {
                Ok(values) => {
                    let named = values.iter().map(|(name, v)| (name.as_str(), *v));
                    self.index.set_last_values(&rel_path, named);
                    read += 1;
                }
                Err(e) => debug!(file = rel_path, error = %e, "Last values not read."),
            }
        }
        if read > 0 {
            info!(files = read, took = ?started.elapsed(), "Last values read from the files.");
            self.publish_index();
        }
    }

    /// fsyncs every file written, and every directory a file was created
    /// in, since the last call; how many files. A file that is gone since
    /// (renamed away by a migration, which syncs its own) is skipped.
    pub(super) fn sync_written(&mut self) -> std::io::Result<usize> {
        let mut files = 0;
        for path in std::mem::take(&mut self.unsynced) {
            let synced = std::fs::File::open(&path).and_then(|f| {
                if f.metadata()?.is_dir() {
                    f.sync_all()
                } else {
                    files += 1;
                    f.sync_data()
                }
            });
            match synced {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    // Kept for the next call: nothing may be forgotten
                    // before it is on disk.
                    self.unsynced.insert(path.clone());
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("fsync {}: {e}", path.display()),
                    ));
                }
                Ok(()) => {}
            }
        }
        Ok(files)
    }

    fn file_path(&self, rel_path: &str) -> PathBuf {
        self.data_dir.join(format!("{rel_path}.rrd"))
    }

    /// Records a file in the index and schedules the index's rewrite.
    fn index_record(&mut self, spec: &FileSpec, last_update: Option<i64>) {
        let new = self.index.record(spec, last_update);
        if self.index.is_dirty() {
            let due = Instant::now() + if new { INDEX_NEW_FILE } else { INDEX_EVERY };
            self.index_due = Some(self.index_due.map_or(due, |d| d.min(due)));
        }
    }

    fn write(&mut self, batch: &WriteBatch) -> WriteReport {
        let spec = &batch.spec;
        let path = self.data_dir.join(format!("{}.rrd", spec.rel_path));
        let mut report = WriteReport {
            file: batch.file,
            done_upto: None,
            last_update_s: None,
            kept_kinds: Vec::new(),
        };
        let Some(batch_end) = batch.rows.last().map(|r| r.time_s) else {
            return report;
        };
        let last = match self.known_last_update(spec, &path, batch.apply_layout) {
            Ok((last, kept_kinds)) => {
                report.kept_kinds = kept_kinds;
                last
            }
            Err(e) => {
                self.failed(&e, batch.rows.len());
                return report;
            }
        };
        let step = spec.step_secs as i64;
        let plan = plan_updates(&batch.rows, last, step, spec.min_heartbeat_secs() as i64);
        if !plan.stale.is_empty() {
            self.metrics
                .rows_skipped
                .fetch_add(plan.stale.len() as u64, Relaxed);
        }
        if !plan.stale.is_empty() && !self.in_future.contains(&spec.rel_path) {
            warn!(
                file = spec.rel_path,
                rows = plan.stale.len(),
                first = plan.stale[0],
                last_update = last,
                "Rows not newer than the file's last update dropped."
            );
        }
        report.last_update_s = last;
        let Some(first_t) = plan.updates.first().map(|u| u.time()) else {
            report.done_upto = Some(batch_end);
            return report;
        };
        let created = last.is_none();
        if created && let Err(e) = self.create(spec, &path, first_t - step) {
            self.failed(&e, batch.rows.len());
            return report;
        }
        let started = Instant::now();
        let (done, error) = self.update(spec, &path, &plan);
        self.unsynced.insert(path.clone());
        self.metrics.flushes.fetch_add(1, Relaxed);
        self.metrics
            .flush_micros
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        match error {
            None => {
                let new_last = plan.updates.last().map_or(first_t, |u| u.time());
                report.done_upto = Some(batch_end);
                report.last_update_s = Some(new_last);
                self.last_update
                    .insert(spec.rel_path.clone(), Some(new_last));
                self.index_record(spec, Some(new_last));
                self.index
                    .set_last_values(&spec.rel_path, last_written(spec, &batch.rows));
                if created {
                    self.index.set_since(&spec.rel_path, first_t - step);
                }
            }
            Some(e) => {
                self.failed(&e, batch.rows.len());
                report.done_upto = done;
                report.last_update_s = None;
                // What librrd wrote before failing is read again next time.
                self.last_update.remove(&spec.rel_path);
            }
        }
        report
    }

    /// Logs a batch librrd could not (fully) take; its rows stay cached.
    fn failed(&self, e: &FileError, rows: usize) {
        self.metrics.rrd_update_errors.fetch_add(1, Relaxed);
        if e.is_busy() {
            // Another process reading the file holds its lock: routine.
            warn!(error = %e, rows, "RRD file busy; rows kept for a retry.");
        } else {
            error!(error = %e, rows, "RRD file not written; rows kept for a retry.");
        }
    }

    /// The file's last update, reading it from disk the first time and
    /// whenever the cache's spec for it changed (a reload): then, with
    /// `apply_layout`, the file is first brought to the spec's layout.
    /// Also, when it was read, the DS it keeps as another kind than the
    /// spec's.
    fn known_last_update(
        &mut self,
        spec: &Arc<FileSpec>,
        path: &Path,
        apply_layout: bool,
    ) -> Result<(Option<i64>, super::DsKinds), FileError> {
        let checked = self
            .checked
            .get(&spec.rel_path)
            .is_some_and(|c| Arc::ptr_eq(c, spec));
        if checked && let Some(&last) = self.last_update.get(&spec.rel_path) {
            return Ok((last, Vec::new()));
        }
        if apply_layout && path.exists() {
            self.apply_layout(spec, path)?;
        }
        let (last, types) = if path.exists() {
            let (last, types) = read_and_check(spec, path)?;
            (Some(last), types)
        } else {
            (None, Vec::new())
        };
        self.checked.insert(spec.rel_path.clone(), spec.clone());
        let now_s = chrono::Utc::now().timestamp();
        if let Some(last) = last.filter(|&l| l > now_s.saturating_add(self.max_future_s)) {
            // Said once: the file is read once a run, and its refused rows
            // are then counted without a word each.
            self.in_future.insert(spec.rel_path.clone());
            let at = chrono::DateTime::from_timestamp(last, 0)
                .map_or(last.to_string(), |t| t.to_rfc3339());
            error!(
                file = %path.display(),
                last_update = at,
                ahead_s = last - now_s,
                repair = format!("mv '{0}' '{0}.future'", path.display()),
                "RRD file's last update is in the future (a sample from a wrong clock, or another \
                 tool): librrd refuses every update until then, so its samples are refused as late. \
                 Its archives no longer hold the time before that jump. Move it aside to start a \
                 new file (the repair command), or wait."
            );
        }
        self.last_update.insert(spec.rel_path.clone(), last);
        if last.is_some() {
            self.index_record(spec, last);
            self.index.set_ds_types(&spec.rel_path, &types);
        }
        let kept_kinds = types
            .into_iter()
            .filter(|(name, t)| {
                spec.ds.iter().any(|d| {
                    &d.name == name && (d.ds_type == DsType::Gauge) != (*t == DsType::Gauge)
                })
            })
            .collect();
        Ok((last, kept_kinds))
    }

    /// Brings the file to `spec`'s layout, history kept
    /// (`cache.apply_layout_changes`): here, on the RRD thread, no update
    /// can come between.
    fn apply_layout(&mut self, spec: &FileSpec, path: &Path) -> Result<(), FileError> {
        let migrated = super::migrate::migrate_file(path, spec, false).map_err(|reason| {
            FileError::Migrate {
                path: path.to_owned(),
                reason,
            }
        })?;
        if migrated.change != super::layout::Change::None {
            info!(
                file = spec.rel_path,
                change = %migrated.change,
                backup = migrated.backup.as_ref().map(|b| b.display().to_string()),
                "RRD file brought to its configured layout."
            );
        }
        Ok(())
    }

    fn create(&mut self, spec: &FileSpec, path: &Path, start_s: i64) -> Result<(), FileError> {
        let err = |reason: String| FileError::Create {
            path: path.to_owned(),
            reason,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
        }
        ffi::create(path, spec.step_secs, start_s, &spec.create_args(), None).map_err(err)?;
        // Its name, and those of directories made for it, are entries of
        // the directories above: they must reach the disk too.
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| d.starts_with(&self.data_dir)) {
            self.unsynced.insert(d.to_owned());
            dir = d.parent();
        }
        self.metrics.files_created.fetch_add(1, Relaxed);
        info!(
            file = spec.rel_path,
            template = spec.template,
            "RRD file created."
        );
        Ok(())
    }

    /// One librrd update for the whole plan; if librrd refuses it, row by
    /// row from what the file already has, dropping a row alone only when
    /// librrd refuses that row itself. A file-level error (lock, I/O) stops
    /// there. Returns the time up to which every update is done, and the
    /// error that stopped it, if any.
    fn update(
        &mut self,
        spec: &FileSpec,
        path: &Path,
        plan: &UpdatePlan,
    ) -> (Option<i64>, Option<FileError>) {
        let ds_names = spec
            .ds
            .iter()
            .map(|d| d.name.as_str())
            .collect::<Vec<_>>()
            .join(":");
        self.metrics.rrd_updates.fetch_add(1, Relaxed);
        let last_t = plan.updates.last().map(|u| u.time());
        let first = match ffi::update(path, &ds_names, &plan.updates) {
            Ok(()) => {
                self.metrics
                    .rows_written
                    .fetch_add(plan.updates.len() as u64, Relaxed);
                debug!(
                    file = spec.rel_path,
                    rows = plan.updates.len(),
                    "RRD file updated."
                );
                return (last_t, None);
            }
            Err(e) => e,
        };
        let failure = |reason: String| FileError::Update {
            path: path.to_owned(),
            reason,
        };
        if !is_row_error(&first) {
            return (None, Some(failure(first)));
        }
        let on_disk = match read_and_check(spec, path) {
            Ok((t, _)) => t,
            Err(e) => return (None, Some(e)),
        };
        let mut done = Some(on_disk);
        for item in plan.updates.iter().filter(|u| u.time() > on_disk) {
            match ffi::update(path, &ds_names, std::slice::from_ref(item)) {
                Ok(()) => self.metrics.rows_written.fetch_add(1, Relaxed),
                Err(e) if is_row_error(&e) => {
                    warn!(
                        file = spec.rel_path,
                        time = item.time(),
                        error = e,
                        "Row refused by librrd; dropped."
                    );
                    self.metrics.rows_skipped.fetch_add(1, Relaxed)
                }
                Err(e) => return (done, Some(failure(e))),
            };
            done = Some(item.time());
        }
        (done, None)
    }
}

/// Whether librrd refused an update for something in the row itself (its
/// time or values), as opposed to the file (lock, I/O, permissions): only
/// such a row may be dropped without the rest of its batch. COUNTER,
/// DERIVE and ABSOLUTE take integers only ("not a simple signed integer:
/// '36.62'"): such a row would be refused at every retry, for ever.
fn is_row_error(message: &str) -> bool {
    [
        "illegal attempt to update",
        "data source readings",
        "converting",
        "not a simple",
    ]
    .iter()
    .any(|m| message.contains(m))
}

impl FileError {
    fn is_busy(&self) -> bool {
        matches!(self, FileError::Update { reason, .. } | FileError::Open { reason, .. } if reason.contains("could not lock"))
    }
}

/// Reads an existing file's last update, and checks that its step and DS
/// names are the ones the spec wants: writing other data into a file made
/// for something else would silently corrupt it.
/// The file's last update and its DS types, once its step and DS names
/// are checked against `spec`.
fn read_and_check(spec: &FileSpec, path: &Path) -> Result<(i64, super::DsKinds), FileError> {
    let info = ffi::info(path).map_err(|reason| FileError::Open {
        path: path.to_owned(),
        reason,
    })?;
    let count = |key: &str| info.get(key).cloned().and_then(|v| v.into_count());
    let step = count("step");
    let mut found: Vec<&str> = info
        .keys()
        .filter_map(|k| k.strip_prefix("ds[")?.strip_suffix("].type"))
        .collect();
    found.sort_unstable();
    let mut wanted: Vec<&str> = spec.ds.iter().map(|d| d.name.as_str()).collect();
    wanted.sort_unstable();
    if step != Some(spec.step_secs as u64) || found != wanted {
        return Err(FileError::Layout {
            path: path.to_owned(),
            found: format!("step {step:?} and DS {found:?}"),
            wanted: format!("step {} and DS {wanted:?}", spec.step_secs),
        });
    }
    let types = found
        .iter()
        .filter_map(|name| {
            let t = info
                .get(&format!("ds[{name}].type"))
                .cloned()?
                .into_string()?;
            Some(((*name).to_owned(), DsType::from_rrd_str(&t)?))
        })
        .collect();
    let last = count("last_update")
        .map(|t| t as i64)
        .ok_or_else(|| FileError::Open {
            path: path.to_owned(),
            reason: "no last_update in rrd info".into(),
        })?;
    Ok((last, types))
}

mod reads;
#[cfg(test)]
mod tests;
