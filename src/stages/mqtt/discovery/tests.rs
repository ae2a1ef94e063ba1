//! Discovery configs from the shipped examples and from the specs' own
//! shapes: abbreviations, `~`, device-based configs, templates, Homie.

use super::*;

fn one(topic: &str, payload: &str) -> (String, SeriesMeta) {
    let mut d = parse(topic, payload.as_bytes()).unwrap();
    assert_eq!(d.series.len(), 1, "{d:?}");
    d.series.remove(0)
}

#[test]
fn example_configs_describe_the_series_our_decoder_makes() {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/payloads.jsonl"
    ));
    let mut seen = 0;
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let topic = v["topic"].as_str().unwrap();
        if !is_discovery(topic) {
            continue;
        }
        let d = parse(topic, v["payload"].as_str().unwrap().as_bytes()).unwrap();
        assert!(d.unsupported.is_empty(), "{topic}: {d:?}");
        seen += d.series.len();
    }
    assert_eq!(seen, 4);
    let (series, meta) = one(
        "homeassistant/sensor/0x00158d0001a2b3c4/temperature/config",
        r#"{"name":"Living room temperature","stat_t":"zigbee2mqtt/living_room","val_tpl":"{{ value_json.temperature }}","unit_of_meas":"°C","stat_cla":"measurement","exp_aft":3600}"#,
    );
    assert_eq!(series, "zigbee2mqtt/living_room/temperature");
    assert_eq!(
        meta,
        SeriesMeta {
            label: Some("Living room temperature".into()),
            unit: Some("°C".into()),
            ds_type: Some(DsType::Gauge),
            hold: Some(Duration::from_secs(3600)),
            ..SeriesMeta::default()
        }
    );
    let (series, meta) = one(
        "homeassistant/sensor/plug_desk/energy_total/config",
        r#"{"name":"Desk plug energy","~":"tele/plug_desk/","stat_t":"~SENSOR","val_tpl":"{{ value_json.ENERGY.Total }}","unit_of_meas":"kWh","stat_cla":"total_increasing"}"#,
    );
    assert_eq!(series, "tele/plug_desk/SENSOR/ENERGY/Total");
    assert_eq!((meta.ds_type, meta.min), (Some(DsType::Dderive), Some(0.0)));
}

#[test]
fn device_based_configs_share_their_options() {
    let d = parse(
        "homeassistant/device/plug1/config",
        br#"{"dev":{"ids":"plug1","name":"Plug one"},"o":{"name":"x"},"stat_t":"plugs/plug1/state",
            "cmps":{"power":{"p":"sensor","val_tpl":"{{ value_json.power | float }}","unit_of_meas":"W","stat_cla":"measurement"},
                    "energy":{"p":"sensor","name":null,"val_tpl":"{{ value_json['energy']['total'] | round(2) }}","stat_cla":"total"},
                    "restart":{"p":"button","cmd_t":"plugs/plug1/restart"},
                    "odd":{"p":"sensor","val_tpl":"{{ value_json.a * 1000 }}"}}}"#,
    )
    .unwrap();
    let mut series: Vec<(String, Option<String>, Option<DsType>)> = d
        .series
        .into_iter()
        .map(|(s, m)| (s, m.label, m.ds_type))
        .collect();
    series.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        series,
        [
            (
                "plugs/plug1/state/energy/total".into(),
                Some("Plug one".into()),
                Some(DsType::Dderive)
            ),
            (
                "plugs/plug1/state/power".into(),
                Some("Plug one".into()),
                Some(DsType::Gauge)
            ),
        ]
    );
    assert_eq!(d.unsupported, ["odd: {{ value_json.a * 1000 }}"]);
}

#[test]
fn templates_we_follow_and_those_we_do_not() {
    assert_eq!(value_path("{{ value }}"), Some(vec![]));
    assert_eq!(
        value_path("{{value_json.a.b_c}}"),
        Some(vec!["a".into(), "b_c".into()])
    );
    assert_eq!(
        value_path(r#"{{ value_json["a b"].c | int }}"#),
        Some(vec!["a b".into(), "c".into()])
    );
    for t in [
        "{{ value_json.a | lower }}",
        "{{ value_json.a if value_json.b else 0 }}",
        "{% if value %}1{% endif %}",
        "{{ value_json }}",
        "{{ value_json. }}",
        "{{ value_json['a }}",
        "",
    ] {
        assert_eq!(value_path(t), None, "{t}");
    }
}

#[test]
fn removals_garbage_and_homie() {
    let empty = parse("homeassistant/sensor/x/y/config", b"").unwrap();
    assert!(empty.series.is_empty());
    assert!(parse("homeassistant/sensor/x/y/config", b"{not json").is_err());
    assert!(parse("homeassistant/sensor/x/y/config", b"[1]").is_err());
    assert!(parse("homeassistant/sensor/x/y/config", &[0xff, 0xfe]).is_err());
    let d = parse("homeassistant/button/x/y/config", br#"{"cmd_t":"a/b"}"#).unwrap();
    assert!(d.series.is_empty());

    assert!(is_discovery(
        "homie/weather-station/outdoor/temperature/$unit"
    ));
    assert!(!is_discovery("homie/weather-station/outdoor/temperature"));
    assert!(!is_discovery("homie/weather-station/$state"));
    assert!(!is_discovery("homeassistant/sensor/x/state"));
    let (s, m) = one("homie/weather-station/outdoor/temperature/$unit", "°C");
    assert_eq!(
        (s.as_str(), m.unit.as_deref()),
        ("homie/weather-station/outdoor/temperature", Some("°C"))
    );
    let (_, m) = one("homie/weather-station/outdoor/temperature/$name", "Outdoor");
    assert_eq!(m.label.as_deref(), Some("Outdoor"));
    let (_, m) = one(
        "homie/weather-station/outdoor/temperature/$datatype",
        "float",
    );
    assert_eq!(m.ds_type, Some(DsType::Gauge));
    let d = parse(
        "homie/5/station/$description",
        br#"{"homie":"5.0","name":"Station","nodes":{"out":{"properties":{"t":{"name":"Temp","unit":"\u00b0C","datatype":"float"}}}}}"#,
    )
    .unwrap();
    assert_eq!(d.series[0].0, "homie/5/station/out/t");
    assert_eq!(d.series[0].1.unit.as_deref(), Some("°C"));
}

/// A `binary_sensor` is an on/off state, said with its device class; the
/// device's name comes along for grouping.
#[test]
fn binary_sensors_are_states_of_a_named_device() {
    let (series, meta) = one(
        "homeassistant/binary_sensor/0x00158d0002/occupancy/config",
        r#"{"name":"Hall motion","stat_t":"zigbee2mqtt/hall","val_tpl":"{{ value_json.occupancy }}",
            "pl_on":true,"pl_off":false,"dev_cla":"occupancy","dev":{"ids":["z2m_0x00158d0002"],"name":"Hall sensor"}}"#,
    );
    assert_eq!(series, "zigbee2mqtt/hall/occupancy");
    assert_eq!(meta.binary, Some(true));
    assert_eq!(meta.device_class.as_deref(), Some("occupancy"));
    assert_eq!(meta.device.as_deref(), Some("Hall sensor"));
    let (_, meta) = one(
        "homeassistant/sensor/0x00158d0002/battery/config",
        r#"{"name":"Hall battery","stat_t":"zigbee2mqtt/hall","val_tpl":"{{ value_json.battery }}","unit_of_meas":"%"}"#,
    );
    assert_eq!(meta.binary, None, "a sensor is not on/off");
}
