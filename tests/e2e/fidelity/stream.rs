//! The recorded stream of the fidelity test, and the documented rule that
//! turns its samples into the rows a plain `rrdtool update` would get.
//!
//! Deterministic: a ChaCha generator seeded per series, so every run (and
//! every machine) publishes the same samples; change `SEED` to explore.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const SEED: u64 = 20_261_129;
pub const STEP: i64 = 60;
pub const HEARTBEAT: i64 = 120;

/// One series of the stream: its DS type, how samples of a step combine,
/// how long a value is held over empty steps, and its samples in publishing
/// order, in two phases with a flush between them.
pub struct Series {
    pub name: &'static str,
    pub ds_type: &'static str,
    pub aggregate: &'static str,
    pub hold_s: i64,
    pub phases: [Vec<Sample>; 2],
}

#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub time_ms: i64,
    pub value: f64,
}

/// What a series' values look like.
#[derive(Clone, Copy)]
enum Values {
    /// A random walk, three decimals.
    Walk,
    /// A random walk of integers (DERIVE takes no fractions).
    IntWalk,
    /// Increasing integers from near 2^32, wrapping past it, then reset to 0.
    Counter32,
    /// Increasing, with fractions.
    Rising,
    /// Counts of events per sample.
    Counts,
}

/// The whole stream, starting at `t0` (a step boundary in the past, at
/// least four hours before now).
pub fn stream(t0: i64) -> Vec<Series> {
    use Values::*;
    let series = |name, ds_type, aggregate, hold_s, values, seed| Series {
        name,
        ds_type,
        aggregate,
        hold_s,
        phases: samples(t0, values, SEED + seed),
    };
    vec![
        series("gauge_last", "GAUGE", "last", 0, Walk, 1),
        series("gauge_average", "GAUGE", "average", 0, Walk, 2),
        series("gauge_hold", "GAUGE", "last", 180, Walk, 3),
        series("counter", "COUNTER", "last", 0, Counter32, 4),
        series("derive", "DERIVE", "last", 0, IntWalk, 5),
        series("absolute", "ABSOLUTE", "last", 0, Counts, 6),
        series("dcounter", "DCOUNTER", "last", 0, Rising, 7),
        series("dderive", "DDERIVE", "last", 0, Walk, 8),
    ]
}

/// Two hours of samples, then an hour more after the flush; every kind of
/// timing the daemon meets: regular, jittered, a gap longer than the
/// heartbeat, bursts inside one step, duplicates (same time, later value
/// wins), and in the second phase samples older than what was written.
fn samples(t0: i64, values: Values, seed: u64) -> [Vec<Sample>; 2] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut level: f64 = match values {
        Values::Counter32 => 4_294_967_295.0 - 40_000.0,
        _ => 100.0,
    };
    let mut next = |rng: &mut ChaCha8Rng, step_index: i64| -> f64 {
        match values {
            Values::Walk => {
                level += rng.random_range(-5.0..5.0);
                (level * 1000.0).round() / 1000.0
            }
            Values::IntWalk => {
                level += rng.random_range(-50..=50) as f64;
                level
            }
            Values::Counter32 => {
                level += rng.random_range(100..2_000) as f64;
                if level > 4_294_967_295.0 {
                    level -= 4_294_967_296.0; // the 32-bit wrap
                }
                if step_index == 150 {
                    level = 0.0; // the device restarted
                }
                level
            }
            Values::Rising => {
                level += rng.random_range(0.0..3.0);
                (level * 1000.0).round() / 1000.0
            }
            Values::Counts => rng.random_range(0..50) as f64,
        }
    };
    let at = |step_index: i64, offset_ms: i64| (t0 + step_index * STEP) * 1000 + offset_ms;
    let mut phases = [Vec::new(), Vec::new()];
    for i in 0..180 {
        let phase = usize::from(i >= 120);
        let out = &mut phases[phase];
        match i {
            // A gap of six steps, longer than the heartbeat.
            40..=45 => {}
            // A gap the hold bridges (three steps), and one it does not.
            70..=71 | 90..=95 => {}
            // Bursts: five samples inside one step.
            50 | 51 | 130 => {
                for k in 0..5 {
                    out.push(Sample {
                        time_ms: at(i, 5_000 + k * 11_000),
                        value: next(&mut rng, i),
                    });
                }
            }
            // A duplicate: the same time twice, the second value counts.
            60 | 140 => {
                let t = at(i, 30_000);
                out.push(Sample {
                    time_ms: t,
                    value: next(&mut rng, i),
                });
                out.push(Sample {
                    time_ms: t,
                    value: next(&mut rng, i),
                });
            }
            // Regular in the first hour, jittered after.
            i if i < 60 => out.push(Sample {
                time_ms: at(i, 30_000),
                value: next(&mut rng, i),
            }),
            _ => out.push(Sample {
                time_ms: at(i, rng.random_range(1..60_000)),
                value: next(&mut rng, i),
            }),
        }
        // Late: after the flush, samples for steps already written.
        if i == 125 || i == 160 {
            phases[1].push(Sample {
                time_ms: at(if i == 125 { 99 } else { 110 }, 10_000),
                value: 1.0,
            });
        }
    }
    phases
}

