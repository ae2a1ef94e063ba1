//! Tests of series resolution and flush scheduling, time passed by hand.

use super::*;
use crate::cache::scheduler::{RETRY_AFTER, RETRY_MAX};
use crate::model::{DsType, Row};

const T0_MS: i64 = 1_763_633_700_000; // a multiple of 60 s

fn config(extra: &str) -> Arc<Config> {
    let text = format!("[cache]\nflush_after = \"5m\"\nflush_jitter = \"0s\"\n{extra}");
    Arc::new(Config::parse(&text, "test").unwrap())
}

/// A batch's rows as (step end, first DS's value).
fn first_values(batch: &crate::rrd::WriteBatch) -> Vec<(i64, Option<f64>)> {
    batch.rows.iter().map(|r| (r.time_s, r.values[0])).collect()
}

fn sample(series: &str, time_ms: i64, value: f64) -> Sample {
    Sample {
        series: series.into(),
        time_ms,
        value,
    }
}

#[test]
fn series_get_files_from_the_first_matching_template() {
    let c = config(
        r#"
        [limits]
        max_series = 3
        [[template]]
        name = "power"
        topics = ["shellies/+/relay/+/energy"]
        ds_type = "DERIVE"
        step = "5m"
        rra = [{ cf = "AVERAGE", every = "5m", keep = "1d" }]
        [[template]]
        name = "default"
        topics = ["home/#", "shellies/#"]
        "#,
    );
    let mut cache = Cache::new(c);
    let out = cache.ingest(
        vec![
            sample("shellies/plug/relay/0/energy", T0_MS, 1.0),
            sample("home/a", T0_MS, 1.0),
            sample("elsewhere/x", T0_MS, 1.0),
            sample("home/../b", T0_MS, 1.0),
            sample("home/c", T0_MS, 1.0),
        ],
        T0_MS,
    );
    assert_eq!(out.accepted, 3);
    assert_eq!(
        out.rejected,
        vec![
            (RejectReason::NoTemplate, "elsewhere/x".into()),
            (RejectReason::SeriesLimit, "home/c".into())
        ]
    );
    let energy = cache.spec(0);
    assert_eq!((energy.template.as_str(), energy.step_secs), ("power", 300));
    assert_eq!(energy.ds[0].ds_type, DsType::Derive);
    assert_eq!(energy.ds[0].hold, Duration::ZERO, "hold is for gauges only");
    assert_eq!(cache.spec(2).rel_path, "home/.2E.2E/b");
    assert_eq!(
        (
            cache.file_count(),
            cache.series_count(),
            cache.pending_rows()
        ),
        (3, 3, 3)
    );
}

#[test]
fn configured_files_take_their_series() {
    let c = config(
        r#"
        [[file]]
        path = "living/climate"
        ds = [{ name = "t", series = "z/living/temperature" }, { name = "h", series = "z/living/humidity" }]
        "#,
    );
    let mut cache = Cache::new(c);
    let out = cache.ingest(
        vec![
            sample("z/living/temperature", T0_MS, 21.0),
            sample("z/living/humidity", T0_MS, 40.0),
            sample("living/climate", T0_MS, 1.0),
        ],
        T0_MS,
    );
    assert_eq!(
        out.rejected,
        vec![(RejectReason::PathTaken, "living/climate".into())]
    );
    let batch = cache.take(0, T0_MS, true).unwrap();
    assert_eq!(
        batch.rows,
        vec![Row {
            time_s: T0_MS / 1000,
            values: [Some(21.0), Some(40.0)].into_iter().collect()
        }]
    );
}

#[test]
fn files_are_due_flush_after_their_first_row() {
    let mut cache = Cache::new(config(""));
    // Open row: the step ends at T0 + 60 s.
    cache.ingest(vec![sample("a", T0_MS + 10_000, 1.0)], T0_MS + 10_000);
    assert_eq!(cache.next_due(), Some(T0_MS + 10_000 + 300_000));
    assert!(cache.pump(T0_MS + 309_999).0.is_empty());
    cache.ingest(vec![sample("a", T0_MS + 300_000, 2.0)], T0_MS + 300_000);
    let batches = cache.pump(T0_MS + 310_000).0;
    assert_eq!(batches.len(), 1);
    // The steps between the two samples repeat the first (hold is 10 min).
    let t0 = T0_MS / 1000;
    let rows = first_values(&batches[0]);
    assert_eq!(
        rows,
        vec![
            (t0 + 60, Some(1.0)),
            (t0 + 120, Some(1.0)),
            (t0 + 180, Some(1.0)),
            (t0 + 240, Some(1.0)),
            (t0 + 300, Some(2.0))
        ]
    );
    assert_eq!(cache.next_due(), None, "in flight: not scheduled");
    cache.on_written(0, Some(t0 + 300), Some(t0 + 300), T0_MS + 310_000);
    assert_eq!(cache.next_due(), None, "nothing left");
    assert_eq!(cache.pending_rows(), 0);
}

