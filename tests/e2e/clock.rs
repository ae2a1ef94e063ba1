//! A Raspberry Pi has no clock: under libfaketime (the Debian package
//! `faketime`: the wall clock moved by a file the test rewrites, the
//! monotonic clock left real), the daemon starts 3 days behind, as
//! `fake-hwclock` leaves a Pi after a power cut; samples published then
//! wait, and land at their true time once the clock is stepped (or a
//! time-sync service says it synced), even across a `kill -9`.

use std::path::Path;
use std::time::Duration;

use crate::support::*;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
const LOG: &str = "info,datalog_rrd=debug,rumqttd=error";

/// The daemon's environment under libfaketime, the offset read from
/// `offset_file` (re-read every second).
fn faketime_env(offset_file: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("LD_PRELOAD", LIBFAKETIME.into()),
        ("FAKETIME_TIMESTAMP_FILE", offset_file.display().to_string()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".into()),
        ("FAKETIME_CACHE_DURATION", "1".into()),
    ]
}

fn start_faked(dir: tempfile::TempDir, config: &str, offset_file: &Path) -> Daemon {
    let env = faketime_env(offset_file);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Daemon::start_in_env(dir, config, LOG, &env)
}

/// Publishes `pi/a` 2.5 and `pi/b` 3.5 and waits until both samples wait
/// for the clock.
fn publish_two_that_wait(broker: &Mosquitto, daemon: &Daemon) {
    broker.publish("pi/a", "2.5");
    broker.publish("pi/b", "3.5");
    wait_for(Duration::from_secs(10), "the samples to wait", || {
        (metric(daemon, "clock_waiting_samples") == 2).then_some(())
    });
}

/// Waits for the daemon's next checks to trust the clock.
fn wait_trusted(daemon: &Daemon) {
    wait_for(Duration::from_secs(20), "the clock to be trusted", || {
        (metric(daemon, "clock_trusted") == 1).then_some(())
    });
}

/// `pi/a` 2.5 and `pi/b` 3.5 are in their files within a few minutes of
/// now, and nothing in either around the fake time 3 days ago.
fn assert_at_true_time(data: &Path) {
    let now = now_s();
    for (file, value) in [("pi/a", 2.5), ("pi/b", 3.5)] {
        let path = data.join(format!("{file}.rrd"));
        let rows = fetch(&path, now - 300, now + 120);
        assert!(
            rows.iter().any(|(_, v)| *v == value),
            "{file}: {value} not at the true time: {rows:?}"
        );
        let fake = now - 3 * 86_400;
        let at_fake = fetch(&path, fake - 600, fake + 600);
        assert!(
            at_fake.is_empty(),
            "{file} written at the fake time: {at_fake:?}"
        );
    }
}

/// The configuration: the evidence the machine would give is replaced by
/// files of the test's (no time-sync service unless `services`; the
/// kernel's NTP status not read, as this machine's may say either).
fn config(port: u16, dir: &Path, services: bool) -> String {
    let services = if services {
        format!("\"{}\"", dir.join("timesync").display())
    } else {
        String::new()
    };
    format!(
        "{}[clock]\nkernel_status = false\nsync_services = [{services}]\nsync_flag = \"{}\"\n",
        external(port, "1h"),
        dir.join("timesync/synchronized").display()
    )
}

/// Runs at the true time, logs 1 on `topic` and stops; then starts again
/// in the same `dir` 3 days behind (its `faketime` file), as a Pi after a
/// power cut.
fn log_then_restart_behind(
    broker: &Mosquitto,
    dir: tempfile::TempDir,
    config: &str,
    topic: &str,
) -> Daemon {
    let offset_file = dir.path().join("faketime");
    let mut first = Daemon::start_in(dir, config, LOG);
    broker.publish(topic, "1");
    first.wait_log("Samples taken", 1);
    assert!(first.stop(Duration::from_secs(20)).success());
    let dir = first.kill9();
    std::fs::remove_file(dir.path().join("daemon.log")).unwrap();
    std::fs::write(&offset_file, "-3d\n").unwrap();
    start_faked(dir, config, &offset_file)
}

