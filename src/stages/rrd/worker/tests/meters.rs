//! Meters through real librrd: a recorded day of a plug's counter written
//! by the RRD thread, read back as archives, and turned into consumption
//! per local day and hour and into power (`energy`).
//!
//! Tolerances: librrd spreads each rise of a counter evenly over the time
//! since the reading before, and the cache stamps a step's last reading at
//! the step's end. A period's amount is therefore exact for readings that
//! fall on its edges, and otherwise off by at most what was used in the
//! one step (a minute) at each edge: that is the bound the tests allow.

use chrono::FixedOffset;

use super::*;
use crate::energy::{self, Per, Stored};
use crate::model::DsType;
use crate::mqtt::decode::{DecodeLimits, decode};
use crate::rrd::read::ArchivesRequest;

/// 2025-12-03 00:00 at UTC+1, the local day recorded.
const MIDNIGHT: i64 = 1_764_716_400;

fn zone() -> FixedOffset {
    FixedOffset::east_opt(3600).unwrap()
}

/// The default template's file for a meter's counter, as the cache makes
/// it: DDERIVE, min 0, a house's maximum, 6 hours' heartbeat, no hold.
fn meter_spec(path: &str, unit: &str) -> Arc<FileSpec> {
    let mut spec = (*spec(path, &["value"])).clone();
    let d = &mut spec.ds[0];
    d.series = path.into();
    d.ds_type = DsType::Dderive;
    d.heartbeat_secs = 6 * 3600;
    d.min = Some(0.0);
    d.max = energy::counter_max(unit);
    d.hold = std::time::Duration::ZERO;
    d.unit = Some(unit.into());
    Arc::new(spec)
}

/// A plug's day, minute by minute (the minute ending at `t`): a fridge
/// cycling, a kettle twice, a television in the evening.
fn watts(t: i64) -> f64 {
    let minute = (t - MIDNIGHT).rem_euclid(86_400) / 60;
    let fridge = if minute % 40 < 15 { 110.0 } else { 2.0 };
    let kettle = if (7 * 60 + 10..7 * 60 + 13).contains(&minute)
        || (16 * 60..16 * 60 + 4).contains(&minute)
    {
        2000.0
    } else {
        0.0
    };
    let tv = if (19 * 60..23 * 60).contains(&minute) {
        85.0
    } else {
        0.0
    };
    fridge + kettle + tv
}

/// The readings of a Shelly Gen1 plug's `relay/0/energy` (watt-minutes,
/// whole) every 30 s from `from` to `to`, decoded as the MQTT source
/// decodes them (to Wh), as the cache's rows (a step's last reading at the
/// step's end).
fn shelly_rows(from: i64, to: i64, start_wmin: f64, glitches: &[(i64, f64)]) -> Vec<(i64, f64)> {
    let limits = DecodeLimits {
        max_payload_bytes: 1024,
        max_json_leaves: 100,
        max_json_depth: 8,
    };
    let mut wmin = start_wmin;
    let mut rows: Vec<(i64, f64)> = Vec::new();
    let mut t = from;
    while t <= to {
        // What was used in the 30 s before, in watt-minutes.
        wmin += watts(t.div_euclid(60) * 60 + 60) / 2.0;
        let published = glitches
            .iter()
            .find(|(at, _)| *at == t)
            .map_or(wmin.floor(), |(_, v)| *v);
        let payload = format!("{published}");
        let samples = decode(
            "shellies/plug/relay/0/energy",
            payload.as_bytes(),
            t * 1000,
            &limits,
        )
        .unwrap();
        let row_end = (t + 59).div_euclid(60) * 60;
        match rows.last_mut() {
            Some(last) if last.0 == row_end => last.1 = samples[0].value,
            _ => rows.push((row_end, samples[0].value)),
        }
        t += 30;
    }
    rows
}

fn write_all(w: &mut Worker, spec: &Arc<FileSpec>, rows: &[(i64, f64)]) {
    for chunk in rows.chunks(500) {
        let report = w.write(&batch(spec, chunk));
        assert_eq!(report.done_upto, Some(chunk.last().unwrap().0));
    }
}