#[test]
fn an_open_row_waits_for_its_step_to_end() {
    let c = Arc::new(
        Config::parse("[cache]\nflush_after = \"1s\"\nflush_jitter = \"0s\"", "t").unwrap(),
    );
    let mut cache = Cache::new(c);
    cache.ingest(vec![sample("a", T0_MS + 1_000, 1.0)], T0_MS + 1_000);
    assert_eq!(cache.next_due(), Some(T0_MS + 60_000));
    assert!(cache.pump(T0_MS + 59_999).0.is_empty());
    assert_eq!(cache.pump(T0_MS + 60_000).0.len(), 1);
}

#[test]
fn failed_writes_are_retried_soon() {
    let mut cache = Cache::new(config(""));
    cache.ingest(vec![sample("a", T0_MS, 1.0)], T0_MS);
    let batch = cache.pump(T0_MS + 300_000).0.pop().unwrap();
    cache.on_written(batch.file, None, None, T0_MS + 300_000);
    assert_eq!(cache.pending_rows(), 1);
    // A busy file (a reader's lock) is tried again within seconds.
    let retry = T0_MS + 300_000 + RETRY_AFTER.as_millis() as i64;
    assert_eq!(cache.next_due(), Some(retry));
    assert_eq!(cache.pump(retry).0.pop().unwrap().rows, batch.rows);
    // A file that keeps failing is tried less and less often.
    let step = RETRY_AFTER.as_millis() as i64;
    cache.on_written(batch.file, None, None, retry);
    assert_eq!(cache.next_due(), Some(retry + 2 * step));
    let _ = cache.pump(i64::MAX).0;
    cache.on_written(batch.file, None, None, retry);
    assert_eq!(cache.next_due(), Some(retry + 4 * step));
    for _ in 0..20 {
        let _ = cache.pump(i64::MAX).0;
        cache.on_written(batch.file, None, None, retry);
    }
    assert_eq!(cache.next_due(), Some(retry + RETRY_MAX.as_millis() as i64));
    // Success resets it.
    let _ = cache.pump(i64::MAX).0;
    cache.on_written(batch.file, Some(T0_MS / 1000), None, retry);
    assert_eq!(cache.failures(batch.file), 0);
}

#[test]
fn jitter_spreads_files_but_is_stable() {
    let c = Arc::new(
        Config::parse("[cache]\nflush_after = \"5m\"\nflush_jitter = \"30s\"", "t").unwrap(),
    );
    let mut cache = Cache::new(c);
    let names: Vec<String> = (0..50).map(|i| format!("s/{i}")).collect();
    cache.ingest(names.iter().map(|n| sample(n, T0_MS, 1.0)).collect(), T0_MS);
    let dues: std::collections::BTreeSet<i64> = (0..50).map(|f| cache.due_at(f).unwrap()).collect();
    assert!(dues.len() > 25, "{} distinct due times", dues.len());
    assert!(
        dues.iter()
            .all(|&d| (T0_MS + 300_000..=T0_MS + 330_000).contains(&d))
    );
}

