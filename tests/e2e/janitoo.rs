//! A janitoo_datalog_rrd installation switched over: its files made as
//! janitoo makes them (its `rrdtool create` arguments, DS named by the
//! labels, its step and archives, in `<home_dir>/public/rrd/rrds`), its INI
//! converted by `datalog-rrd import-janitoo`, then the daemon run against a
//! real mosquitto with janitoo-shaped value messages: the new rows land in
//! the same files, after janitoo's own.

use std::path::Path;
use std::process::Command;

use crate::support::*;

/// The DS names and the rows with a known value, over the last hour.
fn fetch_all(path: &Path) -> (Vec<String>, Vec<(i64, Vec<f64>)>) {
    let (header, rows) = fetch_columns(path, now_s() - 3600, now_s());
    let known = rows
        .into_iter()
        .filter(|(_, values)| values.iter().any(|v| !v.is_nan()))
        .collect();
    (header, known)
}

/// `rrdtool create` exactly as janitoo_datalog_rrd's `add_config` calls it.
fn create_like_janitoo(path: &Path, step: u64, labels: &[&str]) {
    let mut args = vec![
        "create".to_owned(),
        path.display().to_string(),
        "--step".into(),
        step.to_string(),
        "--start".into(),
        "0".into(),
    ];
    args.extend(
        labels
            .iter()
            .map(|l| format!("DS:{l}:GAUGE:{}:U:U", step * 2)),
    );
    for cf in ["AVERAGE", "MAX", "MIN"] {
        for steps in [1, 12, 144, 288] {
            args.push(format!("RRA:{cf}:0.5:{steps}:1440"));
        }
    }
    let status = Command::new("rrdtool").args(&args).status().unwrap();
    assert!(status.success(), "{args:?}");
}

fn rrdtool_update(path: &Path, row: &str) {
    let status = Command::new("rrdtool")
        .arg("update")
        .arg(path)
        .arg(row)
        .status()
        .unwrap();
    assert!(status.success(), "{row}");
}

#[test]
fn a_janitoo_installation_continues_in_its_own_files() {
    let broker = Mosquitto::start();
    let home = tempfile::tempdir().unwrap();
    let rrds = home.path().join("public/rrd/rrds");
    std::fs::create_dir_all(&rrds).unwrap();
    create_like_janitoo(&rrds.join("load.rrd"), 60, &["load1", "load5", "load15"]);
    create_like_janitoo(&rrds.join("memory_rss.rrd"), 60, &["hostsensor", "roomba"]);
    std::fs::write(rrds.join("index.txt"), "load|memory_rss").unwrap();
    // An hour of janitoo's own history ends 20 minutes ago.
    let history_end = (now_s() / 60 - 20) * 60;
    rrdtool_update(
        &rrds.join("load.rrd"),
        &format!("{}:1:2:3", history_end - 60),
    );
    rrdtool_update(&rrds.join("load.rrd"), &format!("{history_end}:1:2:3"));

    let ini = home.path().join("janitoo_datalog_rrd.conf");
    std::fs::write(
        &ini,
        format!(
            "[system]\nservice = jnt_datalog_rrd\nhome_dir = {}\nbroker_ip = 127.0.0.1\nbroker_port = {}\n\n\
             [datarrd]\nhadd = 0014/0000\ncache_rrd_ttl_0 = 3600\ncache_pickle_ttl_0 = 60\ncache_dead_ttl_0 = 86400\n\n\
             [http]\nauto_start = True\n\n\
             [datarrd__load]\nheartbeat = 60\nrrd_file_0 = load\nrrd_step_0 = 60\n\
             source_config_0 = 0048/0002|load|0|GAUGE|load1\n\
             source_config_1 = 0048/0002|load|1|GAUGE|load5\n\
             source_config_2 = 0048/0002|load|2|GAUGE|load15\n\
             source_config_4 = 0048/0002|load|4|GAUGE|load_ghost\n\n\
             [datarrd__memory_rss]\nrrd_file_0 = memory_rss\nrrd_step_0 = 60\n\
             source_config_0 = 0048/0004|memory_rss|0|GAUGE|hostsensor\n\
             source_config_1 = 0048/0004|memory_rss|1|GAUGE|roomba\n",
            home.path().display(),
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
    // janitoo never read source_config_4 (there is no 3): neither do we.
    assert!(
        report.contains("[datarrd__load] source_config_4: janitoo ignored it"),
        "{report}"
    );
    let config = String::from_utf8(out.stdout).unwrap();
    assert!(
        config.contains(&format!("data_dir = \"{}\"", rrds.display())),
        "{config}"
    );

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

    // The same files: janitoo's history, then the new rows.
    let (header, rows) = fetch_all(&rrds.join("load.rrd"));
    assert_eq!(header, ["load1", "load5", "load15"]);
    // (The first update after janitoo's `--start 0` only ends an unknown
    // stretch longer than the heartbeat: its row stays unknown.)
    assert_eq!(rows[0], (history_end, vec![1.0, 2.0, 3.0]), "{rows:?}");
    assert_eq!(rows.last().unwrap().1, vec![0.5, 0.25, 0.125], "{rows:?}");
    assert!(rows.last().unwrap().0 > history_end);
    let (header, rows) = fetch_all(&rrds.join("memory_rss.rrd"));
    assert_eq!(header, ["hostsensor", "roomba"]);
    assert_eq!(rows.last().unwrap().1, vec![1834.0, 512.0]);
    assert!(
        !daemon.log().contains("configuration wants"),
        "no layout refusal: {}",
        daemon.log()
    );
    assert!(
        !rrds.join("janitoo").exists(),
        "no automatic files beside janitoo's"
    );
    // janitoo's index.txt still lists its files, in its format.
    drop(daemon);
    let index = std::fs::read_to_string(rrds.join("index.txt")).unwrap();
    assert_eq!(index, "load|memory_rss");
}