fn day_bars(w: &mut Worker, path: &str, per: Per, count: usize, now: i64) -> Vec<energy::Bar> {
    let got = w
        .meter_archives(&ArchivesRequest {
            rel_path: path.into(),
            ds: "value".into(),
            start_s: now - 70 * 86_400,
            end_s: now,
        })
        .unwrap();
    assert_eq!(got.ds_type, DsType::Dderive);
    assert!(
        energy::lacking(&got.layout).is_empty(),
        "the default template's archives"
    );
    let pieces = energy::pieces(Stored::Rate, &got.archives);
    let periods = energy::periods(per, count, now, &zone());
    energy::bars(&pieces, &periods, None, &zone())
}

/// The reading (Wh) in force at `t`: the last row at or before it.
fn reading_at(rows: &[(i64, f64)], t: i64) -> f64 {
    rows.iter().rev().find(|(end, _)| *end <= t).unwrap().1
}

/// The day's bar is what the counter rose between its midnights, within a
/// minute's use at each edge (2 W… 110 W at midnight); that rise.
fn assert_the_day_is_the_counters_rise(day: &energy::Bar, rows: &[(i64, f64)]) -> f64 {
    let counted = reading_at(rows, MIDNIGHT + 86_400) - reading_at(rows, MIDNIGHT);
    let edge = (watts(MIDNIGHT) + watts(MIDNIGHT + 86_400)) / 60.0;
    assert!(
        (day.amount - counted).abs() <= edge + 1e-6,
        "bar {} Wh, counter rose {counted} Wh",
        day.amount
    );
    counted
}

#[test]
fn a_recorded_day_of_a_shelly_plug_gives_its_counter_difference_and_its_power() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker(dir.path());
    let spec = meter_spec("shellies/plug/relay/0/energy", "Wh");
    // From 22:00 the day before to 02:00 the day after, at seconds that
    // are not the steps' (Shelly reports when it likes).
    let rows = shelly_rows(
        MIDNIGHT - 7200 + 17,
        MIDNIGHT + 86_400 + 7200,
        123_456.0,
        &[],
    );
    write_all(&mut w, &spec, &rows);
    let now = MIDNIGHT + 86_400 + 7200;
    let bars = day_bars(&mut w, &spec.rel_path, Per::Day, 2, now);
    let day = &bars[0];
    assert_eq!(day.period.start_s, MIDNIGHT);
    let counted = assert_the_day_is_the_counters_rise(day, &rows);
    assert!(counted > 1000.0, "a real day's use: {counted} Wh");
    assert_eq!(day.known_s, 86_400);
    // Power: each hour's amount in Wh is its mean power in W, which is
    // what the plug's power readings average to (watt-minutes are whole:
    // ±1/60 Wh a reading).
    let hours = day_bars(&mut w, &spec.rel_path, Per::Hour, 26, now);
    for h in hours.iter().filter(|h| h.known_s == 3600) {
        let published: f64 = (1..=60)
            .map(|m| watts(h.period.start_s + m * 60))
            .sum::<f64>()
            / 60.0;
        assert!(
            (h.amount - published).abs() < 1.0,
            "hour at {}: {} W from the counter, {published} W published",
            h.period.start_s,
            h.amount
        );
    }
    assert!(hours.iter().filter(|h| h.known_s == 3600).count() >= 24);
}