#[test]
fn silent_series_are_forgotten_but_come_back() {
    let c = config(
        r#"
        [limits]
        max_series = 3
        [[file]]
        path = "pinned"
        ds = [{ name = "v", series = "configured" }]
        "#,
    );
    let mut cache = Cache::new(c);
    let hour = 3_600_000;
    cache.ingest(
        vec![sample("a", T0_MS, 1.0), sample("configured", T0_MS, 1.0)],
        T0_MS,
    );
    // Rows still to write are never pruned.
    assert!(
        cache
            .prune_dead(T0_MS + 48 * hour, Duration::from_secs(86_400))
            .is_empty()
    );
    let batches = cache.pump(i64::MAX).0;
    for b in &batches {
        cache.on_written(b.file, b.rows.last().map(|r| r.time_s), None, T0_MS);
    }
    cache.ingest(vec![sample("b", T0_MS + 20 * hour, 2.0)], T0_MS + 20 * hour);
    assert_eq!(
        cache.ingest(vec![sample("c", T0_MS, 1.0)], T0_MS).rejected[0].0,
        RejectReason::SeriesLimit
    );
    let pruned = cache.prune_dead(T0_MS + 25 * hour, Duration::from_secs(86_400));
    assert_eq!(
        pruned,
        vec!["a".to_owned()],
        "only `a` is silent, configured files stay"
    );
    assert_eq!((cache.series_count(), cache.file_count()), (2, 2));
    // The cap counts live series: `c` fits now, and takes `a`'s slot.
    assert_eq!(cache.files.len(), 3);
    let out = cache.ingest(vec![sample("c", T0_MS + 25 * hour, 3.0)], T0_MS + 25 * hour);
    assert_eq!(out.accepted, 1);
    assert_eq!(cache.files.len(), 3, "the vacant slot was reused");
    assert_eq!(cache.spec(cache.series["c"].file).rel_path, "c");
    // `a` comes back by itself once there is room.
    for b in cache.pump(i64::MAX).0 {
        cache.on_written(
            b.file,
            b.rows.last().map(|r| r.time_s),
            None,
            T0_MS + 26 * hour,
        );
    }
    assert_eq!(
        cache
            .prune_dead(T0_MS + 60 * hour, Duration::from_secs(86_400))
            .len(),
        2
    );
    let out = cache.ingest(vec![sample("a", T0_MS + 60 * hour, 4.0)], T0_MS + 60 * hour);
    assert_eq!(out.accepted, 1);
    let id = cache.series["a"].file;
    assert_eq!(cache.spec(id).rel_path, "a");
    assert_eq!(
        cache.take(id, i64::MAX, true).unwrap().rows[0].values[0],
        Some(4.0)
    );
}

fn meta(label: &str, unit: &str, ds_type: Option<DsType>) -> SeriesMeta {
    SeriesMeta {
        label: Some(label.into()),
        unit: Some(unit.into()),
        ds_type,
        hold: Some(Duration::from_secs(3600)),
        ..SeriesMeta::default()
    }
}

fn file_of<'c>(cache: &'c Cache, series: &str) -> &'c Arc<FileSpec> {
    cache.spec(cache.series[series].file)
}

#[test]
fn discovery_before_values_shapes_the_file() {
    let mut cache = Cache::new(config(""));
    cache.describe(vec![(
        "z2m/plug/energy".into(),
        Some(meta("Plug energy", "kWh", Some(DsType::Dderive))),
    )]);
    cache.ingest(vec![sample("z2m/plug/energy", T0_MS, 1.5)], T0_MS);
    let ds = &file_of(&cache, "z2m/plug/energy").ds[0];
    assert_eq!(ds.ds_type, DsType::Dderive);
    assert_eq!(
        (ds.label.as_deref(), ds.unit.as_deref()),
        (Some("Plug energy"), Some("kWh"))
    );
    assert_eq!(ds.hold, Duration::ZERO, "no hold for a counter");
}

#[test]
fn discovery_after_values_renames_but_keeps_the_layout() {
    let mut cache = Cache::new(config(""));
    cache.ingest(vec![sample("z2m/hall/temperature", T0_MS, 20.0)], T0_MS);
    let report = cache.describe(vec![(
        "z2m/hall/temperature".into(),
        Some(meta("Hall", "°C", Some(DsType::Gauge))),
    )]);
    assert_eq!(report.updated, 1);
    let ds = &file_of(&cache, "z2m/hall/temperature").ds[0];
    assert_eq!(
        (ds.label.as_deref(), ds.unit.as_deref()),
        (Some("Hall"), Some("°C"))
    );
    assert_eq!(
        ds.hold,
        Duration::from_secs(3600),
        "expire_after is the hold"
    );
    // A counter now: the file on disk is a gauge, so that is reported.
    let report = cache.describe(vec![(
        "z2m/hall/temperature".into(),
        Some(meta("Hall", "°C", Some(DsType::Dderive))),
    )]);
    assert_eq!(report.kept.len(), 1);
    assert_eq!(
        file_of(&cache, "z2m/hall/temperature").ds[0].ds_type,
        DsType::Gauge
    );
    // Removed: back to the template's.
    cache.describe(vec![("z2m/hall/temperature".into(), None)]);
    assert_eq!(file_of(&cache, "z2m/hall/temperature").ds[0].label, None);
}

