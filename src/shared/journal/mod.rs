//! The write-ahead journal: every accepted message's samples, appended
//! before the message is acknowledged, so that a crash loses nothing the
//! daemon acknowledged. This module owns its whole life, behind a small
//! interface:
//!
//! - [`Journal`]: append a record, commit (flush, or fsync with
//!   `sync = "always"`: inline, or begun for another thread so that
//!   records keep coming while the disk works), fsync in the background
//!   (`sync = "interval"`), close; its bytes counted in `/metrics`. The
//!   sources share it through the cache's `Intake`.
//! - [`Reader`]: the records after a sequence, one at a time (replay at
//!   start; later, forwarders).
//! - [`Release`]: lets the journal forget what a snapshot covers, once the
//!   data directory is synced. The snapshot writer holds it.
//!
//! The format on disk is `format.rs`; `write.rs` appends, `read.rs` reads
//! back, `segments.rs` names, lists and deletes the files.

mod format;
mod read;
mod segments;
mod write;

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use tokio::task::JoinHandle;
use tracing::error;

pub use self::read::Reader;
use self::segments::truncate;
use self::write::JournalWriter;
use crate::config::{JournalConfig, SyncPolicy};
use crate::metrics::Metrics;
use crate::model::{HeldClock, Sample};

/// The journal being written.
pub struct Journal {
    writer: JournalWriter,
    sync: SyncPolicy,
    /// The background fsync in progress (`sync = "interval"`).
    syncing: Option<JoinHandle<()>>,
    metrics: Arc<Metrics>,
}

impl Journal {
    /// Starts a new segment whose first record will be `next_seq` (after
    /// what the [`Reader`] saw at start).
    pub fn open(
        config: &JournalConfig,
        next_seq: u64,
        metrics: Arc<Metrics>,
    ) -> io::Result<Journal> {
        Ok(Journal {
            writer: JournalWriter::open(&config.dir, next_seq)?,
            sync: config.sync,
            syncing: None,
            metrics,
        })
    }

    /// Appends one record (buffered until [`Self::commit`]) and returns its
    /// sequence number.
    /// `held`: the message came while the system clock was not trusted.
    pub fn append(&mut self, samples: &[Sample], held: Option<HeldClock>) -> io::Result<u64> {
        let seq = self.writer.append(samples, held)?;
        self.metrics
            .journal_bytes
            .store(self.writer.written_bytes(), Relaxed);
        Ok(seq)
    }

    /// What was appended reaches the kernel (it then survives the daemon
    /// being killed), and the disk too with `sync = "always"`.
    pub fn commit(&mut self) -> io::Result<()> {
        match self.sync {
            SyncPolicy::Always => self.writer.sync(),
            _ => self.writer.flush(),
        }
    }

    /// The first half of [`Self::commit`], for a caller that keeps
    /// appending while the disk works: what was appended reaches the
    /// kernel now, and with `sync = "always"` the returned segment must be
    /// fsynced (on another thread) before those records count as written.
    /// `None`: nothing more to wait for.
    pub fn begin_commit(&mut self) -> io::Result<Option<Arc<File>>> {
        match self.sync {
            SyncPolicy::Always => self.writer.sync_handle(),
            _ => self.writer.flush().map(|()| None),
        }
    }

    /// How often [`Self::sync_in_background`] should run, if at all.
    pub fn sync_every(&self) -> Option<std::time::Duration> {
        match self.sync {
            SyncPolicy::Interval(every) => Some(every),
            _ => None,
        }
    }

    /// `sync = "interval"`: fsync on the blocking pool, one at a time
    /// (records are already in the kernel; this bounds a power cut).
    pub fn sync_in_background(&mut self) {
        if self.syncing.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        match self.writer.sync_handle() {
            Ok(Some(file)) => {
                self.syncing = Some(tokio::task::spawn_blocking(move || {
                    if let Err(e) = file.sync_data() {
                        error!(error = %e, "Cannot fsync the journal.");
                    }
                }))
            }
            // Nothing came since the last fsync: an idle daemon stays idle.
            Ok(None) => {}
            Err(e) => error!(error = %e, "Cannot flush the journal."),
        }
    }

    /// A clean stop: everything appended reaches the disk.
    pub fn close(&mut self) -> io::Result<()> {
        self.writer.close()
    }
}

/// Lets the journal forget the records a snapshot covers.
#[derive(Debug, Clone)]
pub struct Release {
    journal_dir: PathBuf,
}

impl Release {
    pub fn new(config: &JournalConfig) -> Release {
        Release {
            journal_dir: config.dir.clone(),
        }
    }

    /// Once a snapshot covering every record up to `seq` is on disk: lets
    /// `files_durable` make the files those records' rows went to durable
    /// (librrd does not fsync: rows it took are on disk only then), then
    /// deletes the segments wholly covered. Returns how many.
    pub fn upto(
        &self,
        seq: u64,
        files_durable: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<usize> {
        files_durable()?;
        truncate(&self.journal_dir, seq)
    }
}

#[cfg(test)]
mod tests;
