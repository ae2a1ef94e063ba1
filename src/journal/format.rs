//! The journal on disk: segments, records, and reading them back.
//!
//! Segment files `<first seq, 20 digits>-<creation time>.journal` under
//! `<data_dir>/journal` (the time keeps a new run's first segment apart from
//! an empty or torn one a crash left with the same first sequence) start
//! with [`MAGIC`], then hold records `[body length, varint][CRC32 u32 LE]
//! [body]`. A body is postcard `(sequence step, new series names,
//! [(series number, time step, packed value)])`:
//!
//! - a series name is written once per segment, the first time it appears,
//!   and numbered in order of appearance; later records name it by number;
//! - the sequence is the step from the previous record's (1, one byte), the
//!   time the step in milliseconds from the previous sample's (a few bytes
//!   instead of six);
//! - a value that is a decimal with at most three digits after the point
//!   (what sensors send: `21.5`, `1013`, `3.215`) is its scaled integer, a
//!   varint; any other one its `f32` when that is exact, else its `f64`.
//!   Each is checked to read back bit for bit;
//! - last, an `Option<HeldClock>`: one byte (none) unless the message came
//!   while the system clock was not trusted (fourth format; the third has
//!   no such field).
//!
//! A one-sample record then takes about 15 bytes, down from 29 in the second
//! format and 58 in the first (the name in every sample): on an SD card,
//! bytes not worn. Segments of both earlier formats are still read.
//!
//! A record is *written* once `flush` has handed it to the kernel (it then
//! survives the process being killed) and *synced* once `sync` has returned
//! (it then survives a power cut). Replay reads records after a given
//! sequence, stopping at a torn or corrupt record (the tail a crash can
//! leave); a new run always starts a new segment, so a torn tail is never
//! appended to. Segments wholly covered by a snapshot are deleted.
//!
//! Segments are allocated ahead of their records, [`PREALLOCATE_BYTES`] at
//! a time (`fallocate`), and cut to their records' length when closed.
//! Appending then never changes the file's size, and an fsync has only the
//! data to write: on ext4 a growing file's fsync also commits its new size,
//! which measured half as many page writes again as its records (an SD
//! card's wear, see the README). A segment a crash left still allocated
//! ends in zeros; a record never starts with a zero byte (its length is at
//! least one), so an all-zero tail is a clean end, not a torn record.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::{HeldClock, Sample};

/// The first bytes of a segment in the current format. Read as a record
/// length of the first format, they exceed [`RECORD_MAX_BYTES`], so the
/// formats cannot be mistaken for each other.
const MAGIC: &[u8; 8] = b"DLRRDJ4\n";
/// The third format: as the fourth, without the held clock.
const MAGIC_PACKED: &[u8; 8] = b"DLRRDJ3\n";
/// The second format (names once per segment, nothing else packed).
const MAGIC_NAMED: &[u8; 8] = b"DLRRDJ2\n";

const SEGMENT_MAX_BYTES: u64 = 16 << 20;
/// How far ahead of its records a segment is allocated.
const PREALLOCATE_BYTES: u64 = 1 << 20;
/// A record larger than this is corruption (payloads are capped far below).
const RECORD_MAX_BYTES: u32 = 64 << 20;
const EXTENSION: &str = "journal";

pub struct JournalWriter {
    dir: PathBuf,
    out: BufWriter<File>,
    segment_bytes: u64,
    /// The segment's size on disk, [`PREALLOCATE_BYTES`] at a time ahead of
    /// `segment_bytes`; `u64::MAX` where the filesystem cannot allocate
    /// ahead (the file then grows with its records).
    allocated_bytes: u64,
    next_seq: u64,
    written_bytes: u64,
    /// The number each series name has in the current segment.
    series_ids: HashMap<String, u32>,
    /// What the next record's steps are taken from.
    last: Steps,
    /// A record failed half-way: the segment's tail may be torn, so the
    /// next record starts a new one.
    torn: bool,
}

/// The previous record's sequence and sample time in a segment, from which
/// the next record's steps are taken (both 0 at a segment's start).
#[derive(Debug, Default, Clone, Copy)]
struct Steps {
    seq: u64,
    time_ms: i64,
}

