//! The pages as a home user reads them (issue 21): a motion sensor's short
//! detection kept and said in words, the first minutes listed live, every
//! time in the daemon's zone (here Europe/Berlin, an hour or two from UTC)
//! alike in the PNG's axis, the caption, the form and the chart, a
//! Tasmota plug's charts one quantity each, and every page fitting a phone.
//! Screenshots at desktop and phone widths go to
//! `$DATALOG_RRD_SCREENSHOT_DIR` when it is set.

use std::process::Command;
use std::time::Duration;

use fantoccini::Locator;

use crate::browser::{ChromeDriver, browser, console_errors, wait_js};
use crate::support::*;

const ZONE: &str = "Europe/Berlin";

/// `t_s` as Europe/Berlin reads it, by `date` (not by the daemon's code).
fn berlin(t_s: i64, format: &str) -> String {
    let out = Command::new("date")
        .env("TZ", ZONE)
        .arg("-d")
        .arg(format!("@{t_s}"))
        .arg(format!("+{format}"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A daemon on `broker`, its process in Berlin's zone (the browser and
/// the test stay in UTC).
fn in_berlin(broker: &Mosquitto) -> Daemon {
    Daemon::start_in_env(
        tempfile::tempdir().unwrap(),
        &config(broker.port),
        "info,datalog_rrd=debug,rumqttd=error",
        &[("TZ", ZONE)],
    )
}

fn config(port: u16) -> String {
    format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"pages-{port}\"\n\
         [cache]\nflush_after = \"1h\"\n"
    )
}

/// Publishes the motion sensor's messages at given times of the minute
/// before last, with their own times (zigbee2mqtt's `last_seen`).
fn motion(broker: &Mosquitto, t0: i64) {
    for (at, on) in [(5, false), (20, true), (40, false)] {
        broker.publish(
            "zigbee2mqtt/hall",
            &format!(
                r#"{{"occupancy": {on}, "battery": 97, "last_seen": {}}}"#,
                (t0 + at) * 1000
            ),
        );
    }
}

/// A detection of 20 s inside a 60 s step is on, in the export and the
/// graph; the page says Clear and Detected, not 0.33; and a series is on
/// `/rrd` with its live value seconds after its first message, long
/// before its first write.
#[test]
fn a_short_detection_is_on_and_said_in_words_from_the_first_minutes() {
    let broker = Mosquitto::start();
    let daemon = in_berlin(&broker);
    let web = daemon.web_url();
    let t0 = (now_s() / 60 - 2) * 60;
    let sent = std::time::Instant::now();
    motion(&broker, t0);
    let page = wait_for(Duration::from_secs(10), "the live series on /rrd", || {
        let (_, body) = http_get(&format!("{web}/rrd?device=zigbee2mqtt/hall"));
        let page = String::from_utf8_lossy(&body).into_owned();
        page.contains("first write in").then_some(page)
    });
    assert!(sent.elapsed() < Duration::from_secs(10));
    assert!(page.contains(">Occupancy</a>"), "{page}");
    assert!(page.contains(">Clear<"), "the last value, in words: {page}");
    assert!(
        page.contains(">97</span> <span class=\"unit\">%<"),
        "{page}"
    );
    let (_, body) = http_get(&format!("{web}/rrd"));
    assert!(String::from_utf8_lossy(&body).contains("new series"));

    // The export and the graph: the step holding the detection is on.
    let (status, body) = http_get(&format!(
        "{web}/rrd/data/zigbee2mqtt/hall/occupancy.json?start={}&end={}",
        t0 - 60,
        t0 + 120
    ));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let step = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[0].as_f64() == Some((t0 + 60) as f64))
        .unwrap_or_else(|| panic!("no row for the step: {json}"));
    assert_eq!(step[1].as_f64(), Some(1.0), "{json}");
    assert_eq!(json["columns"][0]["states"][0], "Detected");
    let rows = fetch(
        &daemon.data().join("zigbee2mqtt/hall/occupancy.rrd"),
        t0 - 60,
        t0 + 120,
    );
    assert!(
        rows.contains(&(t0 + 60, 1.0)),
        "rrdtool reads it on: {rows:?}"
    );

    // A new detection: the page says so.
    broker.publish("zigbee2mqtt/hall", r#"{"occupancy": true}"#);
    wait_for(Duration::from_secs(10), "Detected on the file page", || {
        let (_, body) = http_get(&format!("{web}/rrd/file/zigbee2mqtt/hall/occupancy"));
        String::from_utf8_lossy(&body)
            .contains(">Detected<")
            .then_some(())
    });
}

/// Under `TZ=Europe/Berlin`, the PNG's axis (librrd's own clock, printed
/// beside the image), the caption and form of a range, and the chart all
/// read the same local times; the CSV has them too.
#[test]
fn every_time_on_a_page_is_local_alike() {
    let broker = Mosquitto::start();
    let daemon = in_berlin(&broker);
    let web = daemon.web_url();
    let t0 = (now_s() / 60 - 30) * 60;
    let lines: Vec<String> = (0..30)
        .map(|i| {
            format!(
                r#"{{"ts": {}, "temperature": {}}}"#,
                t0 + 60 * i,
                20 + i % 3
            )
        })
        .collect();
    publish_lines(broker.port, "home/den", &lines);
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    let (start, end) = (t0, t0 + 15 * 60);
    let (status, headers) = http_head_graph(&format!(
        "{web}/rrd/graph/home/den/temperature.png?start={start}&end={end}"
    ));
    assert_eq!(status, 200);
    let axis_end = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("X-Axis-End: ")
                .or(l.strip_prefix("x-axis-end: "))
        })
        .unwrap_or_else(|| panic!("no axis end: {headers}"))
        .trim()
        .to_owned();
    // The last row's time: the range's end, or the step librrd adds.
    let ends = [
        berlin(end, "%Y-%m-%d %H:%M"),
        berlin(end + 60, "%Y-%m-%d %H:%M"),
    ];
    assert!(
        ends.contains(&axis_end),
        "librrd's axis: {axis_end} {ends:?}"
    );
    let (_, body) = http_get(&format!(
        "{web}/rrd/file/home/den/temperature?start={start}&end={end}"
    ));
    let page = String::from_utf8_lossy(&body);
    let same_day = berlin(start, "%F") == berlin(end, "%F");
    let caption = format!(
        "From {} to {}",
        berlin(start, "%Y-%m-%d %H:%M"),
        berlin(end, if same_day { "%H:%M" } else { "%Y-%m-%d %H:%M" })
    );
    assert!(page.contains(&caption), "{caption} in {page}");
    assert!(
        page.contains(&format!("value=\"{}\"", berlin(start, "%Y-%m-%dT%H:%M"))),
        "the form's start: {page}"
    );
    assert!(page.contains("Times are in Europe/Berlin"));
    // A local time typed in the form names the same instant.
    let typed = berlin(start, "%Y-%m-%dT%H:%M");
    let (status, _) = http_get(&format!(
        "{web}/rrd/graph/home/den/temperature.png?start={typed}&end={end}"
    ));
    assert_eq!(status, 200);
    let (_, csv) = http_get(&format!(
        "{web}/rrd/data/home/den/temperature.csv?start={start}&end={end}"
    ));
    let csv = String::from_utf8_lossy(&csv);
    let local_end = berlin(end, "%Y-%m-%d %H:%M:%S%:z");
    assert!(
        csv.lines().any(|l| l.starts_with(&local_end)),
        "{local_end} in {csv}"
    );

    let driver = ChromeDriver::start();
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = browser(&driver, profile.path()).await;
        client
            .goto(&format!(
                "{web}/rrd/file/home/den/temperature?start={start}&end={end}"
            ))
            .await
            .unwrap();
        // The browser's own zone is UTC: the chart still reads Berlin's.
        let shown = wait_js(
            &client,
            "return document.getElementById('chart').dataset.lastTime || null;",
        )
        .await;
        let last_row = wait_js(
            &client,
            "return fetch(new URL(document.getElementById('interactive').dataset.url, location.origin) + '?points=800')
               .then(r => r.json()).then(d => d.rows[d.rows.length - 1][0]);",
        )
        .await;
        let last_row = last_row.as_f64().unwrap() as i64;
        assert_eq!(
            shown.as_str().unwrap(),
            berlin(last_row, "%Y-%m-%d %H:%M"),
            "the chart's last time"
        );
        let errors = console_errors(&client).await;
        assert!(errors.is_empty(), "browser console errors: {errors:?}");
        client.close().await.unwrap();
    });
}

