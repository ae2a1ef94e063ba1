//! The cache stage: samples in, batched rows out to the RRD thread.
//!
//! One task owns every buffer (`state::Cache`); others reach it through a
//! [`CacheHandle`]. It writes a file when that file is due, every file on
//! [`CacheHandle::flush_all`] (SIGUSR1), one file on
//! [`CacheHandle::flush_file`] (the web UI, before drawing it), and
//! everything when its input closes (shutdown), waiting for librrd's answer
//! before it returns: a row leaves memory only once librrd has it.

mod buffer;
mod handle;
mod scheduler;
pub mod snapshot;
mod state;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::clock::{Clock, ClockWatch, TrustState};
use crate::config::Config;
use crate::metrics::{Metrics, Refusals, log_refusal};
use crate::model::{HeldClock, Sample, UnixMillis};
use crate::rrd::{RrdHandle, WriteReport};

use self::handle::CacheMsg;
pub use self::handle::{CacheClosed, CacheHandle, CacheStats};
use self::scheduler::Waiter;
use self::snapshot::{Snapshot, Snapshots};
pub(crate) use self::state::Cache;
pub use self::state::{ReloadReport, RestoreReport};

/// What a previous run left: its snapshot, and the journal records after it.
#[derive(Default)]
pub struct Recovered {
    pub snapshot: Option<Snapshot>,
    pub replayed: Vec<Sample>,
    /// Records received while the clock was not trusted: they wait again.
    pub held: Vec<(HeldClock, Vec<Sample>)>,
    /// The newest time of data already written (snapshot, journal, files),
    /// as evidence against a clock that reads earlier.
    pub newest_data_ms: UnixMillis,
    /// Each file's last update, from the index (rel path → Unix seconds).
    pub last_updates: HashMap<String, i64>,
    /// The last journal record seen (covered once the cache has taken all).
    pub journal_seq: u64,
}

/// Starts the cache task with what a previous run left.
pub fn spawn(
    config: Arc<Config>,
    rrd: RrdHandle,
    metrics: Arc<Metrics>,
    clock: Clock,
    mut clock_watch: ClockWatch,
    recovered: Recovered,
) -> (CacheHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(1024);
    let (report_tx, report_rx) = mpsc::unbounded_channel();
    let mut cache = Cache::new(config.clone());
    cache.know_last_updates(recovered.last_updates);
    if let Some(snapshot) = &recovered.snapshot {
        log_restore(&cache.restore(snapshot, clock.now_ms()));
    }
    if !recovered.replayed.is_empty() {
        let outcome = cache.replay(recovered.replayed, clock.now_ms());
        info!(
            samples = outcome.accepted,
            refused = outcome.rejected.len(),
            "Journal replayed into the cache."
        );
    }
    for (held, samples) in recovered.held {
        let own_time = clock_watch.waiting.hold(held, samples);
        cache.replay(own_time, clock.now_ms());
    }
    let snapshots = (!config.cache.snapshot_every.is_zero()).then(|| {
        let journal = config
            .journal
            .as_ref()
            .map(|j| crate::journal::Release::new(&config.data_dir, j));
        Snapshots::new(
            config.snapshot_path(),
            config.cache.snapshot_every,
            journal,
            metrics.clone(),
        )
    });
    let task = CacheTask {
        journal_seq: recovered.journal_seq,
        stats_every: config.cache.stats_every,
        dead_after: config.cache.dead_after,
        snapshots,
        cache,
        rrd,
        report_tx,
        refusals: Refusals::new(metrics.clone()),
        clock_steps: crate::clock::StepDetector::new(CLOCK_STEP_TOLERANCE),
        clock_watch,
        journal_enabled: config.journal.is_some(),
        metrics,
        clock,
        waiters: HashMap::new(),
        next_waiter: 0,
    };
    let handle = tokio::spawn(task.run(rx, report_rx));
    (CacheHandle { tx }, handle)
}

fn log_restore(report: &RestoreReport) {
    info!(
        files = report.files,
        rows = report.rows,
        "Cache restored from the snapshot."
    );
    for d in &report.dropped {
        error!(
            file = d.file,
            rows = d.rows,
            reason = d.reason,
            "Snapshot rows dropped: the file's layout changed."
        );
    }
}

/// How often the wall clock is compared with the monotonic one, and the
/// difference that counts as a step (NTP slews small errors; it steps big
/// ones).
const CLOCK_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
const CLOCK_STEP_TOLERANCE: std::time::Duration = std::time::Duration::from_secs(2);

