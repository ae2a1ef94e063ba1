//! The journal on disk: segments, records, and reading them back.
//!
//! Segment files `<first seq, 20 digits>-<creation time>.journal` under
//! `<data_dir>/journal` (the time keeps a new run's first segment apart from
//! an empty or torn one a crash left with the same first sequence) start
//! with [`MAGIC`], then hold records `[length u32 LE][CRC32 u32 LE][body]`.
//! A body is postcard `(seq, new series names, [(series id, time, value)])`:
//! a series name is written once per segment, the first time it appears,
//! and numbered in order of appearance; later records name it by that
//! number. That makes a one-sample record about 29 bytes instead of the 58
//! of writing the name every time, which on an SD card is bytes not worn.
//! Segments from before (no magic: records of postcard `(seq, samples)`)
//! are still read.
//!
//! A record is *written* once `flush` has handed it to the kernel (it then
//! survives the process being killed) and *synced* once `sync` has returned
//! (it then survives a power cut). Replay reads records after a given
//! sequence, stopping at a torn or corrupt record (the tail a crash can
//! leave); a new run always starts a new segment, so a torn tail is never
//! appended to. Segments wholly covered by a snapshot are deleted.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::Sample;

/// The first bytes of a segment in the current format. Read as a record
/// length of the first format, they exceed [`RECORD_MAX_BYTES`], so the two
/// formats cannot be mistaken for each other.
const MAGIC: &[u8; 8] = b"DLRRDJ2\n";

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
    /// The number each series name has in the current segment.
    series_ids: HashMap<String, u32>,
}

/// A record as written: names new to the segment, then samples naming
/// their series by number.
#[derive(Serialize)]
struct RecordOut<'a> {
    seq: u64,
    new_series: Vec<&'a str>,
    samples: Vec<CompactSample>,
}

/// The same record as read back.
#[derive(Deserialize)]
struct RecordIn {
    seq: u64,
    new_series: Vec<String>,
    samples: Vec<CompactSample>,
}

