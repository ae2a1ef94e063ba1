//! Real device families through a real mosquitto, with no config: a Home
//! Assistant discovery config retained before the daemon starts, Homie
//! attributes arriving after the values, collectd, janitoo, Shelly and
//! the availability topics that are not data.

use std::time::Duration;

use crate::support::*;

fn publish_retained(port: u16, topic: &str, payload: &str) {
    let status = mosquitto_pub(port, topic, &["-r", "-m", payload])
        .status()
        .unwrap();
    assert!(status.success());
}

fn index(daemon: &Daemon) -> serde_json::Value {
    let text = std::fs::read_to_string(daemon.data().join("index.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ds_of<'a>(index: &'a serde_json::Value, path: &str) -> &'a serde_json::Value {
    index["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not in the index: {index}"))
        .get("ds")
        .unwrap()
        .get(0)
        .unwrap()
}

#[test]
fn families_and_discovery_with_no_config() {
    let broker = Mosquitto::start();
    publish_retained(
        broker.port,
        "homeassistant/sensor/0x00158d0001a2b3c4/temperature/config",
        r#"{"name":"Living room temperature","stat_t":"zigbee2mqtt/living_room","val_tpl":"{{ value_json.temperature }}","unit_of_meas":"°C","stat_cla":"measurement"}"#,
    );
    let daemon = Daemon::start(&format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"families\"\n[cache]\nflush_after = \"1h\"\n",
        broker.port
    ));
    daemon.wait_log("Discovery metadata read", 1);
    for (topic, payload) in [
        (
            "zigbee2mqtt/living_room",
            r#"{"temperature":21.37,"humidity":44.72}"#,
        ),
        (
            "zigbee2mqtt/living_room/availability",
            r#"{"state":"online"}"#,
        ),
        ("zigbee2mqtt/bridge/state", "online"),
        ("tele/plug_desk/LWT", "Online"),
        ("homie/station/outdoor/temperature", "-3.4"),
        ("collectd/pi4/load/load", "N:0.12:0.08:0.05"),
        (
            "/values/user/0048/0004/memory_rss",
            r#"{"uuid":"memory_rss","hadd":"0048/0004","genre":2,"index":0,"data":1834}"#,
        ),
        ("shellies/plug-1/relay/0/energy", "600"),
        // A topic no family knows: its word says it is a state.
        ("home/garage/door", "CLOSED"),
        ("home/garage/temperature", "12.5"),
    ] {
        broker.publish(topic, payload);
    }
    // Metadata after the values.
    broker.publish("homie/station/outdoor/temperature/$unit", "°C");
    broker.publish("homie/station/outdoor/temperature/$name", "Outdoor");
    daemon.wait_log("Discovery metadata read", 3);
    daemon.flush();
    wait_for(Duration::from_secs(10), "the index", || {
        std::fs::read_to_string(daemon.data().join("index.json"))
            .ok()
            .filter(|t| t.contains("shellies/plug-1"))
    });
    let idx = index(&daemon);
    let t = ds_of(&idx, "zigbee2mqtt/living_room/temperature");
    assert_eq!(t["label"], "Living room temperature");
    assert_eq!(t["unit"], "°C");
    let h = ds_of(&idx, "homie/station/outdoor/temperature");
    assert_eq!(
        (h["label"].as_str(), h["unit"].as_str()),
        (Some("Outdoor"), Some("°C"))
    );
    let paths: Vec<&str> = idx["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for p in [
        "collectd/pi4/load/load/0",
        "collectd/pi4/load/load/2",
        "janitoo/0048/0004/memory_rss/0",
        "shellies/plug-1/relay/0/energy",
        "zigbee2mqtt/living_room/humidity",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    assert!(
        !paths
            .iter()
            .any(|p| p.contains("availability") || p.contains("bridge") || p.contains("LWT")),
        "{paths:?}"
    );
    // A meter's counter: stored as a counter, its reading in Wh.
    let energy = ds_of(&idx, "shellies/plug-1/relay/0/energy");
    assert_eq!(energy["type"], "DDERIVE", "{energy}");
    assert_eq!(energy["unit"], "Wh", "{energy}");
    assert_eq!(energy["last_value"], 10.0, "600 Wmin = 10 Wh: {energy}");
    // Units the families are known to use, where discovery says nothing.
    assert_eq!(ds_of(&idx, "zigbee2mqtt/living_room/humidity")["unit"], "%");
    assert_eq!(ds_of(&idx, "shellies/plug-1/relay/0/energy")["unit"], "Wh");
    assert_eq!(ds_of(&idx, "home/garage/door")["binary"], true);
    assert_eq!(
        ds_of(&idx, "home/garage/temperature")["binary"],
        serde_json::Value::Null
    );
    let (_, door) = http_get(&format!("{}/rrd/file/home/garage/door", daemon.web_url()));
    assert!(
        String::from_utf8_lossy(&door).contains("Closed"),
        "the door's state in words"
    );
    // With no configuration, discovery's and the families' units make the
    // device's dashboard: a chart per quantity.
    let (status, page) = http_get(&format!(
        "{}/rrd/device-dashboard?device=zigbee2mqtt/living_room",
        daemon.web_url()
    ));
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&page);
    let views: Vec<&str> = page
        .split("<h2>")
        .skip(1)
        .filter_map(|h| h.split("</h2>").next())
        .collect();
    assert_eq!(views, ["Humidity (%)", "Temperature (°C)"], "{page}");
}
