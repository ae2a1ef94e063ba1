//! The RRD thread against real librrd files, read back with `rrdtool fetch`.

use super::*;
use crate::config::Config;
use crate::model::Row;
use crate::rrd::read::{self, GraphReply, GraphRequest, XportRequest};
use std::process::Command;

const T0: i64 = 1_763_633_700;

fn spec(path: &str, ds: &[&str]) -> Arc<FileSpec> {
    let config = Config::default_config().unwrap();
    let t = &config.templates[0];
    Arc::new(FileSpec {
        rel_path: path.into(),
        template: t.name.clone(),
        step_secs: 60,
        ds: ds
            .iter()
            .map(|name| crate::model::DsSpec {
                name: (*name).into(),
                series: format!("{path}/{name}"),
                ds_type: t.ds_type,
                heartbeat_secs: 120,
                min: None,
                max: None,
                aggregate: t.aggregate,
                hold: t.hold,
                label: None,
                unit: None,
                renamed_from: None,
                about: Default::default(),
            })
            .collect(),
        rras: t.rras.clone(),
    })
}

fn batch(spec: &Arc<FileSpec>, rows: &[(i64, f64)]) -> WriteBatch {
    WriteBatch {
        file: 7,
        spec: spec.clone(),
        apply_layout: false,
        rows: rows
            .iter()
            .map(|&(t, v)| Row {
                time_s: t,
                values: smallvec::smallvec![Some(v); spec.ds.len()],
            })
            .collect(),
    }
}

/// `(time, first DS value)` for each row `rrdtool fetch` prints; NaN stays NaN.
pub(crate) fn fetch(path: &Path, start: i64, end: i64) -> Vec<(i64, f64)> {
    let out = Command::new("rrdtool")
        .args([
            "fetch",
            &path.to_string_lossy(),
            "AVERAGE",
            "-r",
            "60",
            "-s",
            &start.to_string(),
            "-e",
            &end.to_string(),
        ])
        .output()
        .expect("rrdtool runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (t, v) = l.split_once(':')?;
            let v = v.split_whitespace().next()?;
            Some((
                t.trim().parse().ok()?,
                if v.contains("nan") {
                    f64::NAN
                } else {
                    v.parse().ok()?
                },
            ))
        })
        .collect()
}

fn known(rows: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    rows.into_iter().filter(|(_, v)| !v.is_nan()).collect()
}

fn worker(dir: &Path) -> Worker {
    let (index_tx, _) = watch::channel(IndexView::default());
    Worker::new(dir.to_owned(), Arc::new(Metrics::default()), index_tx)
}

#[test]
fn creates_the_file_and_writes_rows_at_their_step() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker(dir.path());
    let s = spec("home/kitchen/temperature", &["value"]);
    let report = w.write(&batch(&s, &[(T0, 21.5), (T0 + 60, 22.0), (T0 + 600, 23.0)]));
    assert_eq!(
        report,
        WriteReport {
            file: 7,
            done_upto: Some(T0 + 600),
            last_update_s: Some(T0 + 600),
            kept_kinds: Vec::new(),
        }
    );
    let path = dir.path().join("home/kitchen/temperature.rrd");
    // The gap is longer than the heartbeat, yet the last value keeps its step.
    assert_eq!(
        known(fetch(&path, T0 - 120, T0 + 600)),
        vec![(T0, 21.5), (T0 + 60, 22.0), (T0 + 600, 23.0)]
    );
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 200_000, "{size} bytes");
    w.write_index(IndexWrite::Listing);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("index.txt")).unwrap(),
        "home/kitchen/temperature"
    );
}

#[test]
fn a_fraction_for_an_integer_ds_is_dropped_alone_not_retried_for_ever() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker(dir.path());
    let mut s = (*spec("counter", &["value"])).clone();
    s.ds[0].ds_type = crate::model::DsType::Derive;
    let s = Arc::new(s);
    let report = w.write(&batch(
        &s,
        &[(T0, 100.0), (T0 + 60, 160.5), (T0 + 120, 280.0)],
    ));
    // The batch is done (nothing left to retry); the fraction alone is gone.
    assert_eq!(report.done_upto, Some(T0 + 120));
    assert_eq!(report.last_update_s, Some(T0 + 120));
    assert_eq!(w.metrics.rows_skipped.load(Relaxed), 1);
}

