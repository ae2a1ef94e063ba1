//! The web UI over real HTTP from the running daemon: hostile raw requests
//! (sent byte for byte, `..` and all, as no browser would), metrics after
//! real MQTT traffic, health, and a clean stop with the server running.

use std::time::Duration;

use crate::support::*;

fn config(port: u16) -> String {
    format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"web-{port}\"\n[cache]\nflush_after = \"1h\"\n"
    )
}

#[test]
fn hostile_raw_requests_get_4xx_and_never_a_file_outside_the_index() {
    let broker = Mosquitto::start();
    let mut daemon = Daemon::start(&config(broker.port));
    broker.publish("home/kitchen/temperature", "21.5");
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    let web = daemon.web_url();
    wait_for(Duration::from_secs(10), "the index", || {
        let (_, body) = http_get(&format!("{web}/rrd/index.txt"));
        (body == b"home/kitchen/temperature").then_some(())
    });
    // The config file sits beside the data directory: a prize for traversal.
    for path in [
        "/rrd/file/../../datalog-rrd.toml",
        "/rrd/file/../../../../etc/passwd",
        "/rrd/data/../datalog-rrd.toml.rrd",
        "/rrd/data/..%2f..%2fdatalog-rrd.toml",
        "/rrd/data/%2e%2e/%2e%2e/etc/passwd.csv",
        "/rrd/graph/....//....//etc/passwd.png",
        "/rrd/static/..%2f..%2fCargo.toml",
        "/rrd/dygraphs/../../../../etc/passwd",
        "/rrd/data/home/kitchen/temperature.rrd/..",
        "/rrd/file/home/kitchen/temperature%00",
    ] {
        let (status, body) = http_get(&format!("{web}{path}"));
        assert_eq!(status, 404, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(
            !String::from_utf8_lossy(&body).contains("data_dir"),
            "{path} leaked the config"
        );
    }
    for path in [
        "/rrd/graph/home/kitchen/temperature.png?start=-1&end=99999999999",
        "/rrd/graph/home/kitchen/temperature.png?width=99999",
        "/rrd/graph/home/kitchen/temperature.png?width=1e9",
        "/rrd/data/home/kitchen/temperature.json?points=-5",
        "/rrd/data/home/kitchen/temperature.json?ds=value,../../x",
        "/rrd?page=x",
    ] {
        let (status, _) = http_get(&format!("{web}{path}"));
        assert_eq!(status, 400, "{path}");
    }
    let (status, body) = http_get(&format!("{web}/rrd/data/home/kitchen/temperature.rrd"));
    assert_eq!(status, 200);
    assert!(body.starts_with(b"RRD\0"));
    assert!(daemon.stop(Duration::from_secs(20)).success());
    assert!(!daemon.log().contains("panicked"));
}

#[test]
fn metrics_count_real_traffic_and_health_reports_the_broker() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start(&config(broker.port));
    broker.publish("home/a", "1");
    broker.publish("home/b", "not a number");
    daemon.wait_log("Samples taken", 1);
    let web = daemon.web_url();
    let metrics = wait_for(Duration::from_secs(10), "metrics to count both", || {
        let (status, body) = http_get(&format!("{web}/metrics"));
        assert_eq!(status, 200);
        let text = String::from_utf8(body).unwrap();
        (text.contains("datalog_rrd_samples_accepted_total 1\n")
            && text.contains("datalog_rrd_rejected_total{reason=\"not_numeric\"} 1\n"))
        .then_some(text)
    });
    assert!(
        metrics.contains("datalog_rrd_mqtt_connected 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("datalog_rrd_journal_bytes_total "),
        "{metrics}"
    );
    assert!(
        metrics.contains("datalog_rrd_pending_rows 1\n"),
        "{metrics}"
    );
    let (status, body) = http_get(&format!("{web}/healthz"));
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["mqtt_connected"], true);
    // Without its broker the daemon is still healthy, and says so.
    drop(broker);
    wait_for(Duration::from_secs(10), "the disconnection to show", || {
        let (status, body) = http_get(&format!("{web}/healthz"));
        let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
        (status == 200 && health["mqtt_connected"] == false).then_some(())
    });
}
