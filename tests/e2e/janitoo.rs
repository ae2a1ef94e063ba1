//! A janitoo_datalog_rrd INI converted by `datalog-rrd import-janitoo`, then
//! run against a real mosquitto with janitoo-shaped value messages: each
//! `[datarrd__x]` becomes one multi-DS file that `rrdtool` reads back.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// The DS names and the rows with a known value, over the last hour.
fn fetch_all(path: &std::path::Path) -> (Vec<String>, Vec<Vec<f64>>) {
    let (header, rows) = fetch_columns(path, now_s() - 3600, now_s());
    let known = rows
        .into_iter()
        .map(|(_, values)| values)
        .filter(|values| values.iter().any(|v| !v.is_nan()))
        .collect();
    (header, known)
}

#[test]
fn an_imported_janitoo_config_logs_janitoo_values() {
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("janitoo_datalog_rrd.conf");
    std::fs::write(
        &ini,
        format!(
            "[system]\nservice = jnt_datalog_rrd\nbroker_ip = 127.0.0.1\nbroker_port = {}\n\n\
             [datarrd]\nhadd = 0014/0000\ncache_rrd_ttl_0 = 3600\ncache_pickle_ttl_0 = 60\ncache_dead_ttl_0 = 86400\n\n\
             [http]\nauto_start = True\n\n\
             [datarrd__load]\nheartbeat = 60\nrrd_file_0 = load\nrrd_step_0 = 60\n\
             source_config_0 = 0048/0002|load|0|GAUGE|load1\n\
             source_config_1 = 0048/0002|load|1|GAUGE|load5\n\
             source_config_2 = 0048/0002|load|2|GAUGE|load15\n\n\
             [datarrd__memory_rss]\nrrd_file_0 = memory_rss\nrrd_step_0 = 60\n\
             source_config_0 = 0048/0004|memory_rss|0|GAUGE|hostsensor\n\
             source_config_1 = 0048/0004|memory_rss|1|GAUGE|roomba\n",
            broker.port
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_datalog-rrd"))
        .args(["import-janitoo", &ini.to_string_lossy()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stderr).unwrap();
    assert!(report.contains("2 file(s) converted"), "{report}");
    assert!(report.contains("not mapped: [http]"), "{report}");
    let config = String::from_utf8(out.stdout).unwrap();

    let daemon = Daemon::start(&config);
    let load = |i: usize, v: f64| {
        format!(
            r#""{i}":{{"uuid":"load","hadd":"0048/0002","genre":2,"index":{i},"type":3,"data":{v}}}"#
        )
    };
    // The three shapes: several indexes, one value, values nested deeper.
    broker.publish(
        "/values/user/0048/0002/load",
        &format!("{{{},{},{}}}", load(0, 0.5), load(1, 0.25), load(2, 0.125)),
    );
    broker.publish(
        "/values/user/0048/0004/memory_rss",
        r#"{"uuid":"memory_rss","hadd":"0048/0004","genre":2,"index":0,"data":1834,"label":"Memory RSS"}"#,
    );
    broker.publish(
        "/values/user/0048/0004/memory_rss",
        r#"{"node":{"1":{"uuid":"memory_rss","hadd":"0048/0004","genre":2,"index":1,"data":512}}}"#,
    );
    // System values (genre 3) are not data.
    broker.publish(
        "/values/system/0048/0004/memory_rss",
        r#"{"uuid":"memory_rss","hadd":"0048/0004","genre":3,"index":0,"data":99}"#,
    );
    daemon.wait_log("Samples taken", 3);
    daemon.flush();
    let (header, rows) = wait_for(Duration::from_secs(10), "load.rrd", || {
        let path = daemon.data().join("load.rrd");
        path.exists().then(|| fetch_all(&path))
    });
    assert_eq!(header, ["load1", "load5", "load15"]);
    assert_eq!(rows.last().unwrap(), &vec![0.5, 0.25, 0.125]);
    let (header, rows) = fetch_all(&daemon.data().join("memory_rss.rrd"));
    assert_eq!(header, ["hostsensor", "roomba"]);
    assert_eq!(rows.last().unwrap(), &vec![1834.0, 512.0]);
    assert!(
        !daemon.data().join("janitoo").exists(),
        "no automatic files beside the imported ones"
    );
}
