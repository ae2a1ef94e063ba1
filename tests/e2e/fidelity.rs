//! Fidelity against rrdtool itself: a recorded stream (`fidelity/stream.rs`:
//! every DS type, regular, jittered, gaps, bursts, duplicates, late samples)
//! goes through mosquitto and the daemon; the same samples, combined by the
//! documented rule, go straight through `rrdtool update` into a file made by
//! `rrdtool create` with the same layout. The two files must be the same:
//! `rrdtool dump` identical, every archive and CF fetched value for value,
//! `rrdtool info` equal but for the file name and each archive's `cur_row`
//! (where its ring starts: librrd picks it at random when it creates a
//! file, to spread the writes of many files; it changes no value).

mod stream;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use self::stream::{STEP, Series, reference, stream};
use crate::support::*;

/// Each archive of the layout as `(cf, steps per row, rows)`, in the order
/// the template's `rra` entries list them.
const LAYOUT: [(&str, u32, u32); 10] = [
    ("AVERAGE", 1, 600),
    ("MIN", 1, 600),
    ("MAX", 1, 600),
    ("LAST", 1, 600),
    ("AVERAGE", 5, 288),
    ("MIN", 5, 288),
    ("MAX", 5, 288),
    ("LAST", 5, 288),
    ("AVERAGE", 60, 168),
    ("MAX", 60, 168),
];

fn template(s: &Series) -> String {
    format!(
        "\n[[template]]\nname = \"{n}\"\ntopics = [\"fidelity/{n}/#\"]\nstep = \"1m\"\n\
         heartbeat = \"2m\"\nds_type = \"{t}\"\naggregate = \"{a}\"\nhold = \"{h}s\"\nrra = [\n\
         {{ cf = [\"AVERAGE\", \"MIN\", \"MAX\", \"LAST\"], xff = 0.5, every = \"1m\", keep = \"10h\" }},\n\
         {{ cf = [\"AVERAGE\", \"MIN\", \"MAX\", \"LAST\"], xff = 0.5, every = \"5m\", keep = \"1d\" }},\n\
         {{ cf = [\"AVERAGE\", \"MAX\"], xff = 0.5, every = \"1h\", keep = \"7d\" }},\n]\n",
        n = s.name,
        t = s.ds_type,
        a = s.aggregate,
        h = s.hold_s,
    )
}

/// Samples the daemon has accepted or refused, from /metrics.
fn samples_seen(web: &str) -> (u64, u64, u64) {
    let (_, body) = http_get(&format!("{web}/metrics"));
    let text = String::from_utf8(body).unwrap();
    let mut accepted = 0;
    let mut refused = 0;
    let mut late = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        if name == "datalog_rrd_samples_accepted_total" {
            accepted = value;
        } else if name.starts_with("datalog_rrd_rejected_total{") {
            refused += value;
            if name.contains("\"late\"") {
                late = value;
            }
        }
    }
    (accepted, refused, late)
}

