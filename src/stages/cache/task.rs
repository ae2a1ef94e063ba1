//! The cache task: a loop around the pure [`Cache`] that owns it. It takes
//! messages from the handles, sends the batches the cache says are due to
//! the RRD thread, answers flushes once librrd has answered, and runs the
//! timers: stats, snapshots, pruning silent series, and the clock check
//! (whose decisions it obeys: `clock::ClockWatch`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::discovered::{self, DiscoveredFile};
use super::handle::{CacheMsg, CacheStats};
use super::scheduler::Waiter;
use super::snapshot::Snapshots;
use super::state::{Cache, IngestOutcome, ReloadReport};
use crate::clock::{self, Clock, ClockWatch};
use crate::metrics::{Metrics, Refusals, log_refusal};
use crate::model::{Sample, UnixMillis};
use crate::rrd::{RrdHandle, WriteReport};

pub(super) struct CacheTask {
    pub cache: Cache,
    /// The last journal record whose samples the cache has taken.
    pub journal_seq: u64,
    pub dead_after: Duration,
    pub snapshots: Option<Snapshots>,
    pub rrd: RrdHandle,
    pub report_tx: mpsc::UnboundedSender<WriteReport>,
    pub metrics: Arc<Metrics>,
    pub clock: Clock,
    /// The replies of forced flushes, by the token the scheduler holds.
    pub waiters: HashMap<u64, oneshot::Sender<()>>,
    pub next_waiter: u64,
    pub stats_every: Duration,
    pub refusals: Refusals,
    /// Whether the clock is trusted, and the samples that wait until it is.
    pub clock_watch: ClockWatch,
    /// Samples waiting for the clock at a stop stay in the journal; without
    /// one they are written with the best time there is.
    pub journal_enabled: bool,
    /// Where what discovery said is kept across restarts.
    pub discovered: DiscoveredFile,
}

/// A timer that first fires one period from now.
fn every(period: Duration) -> tokio::time::Interval {
    let mut interval = tokio::time::interval(period);
    interval.reset();
    interval
}