#[test]
fn rules_ignore_rename_scale_and_beat_discovery() {
    let mut cache = Cache::new(config(
        r#"
        [[template]]
        name = "counters"
        topics = []
        ds_type = "DERIVE"
        min = 0.0
        [[rule]]
        topics = ["tele/+/STATE/Wifi/#"]
        ignore = true
        [[rule]]
        topics = ["shellies/plug/relay/0/energy"]
        rename = "garage/plug/energy"
        scale = 0.001
        unit = "kWh"
        template = "counters"
        [[rule]]
        topics = ["z2m/+/temperature"]
        label = "Temperature"
        unit = "°F"
        "#,
    ));
    cache.describe(vec![(
        "z2m/hall/temperature".into(),
        Some(meta("Hall", "°C", None)),
    )]);
    let out = cache.ingest(
        vec![
            sample("tele/p/STATE/Wifi/RSSI", T0_MS, -60.0),
            sample("shellies/plug/relay/0/energy", T0_MS, 1500.0),
            sample("z2m/hall/temperature", T0_MS, 70.0),
        ],
        T0_MS,
    );
    assert_eq!((out.accepted, out.ignored), (2, 1));
    assert!(!cache.series.contains_key("tele/p/STATE/Wifi/RSSI"));
    let energy = file_of(&cache, "garage/plug/energy");
    assert_eq!(energy.rel_path, "garage/plug/energy");
    assert_eq!(
        (energy.template.as_str(), energy.ds[0].ds_type),
        ("counters", DsType::Derive)
    );
    assert_eq!(energy.ds[0].unit.as_deref(), Some("kWh"));
    let batch = cache
        .take(
            cache.series["garage/plug/energy"].file,
            T0_MS + 60_000,
            true,
        )
        .unwrap();
    assert_eq!(batch.rows[0].values[0], Some(1.5), "scaled");
    let t = &file_of(&cache, "z2m/hall/temperature").ds[0];
    assert_eq!(
        (t.label.as_deref(), t.unit.as_deref()),
        (Some("Temperature"), Some("°F"))
    );
}

#[test]
fn described_series_are_bounded_like_series() {
    let mut cache = Cache::new(config("[limits]\nmax_series = 2\n"));
    let m = || Some(meta("x", "W", None));
    let report = cache.describe(vec![
        ("a".into(), m()),
        ("b".into(), m()),
        ("c".into(), m()),
    ]);
    assert_eq!(cache.meta.len(), 2);
    assert_eq!(report.kept.len(), 1);
    cache.describe(vec![("a".into(), m())]);
    assert_eq!(cache.meta.len(), 2, "an update of a known series is fine");
}

#[test]
fn samples_from_the_future_are_refused_before_they_reach_a_file() {
    let c = config("[limits]\nmax_future = \"5m\"\n");
    let mut cache = Cache::new(c);
    let now = T0_MS;
    let outcome = cache.ingest(
        vec![
            sample("ok/edge", now + 300_000, 1.0),
            sample("bad/clock", now + 300_001, 2.0),
            // Epoch microseconds read as milliseconds: year 57,000.
            sample("bad/units", 1_763_633_700_000_000, 3.0),
        ],
        now,
    );
    assert_eq!(outcome.accepted, 1);
    assert_eq!(
        outcome.rejected,
        vec![
            (RejectReason::Future, "bad/clock".to_owned()),
            (RejectReason::Future, "bad/units".to_owned())
        ]
    );
    // Refused before a file was made for them.
    assert_eq!(cache.series_count(), 1);
}

#[test]
fn samples_older_than_the_finest_archive_are_refused_but_not_when_replayed() {
    // The finest archive keeps one day of 1-minute rows.
    let c = config(
        "[[template]]\nname = \"default\"\ntopics = [\"#\"]\nstep = \"1m\"\n\
         rra = [{ cf = [\"AVERAGE\"], every = \"1m\", keep = \"1d\" },\
                { cf = [\"AVERAGE\"], every = \"1h\", keep = \"1y\" }]\n",
    );
    let day_ms = 86_400_000;
    let mut cache = Cache::new(c.clone());
    let outcome = cache.ingest(
        vec![
            sample("a", T0_MS - day_ms, 1.0),
            sample("a", T0_MS - day_ms - 1, 2.0),
        ],
        T0_MS,
    );
    assert_eq!(outcome.accepted, 1);
    assert_eq!(
        outcome.rejected,
        vec![(RejectReason::TooOld, "a".to_owned())]
    );
    // A new series whose first sample is too old gets no file.
    let outcome = cache.ingest(vec![sample("b", T0_MS - 2 * day_ms, 1.0)], T0_MS);
    assert_eq!(
        outcome.rejected,
        vec![(RejectReason::TooOld, "b".to_owned())]
    );
    assert_eq!(cache.series_count(), 1);

    // The journal gives back what was accepted before a two-day outage.
    let mut restarted = Cache::new(c);
    let outcome = restarted.replay(
        vec![
            sample("a", T0_MS - 2 * day_ms, 1.0),
            sample("b", T0_MS + day_ms, 2.0),
        ],
        T0_MS,
    );
    assert_eq!((outcome.accepted, outcome.rejected.len()), (2, 0));
}

