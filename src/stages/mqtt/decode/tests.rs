//! Decoder tests: every example payload shipped in `tests/data`, and edges.

use super::*;
use proptest::prelude::*;

const LIMITS: DecodeLimits = DecodeLimits {
    max_payload_bytes: 65536,
    max_json_leaves: 256,
    max_json_depth: 16,
};
const NOW: i64 = 1_763_633_712_345;

fn ok(topic: &str, payload: &str) -> Vec<(String, f64, i64)> {
    decode(topic, payload.as_bytes(), NOW, &LIMITS)
        .unwrap_or_else(|r| panic!("{topic} {payload:?} rejected: {r}"))
        .into_iter()
        .map(|s| (s.series, s.value, s.time_ms))
        .collect()
}

fn err(topic: &str, payload: &str) -> RejectReason {
    decode(topic, payload.as_bytes(), NOW, &LIMITS).expect_err(payload)
}

/// What each example line must decode to: some `(series, value)` pairs that
/// must be present (all samples at receive time unless the test says), or a
/// rejection. Every line of the file must be listed here.
fn expectation(topic: &str) -> Result<Vec<(&'static str, f64)>, RejectReason> {
    Ok(match topic {
        "home/kitchen/temperature" => vec![("home/kitchen/temperature", 21.5)],
        "home/kitchen/humidity" => vec![("home/kitchen/humidity", 48.0)],
        "home/garage/door" => vec![("home/garage/door", 1.0)],
        "home/garage/light" => vec![("home/garage/light", 0.0)],
        "home/cellar/pump/energy_wh" => vec![("home/cellar/pump/energy_wh", 1234.0)],
        "zigbee2mqtt/living_room" => vec![
            ("zigbee2mqtt/living_room/temperature", 21.37),
            ("zigbee2mqtt/living_room/humidity", 44.72),
            ("zigbee2mqtt/living_room/linkquality", 120.0),
        ],
        "zigbee2mqtt/hall/motion" => vec![
            ("zigbee2mqtt/hall/motion/occupancy", 1.0),
            ("zigbee2mqtt/hall/motion/illuminance_lux", 14.0),
        ],
        // Availability and the bridge's state are not data.
        "zigbee2mqtt/living_room/availability" | "zigbee2mqtt/bridge/state" => vec![],
        "tele/plug_desk/SENSOR" => vec![
            ("tele/plug_desk/SENSOR/ENERGY/Total", 123.456),
            ("tele/plug_desk/SENSOR/ENERGY/Power", 42.0),
        ],
        "tele/th_bedroom/SENSOR" => vec![("tele/th_bedroom/SENSOR/AM2301/Temperature", 19.8)],
        "tele/plug_desk/STATE" => vec![
            ("tele/plug_desk/STATE/POWER", 1.0),
            ("tele/plug_desk/STATE/Wifi/Signal", -69.0),
        ],
        "tele/plug_desk/LWT" => vec![],
        "shellies/shellyplug-s-7A3B/relay/0/power" => {
            vec![("shellies/shellyplug-s-7A3B/relay/0/power", 37.45)]
        }
        // Watt-minutes, stored in Wh.
        "shellies/shellyplug-s-7A3B/relay/0/energy" => {
            vec![("shellies/shellyplug-s-7A3B/relay/0/energy", 8840.0 / 60.0)]
        }
        "shellyplus1pm-a8032ab1/status/switch:0" => vec![
            ("shellyplus1pm-a8032ab1/status/switch:0/output", 1.0),
            (
                "shellyplus1pm-a8032ab1/status/switch:0/aenergy/total",
                1043.211,
            ),
            (
                "shellyplus1pm-a8032ab1/status/switch:0/temperature/tC",
                41.2,
            ),
        ],
        "homie/weather-station/outdoor/temperature" => {
            vec![("homie/weather-station/outdoor/temperature", -3.4)]
        }
        // Attributes: metadata, not data.
        "homie/weather-station/outdoor/temperature/$unit"
        | "homie/weather-station/outdoor/temperature/$datatype" => vec![],
        "collectd/pi4/cpu-0/cpu-idle" => vec![("collectd/pi4/cpu-0/cpu-idle", 97.5)],
        "collectd/pi4/load/load" => vec![
            ("collectd/pi4/load/load/0", 0.12),
            ("collectd/pi4/load/load/1", 0.08),
            ("collectd/pi4/load/load/2", 0.05),
        ],
        // Discovery configs are excluded by the default config before
        // decoding; they are metadata (issue 5), any outcome will do here.
        t if t.starts_with("homeassistant/") => vec![],
        "/values/user/0048/0004/memory_rss" => {
            vec![("janitoo/0048/0004/memory_rss/0", 1834.0)]
        }
        "/values/user/0048/0004/cpu_percent" => vec![
            ("janitoo/0048/0004/cpu_percent/0", 12.5),
            ("janitoo/0048/0004/cpu_percent/1", 7.25),
        ],
        "home/../../etc/passwd" => vec![("home/../../etc/passwd", 1.0)],
        "livingroom-node/sensor/living_room_temperature/state" => {
            vec![("livingroom-node/sensor/living_room_temperature/state", 21.4)]
        }
        "livingroom-node/status" => vec![],
        "shellyplus1pm-a8032ab1/events/rpc" => {
            vec![("shellyplus1pm-a8032ab1/status/switch:0/apower", 13.1)]
        }
        "zigbee2mqtt/kitchen/plug" => vec![
            ("zigbee2mqtt/kitchen/plug/power", 40.5),
            ("zigbee2mqtt/kitchen/plug/state", 1.0),
        ],
        other => panic!("no expectation for example topic {other}"),
    })
}

