//! Crash recovery: cached rows survive `kill -9` through the snapshot; a
//! damaged snapshot is set aside and the daemon still starts.

use std::time::Duration;

use datalog_rrd::cores::read_snapshot;

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
        read_snapshot(&path)
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

#[test]
fn sigterm_under_load_then_restart_loses_nothing() {
    let broker = Mosquitto::start();
    let config = format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"drain-load\"\n[cache]\nflush_after = \"1h\"\n",
        broker.port
    );
    let mut daemon = Daemon::start_with_log(&config, LOG);
    let n: i64 = 400;
    let t0 = (now_s() / 60 - n - 10) * 60;
    let lines: Vec<String> = (0..n)
        .map(|i| format!("{{\"ts\": {}, \"value\": {i}}}\n", t0 + 60 * i))
        .collect();
    let half = lines.len() / 2;
    // Stop while the first half is still arriving; publish the rest while
    // the daemon is down.
    publish_steadily(broker.port, "load/a", &lines[..half], 50, |chunk| {
        if chunk == 1 {
            daemon.wait_log("Samples taken", 20);
            assert!(daemon.stop(Duration::from_secs(20)).success());
        }
    });
    publish_steadily(broker.port, "load/a", &lines[half..], 100, |_| {});
    let taken_before = daemon.log().matches("Samples taken").count() as i64;
    assert!(
        (20..n).contains(&taken_before),
        "{taken_before} taken before the stop"
    );
    let path = daemon.data().join("load/a/value.rrd");
    let written = fetch(&path, t0 - 60, t0 + 60 * n);
    assert_eq!(
        written.len() as i64,
        taken_before,
        "every sample taken before the stop is in the file"
    );

    // The broker kept the rest for the daemon's session.
    let daemon = Daemon::start_in(daemon.kill9(), &config, LOG);
    wait_for(Duration::from_secs(20), "the queued rest", || {
        (daemon.log().matches("Samples taken").count() as i64 >= n).then_some(())
    });
    daemon.flush();
    let rows = fetch(&path, t0 - 60, t0 + 60 * n);
    assert_eq!(
        rows,
        (0..n).map(|i| (t0 + 60 * i, i as f64)).collect::<Vec<_>>()
    );
}