struct CacheTask {
    cache: Cache,
    /// The last journal record whose samples the cache has taken.
    journal_seq: u64,
    dead_after: std::time::Duration,
    snapshots: Option<Snapshots>,
    rrd: RrdHandle,
    report_tx: mpsc::UnboundedSender<WriteReport>,
    metrics: Arc<Metrics>,
    clock: Clock,
    /// The replies of forced flushes, by the token the scheduler holds.
    waiters: HashMap<u64, oneshot::Sender<()>>,
    next_waiter: u64,
    stats_every: std::time::Duration,
    refusals: Refusals,
    /// Rows are aligned to wall time: a step of the system clock is said.
    clock_steps: crate::clock::StepDetector,
    /// Whether the clock is trusted, and the samples that wait until it is.
    clock_watch: ClockWatch,
    /// Samples waiting for the clock at a stop stay in the journal; without
    /// one they are written with the best time there is.
    journal_enabled: bool,
}

impl CacheTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<CacheMsg>,
        mut report_rx: mpsc::UnboundedReceiver<WriteReport>,
    ) {
        let mut stats_tick = tokio::time::interval(self.stats_every);
        stats_tick.reset();
        let snapshot_every = self
            .snapshots
            .as_ref()
            .map_or(std::time::Duration::from_secs(3600), |s| s.every);
        let mut snapshot_tick = tokio::time::interval(snapshot_every);
        snapshot_tick.reset();
        // Often enough that a series is forgotten at most a quarter late.
        let prune_every = (self.dead_after / 4).clamp(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(3600),
        );
        let mut prune_tick = tokio::time::interval(prune_every);
        prune_tick.reset();
        let mut clock_tick = tokio::time::interval(CLOCK_CHECK_EVERY);
        let mut msgs = Vec::with_capacity(256);
        loop {
            let due = self.cache.next_due().map(|at| self.clock.instant_at(at));
            // Biased: librrd's answers first (they free memory and may
            // complete a flush someone waits for), then due files, then input.
            tokio::select! {
                biased;
                Some(report) = report_rx.recv() => self.on_report(report),
                _ = sleep_until_opt(due) => self.pump(),
                _ = stats_tick.tick() => self.log_stats(),
                _ = snapshot_tick.tick(), if self.snapshots.is_some() => self.save_snapshot(),
                _ = prune_tick.tick(), if !self.dead_after.is_zero() => self.prune_dead(),
                _ = clock_tick.tick() => self.watch_clock(),
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
        // Input closed: write everything, wait for librrd's answers.
        if !self.journal_enabled && !self.clock_watch.waiting.is_empty() {
            warn!(
                waiting = self.clock_watch.waiting.len(),
                "Stopping without a journal: samples waiting for the clock are written with the best time there is."
            );
            self.release_waiting();
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
        let now_ms = self.clock.now_ms();
        let waiting = self.clock_watch.waiting.len();
        if waiting > 0 {
            // As after a crash: the last snapshot and the journal, which
            // holds the waiting samples, bring everything back.
            warn!(
                waiting,
                "Samples still wait for the clock: left in the journal for the next start."
            );
        } else if let Some(snapshots) = self.snapshots.as_mut() {
            snapshots
                .save_now(self.cache.snapshot(now_ms, self.journal_seq))
                .await;
        }
        info!(pending_rows = self.cache.pending_rows(), "Cache drained.");
    }

    fn prune_dead(&mut self) {
        let paths = self.cache.prune_dead(self.clock.now_ms(), self.dead_after);
        if !paths.is_empty() {
            info!(files = paths.len(), dead_after = ?self.dead_after, "Series without samples forgotten; their files stay.");
            self.rrd.mark_stale(paths);
            self.publish_gauges();
        }
    }

    fn save_snapshot(&mut self) {
        // Samples waiting for the clock are in no snapshot: the journal
        // keeps them (a snapshot would let it forget their records).
        if !self.clock_watch.waiting.is_empty() {
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
                let Some(held) = held else {
                    return self.ingest(samples);
                };
                let own_time = self.clock_watch.waiting.hold(held, samples);
                self.ingest(own_time);
                // Held a moment before the clock was trusted: goes at once.
                if self.clock_watch.status.trusted() && !self.clock_watch.waiting.is_empty() {
                    self.release_waiting();
                }
                self.metrics
                    .clock_waiting_samples
                    .store(self.clock_watch.waiting.len() as u64, Relaxed);
            }
            CacheMsg::FlushAll(reply) => self.force_all(reply),
            CacheMsg::FlushFile(path, reply) => self.force_file(&path, reply),
            CacheMsg::Describe(updates) => {
                let report = self.cache.describe(updates);
                for kept in &report.kept {
                    warn!(
                        series = kept.name,
                        why = kept.reason,
                        "Discovery metadata not applied."
                    );
                }
            }
            CacheMsg::Latest(series, reply) => {
                let _ = reply.send(self.cache.latest(&series));
            }
            CacheMsg::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            CacheMsg::Reload(config, reply) => {
                self.dead_after = config.cache.dead_after;
                let _ = reply.send(self.cache.reload(config));
            }
        }
    }

    /// Decides again whether the clock is trusted; once it is (or once
    /// `clock.max_wait` has passed), what waited is re-timed and taken.
    fn decide_trust(&mut self) {
        let now_ms = self.clock.now_ms();
        let watch = &mut self.clock_watch;
        let before = watch.trust.state();
        let evidence = watch.evidence.read(now_ms);
        let state = watch.trust.decide(&evidence, tokio::time::Instant::now());
        // `before` may already be the distrust a step set: the status
        // says what the source was last told.
        if state != before || state.is_usable() != watch.status.trusted() {
            watch.status.set_trusted(state.is_usable());
            self.metrics
                .clock_trusted
                .store(u64::from(state.is_usable()), Relaxed);
            match state {
                TrustState::Trusted => info!("The system clock is trusted now."),
                TrustState::GaveUp => {
                    self.metrics.clock_gave_up.store(1, Relaxed);
                    warn!(waited = ?watch.trust.max_wait(), "The system clock was never trusted: writing with the best time there is (clock.max_wait).");
                }
                TrustState::Untrusted(why) => info!(?why, "The system clock is not trusted."),
            }
        }
        if state.is_usable() && !self.clock_watch.waiting.is_empty() {
            self.release_waiting();
        }
    }

    /// Re-times every waiting sample and takes it.
    fn release_waiting(&mut self) {
        let now_ms = self.clock.now_ms();
        let watch = &mut self.clock_watch;
        let (samples, moved_ms) =
            watch
                .waiting
                .release(watch.status.boot(), now_ms, self.clock.offset_ms(now_ms));
        info!(
            samples = samples.len(),
            moved_s = moved_ms as f64 / 1000.0,
            "Samples that waited for the clock taken, at their re-timed times."
        );
        self.metrics.clock_waiting_samples.store(0, Relaxed);
        let outcome = self.cache.release(samples, now_ms);
        self.count(outcome, now_ms);
    }

    /// Says once when the system clock was stepped, with how far (set
    /// back: samples wait until it reads again what it read before); then
    /// decides again whether it is trusted.
    fn watch_clock(&mut self) {
        let now_ms = self.clock.now_ms();
        if let Some(step_ms) = self
            .clock_steps
            .observe(now_ms, tokio::time::Instant::now())
        {
            self.metrics.clock_steps.fetch_add(1, Relaxed);
            self.metrics.clock_last_step_ms.store(step_ms, Relaxed);
            if step_ms < 0 {
                let before_ms = now_ms - step_ms;
                warn!(
                    step_s = step_ms as f64 / 1000.0,
                    "The system clock was set back: samples without a time of their own wait until it reads again what it read before."
                );
                self.clock_watch
                    .trust
                    .set_back(before_ms, tokio::time::Instant::now());
            } else {
                warn!(
                    step_s = step_ms as f64 / 1000.0,
                    "The system clock was stepped forward."
                );
            }
        }
        self.decide_trust();
    }

    fn ingest(&mut self, samples: Vec<Sample>) {
        let now_ms = self.clock.now_ms();
        let outcome = self.cache.ingest(samples, now_ms);
        self.count(outcome, now_ms);
    }

    /// Counts and logs what the cache took and refused.
    fn count(&mut self, outcome: state::IngestOutcome, now_ms: UnixMillis) {
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
        self.publish_gauges();
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
        let done =
            self.cache
                .on_written(report.file, report.done_upto, report.last_update_s, now_ms);
        self.answer(done);
        self.pump();
        self.publish_gauges();
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

    fn publish_gauges(&self) {
        self.metrics
            .files
            .store(self.cache.file_count() as u64, Relaxed);
        self.metrics
            .series
            .store(self.cache.series_count() as u64, Relaxed);
    }

    fn log_stats(&self) {
        let s = self.stats();
        self.metrics
            .pending_rows
            .store(s.pending_rows as u64, Relaxed);
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

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