/// A record of the current format; `S` is `&str` written, `String` read.
#[derive(Serialize, Deserialize)]
struct PackedRecord<S> {
    seq_step: u64,
    new_series: Vec<S>,
    samples: Vec<PackedSample>,
}

#[derive(Serialize, Deserialize)]
struct PackedSample {
    series: u32,
    time_step_ms: i64,
    value: PackedValue,
}

/// A value in as few bytes as read back bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum PackedValue {
    Units(i64),
    Tenths(i64),
    Hundredths(i64),
    Thousandths(i64),
    Single(f32),
    Double(f64),
}

impl PackedValue {
    fn pack(value: f64) -> PackedValue {
        /// Larger integers are not all exact in an `f64`.
        const EXACT: f64 = (1u64 << 53) as f64;
        let decimals = [
            PackedValue::Units as fn(i64) -> PackedValue,
            PackedValue::Tenths,
            PackedValue::Hundredths,
            PackedValue::Thousandths,
        ];
        for (digits, variant) in decimals.into_iter().enumerate() {
            let scaled = (value * SCALES[digits]).round();
            if scaled.abs() < EXACT {
                let packed = variant(scaled as i64);
                if packed.unpack().to_bits() == value.to_bits() {
                    return packed;
                }
            }
        }
        let single = value as f32;
        if f64::from(single).to_bits() == value.to_bits() {
            PackedValue::Single(single)
        } else {
            PackedValue::Double(value)
        }
    }

    fn unpack(self) -> f64 {
        match self {
            PackedValue::Units(m) => m as f64,
            PackedValue::Tenths(m) => m as f64 / SCALES[1],
            PackedValue::Hundredths(m) => m as f64 / SCALES[2],
            PackedValue::Thousandths(m) => m as f64 / SCALES[3],
            PackedValue::Single(v) => f64::from(v),
            PackedValue::Double(v) => v,
        }
    }
}

const SCALES: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];

/// A record of the second format, as read back.
#[derive(Serialize, Deserialize)]
struct NamedRecord {
    seq: u64,
    new_series: Vec<String>,
    samples: Vec<NamedSample>,
}

