//! Live reload: the config file edited under a running daemon.

use std::process::Command;

use crate::support::*;

fn step_of(path: &std::path::Path) -> String {
    let out = Command::new("rrdtool")
        .args(["info", &path.to_string_lossy()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("step = "))
        .unwrap_or("?")
        .to_owned()
}

#[test]
fn edits_apply_without_a_restart_and_bad_edits_are_refused() {
    let broker = Mosquitto::start();
    let base = format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"reload\"\n[cache]\nflush_after = \"1h\"\n",
        broker.port
    );
    let daemon = Daemon::start(&base);
    let t0 = (now_s() / 60 - 5) * 60;
    broker.publish("fast/old", &format!(r#"{{"ts": {t0}, "value": 1}}"#));
    daemon.wait_log("Samples taken", 1);

    let fast = "[[template]]\nname = \"fast\"\ntopics = [\"fast/#\"]\nstep = \"10s\"\n\
                rra = [{ cf = \"AVERAGE\", every = \"10s\", keep = \"1d\" }]\n";
    daemon.rewrite_config(&format!("{base}{fast}"));
    daemon.wait_log("Configuration reloaded", 1);
    broker.publish("fast/new", &format!(r#"{{"ts": {t0}, "value": 2}}"#));
    daemon.wait_log("Samples taken", 2);

    // A broken edit: refused with its key, the running configuration stays.
    daemon.rewrite_config(&format!("{base}{fast}[limits]\nmax_series = 0\n"));
    daemon.wait_log("Configuration not reloaded", 1);
    assert!(
        daemon.log().contains("limits.max_series"),
        "{}",
        daemon.log()
    );
    broker.publish("fast/newer", &format!(r#"{{"ts": {t0}, "value": 3}}"#));
    daemon.wait_log("Samples taken", 3);
    daemon.flush();

    let data = daemon.data();
    assert_eq!(
        step_of(&data.join("fast/old/value.rrd")),
        "60",
        "an existing file keeps its step"
    );
    assert_eq!(step_of(&data.join("fast/new/value.rrd")), "10");
    assert_eq!(step_of(&data.join("fast/newer/value.rrd")), "10");
    assert!(
        daemon.log().contains("File keeps its layout"),
        "{}",
        daemon.log()
    );

    // SIGHUP reloads too (the file is valid again): a reload follows the
    // SIGHUP's own line in the log, whatever the watcher still reports.
    daemon.rewrite_config(&format!("{base}{fast}"));
    daemon.wait_log("Configuration reloaded", 2);
    daemon.signal("HUP");
    wait_for(
        std::time::Duration::from_secs(10),
        "a reload after SIGHUP",
        || {
            let log = daemon.log();
            let hup = log.find("SIGHUP: reloading the configuration")?;
            log[hup..].contains("Configuration reloaded").then_some(())
        },
    );
}