/// `HEAD`-like: the status and headers of a GET (the body dropped).
fn http_head_graph(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", url])
        .output()
        .expect("curl is installed");
    let headers = String::from_utf8_lossy(&out.stdout).into_owned();
    let status = headers
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, headers)
}

/// A Tasmota plug's ENERGY fields: a chart per quantity (no chart mixes
/// volts and amperes), no colour twice in a chart; and every page fits a
/// 390 px phone without scrolling sideways, screenshots taken at both
/// widths.
#[test]
fn device_charts_read_and_every_page_fits_a_phone() {
    let broker = Mosquitto::start();
    let daemon = in_berlin(&broker);
    let web = daemon.web_url();
    let t0 = (now_s() / 60 - 20) * 60;
    for i in 0..20 {
        // Tasmota's own time, with its offset (SetOption52).
        let time = chrono::DateTime::from_timestamp(t0 + 60 * i, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ");
        broker.publish(
            "tele/plug1/SENSOR",
            &format!(
                r#"{{"Time":"{time}","ENERGY":{{"TotalStartTime":"2025-01-01T00:00:00","Total":{:.3},"Yesterday":1.2,"Today":0.35,"Power":{},"ApparentPower":50,"ReactivePower":27,"Factor":0.84,"Voltage":231,"Current":0.217}}}}"#,
                123.4 + i as f64 * 0.01,
                40 + i % 4,
            ),
        );
    }
    motion(&broker, t0);
    daemon.wait_log("Samples taken", 2);
    daemon.flush();
    wait_for(Duration::from_secs(10), "the index", || {
        let (_, body) = http_get(&format!("{web}/rrd/index.txt"));
        String::from_utf8_lossy(&body)
            .contains("Voltage")
            .then_some(())
    });
    let (_, index) = http_get(&format!("{web}/rrd/index.json"));
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let unit_of = |series: &str| -> String {
        index["files"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|f| f["ds"].as_array().unwrap())
            .find(|d| d["series"] == series)
            .map(|d| d["unit"].as_str().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    assert_eq!(unit_of("tele/plug1/SENSOR/ENERGY/Voltage"), "V");
    assert_eq!(unit_of("tele/plug1/SENSOR/ENERGY/Current"), "A");

    let shots = std::env::var_os("DATALOG_RRD_SCREENSHOT_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| daemon.dir.path().join("screenshots"));
    std::fs::create_dir_all(&shots).unwrap();
    let pages = [
        ("index", "/rrd".to_owned()),
        ("device", "/rrd?device=tele/plug1".to_owned()),
        (
            "file",
            "/rrd/file/tele/plug1/SENSOR/ENERGY/Power".to_owned(),
        ),
        ("motion", "/rrd/file/zigbee2mqtt/hall/occupancy".to_owned()),
        (
            "charts",
            "/rrd/device-dashboard?device=tele/plug1".to_owned(),
        ),
        ("dashboards", "/rrd/dashboards".to_owned()),
        ("editor", "/rrd/dashboards/edit".to_owned()),
        ("search", "/rrd?q=plug1+power".to_owned()),
        ("not-found", "/rrd?device=nowhere".to_owned()),
    ];
    let driver = ChromeDriver::start();
    let profile = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = browser(&driver, profile.path()).await;
        // The plug's charts: a quantity each, colours apart.
        client
            .goto(&format!("{web}/rrd/device-dashboard?device=tele/plug1"))
            .await
            .unwrap();
        let views = wait_js(
            &client,
            "const v = [...document.querySelectorAll('.dash-chart')];
             return v.length && document.body.dataset.charts ?
               v.map(h => JSON.parse(h.dataset.series).map(s => s.url)) : null;",
        )
        .await;
        let views = views.as_array().unwrap();
        assert!(views.len() >= 7, "{views:?}");
        for view in views {
            let units: std::collections::BTreeSet<String> = view
                .as_array()
                .unwrap()
                .iter()
                .map(|url| {
                    let path = url.as_str().unwrap().split(".json").next().unwrap();
                    let path = path.trim_start_matches("/rrd/data/");
                    unit_of(&path.replace("%3A", ":"))
                })
                .collect();
            assert_eq!(units.len(), 1, "a chart mixes units: {view:?}");
        }
        let colours = wait_js(
            &client,
            "return window.datalogCharts ? window.datalogCharts.map(g => g.getColors()) : null;",
        )
        .await;
        for chart in colours.as_array().unwrap() {
            let all: Vec<&str> = chart
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect();
            let distinct: std::collections::BTreeSet<&&str> = all.iter().collect();
            assert_eq!(distinct.len(), all.len(), "a colour twice: {all:?}");
        }

        for (width, height, suffix) in [(1280, 1000, "desktop"), (390, 844, "phone")] {
            client.set_window_size(width, height).await.unwrap();
            for (name, path) in &pages {
                client.goto(&format!("{web}{path}")).await.unwrap();
                client
                    .wait()
                    .at_most(Duration::from_secs(15))
                    .for_element(Locator::Css("main h1"))
                    .await
                    .unwrap();
                settle(&client).await;
                if suffix == "phone" {
                    let fits = client
                        .execute(
                            "return [document.documentElement.scrollWidth, window.innerWidth];",
                            vec![],
                        )
                        .await
                        .unwrap();
                    let (scroll, inner) = (fits[0].as_u64().unwrap(), fits[1].as_u64().unwrap());
                    assert!(
                        scroll <= inner,
                        "{name} scrolls sideways: {scroll} > {inner}"
                    );
                }
                let png = client.screenshot().await.unwrap();
                std::fs::write(shots.join(format!("{name}-{suffix}.png")), png).unwrap();
            }
        }
        // The page a wrong address gets: the header and a way back.
        client
            .goto(&format!("{web}/rrd?device=nowhere"))
            .await
            .unwrap();
        let text = client
            .find(Locator::Css("main"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains("Not found") && text.contains("All devices"),
            "{text}"
        );
        client.close().await.unwrap();
    });
}

/// Lets the page's charts and eager images load (5 s at most) before a
/// picture is taken.
async fn settle(client: &fantoccini::Client) {
    for _ in 0..50 {
        let done = client
            .execute(
                "const imgs = [...document.images].filter(i => i.loading !== 'lazy');
                 const charts = document.querySelectorAll('.dash-chart, #chart');
                 const drawn = document.body.dataset.charts !== undefined
                   || !!document.querySelector('#chart[data-rows]') || charts.length === 0;
                 return imgs.every(i => i.complete) && drawn;",
                vec![],
            )
            .await
            .unwrap();
        if done == serde_json::Value::Bool(true) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After a restart a series shows the value its file holds last, not "—"
/// until it sends again (a sensor reporting hourly would look empty for an
/// hour after every upgrade or reboot); an on/off state in its words.
#[test]
fn values_survive_a_restart_on_the_pages() {
    let broker = Mosquitto::start();
    let config = external(broker.port, "1s");
    let daemon = Daemon::start(&config);
    broker.publish("home/cellar/temperature", "12.75");
    broker.publish("zigbee2mqtt/door", r#"{"contact": false}"#);
    let data = daemon.data();
    wait_for(Duration::from_secs(20), "the files", || {
        daemon.flush();
        (data.join("home/cellar/temperature.rrd").exists()
            && data.join("zigbee2mqtt/door/contact.rrd").exists())
        .then_some(())
    });
    let daemon = daemon.restart(&config, "info");
    daemon.wait_log("Last values read from the files.", 1);
    let page = |query: &str| {
        let (status, body) = http_get(&format!("{}/rrd?{query}", daemon.web_url()));
        assert_eq!(status, 200);
        String::from_utf8_lossy(&body).into_owned()
    };
    let cellar = page("device=home/cellar");
    assert!(cellar.contains(">12.75<"), "{cellar}");
    let door = page("device=zigbee2mqtt/door");
    assert!(door.contains(">Open<"), "{door}");
}
