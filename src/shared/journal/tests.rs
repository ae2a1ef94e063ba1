//! The journal's format: records and values read back exactly, every
//! earlier format still read, and damage read as a clean stop.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use super::format::*;
use super::read::*;
use super::segments::*;
use super::write::*;
use super::{Journal, Release};
use crate::config::{JournalConfig, SyncPolicy};
use crate::metrics::Metrics;
use crate::model::{HeldClock, Sample};

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
    (got, reader.stats().clone())
}

/// Everything read back from `dir` after `old` was written there as its
/// first segment (records 1 and 2) and a writer of the current format
/// appended `samples` as record 3; nothing torn.
fn after_an_old_segment(dir: &Path, old: &[u8], samples: &[Sample]) -> Vec<Record> {
    fs::write(dir.join(format!("{:020}-1.{EXTENSION}", 1)), old).unwrap();
    let mut w = JournalWriter::open(dir, 3).unwrap();
    w.append(samples, None).unwrap();
    w.flush().unwrap();
    let (got, stats) = all(dir, 0);
    assert_eq!(stats.torn, 0);
    got
}

/// A writer in `dir` that has appended three one-sample records.
fn three_records(dir: &Path) -> JournalWriter {
    let mut w = JournalWriter::open(dir, 1).unwrap();
    for i in 0..3 {
        w.append(&[s("a", i as f64)], None).unwrap();
    }
    w
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
    let mut w = three_records(dir.path());
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
    let mut w = three_records(dir.path());
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
    assert_eq!(
        after_an_old_segment(
            dir.path(),
            &old,
            &[s("new/series", 3.0), s("old/series", 3.5)]
        ),
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
    assert_eq!(
        after_an_old_segment(dir.path(), &old, &[s("old/series", 3.5)]),
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

/// The journal's life through its interface.
#[tokio::test]
async fn append_commit_read_back_and_release() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        dir: dir.path().join("journal"),
        sync: SyncPolicy::Interval(std::time::Duration::from_secs(10)),
    };
    let metrics = Arc::new(Metrics::default());
    let mut journal = Journal::open(&config, 1, metrics.clone()).unwrap();
    let sample = |v| Sample {
        series: "a".into(),
        time_ms: 1_763_633_700_000,
        value: v,
    };
    assert_eq!(journal.append(&[sample(1.0)], None).unwrap(), 1);
    assert_eq!(journal.append(&[sample(2.0)], None).unwrap(), 2);
    journal.commit().unwrap();
    journal.sync_in_background();
    assert!(metrics.journal_bytes.load(Relaxed) > 0);

    let mut reader = Reader::open(&config.dir, 1).unwrap();
    assert_eq!(
        reader.next_record().unwrap(),
        Some((2, vec![sample(2.0)], None))
    );
    assert_eq!(reader.next_record().unwrap(), None);
    assert_eq!((reader.stats().skipped, reader.stats().last_seq), (1, 2));

    // A second run starts a segment; releasing what the first holds
    // deletes it, never the one being written.
    journal.close().unwrap();
    let mut next = Journal::open(&config, 3, metrics).unwrap();
    next.append(&[sample(3.0)], None).unwrap();
    next.commit().unwrap();
    let release = Release::new(&config);
    // Nothing is forgotten while the files cannot be made durable.
    let failed = release.upto(2, || Err(std::io::Error::other("fsync failed")));
    assert!(failed.is_err());
    assert_eq!(
        Reader::open(&config.dir, 0)
            .unwrap()
            .next_record()
            .unwrap()
            .map(|r| r.0),
        Some(1)
    );
    assert_eq!(release.upto(2, || Ok(())).unwrap(), 1);
    assert_eq!(release.upto(3, || Ok(())).unwrap(), 0);
    let mut reader = Reader::open(&config.dir, 0).unwrap();
    assert_eq!(reader.next_record().unwrap().map(|r| r.0), Some(3));
}

/// `sync = "always"` split in two for a caller that keeps appending: the
/// records reach the kernel when the commit begins (a reader sees them),
/// and the fsync is asked for only when records came since the last one.
#[test]
fn a_begun_commit_asks_for_an_fsync_only_when_records_came() {
    let dir = tempfile::tempdir().unwrap();
    let config = JournalConfig {
        dir: dir.path().join("journal"),
        sync: SyncPolicy::Always,
    };
    let mut journal = Journal::open(&config, 1, Arc::new(Metrics::default())).unwrap();
    assert!(journal.begin_commit().unwrap().is_none(), "nothing to sync");
    journal.append(&[s("a", 1.0)], None).unwrap();
    let fsync = journal.begin_commit().unwrap().expect("an fsync to run");
    // Appended while the fsync runs: the next commit's.
    journal.append(&[s("a", 2.0)], None).unwrap();
    fsync.sync_data().unwrap();
    let (records, _) = all(&config.dir, 0);
    assert_eq!(records.len(), 1, "the second record is still buffered");
    assert!(journal.begin_commit().unwrap().is_some());
    assert!(journal.begin_commit().unwrap().is_none());
    let (records, _) = all(&config.dir, 0);
    assert_eq!(records.len(), 2);
    // An inline commit counts as a sync too.
    journal.append(&[s("a", 3.0)], None).unwrap();
    journal.commit().unwrap();
    assert!(journal.begin_commit().unwrap().is_none());

    // Other policies flush only: the fsync is the background tick's.
    let config = JournalConfig {
        dir: dir.path().join("interval"),
        sync: SyncPolicy::Interval(std::time::Duration::from_secs(10)),
    };
    let mut journal = Journal::open(&config, 1, Arc::new(Metrics::default())).unwrap();
    journal.append(&[s("a", 1.0)], None).unwrap();
    assert!(journal.begin_commit().unwrap().is_none());
    assert_eq!(all(&config.dir, 0).0.len(), 1);
}
