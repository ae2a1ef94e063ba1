//! A user changes a file's retention or a series' name and keeps the past:
//! `datalog-rrd migrate`, `datalog-rrd rename`, and `[[rule]]` with
//! `move_history`, each against files a real daemon wrote.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn template(keep: &str, extra: &str) -> String {
    format!(
        "\n[[template]]\nname = \"default\"\ntopics = [\"#\"]\nstep = \"1m\"\nhold = \"0s\"\n\
         rra = [{{ cf = [\"AVERAGE\"], every = \"1m\", keep = \"{keep}\" }}{extra}]\n"
    )
}

/// A config file for the commands, on the daemon's data directory in `dir`.
fn config_for_cli(dir: &tempfile::TempDir, name: &str, body: &str) -> String {
    let path = dir.path().join(name);
    let data = dir.path().join("data");
    std::fs::write(&path, format!("data_dir = \"{}\"\n{body}", data.display())).unwrap();
    path.to_string_lossy().into_owned()
}

/// A daemon on `dir`, with a fresh log (waits count log lines).
fn restart(dir: tempfile::TempDir, config: &str) -> Daemon {
    let _ = std::fs::remove_file(dir.path().join("daemon.log"));
    Daemon::start_in(dir, config, "info,datalog_rrd=debug")
}