#[derive(Serialize, Deserialize)]
struct CompactSample {
    series: u32,
    time_ms: i64,
    value: f64,
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
        let mut out = BufWriter::with_capacity(64 << 10, new_segment(dir, next_seq)?);
        out.write_all(MAGIC)?;
        Ok(JournalWriter {
            dir: dir.to_owned(),
            out,
            segment_bytes: MAGIC.len() as u64,
            next_seq,
            written_bytes: MAGIC.len() as u64,
            series_ids: HashMap::new(),
        })
    }

    /// Appends one record (buffered) and returns its sequence number.
    pub fn append(&mut self, samples: &[Sample]) -> io::Result<u64> {
        let seq = self.next_seq;
        let mut body = self.encode(seq, samples)?;
        if self.segment_bytes > MAGIC.len() as u64
            && self.segment_bytes + body.len() as u64 + 8 > SEGMENT_MAX_BYTES
        {
            self.rotate()?;
            // The new segment knows no names yet.
            body = self.encode(seq, samples)?;
        }
        let written = self.write_record(&body);
        if written.is_err() {
            // The names this record defined may not be in the segment:
            // later records define them again.
            self.series_ids.clear();
        }
        written?;
        self.segment_bytes += body.len() as u64 + 8;
        self.written_bytes += body.len() as u64 + 8;
        self.next_seq += 1;
        Ok(seq)
    }

    /// The record's body; numbers the series the segment has not seen.
    fn encode(&mut self, seq: u64, samples: &[Sample]) -> io::Result<Vec<u8>> {
        let mut new_series = Vec::new();
        let compact = samples
            .iter()
            .map(|sample| {
                // A lookup first: the name is cloned only when it is new.
                let id = match self.series_ids.get(&sample.series) {
                    Some(&id) => id,
                    None => {
                        let id = self.series_ids.len() as u32;
                        self.series_ids.insert(sample.series.clone(), id);
                        new_series.push(sample.series.as_str());
                        id
                    }
                };
                CompactSample {
                    series: id,
                    time_ms: sample.time_ms,
                    value: sample.value,
                }
            })
            .collect();
        let record = RecordOut {
            seq,
            new_series,
            samples: compact,
        };
        postcard::to_stdvec(&record).map_err(io::Error::other)
    }

    fn write_record(&mut self, body: &[u8]) -> io::Result<()> {
        self.out.write_all(&(body.len() as u32).to_le_bytes())?;
        self.out.write_all(&crc32fast::hash(body).to_le_bytes())?;
        self.out.write_all(body)
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

    /// Bytes appended since opening.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.sync()?;
        self.out = BufWriter::with_capacity(64 << 10, new_segment(&self.dir, self.next_seq)?);
        self.out.write_all(MAGIC)?;
        self.segment_bytes = MAGIC.len() as u64;
        self.written_bytes += MAGIC.len() as u64;
        self.series_ids.clear();
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

/// Records after a sequence, read one at a time across segments, in
/// order: what replay at start reads, and what a forwarder would follow.
/// A segment ending in a torn or corrupt record (the tail a crash leaves)
/// is counted and left at that record.
pub struct Reader {
    /// Segments not opened yet, the next last.
    pending: Vec<PathBuf>,
    current: Option<Segment>,
    after_seq: u64,
    stats: ReplayStats,
}

impl Reader {
    pub fn open(dir: &Path, after_seq: u64) -> io::Result<Reader> {
        let mut pending: Vec<PathBuf> = segments(dir)?.into_iter().map(|(_, p)| p).collect();
        pending.reverse();
        Ok(Reader {
            pending,
            current: None,
            after_seq,
            stats: ReplayStats {
                last_seq: after_seq,
                ..ReplayStats::default()
            },
        })
    }

    /// The next record after the reader's sequence; `None` at the end.
    pub fn next_record(&mut self) -> io::Result<Option<(u64, Vec<Sample>)>> {
        loop {
            let segment = match &mut self.current {
                Some(segment) if !segment.at_end() => segment,
                _ => {
                    let Some(path) = self.pending.pop() else {
                        return Ok(None);
                    };
                    let mut bytes = Vec::new();
                    File::open(&path)?.read_to_end(&mut bytes)?;
                    self.current = Some(Segment::new(bytes));
                    continue;
                }
            };
            let Some((seq, samples)) = segment.next_record() else {
                self.stats.torn += 1;
                self.current = None;
                continue;
            };
            self.stats.last_seq = self.stats.last_seq.max(seq);
            if seq <= self.after_seq {
                self.stats.skipped += 1;
                continue;
            }
            self.stats.records += 1;
            self.stats.samples += samples.len() as u64;
            return Ok(Some((seq, samples)));
        }
    }

    /// What was read so far.
    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }
}

/// Reads one segment's records, in either format.
struct Segment {
    bytes: Vec<u8>,
    at: usize,
    /// `None` for a first-format segment (names in every record).
    names: Option<Vec<String>>,
}

