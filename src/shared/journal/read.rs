//! Reading records back across segments, in any of the four formats, up
//! to the first torn or corrupt record of each segment.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::format::{
    MAGIC, MAGIC_NAMED, MAGIC_PACKED, NamedRecord, PackedRecord, Steps, read_fixed_frame,
    read_packed_frame,
};
use super::segments::segments;
use crate::model::{HeldClock, Sample};

/// What replay found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReplayStats {
    pub records: u64,
    pub samples: u64,
    /// Records at or before the snapshot's sequence, already covered.
    pub skipped: u64,
    /// Segments that ended in a torn or corrupt record.
    pub torn: u64,
    pub last_seq: u64,
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