fn cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_datalog-rrd"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs a daemon on `config`, publishes `values` one minute apart ending
/// `minutes_ago` minutes ago on `topic`, flushes, stops; returns its dir
/// and the times written.
fn log_values(
    broker: &Mosquitto,
    dir: tempfile::TempDir,
    config: &str,
    topic: &str,
    values: &[f64],
) -> (tempfile::TempDir, Vec<(i64, f64)>) {
    let mut daemon = restart(dir, config);
    let end = (now_s() / 60 - 5) * 60;
    let rows: Vec<(i64, f64)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| (end - 60 * (values.len() - 1 - i) as i64, *v))
        .collect();
    for (t, v) in &rows {
        broker.publish(topic, &format!(r#"{{"ts": {t}, "v": {v}}}"#));
    }
    daemon.wait_log("Samples taken", values.len());
    daemon.flush();
    assert!(daemon.stop(Duration::from_secs(20)).success());
    let dir = std::mem::replace(&mut daemon.dir, tempfile::tempdir().unwrap());
    (dir, rows)
}

#[test]
fn a_longer_retention_and_a_new_archive_keep_the_past() {
    let broker = Mosquitto::start();
    let base = external(broker.port, "1h");
    let (dir, rows) = log_values(
        &broker,
        tempfile::tempdir().unwrap(),
        &format!("{base}{}", template("2h", "")),
        "home/t",
        &[1.0, 2.0, 3.0, 4.0, 5.0],
    );
    let file = dir.path().join("data/home/t/v.rrd");
    let past = fetch(&file, rows[0].0 - 60, rows[4].0);
    assert_eq!(past, rows);

    // Retention 2h → 7d, and a 5-minute archive added.
    let wanted = format!(
        "{base}{}",
        template("7d", ", { cf = [\"MAX\"], every = \"5m\", keep = \"30d\" }")
    );
    let config = config_for_cli(&dir, "datalog-rrd.toml", &wanted);
    let (ok, out) = cli(&["migrate", "-c", &config, "--dry-run"]);
    assert!(ok, "{out}");
    assert!(out.contains("home/t/v: rebuilt: archives"), "{out}");
    assert!(out.contains("Dry run"), "{out}");
    assert!(!dir.path().join("data/home/t/v.rrd.bak").exists());

    let (ok, out) = cli(&["migrate", "-c", &config]);
    assert!(ok, "{out}");
    assert!(out.contains("old file kept as"), "{out}");
    assert!(dir.path().join("data/home/t/v.rrd.bak").exists());
    assert_eq!(
        fetch(&file, rows[0].0 - 60, rows[4].0),
        rows,
        "the past, in the new file"
    );
    let info = rrd_info(&file);
    assert!(info.contains("rra[0].rows = 10080"), "7 days of minutes");
    assert!(info.contains("rra[1].cf = \"MAX\""), "{info}");
    // Nothing left to do.
    let (ok, out) = cli(&["migrate", "-c", &config]);
    assert!(ok && out.contains("home/t/v: as configured"), "{out}");

    // The daemon goes on writing into the migrated file, and the web UI
    // draws it.
    let mut daemon = restart(dir, &wanted);
    broker.publish("home/t", r#"{"v": 6}"#);
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    assert!(
        !daemon.log().contains("configuration wants"),
        "{}",
        daemon.log()
    );
    let (status, png) = http_get(&format!(
        "{}/rrd/graph/home/t/v.png?range=day",
        daemon.web_url()
    ));
    assert_eq!(status, 200);
    assert!(png.starts_with(b"\x89PNG"));
    // While it runs, migrate refuses: it would rebuild a file being written.
    let (ok, out) = cli(&["migrate", "-c", &daemon.config_path().to_string_lossy()]);
    assert!(
        !ok && out.contains("in use by another datalog-rrd"),
        "{out}"
    );
    assert!(daemon.stop(Duration::from_secs(20)).success());
}

#[test]
fn a_renamed_series_keeps_its_history_and_late_samples_follow() {
    let broker = Mosquitto::start();
    let base = external(broker.port, "1h");
    let (dir, rows) = log_values(
        &broker,
        tempfile::tempdir().unwrap(),
        &base,
        "sensors/old_name",
        &[7.0, 8.0, 9.0],
    );
    let old = dir.path().join("data/sensors/old_name/v.rrd");
    assert_eq!(fetch(&old, rows[0].0 - 60, rows[2].0), rows);

    // The rule renames the series, and moves its history at start.
    let renamed = format!(
        "{base}\n[[rule]]\ntopics = [\"sensors/old_name/v\"]\nrename = \"sensors/new_name/v\"\nmove_history = true\n"
    );
    let mut daemon = restart(dir, &renamed);
    let new = daemon.data().join("sensors/new_name/v.rrd");
    assert!(!daemon.data().join("sensors/old_name/v.rrd").exists());
    assert_eq!(
        fetch(&new, rows[0].0 - 60, rows[2].0),
        rows,
        "the history moved"
    );
    // A device still publishing under the old name: into the new file.
    let t = rows[2].0 + 60;
    broker.publish("sensors/old_name", &format!(r#"{{"ts": {t}, "v": 10}}"#));
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    let mut all = rows.clone();
    all.push((t, 10.0));
    assert_eq!(fetch(&new, rows[0].0 - 60, t), all);
    assert!(!daemon.data().join("sensors/old_name/v.rrd").exists());
    assert!(daemon.stop(Duration::from_secs(20)).success());

    // The command does the same by hand, and says how to keep late samples.
    let dir = std::mem::replace(&mut daemon.dir, tempfile::tempdir().unwrap());
    let config = config_for_cli(&dir, "plain.toml", &base);
    let (ok, out) = cli(&[
        "rename",
        "-c",
        &config,
        "sensors/new_name/v",
        "sensors/third/v",
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("move_history = true"), "{out}");
    let third = dir.path().join("data/sensors/third/v.rrd");
    assert_eq!(fetch(&third, rows[0].0 - 60, t), all);
    let index = std::fs::read_to_string(dir.path().join("data/index.json")).unwrap();
    assert!(index.contains("\"sensors/third/v\""), "{index}");
    assert!(!index.contains("sensors/new_name"), "{index}");
}

#[test]
fn with_apply_layout_changes_the_running_daemon_rebuilds_on_reload() {
    let broker = Mosquitto::start();
    let base = format!(
        "{}apply_layout_changes = true\n",
        external(broker.port, "1h")
    );
    let mut daemon = Daemon::start(&format!("{base}{}", template("2h", "")));
    let end = (now_s() / 60 - 5) * 60;
    let rows: Vec<(i64, f64)> = (0..5)
        .map(|i| (end - 60 * (4 - i), i as f64 + 1.0))
        .collect();
    for (t, v) in &rows {
        broker.publish("home/t", &format!(r#"{{"ts": {t}, "v": {v}}}"#));
    }
    daemon.wait_log("Samples taken", rows.len());
    daemon.flush();
    let file = daemon.data().join("home/t/v.rrd");
    assert_eq!(fetch(&file, rows[0].0 - 60, end), rows);

    // Retention 2h → 7d and an archive more, while it runs.
    daemon.rewrite_config(&format!(
        "{base}{}",
        template("7d", ", { cf = [\"MAX\"], every = \"5m\", keep = \"30d\" }")
    ));
    daemon.wait_log("File takes its new layout at its next write", 1);
    broker.publish("home/t", &format!(r#"{{"ts": {}, "v": 6}}"#, end + 60));
    daemon.flush();
    daemon.wait_log("RRD file brought to its configured layout", 1);
    let mut all = rows.clone();
    all.push((end + 60, 6.0));
    assert_eq!(
        fetch(&file, rows[0].0 - 60, end + 60),
        all,
        "the past and the new row"
    );
    let info = rrd_info(&file);
    assert!(info.contains("rra[0].rows = 10080"), "{info}");
    assert!(info.contains("rra[1].cf = \"MAX\""), "{info}");
    assert!(daemon.data().join("home/t/v.rrd.bak").exists());
    assert!(daemon.stop(Duration::from_secs(20)).success());
}
