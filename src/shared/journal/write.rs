//! Appending records to the current segment: encoded against what the
//! segment has seen (names, steps), framed, buffered until a commit, the
//! segment allocated ahead of them and rotated by size.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{
    FRAME_MAX_BYTES, MAGIC, PackedRecord, PackedSample, PackedValue, Steps, write_frame,
};
use super::segments::new_segment;
use crate::model::{HeldClock, Sample};

pub(super) const SEGMENT_MAX_BYTES: u64 = 16 << 20;
/// How far ahead of its records a segment is allocated.
pub(super) const PREALLOCATE_BYTES: u64 = 1 << 20;
pub struct JournalWriter {
    dir: PathBuf,
    out: BufWriter<File>,
    /// The same segment, for fsyncs on another thread while `out` takes
    /// the next records.
    segment: Arc<File>,
    /// Records were appended since the last fsync began.
    unsynced: bool,
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

impl JournalWriter {
    /// Opens a new segment starting at `next_seq` (after what replay saw).
    pub fn open(dir: &Path, next_seq: u64) -> io::Result<JournalWriter> {
        crate::atomic_file::create_dir_all_durable(dir)?;
        let (out, segment) = start_segment(dir, next_seq)?;
        Ok(JournalWriter {
            dir: dir.to_owned(),
            out,
            segment,
            unsynced: false,
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
        let framed = match write_frame(&mut self.out, &body) {
            Ok(framed) => framed,
            Err(e) => {
                self.torn = true;
                return Err(e);
            }
        };
        self.last = last;
        self.unsynced = true;
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

    /// Hands buffered records to the kernel: they survive a crash of the
    /// process from here on.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flushes and returns a handle on the current segment, for an fsync
    /// on another thread: it covers every record appended so far (older
    /// segments were synced when they were closed). `None` when no record
    /// came since the last one began, so there is nothing to wait for.
    pub fn sync_handle(&mut self) -> io::Result<Option<Arc<File>>> {
        self.out.flush()?;
        Ok(std::mem::take(&mut self.unsynced).then(|| self.segment.clone()))
    }

    /// Flushes and fsyncs: records survive a power cut from here on.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.unsynced = false;
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
        self.unsynced = false;
        self.out.get_ref().sync_data()
    }

    /// Bytes appended since opening.
    pub fn written_bytes(&self) -> u64 {
        self.written_bytes
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.close()?;
        (self.out, self.segment) = start_segment(&self.dir, self.next_seq)?;
        self.segment_bytes = MAGIC.len() as u64;
        self.allocated_bytes = 0;
        self.written_bytes += MAGIC.len() as u64;
        self.series_ids.clear();
        self.last = Steps::default();
        self.torn = false;
        Ok(())
    }
}

/// A new segment with its magic buffered, and a second handle on it for
/// fsyncs.
fn start_segment(dir: &Path, first_seq: u64) -> io::Result<(BufWriter<File>, Arc<File>)> {
    let file = new_segment(dir, first_seq)?;
    let segment = Arc::new(file.try_clone()?);
    let mut out = BufWriter::with_capacity(64 << 10, file);
    out.write_all(MAGIC)?;
    Ok((out, segment))
}

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
