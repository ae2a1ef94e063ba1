//! The write-ahead journal: every accepted message's samples, appended
//! before the message is acknowledged, so that a crash loses nothing the
//! daemon acknowledged.
//!
//! Records are `[length u32 LE][CRC32 u32 LE][postcard (seq, samples)]` in
//! segment files `<first seq, 20 digits>-<creation time>.journal` under
//! `<data_dir>/journal` (the time keeps a new run's first segment apart from
//! an empty or torn one a crash left with the same first sequence).
//! A record is *written* once `flush` has handed it to the kernel (it then
//! survives the process being killed) and *synced* once `sync` has returned
//! (it then survives a power cut). Replay reads records after a given
//! sequence, stopping at a torn or corrupt record (the tail a crash can
//! leave); a new run always starts a new segment, so a torn tail is never
//! appended to. Segments wholly covered by a snapshot are deleted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::model::Sample;

const SEGMENT_MAX_BYTES: u64 = 16 << 20;
/// A record larger than this is corruption (payloads are capped far below).
const RECORD_MAX_BYTES: u32 = 64 << 20;
const EXTENSION: &str = "journal";

pub struct JournalWriter {
    dir: PathBuf,
    out: BufWriter<File>,
    segment_bytes: u64,
    next_seq: u64,
    written_bytes: u64,
}

/// What replay found.
#[derive(Debug, Default, PartialEq)]
pub struct ReplayStats {
    pub records: u64,
    pub samples: u64,
    /// Records at or before the snapshot's sequence, already covered.
    pub skipped: u64,
    /// Segments that ended in a torn or corrupt record.
    pub torn: u64,
    pub last_seq: u64,
}

impl JournalWriter {
    /// Opens a new segment starting at `next_seq` (after what replay saw).
    pub fn open(dir: &Path, next_seq: u64) -> io::Result<JournalWriter> {
        fs::create_dir_all(dir)?;
        let out = BufWriter::with_capacity(64 << 10, new_segment(dir, next_seq)?);
        Ok(JournalWriter {
            dir: dir.to_owned(),
            out,
            segment_bytes: 0,
            next_seq,
            written_bytes: 0,
        })
    }

    /// Appends one record (buffered) and returns its sequence number.
    pub fn append(&mut self, samples: &[Sample]) -> io::Result<u64> {
        let seq = self.next_seq;
        let body = postcard::to_stdvec(&(seq, samples)).map_err(io::Error::other)?;
        if self.segment_bytes > 0 && self.segment_bytes + body.len() as u64 + 8 > SEGMENT_MAX_BYTES
        {
            self.rotate()?;
        }
        self.out.write_all(&(body.len() as u32).to_le_bytes())?;
        self.out.write_all(&crc32fast::hash(&body).to_le_bytes())?;
        self.out.write_all(&body)?;
        self.segment_bytes += body.len() as u64 + 8;
        self.written_bytes += body.len() as u64 + 8;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Hands buffered records to the kernel: they survive a crash of the
    /// process from here on.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns a handle on the current segment, for an fsync
    /// on another thread.
    pub fn sync_handle(&mut self) -> io::Result<File> {
        self.out.flush()?;
        self.out.get_ref().try_clone()
    }

    /// Flushes and fsyncs: records survive a power cut from here on.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    /// The sequence number the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Bytes appended since opening.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        self.out = BufWriter::with_capacity(64 << 10, new_segment(&self.dir, self.next_seq)?);
        self.segment_bytes = 0;
        Ok(())
    }
}

fn new_segment(dir: &Path, first_seq: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(segment_path(dir, first_seq))?;
    // The new name must survive a power cut too.
    File::open(dir)?.sync_all()?;
    Ok(file)
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    dir.join(format!("{first_seq:020}-{nanos}.{EXTENSION}"))
}

/// Segments in `dir` by first sequence number.
fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let first = path
            .extension()
            .filter(|e| *e == EXTENSION)
            .and_then(|_| path.file_stem()?.to_str()?.get(..20)?.parse::<u64>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    // By first sequence, then by name (creation time) for equal ones.
    found.sort();
    Ok(found)
}

