//! MQTT message → RRD file, through a real broker.

use std::time::Duration;

use crate::support::*;

#[test]
fn values_from_mosquitto_reach_rrd_files_at_their_step() {
    let broker = Mosquitto::start();
    let mut daemon = Daemon::start(&external(broker.port, "1h"));
    let t0 = (now_s() / 60 - 30) * 60; // half an hour ago, on a step boundary
    for i in 0..5 {
        broker.publish(
            "sensors/bench/s1",
            &format!(r#"{{"ts": {}, "v": {}}}"#, t0 + 60 * i, 10 + i),
        );
    }
    broker.publish(
        "zigbee2mqtt/living_room",
        r#"{"temperature":21.37,"humidity":44.72,"battery":97}"#,
    );
    let before = now_s();
    broker.publish("home/kitchen/temperature", "21.5");
    let after = now_s();
    // Hostile and broken input costs a warning, nothing else.
    broker.publish("home/../../etc/passwd", "1");
    broker.publish("home/kitchen/humidity", "NaN");
    broker.publish("home/kitchen/humidity", r#"{"humidity":"#);
    daemon.wait_log("Message refused", 1);
    daemon.flush();

    let data = daemon.data();
    let rows = fetch(&data.join("sensors/bench/s1/v.rrd"), t0 - 60, t0 + 300);
    assert_eq!(
        rows,
        (0..5)
            .map(|i| (t0 + 60 * i, (10 + i) as f64))
            .collect::<Vec<_>>()
    );

    // Receive-time samples land in the step that contains the receive time.
    let path = data.join("home/kitchen/temperature.rrd");
    let rows = fetch(&path, before - 120, after + 120);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let (t, v) = rows[0];
    assert_eq!(v, 21.5);
    assert!(
        t % 60 == 0 && t >= before && t < after + 60,
        "row at {t}, received in [{before}, {after}]"
    );
    let rows = fetch(
        &data.join("zigbee2mqtt/living_room/humidity.rrd"),
        before - 120,
        after + 120,
    );
    assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), vec![44.72]);

    // The hostile topic stayed inside the data dir.
    let files = files_under(&data);
    assert!(
        files.contains(&"home/.2E.2E/.2E.2E/etc/passwd.rrd".to_owned()),
        "{files:?}"
    );
    assert!(
        !files
            .iter()
            .any(|f| f.contains("humidity") && f.starts_with("home/")),
        "{files:?}"
    );
    let log = daemon.log();
    assert!(
        log.contains("reason=not_finite") && log.contains("reason=bad_json"),
        "{log}"
    );

    // New files reach the index within a second, without a restart.
    wait_for(
        Duration::from_secs(5),
        "index.txt to list the new files",
        || {
            let index = std::fs::read_to_string(data.join("index.txt")).ok()?;
            index
                .split('|')
                .any(|f| f == "sensors/bench/s1/v")
                .then_some(())
        },
    );
    let status = daemon.stop(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let index = std::fs::read_to_string(data.join("index.txt")).unwrap();
    assert!(
        index.split('|').any(|f| f == "home/kitchen/temperature"),
        "{index}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("index.json")).unwrap()).unwrap();
    assert!(
        json["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["ds"][0]["series"] == "zigbee2mqtt/living_room/battery")
    );
}

#[test]
fn flush_after_writes_without_a_signal() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start(&external(broker.port, "1s"));
    let t0 = (now_s() / 60 - 10) * 60;
    broker.publish("timer/a", &format!(r#"{{"ts": {t0}, "value": 7}}"#));
    let path = daemon.data().join("timer/a/value.rrd");
    let rows = wait_for(Duration::from_secs(20), "the flush timer", || {
        path.exists()
            .then(|| fetch(&path, t0 - 60, t0))
            .filter(|r| !r.is_empty())
    });
    assert_eq!(rows, vec![(t0, 7.0)]);
}

#[test]
fn sigterm_writes_cached_rows_and_exits_zero() {
    let broker = Mosquitto::start();
    let mut daemon = Daemon::start(&external(broker.port, "1h"));
    let t0 = (now_s() / 60 - 5) * 60;
    broker.publish("drain/a", &format!(r#"{{"ts": {t0}, "value": 3.25}}"#));
    // Once the cache has the sample, SIGTERM must not lose it.
    daemon.wait_log("Samples taken", 1);
    let data = daemon.data();
    let status = daemon.stop(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert_eq!(
        fetch(&data.join("drain/a/value.rrd"), t0 - 60, t0),
        vec![(t0, 3.25)]
    );
}

#[test]
fn reconnects_and_resubscribes_after_a_broker_restart() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start(&external(broker.port, "1h"));
    // Subscribed before the broker goes: else the count below is one short.
    daemon.wait_log("Subscribed", 1);
    let (port, dir) = broker.stop();
    daemon.wait_log("MQTT connection lost", 1);
    let broker = Mosquitto::start_on(port, dir);
    daemon.wait_log("Connected to the MQTT broker", 2);
    let t0 = (now_s() / 60 - 5) * 60;
    // The new broker knows no session: only a resubscription brings this in.
    daemon.wait_log("Subscribed", 2);
    broker.publish("after/restart", &format!(r#"{{"ts": {t0}, "value": 1}}"#));
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    assert_eq!(
        fetch(&daemon.data().join("after/restart/value.rrd"), t0 - 60, t0),
        vec![(t0, 1.0)]
    );
}

#[test]
fn embedded_broker_end_to_end() {
    let port = free_port();
    let mut daemon = Daemon::start(&format!(
        "[embedded_broker]\nlisten = \"127.0.0.1:{port}\"\n[cache]\nflush_after = \"1h\"\n"
    ));
    let t0 = (now_s() / 60 - 3) * 60;
    publish(
        port,
        "embedded/x",
        &format!(r#"{{"ts": {t0}, "value": 42}}"#),
    );
    publish(port, "embedded/y", "17");
    daemon.wait_log("Samples taken", 2);
    let data = daemon.data();
    let status = daemon.stop(Duration::from_secs(20));
    assert!(status.success());
    assert_eq!(
        fetch(&data.join("embedded/x/value.rrd"), t0 - 60, t0),
        vec![(t0, 42.0)]
    );
    assert!(data.join("embedded/y.rrd").exists());
}

#[test]
fn retained_state_replayed_on_subscribe_is_not_logged_as_new() {
    let broker = Mosquitto::start();
    let status = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port.to_string(),
            "-r",
            "-t",
            "old/state",
            "-m",
            "1",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let daemon = Daemon::start(&external(broker.port, "1h"));
    broker.publish("new/value", "2");
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    assert!(daemon.data().join("new/value.rrd").exists());
    assert!(!daemon.data().join("old/state.rrd").exists());
    assert_eq!(daemon.log().matches("Samples taken").count(), 1);
}

/// The retained message on `topic`, as a new subscriber sees it.
fn retained(port: u16, topic: &str) -> String {
    let out = std::process::Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-C",
            "1",
            "-W",
            "5",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_daemon_reports_its_availability() {
    let broker = Mosquitto::start();
    let mut daemon = Daemon::start(&external(broker.port, "1h"));
    wait_for(Duration::from_secs(10), "online", || {
        (retained(broker.port, "datalog-rrd/status") == "online").then_some(())
    });
    assert!(daemon.stop(Duration::from_secs(20)).success());
    assert_eq!(retained(broker.port, "datalog-rrd/status"), "offline");
    // A crash: the broker publishes the last will.
    let daemon = Daemon::start(&external(broker.port, "1h"));
    wait_for(Duration::from_secs(10), "online again", || {
        (retained(broker.port, "datalog-rrd/status") == "online").then_some(())
    });
    let _dir = daemon.kill9();
    wait_for(Duration::from_secs(10), "the last will", || {
        (retained(broker.port, "datalog-rrd/status") == "offline").then_some(())
    });
    // Its own status is not logged as a series.
    assert!(
        !files_under(&_dir.path().join("data"))
            .iter()
            .any(|f| f.starts_with("datalog-rrd"))
    );
}

#[test]
fn messages_sent_while_the_daemon_is_down_arrive_after_a_restart() {
    let broker = Mosquitto::start();
    let config = external(broker.port, "1h");
    let mut daemon = Daemon::start(&config);
    assert!(daemon.stop(Duration::from_secs(20)).success());
    // QoS 1, to a session the broker keeps for the stopped daemon.
    let t0 = (now_s() / 60 - 4) * 60;
    broker.publish("while/down", &format!(r#"{{"ts": {t0}, "value": 8}}"#));
    let daemon = Daemon::start_in(
        daemon.kill9(),
        &config,
        "info,datalog_rrd=debug,rumqttd=error",
    );
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    assert_eq!(
        fetch(&daemon.data().join("while/down/value.rrd"), t0 - 60, t0),
        vec![(t0, 8.0)]
    );
}

#[test]
fn a_broker_already_on_the_embedded_port_is_used_instead() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start(&format!(
        "[embedded_broker]\nlisten = \"127.0.0.1:{}\"\n",
        broker.port
    ));
    assert!(daemon.log().contains("Port taken"), "{}", daemon.log());
    let t0 = (now_s() / 60 - 2) * 60;
    broker.publish("via/mosquitto", &format!(r#"{{"ts": {t0}, "value": 6}}"#));
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    assert_eq!(
        fetch(&daemon.data().join("via/mosquitto/value.rrd"), t0 - 60, t0),
        vec![(t0, 6.0)]
    );
}

#[test]
fn a_sample_from_a_wrong_clock_is_refused_and_the_file_keeps_logging() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start(&external(broker.port, "1h"));
    let now = now_s();
    let t0 = (now / 60 - 5) * 60;
    // A device whose clock is a year ahead, then one sending epoch
    // nanoseconds; then honest values for the same series.
    broker.publish(
        "sensors/clock/t",
        &format!(r#"{{"ts": {}, "v": 99}}"#, now + 365 * 86_400),
    );
    broker.publish(
        "sensors/clock/t",
        &format!(r#"{{"ts": {}, "v": 1}}"#, i128::from(t0) * 1_000_000_000),
    );
    broker.publish(
        "sensors/clock/t",
        &format!(r#"{{"ts": {}, "v": 2}}"#, (t0 + 60) * 1000),
    );
    // Two days old: older than the default template's finest archive (1 day).
    broker.publish(
        "sensors/clock/t",
        &format!(r#"{{"ts": {}, "v": 7}}"#, now - 2 * 86_400),
    );
    let web = daemon.web_url();
    wait_for(
        Duration::from_secs(10),
        "both refusals to be counted",
        || {
            let (_, body) = http_get(&format!("{web}/metrics"));
            let text = String::from_utf8(body).unwrap();
            (text.contains("datalog_rrd_rejected_total{reason=\"future\"} 1\n")
                && text.contains("datalog_rrd_rejected_total{reason=\"older_than_archives\"} 1\n"))
            .then_some(())
        },
    );
    daemon.flush();
    let path = daemon.data().join("sensors/clock/t/v.rrd");
    assert_eq!(
        fetch(&path, t0 - 60, t0 + 60)
            .into_iter()
            .filter(|(_, v)| !v.is_nan())
            .collect::<Vec<_>>(),
        vec![(t0, 1.0), (t0 + 60, 2.0)],
        "nanoseconds and milliseconds read as such"
    );
    let last = std::process::Command::new("rrdtool")
        .arg("last")
        .arg(&path)
        .output()
        .unwrap();
    let last: i64 = String::from_utf8_lossy(&last.stdout)
        .trim()
        .parse()
        .unwrap();
    assert!(
        last <= now + 60,
        "the file's last update stays at the present: {last}"
    );
    assert!(daemon.log().contains("reason=future"), "{}", daemon.log());
}