impl Segment {
    fn new(bytes: Vec<u8>) -> Segment {
        if bytes.starts_with(MAGIC) {
            Segment {
                bytes,
                at: MAGIC.len(),
                names: Some(Vec::new()),
            }
        } else {
            Segment {
                bytes,
                at: 0,
                names: None,
            }
        }
    }

    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    /// The next record, or `None` if it is torn or corrupt.
    fn next_record(&mut self) -> Option<(u64, Vec<Sample>)> {
        let (len, body) = read_record(&self.bytes[self.at..])?;
        let record = match &mut self.names {
            None => postcard::from_bytes(body).ok()?,
            Some(names) => {
                let record: RecordIn = postcard::from_bytes(body).ok()?;
                names.extend(record.new_series);
                let samples = record
                    .samples
                    .into_iter()
                    .map(|s| {
                        Some(Sample {
                            series: names.get(s.series as usize)?.clone(),
                            time_ms: s.time_ms,
                            value: s.value,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                (record.seq, samples)
            }
        };
        self.at += len;
        Some(record)
    }
}

/// One record's body and its length in bytes with its header, or `None` if
/// torn or corrupt.
fn read_record(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    if len > RECORD_MAX_BYTES {
        return None;
    }
    let body = bytes.get(8..8 + len as usize)?;
    if crc32fast::hash(body) != crc {
        return None;
    }
    Some((8 + len as usize, body))
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
        let mut reader = Reader::open(dir, after).unwrap();
        let mut got = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            got.push(record);
        }
        (got, reader.stats)
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
            all(&dir.path().join("missing"), 0),
            (vec![], ReplayStats::default())
        );
    }

    #[test]
    fn segments_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        // Each name new, so each record carries its 60 kB.
        let big = "x".repeat(60_000);
        for i in 0..300 {
            w.append(&[s(&format!("{i}/{big}"), 1.0), s("small", 2.0)])
                .unwrap();
        }
        w.flush().unwrap();
        assert!(segments(dir.path()).unwrap().len() >= 2);
        let (got, stats) = all(dir.path(), 0);
        assert_eq!((got.len(), stats.torn), (300, 0));
        // Names are numbered per segment: the last record still reads.
        assert_eq!(got[299].1[1], s("small", 2.0));
        assert!(got[299].1[0].series.starts_with("299/"));
    }

    #[test]
    fn a_name_is_written_once_per_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        let name = "zigbee2mqtt/living_room/temperature";
        w.append(&[s(name, 21.5)]).unwrap();
        let first = w.written_bytes();
        w.append(&[s(name, 21.6)]).unwrap();
        let second = w.written_bytes() - first;
        // Header 8, seq 1, no new name 1, one sample: id 1, time 6, value 8.
        assert!(second <= 26, "a repeated series costs {second} bytes");
        assert!(first - MAGIC.len() as u64 > name.len() as u64);
        w.flush().unwrap();
        let (got, _) = all(dir.path(), 0);
        assert_eq!(got[1].1, vec![s(name, 21.6)]);
    }

    /// Segments written before the compact format (no magic, the series
    /// name in every sample) still replay, before and beside new ones.
    #[test]
    fn first_format_segments_still_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = Vec::new();
        for seq in 1..=2u64 {
            let body = postcard::to_stdvec(&(seq, vec![s("old/series", seq as f64)])).unwrap();
            old.extend((body.len() as u32).to_le_bytes());
            old.extend(crc32fast::hash(&body).to_le_bytes());
            old.extend(body);
        }
        fs::write(dir.path().join(format!("{:020}-1.{EXTENSION}", 1)), &old).unwrap();
        let mut w = JournalWriter::open(dir.path(), 3).unwrap();
        w.append(&[s("new/series", 3.0), s("old/series", 3.5)])
            .unwrap();
        w.flush().unwrap();
        let (got, stats) = all(dir.path(), 0);
        assert_eq!(stats.torn, 0);
        assert_eq!(
            got,
            vec![
                (1, vec![s("old/series", 1.0)]),
                (2, vec![s("old/series", 2.0)]),
                (3, vec![s("new/series", 3.0), s("old/series", 3.5)]),
            ]
        );
    }

    /// A record naming a series the segment never defined is corruption:
    /// replay stops there, as at a torn tail.
    #[test]
    fn an_unknown_series_number_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        w.append(&[s("a", 1.0)]).unwrap();
        w.flush().unwrap();
        drop(w);
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let body = postcard::to_stdvec(&RecordOut {
            seq: 2,
            new_series: vec![],
            samples: vec![CompactSample {
                series: 7,
                time_ms: 0,
                value: 1.0,
            }],
        })
        .unwrap();
        bytes.extend((body.len() as u32).to_le_bytes());
        bytes.extend(crc32fast::hash(&body).to_le_bytes());
        bytes.extend(body);
        fs::write(&path, &bytes).unwrap();
        let (got, stats) = all(dir.path(), 0);
        assert_eq!((got.len(), stats.torn), (1, 1));
    }
}
