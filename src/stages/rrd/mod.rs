//! The RRD stage: one OS thread owns every librrd call.
//!
//! librrd 1.7.2 crashes when graphs are drawn from several threads, and two
//! writers of one file reject each other's updates; one owner avoids both.
//! Others send it [`RrdCommand`]s through an [`RrdHandle`]; it answers each
//! write with a [`WriteReport`], and the web UI's graphs, exports and file
//! copies through oneshot replies. It publishes the index on a watch
//! channel for the web UI. It exits, writing the index last, when every
//! handle is gone.

mod ffi;
pub mod index;
pub mod layout;
pub mod migrate;
mod plan;
pub mod read;
mod rename;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot, watch};

use crate::metrics::Metrics;
use crate::model::{DsType, FileSpec, Row};

use self::index::IndexEntry;
use self::read::{
    ArchivesRequest, BarsRequest, GraphReply, GraphRequest, MeterArchives, ReadError, Xport,
    XportRequest,
};
pub use self::rename::{move_histories, rename_series};

/// The index as the web UI sees it: every file, in path order.
pub type IndexView = Arc<Vec<IndexEntry>>;

/// Rows of one file on their way to librrd; `file` is the cache's number
/// for it, given back in the [`WriteReport`].
#[derive(Debug, Clone)]
pub struct WriteBatch {
    pub file: usize,
    pub spec: Arc<FileSpec>,
    pub rows: Vec<Row>,
    /// The file is brought to `spec`'s layout first if it differs
    /// (`cache.apply_layout_changes`).
    pub apply_layout: bool,
}

/// librrd's answer to one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteReport {
    pub file: usize,
    /// Every row of the batch up to this time is on disk, or was refused
    /// alone for good; later rows could not be written (the file was busy
    /// or unwritable) and must be kept. `None`: nothing was done.
    pub done_upto: Option<i64>,
    /// The file's last update after this batch, when known.
    pub last_update_s: Option<i64>,
    /// DS the file holds as another kind than the batch's spec (a gauge
    /// where a counter is wanted, or back), with the file's type: the
    /// file stays as it is (`layout::keeping_kinds`), and the cache
    /// writes them as such from now on. Said once, when the file is read.
    pub kept_kinds: DsKinds,
}

/// DS names with their type in a file.
pub type DsKinds = Vec<(String, DsType)>;

pub enum RrdCommand {
    Write {
        batch: WriteBatch,
        reply: mpsc::UnboundedSender<WriteReport>,
    },
    /// These files' series stopped reporting: mark them stale in the index.
    MarkStale(Vec<String>),
    Graph {
        request: GraphRequest,
        reply: oneshot::Sender<Result<GraphReply, ReadError>>,
    },
    Xport {
        request: XportRequest,
        reply: oneshot::Sender<Result<Xport, ReadError>>,
    },
    /// A meter's archives, for its consumption per hour, day and month.
    MeterArchives {
        request: ArchivesRequest,
        reply: oneshot::Sender<Result<MeterArchives, ReadError>>,
    },
    /// A meter's consumption drawn as bars.
    Bars {
        request: BarsRequest,
        reply: oneshot::Sender<Result<Vec<u8>, ReadError>>,
    },
    /// A copy of the file's bytes, taken between two writes.
    Copy {
        rel_path: String,
        reply: oneshot::Sender<Result<Vec<u8>, ReadError>>,
    },
    /// Answered when the thread reaches it: the service watchdog's proof
    /// that librrd is not stuck.
    Ping(oneshot::Sender<()>),
    /// Makes every file written since the last one durable (librrd does
    /// not fsync): the files, and the directories files were created in.
    /// Answers how many files.
    Sync(oneshot::Sender<std::io::Result<usize>>),
}

#[derive(Clone)]
pub struct RrdHandle {
    tx: std_mpsc::Sender<RrdCommand>,
    index_rx: watch::Receiver<IndexView>,
}

impl RrdHandle {
    /// A handle whose commands the caller receives itself (tests).
    #[cfg(test)]
    pub fn from_sender(tx: std_mpsc::Sender<RrdCommand>) -> Self {
        let (_, index_rx) = watch::channel(IndexView::default());
        RrdHandle { tx, index_rx }
    }

    /// Whether the RRD thread still runs.
    pub fn is_running(&self) -> bool {
        self.index_rx.has_changed().is_ok()
    }

