//! The cache stage: samples in, batched rows out to the RRD thread.
//!
//! One task owns every buffer (`state::Cache`); others reach it through a
//! [`CacheHandle`]. It writes a file when that file is due, every file on
//! [`CacheHandle::flush_all`] (SIGUSR1), one file on
//! [`CacheHandle::flush_file`] (the web UI, before drawing it), and
//! everything when its input closes (shutdown), waiting for librrd's answer
//! before it returns: a row leaves memory only once librrd has it.
//!
//! Sources reach it through an [`Intake`], which journals a batch before
//! handing it over, in one order for all of them.
//!
//! `state.rs` is the whole cache as plain data (with the per-file
//! `buffer.rs` and the write `scheduler.rs`), `task.rs` the loop that owns
//! it, `handle.rs` what others hold, `snapshot.rs` and `recover.rs` what a
//! restart brings back.

mod buffer;
mod discovered;
mod handle;
mod intake;
mod recover;
mod scheduler;
pub mod snapshot;
mod state;
mod task;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::clock::{Clock, ClockWatch};
use crate::config::Config;
use crate::metrics::{Metrics, Refusals};
use crate::rrd::RrdHandle;

pub use self::handle::{CacheClosed, CacheHandle, CacheStats};
pub use self::intake::{Intake, Journaled};
pub use self::recover::{Recovered, recover};
use self::snapshot::FilesDurable;
use self::snapshot::Snapshots;
pub(crate) use self::state::Cache;
pub use self::state::{ReloadReport, RestoreReport, Unwritten};
use self::task::CacheTask;

/// Starts the cache task with what a previous run left.
pub fn spawn(
    config: Arc<Config>,
    rrd: RrdHandle,
    metrics: Arc<Metrics>,
    clock: Clock,
    clock_watch: ClockWatch,
    recovered: Recovered,
) -> (CacheHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(1024);
    let (report_tx, report_rx) = mpsc::unbounded_channel();
    let mut cache = Cache::new(config.clone());
    cache.know_discovered(recovered.discovered);
    cache.know_last_updates(recovered.last_updates);
    cache.know_kinds_on_disk(recovered.kinds_on_disk);
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
    let snapshots = (!config.cache.snapshot_every.is_zero()).then(|| {
        // The journal forgets records only once the files their rows went
        // to are durable: exactly those the RRD thread wrote, fsynced.
        let journal = config.journal.as_ref().map(|j| {
            let rrd = rrd.clone();
            let files_durable: FilesDurable = std::sync::Arc::new(move || rrd.sync_written());
            (crate::journal::Release::new(j), files_durable)
        });
        Snapshots::new(
            config.snapshot_path(),
            config.cache.snapshot_every,
            journal,
            metrics.clone(),
        )
    });
    let mut task = CacheTask {
        journal_seq: recovered.journal_seq,
        stats_every: config.cache.stats_every,
        dead_after: config.cache.dead_after,
        snapshots,
        cache,
        rrd,
        report_tx,
        refusals: Refusals::new(metrics.clone()),
        clock_watch,
        journal_enabled: config.journal.is_some(),
        metrics,
        clock,
        waiters: HashMap::new(),
        next_waiter: 0,
        discovered: discovered::DiscoveredFile::new(&config.data_dir),
    };
    // Held again: they came while the clock was not trusted.
    for (held, samples) in recovered.held {
        let (own_time, released) = task.clock_watch.hold(held, samples);
        task.cache.replay(own_time, clock.now_ms());
        task.release(released);
    }
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

#[cfg(test)]
mod tests;