#[test]
fn a_meter_reset_and_a_glitch_never_show_as_negative_or_huge() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker(dir.path());
    let spec = meter_spec("shellies/meter/emeter/0/total", "Wh");
    let from = MIDNIGHT - 3600 + 5;
    let mut rows = shelly_rows(
        from,
        MIDNIGHT + 86_400 + 3600,
        6_000_000.0,
        &[
            // One absurd reading at 03:00:05 (a bit flipped), then sane again.
            (MIDNIGHT + 3 * 3600 + 5, 9.0e12),
        ],
    );
    // At 12:00 the meter is replaced: it starts again near 0.
    let reset = MIDNIGHT + 12 * 3600;
    let at_reset = reading_at(&rows, reset);
    for r in rows.iter_mut().filter(|r| r.0 > reset) {
        r.1 -= at_reset - 3.0;
    }
    write_all(&mut w, &spec, &rows);
    let now = MIDNIGHT + 86_400 + 3600;
    let hours = day_bars(&mut w, &spec.rel_path, Per::Hour, 26, now);
    // Never negative, never more than the house could use.
    for h in &hours {
        assert!(h.amount >= 0.0, "{h:?}");
        assert!(h.amount <= 100_000.0 * h.known_s as f64 / 3600.0, "{h:?}");
    }
    // The glitch's hour and the reset's hour lose the steps around them,
    // nothing else.
    let glitch_hour = &hours[3];
    assert_eq!(glitch_hour.period.start_s, MIDNIGHT + 3 * 3600);
    assert!(glitch_hour.known_s >= 3600 - 3 * 60, "{glitch_hour:?}");
    let reset_hour = &hours[12];
    assert!(reset_hour.known_s >= 3600 - 2 * 60, "{reset_hour:?}");
    let day = &day_bars(&mut w, &spec.rel_path, Per::Day, 2, now)[0];
    let truth: f64 = (1..=1440).map(|m| watts(MIDNIGHT + m * 60) / 60.0).sum();
    // What the unknown steps held, at most 2000 W for 5 minutes.
    assert!(day.amount <= truth + 1.0, "{} > {truth}", day.amount);
    assert!(
        day.amount >= truth - 5.0 * 2000.0 / 60.0,
        "{} ≪ {truth}",
        day.amount
    );
}

#[test]
fn a_meter_made_before_as_a_gauge_keeps_its_readings_and_still_counts() {
    let dir = tempfile::tempdir().unwrap();
    // An older version made the plug's file as a gauge of its readings.
    let gauge = spec("shellies/plug/relay/0/energy", &["value"]);
    let rows = shelly_rows(
        MIDNIGHT - 3600 + 17,
        MIDNIGHT + 86_400 + 3600,
        90_000.0,
        &[],
    );
    let (before, after): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r.0 <= MIDNIGHT + 3600);
    write_all(&mut worker(dir.path()), &gauge, &before);
    // This version wants a counter: the file is written as it is, and the
    // index says what it holds.
    let mut w = worker(dir.path());
    let counter = meter_spec("shellies/plug/relay/0/energy", "Wh");
    // The cache is told, once, to write it as the file holds it.
    let first = w.write(&batch(&counter, &after[..1]));
    assert_eq!(first.kept_kinds, [("value".to_owned(), DsType::Gauge)]);
    let again = w.write(&batch(&counter, &after[1..2]));
    assert!(again.kept_kinds.is_empty());
    write_all(&mut w, &counter, &after[2..]);
    let entry = w.index.get(&counter.rel_path).unwrap();
    assert_eq!(entry.ds[0].ds_type, Some(DsType::Gauge));
    let meter = entry.ds[0].meter().expect("its family says it counts");
    assert_eq!(meter.stored, Stored::Readings);
    assert_eq!(meter.drawn(), None, "drawn as readings");
    let got = w
        .meter_archives(&ArchivesRequest {
            rel_path: counter.rel_path.clone(),
            ds: "value".into(),
            start_s: MIDNIGHT - 86_400,
            end_s: MIDNIGHT + 86_400 + 3600,
        })
        .unwrap();
    assert_eq!(got.ds_type, DsType::Gauge);
    let pieces = energy::pieces(Stored::Readings, &got.archives);
    let day = &energy::bars(
        &pieces,
        &energy::periods(Per::Day, 2, MIDNIGHT + 86_400 + 60, &zone()),
        None,
        &zone(),
    )[0];
    // Readings are averages over their rows, taken at the rows' middles:
    // half a minute's use at each edge, at most.
    assert_the_day_is_the_counters_rise(day, &rows);
}