    /// The index as last published (within a second of a new file).
    pub fn index(&self) -> IndexView {
        self.index_rx.borrow().clone()
    }

    /// The index once it is published next, or as it is after `within`.
    pub async fn next_index(&self, within: std::time::Duration) -> IndexView {
        let mut rx = self.index_rx.clone();
        rx.mark_unchanged();
        let _ = tokio::time::timeout(within, rx.changed()).await;
        self.index()
    }

    pub async fn graph(&self, request: GraphRequest) -> Result<GraphReply, ReadError> {
        self.ask(|reply| RrdCommand::Graph { request, reply }).await
    }

    pub async fn xport(&self, request: XportRequest) -> Result<Xport, ReadError> {
        self.ask(|reply| RrdCommand::Xport { request, reply }).await
    }

    pub async fn meter_archives(
        &self,
        request: ArchivesRequest,
    ) -> Result<MeterArchives, ReadError> {
        self.ask(|reply| RrdCommand::MeterArchives { request, reply })
            .await
    }

    pub async fn bars(&self, request: BarsRequest) -> Result<Vec<u8>, ReadError> {
        self.ask(|reply| RrdCommand::Bars { request, reply }).await
    }

    pub async fn copy(&self, rel_path: String) -> Result<Vec<u8>, ReadError> {
        self.ask(|reply| RrdCommand::Copy { rel_path, reply }).await
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, ReadError>>) -> RrdCommand,
    ) -> Result<T, ReadError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.tx
            .send(command(reply_tx))
            .map_err(|_| ReadError::Stopped)?;
        reply_rx.await.map_err(|_| ReadError::Stopped)?
    }

    /// Resolves once the RRD thread has handled everything queued before
    /// it; `Err` when the thread is gone.
    pub async fn ping(&self) -> Result<(), ReadError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        self.tx
            .send(RrdCommand::Ping(reply_tx))
            .map_err(|_| ReadError::Stopped)?;
        reply_rx.await.map_err(|_| ReadError::Stopped)
    }

    /// Makes every file written so far durable, waiting for it: what the
    /// journal needs before it forgets records (a snapshot says their rows
    /// are in the files). fsyncs exactly the files written since the last
    /// call, not the whole file system: less for an SD card to do. Call
    /// from a blocking thread.
    pub fn sync_written(&self) -> std::io::Result<usize> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let stopped = || std::io::Error::other("the RRD thread stopped");
        self.tx
            .send(RrdCommand::Sync(reply_tx))
            .map_err(|_| stopped())?;
        reply_rx.blocking_recv().map_err(|_| stopped())?
    }

    pub fn mark_stale(&self, paths: Vec<String>) {
        let _ = self.tx.send(RrdCommand::MarkStale(paths));
    }

    /// Queues a batch; the answer comes on `reply`. If the thread is gone the
    /// answer is "not written", so the rows stay where they are.
    pub fn write(&self, batch: WriteBatch, reply: mpsc::UnboundedSender<WriteReport>) {
        if let Err(std_mpsc::SendError(RrdCommand::Write { batch, reply })) =
            self.tx.send(RrdCommand::Write { batch, reply })
        {
            let _ = reply.send(WriteReport {
                file: batch.file,
                done_upto: None,
                last_update_s: None,
                kept_kinds: Vec::new(),
            });
        }
    }
}

/// Starts the RRD thread on `data_dir` (created if missing). A file whose
/// last update is more than `max_future` ahead of the clock is reported
/// (once) as damaged by a wrong time.
pub fn spawn(
    data_dir: PathBuf,
    max_future: std::time::Duration,
    metrics: Arc<Metrics>,
) -> std::io::Result<(RrdHandle, JoinHandle<()>)> {
    crate::atomic_file::create_dir_all_durable(&data_dir)?;
    let (tx, rx) = std_mpsc::channel();
    let (index_tx, index_rx) = watch::channel(IndexView::default());
    let mut worker = worker::Worker::new(data_dir, metrics, index_tx);
    worker.max_future_s = i64::try_from(max_future.as_secs()).unwrap_or(i64::MAX);
    let thread = std::thread::Builder::new()
        .name("rrd".into())
        .spawn(move || worker.run(rx))?;
    Ok((RrdHandle { tx, index_rx }, thread))
}
