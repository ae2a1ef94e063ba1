//! Tests of loading and validation: the shipped file, and broken ones.

use super::*;

#[test]
fn shipped_default_parses_and_matches_builtin_defaults() {
    let shipped = Config::default_config().expect("shipped config is valid");
    let empty = Config::parse("", "(empty)").expect("empty config is valid");
    // The shipped file documents the defaults: it must say what the code does.
    assert_eq!(shipped, empty);
    assert_eq!(shipped.data_dir, PathBuf::from("rrd"));
    assert_eq!(
        shipped.embedded_broker.as_ref().unwrap().listen.to_string(),
        "127.0.0.1:1883"
    );
    assert_eq!(
        (shipped.mqtt.host.as_str(), shipped.mqtt.port),
        ("127.0.0.1", 1883)
    );
    assert_eq!(shipped.templates.len(), 1);
    let t = &shipped.templates[0];
    assert_eq!((t.step_secs, t.heartbeat_secs), (60, 120));
    assert_eq!(
        t.rras.len(),
        10,
        "the day in one archive, the rest in three"
    );
}

#[test]
fn default_template_files_stay_under_200_kb() {
    let config = Config::default_config().unwrap();
    let rows: u64 = config.templates[0].rras.iter().map(|r| r.rows as u64).sum();
    // 8 bytes per row per DS, plus a header of a few KB.
    assert!(rows * 8 < 195_000, "{rows} rows");
    assert!(
        config.templates[0]
            .rras
            .iter()
            .any(|r| r.steps_per_row == 1440 && r.rows >= 1826)
    );
}

#[test]
fn reports_every_error_at_once_with_keys() {
    let text = r#"
        data_dir = "a:b"
        bogus = 1
        [mqtt]
        broker = "tcp://nowhere"
        qos = 7
        topics = ["a/#/b"]
        [cache]
        flush_afterr = "1m"
        [[template]]
        name = "t"
        step = "0s"
        [[template]]
        name = "u"
        rra = [{ cf = "AVERAGE", every = "90s", keep = "1d" }]
        [[file]]
        path = "../escape"
        template = "missing"
        ds = []
    "#;
    let err = Config::parse(text, "test.toml").unwrap_err();
    let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
    for expected in [
        "bogus",
        "mqtt.broker",
        "mqtt.qos",
        "mqtt.topics[0]",
        "cache.flush_afterr",
        "template[0].step",
        "template[1].rra[0].every",
        "file[0].path",
        "file[0].template",
    ] {
        assert!(keys.contains(&expected), "missing {expected} in {keys:?}");
    }
    let shown = err.to_string();
    assert!(shown.starts_with("test.toml: "), "{shown}");
    assert!(shown.contains("flush_afterr"), "{shown}");
}

#[test]
fn top_level_typo_is_named() {
    // `data_dir` errors are found alongside unknown keys.
    let err = Config::parse("datadir = \"x\"", "t").unwrap_err();
    assert!(err.errors[0].message.contains("datadir"), "{err}");
}

#[test]
fn the_builtin_default_template_stays_last() {
    let c = Config::parse("[[template]]\nname = \"fast\"\ntopics = [\"fast/#\"]\nstep = \"10s\"\nrra = [{ cf = \"AVERAGE\", every = \"10s\", keep = \"1d\" }]\n", "t").unwrap();
    let names: Vec<&str> = c.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["fast", "default"]);
    // A template named `default` replaces it.
    let c = Config::parse(
        "[[template]]\nname = \"default\"\ntopics = [\"only/#\"]\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.templates.len(), 1);
    assert_eq!(c.templates[0].topics, ["only/#"]);
}

#[test]
fn type_errors_name_their_key() {
    let err = Config::parse(
        "data_dir = 5\n[cache]\nflush_after = 3\n[[template]]\nname = \"t\"\nstep = true\n",
        "t",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["cache.flush_after", "template[0].step", "data_dir"],
        "{err}"
    );
}