/// A first run at the true time leaves its data (and a snapshot taken
/// now); the second starts 3 days behind and must not trust its clock.
fn run_at_true_time_then_start_behind(broker: &Mosquitto) -> (Daemon, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let offset_file = dir.path().join("faketime");
    let config = config(broker.port, dir.path(), false);
    let behind = log_then_restart_behind(broker, dir, &config, "pi/before");
    assert!(behind.log().contains("not trusted yet"), "{}", behind.log());
    assert_eq!(metric(&behind, "clock_trusted"), 0);
    publish_two_that_wait(broker, &behind);
    (behind, offset_file)
}

#[test]
fn samples_wait_for_the_clock_step_and_land_at_their_true_time() {
    let broker = Mosquitto::start();
    let (behind, offset_file) = run_at_true_time_then_start_behind(&broker);
    // Nothing written while waiting, even when asked to flush.
    behind.flush();
    assert!(!behind.data().join("pi/a.rrd").exists());
    // NTP steps the clock to the true time.
    std::fs::write(&offset_file, "+0\n").unwrap();
    wait_trusted(&behind);
    assert_eq!(metric(&behind, "clock_waiting_samples"), 0);
    behind.flush();
    assert_at_true_time(&behind.data());
    assert!(behind.log().contains("The system clock is trusted now"));
    assert_moved_3_days(&behind.log());
}

#[test]
fn samples_waiting_for_the_clock_survive_a_kill_9() {
    let broker = Mosquitto::start();
    let (behind, offset_file) = run_at_true_time_then_start_behind(&broker);
    // Killed before the step: the samples are only in the journal.
    let dir = behind.kill9();
    std::fs::remove_file(dir.path().join("daemon.log")).unwrap();
    std::fs::write(&offset_file, "+0\n").unwrap();
    let config = config(broker.port, dir.path(), false);
    let after = start_faked(dir, &config, &offset_file);
    wait_for(Duration::from_secs(20), "the waiting samples", || {
        after
            .log()
            .contains("Samples that waited for the clock taken")
            .then_some(())
    });
    after.flush();
    assert_at_true_time(&after.data());
    assert_moved_3_days(&after.log());
}

/// A time-sync service runs and has not synced: the samples wait, even
/// once the clock reads right, until its flag appears.
#[test]
fn samples_wait_for_the_sync_service_flag() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("timesync")).unwrap();
    let offset_file = dir.path().join("faketime");
    std::fs::write(&offset_file, "-3d\n").unwrap();
    let config = config(broker.port, dir.path(), true);
    let flag = dir.path().join("timesync/synchronized");
    let daemon = start_faked(dir, &config, &offset_file);
    publish_two_that_wait(&broker, &daemon);
    // The clock is stepped, but the service has not said it synced: the
    // check that sees the step (every 10 s) keeps waiting. `/metrics` asks
    // the cache task, so it answers after that check is done.
    std::fs::write(&offset_file, "+0\n").unwrap();
    daemon.wait_log("The system clock was stepped forward", 1);
    assert_eq!(metric(&daemon, "clock_waiting_samples"), 2);
    std::fs::write(&flag, "").unwrap();
    wait_trusted(&daemon);
    daemon.flush();
    assert_at_true_time(&daemon.data());
}

/// The log says the waiting samples moved by the step: 3 days, 259,200 s,
/// within the second it took (the clocks are read a moment apart).
fn assert_moved_3_days(log: &str) {
    let moved: f64 = log
        .split("moved_s=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no moved_s in {log}"));
    assert!((moved - 259_200.0).abs() < 1.0, "moved {moved} s: {log}");
}

/// `rejected_total{reason="late"}`: samples refused for falling at or
/// before rows already written.
fn late(daemon: &Daemon) -> u64 {
    metric(daemon, "rejected_total{reason=\"late\"}")
}