#[derive(Serialize, Deserialize)]
struct NamedSample {
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
            allocated_bytes: 0,
            next_seq,
            written_bytes: MAGIC.len() as u64,
            series_ids: HashMap::new(),
            last: Steps::default(),
            torn: false,
        })
    }

    /// Appends one record (buffered) and returns its sequence number.
    pub fn append(&mut self, samples: &[Sample], held: Option<HeldClock>) -> io::Result<u64> {
        if self.torn {
            self.rotate()?;
        }
        let seq = self.next_seq;
        let (mut body, mut last) = self.encode(seq, samples, held)?;
        if self.segment_bytes > MAGIC.len() as u64
            && self.segment_bytes + body.len() as u64 + FRAME_MAX_BYTES > SEGMENT_MAX_BYTES
        {
            self.rotate()?;
            // The new segment knows no names yet, and steps from 0.
            (body, last) = self.encode(seq, samples, held)?;
        }
        self.allocate_for(body.len() as u64 + FRAME_MAX_BYTES);
        let framed = match self.write_record(&body) {
            Ok(framed) => framed,
            Err(e) => {
                self.torn = true;
                return Err(e);
            }
        };
        self.last = last;
        self.segment_bytes += framed;
        self.written_bytes += framed;
        self.next_seq += 1;
        Ok(seq)
    }

    /// The record's body and the steps the next one starts from; numbers
    /// the series the segment has not seen.
    fn encode(
        &mut self,
        seq: u64,
        samples: &[Sample],
        held: Option<HeldClock>,
    ) -> io::Result<(Vec<u8>, Steps)> {
        let mut new_series = Vec::new();
        let mut last_time_ms = self.last.time_ms;
        let packed = samples
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
                let time_step_ms = sample.time_ms.wrapping_sub(last_time_ms);
                last_time_ms = sample.time_ms;
                PackedSample {
                    series: id,
                    time_step_ms,
                    value: PackedValue::pack(sample.value),
                }
            })
            .collect();
        let record = PackedRecord {
            seq_step: seq - self.last.seq,
            new_series,
            samples: packed,
        };
        let body = postcard::to_stdvec(&(record, held)).map_err(io::Error::other)?;
        let last = Steps {
            seq,
            time_ms: last_time_ms,
        };
        Ok((body, last))
    }

    /// Allocates the segment further ahead if `bytes` more would not fit.
    /// Best effort: where the filesystem cannot (`EOPNOTSUPP`: FAT, some
    /// network filesystems), the file grows with its records as it would
    /// have anyway; a full disk shows at the write that follows.
    fn allocate_for(&mut self, bytes: u64) {
        let needed = self.segment_bytes + bytes;
        if needed <= self.allocated_bytes {
            return;
        }
        let size = needed.div_ceil(PREALLOCATE_BYTES) * PREALLOCATE_BYTES;
        match allocate(self.out.get_ref(), size) {
            Ok(()) => self.allocated_bytes = size,
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => self.allocated_bytes = u64::MAX,
            // Not allocated: tried again at the next record.
            Err(_) => {}
        }
    }

    /// Writes a record's frame; returns its length in bytes.
    fn write_record(&mut self, body: &[u8]) -> io::Result<u64> {
        let mut length = [0u8; 5];
        let length =
            postcard::to_slice(&(body.len() as u32), &mut length).map_err(io::Error::other)?;
        self.out.write_all(length)?;
        self.out.write_all(&crc32fast::hash(body).to_le_bytes())?;
        self.out.write_all(body)?;
        Ok((length.len() + 4 + body.len()) as u64)
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

    /// The segment's last write: cut to its records (no zeros left
    /// allocated after them) and synced.
    pub fn close(&mut self) -> io::Result<()> {
        self.out.flush()?;
        if self.allocated_bytes != u64::MAX {
            self.out.get_ref().set_len(self.segment_bytes)?;
            self.allocated_bytes = self.segment_bytes;
        }
        self.out.get_ref().sync_data()
    }

    /// Bytes appended since opening.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.close()?;
        self.out = BufWriter::with_capacity(64 << 10, new_segment(&self.dir, self.next_seq)?);
        self.out.write_all(MAGIC)?;
        self.segment_bytes = MAGIC.len() as u64;
        self.allocated_bytes = 0;
        self.written_bytes += MAGIC.len() as u64;
        self.series_ids.clear();
        self.last = Steps::default();
        self.torn = false;
        Ok(())
    }
}

/// A frame's length varint and CRC at most.
const FRAME_MAX_BYTES: u64 = 5 + 4;

/// `fallocate` the file to `size` bytes (never `posix_fallocate`, which
/// writes zeros where the filesystem cannot allocate: bytes on an SD card).
fn allocate(file: &File, size: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let size = libc::off_t::try_from(size).map_err(io::Error::other)?;
    // SAFETY: a valid open descriptor for the call's duration.
    if unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, size) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A new segment file, written from its start (not `O_APPEND`: its size
/// is allocated ahead of the records).
fn new_segment(dir: &Path, first_seq: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
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

/// A record read back: its sequence, samples, and held clock.
pub type Record = (u64, Vec<Sample>, Option<HeldClock>);

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
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
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
            let Some((seq, samples, held)) = segment.next_record() else {
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
            return Ok(Some((seq, samples, held)));
        }
    }

    /// What was read so far.
    pub fn stats(&self) -> &ReplayStats {
        &self.stats
    }
}

/// Reads one segment's records, in any of the three formats.
struct Segment {
    bytes: Vec<u8>,
    at: usize,
    format: SegmentFormat,
}

/// A segment's format, with what its records are read against.
enum SegmentFormat {
    /// No magic: postcard `(seq, samples)`, names in every sample.
    First,
    /// Names numbered once per segment.
    Named { names: Vec<String> },
    /// The third and fourth: names numbered, steps, packed values, and in
    /// the fourth the held clock.
    Packed {
        names: Vec<String>,
        last: Steps,
        with_clock: bool,
    },
}

