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
        "/rrd/energy/../../datalog-rrd.toml",
        "/rrd/energy/%2e%2e/%2e%2e/etc/passwd.csv",
        // Not a meter: no consumption to show.
        "/rrd/energy/home/kitchen/temperature.png",
        "/rrd/energy/home/kitchen/temperature?ds=../../x",
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
        "/rrd/energy/home/kitchen/temperature?per=%00",
        "/rrd/energy/home/kitchen/temperature.png?width=99999",
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

/// A dashboard made in the browser and an event from MQTT, through the
/// running daemon: both still there after a restart.
#[test]
fn a_browser_made_dashboard_and_an_event_survive_a_restart() {
    let broker = Mosquitto::start();
    let mut daemon = Daemon::start(&config(broker.port));
    broker.publish("home/boiler/temperature", "61.5");
    broker.publish(
        "datalog-rrd/events",
        r#"{"text": "Boiler serviced", "device": "home/boiler"}"#,
    );
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    let web = daemon.web_url();
    wait_for(Duration::from_secs(10), "the index", || {
        let (_, body) = http_get(&format!("{web}/rrd/index.txt"));
        (body == b"home/boiler/temperature").then_some(())
    });
    let (_, form) = http_get(&format!("{web}/rrd/dashboards/edit"));
    let form = String::from_utf8(form).unwrap();
    let token = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("the form's token");
    let (status, body) = http_post_form(
        &format!("{web}/rrd/dashboards/save"),
        &format!(
            "csrf={token}&name=boiler&title=Boiler&range=day&v0.title=Water&v0.order=0\
             &v0.series=home%2Fboiler%2Ftemperature&v0.warning=80&v0.critical=&v0.add="
        ),
    );
    assert_eq!(status, 303, "{}", String::from_utf8_lossy(&body));
    wait_for(Duration::from_secs(10), "the event", || {
        let (_, body) = http_get(&format!("{web}/rrd/events.json?range=day"));
        String::from_utf8_lossy(&body)
            .contains("Boiler serviced")
            .then_some(())
    });
    assert_eq!(daemon.stop(Duration::from_secs(20)).code(), Some(0));

    let dir = daemon.kill9(); // stopped already: only hands the directory over
    std::fs::remove_file(dir.path().join("daemon.log")).unwrap();
    let daemon = Daemon::start_in(dir, &config(broker.port), "info");
    let web = daemon.web_url();
    let (status, page) = http_get(&format!("{web}/rrd/dashboard/boiler"));
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&page).contains("Water"));
    let (status, png) = http_get(&format!("{web}/rrd/dashboard/boiler/0.png?range=day"));
    assert_eq!(status, 200);
    assert!(png.starts_with(b"\x89PNG"));
    let (_, events) = http_get(&format!("{web}/rrd/events.json?range=day"));
    assert!(String::from_utf8_lossy(&events).contains("Boiler serviced"));
}