#[test]
fn absurd_durations_are_refused_not_overflowed() {
    let err = Config::parse(
        "shutdown_timeout = \"100y\"\n[mqtt]\nkeep_alive = \"100000s\"\nreconnect_max = \"1000000000y\"\n[cache]\nflush_after = \"1000000y\"\nflush_jitter = \"2d\"\n",
        "t",
    )
    .unwrap_err();
    let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "shutdown_timeout",
        "mqtt.keep_alive",
        "mqtt.reconnect_max",
        "cache.flush_after",
        "cache.flush_jitter",
    ] {
        assert!(keys.contains(&key), "{key} missing in {err}");
    }
}

#[test]
fn syntax_error_names_the_line() {
    let err = Config::parse("[mqtt]\nbroker = \n", "t").unwrap_err();
    assert_eq!(err.errors[0].key, "line 2");
}

#[test]
fn external_broker_and_multi_ds_file() {
    let text = r#"
        [mqtt]
        broker = "mqtt://10.0.0.5:1884"
        username = "u"
        password = "p"
        [[template]]
        name = "fast"
        topics = ["fast/#"]
        step = "10s"
        [[file]]
        path = "living_room/climate"
        template = "fast"
        ds = [
          { name = "temperature", series = "z/living/temperature" },
          { name = "humidity", series = "z/living/humidity", aggregate = "average" },
        ]
    "#;
    let c = Config::parse(text, "t").unwrap();
    assert!(c.embedded_broker.is_none());
    assert_eq!((c.mqtt.host.as_str(), c.mqtt.port), ("10.0.0.5", 1884));
    assert_eq!(c.mqtt.credentials, Some(("u".into(), "p".into())));
    let f = &c.files[0];
    assert_eq!(f.step_secs, 10);
    assert_eq!(f.ds[1].aggregate, crate::model::Aggregate::Average);
    assert_eq!(f.ds[0].heartbeat_secs, 20);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    /// Lines of plausible keys and values, mixed with noise.
    fn line() -> impl Strategy<Value = String> {
        let keys = prop_oneof![
            Just("[mqtt]".to_owned()),
            Just("[cache]".to_owned()),
            Just("[[template]]".to_owned()),
            Just("[[file]]".to_owned()),
            Just("[limits]".to_owned()),
            "(data_dir|broker|qos|step|hold|flush_after|max_series|name|topics|path|rra|keep_alive|dead_after) = ".prop_map(|k| k),
        ];
        let values = prop_oneof![
            "-?[0-9]{1,20}".prop_map(|v| v),
            "\"[0-9]{0,6}(s|m|h|d|y|ms)?\"".prop_map(|v| v),
            "\"[a-z:/#+.]{0,12}\"".prop_map(|v| v),
            Just("[]".to_owned()),
            Just("[{ cf = \"AVERAGE\", every = \"1m\", keep = \"1d\" }]".to_owned()),
            ".{0,12}".prop_map(|v| v),
        ];
        (keys, values).prop_map(|(k, v)| {
            if k.ends_with("= ") {
                format!("{k}{v}")
            } else {
                k
            }
        })
    }

    proptest! {
        #[test]
        fn arbitrary_config_text_is_an_error_or_a_config(lines in proptest::collection::vec(line(), 0..12)) {
            let text = lines.join("\n");
            match Config::parse(&text, "fuzz") {
                Ok(c) => prop_assert!(!c.templates.is_empty()),
                Err(e) => prop_assert!(!e.errors.is_empty()),
            }
        }
    }
}

#[test]
fn rules_are_checked_key_by_key() {
    let err = Config::parse(
        r#"
        [[rule]]
        topics = []
        rename = "a/#"
        scale = 0.0
        template = "nope"
        [[rule]]
        topics = ["x"]
        colour = "red"
        "#,
        "t",
    )
    .unwrap_err()
    .to_string();
    for key in [
        "rule[0].topics",
        "rule[0].rename",
        "rule[0].scale",
        "rule[0].template",
        "rule[1]",
    ] {
        assert!(err.contains(key), "{key} missing: {err}");
    }
    let c = Config::parse("[[rule]]\ntopics = [\"a/#\"]\nunit = \"W\"\n", "t").unwrap();
    assert_eq!(c.rules[0].meta.unit.as_deref(), Some("W"));
    assert!(c.rules[0].matches("a/b"));
    // Discovery subscribes to Home Assistant's configs unless told not to.
    let c = Config::parse("[mqtt]\ntopics = [\"zigbee2mqtt/#\"]\n", "t").unwrap();
    assert_eq!(c.mqtt.topics, ["zigbee2mqtt/#", "homeassistant/#"]);
    let c = Config::parse("[mqtt]\ntopics = [\"z/#\"]\ndiscovery = false\n", "t").unwrap();
    assert_eq!(c.mqtt.topics, ["z/#"]);
}