impl Segment {
    fn new(bytes: Vec<u8>) -> Segment {
        let packed = |with_clock| SegmentFormat::Packed {
            names: Vec::new(),
            last: Steps::default(),
            with_clock,
        };
        let (at, format) = if bytes.starts_with(MAGIC) {
            (MAGIC.len(), packed(true))
        } else if bytes.starts_with(MAGIC_PACKED) {
            (MAGIC_PACKED.len(), packed(false))
        } else if bytes.starts_with(MAGIC_NAMED) {
            (
                MAGIC_NAMED.len(),
                SegmentFormat::Named { names: Vec::new() },
            )
        } else {
            (0, SegmentFormat::First)
        };
        Segment { bytes, at, format }
    }

    /// At the end of the records: the end of the file, or, in the current
    /// format, the zeros allocated after the last record (a record starts
    /// with its length, never zero). Zeros followed by anything else are
    /// damage, read as a torn record.
    fn at_end(&self) -> bool {
        let rest = &self.bytes[self.at.min(self.bytes.len())..];
        match self.format {
            SegmentFormat::Packed { .. } => rest.iter().all(|&b| b == 0),
            _ => rest.is_empty(),
        }
    }

    /// The next record, or `None` if it is torn or corrupt.
    fn next_record(&mut self) -> Option<Record> {
        let rest = &self.bytes[self.at..];
        let (len, body) = match self.format {
            SegmentFormat::Packed { .. } => read_packed_frame(rest)?,
            _ => read_fixed_frame(rest)?,
        };
        let record = match &mut self.format {
            SegmentFormat::First => {
                let (seq, samples) = postcard::from_bytes(body).ok()?;
                (seq, samples, None)
            }
            SegmentFormat::Named { names } => {
                let record: NamedRecord = postcard::from_bytes(body).ok()?;
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
                (record.seq, samples, None)
            }
            SegmentFormat::Packed {
                names,
                last,
                with_clock,
            } => {
                let (record, held): (PackedRecord<String>, Option<HeldClock>) = if *with_clock {
                    postcard::from_bytes(body).ok()?
                } else {
                    (postcard::from_bytes(body).ok()?, None)
                };
                names.extend(record.new_series);
                if record.seq_step == 0 {
                    return None;
                }
                let seq = last.seq.checked_add(record.seq_step)?;
                let mut time_ms = last.time_ms;
                let samples = record
                    .samples
                    .into_iter()
                    .map(|s| {
                        time_ms = time_ms.wrapping_add(s.time_step_ms);
                        Some(Sample {
                            series: names.get(s.series as usize)?.clone(),
                            time_ms,
                            value: s.value.unpack(),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                *last = Steps { seq, time_ms };
                (seq, samples, held)
            }
        };
        self.at += len;
        Some(record)
    }
}

/// A current-format record's body and its length in bytes with its frame,
/// or `None` if torn or corrupt.
fn read_packed_frame(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (len, rest) = postcard::take_from_bytes::<u32>(bytes).ok()?;
    let length_bytes = bytes.len() - rest.len();
    checked_body(rest, len).map(|(framed, body)| (length_bytes + framed, body))
}

/// The same for the earlier formats, whose length is a `u32` LE.
fn read_fixed_frame(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    checked_body(&bytes[4..], len).map(|(framed, body)| (4 + framed, body))
}

/// `[CRC32 u32 LE][body of len bytes]`: the body if its CRC matches, and
/// the bytes both take.
fn checked_body(bytes: &[u8], len: u32) -> Option<(usize, &[u8])> {
    if len > RECORD_MAX_BYTES {
        return None;
    }
    let crc = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let body = bytes.get(4..4 + len as usize)?;
    (crc32fast::hash(body) == crc).then_some((4 + len as usize, body))
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

    fn all(dir: &Path, after: u64) -> (Vec<Record>, ReplayStats) {
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
            assert_eq!(
                w.append(&[s("a", i as f64), s("b", -1.0)], None).unwrap(),
                i + 1
            );
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
            w.append(&[s("a", i as f64)], None).unwrap();
        }
        w.close().unwrap();
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
        w.append(&[s("a", 9.0)], None).unwrap();
        w.flush().unwrap();
        let (got, _) = all(dir.path(), 0);
        assert_eq!(got.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2, 4]);
    }

    #[test]
    fn a_held_clock_comes_back_with_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        let held = HeldClock {
            boot: 0xfeed,
            received_ms: 1_763_633_700_000,
            offset_ms: 1_763_633_000_000,
        };
        w.append(&[s("a", 1.0)], Some(held)).unwrap();
        w.append(&[s("a", 2.0)], None).unwrap();
        w.close().unwrap();
        let (got, stats) = all(dir.path(), 0);
        assert_eq!(stats.torn, 0);
        assert_eq!(
            got,
            vec![
                (1, vec![s("a", 1.0)], Some(held)),
                (2, vec![s("a", 2.0)], None)
            ]
        );
    }

    #[test]
    fn third_format_segments_still_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = MAGIC_PACKED.to_vec();
        for (step, value) in [(1u64, 1.5), (1, 2.5)] {
            let record = PackedRecord {
                seq_step: step,
                new_series: if value == 1.5 {
                    vec!["old/series"]
                } else {
                    vec![]
                },
                samples: vec![PackedSample {
                    series: 0,
                    time_step_ms: if value == 1.5 { 1_763_633_700_000 } else { 0 },
                    value: PackedValue::pack(value),
                }],
            };
            let body = postcard::to_stdvec(&record).unwrap();
            old.extend(postcard::to_stdvec(&(body.len() as u32)).unwrap());
            old.extend(crc32fast::hash(&body).to_le_bytes());
            old.extend(body);
        }
        fs::write(dir.path().join(format!("{:020}-1.{EXTENSION}", 1)), &old).unwrap();
        let (got, stats) = all(dir.path(), 0);
        assert_eq!(stats.torn, 0);
        assert_eq!(
            got,
            vec![
                (1, vec![s("old/series", 1.5)], None),
                (2, vec![s("old/series", 2.5)], None),
            ]
        );
    }