impl CacheTask {
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<CacheMsg>,
        mut report_rx: mpsc::UnboundedReceiver<WriteReport>,
    ) {
        let mut stats_tick = every(self.stats_every);
        let snapshot_every = self
            .snapshots
            .as_ref()
            .map_or(Duration::from_secs(3600), |s| s.every);
        let mut snapshot_tick = every(snapshot_every);
        // Often enough that a series is forgotten at most a quarter late.
        let prune_every =
            (self.dead_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600));
        let mut prune_tick = every(prune_every);
        // The first check at once: samples recovered from the journal may
        // wait for a clock that is trusted already.
        let mut clock_tick = tokio::time::interval(clock::CHECK_EVERY);
        let mut discovered_tick = every(discovered::WRITE_AFTER);
        let mut msgs = Vec::with_capacity(256);
        loop {
            let due = self.cache.next_due().map(|at| self.clock.instant_at(at));
            // Biased: librrd's answers first (they free memory and may
            // complete a flush someone waits for), then due files, then input.
            tokio::select! {
                biased;
                Some(report) = report_rx.recv() => self.on_report(report),
                _ = clock::sleep_until(due) => self.pump(),
                _ = stats_tick.tick() => self.log_stats(),
                _ = snapshot_tick.tick(), if self.snapshots.is_some() => self.save_snapshot(),
                _ = prune_tick.tick(), if !self.dead_after.is_zero() => self.prune_dead(),
                _ = clock_tick.tick() => {
                    let released = self.clock_watch.check();
                    self.release(released);
                }
                _ = discovered_tick.tick(), if self.discovered.is_dirty() => {
                    self.discovered.save(self.cache.discovered());
                }
                n = rx.recv_many(&mut msgs, 256) => {
                    if n == 0 {
                        break;
                    }
                    for msg in msgs.drain(..) {
                        self.handle(msg);
                    }
                }
            }
        }
        self.drain(report_rx).await;
    }

    /// The input closed: writes everything, waits for librrd's answers,
    /// and writes the last snapshot.
    async fn drain(mut self, mut report_rx: mpsc::UnboundedReceiver<WriteReport>) {
        if !self.journal_enabled {
            let released = self.clock_watch.release_at_stop();
            self.release(released);
        }
        let (done_tx, done_rx) = oneshot::channel();
        self.force_all(done_tx);
        let mut done_rx = std::pin::pin!(done_rx);
        loop {
            tokio::select! {
                _ = &mut done_rx => break,
                report = report_rx.recv() => match report {
                    Some(r) => self.on_report(r),
                    None => break,
                },
            }
        }
        self.log_stats();
        // The last snapshot holds what could not be written (usually
        // nothing): an older one must not bring back rows now on disk.
        let waiting = self.clock_watch.waiting();
        if waiting > 0 {
            // As after a crash: the last snapshot and the journal, which
            // holds the waiting samples, bring everything back.
            warn!(
                waiting,
                "Samples still wait for the clock: left in the journal for the next start."
            );
        } else if let Some(snapshots) = self.snapshots.as_mut() {
            let now_ms = self.clock.now_ms();
            snapshots
                .save_now(self.cache.snapshot(now_ms, self.journal_seq))
                .await;
        }
        self.discovered.save_now(self.cache.discovered()).await;
        info!(pending_rows = self.cache.pending_rows(), "Cache drained.");
    }

    fn prune_dead(&mut self) {
        let paths = self.cache.prune_dead(self.clock.now_ms(), self.dead_after);
        if !paths.is_empty() {
            info!(files = paths.len(), dead_after = ?self.dead_after, "Series without samples forgotten; their files stay.");
            self.rrd.mark_stale(paths);
        }
    }

    fn save_snapshot(&mut self) {
        // Samples waiting for the clock are in no snapshot: the journal
        // keeps them (a snapshot would let it forget their records).
        if self.clock_watch.waiting() > 0 {
            return;
        }
        let Some(snapshots) = self.snapshots.as_mut() else {
            return;
        };
        let journal_bytes = self.metrics.journal_bytes.load(Relaxed);
        if !snapshots.due(
            journal_bytes,
            self.cache.pending_rows(),
            self.cache.file_count(),
        ) {
            return;
        }
        snapshots.save(
            self.cache.snapshot(self.clock.now_ms(), self.journal_seq),
            journal_bytes,
        );
    }

    fn handle(&mut self, msg: CacheMsg) {
        match msg {
            CacheMsg::Samples(seq, samples, held) => {
                self.journal_seq = self.journal_seq.max(seq);
                match held {
                    None => self.ingest(samples),
                    Some(held) => {
                        let (own_time, released) = self.clock_watch.hold(held, samples);
                        self.ingest(own_time);
                        self.release(released);
                    }
                }
            }
            CacheMsg::FlushAll(reply) => self.force_all(reply),
            CacheMsg::FlushFile(path, reply) => self.force_file(&path, reply),
            CacheMsg::Describe(updates) => {
                let report = self.cache.describe(updates);
                self.described(report);
            }
            CacheMsg::GuessState(series, device_class) => {
                if let Some(report) = self.cache.guess_state(series, device_class) {
                    self.described(report);
                }
            }
            CacheMsg::Latest(series, reply) => {
                let _ = reply.send(self.cache.latest(&series));
            }
            CacheMsg::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            CacheMsg::Unwritten(reply) => {
                let _ = reply.send(self.cache.unwritten());
            }
            CacheMsg::FileKnown(rel_path, reply) => {
                let _ = reply.send(self.cache.file_id(&rel_path).is_some());
            }
            CacheMsg::Reload(config, reply) => {
                self.dead_after = config.cache.dead_after;
                let report = self.cache.reload(config);
                log_reload(&report);
                let _ = reply.send(report);
            }
        }
    }

    /// New metadata was taken: `discovered.json` follows, and what could
    /// not be applied is said.
    fn described(&mut self, report: ReloadReport) {
        self.discovered.changed();
        for kept in &report.kept {
            warn!(
                series = kept.name,
                why = kept.reason,
                "Discovery metadata not applied."
            );
        }
    }

    fn ingest(&mut self, samples: Vec<Sample>) {
        let now_ms = self.clock.now_ms();
        let outcome = self.cache.ingest(samples, now_ms);
        self.count(outcome, now_ms);
    }

    /// Takes samples that waited for the clock, re-timed.
    pub fn release(&mut self, released: Vec<Sample>) {
        if released.is_empty() {
            return;
        }
        let now_ms = self.clock.now_ms();
        let outcome = self.cache.release(released, now_ms);
        self.count(outcome, now_ms);
    }

    /// Counts and logs what the cache took and refused.
    fn count(&mut self, outcome: IngestOutcome, now_ms: UnixMillis) {
        debug!(
            accepted = outcome.accepted,
            refused = outcome.rejected.len(),
            "Samples taken."
        );
        self.metrics
            .samples_accepted
            .fetch_add(outcome.accepted, Relaxed);
        self.metrics
            .samples_ignored
            .fetch_add(outcome.ignored, Relaxed);
        for (reason, series) in outcome.rejected {
            log_refusal!(
                self.refusals.refuse(reason, now_ms),
                %reason,
                series,
                "Sample refused by the cache."
            );
        }
    }

    /// Sends what the cache says is to be written now, and answers the
    /// flushes it says are done.
    fn pump(&mut self) {
        let (batches, done) = self.cache.pump(self.clock.now_ms());
        for batch in batches {
            self.rrd.write(batch, self.report_tx.clone());
        }
        self.answer(done);
    }

    fn on_report(&mut self, report: WriteReport) {
        let now_ms = self.clock.now_ms();
        if !report.kept_kinds.is_empty() {
            let kinds: Vec<String> = report
                .kept_kinds
                .iter()
                .map(|(ds, t)| format!("{ds}:{}", t.as_rrd_str()))
                .collect();
            if let Some(file) = self
                .cache
                .keep_kinds_on_disk(report.file, report.kept_kinds)
            {
                info!(
                    file,
                    kept = kinds.join(" "),
                    "RRD file keeps its DS as the kind it was made with (a gauge's readings are \
                     never re-read as a counter's rates); written as such."
                );
            }
        }
        let done =
            self.cache
                .on_written(report.file, report.done_upto, report.last_update_s, now_ms);
        self.answer(done);
        self.pump();
    }

    /// A token for `reply`, answered when the scheduler releases it.
    fn waiter(&mut self, reply: oneshot::Sender<()>) -> Waiter {
        self.next_waiter += 1;
        self.waiters.insert(self.next_waiter, reply);
        Waiter(self.next_waiter)
    }

    fn answer(&mut self, done: Vec<Waiter>) {
        for Waiter(id) in done {
            if let Some(reply) = self.waiters.remove(&id) {
                let _ = reply.send(());
            }
        }
    }

    /// Queues every file's rows for writing now; `reply` is answered once
    /// librrd has answered for all of them.
    fn force_all(&mut self, reply: oneshot::Sender<()>) {
        let waiter = self.waiter(reply);
        self.cache.force_all(waiter);
        self.pump();
    }

    /// Queues one file's rows ahead of every other (someone is waiting to
    /// draw it); `reply` is answered once librrd has answered for them.
    fn force_file(&mut self, rel_path: &str, reply: oneshot::Sender<()>) {
        let waiter = self.waiter(reply);
        if let Some(nothing_to_wait_for) = self.cache.force_file(rel_path, waiter) {
            self.answer(vec![nothing_to_wait_for]);
            return;
        }
        self.pump();
    }

    fn stats(&self) -> CacheStats {
        CacheStats {
            files: self.cache.file_count(),
            series: self.cache.series_count(),
            pending_rows: self.cache.pending_rows(),
        }
    }

    fn log_stats(&self) {
        let s = self.stats();
        let m = &self.metrics;
        info!(
            files = s.files,
            series = s.series,
            pending_rows = s.pending_rows,
            messages = m.messages_received.load(Relaxed),
            samples = m.samples_accepted.load(Relaxed),
            rejected = m.rejected_total(),
            rows_written = m.rows_written.load(Relaxed),
            "Cache status."
        );
    }
}

/// What a reload did to each file, for the operator.
fn log_reload(report: &ReloadReport) {
    for kept in &report.kept {
        warn!(
            file = kept.name,
            why = kept.reason,
            "File keeps its layout."
        );
    }
    for relayout in &report.relayout {
        info!(
            file = relayout.name,
            change = relayout.reason,
            "File takes its new layout at its next write, history kept."
        );
    }
    info!(
        added_files = report.added,
        updated_files = report.updated,
        "Configuration reloaded."
    );
}