#[test]
fn stale_rows_are_dropped_alone_and_the_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("a", &["value"]);
    worker(dir.path()).write(&batch(&s, &[(T0, 1.0), (T0 + 60, 2.0)]));
    // A new thread (a restart) learns the last update from the file.
    let mut w = worker(dir.path());
    let report = w.write(&batch(&s, &[(T0 + 60, 9.0), (T0 + 120, 3.0)]));
    assert_eq!(report.done_upto, Some(T0 + 120));
    assert_eq!(w.metrics.rows_skipped.load(Relaxed), 1);
    let path = dir.path().join("a.rrd");
    assert_eq!(
        known(fetch(&path, T0 - 60, T0 + 120)),
        vec![(T0, 1.0), (T0 + 60, 2.0), (T0 + 120, 3.0)]
    );
}

#[test]
fn a_file_with_another_layout_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    worker(dir.path()).write(&batch(&spec("a", &["value"]), &[(T0, 1.0)]));
    let mut w = worker(dir.path());
    let report = w.write(&batch(&spec("a", &["x", "y"]), &[(T0 + 60, 1.0)]));
    assert_eq!(report.done_upto, None);
    assert_eq!(w.metrics.rrd_update_errors.load(Relaxed), 1);
    assert_eq!(
        known(fetch(&dir.path().join("a.rrd"), T0 - 60, T0 + 60)),
        vec![(T0, 1.0)]
    );
}

#[test]
fn an_unwritable_directory_keeps_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("blocker"),
        "a file where a directory should be",
    )
    .unwrap();
    let mut w = worker(dir.path());
    let report = w.write(&batch(&spec("blocker/x", &["value"]), &[(T0, 1.0)]));
    assert_eq!(report.done_upto, None);
}

