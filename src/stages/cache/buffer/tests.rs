//! Tests of one file's buffer: steps, aggregation, hold, freezing, and the
//! property that nothing accepted is lost or reordered.

use super::*;
use crate::model::{Aggregate, DsSpec, DsType};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::Duration;

const T0: i64 = 1_763_633_700; // a multiple of 60

fn spec(aggregates: &[Aggregate], hold_secs: u64) -> Arc<FileSpec> {
    Arc::new(FileSpec {
        rel_path: "t".into(),
        template: "default".into(),
        step_secs: 60,
        ds: aggregates
            .iter()
            .enumerate()
            .map(|(i, &aggregate)| DsSpec {
                name: format!("d{i}"),
                series: format!("s{i}"),
                ds_type: DsType::Gauge,
                heartbeat_secs: 120,
                min: None,
                max: None,
                aggregate,
                hold: Duration::from_secs(hold_secs),
                label: None,
                unit: None,
                renamed_from: None,
                about: Default::default(),
            })
            .collect(),
        rras: vec![].into(),
    })
}

fn row(t: i64, values: &[Option<f64>]) -> Row {
    Row {
        time_s: t,
        values: values.iter().copied().collect(),
    }
}

#[test]
fn row_ends_follow_rrdtool_steps() {
    assert_eq!(row_end(60, T0 * 1000), T0);
    assert_eq!(row_end(60, T0 * 1000 + 1), T0 + 60);
    assert_eq!(row_end(60, T0 * 1000 + 59_999), T0 + 60);
    assert_eq!(row_end(60, (T0 + 60) * 1000), T0 + 60);
    assert_eq!(row_end(300, 1_000), 300);
}

#[test]
fn aggregates_combine_a_step() {
    let mut b = FileBuffer::new(spec(
        &[
            Aggregate::Last,
            Aggregate::Average,
            Aggregate::Min,
            Aggregate::Max,
        ],
        0,
    ));
    for (t, v) in [(10, 4.0), (30, 1.0), (20, 7.0)] {
        for ds in 0..4 {
            b.add(ds, T0 * 1000 + t * 1000, v, 0).unwrap();
        }
    }
    let rows = b.take_batch(T0 + 60, false).unwrap();
    assert_eq!(
        rows,
        vec![row(T0 + 60, &[Some(1.0), Some(4.0), Some(1.0), Some(7.0)])]
    );
}

#[test]
fn open_rows_wait_unless_forced() {
    let mut b = FileBuffer::new(spec(&[Aggregate::Last], 0));
    b.add(0, T0 * 1000 + 5_000, 1.0, 0).unwrap(); // step ends T0+60
    b.add(0, T0 * 1000 + 65_000, 2.0, 0).unwrap(); // step ends T0+120
    let rows = b.take_batch(T0 + 100, false).unwrap();
    assert_eq!(rows, vec![row(T0 + 60, &[Some(1.0)])]);
    assert!(
        b.take_batch(T0 + 100, true).is_none(),
        "one batch in flight at a time"
    );
    assert!(b.on_written(Some(T0 + 60), 0));
    assert_eq!(b.take_batch(T0 + 100, false), None);
    assert_eq!(
        b.take_batch(T0 + 100, true).unwrap(),
        vec![row(T0 + 120, &[Some(2.0)])]
    );
}

#[test]
fn late_samples_are_refused_once_frozen_or_written() {
    let mut b = FileBuffer::new(spec(&[Aggregate::Last], 0));
    b.add(0, T0 * 1000, 1.0, 0).unwrap();
    b.take_batch(T0, false).unwrap();
    assert_eq!(b.add(0, T0 * 1000 - 1, 9.0, 0), Err(RejectReason::Late));
    assert!(
        b.add(0, T0 * 1000 + 1, 2.0, 0).is_ok(),
        "next step still open"
    );
    b.on_written(Some(T0), 0);
    assert_eq!(b.add(0, T0 * 1000, 9.0, 0), Err(RejectReason::Late));
    assert_eq!(b.pending_rows(), 1);
}

