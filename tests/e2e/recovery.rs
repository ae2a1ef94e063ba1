//! Crash recovery: cached rows survive `kill -9` through the snapshot; a
//! damaged snapshot is set aside and the daemon still starts.

use std::time::Duration;

use datalog_rrd::cache::snapshot;

use crate::support::*;

const LOG: &str = "info,datalog_rrd=debug,rumqttd=error";

fn config(port: u16) -> String {
    format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"recovery-{port}\"\n\
         [cache]\nflush_after = \"1h\"\nsnapshot_every = \"1s\"\n"
    )
}

#[test]
fn cached_rows_survive_kill_9_through_the_snapshot() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start_with_log(&config(broker.port), LOG);
    let t0 = (now_s() / 60 - 10) * 60;
    for i in 0..3 {
        broker.publish(
            "crash/a",
            &format!(r#"{{"ts": {}, "value": {i}}}"#, t0 + 60 * i),
        );
    }
    daemon.wait_log("Samples taken", 3);
    let path = daemon.data().join("datalog-rrd.snapshot");
    wait_for(Duration::from_secs(10), "a snapshot with the rows", || {
        snapshot::read(&path)
            .ok()
            .flatten()
            .filter(|s| s.row_count() == 3)
    });
    let dir = daemon.kill9();
    assert!(
        !dir.path().join("data/crash/a/value.rrd").exists(),
        "written before the crash"
    );

    let daemon = Daemon::start_in(dir, &config(broker.port), LOG);
    daemon.wait_log("Cache restored from the snapshot", 1);
    daemon.flush();
    let rows = fetch(&daemon.data().join("crash/a/value.rrd"), t0 - 60, t0 + 120);
    assert_eq!(rows, vec![(t0, 0.0), (t0 + 60, 1.0), (t0 + 120, 2.0)]);
}

#[test]
fn a_damaged_snapshot_is_set_aside_and_the_daemon_starts() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/datalog-rrd.snapshot"),
        b"DLRRDSNP\x01\x00\x00\x00garbage",
    )
    .unwrap();
    let daemon = Daemon::start_in(dir, &config(broker.port), LOG);
    assert!(
        daemon.log().contains("Cache snapshot unusable"),
        "{}",
        daemon.log()
    );
    let aside: Vec<String> = files_under(&daemon.data())
        .into_iter()
        .filter(|f| f.contains("unusable"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    // And it works: a value still reaches its file.
    let t0 = (now_s() / 60 - 2) * 60;
    broker.publish("after/damage", &format!(r#"{{"ts": {t0}, "value": 4}}"#));
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    assert_eq!(
        fetch(&daemon.data().join("after/damage/value.rrd"), t0 - 60, t0),
        vec![(t0, 4.0)]
    );
}