#[test]
fn history_moves_and_ds_renames_are_checked() {
    let text = r#"
        [limits]
        max_future = "2d"
        [[rule]]
        topics = ["a/+/t"]
        rename = "b/t"
        move_history = true
        [[rule]]
        topics = ["c/t"]
        move_history = true
        [[rule]]
        topics = ["d/t"]
        rename = "e/t"
        move_history = true
        [[file]]
        path = "f"
        ds = [{ name = "x", series = "f/x", renamed_from = "not a name" }]
    "#;
    let err = Config::parse(text, "test.toml").unwrap_err();
    let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "limits.max_future",
            "file[0].ds[0].renamed_from",
            "rule[0].move_history",
            "rule[1].move_history",
        ]
    );
}

#[test]
fn dashboards_are_checked_key_by_key() {
    let text = r##"
        [[dashboard]]
        name = "a b"
        range = "decade"
        [[dashboard.view]]
        title = ""
        warning = nan
        series = [{ series = "x/#", color = "red", draw = "line" }]
        [[dashboard]]
        name = "ok"
        [[dashboard.view]]
        title = "fine"
        series = [{ series = "x/y", color = "#00ff00", draw = "stack", cf = "MAX" }]
    "##;
    let err = Config::parse(text, "test.toml").unwrap_err();
    let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "dashboard[0].name",
            "dashboard[0].range",
            "dashboard[0].view[0].title",
            "dashboard[0].view[0].warning",
            "dashboard[0].view[0].series[0].series",
            "dashboard[0].view[0].series[0].color",
        ]
    );
    let ok = Config::parse(
        &text
            .replace("a b", "house")
            .replace("decade", "week")
            .replace("title = \"\"", "title = \"t\"")
            .replace("warning = nan", "")
            .replace("x/#", "x/z")
            .replace("\"red\"", "\"#ff0000\""),
        "t",
    )
    .unwrap();
    assert_eq!(ok.dashboards.len(), 2);
    assert_eq!(ok.dashboards[1].views[0].series[0].color, Some((0, 255, 0)));
}

#[test]
fn dashboard_rules_need_one_named_capture() {
    let text = r#"
        [[dashboard_rule]]
        name = "rooms"
        series = "zigbee2mqtt/+room/#"
        [[dashboard_rule]]
        name = "none"
        series = "zigbee2mqtt/+/#"
        [[dashboard_rule]]
        name = "two"
        series = "+a/+b"
        [[dashboard_rule]]
        name = "rest"
        series = "a/#/+x"
    "#;
    let err = Config::parse(text, "t").unwrap_err();
    let keys: Vec<&str> = err.errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "dashboard_rule[1].series",
            "dashboard_rule[2].series",
            "dashboard_rule[3].series"
        ]
    );
    let ok = Config::parse(
        "[[dashboard_rule]]\nname = \"rooms\"\nseries = \"zigbee2mqtt/+room/+/temperature\"\nview_by = \"unit\"",
        "t",
    )
    .unwrap();
    let rule = &ok.dashboard_rules[0];
    assert_eq!(
        rule.capture("zigbee2mqtt/hall/sensor1/temperature"),
        Some("hall")
    );
    assert_eq!(rule.capture("zigbee2mqtt/hall/sensor1/humidity"), None);
    assert_eq!(rule.capture("zigbee2mqtt/hall/temperature"), None);
    assert_eq!(rule.capture("zigbee2mqtt/hall/s/temperature/x"), None);
}