    #[test]
    fn a_segment_is_allocated_ahead_and_its_zeros_are_a_clean_end() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        for i in 0..3 {
            w.append(&[s("a", i as f64)], None).unwrap();
        }
        w.flush().unwrap();
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        // Allocated ahead, as a crash leaves it: all records, nothing torn.
        assert_eq!(fs::metadata(&path).unwrap().len(), PREALLOCATE_BYTES);
        let (got, stats) = all(dir.path(), 0);
        assert_eq!((got.len(), stats.torn), (3, 0));

        // Closed: cut to its records.
        w.close().unwrap();
        let records_len = fs::metadata(&path).unwrap().len();
        assert_eq!(records_len, w.written_bytes());
        assert_eq!(all(dir.path(), 0).0.len(), 3);

        // Zeros followed by anything else are damage.
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend([0; 100]);
        bytes.push(7);
        fs::write(&path, &bytes).unwrap();
        let (got, stats) = all(dir.path(), 0);
        assert_eq!((got.len(), stats.torn), (3, 1));
    }

    #[test]
    fn allocation_follows_the_records_across_its_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        let big = "x".repeat(60_000);
        for i in 0..40 {
            w.append(&[s(&format!("{i}/{big}"), 1.0)], None).unwrap();
        }
        w.flush().unwrap();
        let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
        let size = fs::metadata(&path).unwrap().len();
        assert!(size >= w.written_bytes() && size % PREALLOCATE_BYTES == 0);
        assert_eq!(
            size.div_ceil(PREALLOCATE_BYTES),
            w.written_bytes().div_ceil(PREALLOCATE_BYTES)
        );
        let (got, stats) = all(dir.path(), 0);
        assert_eq!((got.len(), stats.torn), (40, 0));
    }

    #[test]
    fn covered_segments_are_deleted_but_never_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        for first in [1, 11, 21] {
            let mut w = JournalWriter::open(dir.path(), first).unwrap();
            for _ in 0..10 {
                w.append(&[s("a", 1.0)], None).unwrap();
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
            w.append(&[s(&format!("{i}/{big}"), 1.0), s("small", 2.0)], None)
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
    fn a_name_is_written_once_per_segment_and_steps_are_small() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        let name = "zigbee2mqtt/living_room/temperature";
        let at = |ms: i64, v| Sample {
            time_ms: 1_763_633_700_000 + ms,
            ..s(name, v)
        };
        w.append(&[at(0, 21.5)], None).unwrap();
        let first = w.written_bytes();
        w.append(&[at(10_000, 21.63)], None).unwrap();
        let second = w.written_bytes() - first;
        // Length 1, CRC 4, seq step 1, no new name 1, one sample 1, id 1,
        // time step 3, value 3 (hundredths: tag and 2 bytes), no held
        // clock 1.
        assert_eq!(second, 16, "a repeated series costs {second} bytes");
        assert!(first - MAGIC.len() as u64 > name.len() as u64);
        w.flush().unwrap();
        let (got, _) = all(dir.path(), 0);
        assert_eq!(
            got,
            vec![
                (1, vec![at(0, 21.5)], None),
                (2, vec![at(10_000, 21.63)], None)
            ]
        );
    }

    /// Every value reads back bit for bit, in as few bytes as its kind
    /// allows; times and sequences step any distance.
    #[test]
    fn values_and_steps_read_back_exactly() {
        let packed_len = |v: f64| postcard::to_stdvec(&PackedValue::pack(v)).unwrap().len();
        assert_eq!(packed_len(21.0), 2);
        assert_eq!(packed_len(21.5), 3);
        assert_eq!(packed_len(1013.0), 3);
        assert_eq!(packed_len(-3.215), 3);
        assert_eq!(packed_len(0.1 + 0.2), 9, "not a short decimal: f64");
        assert_eq!(packed_len(1e-7_f32 as f64), 5);
        let odd = [
            0.0,
            -0.0,
            1e300,
            -1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            9_007_199_254_740_993.0,
            123_456.789,
            4294967296.5,
        ];
        let dir = tempfile::tempdir().unwrap();
        let mut w = JournalWriter::open(dir.path(), 1).unwrap();
        let times = [0, i64::MAX, i64::MIN, -1, 1_763_633_700_000];
        let mut expected = Vec::new();
        for (i, v) in odd.into_iter().enumerate() {
            let sample = Sample {
                series: format!("s{}", i % 3),
                time_ms: times[i % times.len()],
                value: v,
            };
            expected.push(sample.clone());
            w.append(&[sample], None).unwrap();
        }
        w.flush().unwrap();
        let (got, _) = all(dir.path(), 0);
        let got: Vec<Sample> = got.into_iter().flat_map(|r| r.1).collect();
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(
                (&g.series, g.time_ms, g.value.to_bits()),
                (&e.series, e.time_ms, e.value.to_bits())
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn any_value_packs_back_to_its_bits(bits in proptest::num::u64::ANY, decimal in -10_000_000i64..10_000_000, digits in 0u32..4) {
            for v in [f64::from_bits(bits), decimal as f64 / 10f64.powi(digits as i32)] {
                proptest::prop_assert_eq!(PackedValue::pack(v).unpack().to_bits(), v.to_bits());
            }
        }
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
        w.append(&[s("new/series", 3.0), s("old/series", 3.5)], None)
            .unwrap();
        w.flush().unwrap();
        let (got, stats) = all(dir.path(), 0);
        assert_eq!(stats.torn, 0);
        assert_eq!(
            got,
            vec![
                (1, vec![s("old/series", 1.0)], None),
                (2, vec![s("old/series", 2.0)], None),
                (3, vec![s("new/series", 3.0), s("old/series", 3.5)], None),
            ]
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Whatever a crash or a bad disk does to a segment (bytes flipped,
        /// cut short, garbage after it), replay never panics and returns
        /// only records that were written, in order: a prefix of them.
        #[test]
        fn a_damaged_segment_reads_back_a_prefix_of_its_records(
            flips in proptest::collection::vec((0usize..4096, 1u8..=255), 0..4),
            cut in proptest::option::of(0usize..4096),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut w = JournalWriter::open(dir.path(), 1).unwrap();
            let mut written = Vec::new();
            for i in 0..40u32 {
                let samples = vec![
                    Sample { series: format!("s{}", i % 7), time_ms: 1_763_633_700_000 + i64::from(i) * 997, value: f64::from(i) * 0.25 },
                    Sample { series: "t".into(), time_ms: 1_763_633_700_000 - i64::from(i), value: -f64::from(i) / 3.0 },
                ];
                let seq = w.append(&samples, None).unwrap();
                written.push((seq, samples));
            }
            w.close().unwrap();
            drop(w);
            let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
            let mut bytes = fs::read(&path).unwrap();
            for (at, x) in flips {
                let at = at % bytes.len();
                bytes[at] ^= x;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut.min(bytes.len()));
            }
            bytes.extend(tail);
            fs::write(&path, &bytes).unwrap();
            let (got, _) = all(dir.path(), 0);
            proptest::prop_assert!(got.len() <= written.len());
            for (g, w) in got.iter().zip(&written) {
                proptest::prop_assert_eq!(g.0, w.0);
                proptest::prop_assert_eq!(g.1.len(), w.1.len());
                for (a, b) in g.1.iter().zip(&w.1) {
                    proptest::prop_assert_eq!((&a.series, a.time_ms, a.value.to_bits()), (&b.series, b.time_ms, b.value.to_bits()));
                }
            }
        }
    }

    /// Segments of the second format (names once per segment, fixed-size
    /// fields) still replay.
    #[test]
    fn second_format_segments_still_replay() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = MAGIC_NAMED.to_vec();
        for seq in 1..=2u64 {
            let body = postcard::to_stdvec(&NamedRecord {
                seq,
                new_series: if seq == 1 {
                    vec!["old/series".into()]
                } else {
                    vec![]
                },
                samples: vec![NamedSample {
                    series: 0,
                    time_ms: 1_763_633_700_000,
                    value: seq as f64 + 0.1,
                }],
            })
            .unwrap();
            old.extend((body.len() as u32).to_le_bytes());
            old.extend(crc32fast::hash(&body).to_le_bytes());
            old.extend(body);
        }
        fs::write(dir.path().join(format!("{:020}-1.{EXTENSION}", 1)), &old).unwrap();
        let mut w = JournalWriter::open(dir.path(), 3).unwrap();
        w.append(&[s("old/series", 3.5)], None).unwrap();
        w.flush().unwrap();
        let (got, stats) = all(dir.path(), 0);
        assert_eq!(stats.torn, 0);
        assert_eq!(
            got,
            vec![
                (1, vec![s("old/series", 1.1)], None),
                (2, vec![s("old/series", 2.1)], None),
                (3, vec![s("old/series", 3.5)], None),
            ]
        );
    }

    /// A record naming a series the segment never defined, or not stepping
    /// the sequence forward, is corruption: replay stops there, as at a
    /// torn tail.
    #[test]
    fn an_unknown_series_number_or_a_zero_step_is_corruption() {
        for (series, seq_step) in [(7, 1), (0, 0)] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = JournalWriter::open(dir.path(), 1).unwrap();
            w.append(&[s("a", 1.0)], None).unwrap();
            w.flush().unwrap();
            drop(w);
            let (_, path) = segments(dir.path()).unwrap().pop().unwrap();
            let mut bytes = fs::read(&path).unwrap();
            let body = postcard::to_stdvec(&PackedRecord::<&str> {
                seq_step,
                new_series: vec![],
                samples: vec![PackedSample {
                    series,
                    time_step_ms: 0,
                    value: PackedValue::Units(1),
                }],
            })
            .unwrap();
            bytes.push(body.len() as u8);
            bytes.extend(crc32fast::hash(&body).to_le_bytes());
            bytes.extend(body);
            fs::write(&path, &bytes).unwrap();
            let (got, stats) = all(dir.path(), 0);
            assert_eq!(
                (got.len(), stats.torn),
                (1, 1),
                "series {series}, step {seq_step}"
            );
        }
    }
}