#[test]
fn multi_ds_rows_keep_unknowns() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker(dir.path());
    let s = spec("climate", &["t", "h"]);
    let b = WriteBatch {
        file: 0,
        spec: s.clone(),
        apply_layout: false,
        rows: vec![Row {
            time_s: T0,
            values: smallvec::smallvec![Some(20.0), None],
        }],
    };
    assert_eq!(w.write(&b).done_upto, Some(T0));
    let out = Command::new("rrdtool")
        .args([
            "lastupdate",
            &dir.path().join("climate.rrd").to_string_lossy(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{T0}: 2.0000000000e+01 U"))
            || text.contains(&format!("{T0}: 20 U")),
        "{text}"
    );
}

#[test]
fn a_reader_holding_the_lock_delays_rows_but_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker(dir.path());
    let s = spec("locked", &["value"]);
    assert_eq!(w.write(&batch(&s, &[(T0, 1.0)])).done_upto, Some(T0));
    let path = dir.path().join("locked.rrd");
    // Another process reads the file and holds its shared lock, as
    // `rrdtool graph` or a backup would.
    let script = "import fcntl,sys,time\nf=open(sys.argv[1],'rb')\nfcntl.lockf(f,fcntl.LOCK_SH)\nprint('locked',flush=True)\ntime.sleep(30)";
    let mut reader = Command::new("python3")
        .args(["-c", script, &path.to_string_lossy()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(reader.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let later = batch(&s, &[(T0 + 60, 2.0), (T0 + 120, 3.0)]);
    let report = w.write(&later);
    assert_eq!(report.done_upto, None, "nothing taken, and nothing dropped");
    assert_eq!(w.metrics.rows_skipped.load(Relaxed), 0);
    let _ = reader.kill();
    let _ = reader.wait();
    assert_eq!(w.write(&later).done_upto, Some(T0 + 120));
    assert_eq!(
        known(fetch(&path, T0 - 60, T0 + 120)),
        vec![(T0, 1.0), (T0 + 60, 2.0), (T0 + 120, 3.0)]
    );
}

fn graph_request(path: &str, unless_last_update: Option<i64>) -> GraphRequest {
    GraphRequest {
        rel_path: path.into(),
        title: path.into(),
        lines: vec![read::GraphLine {
            ds: "value".into(),
            legend: "Temperature".into(),
            unit: Some("°C".into()),
            style: Default::default(),
            binary: false,
            scale: None,
        }],
        start_s: T0 - 3600,
        end_s: T0 + 3600,
        width: 400,
        height: 100,
        step_s: None,
        unless_last_update,
        thresholds: Vec::new(),
        compact: false,
        marks: Vec::new(),
        svg: false,
        empty: false,
    }
}

#[test]
fn draws_and_exports_files_for_the_web() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker(dir.path());
    let s = spec("home/t", &["value"]);
    let rows: Vec<(i64, f64)> = (0..30).map(|i| (T0 + 60 * i, i as f64)).collect();
    w.write(&batch(&s, &rows));

    let Ok(GraphReply::Image {
        bytes,
        last_update,
        axis_end,
    }) = w.graph(&graph_request("home/t", None))
    else {
        panic!("no PNG drawn");
    };
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    assert_eq!(last_update, T0 + 29 * 60);
    // The axis' right end (its last row's), in the process's local time as
    // librrd reads it.
    let request = graph_request("home/t", None);
    let local = |t: i64| {
        let t = chrono::DateTime::from_timestamp(t, 0).unwrap();
        t.with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    let end = axis_end.expect("the axis' end printed");
    assert!(
        [local(request.end_s), local(request.end_s + 60)].contains(&end),
        "{end}"
    );
    assert!(matches!(
        w.graph(&graph_request("home/t", Some(last_update))),
        Ok(GraphReply::Unchanged)
    ));
    assert!(matches!(
        w.graph(&graph_request("home/missing", None)),
        Err(ReadError::NotFound(_))
    ));
    // Labels and units come from payloads and discovery: printf conversions,
    // separators and escapes in them are text.
    let mut hostile = graph_request("home/t", None);
    hostile.title = "%n%s:\\l".into();
    hostile.lines[0].legend = "%s%n:x\\g".into();
    hostile.lines[0].unit = Some("%n%s%d:\\".into());
    let drawn = w.graph(&hostile);
    assert!(
        matches!(drawn, Ok(GraphReply::Image { .. })),
        "{:?}",
        drawn.err()
    );

    let export = w
        .xport(&XportRequest {
            rel_path: "home/t".into(),
            ds: vec!["value".into()],
            scales: vec![None],
            cf: crate::model::Cf::Average,
            start_s: T0 - 60,
            end_s: T0 + 29 * 60,
            max_rows: 1000,
            step_s: None,
        })
        .unwrap();
    assert_eq!(export.columns, ["value"]);
    assert_eq!(export.step_s, 60);
    let known: Vec<(i64, f64)> = export
        .rows
        .iter()
        .filter_map(|(t, v)| Some((*t, v[0]?)))
        .collect();
    assert_eq!(known, rows);
    // Consolidated to at most max_rows rows.
    let coarse = w
        .xport(&XportRequest {
            max_rows: 10,
            ..XportRequest {
                rel_path: "home/t".into(),
                ds: vec!["value".into()],
                scales: vec![None],
                cf: crate::model::Cf::Average,
                start_s: T0 - 86_400,
                end_s: T0 + 86_400,
                max_rows: 0,
                step_s: None,
            }
        })
        .unwrap();
    // librrd aligns the range to the step it picks: one row more at most.
    assert!(
        (5..=11).contains(&coarse.rows.len()),
        "{} rows",
        coarse.rows.len()
    );
    assert!(matches!(
        w.xport(&XportRequest {
            rel_path: "home/t".into(),
            ds: vec!["nope".into()],
            scales: vec![None],
            cf: crate::model::Cf::Average,
            start_s: T0,
            end_s: T0 + 60,
            max_rows: 10,
            step_s: None,
        }),
        Err(ReadError::Librrd { .. })
    ));
}

#[test]
fn a_file_stamped_in_the_future_is_reported_once_and_its_rows_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("ahead", &["value"]);
    let now = chrono::Utc::now().timestamp() / 60 * 60;
    // Another tool (or an older version) wrote a row a year ahead.
    let future = now + 365 * 86_400;
    worker(dir.path()).write(&batch(&s, &[(now - 120, 1.0), (future, 2.0)]));
    let path = dir.path().join("ahead.rrd");
    assert_eq!(ffi::last_update(&path).unwrap(), future);

    let mut w = worker(dir.path());
    let report = w.write(&batch(&s, &[(now - 60, 3.0), (now, 4.0)]));
    // The rows are refused (librrd would refuse them), counted, and the
    // file is reported as in the future; the cache learns its last update,
    // so later samples are refused as late without reaching the thread.
    assert_eq!(report.last_update_s, Some(future));
    assert_eq!(report.done_upto, Some(now));
    assert_eq!(w.metrics.rows_skipped.load(Relaxed), 2);
    assert!(w.in_future.contains("ahead"));
    assert_eq!(
        ffi::last_update(&path).unwrap(),
        future,
        "the file is left alone"
    );

    // A file only slightly ahead (a device clock within limits.max_future)
    // is not reported.
    let near = spec("near", &["value"]);
    worker(dir.path()).write(&batch(&near, &[(now + 120, 1.0)]));
    let mut w = worker(dir.path());
    w.write(&batch(&near, &[(now + 60, 1.0)]));
    assert!(w.in_future.is_empty());
}

#[test]
fn values_reach_their_ds_whatever_order_the_file_has_them_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pair.rrd");
    // Made by hand (or by janitoo) with the DS the other way round.
    let status = Command::new("rrdtool")
        .arg("create")
        .arg(&path)
        .args(["--step", "60", "--start", &(T0 - 600).to_string()])
        .args([
            "DS:b:GAUGE:120:U:U",
            "DS:a:GAUGE:120:U:U",
            "RRA:LAST:0.5:1:100",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let s = spec("pair", &["a", "b"]);
    let mut b = batch(&s, &[(T0, 0.0)]);
    b.rows[0].values = smallvec::smallvec![Some(1.0), Some(2.0)];
    let report = worker(dir.path()).write(&b);
    assert_eq!(report.done_upto, Some(T0));
    let out = Command::new("rrdtool")
        .arg("fetch")
        .arg(&path)
        .args(["LAST", "-s", &(T0 - 60).to_string(), "-e", &T0.to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["b", "a"]);
    let row = text
        .lines()
        .find(|l| l.starts_with(&format!("{T0}:")))
        .unwrap_or_else(|| panic!("{text}"));
    let values: Vec<f64> = row
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(values, [2.0, 1.0], "b holds b's value, a holds a's");
}

#[test]
fn a_lone_value_still_shows_in_a_day_graph() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("lone", &["value"]);
    let now = chrono::Utc::now().timestamp() / 60 * 60;
    worker(dir.path()).write(&batch(&s, &[(now - 3600, 21.5)]));
    // The largest value the graph plots, as librrd prints it.
    let plotted_max = |step_s: Option<u32>| {
        let request = GraphRequest {
            start_s: now - 86_400,
            end_s: now,
            width: 300,
            height: 80,
            step_s,
            ..graph_request("lone", None)
        };
        let (props, mut elements) =
            read::graph_elements(&request, &|rel| dir.path().join(format!("{rel}.rrd")));
        elements.push(rrd::ops::graph::elements::GraphElement::Print(
            rrd::ops::graph::elements::Print {
                var_name: rrd::ops::graph::elements::VarName::new("v0max").unwrap(),
                format: "%lf".into(),
                format_mode: None,
            },
        ));
        let (_, meta) = rrd::ops::graph::graph(read::IMAGE_FORMAT, &props, &elements).unwrap();
        // After the axis' end, which graph_elements prints first.
        meta.extra_info
            .get("print[1]")
            .cloned()
            .and_then(|v| v.into_string())
            .unwrap_or_default()
    };
    // Read from the archive nearest to a row per pixel (5-minute rows), the
    // lone minute is consolidated away; from the file's own step, it shows.
    assert_eq!(plotted_max(None), "-nan");
    assert_eq!(plotted_max(Some(60)), "21.500000");
}

/// Events and thresholds are in the image librrd draws: drawn as SVG here
/// (the same elements as the PNG; cairo writes text as outlines, colours
/// as percentages), the event's rule and the threshold's are in it, in
/// their colours, and an event outside the range is not.
#[test]
fn events_and_thresholds_are_drawn_in_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("boiler", &["value"]);
    let now = chrono::Utc::now().timestamp() / 60 * 60;
    let rows: Vec<(i64, f64)> = (0..60)
        .map(|i| (now - 3600 + 60 * i, 20.0 + (i % 5) as f64))
        .collect();
    worker(dir.path()).write(&batch(&s, &rows));
    let svg = |marks: Vec<read::Mark>, thresholds: Vec<read::Threshold>| {
        let request = GraphRequest {
            start_s: now - 7200,
            end_s: now,
            step_s: Some(60),
            marks,
            thresholds,
            ..graph_request("boiler", None)
        };
        let (props, elements) =
            read::graph_elements(&request, &|rel| dir.path().join(format!("{rel}.rrd")));
        let (bytes, _) =
            rrd::ops::graph::graph(rrd::ops::graph::props::ImageFormat::Svg, &props, &elements)
                .unwrap();
        String::from_utf8(bytes).unwrap()
    };
    let stroke = |(r, g, b): (u8, u8, u8)| {
        let pct = |c: u8| {
            let p = format!("{:.6}", f64::from(c) / 255.0 * 100.0);
            let p = p.trim_end_matches('0').trim_end_matches('.').to_owned();
            format!("{p}%")
        };
        format!("stroke:rgb({},{},{})", pct(r), pct(g), pct(b))
    };
    let event = stroke((0x94, 0x67, 0xbd));
    let threshold = stroke((0xd6, 0x27, 0x28));
    let plain = svg(Vec::new(), Vec::new());
    let marked = svg(
        vec![
            read::Mark {
                time_s: now - 1800,
                text: "Boiler serviced".into(),
            },
            read::Mark {
                time_s: now - 86_400,
                text: "Out of range".into(),
            },
        ],
        vec![read::Threshold {
            value: 23.0,
            color: (0xd6, 0x27, 0x28),
            legend: "warning 23".into(),
        }],
    );
    assert_eq!(
        (
            plain.matches(&event).count(),
            marked.matches(&event).count()
        ),
        (0, 1),
        "one rule: {event}"
    );
    assert_eq!(
        (
            plain.matches(&threshold).count(),
            marked.matches(&threshold).count()
        ),
        (0, 1),
        "{threshold}"
    );
}

/// The pages show a series' last value after a restart: the index keeps
/// what each batch wrote last, and a new RRD thread reads it back from the
/// files themselves (`rrdtool lastupdate`), whatever `index.json` holds.
#[test]
fn last_values_are_kept_and_read_back_from_the_files_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker(dir.path());
    let s = spec("climate", &["t", "h"]);
    let b = WriteBatch {
        file: 0,
        spec: s.clone(),
        apply_layout: false,
        rows: vec![
            Row {
                time_s: T0,
                values: smallvec::smallvec![Some(20.0), Some(55.0)],
            },
            Row {
                time_s: T0 + 60,
                values: smallvec::smallvec![Some(21.5), None],
            },
        ],
    };
    assert_eq!(w.write(&b).done_upto, Some(T0 + 60));
    let last = |w: &Worker| -> Vec<Option<f64>> {
        let entries = w.index.entries();
        entries[0].ds.iter().map(|d| d.last_value).collect()
    };
    assert_eq!(last(&w), [Some(21.5), Some(55.0)], "each DS's newest value");
    // A restart with an index that never held them (written before they
    // were known, or by an older version).
    w.write_index(IndexWrite::Listing);
    drop(w);
    let text = std::fs::read_to_string(dir.path().join("index.json")).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    for ds in doc["files"][0]["ds"].as_array_mut().unwrap() {
        assert!(ds.as_object_mut().unwrap().remove("last_value").is_some());
    }
    std::fs::write(dir.path().join("index.json"), doc.to_string()).unwrap();
    let mut again = worker(dir.path());
    assert_eq!(last(&again), [None, None], "not in the index");
    again.read_last_values();
    // librrd keeps the last update's values: h was unknown then.
    assert_eq!(last(&again), [Some(21.5), None]);
}

/// The journal forgets records only once their rows are durable: a sync
/// fsyncs exactly the files written since the last one (and the
/// directories new files were created in), not the whole file system.
#[test]
fn a_sync_covers_exactly_the_files_written_since_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = worker(dir.path());
    let (a, b) = (spec("home/a", &["value"]), spec("garden/b", &["value"]));
    w.write(&batch(&a, &[(T0, 1.0)]));
    w.write(&batch(&b, &[(T0, 2.0)]));
    assert!(
        w.unsynced.contains(&dir.path().join("garden")),
        "a new directory"
    );
    assert!(
        w.unsynced.contains(dir.path()),
        "the data directory's new entry"
    );
    assert_eq!(w.sync_written().unwrap(), 2);
    assert!(w.unsynced.is_empty());
    assert_eq!(w.sync_written().unwrap(), 0, "nothing written since");
    w.write(&batch(&a, &[(T0 + 60, 3.0)]));
    assert_eq!(w.sync_written().unwrap(), 1);
    assert!(w.unsynced.is_empty(), "no new directory for an update");
}

mod meters;