#[test]
fn the_embedded_broker_refuses_a_public_listener_without_users() {
    let err = |text: &str| Config::parse(text, "t").unwrap_err().to_string();
    let e = err("[embedded_broker]\nlisten = \"0.0.0.0:1883\"\n");
    assert!(
        e.contains("embedded_broker.listen") && e.contains("allow_anonymous"),
        "{e}"
    );
    Config::parse(
        "[embedded_broker]\nlisten = \"0.0.0.0:1883\"\nallow_anonymous = true\n",
        "t",
    )
    .unwrap();
    let hash = crate::password::hash_password("x").unwrap();
    let c = Config::parse(
        &format!("[embedded_broker]\nlisten = \"0.0.0.0:1883\"\n[[embedded_broker.users]]\nname = \"plug\"\npassword_hash = \"{hash}\"\n"),
        "t",
    )
    .unwrap();
    let broker = c.embedded_broker.unwrap();
    assert_eq!(
        (broker.users[0].name.as_str(), &broker.users[0].publish),
        ("plug", &None)
    );
    assert_eq!((broker.max_publish_rate, broker.publish_burst), (100, 1000));
    let e = err(&format!(
        "[embedded_broker]\ntls_listen = \"0.0.0.0:8883\"\ncert_file = \"/nowhere.pem\"\nmax_connections = 0\n\
         max_publish_rate = 0\npublish_burst = 0\n\
         [[embedded_broker.users]]\nname = \"datalog-rrd\"\npassword_hash = \"{hash}\"\n\
         [[embedded_broker.users]]\nname = \"x\"\npassword_hash = \"plain\"\n\
         [[embedded_broker.users]]\nname = \"a/+\"\npassword_hash = \"{hash}\"\n\
         publish = [\"tele/%u/#\", \"bad/#/filter\"]\n"
    ));
    for key in [
        "embedded_broker.cert_file",
        "embedded_broker.key_file",
        "embedded_broker.max_connections",
        "embedded_broker.max_publish_rate",
        "embedded_broker.publish_burst",
        "embedded_broker.users[0].name",
        "embedded_broker.users[1].password_hash",
        "embedded_broker.users[2].name",
        "embedded_broker.users[2].publish[1]",
    ] {
        assert!(e.contains(key), "{key} missing from {e}");
    }
    assert!(!e.contains("publish[0]"), "{e}");
}

#[test]
fn tariffs_are_read_and_every_hour_needs_a_price() {
    let c = Config::parse(
        r#"
        [energy]
        currency = "CHF"
        [[energy.tariff]]
        name = "day"
        price = 0.30
        from = "06:00"
        to = "22:00"
        [[energy.tariff]]
        name = "night"
        price = 0.20
        from = "22:00"
        to = "06:00"
        [[energy.tariff]]
        unit = "m³"
        price = 1.10
        "#,
        "t",
    )
    .unwrap();
    assert_eq!(c.energy.currency, "CHF");
    assert_eq!(c.energy.tariffs.len(), 3);
    assert_eq!(c.energy.tariffs[0].unit, "kWh", "kWh unless said");
    let err = Config::parse(
        r#"
        [[energy.tariff]]
        price = -1.0
        from = "25:00"
        to = "06:00"
        [[energy.tariff]]
        unit = "°C"
        price = 1.0
        [[energy.tariff]]
        unit = "m³"
        price = 1.0
        from = "07:00"
        [[energy.tariff]]
        unit = "gal"
        price = 1.0
        from = "07:00"
        to = "09:00"
        "#,
        "t",
    )
    .unwrap_err();
    let said: Vec<String> = err
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.key, e.message))
        .collect();
    for expected in [
        "energy.tariff[0].price",
        "energy.tariff[0].from",
        "energy.tariff[1].unit",
        "energy.tariff[2].from",
    ] {
        assert!(
            said.iter().any(|s| s.starts_with(expected)),
            "{expected} in {said:?}"
        );
    }
    assert!(
        said.iter().any(|s| s.contains("per gal leave hours")),
        "{said:?}"
    );
}