/// Calls `each` for every record after `after_seq`, in order.
pub fn replay(
    dir: &Path,
    after_seq: u64,
    mut each: impl FnMut(u64, Vec<Sample>),
) -> io::Result<ReplayStats> {
    let mut stats = ReplayStats {
        last_seq: after_seq,
        ..ReplayStats::default()
    };
    for (_, path) in segments(dir)? {
        let mut bytes = Vec::new();
        File::open(&path)?.read_to_end(&mut bytes)?;
        let mut at = 0;
        while at < bytes.len() {
            let Some(record) = read_record(&bytes[at..]) else {
                stats.torn += 1;
                break;
            };
            at += record.0;
            let (seq, samples) = record.1;
            stats.last_seq = stats.last_seq.max(seq);
            if seq <= after_seq {
                stats.skipped += 1;
                continue;
            }
            stats.records += 1;
            stats.samples += samples.len() as u64;
            each(seq, samples);
        }
    }
    Ok(stats)
}

/// One record and its length in bytes, or `None` if torn or corrupt.
fn read_record(bytes: &[u8]) -> Option<(usize, (u64, Vec<Sample>))> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if len > RECORD_MAX_BYTES {
        return None;
    }
    let body = bytes.get(8..8 + len as usize)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    Some((8 + len as usize, postcard::from_bytes(body).ok()?))
}

/// Deletes the segments whose every record is at or before `covered_seq`
/// (a snapshot has them). The segment being written is never deleted: a
/// segment is known complete only when a later one exists.
pub fn truncate(dir: &Path, covered_seq: u64) -> io::Result<usize> {
    let all = segments(dir)?;
    let mut deleted = 0;
    for pair in all.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        if *next_first <= covered_seq + 1 {
            fs::remove_file(path)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(series: &str, v: f64) -> Sample {
        Sample {
            series: series.into(),
            time_ms: 1_763_633_700_000,
            value: v,
        }
    }

    fn all(dir: &Path, after: u64) -> (Vec<(u64, Vec<Sample>)>, ReplayStats) {
        let mut got = Vec::new();
        let stats = replay(dir, after, |seq, samples| got.push((seq, samples))).unwrap();
        (got, stats)
    }

    #[test]
    fn records_come_back_in_order_after_the_snapshot_point() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        for i in 0..5 {
            assert_eq!(w.append(&[s("a", i as f64), s("b", -1.0)]).unwrap(), i + 1);
        }
        w.flush().unwrap();
        let (got, stats) = all(dir.path(), 2);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(got[0].1, vec![s("a", 2.0), s("b", -1.0)]);
        assert_eq!(
            (
                stats.records,
                stats.samples,
                stats.skipped,
                stats.torn,
                stats.last_seq
            ),
            (3, 6, 2, 0, 5)
        );
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_ignored_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        for i in 0..3 {
            w.append(&[s("a", i as f64)]).unwrap();
        }
        w.sync().unwrap();
        drop(w);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let bytes = fs::read(&path).unwrap();
        for cut in [bytes.len() - 1, bytes.len() - 9] {
            fs::write(&path, &bytes[..cut]).unwrap();
            let (got, stats) = all(dir.path(), 0);
            assert_eq!((got.len(), stats.torn), (2, 1), "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert_eq!(all(dir.path(), 0).1.torn, 1);
        // A new run writes a new segment, after the torn one.
        let mut w = JournalWriter::open(dir.path(), 4).unwrap();
        w.append(&[s("a", 9.0)]).unwrap();
        w.flush().unwrap();
        let (got, _) = all(dir.path(), 0);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 4]);
    }

    #[test]
    fn covered_segments_are_deleted_but_never_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        for first in [1, 11, 21] {
            let mut w = JournalWriter::open(dir.path(), first).unwrap();
            for _ in 0..10 {
                w.append(&[s("a", 1.0)]).unwrap();
            }
            w.flush().unwrap();
        }
        assert_eq!(
            truncate(dir.path(), 9).unwrap(),
            0,
            "segment 1 still holds seq 10"
        );
        assert_eq!(truncate(dir.path(), 10).unwrap(), 1);
        assert_eq!(
            truncate(dir.path(), 1000).unwrap(),
            1,
            "the last segment stays"
        );
        let (got, _) = all(dir.path(), 0);
        assert_eq!(got.first().map(|r| r.0), Some(21));
        assert_eq!(
            replay(&dir.path().join("missing"), 0, |_, _| {}).unwrap(),
            ReplayStats::default()
        );
    }

    #[test]
    fn segments_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        let big = "x".repeat(60_000);
        for _ in 0..300 {
            w.append(&[s(&big, 1.0)]).unwrap();
        }
        w.flush().unwrap();
        assert!(segments(dir.path()).unwrap().len() >= 2);
        assert_eq!(all(dir.path(), 0).0.len(), 300);
    }
}