#[test]
fn rows_a_locked_file_could_not_take_at_stop_are_written_after_restart() {
    let broker = Mosquitto::start();
    let mut daemon = Daemon::start_with_log(&config(broker.port), LOG);
    let t0 = (now_s() / 60 - 10) * 60;
    broker.publish("locked/a", &format!(r#"{{"ts": {t0}, "value": 1}}"#));
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    broker.publish("locked/a", &format!(r#"{{"ts": {}, "value": 2}}"#, t0 + 60));
    daemon.wait_log("Samples taken", 2);
    // A reader holds the file's lock for the whole stop.
    let path = daemon.data().join("locked/a/value.rrd");
    let script = "import fcntl,sys,time\nf=open(sys.argv[1],'rb')\nfcntl.lockf(f,fcntl.LOCK_SH)\nprint('locked',flush=True)\ntime.sleep(30)";
    let mut reader = std::process::Command::new("python3")
        .args(["-c", script, &path.to_string_lossy()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(reader.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(
        daemon.stop(Duration::from_secs(20)).success(),
        "a locked file must not hang the stop"
    );
    let _ = reader.kill();
    let _ = reader.wait();
    assert!(daemon.log().contains("RRD file busy"), "{}", daemon.log());
    assert_eq!(fetch(&path, t0 - 60, t0 + 60), vec![(t0, 1.0)]);

    let daemon = Daemon::start_in(daemon.kill9(), &config(broker.port), LOG);
    daemon.wait_log("Cache restored from the snapshot", 1);
    daemon.flush();
    assert_eq!(
        fetch(&path, t0 - 60, t0 + 60),
        vec![(t0, 1.0), (t0 + 60, 2.0)]
    );
}

/// Publishes `lines` at QoS 1 in chunks with pauses (a steady load), calling
/// `between` after each chunk; returns once mosquitto_pub exits, which it
/// does successfully only when the broker acknowledged every message.
pub(crate) fn publish_steadily(
    port: u16,
    topic: &str,
    lines: &[String],
    chunk: usize,
    mut between: impl FnMut(usize),
) {
    use std::io::Write;
    let mut publisher = mosquitto_pub(port, topic, &["-l"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = publisher.stdin.take().unwrap();
    for (i, part) in lines.chunks(chunk).enumerate() {
        stdin.write_all(part.concat().as_bytes()).unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(40));
        between(i);
    }
    drop(stdin);
    assert!(
        publisher.wait().unwrap().success(),
        "the broker did not acknowledge every message"
    );
}

/// Flushes until the file holds `n` rows (what the broker still had queued
/// arrives meanwhile), bounded.
pub(crate) fn rows_once_complete(
    daemon: &Daemon,
    path: &std::path::Path,
    t0: i64,
    n: i64,
) -> Vec<(i64, f64)> {
    let mut rows = Vec::new();
    // Not asserted here: the caller says what is missing.
    poll_until(Duration::from_secs(20), Duration::from_millis(200), || {
        daemon.flush();
        rows = if path.exists() {
            fetch(path, t0 - 60, t0 + 60 * n)
        } else {
            Vec::new()
        };
        (rows.len() as i64 >= n).then_some(())
    });
    rows
}

/// `(time, value)` rows of a file.
type Rows = Vec<(i64, f64)>;

/// 1,200 timestamped QoS 1 messages through a persistent mosquitto, the
/// daemon killed (SIGKILL) three times under the load and started again
/// at once; the file's rows at the end, what was expected, and the log.
fn kill_9_drill(client_id: &str, journal: bool) -> (Rows, Rows, String) {
    let broker = Mosquitto::start_persistent(free_port(), tempfile::tempdir().unwrap());
    let config = format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"{client_id}\"\n\
         [cache]\nflush_after = \"1s\"\nsnapshot_every = \"1s\"\n[journal]\nenabled = {journal}\n",
        broker.port
    );
    let n: i64 = 1200; // 20 h of 1-minute steps: within the 1-day archive
    let t0 = (now_s() / 60 - n - 10) * 60;
    let lines: Vec<String> = (0..n)
        .map(|i| format!("{{\"ts\": {}, \"value\": {i}}}\n", t0 + 60 * i))
        .collect();
    let mut daemon = Some(Daemon::start_with_log(&config, LOG));
    let mut kills = 0;
    publish_steadily(broker.port, "crash/a", &lines, 50, |chunk| {
        // Kill at a few moments under load, then start again at once.
        if [4, 9, 15].contains(&chunk) {
            let dir = daemon.take().unwrap().kill9();
            kills += 1;
            daemon = Some(Daemon::start_in(dir, &config, LOG));
        }
    });
    assert_eq!(kills, 3);
    let daemon = daemon.unwrap();
    let path = daemon.data().join("crash/a/value.rrd");
    let rows = rows_once_complete(&daemon, &path, t0, n);
    let expected: Vec<(i64, f64)> = (0..n).map(|i| (t0 + 60 * i, i as f64)).collect();
    (rows, expected, daemon.log())
}

#[test]
fn every_message_the_broker_acknowledged_survives_kill_9_exactly_once() {
    let (rows, expected, log) = kill_9_drill("crash-load", true);
    let missing: Vec<i64> = expected
        .iter()
        .filter(|e| !rows.contains(e))
        .map(|e| e.1 as i64)
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} missing, first {missing:?}",
        expected.len() - rows.len(),
        expected.len()
    );
    assert_eq!(rows, expected, "every value exactly once, at its step");
    assert!(
        log.matches("Journal read for replay").count() >= 1,
        "no replay happened"
    );
}

/// The drill's negative control: the same kills with the journal off lose
/// what the daemon had acknowledged and not yet written, or the drill
/// would prove nothing about the journal.
#[test]
fn without_the_journal_the_same_kills_lose_acknowledged_messages() {
    let (rows, expected, _) = kill_9_drill("crash-nojournal", false);
    let lost = expected.iter().filter(|e| !rows.contains(e)).count();
    eprintln!("journal off: {lost} of {} lost to 3 kills", expected.len());
    assert!(
        lost > 0,
        "nothing lost without the journal: the drill cannot tell"
    );
    assert!(
        rows.iter().all(|r| expected.contains(r)),
        "nothing but what was sent"
    );
}

#[test]
fn a_broker_restart_under_load_loses_nothing() {
    let broker = Mosquitto::start_persistent(free_port(), tempfile::tempdir().unwrap());
    let config = format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"broker-restart\"\nreconnect_min = \"100ms\"\n\
         reconnect_max = \"500ms\"\n[cache]\nflush_after = \"1s\"\n",
        broker.port
    );
    let daemon = Daemon::start_with_log(&config, LOG);
    let n: i64 = 1000;
    let t0 = (now_s() / 60 - n - 10) * 60;
    let lines: Vec<String> = (0..n)
        .map(|i| format!("{{\"ts\": {}, \"value\": {i}}}\n", t0 + 60 * i))
        .collect();
    let half = lines.len() / 2;
    publish_steadily(broker.port, "restart/a", &lines[..half], 100, |_| {});
    // Restart while the daemon is still taking the first half.
    let broker = broker.restart_persistent();
    daemon.wait_log("Connected to the MQTT broker", 2);
    publish_steadily(broker.port, "restart/a", &lines[half..], 100, |_| {});
    let path = daemon.data().join("restart/a/value.rrd");
    let rows = rows_once_complete(&daemon, &path, t0, n);
    assert_eq!(
        rows,
        (0..n).map(|i| (t0 + 60 * i, i as f64)).collect::<Vec<_>>()
    );
}
