//! The cache on disk: what a restart needs to lose no cached row.
//!
//! Layout: 8-byte magic, format version (u32 LE), body length (u64 LE),
//! body (postcard), CRC32 of the body (u32 LE). Written to a temp file,
//! fsynced, renamed over the old one, directory fsynced: a reader sees the
//! old snapshot or the new one, whole. A file that fails any check is not
//! trusted at all; the caller keeps it aside and starts empty.

use std::path::Path;

use serde::{Deserialize, Serialize};

use tokio::task::JoinHandle;
use tracing::{debug, error};

use crate::atomic_file::write_atomic;
use crate::journal::Release;
use crate::metrics::Metrics;
use crate::model::UnixMillis;

const MAGIC: &[u8; 8] = b"DLRRDSNP";
pub const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8;

/// Everything the cache holds that is not in the RRD files yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub taken_at_ms: UnixMillis,
    /// The journal position this snapshot covers (0 until there is a
    /// journal): replay starts after it.
    pub journal_seq: u64,
    pub files: Vec<FileState>,
}

/// One file's cached rows and the state that shapes the next ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileState {
    pub rel_path: String,
    pub template: String,
    pub step_secs: u32,
    /// `(DS name, series)` in file order.
    pub ds: Vec<(String, String)>,
    pub written_upto: Option<i64>,
    /// Per DS: the last value written and its sample time, for `hold`.
    pub held: Vec<Option<(f64, UnixMillis)>>,
    pub rows: Vec<SavedRow>,
}

/// `(step end, cells)`.
pub type SavedRow = (i64, Vec<SavedCell>);
/// `(value, samples, latest sample time)`: the running aggregate of a step.
pub type SavedCell = (f64, u32, UnixMillis);

impl Snapshot {
    pub fn row_count(&self) -> usize {
        self.files.iter().map(|f| f.rows.len()).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a datalog-rrd snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot format version {0} is not known to this build (it reads {VERSION})")]
    UnknownVersion(u32),
    #[error("snapshot is truncated: {0} bytes")]
    Truncated(usize),
    #[error("snapshot checksum mismatch")]
    Checksum,
    #[error("snapshot body does not decode: {0}")]
    Format(String),
}

pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let body = postcard::to_stdvec(snapshot).expect("snapshot types always serialise");
    let mut out = Vec::with_capacity(HEADER + body.len() + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out
}

pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    if bytes.len() < HEADER {
        return Err(if bytes.starts_with(&MAGIC[..bytes.len().min(8)]) {
            SnapshotError::Truncated(bytes.len())
        } else {
            SnapshotError::BadMagic
        });
    }
    if &bytes[..8] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(SnapshotError::UnknownVersion(version));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let end = usize::try_from(len)
        .ok()
        .and_then(|l| HEADER.checked_add(l))
        .filter(|&e| e + 4 <= bytes.len());
    let Some(end) = end else {
        return Err(SnapshotError::Truncated(bytes.len()));
    };
    let body = &bytes[HEADER..end];
    let crc = u32::from_le_bytes(bytes[end..end + 4].try_into().expect("4 bytes"));
    if crc32fast::hash(body) != crc {
        return Err(SnapshotError::Checksum);
    }
    postcard::from_bytes(body).map_err(|e| SnapshotError::Format(e.to_string()))
}

#[cfg(test)]
pub fn write(path: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    write_atomic(path, &encode(snapshot))
}

