//! Power cuts, simulated: the daemon's data directory on `powercutfs`
//! (`tests/powercut/powercutfs.py`, a FUSE layer that keeps every write
//! not yet fsynced in its own memory, and every new name not yet covered
//! by an fsync of its directory in an undo log), under a QoS 1 load through
//! a persistent mosquitto. A cut kills the daemon and the file system at
//! once (SIGKILL); the file system comes back with only what was durable,
//! the daemon starts again on it. Needs root, `/dev/fuse` and
//! `python3-fusepy` (`scripts/install-deps --test`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::recovery::{publish_steadily, rows_once_complete};
use crate::support::*;

/// `powercutfs` over `backing`, mounted at `mount`.
struct PowerCutFs {
    child: Option<Child>,
    backing: PathBuf,
    mount: PathBuf,
    log: PathBuf,
}

impl PowerCutFs {
    fn start(root: &Path) -> PowerCutFs {
        let mut fs = PowerCutFs {
            child: None,
            backing: root.join("backing"),
            mount: root.join("mnt"),
            log: root.join("powercutfs.log"),
        };
        std::fs::create_dir_all(&fs.backing).unwrap();
        std::fs::create_dir_all(&fs.mount).unwrap();
        fs.mount();
        fs
    }

    fn mount(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/powercut/powercutfs.py");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&self.backing)
            .arg(&self.mount)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("python3 with fusepy (apt-get install python3-fusepy)");
        self.child = Some(child);
        let mount = self.mount.to_string_lossy().into_owned();
        wait_for(Duration::from_secs(20), "powercutfs mounted", || {
            let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
            mounts
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(mount.as_str()))
                .then_some(())
        });
    }

    /// The power goes: what was not durable is gone. Then it comes back.
    fn cut_and_restore(&mut self) {
        self.kill();
        self.mount();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

impl Drop for PowerCutFs {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What a drill saw: the file's rows and what was sent, when each chunk
/// of the load was handed to the broker, when each cut came, the log.
struct Drill {
    rows: Vec<(i64, f64)>,
    expected: Vec<(i64, f64)>,
    /// Message index where each chunk starts, and when it was sent.
    chunks: Vec<(usize, Instant)>,
    cuts: Vec<Instant>,
    /// When each daemon was connected: the first, then one after each cut.
    connected: Vec<Instant>,
    log: String,
    /// Files under the data directory, each with `rrdtool info`'s verdict.
    unreadable: Vec<String>,
    fs_log: String,
}

/// How the load goes between cuts.
struct Pace {
    /// Messages a chunk.
    chunk: usize,
    /// Before the chunk that a cut follows, a pause this long: what was
    /// taken before it is older than `sync_every` when the power goes.
    settle: Duration,
    /// `cache.snapshot_every`: a snapshot also makes what the cache holds
    /// durable, so a drill of the journal's `sync_every` alone makes them
    /// rare.
    snapshot_every: &'static str,
}

fn drill(client_id: &str, journal: &str, cuts: usize, pace: Pace) -> Drill {
    let broker = Mosquitto::start_persistent(free_port(), tempfile::tempdir().unwrap());
    let root = tempfile::tempdir().unwrap();
    let mut fs = PowerCutFs::start(root.path());
    let data = fs.mount.join("data");
    let config = format!(
        "data_dir = \"{}\"\n[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"{client_id}\"\n\
         [cache]\nflush_after = \"1s\"\nsnapshot_every = \"{}\"\n[journal]\n{journal}\n",
        data.display(),
        broker.port,
        pace.snapshot_every,
    );
    let n: i64 = 1200; // 20 h of 1-minute steps: within the 1-day archive
    let t0 = (now_s() / 60 - n - 10) * 60;
    let lines: Vec<String> = (0..n)
        .map(|i| format!("{{\"ts\": {}, \"value\": {i}}}\n", t0 + 60 * i))
        .collect();
    let log = "info,datalog_rrd=debug,rumqttd=error";
    let mut daemon = Some(Daemon::start_with_log(&config, log));
    let mut connected = vec![Instant::now()];
    // A dashboard made in the browser: `dashboards.json` must load after
    // every cut.
    save_dashboard(daemon.as_ref().unwrap());
    let mut chunks = Vec::new();
    let mut cut_times = Vec::new();
    let mut torn = Vec::new();
    // Spread over the load, at most one every other chunk after the first.
    let chunk_count = lines.len().div_ceil(pace.chunk);
    let cut_after: Vec<usize> = (1..chunk_count)
        .step_by(((chunk_count - 1) / cuts).max(1))
        .take(cuts)
        .collect();
    publish_steadily(broker.port, "cut/a", &lines, pace.chunk, |chunk| {
        chunks.push((chunk * pace.chunk, Instant::now()));
        if cut_after.contains(&(chunk + 1)) {
            std::thread::sleep(pace.settle);
        }
        // A series stamped now (its file's last update must never be
        // after a cut), and an event (`events.json`), every few chunks.
        if chunk % 3 == 0 {
            broker.publish("cut/now", &chunk.to_string());
            broker.publish(
                "datalog-rrd/events",
                &format!(r#"{{"text": "chunk {chunk}"}}"#),
            );
        }
        if cut_after.contains(&chunk) {
            // At scattered moments (0.1 to 0.6 s into the chunk): the
            // daemon mid-flush, mid-snapshot, mid-replay or idle.
            std::thread::sleep(Duration::from_millis(100 + (chunk as u64 * 137) % 500));
            let dir = daemon.take().unwrap().kill9();
            cut_times.push(Instant::now());
            fs.cut_and_restore();
            // What the power left: every file opens, none updated later
            // than the cut.
            for problem in rrd_files_after(&data, now_s()) {
                torn.push(problem);
            }
            daemon = Some(Daemon::start_in(dir, &config, log));
            connected.push(Instant::now());
        }
    });
    assert_eq!(cut_times.len(), cuts, "cuts made");
    let daemon = daemon.unwrap();
    // What the browser and the events topic saved survived the cuts, or
    // was set aside (which the callers refuse).
    let (status, body) = http_get(&format!("{}/rrd/dashboard/drill", daemon.web_url()));
    assert_eq!(status, 200, "the dashboard made in the browser");
    let (_, events) = http_get(&format!("{}/rrd/events.json?range=day", daemon.web_url()));
    assert!(
        String::from_utf8_lossy(&events).contains("chunk 0"),
        "the first event"
    );
    drop(body);
    let path = data.join("cut/a/value.rrd");
    let rows = rows_once_complete(&daemon, &path, t0, n);
    let expected: Vec<(i64, f64)> = (0..n).map(|i| (t0 + 60 * i, i as f64)).collect();
    let mut unreadable = torn;
    unreadable.extend(rrd_files_after(&data, now_s()));
    Drill {
        rows,
        expected,
        chunks,
        cuts: cut_times,
        connected,
        log: daemon.log(),
        unreadable,
        fs_log: std::fs::read_to_string(&fs.log).unwrap_or_default(),
    }
}

/// Saves the dashboard `drill` through the editor's form, as a browser
/// would.
fn save_dashboard(daemon: &Daemon) {
    let web = daemon.web_url();
    let token = form_token(&format!("{web}/rrd/dashboards/edit"));
    let (status, answer) = http_post_form(
        &format!("{web}/rrd/dashboards/save"),
        &format!(
            "csrf={token}&name=drill&title=Drill&range=day&v0.title=Value&v0.order=0\
             &v0.series=cut%2Fa&v0.warning=&v0.critical=&v0.add="
        ),
    );
    assert_eq!(status, 303, "{}", String::from_utf8_lossy(&answer));
}

/// Each RRD file under `data` that `rrdtool info` cannot open, or whose
/// last update is later than the step `cut_s` falls in, with why. (A row
/// is stamped with its step's end, as `rrdtool update` would file it: a
/// sample taken at 12:00:20 makes a row of 12:01:00, all 1-minute steps
/// here.)
fn rrd_files_after(data: &Path, cut_s: i64) -> Vec<String> {
    // `cut_s` is whole seconds: the cut came in the second after it,
    // whose samples may belong to the next step (steps are (end − 60, end]).
    let step_end = cut_s.div_euclid(60) * 60 + 60;
    let mut problems = Vec::new();
    for file in files_under(data).iter().filter(|f| f.ends_with(".rrd")) {
        let out = Command::new("rrdtool")
            .arg("info")
            .arg(data.join(file))
            .output()
            .unwrap();
        let info = String::from_utf8_lossy(&out.stdout);
        let last = info
            .lines()
            .find_map(|l| l.strip_prefix("last_update = "))
            .and_then(|v| v.trim().parse::<i64>().ok());
        match last {
            _ if !out.status.success() => {
                problems.push(format!("{file}: {}", String::from_utf8_lossy(&out.stderr)))
            }
            Some(t) if t <= step_end => {}
            other => problems.push(format!(
                "{file}: last update {other:?} after the cut's step, which ends at {step_end}"
            )),
        }
    }
    problems
}

/// With `sync = "always"`, a message is acknowledged to the broker only
/// once its journal record is fsynced: 20 power cuts under load lose none,
/// and write none twice. Every file still opens, every start succeeds.
#[test]
fn power_cuts_lose_nothing_acknowledged_with_sync_always() {
    let pace = Pace {
        chunk: 40,
        settle: Duration::ZERO,
        snapshot_every: "1s",
    };
    let d = drill("cut-always", "sync = \"always\"", 20, pace);
    let missing: Vec<i64> = d
        .expected
        .iter()
        .filter(|e| !d.rows.contains(e))
        .map(|e| e.1 as i64)
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} missing after 20 cuts, first {:?}\n{}",
        missing.len(),
        d.expected.len(),
        &missing[..missing.len().min(10)],
        d.fs_log
    );
    assert_eq!(d.rows, d.expected, "every value exactly once, at its step");
    assert!(d.unreadable.is_empty(), "{:?}", d.unreadable);
    assert!(
        d.log.contains("Journal read for replay"),
        "no replay happened"
    );
    // The journal, the snapshot and the index load after every cut: all
    // are written atomically, so none is ever set aside.
    for sign in ["set aside", "unreadable", "not readable"] {
        assert!(!d.log.contains(sign), "{sign}:\n{}", d.log);
    }
    let undone: usize = d
        .fs_log
        .lines()
        .filter_map(|l| l.strip_prefix("powercutfs: "))
        .filter_map(|l| l.split_whitespace().next()?.parse::<usize>().ok())
        .sum();
    eprintln!(
        "sync=always: 20 cuts, 0 of {} lost; {undone} name operations undone by the cuts",
        d.expected.len()
    );
}

/// With `sync = "interval"` the journal is fsynced every `sync_every`:
/// a cut may take what was acknowledged since, and nothing older.
#[test]
fn power_cuts_lose_at_most_sync_every_with_sync_interval() {
    let sync_every = Duration::from_secs(1);
    // Each cut comes a moment after a chunk sent 2.5 s after the one
    // before it: that one's acknowledgements are synced by then, and must
    // all survive; only the last chunk's may be lost.
    let pace = Pace {
        chunk: 20,
        settle: Duration::from_millis(2500),
        snapshot_every: "1h",
    };
    let d = drill(
        "cut-interval",
        "sync = \"interval\"\nsync_every = \"1s\"",
        20,
        pace,
    );
    let lost: Vec<usize> = d
        .expected
        .iter()
        .enumerate()
        .filter(|(_, e)| !d.rows.contains(e))
        .map(|(i, _)| i)
        .collect();
    // When each lost message could first be acknowledged: once it was
    // handed to the broker (its chunk's time) and a daemon was connected
    // to take it (a message sent before a cut comes again after it).
    let sent_at = |i: usize| {
        d.chunks
            .iter()
            .rev()
            .find(|(first, _)| *first <= i)
            .map(|(_, at)| *at)
            .unwrap()
    };
    // Delivery, and the daemon's batch of acknowledgements, take a moment.
    let slack = Duration::from_millis(700);
    let mut per_cut = vec![0usize; d.cuts.len()];
    for &i in &lost {
        let sent = sent_at(i);
        // Lost to one of the cuts after it was sent (a chunk's time is
        // noted just after it was written: the slack before), the one
        // that came while its acknowledgement was not yet synced: some
        // cut must have come within `sync_every` of when a daemon could
        // first take it.
        let gap = |c: usize| {
            let takeable = d.connected[..=c]
                .iter()
                .rev()
                .find(|at| **at <= d.cuts[c])
                .map_or(sent, |up| sent.max(*up));
            d.cuts[c].saturating_duration_since(takeable)
        };
        let candidates: Vec<usize> = (0..d.cuts.len())
            .filter(|&c| d.cuts[c] + slack >= sent)
            .collect();
        let Some(&c) = candidates.iter().find(|&&c| gap(c) <= sync_every + slack) else {
            panic!(
                "message {i} lost, takeable longer than sync_every ({sync_every:?}) before every cut after it: {:?}",
                candidates.iter().map(|&c| gap(c)).collect::<Vec<_>>()
            );
        };
        per_cut[c] += 1;
    }
    assert!(d.unreadable.is_empty(), "{:?}", d.unreadable);
    eprintln!(
        "sync=interval (1s): 20 cuts, {} of {} lost, per cut {per_cut:?}",
        lost.len(),
        d.expected.len()
    );
}

/// A disk may tear a file a cut caught mid-write (powercutfs does not: a
/// synced write is whole there). A torn RRD file is reported with its
/// path, its rows kept and counted, never written over or silently
/// skipped; the other files go on.
#[test]
fn a_torn_rrd_file_is_reported_with_its_path() {
    let broker = Mosquitto::start();
    let config = external(broker.port, "1s");
    let daemon = Daemon::start(&config);
    broker.publish("torn/a", "1.5");
    broker.publish("whole/b", "2.5");
    let (a, b) = (
        daemon.data().join("torn/a.rrd"),
        daemon.data().join("whole/b.rrd"),
    );
    wait_for(Duration::from_secs(20), "the files", || {
        daemon.flush();
        (a.exists() && b.exists()).then_some(())
    });
    // Torn while it was stopped: its second half never reached the disk.
    let bytes = std::fs::read(&a).unwrap();
    let daemon = daemon.restart_after(&config, "info", |_| {
        std::fs::write(&a, &bytes[..bytes.len() / 2]).unwrap();
    });
    // Stamped in the next minute's step: not late for the files' last
    // update (the first values' step).
    let next = (now_s() / 60 + 1) * 60 + 1;
    broker.publish("torn", &format!(r#"{{"a": 3.5, "ts": {next}}}"#));
    broker.publish("whole", &format!(r#"{{"b": 4.5, "ts": {next}}}"#));
    let path = a.display().to_string();
    let line = wait_for(Duration::from_secs(30), "the torn file reported", || {
        daemon.flush();
        daemon
            .log()
            .lines()
            .find(|l| l.contains(&path) && l.contains("ERROR"))
            .map(str::to_owned)
    });
    assert!(line.contains("not written"), "{line}");
    assert_eq!(
        std::fs::read(&a).unwrap().len(),
        bytes.len() / 2,
        "left as it is"
    );
    wait_for(Duration::from_secs(30), "the whole file written", || {
        daemon.flush();
        fetch(&b, now_s() - 300, now_s() + 120)
            .iter()
            .any(|(_, v)| *v == 4.5)
            .then_some(())
    });
    assert!(metric(&daemon, "rrd_update_errors_total") >= 1);
}

/// The tool itself, before anything is concluded from it: what was
/// fsynced (a file's data, a directory's names) survives a cut; what was
/// not, including what librrd wrote through its `mmap`, is gone.
#[test]
fn powercutfs_keeps_what_was_synced_and_drops_the_rest() {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let root = tempfile::tempdir().unwrap();
    let mut fs = PowerCutFs::start(root.path());
    let m = fs.mount.clone();
    let sync_dir = |d: &Path| std::fs::File::open(d).unwrap().sync_all().unwrap();
    // Synced data and name: kept. Then overwritten without a sync: lost.
    let mut kept = std::fs::File::create(m.join("kept")).unwrap();
    kept.write_all(b"durable").unwrap();
    kept.sync_all().unwrap();
    sync_dir(&m);
    kept.write_all_at(b"LOST!!!", 0).unwrap();
    drop(kept);
    // librrd: created and synced, then updated through its mmap, unsynced.
    let rrd = m.join("t.rrd");
    let rrdtool = |args: &[&str]| {
        let out = Command::new("rrdtool").args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let r = rrd.to_str().unwrap();
    rrdtool(&[
        "create",
        r,
        "--start",
        "1000000000",
        "--step",
        "60",
        "DS:v:GAUGE:120:U:U",
        "RRA:LAST:0.5:1:10",
    ]);
    std::fs::File::open(&rrd).unwrap().sync_all().unwrap();
    sync_dir(&m);
    rrdtool(&["update", r, "1000000060:42"]);
    assert!(rrdtool(&["lastupdate", r]).contains("1000000060: 42"));
    // In a directory of their own, fsynced only where said.
    let d = m.join("names");
    std::fs::create_dir(&d).unwrap();
    sync_dir(&m);
    // An atomic save (temp, fsync, rename, fsync the directory): the new
    // content. Then one without the directory's fsync: the old content.
    for (name, sync) in [("saved", true), ("unsaved", false)] {
        std::fs::write(d.join(name), b"old").unwrap();
        std::fs::File::open(d.join(name))
            .unwrap()
            .sync_all()
            .unwrap();
        sync_dir(&d);
        let tmp = d.join(format!(".{name}.tmp"));
        let mut f = std::fs::File::create(&tmp).unwrap();
        f.write_all(b"new").unwrap();
        f.sync_all().unwrap();
        std::fs::rename(&tmp, d.join(name)).unwrap();
        if sync {
            sync_dir(&d);
        }
    }
    // Data synced, name never: gone.
    let mut nameless = std::fs::File::create(d.join("nameless")).unwrap();
    nameless.write_all(b"x").unwrap();
    nameless.sync_all().unwrap();

    fs.cut_and_restore();
    assert_eq!(std::fs::read(m.join("kept")).unwrap(), b"durable");
    assert!(!d.join("nameless").exists());
    assert_eq!(std::fs::read(d.join("saved")).unwrap(), b"new");
    assert_eq!(std::fs::read(d.join("unsaved")).unwrap(), b"old");
    assert!(!d.join(".unsaved.tmp").exists());
    let last = rrdtool(&["lastupdate", r]);
    assert!(
        !last.contains("1000000060"),
        "the mmap'd update survived the cut: {last}"
    );
}