/// A sample that waited for the clock and falls in a step already written
/// goes into the next step; a live one there is refused as late.
#[test]
fn a_released_sample_in_a_written_step_goes_into_the_next() {
    let mut cache = Cache::new(config(""));
    assert_eq!(
        cache
            .ingest(vec![sample("a", T0_MS + 1_000, 1.0)], T0_MS + 1_000)
            .accepted,
        1
    );
    let (batches, _) = cache.pump(T0_MS + 400_000);
    let t0 = T0_MS / 1000;
    assert_eq!(batches[0].rows.last().map(|r| r.time_s), Some(t0 + 60));
    cache.on_written(
        batches[0].file,
        Some(t0 + 60),
        Some(t0 + 60),
        T0_MS + 400_000,
    );
    let live = cache.ingest(vec![sample("a", T0_MS + 30_000, 2.0)], T0_MS + 400_000);
    assert_eq!(live.rejected, vec![(RejectReason::Late, "a".into())]);
    let released = cache.release(vec![sample("a", T0_MS + 30_000, 2.0)], T0_MS + 400_000);
    assert_eq!((released.accepted, released.rejected.len()), (1, 0));
    let (batches, _) = cache.pump(T0_MS + 1_000_000);
    let rows = first_values(&batches[0]);
    assert_eq!(rows, vec![(t0 + 120, Some(2.0))]);
}

/// A graph asks for a file mid-step: its open step is written early. The
/// samples still coming for that step go into the next one, not refused.
#[test]
fn a_step_written_early_for_a_graph_passes_its_later_samples_on() {
    use crate::cache::scheduler::Waiter;
    let mut cache = Cache::new(config(""));
    let t0 = T0_MS / 1000;
    cache.ingest(vec![sample("a", T0_MS + 1_000, 1.0)], T0_MS + 1_000);
    assert!(cache.force_file("a", Waiter(1)).is_none());
    let (batches, _) = cache.pump(T0_MS + 2_000);
    assert_eq!(batches[0].rows.last().map(|r| r.time_s), Some(t0 + 60));
    cache.on_written(batches[0].file, Some(t0 + 60), Some(t0 + 60), T0_MS + 2_000);
    // Later in the same step: taken, into the next step.
    let later = cache.ingest(vec![sample("a", T0_MS + 30_000, 3.0)], T0_MS + 30_000);
    assert_eq!((later.accepted, later.rejected.len()), (1, 0));
    let (batches, _) = cache.pump(T0_MS + 1_000_000);
    let rows = first_values(&batches[0]);
    assert_eq!(rows, vec![(t0 + 120, Some(3.0))]);
    // A step written once it had ended still refuses what comes late.
    cache.on_written(
        batches[0].file,
        Some(t0 + 120),
        Some(t0 + 120),
        T0_MS + 1_000_000,
    );
    let late = cache.ingest(vec![sample("a", T0_MS + 90_000, 4.0)], T0_MS + 1_000_000);
    assert_eq!(late.rejected, vec![(RejectReason::Late, "a".into())]);
}