#[test]
fn every_example_payload() {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/payloads.jsonl"
    ));
    let mut checked = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        let (family, topic, payload) = (
            v["family"].as_str().unwrap(),
            v["topic"].as_str().unwrap(),
            v["payload"].as_str().unwrap(),
        );
        let got = decode(topic, payload.as_bytes(), NOW, &LIMITS);
        if family == "hostile" && topic == "home/kitchen/temperature" {
            assert!(got.is_err(), "hostile {payload:?} accepted");
            checked += 1;
            continue;
        }
        if topic.starts_with("homeassistant/") {
            checked += 1;
            continue;
        }
        match expectation(topic) {
            Err(reason) => assert_eq!(got, Err(reason), "{topic}"),
            Ok(pairs) => {
                let samples = got.unwrap_or_else(|r| panic!("{topic}: {r}"));
                if pairs.is_empty() {
                    assert!(samples.is_empty(), "{topic} is not data: {samples:?}");
                }
                for (series, value) in pairs {
                    let s = samples
                        .iter()
                        .find(|s| s.series == series)
                        .unwrap_or_else(|| panic!("{series} missing"));
                    assert_eq!(s.value, value, "{series}");
                }
                assert!(samples.iter().all(|s| s.value.is_finite()));
            }
        }
        checked += 1;
    }
    assert_eq!(
        checked,
        text.lines().filter(|l| !l.trim().is_empty()).count()
    );
    assert!(checked >= 29);
}

#[test]
fn plain_numbers_and_words() {
    assert_eq!(ok("a", " 48 \n"), vec![("a".into(), 48.0, NOW)]);
    assert_eq!(ok("a", "-0.5")[0].1, -0.5);
    assert_eq!(ok("a", "OFF")[0].1, 0.0);
    assert_eq!(ok("a", "Online")[0].1, 1.0);
    assert_eq!(ok("a", "\"21.5\"")[0].1, 21.5);
    assert_eq!(err("a", "NaN"), RejectReason::NotFinite);
    assert_eq!(err("a", "inf"), RejectReason::NotFinite);
    assert_eq!(err("a", "1e400"), RejectReason::NotFinite);
    assert_eq!(err("a", "-1e999"), RejectReason::NotFinite);
    assert_eq!(err("a", "12abc"), RejectReason::NotNumeric);
    assert_eq!(err("a", "hello"), RejectReason::NotNumeric);
    assert_eq!(err("a", "   "), RejectReason::Empty);
    assert_eq!(err("a", "[1,2]"), RejectReason::NotNumeric);
    assert_eq!(
        decode("a", &[0xff, 0xfe], NOW, &LIMITS),
        Err(RejectReason::NotNumeric)
    );
}

#[test]
fn a_lone_word_is_a_state() {
    for (payload, device_class) in [
        ("ON", None),
        (" off\n", None),
        ("TRUE", None),
        ("\"Closed\"", Some("opening")),
        ("open", Some("opening")),
        ("Offline", Some("connectivity")),
    ] {
        assert_eq!(
            state_word(payload.as_bytes()),
            Some(StateWord { device_class }),
            "{payload:?}"
        );
    }
    for payload in [
        "21.5",
        "1.5e3",
        "hello",
        r#"{"state":"ON"}"#,
        "\"\"",
        "on and on and on and on",
    ] {
        assert_eq!(state_word(payload.as_bytes()), None, "{payload:?}");
    }
    assert_eq!(state_word(&[0xff, b'o', b'n']), None);
}