#[test]
fn failed_write_keeps_rows_for_retry() {
    let mut b = FileBuffer::new(spec(&[Aggregate::Last], 0));
    b.add(0, T0 * 1000, 1.0, 0).unwrap();
    let first = b.take_batch(T0, false).unwrap();
    assert!(!b.on_written(None, 0));
    assert_eq!(b.pending_rows(), 1);
    b.add(0, T0 * 1000, 5.0, 0).unwrap(); // thawed: the step takes samples again
    let again = b.take_batch(T0, false).unwrap();
    assert_eq!(first, vec![row(T0, &[Some(1.0)])]);
    assert_eq!(again, vec![row(T0, &[Some(5.0)])]);
    assert!(b.on_written(Some(T0), 0));
    assert_eq!(b.pending_rows(), 0);
    assert_eq!(b.pending_since_ms, None);
}

#[test]
fn a_partly_written_batch_keeps_the_rest() {
    let mut b = FileBuffer::new(spec(&[Aggregate::Last], 0));
    for (i, v) in [1.0, 2.0, 3.0].into_iter().enumerate() {
        b.add(0, (T0 + 60 * i as i64) * 1000, v, 0).unwrap();
    }
    b.take_batch(T0 + 120, false).unwrap();
    // librrd took the first row, then the file was locked.
    assert!(!b.on_written(Some(T0), 5));
    assert_eq!(b.pending_rows(), 2);
    assert_eq!(b.pending_since_ms, Some(5));
    assert_eq!(b.add(0, T0 * 1000, 9.0, 0), Err(RejectReason::Late));
    b.add(0, (T0 + 60) * 1000, 2.5, 0).unwrap();
    let again = b.take_batch(T0 + 120, false).unwrap();
    assert_eq!(
        again,
        vec![row(T0 + 60, &[Some(2.5)]), row(T0 + 120, &[Some(3.0)])]
    );
}

#[test]
fn hold_repeats_values_into_silent_steps() {
    // Two DS; the first holds 3 minutes, the second holds nothing.
    let mut s = (*spec(&[Aggregate::Last, Aggregate::Last], 180)).clone();
    s.ds[1].hold = Duration::ZERO;
    let mut b = FileBuffer::new(Arc::new(s));
    b.add(0, T0 * 1000, 1.0, 0).unwrap();
    b.add(1, T0 * 1000, 10.0, 0).unwrap();
    b.add(1, (T0 + 600) * 1000, 20.0, 0).unwrap();
    let rows = b.take_batch(T0 + 600, false).unwrap();
    assert_eq!(
        rows,
        vec![
            row(T0, &[Some(1.0), Some(10.0)]),
            row(T0 + 60, &[Some(1.0), None]),
            row(T0 + 120, &[Some(1.0), None]),
            row(T0 + 180, &[Some(1.0), None]),
            // The hold of DS 0 ran out: no row until the next sample, whose
            // row still shows nothing for DS 0.
            row(T0 + 600, &[None, Some(20.0)]),
        ]
    );
}

#[test]
fn hold_spans_batches() {
    let mut b = FileBuffer::new(spec(&[Aggregate::Last], 120));
    b.add(0, T0 * 1000, 1.0, 0).unwrap();
    b.take_batch(T0, false).unwrap();
    b.on_written(Some(T0), 0);
    b.add(0, (T0 + 180) * 1000, 2.0, 0).unwrap();
    let rows = b.take_batch(T0 + 180, false).unwrap();
    assert_eq!(
        rows,
        vec![
            row(T0 + 60, &[Some(1.0)]),
            row(T0 + 120, &[Some(1.0)]),
            row(T0 + 180, &[Some(2.0)])
        ]
    );
}

/// What a test step does to the buffer.
#[derive(Debug, Clone)]
enum Op {
    Add {
        offset_s: i64,
        value: i32,
    },
    /// `taken`: how many rows of the batch librrd took (all when larger).
    Flush {
        taken: usize,
        force: bool,
    },
    Tick(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0i64..1800, -1000i32..1000).prop_map(|(offset_s, value)| Op::Add { offset_s, value }),
        2 => (prop_oneof![Just(usize::MAX), 0usize..4], any::<bool>())
            .prop_map(|(taken, force)| Op::Flush { taken, force }),
        1 => (0i64..120).prop_map(Op::Tick),
    ]
}

