//! The one way samples enter the daemon, whatever brought them (an MQTT
//! message, a poll, an HTTP push): appended to the journal, then handed to
//! the cache, under one lock.
//!
//! Why one lock: the cache's snapshot says "every record up to sequence N
//! is in me", and replay at start skips those. With several sources
//! appending, a record must reach the cache in journal order, or a
//! snapshot taken between two sources' sends would claim a record that is
//! still on its way (and a crash then would lose it). Holding the lock from
//! append to hand-over keeps the two orders the same; it is uncontended
//! almost always (pollers and pushes add a few batches a minute).

use std::io;
use std::sync::Arc;

use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::{CacheClosed, CacheHandle};
use crate::journal::Journal;
use crate::model::{HeldClock, Sample};

/// Where sources hand their samples. Cloneable; every clone shares the
/// journal.
#[derive(Clone)]
pub struct Intake {
    journal: Option<Arc<Mutex<Journal>>>,
    cache: CacheHandle,
}

/// What became of a batch the cache has taken.
#[derive(Debug)]
pub enum Journaled {
    /// In the journal's buffer (it reaches the kernel at the next
    /// [`Intake::commit`]).
    Yes,
    /// No journal is configured: the batch lives in the cache only.
    NoJournal,
    /// The journal could not be written; the batch is in the cache only,
    /// and the source must not tell its sender it is kept.
    Failed(io::Error),
}

impl Intake {
    pub fn new(journal: Option<Journal>, cache: CacheHandle) -> Intake {
        Intake {
            journal: journal.map(|j| Arc::new(Mutex::new(j))),
            cache,
        }
    }

    /// Whether a journal is configured.
    pub fn has_journal(&self) -> bool {
        self.journal.is_some()
    }

    pub fn cache(&self) -> &CacheHandle {
        &self.cache
    }

    /// Journals `samples` and hands them to the cache, in that order.
    /// `held`: stamped while the clock was not trusted.
    pub async fn add(
        &self,
        samples: Vec<Sample>,
        held: Option<HeldClock>,
    ) -> Result<Journaled, CacheClosed> {
        let Some(journal) = &self.journal else {
            self.cache.add(0, samples, held).await?;
            return Ok(Journaled::NoJournal);
        };
        let mut journal = journal.lock().await;
        let (seq, journaled) = match journal.append(&samples, held) {
            Ok(seq) => (seq, Journaled::Yes),
            Err(e) => (0, Journaled::Failed(e)),
        };
        self.cache.add(seq, samples, held).await?;
        Ok(journaled)
    }

    /// What was appended reaches the kernel (and the disk with
    /// `sync = "always"`).
    pub async fn commit(&self) -> io::Result<()> {
        match &self.journal {
            Some(j) => j.lock().await.commit(),
            None => Ok(()),
        }
    }

    /// Begins a commit without waiting for the disk: what was appended
    /// reaches the kernel now; with `sync = "always"` the fsync runs on the
    /// blocking pool, and the records count as written when the returned
    /// task completes. `None`: written already.
    pub async fn begin_commit(&self) -> io::Result<Option<JoinHandle<io::Result<()>>>> {
        let Some(journal) = &self.journal else {
            return Ok(None);
        };
        let segment = journal.lock().await.begin_commit()?;
        Ok(segment.map(|file| tokio::task::spawn_blocking(move || file.sync_data())))
    }

    /// How often [`Self::sync_in_background`] should run, if at all.
    pub async fn sync_every(&self) -> Option<std::time::Duration> {
        match &self.journal {
            Some(j) => j.lock().await.sync_every(),
            None => None,
        }
    }

    /// `sync = "interval"`: an fsync on the blocking pool.
    pub async fn sync_in_background(&self) {
        if let Some(j) = &self.journal {
            j.lock().await.sync_in_background();
        }
    }

    /// Everything journaled reaches the disk: at stop, by the last source.
    pub async fn close(&self) -> io::Result<()> {
        match &self.journal {
            Some(j) => j.lock().await.close(),
            None => Ok(()),
        }
    }
}