/// The snapshot at `path`; `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<Snapshot>, SnapshotError> {
    match std::fs::read(path) {
        Ok(bytes) => decode(&bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SnapshotError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Makes the RRD files written so far durable, answering how many were
/// synced (`RrdHandle::sync_written`; tests pass their own).
pub type FilesDurable = std::sync::Arc<dyn Fn() -> std::io::Result<usize> + Send + Sync>;

/// Writes snapshots off the async thread, one at a time, and decides when
/// one is worth writing.
pub(crate) struct Snapshots {
    path: std::path::PathBuf,
    pub every: std::time::Duration,
    writing: Option<JoinHandle<()>>,
    /// After a snapshot, the journal forgets what it covers, once the
    /// files are durable.
    journal: Option<(Release, FilesDurable)>,
    /// The last snapshot written: its size in bytes and the rows plus
    /// files it held (to scale that size to the cache of now); set by the
    /// thread that writes it.
    last_written: std::sync::Arc<std::sync::Mutex<(u64, usize)>>,
    /// The journal's appended bytes when the last snapshot was taken.
    journal_bytes_then: u64,
    metrics: std::sync::Arc<Metrics>,
}

/// With a journal, a snapshot is only a shortcut for replay: it lets the
/// journal segments it covers be deleted. Writing one pays off once the
/// journal has grown by [`JOURNAL_PER_SNAPSHOT`] times what the snapshot
/// will weigh (compaction's usual rule, with a margin), so snapshots write
/// at most a quarter of what the journal does, and replay never reads much
/// more than a few times what the cache holds. With a long `flush_after`
/// the cache is large until its rows are written, then small: snapshots
/// then come right after flushes, when they are cheap (with `1h`, one an
/// hour instead of one every `snapshot_every`: on an SD card, 14 MB a day
/// fewer for 100 series).
pub fn snapshot_pays_off(journal_grown: u64, estimated_bytes: u64) -> bool {
    journal_grown > 0 && journal_grown >= estimated_bytes.saturating_mul(JOURNAL_PER_SNAPSHOT)
}

/// How many times a snapshot's size the journal grows before one is due.
const JOURNAL_PER_SNAPSHOT: u64 = 4;

impl Snapshots {
    pub fn new(
        path: std::path::PathBuf,
        every: std::time::Duration,
        journal: Option<(Release, FilesDurable)>,
        metrics: std::sync::Arc<Metrics>,
    ) -> Self {
        Snapshots {
            path,
            every,
            writing: None,
            journal,
            last_written: Default::default(),
            journal_bytes_then: 0,
            metrics,
        }
    }

    /// Whether a snapshot of a cache holding `rows` rows in `files` files
    /// is worth writing now, the journal having appended `journal_bytes`
    /// in this run. Without a journal the snapshot is the only copy of the
    /// cache: always.
    pub fn due(&self, journal_bytes: u64, rows: usize, files: usize) -> bool {
        if self.journal.is_none() {
            return true;
        }
        let (last_bytes, last_units) = *self.last_written.lock().unwrap_or_else(|e| e.into_inner());
        let estimated = if last_units == 0 {
            last_bytes
        } else {
            (u128::from(last_bytes) * (rows + files) as u128 / last_units as u128) as u64
        };
        snapshot_pays_off(
            journal_bytes.saturating_sub(self.journal_bytes_then),
            estimated,
        )
    }

    /// Starts writing `snapshot`, taken when the journal had appended
    /// `journal_bytes`, unless the previous one is still being written (a
    /// slow SD card): the next tick will carry the same rows.
    pub fn save(&mut self, snapshot: Snapshot, journal_bytes: u64) {
        if self.writing.as_ref().is_some_and(|h| !h.is_finished()) {
            debug!("Snapshot skipped: the previous one is still being written.");
            return;
        }
        self.journal_bytes_then = journal_bytes;
        let (path, journal) = (self.path.clone(), self.journal.clone());
        let (last_written, metrics) = (self.last_written.clone(), self.metrics.clone());
        self.writing = Some(tokio::task::spawn_blocking(move || {
            let units = snapshot.row_count() + snapshot.files.len();
            if let Some(bytes) = save_blocking(&path, &snapshot, journal.as_ref(), &metrics) {
                *last_written.lock().unwrap_or_else(|e| e.into_inner()) = (bytes, units);
            }
        }));
    }

    /// Writes `snapshot` and waits for it (shutdown).
    pub async fn save_now(&mut self, snapshot: Snapshot) {
        if let Some(previous) = self.writing.take() {
            let _ = previous.await;
        }
        let (path, journal) = (self.path.clone(), self.journal.clone());
        let metrics = self.metrics.clone();
        let _ = tokio::task::spawn_blocking(move || {
            save_blocking(&path, &snapshot, journal.as_ref(), &metrics)
        })
        .await;
    }
}

/// Writes `snapshot`, then lets the journal forget what it covers; the
/// snapshot's size in bytes once written.
fn save_blocking(
    path: &std::path::Path,
    snapshot: &Snapshot,
    journal: Option<&(Release, FilesDurable)>,
    metrics: &Metrics,
) -> Option<u64> {
    let rows = snapshot.row_count();
    let bytes = encode(snapshot);
    if let Err(e) = write_atomic(path, &bytes) {
        error!(path = %path.display(), error = %e, rows,
            "Cannot write the cache snapshot: a crash now would lose these rows.");
        return None;
    }
    let size = Some(bytes.len() as u64);
    metrics
        .snapshots_written
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    metrics
        .snapshot_bytes
        .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    debug!(
        rows,
        journal_seq = snapshot.journal_seq,
        "Snapshot written."
    );
    let Some((release, files_durable)) = journal else {
        return size;
    };
    let mut synced = 0;
    let released = release.upto(snapshot.journal_seq, || {
        synced = files_durable()?;
        Ok(())
    });
    match released {
        Ok(0) => {}
        Ok(n) => debug!(
            segments = n,
            files_synced = synced,
            "Journal segments covered by the snapshot deleted."
        ),
        Err(e) => error!(error = %e, "Cannot release the journal up to the snapshot; it is kept."),
    }
    size
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            taken_at_ms: 1_763_633_700_000,
            journal_seq: 0,
            files: vec![FileState {
                rel_path: "home/t".into(),
                template: "default".into(),
                step_secs: 60,
                ds: vec![("value".into(), "home/t".into())],
                written_upto: Some(1_763_633_640),
                held: vec![Some((20.5, 1_763_633_630_000))],
                rows: vec![(1_763_633_700, vec![(21.5, 2, 1_763_633_699_000)])],
            }],
        }
    }

    #[test]
    fn a_snapshot_waits_until_the_journal_outweighs_it() {
        assert!(!snapshot_pays_off(0, 0), "nothing new in the journal");
        assert!(snapshot_pays_off(1, 0), "an empty cache is cheap to save");
        assert!(!snapshot_pays_off(399_999, 100_000));
        assert!(snapshot_pays_off(400_000, 100_000));
        assert!(!snapshot_pays_off(u64::MAX - 1, u64::MAX), "no overflow");
    }

    #[tokio::test]
    async fn the_estimate_scales_the_last_snapshot_to_the_cache_of_now() {
        let dir = tempfile::tempdir().unwrap();
        let release = Release::new(&crate::config::JournalConfig {
            dir: dir.path().join("journal"),
            sync: crate::config::SyncPolicy::Never,
        });
        let files_durable: FilesDurable = std::sync::Arc::new(|| Ok(0));
        let journal = Some((release, files_durable));
        let metrics = std::sync::Arc::new(Metrics::default());
        let mut snapshots = Snapshots::new(
            dir.path().join("s"),
            std::time::Duration::from_secs(60),
            journal,
            metrics.clone(),
        );
        // The first one is due as soon as the journal holds anything.
        assert!(!snapshots.due(0, 1, 1));
        assert!(snapshots.due(10, 1, 1));
        snapshots.save(sample(), 10);
        snapshots.writing.take().unwrap().await.unwrap();
        let (size, units) = *snapshots.last_written.lock().unwrap();
        assert_eq!((size, units), (encode(&sample()).len() as u64, 2));
        assert_eq!(
            metrics
                .snapshot_bytes
                .load(std::sync::atomic::Ordering::Relaxed),
            size
        );
        // Same cache: due once the journal grew by four times its size.
        assert!(!snapshots.due(10 + 4 * size - 1, 1, 1));
        assert!(snapshots.due(10 + 4 * size, 1, 1));
        // A cache ten times larger needs ten times the journal.
        assert!(!snapshots.due(10 + 40 * size - 1, 19, 1));
        assert!(snapshots.due(10 + 40 * size, 19, 1));
        // Without a journal the snapshot is the only copy: always due.
        let alone = Snapshots::new(
            dir.path().join("t"),
            std::time::Duration::from_secs(60),
            None,
            metrics,
        );
        assert!(alone.due(0, 1, 1));
    }

    #[test]
    fn round_trips_and_survives_a_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        assert!(read(&path).unwrap().is_none());
        write(&path, &sample()).unwrap();
        assert_eq!(read(&path).unwrap(), Some(sample()));
        let mut newer = sample();
        newer.files.clear();
        write(&path, &newer).unwrap();
        assert_eq!(read(&path).unwrap(), Some(newer));
    }

    #[test]
    fn every_kind_of_damage_is_refused() {
        let good = encode(&sample());
        assert!(matches!(
            decode(&good[..good.len() - 1]),
            Err(SnapshotError::Truncated(_))
        ));
        assert!(matches!(
            decode(&good[..10]),
            Err(SnapshotError::Truncated(_))
        ));
        let mut flipped = good.clone();
        flipped[HEADER + 3] ^= 0x40;
        assert!(matches!(decode(&flipped), Err(SnapshotError::Checksum)));
        let mut version = good.clone();
        version[8] = 9;
        assert!(matches!(
            decode(&version),
            Err(SnapshotError::UnknownVersion(9))
        ));
        assert!(matches!(
            decode(b"{\"files\": []} and more"),
            Err(SnapshotError::BadMagic)
        ));
        let mut huge_len = good.clone();
        huge_len[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            decode(&huge_len),
            Err(SnapshotError::Truncated(_))
        ));
    }
}