proptest! {
    /// Under any interleaving of samples, flushes, failed writes and time,
    /// every accepted sample ends up in exactly one written row, rows are
    /// written in strictly increasing time, and each row holds the latest
    /// accepted sample of its step ("last" aggregation) — the step after,
    /// for a sample whose step a forced flush wrote before it ended.
    #[test]
    fn nothing_accepted_is_lost_or_reordered(ops in proptest::collection::vec(op(), 1..200)) {
        let mut b = FileBuffer::new(spec(&[Aggregate::Last], 0));
        let mut now_s = T0;
        let mut accepted: BTreeMap<i64, (i64, i32)> = BTreeMap::new(); // step end -> (time, value)
        let mut written: Vec<Row> = Vec::new();
        let mut in_flight: Option<Vec<Row>> = None;
        // The step a forced flush wrote before it ended.
        let mut written_open: Option<i64> = None;
        let mut arrival = 0;
        let settle = |b: &mut FileBuffer, taken: usize, in_flight: &mut Option<Vec<Row>>, written: &mut Vec<Row>| {
            if let Some(rows) = in_flight.take() {
                let taken = taken.min(rows.len());
                let done_upto = taken.checked_sub(1).map(|k| rows[k].time_s);
                b.on_written(done_upto, 0);
                written.extend(rows.into_iter().take(taken));
            }
        };
        for op in ops.iter().cloned().chain([Op::Flush { taken: usize::MAX, force: true }; 1]) {
            match op {
                Op::Add { offset_s, value } => {
                    arrival += 1;
                    let time_ms = (T0 + offset_s) * 1000 + arrival % 1000;
                    // What the buffer has written or is writing.
                    let done = in_flight
                        .as_ref()
                        .and_then(|rows| rows.last())
                        .or(written.last())
                        .map(|r| r.time_s);
                    if b.add(0, time_ms, value as f64, 0).is_ok() {
                        let mut end = row_end(60, time_ms);
                        if written_open == Some(end) && done.is_some_and(|d| end <= d) {
                            end += 60;
                        }
                        let e = accepted.entry(end).or_insert((time_ms, value));
                        if time_ms >= e.0 { *e = (time_ms, value); }
                    }
                }
                Op::Tick(s) => now_s += s,
                Op::Flush { taken, force } => {
                    settle(&mut b, taken, &mut in_flight, &mut written);
                    in_flight = b.take_batch(now_s, force);
                    if let Some(last) = in_flight.as_ref().and_then(|rows| rows.last())
                        && last.time_s > now_s
                    {
                        written_open = Some(last.time_s);
                    }
                }
            }
        }
        // Drain what is left, as shutdown does.
        for _ in 0..3 {
            settle(&mut b, usize::MAX, &mut in_flight, &mut written);
            in_flight = b.take_batch(now_s, true);
        }
        settle(&mut b, usize::MAX, &mut in_flight, &mut written);
        prop_assert_eq!(b.pending_rows(), 0);
        prop_assert!(written.windows(2).all(|w| w[0].time_s < w[1].time_s), "rows out of order");
        let got: BTreeMap<i64, f64> = written.iter().map(|r| (r.time_s, r.values[0].unwrap())).collect();
        let want: BTreeMap<i64, f64> = accepted.iter().map(|(&t, &(_, v))| (t, v as f64)).collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn a_new_step_merges_cached_rows_by_each_aggregate() {
    let old = spec(&[Aggregate::Average, Aggregate::Last], 0);
    let mut b = FileBuffer::new(old.clone());
    // From a 5-minute boundary, three 1-minute rows.
    let t5 = T0 / 300 * 300;
    for (i, (a, l)) in [(1.0, 10.0), (2.0, 20.0), (6.0, 30.0)]
        .into_iter()
        .enumerate()
    {
        let t = (t5 + 60 * i as i64 + 30) * 1000;
        b.add(0, t, a, 0).unwrap();
        b.add(1, t, l, 0).unwrap();
    }
    let mut five = (*old).clone();
    five.step_secs = 300;
    b.respec(Arc::new(five));
    assert_eq!(b.spec.step_secs, 300);
    let rows = b.take_batch(i64::MAX, true).unwrap();
    // One 5-minute row: the mean of the three, the last of the three.
    assert_eq!(rows, vec![row(t5 + 300, &[Some(3.0), Some(30.0)])]);
}

#[test]
fn a_new_layout_waits_for_the_batch_in_flight() {
    let old = spec(&[Aggregate::Last], 0);
    let mut b = FileBuffer::new(old.clone());
    b.add(0, T0 * 1000, 1.0, 0).unwrap();
    let _in_flight = b.take_batch(i64::MAX, true).unwrap();
    let mut five = (*old).clone();
    five.step_secs = 300;
    b.respec(Arc::new(five));
    assert_eq!(b.spec.step_secs, 60, "not while a batch is written");
    b.on_written(Some(T0), 0);
    assert_eq!(b.spec.step_secs, 300);
}
