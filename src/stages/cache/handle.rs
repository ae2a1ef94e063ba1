//! The cache task's handle: the messages others send it, and the
//! cloneable handle that sends them. The task drains and exits when the
//! last handle is dropped.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::ReloadReport;
use super::state::Unwritten;
use crate::config::Config;
use crate::model::{HeldClock, Sample, SeriesMeta, UnixMillis};

/// Counts the cache reports (janitoo's count_series / count_values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub files: usize,
    pub series: usize,
    pub pending_rows: usize,
}

pub(super) enum CacheMsg {
    /// Samples and the journal record holding them (0: no journal).
    /// A journal record's samples; the held clock if the message came
    /// while the clock was not trusted.
    Samples(u64, Vec<Sample>, Option<HeldClock>),
    FlushAll(oneshot::Sender<()>),
    FlushFile(String, oneshot::Sender<()>),
    Latest(Vec<String>, oneshot::Sender<Vec<Option<(f64, UnixMillis)>>>),
    Describe(Vec<(String, Option<SeriesMeta>)>),
    GuessState(String, Option<&'static str>),
    Stats(oneshot::Sender<CacheStats>),
    Unwritten(oneshot::Sender<Vec<Unwritten>>),
    FileKnown(String, oneshot::Sender<bool>),
    Reload(Arc<Config>, oneshot::Sender<ReloadReport>),
}

/// Cloneable handle to the cache task. The task drains and exits when the
/// last handle is dropped.
#[derive(Clone)]
pub struct CacheHandle {
    pub(super) tx: mpsc::Sender<CacheMsg>,
}

/// The cache task is gone (shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the cache has stopped")]
pub struct CacheClosed;

impl CacheHandle {
    /// Sends the message `make` builds around a reply channel, and waits
    /// for the reply.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> CacheMsg,
    ) -> Result<T, CacheClosed> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.send(make(reply_tx)).await?;
        reply_rx.await.map_err(|_| CacheClosed)
    }

    async fn send(&self, msg: CacheMsg) -> Result<(), CacheClosed> {
        self.tx.send(msg).await.map_err(|_| CacheClosed)
    }

    /// Adds samples; `seq` is their journal record (0 without a journal);
    /// `held`: received while the clock was not trusted, those stamped with
    /// the receive time wait for it.
    pub async fn add(
        &self,
        seq: u64,
        samples: Vec<Sample>,
        held: Option<HeldClock>,
    ) -> Result<(), CacheClosed> {
        self.send(CacheMsg::Samples(seq, samples, held)).await
    }

    /// Writes every cached row, open steps included; returns once librrd
    /// has answered for all of them.
    pub async fn flush_all(&self) -> Result<(), CacheClosed> {
        self.ask(CacheMsg::FlushAll).await
    }

    /// Writes the cached rows of the file at `rel_path` (open step
    /// included) and returns once librrd has answered for them, so that a
    /// graph drawn next is not behind the data. Returns at once when the
    /// cache holds nothing for that file.
    pub async fn flush_file(&self, rel_path: String) -> Result<(), CacheClosed> {
        self.ask(|reply| CacheMsg::FlushFile(rel_path, reply)).await
    }

    /// Each series' latest sample since start: (value, sample time).
    pub async fn latest(
        &self,
        series: Vec<String>,
    ) -> Result<Vec<Option<(f64, UnixMillis)>>, CacheClosed> {
        self.ask(|reply| CacheMsg::Latest(series, reply)).await
    }

    /// Metadata discovered for series (`None`: forget it); see
    /// `state/describe.rs`.
    pub async fn describe(
        &self,
        updates: Vec<(String, Option<SeriesMeta>)>,
    ) -> Result<(), CacheClosed> {
        self.send(CacheMsg::Describe(updates)).await
    }

    /// A series' payload is an on/off word: a state (with this device class),
    /// unless discovery or a rule said otherwise; see `state/describe.rs`.
    pub async fn guess_state(
        &self,
        series: String,
        device_class: Option<&'static str>,
    ) -> Result<(), CacheClosed> {
        self.send(CacheMsg::GuessState(series, device_class)).await
    }

    /// Takes a new configuration (see `state::reload`).
    pub async fn reload(&self, config: Arc<Config>) -> Result<ReloadReport, CacheClosed> {
        self.ask(|reply| CacheMsg::Reload(config, reply)).await
    }

    pub async fn stats(&self) -> Result<CacheStats, CacheClosed> {
        self.ask(CacheMsg::Stats).await
    }

    /// Whether the cache has a file at `rel_path` (written or not).
    pub async fn file_known(&self, rel_path: &str) -> bool {
        let rel_path = rel_path.to_owned();
        self.ask(|reply| CacheMsg::FileKnown(rel_path, reply))
            .await
            .unwrap_or(false)
    }

    /// The files with rows that have no file on disk yet (the first
    /// minutes of a series), and when each is due.
    pub async fn unwritten(&self) -> Result<Vec<Unwritten>, CacheClosed> {
        self.ask(CacheMsg::Unwritten).await
    }
}
