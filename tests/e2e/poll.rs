//! Poll jobs against real servers from Debian packages on loopback:
//! munin-node with plugins of the test's own, prometheus-node-exporter,
//! and targets that refuse, hang or talk nonsense.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

/// munin-node 2.0 on a free loopback port with the plugins the test
/// writes: it reads only `/etc/munin/plugins`, so that directory is
/// bind-mounted over in a private mount namespace (needs root).
struct MuninNode {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl MuninNode {
    fn start(plugins: &[(&str, &str)]) -> MuninNode {
        let dir = tempfile::tempdir().unwrap();
        let (plugin_dir, conf_dir) = (dir.path().join("plugins"), dir.path().join("conf.d"));
        std::fs::create_dir(&plugin_dir).unwrap();
        std::fs::create_dir(&conf_dir).unwrap();
        for (name, script) in plugins {
            let path = plugin_dir.join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
            Command::new("chmod")
                .arg("755")
                .arg(&path)
                .status()
                .unwrap();
        }
        // The test's temp dir is root's: its plugins run as root.
        std::fs::write(conf_dir.join("test"), "[*]\nuser root\n").unwrap();
        let port = free_port();
        let config = dir.path().join("munin-node.conf");
        std::fs::write(
            &config,
            format!(
                "log_level 4\nlog_file {d}/munin-node.log\npid_file {d}/munin-node.pid\n\
                 background 0\nsetsid 0\nuser root\ngroup root\nallow ^127\\.0\\.0\\.1$\n\
                 host 127.0.0.1\nport {port}\ntimeout 60\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        let script = format!(
            "mount --bind {p} /etc/munin/plugins && mount --bind {c} /etc/munin/plugin-conf.d \
             && exec munin-node --config {conf} --foreground",
            p = plugin_dir.display(),
            c = conf_dir.display(),
            conf = config.display()
        );
        let child = Command::new("unshare")
            .args(["-m", "sh", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare (util-linux) and munin-node, as root");
        wait_for(Duration::from_secs(20), "munin-node to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        MuninNode {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for MuninNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The index entry (as `index.json` has it) of the file at `rel`.
fn index_entry(data: &Path, rel: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(data.join("index.json")).ok()?;
    let index: serde_json::Value = serde_json::from_str(&text).ok()?;
    index["files"]
        .as_array()?
        .iter()
        .find(|f| f["path"] == rel)
        .cloned()
}

const TEMPERATURE: &str = r#"if [ "$1" = config ]; then
echo 'graph_title Room temperature'
echo 'graph_vlabel °C'
echo 'graph_category sensors'
echo 'room.label Living room'
echo 'room.draw AREA'
echo 'room.colour 00cc00'
echo 'room.warning 25'
echo 'room.critical 30'
exit 0; fi
echo 'room.value 21.5'"#;

/// A counter that grows 1000 a second: its rate is 1000.
const TRAFFIC: &str = r#"if [ "$1" = config ]; then
echo 'graph_title Traffic'
echo 'bytes.label bytes'
echo 'bytes.type DERIVE'
echo 'bytes.min 0'
exit 0; fi
echo "bytes.value $(( $(date +%s) * 1000 ))""#;

const MULTI: &str = r#"if [ "$1" = config ]; then
echo 'multigraph multi_disk'
echo 'graph_title Disks'
echo 'used.label used'
echo 'multigraph multi_disk.sda'
echo 'graph_title sda'
echo 'reads.label reads'
exit 0; fi
echo 'multigraph multi_disk'
echo 'used.value 1e+05'
echo 'multigraph multi_disk.sda'
echo 'reads.value 7'"#;

/// Hangs while fetching, as a plugin stuck on a dead NFS mount does (one
/// that hangs on `config` holds munin-node's own greeting: munin-node's
/// `timeout` is the cure for that, not the poller).
const HANG: &str = r#"if [ "$1" = config ]; then
echo 'graph_title Hang'
echo 'x.label x'
exit 0; fi
sleep 50
echo 'x.value 1'"#;

#[test]
fn munin_plugins_land_in_files_with_their_config() {
    let node = MuninNode::start(&[
        ("temperature", TEMPERATURE),
        ("traffic", TRAFFIC),
        ("multi", MULTI),
        ("hang", HANG),
    ]);
    let broker = Mosquitto::start();
    let config = format!(
        "{}[[poll]]\nname = \"node\"\nkind = \"munin\"\ntarget = \"127.0.0.1:{}\"\n\
         interval = \"10s\"\ntimeout = \"4s\"\n",
        external(broker.port, "1s"),
        node.port
    );
    let daemon = Daemon::start(&config);
    let data = daemon.data();
    let prefix = "munin/127.2E0.2E0.2E1";
    let room = data.join(format!("{prefix}/temperature/room.rrd"));
    let bytes = data.join(format!("{prefix}/traffic/bytes.rrd"));
    // MQTT keeps flowing while the hanging plugin holds its job.
    broker.publish("sensors/kitchen/temp", "19.5");
    // Two rounds: the counter's rate needs two values.
    wait_for(Duration::from_secs(60), "two munin rounds", || {
        daemon.flush();
        if !bytes.exists() {
            return None;
        }
        let rows = fetch(&bytes, now_s() - 120, now_s());
        rows.iter()
            .any(|(_, v)| (*v - 1000.0).abs() < 100.0)
            .then_some(())
    });
    let temps = fetch(&room, now_s() - 120, now_s());
    assert!(temps.iter().all(|(_, v)| *v == 21.5), "{temps:?}");
    let info = rrd_info(&room);
    assert!(info.contains("step = 10"), "{info}");
    assert!(info.contains("ds[value].type = \"GAUGE\""), "{info}");
    let info = rrd_info(&bytes);
    assert!(info.contains("ds[value].type = \"DDERIVE\""), "{info}");
    assert!(info.contains("ds[value].min = 0.0"), "{info}");
    // Scientific notation is a number; multigraphs nest.
    let used = data.join(format!("{prefix}/multi_disk/used.rrd"));
    assert!(
        fetch(&used, now_s() - 120, now_s())
            .iter()
            .any(|(_, v)| *v == 1e5)
    );
    assert!(
        data.join(format!("{prefix}/multi_disk/sda/reads.rrd"))
            .exists()
    );
    assert!(data.join("sensors/kitchen/temp.rrd").exists());
    // Label, unit, device and chart as config said.
    let entry = wait_for(Duration::from_secs(20), "the index", || {
        index_entry(&data, &format!("{prefix}/temperature/room"))
    });
    let ds = &entry["ds"][0];
    assert_eq!(ds["label"], "Living room", "{entry}");
    assert_eq!(ds["unit"], "°C", "{entry}");
    assert_eq!(ds["device"], hostname(), "{entry}");
    let chart = &ds["chart"];
    assert_eq!(chart["title"], "Room temperature", "{entry}");
    assert_eq!(chart["draw"], "area", "{entry}");
    assert_eq!(chart["warning"], 25.0, "{entry}");
    assert_eq!(chart["critical"], 30.0, "{entry}");
    // The node's dashboard: a view per plugin, titled as munin titles it,
    // drawn with the plugin's styles and thresholds.
    // The device is the job's prefix; the node's name titles it.
    let host = "munin/127.2E0.2E0.2E1";
    let dashboard = format!("{}/rrd/device-dashboard?device={host}", daemon.web_url());
    let (status, page) = http_get(&dashboard);
    let page = String::from_utf8_lossy(&page);
    assert_eq!(status, 200, "{page}");
    for title in [
        "Room temperature",
        "Traffic",
        "Disks",
        &format!("Charts of {}", hostname()),
    ] {
        assert!(page.contains(title), "{title} not in {page}");
    }
    for view in 0..3 {
        let (status, png) = http_get(&format!(
            "{}/rrd/device-dashboard/view.png?device={host}&view={view}&range=hour",
            daemon.web_url()
        ));
        assert_eq!((status, &png[1..4]), (200, &b"PNG"[..]));
    }
    // The jobs page says how the job does.
    let (status, jobs) = http_get(&format!("{}/rrd/jobs", daemon.web_url()));
    let jobs = String::from_utf8_lossy(&jobs);
    assert_eq!(status, 200, "{jobs}");
    assert!(
        jobs.contains("node") && jobs.contains("answering"),
        "{jobs}"
    );
    assert!(jobs.contains("plugin hang"), "{jobs}");
    // The hanging plugin: a timeout counted, nothing of it written, and
    // the others' values were not held up by it.
    assert!(metric(&daemon, "poll_errors_total{job=\"node\",kind=\"timeout\"}") >= 1);
    assert!(!data.join(format!("{prefix}/hang/x.rrd")).exists());
    assert!(metric(&daemon, "poll_last_samples{job=\"node\"}") >= 4);
}

fn hostname() -> String {
    let out = Command::new("hostname").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_node_exporter_profile_logs_the_usual_series() {
    let exporter = NodeExporter::start();
    let broker = Mosquitto::start();
    let config = format!(
        "{}[[poll]]\nname = \"pi\"\nkind = \"prometheus\"\ntarget = \"{}\"\n\
         profile = \"node\"\ninterval = \"10s\"\n",
        external(broker.port, "1s"),
        exporter.url(),
    );
    let daemon = Daemon::start(&config);
    let data = daemon.data();
    let prefix = "prometheus/127.2E0.2E0.2E1";
    let load = data.join(format!("{prefix}/node_load1.rrd"));
    let idle = data.join(format!("{prefix}/node_cpu_seconds_total/0/idle.rrd"));
    wait_for(Duration::from_secs(60), "the exporter's series", || {
        daemon.flush();
        (load.exists() && idle.exists()).then_some(())
    });
    assert!(rrd_info(&load).contains("ds[value].type = \"GAUGE\""));
    let info = rrd_info(&idle);
    assert!(info.contains("ds[value].type = \"DDERIVE\""), "{info}");
    assert!(info.contains("ds[value].min = 0.0"), "{info}");
    // Float counters are written (librrd's DERIVE would refuse them): a
    // CPU's idle seconds per second, between 0 and 1 (and a bit).
    let rates = wait_for(Duration::from_secs(60), "an idle rate", || {
        daemon.flush();
        let rows = fetch(&idle, now_s() - 120, now_s());
        (!rows.is_empty()).then_some(rows)
    });
    assert!(
        rates.iter().all(|(_, v)| (0.0..=1.5).contains(v)),
        "{rates:?}"
    );
    let log = daemon.log();
    assert!(!log.contains("not written"), "{log}");
    // A dozen-odd series, not the hundreds the exporter has.
    let files = files_under(&data.join(prefix));
    assert!(files.len() < 60, "{files:?}");
    assert!(!files.iter().any(|f| f.contains("go_")), "{files:?}");
}

#[test]
fn failing_targets_back_off_and_hold_up_nothing() {
    // Refuses: a port nobody listens on.
    let refused = free_port();
    // Hangs: accepts, never answers.
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    // Talks nonsense: a greeting that is not munin's.
    let garbage = TcpListener::bind("127.0.0.1:0").unwrap();
    let garbage_port = garbage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in garbage.incoming().flatten().take(50) {
            let _ = s.write_all(b"HTTP/1.0 400 nonsense\r\n\r\n");
        }
    });
    let broker = Mosquitto::start();
    let job = |name: &str, kind: &str, port: u16| {
        format!(
            "[[poll]]\nname = \"{name}\"\nkind = \"{kind}\"\ntarget = \"127.0.0.1:{port}\"\n\
             interval = \"10s\"\ntimeout = \"2s\"\n"
        )
    };
    let config = format!(
        "{}{}{}{}",
        external(broker.port, "1s"),
        job("refused", "munin", refused),
        job(
            "hanging",
            "prometheus",
            hanging.local_addr().unwrap().port()
        ),
        job("garbage", "munin", garbage_port),
    );
    let daemon = Daemon::start(&config);
    for name in ["refused", "hanging", "garbage"] {
        wait_for(Duration::from_secs(30), "a failed round", || {
            let (_, body) = http_get(&format!("{}/metrics", daemon.web_url()));
            String::from_utf8_lossy(&body)
                .contains(&format!("datalog_rrd_poll_failing{{job=\"{name}\"}} 1"))
                .then_some(())
        });
    }
    let kind = |job: &str, kind: &str| {
        metric(
            &daemon,
            &format!("poll_errors_total{{job=\"{job}\",kind=\"{kind}\"}}"),
        )
    };
    // At least the first round each (a slow machine may have run the
    // backed-off second one already).
    assert!(kind("refused", "connect") >= 1);
    assert!(kind("hanging", "timeout") >= 1);
    assert!(kind("garbage", "protocol") >= 1);
    // Said once per outage, with the reason.
    let log = daemon.log();
    assert_eq!(log.matches("does not answer").count(), 3, "{log}");
    assert!(log.contains("not a munin node"), "{log}");
    // MQTT flows all the while.
    broker.publish("sensors/hall/temp", "18");
    wait_for(Duration::from_secs(20), "the MQTT value", || {
        daemon.flush();
        daemon
            .data()
            .join("sensors/hall/temp.rrd")
            .exists()
            .then_some(())
    });
    drop(hanging);
}

/// `rrdtool create` as munin-update makes a file (step 300, DS `42`,
/// AVERAGE, MIN and MAX of 1, 6, 24 and 288 steps), with a value every
/// five minutes over the day before `end`.
fn munin_file(path: &Path, ds_type: &str, end: i64, value: f64) {
    let start = end - 86_400;
    let mut args: Vec<String> = vec![
        "create".into(),
        path.display().to_string(),
        "--start".into(),
        (start - 300).to_string(),
        "--step".into(),
        "300".into(),
        format!("DS:42:{ds_type}:600:U:U"),
    ];
    for (steps, rows) in [(1, 576), (6, 432), (24, 540), (288, 450)] {
        for cf in ["AVERAGE", "MIN", "MAX"] {
            args.push(format!("RRA:{cf}:0.5:{steps}:{rows}"));
        }
    }
    assert!(
        Command::new("rrdtool")
            .args(&args)
            .status()
            .unwrap()
            .success()
    );
    let updates: Vec<String> = (0..288)
        .map(|i| format!("{}:{value}", start + i * 300))
        .collect();
    for chunk in updates.chunks(50) {
        let status = Command::new("rrdtool")
            .arg("update")
            .arg(path)
            .args(chunk)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

#[test]
fn munin_users_keep_their_history() {
    let node = MuninNode::start(&[("temperature", TEMPERATURE)]);
    let host = hostname();
    let dir = tempfile::tempdir().unwrap();
    let munin = dir.path().join("munin");
    std::fs::create_dir_all(munin.join("home")).unwrap();
    std::fs::write(
        munin.join("datafile"),
        format!("version 2.0.73\nhome;{host}:temperature.room.label Living room\n"),
    )
    .unwrap();
    let file = munin.join(format!("home/{host}-temperature-room-g.rrd"));
    let history_end = now_s() - 900;
    munin_file(&file, "GAUGE", history_end, 15.0);
    let before = rrd_info(&file);
    let out = Command::new(daemon_binary())
        .arg("import-munin")
        .arg(&munin)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}");
    assert!(report.contains("1 file(s) of 1 node(s) mapped"), "{report}");
    let imported = String::from_utf8_lossy(&out.stdout)
        // The node is the test's munin-node, polled often enough for a test.
        .replace(
            &format!("target = \"{host}\""),
            &format!("target = \"127.0.0.1:{}\"", node.port),
        )
        .replace("interval = \"5m\"", "interval = \"10s\"\ntimeout = \"4s\"");
    let broker = Mosquitto::start();
    let daemon = Daemon::start(&format!("{imported}{}", external(broker.port, "1s")));
    // The poll lands in Munin's file: its last value is the node's.
    wait_for(
        Duration::from_secs(60),
        "the polled value in Munin's file",
        || {
            daemon.flush();
            rrd_info(&file)
                .contains("ds[42].last_ds = \"21.5\"")
                .then_some(())
        },
    );
    // The same file: its layout as munin made it, its history kept.
    let after = rrd_info(&file);
    let layout = |info: &str| -> Vec<String> {
        info.lines()
            .filter(|l| {
                l.starts_with("step")
                    || l.contains(".cf")
                    || l.contains(".rows")
                    || l.contains("].type")
            })
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(layout(&before), layout(&after));
    let history = fetch(&file, history_end - 3600, history_end);
    assert!(
        history.len() >= 10 && history.iter().all(|(_, v)| *v == 15.0),
        "{history:?}"
    );
    let log = daemon.log();
    assert!(
        !log.contains("rebuilt") && !log.contains("not written"),
        "{log}"
    );
}

/// Opens `net.ipv4.ping_group_range` to every group (as systemd does on a
/// normal boot) while it lives, then puts the old range back.
struct PingGroups(String);

impl PingGroups {
    fn open() -> PingGroups {
        const PATH: &str = "/proc/sys/net/ipv4/ping_group_range";
        let old = std::fs::read_to_string(PATH).expect("Linux");
        let status = Command::new("sysctl")
            .args(["-qw", "net.ipv4.ping_group_range=0 2147483647"])
            .status()
            .expect("sysctl, as root");
        assert!(status.success());
        PingGroups(old.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

impl Drop for PingGroups {
    fn drop(&mut self) {
        let _ = Command::new("sysctl")
            .arg("-qw")
            .arg(format!("net.ipv4.ping_group_range={}", self.0))
            .status();
    }
}

#[test]
fn ping_logs_round_trip_times_and_loss() {
    let _groups = PingGroups::open();
    let broker = Mosquitto::start();
    let config = format!(
        "{}[[poll]]\nname = \"lo\"\nkind = \"ping\"\ntarget = \"127.0.0.1\"\n\
         interval = \"10s\"\npackets = 3\n",
        external(broker.port, "1s"),
    );
    let daemon = Daemon::start(&config);
    let dir = daemon.data().join("ping/127.2E0.2E0.2E1");
    wait_for(Duration::from_secs(60), "a ping round", || {
        daemon.flush();
        (dir.join("rtt_avg.rrd").exists() && dir.join("loss.rrd").exists()).then_some(())
    });
    let loss = rrd_info(&dir.join("loss.rrd"));
    assert!(loss.contains("ds[value].last_ds = \"0\""), "{loss}");
    let rtt = rrd_info(&dir.join("rtt_avg.rrd"));
    let last: f64 = rtt
        .lines()
        .find_map(|l| l.strip_prefix("ds[value].last_ds = \""))
        .and_then(|v| v.trim_end_matches('"').parse().ok())
        .unwrap();
    assert!((0.0..50.0).contains(&last), "{rtt}");
    // (Loss is not tested end to end: this sandbox answers ICMP for any
    // address; `ping::summary` is tested for it.)
}

/// snmpd on a free loopback UDP port with a v2c community and a v3 user
/// (SHA, AES), its state in a temp dir.
struct Snmpd {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Snmpd {
    fn start() -> Snmpd {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("snmpd.conf");
        std::fs::write(
            &conf,
            "rocommunity e2etest 127.0.0.1\n\
             createUser e2euser SHA \"authpass123\" AES \"privpass123\"\n\
             rouser e2euser priv\n",
        )
        .unwrap();
        let child = Command::new("snmpd")
            .args(["-f", "-Lo", "-C", "-c"])
            .arg(&conf)
            .arg("-p")
            .arg(dir.path().join("snmpd.pid"))
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("SNMP_PERSISTENT_DIR", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("snmpd");
        wait_for(Duration::from_secs(20), "snmpd to answer", || {
            Command::new("snmpget")
                .args(["-v2c", "-c", "e2etest", "-t", "1", "-r", "0"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("1.3.6.1.2.1.1.3.0")
                .output()
                .ok()
                .filter(|o| o.status.success())
        });
        Snmpd {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn snmp_interface_counters_land_as_rates() {
    let agent = Snmpd::start();
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("snmp.password");
    std::fs::write(&secret, "authpass123\nprivpass123\n").unwrap();
    let broker = Mosquitto::start();
    let config = format!(
        "{}[[poll]]\nname = \"router\"\nkind = \"snmp\"\ntarget = \"127.0.0.1:{port}\"\n\
         community = \"e2etest\"\nprofile = \"if\"\ninterval = \"10s\"\n\
         [[poll]]\nname = \"router-v3\"\nkind = \"snmp\"\ntarget = \"127.0.0.1:{port}\"\n\
         prefix = \"snmp3/router\"\nusername = \"e2euser\"\npassword_file = \"{}\"\n\
         oids = [\"1.3.6.1.2.1.1.3.0\"]\ninterval = \"10s\"\n",
        external(broker.port, "1s"),
        secret.display(),
        port = agent.port,
    );
    let daemon = Daemon::start(&config);
    let data = daemon.data();
    let lo_in = data.join("snmp/127.2E0.2E0.2E1/if/lo/in.rrd");
    // Two rounds: a counter's rate needs two values.
    let rates = wait_for(Duration::from_secs(60), "a rate of lo's traffic", || {
        daemon.flush();
        let rows = lo_in
            .exists()
            .then(|| fetch(&lo_in, now_s() - 120, now_s()))?;
        (!rows.is_empty()).then_some(rows)
    });
    assert!(rates.iter().all(|(_, v)| *v >= 0.0), "{rates:?}");
    let info = rrd_info(&lo_in);
    assert!(info.contains("ds[value].type = \"DDERIVE\""), "{info}");
    // Kept in bits per second, as routers say traffic.
    let entry = wait_for(Duration::from_secs(20), "the index", || {
        index_entry(&data, "snmp/127.2E0.2E0.2E1/if/lo/in")
    });
    assert_eq!(entry["ds"][0]["unit"], "bit/s", "{entry}");
    assert!(data.join("snmp/127.2E0.2E0.2E1/if/lo/out.rrd").exists());
    // v3 authPriv: the agent's uptime, in seconds.
    let uptime = data.join("snmp3/router/1.2E3.2E6.2E1.2E2.2E1.2E1.2E3.2E0.rrd");
    wait_for(Duration::from_secs(30), "the v3 value", || {
        daemon.flush();
        uptime.exists().then_some(())
    });
    let info = rrd_info(&uptime);
    assert!(!info.contains("last_ds = \"U\""), "{info}");
    let log = daemon.log();
    assert!(!log.contains("not written"), "{log}");
}

#[test]
fn a_stop_does_not_wait_for_a_hanging_round() {
    let hanging = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = hanging.local_addr().unwrap().port();
    let (accepted_tx, accepted_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((stream, _)) = hanging.accept() {
            let _ = accepted_tx.send(());
            std::thread::sleep(Duration::from_secs(40));
            drop(stream);
        }
    });
    let broker = Mosquitto::start();
    let config = format!(
        "{}[[poll]]\nname = \"slow\"\nkind = \"munin\"\ntarget = \"127.0.0.1:{port}\"\n\
         interval = \"30s\"\ntimeout = \"25s\"\n",
        external(broker.port, "1s"),
    );
    let mut daemon = Daemon::start(&config);
    accepted_rx
        .recv_timeout(Duration::from_secs(40))
        .expect("the job's round to start");
    let started = std::time::Instant::now();
    let status = daemon.stop(Duration::from_secs(15));
    assert!(status.success(), "{}", daemon.log());
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(daemon.log().contains("Stopped cleanly"));
}

/// The web UI serves before the broker answers (a broker down at boot
/// holds the daemon's readiness for 30 s): a job saved meanwhile runs at
/// once, and the save answers once it is applied, not with "not applied".
#[test]
fn a_job_saved_in_the_browser_before_the_broker_answers_runs_at_once() {
    let exporter = NodeExporter::start();
    let nobody = free_port();
    let daemon = Daemon::spawn_in_env(
        tempfile::tempdir().unwrap(),
        &external(nobody, "1s"),
        "info",
        &[],
    );
    let web = daemon.web_url();
    let token = form_token(&format!("{web}/rrd/jobs/edit"));
    let target = exporter.url().replace(':', "%3A").replace('/', "%2F");
    let (status, answer) = http_post_form(
        &format!("{web}/rrd/jobs/save"),
        &format!(
            "csrf={token}&name=pi&kind=prometheus&target={target}&interval=10s&include=node_load1"
        ),
    );
    assert_eq!(status, 303, "{}", String::from_utf8_lossy(&answer));
    // The save answers once the new config is handed to the stages; the
    // poll task starts the job when it next runs, a moment later.
    wait_for(Duration::from_secs(5), "the job started", || {
        daemon
            .log()
            .contains("Poll job started. job=\"pi\"")
            .then_some(())
    });
    let log = daemon.log();
    assert!(
        !log.contains("Connected to the MQTT broker"),
        "the broker never answered"
    );
    let stored = std::fs::read_to_string(daemon.data().join("jobs.json")).unwrap();
    assert!(stored.contains("\"name\": \"pi\""), "{stored}");
}

/// An exporter behind https with a certificate of a home CA: trusted
/// through the job's `ca_file`; without it, the system's roots refuse the
/// certificate and the job says why.
#[test]
fn an_https_exporter_is_scraped_with_its_ca() {
    let certs = tempfile::tempdir().unwrap();
    crate::broker_auth::make_certificates(certs.path());
    let exporter = NodeExporter::start_tls(certs.path());
    let broker = Mosquitto::start();
    let url = format!("https://localhost:{}/metrics", exporter.port);
    let config = format!(
        "{}[[poll]]\nname = \"tls\"\nkind = \"prometheus\"\ntarget = \"{url}\"\n\
         include = [\"node_load1\"]\ninterval = \"10s\"\nca_file = \"{}\"\n\
         [[poll]]\nname = \"untrusted\"\nkind = \"prometheus\"\ntarget = \"{url}\"\n\
         include = [\"node_load1\"]\ninterval = \"10s\"\nprefix = \"untrusted\"\n",
        external(broker.port, "1s"),
        certs.path().join("ca.pem").display(),
    );
    let daemon = Daemon::start(&config);
    let load = daemon.data().join("prometheus/localhost/node_load1.rrd");
    wait_for(Duration::from_secs(60), "the https exporter's load", || {
        daemon.flush();
        load.exists().then_some(())
    });
    wait_for(Duration::from_secs(30), "the untrusted job's error", || {
        let log = daemon.log();
        log.lines()
            .find(|l| l.contains("job=\"untrusted\"") && l.contains("certificate"))
            .map(str::to_owned)
    });
    assert!(!daemon.data().join("untrusted").exists());
}
