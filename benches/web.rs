//! Web UI benchmark, against the real daemon fed by a real mosquitto:
//!
//! - the `/rrd` pages with BENCH_SERIES (10,000) series in as many files
//!   (100 devices of 100 series): the first page, a device, a search;
//! - a day PNG of a file holding a year of one-minute data: drawn through
//!   the daemon (each request a new size, so each is drawn), served from
//!   its image cache, and drawn by bare librrd in this process with the
//!   same graph elements on the same file;
//! - the JSON export of that year at 800 points (the chart's request);
//! - a meter (a kWh counter) holding a year of one-minute readings: its
//!   consumption page per day and per month, its bars drawn by librrd
//!   (each a new size), its CSV, and the energy overview, beside a month
//!   PNG of the same file as the yardstick.
//!
//! Every request is a new HTTP/1.0 connection on loopback. Prints p50/p95
//! of BENCH_REQUESTS (30) requests each.
//!
//!     cargo bench --bench web
//!     BENCH_SERIES=2000 BENCH_REQUESTS=50 cargo bench --bench web

#[path = "../tests/e2e/support.rs"]
mod support;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use datalog_rrd::cores::{GraphLine, GraphRequest, IMAGE_FORMAT, graph_elements};
use support::{Daemon, Mosquitto, env_or, http_get, now_s, publish_lines, wait_for};

/// p50 and p95 of `n` timings of `f`, in milliseconds.
fn timed(n: usize, mut f: impl FnMut(usize)) -> (f64, f64) {
    let mut ms: Vec<f64> = (0..n)
        .map(|i| {
            let start = Instant::now();
            f(i);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95))
}

fn get_ok(url: &str) -> Vec<u8> {
    let (status, body) = http_get(url);
    assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
    body
}