/// An on/off state its family names (zigbee2mqtt's `occupancy`) keeps each
/// step's maximum: 20 s of motion inside a 60 s step make the step 1, not
/// an average of a third. Its unit comes from the family too, unless
/// discovery says otherwise.
#[test]
fn a_short_detection_inside_a_step_is_kept_as_on() {
    let mut cache = Cache::new(config(""));
    let at = |s: i64| T0_MS + s * 1000;
    cache.ingest(
        vec![
            sample("zigbee2mqtt/hall/occupancy", at(5), 0.0),
            sample("zigbee2mqtt/hall/occupancy", at(20), 1.0),
            sample("zigbee2mqtt/hall/occupancy", at(40), 0.0),
            sample("zigbee2mqtt/hall/battery", at(5), 90.0),
            sample("zigbee2mqtt/hall/battery", at(40), 100.0),
        ],
        at(50),
    );
    let spec = file_of(&cache, "zigbee2mqtt/hall/occupancy");
    assert!(spec.ds[0].about.binary);
    assert_eq!(spec.ds[0].about.device_class.as_deref(), Some("occupancy"));
    assert_eq!(spec.ds[0].aggregate, crate::model::Aggregate::Max);
    let id = cache.series["zigbee2mqtt/hall/occupancy"].file;
    let batch = cache.take(id, at(3600), true).unwrap();
    assert_eq!(first_values(&batch), vec![(T0_MS / 1000 + 60, Some(1.0))]);
    let battery = file_of(&cache, "zigbee2mqtt/hall/battery");
    assert_eq!(battery.ds[0].unit.as_deref(), Some("%"));
    assert!(!battery.ds[0].about.binary);
}

/// A payload's on/off word makes its series a state (an opening's for
/// `open`/`closed`), but only fills in: the device class discovery gave
/// stays, and a guess that adds nothing changes nothing.
#[test]
fn a_word_payload_guesses_a_state_that_discovery_beats() {
    let mut cache = Cache::new(config(""));
    assert!(
        cache
            .guess_state("home/garage/door".into(), Some("opening"))
            .is_some()
    );
    cache.ingest(vec![sample("home/garage/door", T0_MS, 0.0)], T0_MS);
    let door = file_of(&cache, "home/garage/door");
    assert!(door.ds[0].about.binary);
    assert_eq!(door.ds[0].about.device_class.as_deref(), Some("opening"));
    assert_eq!(door.ds[0].aggregate, crate::model::Aggregate::Max);
    assert!(
        cache
            .guess_state("home/garage/door".into(), Some("opening"))
            .is_none()
    );

    cache.describe(vec![(
        "home/hall/window".into(),
        Some(SeriesMeta {
            device_class: Some("window".into()),
            ..SeriesMeta::default()
        }),
    )]);
    cache.guess_state("home/hall/window".into(), Some("opening"));
    cache.ingest(vec![sample("home/hall/window", T0_MS, 1.0)], T0_MS);
    let window = file_of(&cache, "home/hall/window");
    assert!(window.ds[0].about.binary);
    assert_eq!(window.ds[0].about.device_class.as_deref(), Some("window"));
}

#[test]
fn a_meter_is_a_counter_unless_its_file_on_disk_is_a_gauge() {
    let c = config("");
    let mut cache = Cache::new(c.clone());
    let total = "tele/plug/SENSOR/ENERGY/Total";
    cache.ingest(vec![sample(total, T0_MS, 12.5)], T0_MS);
    // A family's counter: DDERIVE, no negative rate, a house's maximum,
    // hours between readings still counted, nothing held.
    let d = &cache.spec(0).ds[0];
    assert_eq!(d.ds_type, DsType::Dderive);
    assert_eq!(d.min, Some(0.0));
    assert!(
        (d.max.unwrap() * 3600.0 - 100.0).abs() < 1e-9,
        "100 kW in kWh/s"
    );
    assert_eq!(d.heartbeat_secs, 6 * 3600);
    assert_eq!(d.hold, Duration::ZERO);
    // Its file was made as a gauge by an older version: written as one.
    assert_eq!(
        cache.keep_kinds_on_disk(0, vec![("value".into(), DsType::Gauge)]),
        Some("tele/plug/SENSOR/ENERGY/Total".into())
    );
    let kept = cache.spec(0).ds[0].clone();
    assert_eq!(kept.ds_type, DsType::Gauge);
    assert_eq!((kept.min, kept.max), (None, None));
    assert_eq!(
        kept.hold,
        Duration::from_secs(600),
        "the template's hold again"
    );
    // A reload or discovery does not turn it back.
    let report = cache.reload(c);
    assert!(report.kept.is_empty(), "{report:?}");
    assert_eq!(cache.spec(0).ds[0].ds_type, DsType::Gauge);
    assert_eq!(
        cache.keep_kinds_on_disk(0, vec![("value".into(), DsType::Gauge)]),
        None
    );
    // Tasmota's `Today` restarts every day: a level, not a counter.
    cache.ingest(
        vec![sample("tele/plug/SENSOR/ENERGY/Today", T0_MS, 1.5)],
        T0_MS,
    );
    assert_eq!(cache.spec(1).ds[0].ds_type, DsType::Gauge);
}