/// The end of the step `(end - STEP, end]` holding `time_ms`, as the
/// README states and `rrdtool update` at that time would fill.
pub fn row_end(time_ms: i64) -> i64 {
    let step_ms = STEP * 1000;
    time_ms.div_euclid(step_ms) * STEP
        + if time_ms.rem_euclid(step_ms) == 0 {
            0
        } else {
            STEP
        }
}

/// A step's samples combined by the documented rule: `last` keeps the
/// sample with the latest time (a tie goes to the later arrival),
/// `average` the mean; `time_ms` is the latest sample time.
struct Cell {
    sum: f64,
    n: u32,
    last: f64,
    time_ms: i64,
}

/// The reference: what a plain `rrdtool update` gets for a series, phase
/// by phase, and how many samples the daemon must refuse as late. Rules:
/// - the samples of a step combine by the aggregate (see [`Cell`]);
/// - a sample whose step is at or before the last row written is late;
/// - a step without a sample between two rows repeats the last value while
///   it is at most `hold` old (its age: the step's end minus that value's
///   latest sample time);
/// - when more than a heartbeat passes between two updates, a `U` update at
///   the start of the later row's step comes first, so that the value fills
///   its own step (librrd would otherwise mark it unknown with the gap).
pub fn reference(series: &Series) -> (Vec<Vec<String>>, usize) {
    let mut written: Option<i64> = None;
    let mut held: Option<(f64, i64)> = None;
    let mut late = 0;
    let mut phases = Vec::new();
    for samples in &series.phases {
        let mut cells: std::collections::BTreeMap<i64, Cell> = Default::default();
        for s in samples {
            let end = row_end(s.time_ms);
            if written.is_some_and(|w| end <= w) {
                late += 1;
                continue;
            }
            let c = cells.entry(end).or_insert(Cell {
                sum: 0.0,
                n: 0,
                last: s.value,
                time_ms: s.time_ms,
            });
            if s.time_ms >= c.time_ms {
                c.last = s.value;
            }
            c.sum += s.value;
            c.n += 1;
            c.time_ms = c.time_ms.max(s.time_ms);
        }
        let mut rows: Vec<(i64, f64)> = Vec::new();
        let mut prev = written;
        for (&end, c) in &cells {
            if let (Some(p), Some((value, time_ms))) = (prev, held) {
                let mut t = p + STEP;
                while t < end && t * 1000 - time_ms <= series.hold_s * 1000 {
                    rows.push((t, value));
                    t += STEP;
                }
            }
            let value = match series.aggregate {
                "average" => c.sum / f64::from(c.n),
                _ => c.last,
            };
            held = Some((value, c.time_ms));
            rows.push((end, value));
            prev = Some(end);
        }
        let mut updates = Vec::new();
        let mut last = written;
        for (t, v) in rows {
            if let Some(l) = last
                && t - l > HEARTBEAT
                && t - STEP > l
            {
                updates.push(format!("{}:U", t - STEP));
            }
            updates.push(format!("{t}:{v}"));
            last = Some(t);
        }
        written = last.or(written);
        phases.push(updates);
    }
    (phases, late)
}