#[test]
fn json_objects_and_timestamps() {
    let got = ok(
        "dev",
        r#"{"ts": 1763633700, "a": {"b": 2, "c": "x"}, "on": true, "n": null}"#,
    );
    assert_eq!(
        got,
        vec![
            ("dev/a/b".into(), 2.0, 1_763_633_700_000),
            ("dev/on".into(), 1.0, 1_763_633_700_000)
        ]
    );
    // Seconds, milliseconds, microseconds and nanoseconds, told apart by
    // magnitude, as numbers or strings; RFC 3339 with an offset.
    for (payload, time_ms) in [
        (r#"{"timestamp": 1763633700.25, "v": 1}"#, 1_763_633_700_250),
        (r#"{"ts": 1763633700123, "v": 1}"#, 1_763_633_700_123),
        (r#"{"ts": 1763633700123456, "v": 1}"#, 1_763_633_700_123),
        (r#"{"ts": 1763633700123456789, "v": 1}"#, 1_763_633_700_123),
        (
            r#"{"ts": "1763633700123456789", "v": 1}"#,
            1_763_633_700_123,
        ),
        (
            r#"{"ts": "2026-11-20T10:15:00+01:00", "v": 1}"#,
            1_795_166_100_000,
        ),
        (
            r#"{"ts": "2026-11-20T09:15:00Z", "v": 1}"#,
            1_795_166_100_000,
        ),
    ] {
        assert_eq!(ok("d", payload)[0].2, time_ms, "{payload}");
    }
    // No offset: the zone is unknown, so the time is refused rather than guessed.
    assert_eq!(
        err("d", r#"{"ts": "2026-11-20T10:15:00", "v": 1}"#),
        RejectReason::BadTimestamp
    );
    assert_eq!(
        err("d", r#"{"ts": -5, "v": 1}"#),
        RejectReason::BadTimestamp
    );
    assert_eq!(
        err("d", r#"{"ts": true, "v": 1}"#),
        RejectReason::BadTimestamp
    );
    assert_eq!(
        err("d", r#"{"ts": 1e300, "v": 1}"#),
        RejectReason::BadTimestamp
    );
    assert_eq!(
        err("d", r#"{"state": "online?"}"#),
        RejectReason::NotNumeric
    );
    assert_eq!(err("d", r#"{"v": 1e400}"#), RejectReason::BadJson);
}

#[test]
fn limits() {
    let small = DecodeLimits {
        max_payload_bytes: 8,
        max_json_leaves: 2,
        max_json_depth: 16,
    };
    assert_eq!(
        decode("a", b"123456789", NOW, &small),
        Err(RejectReason::Oversize)
    );
    assert_eq!(
        decode(
            "a",
            br#"{"a":1,"b":2,"c":3}"#.as_slice(),
            NOW,
            &DecodeLimits {
                max_payload_bytes: 99,
                ..small
            }
        ),
        Err(RejectReason::TooManyLeaves)
    );
    let deep = |n: usize| format!("{}1{}", "{\"a\":".repeat(n), "}".repeat(n));
    assert_eq!(
        decode("a", deep(200).as_bytes(), NOW, &LIMITS),
        Err(RejectReason::TooDeep)
    );
    assert_eq!(
        decode("a", deep(17).as_bytes(), NOW, &LIMITS),
        Err(RejectReason::TooDeep)
    );
    assert_eq!(ok("a", &deep(16))[0].0, format!("a{}", "/a".repeat(16)));
    let nested_janitoo = format!(
        "{}{{\"uuid\":\"u\",\"hadd\":\"1/2\",\"data\":1}}{}",
        "{\"x\":".repeat(20),
        "}".repeat(20)
    );
    assert_eq!(
        decode(
            "/values/basic/1/2/u",
            nested_janitoo.as_bytes(),
            NOW,
            &LIMITS
        ),
        Err(RejectReason::TooDeep)
    );
}

#[test]
fn payload_times_of_each_family() {
    // zigbee2mqtt `last_seen`: ISO with an offset, or epoch milliseconds.
    let z = ok(
        "zigbee2mqtt/hall",
        r#"{"temperature": 20.5, "last_seen": "2026-11-20T10:15:00+01:00"}"#,
    );
    assert_eq!(
        z,
        vec![(
            "zigbee2mqtt/hall/temperature".into(),
            20.5,
            1_795_166_100_000
        )]
    );
    let z = ok(
        "zigbee2mqtt/hall",
        r#"{"temperature": 20.5, "last_seen": 1795166100000}"#,
    );
    assert_eq!(z[0].2, 1_795_166_100_000);
    assert_eq!(z.len(), 1, "last_seen is no series");
    // Tasmota's `Time` without an offset is local time: receive time.
    let t = ok(
        "tele/x/SENSOR",
        r#"{"Time":"2026-11-20T10:15:00","AM2301":{"Temperature":19.8}}"#,
    );
    assert_eq!(
        t,
        vec![("tele/x/SENSOR/AM2301/Temperature".into(), 19.8, NOW)]
    );
    let t = ok(
        "tele/x/SENSOR",
        r#"{"Time":"2026-11-20T10:15:00+01:00","DS18B20":{"Temperature":5}}"#,
    );
    assert_eq!(t[0].2, 1_795_166_100_000);
    // collectd: epoch seconds, or N for now.
    assert_eq!(
        ok("collectd/h/p/t", "1763633700.5:1")[0].2,
        1_763_633_700_500
    );
    assert_eq!(ok("collectd/h/p/t", "N:1")[0].2, NOW);
}

#[test]
fn family_edges() {
    use RejectReason::*;
    // collectd: unknowns skipped, garbage refused, a bare number still fine.
    assert_eq!(
        ok("collectd/h/load/load", "N:U:0.5:U"),
        vec![("collectd/h/load/load/1".into(), 0.5, NOW)]
    );
    assert_eq!(err("collectd/h/p/t", "N:U"), NotNumeric);
    assert_eq!(err("collectd/h/p/t", "yesterday:1"), BadTimestamp);
    assert_eq!(err("collectd/h/p/t", "N:abc"), NotNumeric);
    assert_eq!(ok("collectd/h/p/t", "42")[0].1, 42.0);
    // janitoo: only basic and user genres; `data` may be a numeric string.
    let v = r#"{"a":{"uuid":"u","hadd":"1/2","genre":3,"data":1},"b":{"uuid":"w","hadd":"1/2","genre":1,"index":4,"data":"2.5"}}"#;
    assert_eq!(
        ok("/values/basic/1/2/x", v),
        vec![("janitoo/1/2/w/4".into(), 2.5, NOW)]
    );
    assert_eq!(
        err("/values/system/1/2/x", r#"{"uuid":"u","genre":3,"data":1}"#),
        NotNumeric
    );
    assert_eq!(err("/values/user/1/2/x", r#"{"uuid":"#), BadJson);
    // Shelly Gen2: NotifyStatus merges into the status series, with its ts.
    let rpc = r#"{"src":"shellyplus1pm-a8","method":"NotifyStatus","params":{"ts":1763633700.25,"switch:0":{"id":0,"apower":12.5,"aenergy":{"total":1043.5,"by_minute":[1,2],"minute_ts":1763633640}}}}"#;
    let mut got = ok("shellyplus1pm-a8/events/rpc", rpc);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (
                "shellyplus1pm-a8/status/switch:0/aenergy/total".into(),
                1043.5,
                1_763_633_700_250
            ),
            (
                "shellyplus1pm-a8/status/switch:0/apower".into(),
                12.5,
                1_763_633_700_250
            ),
        ]
    );
    let event = r#"{"method":"NotifyEvent","params":{"events":[{"event":"single_push"}]}}"#;
    assert_eq!(ok("shellyplus1pm-a8/events/rpc", event), vec![]);
    // Tasmota: counters of uptime are not series.
    let s = ok("tele/x/STATE", r#"{"UptimeSec":5,"POWER":"OFF"}"#);
    assert_eq!(s, vec![("tele/x/STATE/POWER".into(), 0.0, NOW)]);
}

proptest! {
    #[test]
    fn never_panics_and_only_finite_values(topic in ".{0,40}", payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(samples) = decode(&topic, &payload, NOW, &LIMITS) {
            prop_assert!(samples.iter().all(|s| s.value.is_finite() && !s.series.is_empty()));
            if let route::Route::Generic(_) = route::route(&topic) {
                prop_assert!(!samples.is_empty());
                prop_assert!(samples.iter().all(|s| s.series.starts_with(&topic)));
            }
        }
    }

    #[test]
    fn json_leaves_round_trip(values in proptest::collection::btree_map("[a-z]{1,8}", -1e12f64..1e12, 1..20)) {
        // `ts` and `timestamp` are the sample time, not leaves.
        prop_assume!(!values.contains_key("ts") && !values.contains_key("timestamp"));
        let payload = serde_json::to_string(&values).unwrap();
        let samples = decode("t", payload.as_bytes(), NOW, &LIMITS).unwrap();
        prop_assert_eq!(samples.len(), values.len());
        for (s, (k, v)) in samples.iter().zip(&values) {
            prop_assert_eq!(&s.series, &format!("t/{k}"));
            prop_assert_eq!(s.value, *v);
        }
    }
}