/// A file with the default template's layout and a year of one-minute
/// values (`ds`, and the value at each time), written by rrdtool before
/// the daemon starts.
fn year_file(path: &Path, end_s: i64, ds: &str, value: impl Fn(i64) -> f64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let start = end_s - 366 * 86_400;
    let mut args: Vec<String> = vec![
        "create".into(),
        path.display().to_string(),
        "--step".into(),
        "60".into(),
        "--start".into(),
        (start - 60).to_string(),
        ds.into(),
    ];
    for (steps, rows) in [(1, 1440), (5, 2016), (60, 1488), (1440, 1826)] {
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
    let mut rrdtool = Command::new("rrdtool")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = rrdtool.stdin.take().unwrap();
    let times: Vec<i64> = (start..=end_s).step_by(60).collect();
    for chunk in times.chunks(1000) {
        let mut line = format!("update {}", path.display());
        for &t in chunk {
            line.push_str(&format!(" {t}:{:.4}", value(t)));
        }
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    assert!(rrdtool.wait().unwrap().success());
}

fn main() {
    let series = env_or("BENCH_SERIES", 10_000);
    let n = env_or("BENCH_REQUESTS", 30);
    let devices = series.div_ceil(100);
    let broker = Mosquitto::start();
    let dir = tempfile::tempdir().unwrap();
    let end_s = now_s() / 60 * 60 - 120;
    let year = dir.path().join("data/year/power.rrd");
    let t = Instant::now();
    let watts = |t: i64| 500.0 + 400.0 * ((t as f64) / 86_400.0 * std::f64::consts::TAU).sin();
    year_file(&year, end_s, "DS:value:GAUGE:120:U:U", watts);
    // A meter: the kWh those watts add up to, minute by minute.
    let start_s = end_s - 366 * 86_400;
    let kwh = move |t: i64| 1000.0 + (t - start_s) as f64 * 500.0 / 3_600_000.0;
    year_file(
        &dir.path().join("data/year/energy.rrd"),
        end_s,
        "DS:value:DDERIVE:21600:0:U",
        kwh,
    );
    println!("year files written in {:.1} s", t.elapsed().as_secs_f64());

    // Small files for the 10,000 series: the pages do not read them.
    // 50 dashboards of 12 views of 4 series each, the first ("bench") of
    // the first device's series (BENCH_DASHBOARD=off: none, for a daemon
    // from before dashboards).
    let with_dashboard = std::env::var("BENCH_DASHBOARD").map_or(true, |v| v != "off");
    let mut dashboard = String::new();
    for d in (0..50).filter(|_| with_dashboard) {
        let name = if d == 0 {
            "bench".to_owned()
        } else {
            format!("bench{d}")
        };
        dashboard.push_str(&format!("[[dashboard]]\nname = \"{name}\"\n"));
        for v in 0..12 {
            let lines: Vec<String> = (0..4)
                .map(|s| format!("{{ series = \"dev/d{d:03}/s{:02}\" }}", v * 4 + s))
                .collect();
            dashboard.push_str(&format!(
                "[[dashboard.view]]\ntitle = \"v{v}\"\nseries = [{}]\n",
                lines.join(", ")
            ));
        }
    }
    let config = format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"web-bench\"\n\
         [cache]\nflush_after = \"1h\"\n[limits]\nmax_series = {}\n\
         [[template]]\nname = \"small\"\ntopics = [\"dev/#\"]\nrra = [{{ cf = \"AVERAGE\", every = \"1m\", keep = \"1h\" }}]\n\
         [[rule]]\ntopics = [\"year/energy\"]\nunit = \"kWh\"\nds_type = \"DDERIVE\"\n\
         [[energy.tariff]]\nprice = 0.30\n[[energy.tariff]]\nprice = 0.20\nfrom = \"22:00\"\nto = \"06:00\"\n{dashboard}",
        broker.port,
        series + 10
    );
    let daemon = Daemon::start_in(dir, &config, "info,rumqttd=off");
    for d in 0..devices {
        let fields: Vec<String> = (0..100.min(series - d * 100))
            .map(|s| format!("\"s{s:02}\": {}.5", d + s))
            .collect();
        publish_lines(
            broker.port,
            &format!("dev/d{d:03}"),
            &[format!("{{{}}}", fields.join(", "))],
        );
    }
    publish_lines(broker.port, "year/power", &["500".into()]);
    publish_lines(
        broker.port,
        "year/energy",
        &[format!("{:.4}", kwh(now_s()))],
    );
    let t = Instant::now();
    daemon.flush();
    let web = daemon.web_url();
    let want = series + 2;
    wait_for(
        Duration::from_secs(120),
        "the index to list every file",
        || {
            let body = get_ok(&format!("{web}/rrd/index.json"));
            let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
            (index["files"].as_array().unwrap().len() == want).then_some(())
        },
    );
    println!(
        "{want} files written and indexed in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut bytes = 0;
    let (p50, p95) = timed(n, |_| bytes = get_ok(&format!("{web}/rrd")).len());
    println!(
        "GET /rrd ({want} files, {devices} devices): p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
    );
    let (p50, p95) = timed(n, |i| {
        bytes = get_ok(&format!("{web}/rrd?device=dev/d{:03}", i % devices)).len()
    });
    println!(
        "GET /rrd?device=… (100 series with values): p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
    );
    // The overview's small graphs: the 50 of one device page, drawn the
    // first time, then from the image cache.
    let thumbs: Vec<String> = (0..50)
        .map(|s| {
            format!(
                "{web}/rrd/graph/dev/d001/s{s:02}.png?range=day&width=300&height=80&legend=false"
            )
        })
        .collect();
    for pass in ["drawn", "from the image cache"] {
        let (p50, p95) = timed(thumbs.len(), |i| bytes = get_ok(&thumbs[i]).len());
        println!(
            "device page's 50 small day graphs, {pass}: p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
        );
    }
    if with_dashboard {
        let (p50, p95) = timed(n, |_| {
            bytes = get_ok(&format!("{web}/rrd/dashboard/bench")).len()
        });
        println!("GET /rrd/dashboard/bench (12 views): p50 {p50:.1} ms, p95 {p95:.1} ms");
        // Each of the 12 views once: drawn; then again: from the cache.
        let (p50, p95) = timed(12, |i| {
            bytes = get_ok(&format!("{web}/rrd/dashboard/bench/{i}.png?range=day")).len()
        });
        println!(
            "dashboard view PNG (4 series of 4 files), drawn: p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
        );
        let (p50, p95) = timed(n.max(12), |i| {
            bytes = get_ok(&format!(
                "{web}/rrd/dashboard/bench/{}.png?range=day",
                i % 12
            ))
            .len()
        });
        println!(
            "dashboard view PNG, from the image cache: p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
        );
        let (p50, p95) = timed(n, |_| {
            bytes = get_ok(&format!("{web}/rrd/dashboards")).len()
        });
        println!(
            "GET /rrd/dashboards (50 dashboards): p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
        );
    }
    let (p50, p95) = timed(n, |i| {
        bytes = get_ok(&format!("{web}/rrd?q=s{:02}", i % 100)).len()
    });
    println!(
        "GET /rrd?q=sNN (search, ≥{devices} matches): p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
    );

    let graph =
        |width: usize| format!("{web}/rrd/graph/year/power.png?range=day&width={width}&height=200");
    let (p50, p95) = timed(n, |i| bytes = get_ok(&graph(600 + i)).len());
    let daemon_png_p50 = p50;
    println!(
        "day PNG through the daemon, drawn each time: p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
    );
    let (p50, p95) = timed(n, |_| bytes = get_ok(&graph(600)).len());
    println!("day PNG through the daemon, from its image cache: p50 {p50:.1} ms, p95 {p95:.1} ms");
    let request = GraphRequest {
        rel_path: "year/power".into(),
        title: "year/power".into(),
        lines: vec![GraphLine {
            ds: "value".into(),
            legend: "year/power".into(),
            unit: None,
            style: Default::default(),
            binary: false,
            scale: None,
        }],
        start_s: end_s - 86_400,
        end_s,
        width: 600,
        height: 200,
        step_s: Some(60),
        unless_last_update: None,
        thresholds: Vec::new(),
        compact: false,
        marks: Vec::new(),
        svg: false,
        empty: false,
    };
    let (p50, p95) = timed(n, |i| {
        let request = GraphRequest {
            width: 600 + i as u32,
            ..request.clone()
        };
        let (props, elements) =
            graph_elements(&request, &|rel| daemon.data().join(format!("{rel}.rrd")));
        bytes = rrd::ops::graph::graph(IMAGE_FORMAT, &props, &elements)
            .unwrap()
            .0
            .len();
    });
    println!(
        "day PNG by bare librrd, same elements, same file: p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes"
    );
    println!(
        "day PNG, the daemon against bare librrd in this run: {:.2}x at the median (issue 25's goal: at most 1.2x)",
        daemon_png_p50 / p50
    );

    for (range, what) in [
        ("year", "year JSON at 800 points"),
        (
            "week",
            "week JSON at 800 points (5-minute archive consolidated)",
        ),
    ] {
        let mut rows = 0;
        let (p50, p95) = timed(n, |_| {
            let url = format!("{web}/rrd/data/year/power.json?range={range}&points=800");
            let body = get_ok(&url);
            bytes = body.len();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            rows = json["rows"].as_array().unwrap().len();
        });
        println!("{what}: p50 {p50:.1} ms, p95 {p95:.1} ms, {rows} rows, {bytes} bytes");
    }

    // The meter: its consumption, the way a person asks for it. Each
    // image a new size, so that each is drawn.
    for (what, url) in [
        (
            "meter: month PNG of its power (the yardstick)",
            "graph/year/energy.png?range=month",
        ),
        (
            "meter: bars per day drawn by librrd",
            "energy/year/energy.png?per=day",
        ),
        (
            "meter: bars per month drawn by librrd",
            "energy/year/energy.png?per=month",
        ),
    ] {
        let (p50, p95) = timed(n, |i| {
            bytes = get_ok(&format!("{web}/rrd/{url}&width={}", 600 + i)).len()
        });
        println!("{what}, drawn each time: p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes");
    }
    for (what, url) in [
        (
            "meter: consumption page per day (62 days)",
            "year/energy?per=day",
        ),
        (
            "meter: consumption page per month (24 months)",
            "year/energy?per=month",
        ),
        ("meter: CSV per month", "year/energy.csv?per=month"),
    ] {
        let (p50, p95) = timed(n, |_| {
            bytes = get_ok(&format!("{web}/rrd/energy/{url}")).len()
        });
        println!("{what}: p50 {p50:.1} ms, p95 {p95:.1} ms, {bytes} bytes");
    }
    let (p50, p95) = timed(n, |_| bytes = get_ok(&format!("{web}/rrd/energy")).len());
    println!("GET /rrd/energy (1 meter: today and this month): p50 {p50:.1} ms, p95 {p95:.1} ms");
    // Every whole day the same: 500 W on average, 12 kWh.
    let csv =
        String::from_utf8(get_ok(&format!("{web}/rrd/energy/year/energy.csv?per=day"))).unwrap();
    let days: Vec<f64> = csv
        .lines()
        .skip(1)
        .filter(|l| l.ends_with(",1.0000") || l.contains(",1.0000,"))
        .filter_map(|l| l.split(',').nth(5)?.parse().ok())
        .collect();
    let worst = days.iter().map(|d| (d - 12.0).abs()).fold(0.0, f64::max);
    println!(
        "meter: {} whole days, each 12 kWh within {worst:.4} kWh",
        days.len()
    );
}