/// The last value and update time `rrdtool lastupdate` reports.
fn last_update(path: &Path) -> (i64, f64) {
    let out = std::process::Command::new("rrdtool")
        .arg("lastupdate")
        .arg(path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let (time, value) = line.split_once(':').unwrap_or_else(|| panic!("{text}"));
    (time.trim().parse().unwrap(), value.trim().parse().unwrap())
}

/// A running daemon whose clock is then set back by `back`: what it
/// published before is written; the samples published after wait.
fn set_back_while_running(broker: &Mosquitto, back: &str) -> (Daemon, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let offset_file = dir.path().join("faketime");
    std::fs::write(&offset_file, "+0\n").unwrap();
    let config = config(broker.port, dir.path(), false);
    let daemon = start_faked(dir, &config, &offset_file);
    broker.publish("pi/a", "1.5");
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    std::fs::write(&offset_file, format!("{back}\n")).unwrap();
    wait_for(Duration::from_secs(20), "the step to be seen", || {
        daemon
            .log()
            .contains("The system clock was set back")
            .then_some(())
    });
    publish_two_that_wait(broker, &daemon);
    (daemon, offset_file)
}

/// Set back 10 minutes (a bad time server), then put right: the samples
/// of the meantime go at their true time, none refused as late.
#[test]
fn a_clock_set_back_and_put_right_loses_nothing() {
    let broker = Mosquitto::start();
    let (daemon, offset_file) = set_back_while_running(&broker, "-10m");
    std::fs::write(&offset_file, "+0\n").unwrap();
    wait_trusted(&daemon);
    daemon.flush();
    let now = now_s();
    let (when, value) = last_update(&daemon.data().join("pi/a.rrd"));
    assert_eq!(value, 2.5, "{}", daemon.log());
    // At its true time, or the step after if that one was written.
    assert!(
        (now - 60..=now + 120).contains(&when),
        "at {when}, now {now}"
    );
    let b = fetch(&daemon.data().join("pi/b.rrd"), now - 300, now + 120);
    assert!(b.iter().any(|(_, v)| *v == 3.5), "{b:?}");
    assert_eq!(late(&daemon), 0, "{}", daemon.log());
}

/// Set back 20 s and left so: the samples of the overlap wait until the
/// clock reads again what it read before, then go just after the rows
/// already written; none refused as late.
#[test]
fn a_clock_set_back_and_left_so_writes_the_overlap_after_what_was_written() {
    let broker = Mosquitto::start();
    let (daemon, _offset_file) = set_back_while_running(&broker, "-20s");
    let written_before = last_update(&daemon.data().join("pi/a.rrd")).0;
    wait_for(Duration::from_secs(40), "the clock to catch up", || {
        (metric(&daemon, "clock_waiting_samples") == 0).then_some(())
    });
    daemon.flush();
    let (when, value) = last_update(&daemon.data().join("pi/a.rrd"));
    assert_eq!(value, 2.5);
    assert!(when > written_before, "{when} after {written_before}");
    assert_eq!(late(&daemon), 0, "{}", daemon.log());
}

/// Without journal and snapshots, the files' last updates (the index) are
/// the evidence that the clock is behind.
#[test]
fn the_files_last_updates_are_evidence_too() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}[journal]\nenabled = false\n",
        config(broker.port, dir.path(), false)
            .replace("[cache]\n", "[cache]\nsnapshot_every = \"0s\"\n")
    );
    let mut behind = log_then_restart_behind(&broker, dir, &config, "pi/before");
    assert!(!behind.data().join("datalog-rrd.snapshot").exists());
    assert!(behind.log().contains("BehindData"), "{}", behind.log());
    // Stopped while a sample waits, without a journal to keep it: written
    // with the best time there is, after what the file already holds.
    broker.publish("pi/before", "2");
    wait_for(Duration::from_secs(10), "the sample to wait", || {
        (metric(&behind, "clock_waiting_samples") == 1).then_some(())
    });
    let written_before = last_update(&behind.data().join("pi/before.rrd")).0;
    assert!(behind.stop(Duration::from_secs(20)).success());
    let (when, value) = last_update(&behind.dir.path().join("data/pi/before.rrd"));
    let log = std::fs::read_to_string(behind.dir.path().join("daemon.log")).unwrap();
    assert_eq!(value, 2.0, "{log}");
    assert!(when > written_before);
}

/// Never trusted (an offline Pi): after `clock.max_wait` what waited is
/// written with the best time there is, after what the file holds, and
/// `/metrics` says the daemon gave up.
#[test]
fn an_offline_pi_writes_after_max_wait() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "{}max_wait = \"10s\"\n",
        config(broker.port, dir.path(), false)
    );
    let behind = log_then_restart_behind(&broker, dir, &config, "pi/a");
    broker.publish("pi/a", "2.5");
    wait_for(Duration::from_secs(30), "max_wait to pass", || {
        (metric(&behind, "clock_gave_up") == 1).then_some(())
    });
    assert_eq!(metric(&behind, "clock_waiting_samples"), 0);
    assert!(behind.log().contains("never trusted"), "{}", behind.log());
    behind.flush();
    assert_eq!(last_update(&behind.data().join("pi/a.rrd")).1, 2.5);
    assert_eq!(late(&behind), 0);
}
