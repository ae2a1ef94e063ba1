//! The journal on disk: the records' layout, their values and frames.
//! Writing is `write.rs`, reading `read.rs`, segment files `segments.rs`.
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

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

/// The first bytes of a segment in the current format. Read as a record
/// length of the first format, they exceed [`RECORD_MAX_BYTES`], so the
/// formats cannot be mistaken for each other.
pub(super) const MAGIC: &[u8; 8] = b"DLRRDJ4\n";
/// The third format: as the fourth, without the held clock.
pub(super) const MAGIC_PACKED: &[u8; 8] = b"DLRRDJ3\n";
/// The second format (names once per segment, nothing else packed).
pub(super) const MAGIC_NAMED: &[u8; 8] = b"DLRRDJ2\n";

/// A record larger than this is corruption (payloads are capped far below).
pub(super) const RECORD_MAX_BYTES: u32 = 64 << 20;
/// The previous record's sequence and sample time in a segment, from which
/// the next record's steps are taken (both 0 at a segment's start).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Steps {
    pub(super) seq: u64,
    pub(super) time_ms: i64,
}

/// A record of the current format; `S` is `&str` written, `String` read.
#[derive(Serialize, Deserialize)]
pub(super) struct PackedRecord<S> {
    pub(super) seq_step: u64,
    pub(super) new_series: Vec<S>,
    pub(super) samples: Vec<PackedSample>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct PackedSample {
    pub(super) series: u32,
    pub(super) time_step_ms: i64,
    pub(super) value: PackedValue,
}

/// A value in as few bytes as read back bit for bit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(super) enum PackedValue {
    Units(i64),
    Tenths(i64),
    Hundredths(i64),
    Thousandths(i64),
    Single(f32),
    Double(f64),
}

impl PackedValue {
    pub(super) fn pack(value: f64) -> PackedValue {
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

    pub(super) fn unpack(self) -> f64 {
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

pub(super) const SCALES: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];

/// A record of the second format, as read back.
#[derive(Serialize, Deserialize)]
pub(super) struct NamedRecord {
    pub(super) seq: u64,
    pub(super) new_series: Vec<String>,
    pub(super) samples: Vec<NamedSample>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct NamedSample {
    pub(super) series: u32,
    pub(super) time_ms: i64,
    pub(super) value: f64,
}

/// A frame's length varint and CRC at most.
pub(super) const FRAME_MAX_BYTES: u64 = 5 + 4;

/// Writes a record's frame, `[body length, varint][CRC32 u32 LE][body]`;
/// returns its length in bytes.
pub(super) fn write_frame(out: &mut impl Write, body: &[u8]) -> io::Result<u64> {
    let mut length = [0u8; 5];
    let length = postcard::to_slice(&(body.len() as u32), &mut length).map_err(io::Error::other)?;
    out.write_all(length)?;
    out.write_all(&crc32fast::hash(body).to_le_bytes())?;
    out.write_all(body)?;
    Ok((length.len() + 4 + body.len()) as u64)
}

/// A current-format record's body and its length in bytes with its frame,
/// or `None` if torn or corrupt.
pub(super) fn read_packed_frame(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let (len, rest) = postcard::take_from_bytes::<u32>(bytes).ok()?;
    let length_bytes = bytes.len() - rest.len();
    checked_body(rest, len).map(|(framed, body)| (length_bytes + framed, body))
}

/// The same for the earlier formats, whose length is a `u32` LE.
pub(super) fn read_fixed_frame(bytes: &[u8]) -> Option<(usize, &[u8])> {
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