fn rrdtool(args: &[&str]) -> String {
    let out = Command::new("rrdtool").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "rrdtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `rrdtool info` as a map, without what may differ (see the module doc).
fn info(path: &Path) -> BTreeMap<String, String> {
    rrdtool(&["info", &path.to_string_lossy()])
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .filter(|(k, _)| *k != "filename" && !k.ends_with(".cur_row"))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Every archive fetched over its whole span: `(cf, resolution, output)`.
fn fetch_archives(path: &Path) -> Vec<(String, i64, String)> {
    let p = path.to_string_lossy();
    let last: i64 = rrdtool(&["last", &p]).trim().parse().unwrap();
    LAYOUT
        .iter()
        .map(|&(cf, steps, rows)| {
            let res = i64::from(steps) * STEP;
            let end = last / res * res;
            let start = end - i64::from(rows - 1) * res;
            let out = rrdtool(&[
                "fetch",
                &p,
                cf,
                "-r",
                &res.to_string(),
                "-s",
                &start.to_string(),
                "-e",
                &end.to_string(),
            ]);
            (cf.to_owned(), res, out)
        })
        .collect()
}

/// Equal texts, or a failure naming the first line that differs.
fn assert_same_text(ours: &str, theirs: &str, what: &str) {
    if ours == theirs {
        return;
    }
    let at = ours
        .lines()
        .zip(theirs.lines())
        .position(|(a, b)| a != b)
        .unwrap_or(ours.lines().count().min(theirs.lines().count()));
    let line = |t: &str| t.lines().nth(at).unwrap_or("(end)").to_owned();
    panic!(
        "{what} differs at line {}:\n  daemon:  {}\n  rrdtool: {}",
        at + 1,
        line(ours),
        line(theirs)
    );
}

#[test]
fn the_daemon_writes_what_rrdtool_update_writes() {
    let broker = Mosquitto::start();
    let t0 = (now_s() / 3600 - 4) * 3600;
    let series = stream(t0);
    let mut config = external(broker.port, "1h");
    for s in &series {
        config.push_str(&template(s));
    }
    let daemon = Daemon::start(&config);
    let web = daemon.web_url();

    // The stream, phase by phase, each followed by a flush.
    let mut published = 0;
    for phase in 0..2 {
        for s in &series {
            let lines: Vec<String> = s.phases[phase]
                .iter()
                .map(|x| format!(r#"{{"ts": {}, "v": {}}}"#, x.time_ms, x.value))
                .collect();
            published += lines.len() as u64;
            publish_lines(broker.port, &format!("fidelity/{}", s.name), &lines);
        }
        wait_for(Duration::from_secs(20), "every sample to be taken", || {
            let (accepted, refused, _) = samples_seen(&web);
            (accepted + refused == published).then_some(())
        });
        daemon.flush();
    }

    // The same samples straight through rrdtool.
    let refs = tempfile::tempdir().unwrap();
    let mut late_expected = 0;
    for s in &series {
        let (phases, late) = reference(s);
        late_expected += late;
        let path = refs.path().join(format!("{}.rrd", s.name));
        let p = path.to_string_lossy().into_owned();
        let first: i64 = phases[0][0].split(':').next().unwrap().parse().unwrap();
        let mut create = vec![
            "create".to_owned(),
            p.clone(),
            "--start".into(),
            (first - STEP).to_string(),
            "--step".into(),
            STEP.to_string(),
            format!("DS:value:{}:120:U:U", s.ds_type),
        ];
        create.extend(
            LAYOUT
                .iter()
                .map(|(cf, steps, rows)| format!("RRA:{cf}:0.5:{steps}:{rows}")),
        );
        rrdtool(&create.iter().map(String::as_str).collect::<Vec<_>>());
        for updates in phases.iter().filter(|u| !u.is_empty()) {
            let mut args = vec!["update", p.as_str()];
            args.extend(updates.iter().map(String::as_str));
            rrdtool(&args);
        }

        let ours = daemon.data().join(format!("fidelity/{}/v.rrd", s.name));
        assert_same_text(
            &rrdtool(&["dump", &ours.to_string_lossy()]),
            &rrdtool(&["dump", &p]),
            &format!("{}: rrdtool dump", s.name),
        );
        assert_eq!(info(&ours), info(&path), "{}: rrdtool info differs", s.name);
        let (ours, theirs) = (fetch_archives(&ours), fetch_archives(&path));
        for ((cf, res, a), (_, _, b)) in ours.iter().zip(&theirs) {
            assert_same_text(a, b, &format!("{}: fetch {cf} at {res}s", s.name));
        }
        // Not a comparison of two empty files.
        let known = ours[0]
            .2
            .lines()
            .filter(|l| l.contains(": ") && !l.contains("nan"))
            .count();
        assert!(known > 100, "{}: only {known} known rows", s.name);
    }

    // The stated rules were exercised: late samples refused, hold bridged
    // its gap, a `U` preceded each value after a gap.
    let (_, _, late) = samples_seen(&web);
    assert_eq!(late as usize, late_expected);
    assert!(late_expected >= series.len() * 2);
    let hold = reference(series.iter().find(|s| s.hold_s > 0).unwrap()).0;
    let gauge = reference(&series[0]).0;
    assert!(hold[0].len() > gauge[0].len(), "hold fills steps");
    assert!(gauge[0].iter().any(|u| u.ends_with(":U")), "U before a gap");
}
