//! Meters through the whole daemon, as a home logs them: recorded days of
//! a Shelly Gen1 plug (watt-minutes, pushed with their times by a bot), a
//! house meter read by Tasmota (kWh) that glitches once and is replaced,
//! and a zigbee2mqtt socket (kWh, discovered as `total_increasing`)
//! through mosquitto; read back as consumption per local day in
//! Europe/Berlin, as power, priced by a day and a night rate, and drawn
//! in headless Chromium.
//!
//! The cache refuses a sample older than its file's finest archive reaches
//! back from now (one day, in the default template): to replay recorded
//! days, the files here keep minutes for 15 days, then hours and days as
//! the default template does.
//!
//! Tolerances: a day's bar is what the counter rose between the day's two
//! midnights, except that librrd spreads each rise evenly over the time
//! since the reading before: the readings around each midnight (2 min
//! apart for the plug, 5 min for the socket) may shift that much use to
//! the neighbouring day, and readings are rounded (whole watt-minutes,
//! watt-hours of kWh). The bounds below are those, computed from the
//! recorded power.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::browser::{ChromeDriver, browser, console_errors, wait_js};
use crate::support::*;

const ZONE: &str = "Europe/Berlin";

/// The Unix time of local midnight `days` days ago in `ZONE`.
fn midnight_days_ago(days: u32) -> i64 {
    let script =
        format!("TZ={ZONE} date -d \"$(TZ={ZONE} date -d '{days} days ago' +%F) 00:00\" +%s");
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `date` in `ZONE`: how the pages name a day.
fn local_text(t: i64, format: &str) -> String {
    let out = Command::new("date")
        .env("TZ", ZONE)
        .args([format!("-d@{t}"), format!("+{format}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A plug's use, in W, at local minute `minute` of the day: a fridge
/// cycling, a kettle twice, a television in the evening.
fn plug_watts(minute: i64) -> f64 {
    let minute = minute.rem_euclid(1440);
    let fridge = if minute % 40 < 15 { 110.0 } else { 2.0 };
    let kettle = if (430..433).contains(&minute) || (975..979).contains(&minute) {
        2000.0
    } else {
        0.0
    };
    let tv = if (1140..1380).contains(&minute) {
        85.0
    } else {
        0.0
    };
    fridge + kettle + tv
}

/// A house: 300 W, cooking from 18:00 to 19:00, a washing machine at 10.
fn house_watts(minute: i64) -> f64 {
    let minute = minute.rem_euclid(1440);
    let cooking = if (1080..1140).contains(&minute) {
        2000.0
    } else {
        0.0
    };
    let washing = if (600..690).contains(&minute) {
        800.0
    } else {
        0.0
    };
    300.0 + cooking + washing
}

/// One POST of JSON with a bearer token, raw: the status.
fn push(web: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let host = web.strip_prefix("http://").unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(
        s,
        "POST /rrd/api/values HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer meters:s3cret\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    answer.split(' ').nth(1).unwrap().parse().unwrap()
}

fn get_text(url: &str) -> String {
    let (status, body) = http_get(url);
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "{url}: {text}");
    text
}

/// `period start (unix) → (amount, cost)` from an energy CSV.
fn csv_bars(text: &str) -> Vec<(i64, Option<f64>, Option<f64>)> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let amount = header
        .iter()
        .position(|h| h.starts_with("consumption_"))
        .unwrap();
    let cost = header.iter().position(|h| h.starts_with("cost_"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[3].parse().unwrap(),
                f[amount].parse().ok(),
                cost.and_then(|c| f.get(c)?.parse().ok()),
            )
        })
        .collect()
}

/// Hourly values of a file's export (`/rrd/data`), by hour end.
fn hourly(web: &str, path: &str, from: i64, to: i64) -> Vec<(i64, Option<f64>)> {
    let text = get_text(&format!(
        "{web}/rrd/data/{path}.json?start={from}&end={to}&step=3600&points=100"
    ));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["step"], 3600, "{text}");
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[0].as_f64().unwrap() as i64, r[1].as_f64()))
        .collect()
}

#[test]
fn meters_read_as_power_and_consumption_per_local_day_with_their_cost() {
    let broker = Mosquitto::start();
    // The socket's discovery config, retained, as zigbee2mqtt publishes it.
    let status = mosquitto_pub(
        broker.port,
        "homeassistant/sensor/0xa4c138socket/energy/config",
        &[
            "-r",
            "-m",
            r#"{"name":"Socket energy","stat_t":"zigbee2mqtt/socket","val_tpl":"{{ value_json.energy }}","unit_of_meas":"kWh","stat_cla":"total_increasing","dev_cla":"energy"}"#,
        ],
    )
    .status()
    .unwrap();
    assert!(status.success());
    let config = format!(
        "{}[web]\nlisten = \"127.0.0.1:0\"\ntime_zone = \"{ZONE}\"\n\
         [[web.bots]]\nname = \"meters\"\ntoken_hash = \"{}\"\npublish = [\"#\"]\n\
         [[template]]\nname = \"replayed\"\ntopics = [\"#\"]\nstep = \"1m\"\n\
         rra = [\n  {{ cf = \"AVERAGE\", every = \"1m\", keep = \"15d\" }},\n\
           {{ cf = [\"AVERAGE\", \"MIN\", \"MAX\"], every = \"1h\", keep = \"62d\" }},\n\
           {{ cf = [\"AVERAGE\", \"MIN\", \"MAX\"], every = \"1d\", keep = \"5y\" }},\n]\n\
         [energy]\ncurrency = \"EUR\"\n\
         [[energy.tariff]]\nname = \"day\"\nprice = 0.30\n\
         [[energy.tariff]]\nname = \"night\"\nprice = 0.20\nfrom = \"22:00\"\nto = \"06:00\"\n",
        external(broker.port, "1h"),
        hash_password("s3cret"),
    );
    let daemon = Daemon::start(&config);
    daemon.wait_log("Discovery metadata read", 1);
    let web = daemon.web_url();
    let day = midnight_days_ago(2);
    let next = midnight_days_ago(1);

    // The socket: 14 days, a reading every 5 minutes (kWh, 3 decimals),
    // stamped by zigbee2mqtt's `last_seen` (epoch milliseconds).
    let socket_from = midnight_days_ago(13);
    let mut kwh = 1234.0;
    let mut socket = Vec::new();
    let mut t = socket_from + 11;
    while t <= next + 2 * 3600 {
        let minute = (t - day).div_euclid(60);
        let watts = plug_watts(minute) + 40.0;
        kwh += watts * 300.0 / 3_600_000.0;
        socket.push((t, (kwh * 1000.0).round() / 1000.0, watts));
        t += 300;
    }
    let lines: Vec<String> = socket
        .iter()
        .map(|(t, e, w)| {
            format!(
                r#"{{"energy":{e},"power":{w},"linkquality":120,"last_seen":{}}}"#,
                t * 1000
            )
        })
        .collect();
    publish_lines(broker.port, "zigbee2mqtt/socket", &lines);

    // The plug and the house meter: pushed every 2 minutes, with their
    // times, from 22:00 the evening before to 02:00 the morning after.
    let mut wmin = 600_000.0_f64;
    let mut house = 5234.0_f64;
    let mut plug = Vec::new();
    let mut meter = Vec::new();
    let glitch = day + 3 * 3600 + 17;
    let replaced = day + 12 * 3600;
    let mut t = day - 7200 + 17;
    while t <= next + 7200 {
        let minute = (t - day).div_euclid(60);
        let watts = plug_watts(minute);
        wmin += watts * 2.0;
        house += house_watts(minute) * 2.0 / 60_000.0;
        if t > replaced && house > 1000.0 {
            house = 0.05; // a new meter
        }
        let total = if t == glitch {
            9.0e9
        } else {
            (house * 1000.0).round() / 1000.0
        };
        plug.push((t, wmin, watts));
        meter.push((t, total));
        let body = format!(
            r#"{{"ts":{t},"shellies/plug/relay/0/energy":{},"shellies/plug/relay/0/power":{watts},"tele/meter/SENSOR":{{"ENERGY":{{"Total":{total},"Power":{}}}}}}}"#,
            wmin.floor(),
            house_watts(minute)
        );
        assert_eq!(push(&web, &body), 200, "{body}");
        t += 120;
    }
    daemon.flush();
    let meters = [
        "zigbee2mqtt/socket/energy",
        "shellies/plug/relay/0/energy",
        "tele/meter/SENSOR/ENERGY/Total",
    ];
    wait_for(Duration::from_secs(60), "the meters' last readings", || {
        let written = |path: &str| {
            let out = Command::new("rrdtool")
                .arg("last")
                .arg(daemon.data().join(format!("{path}.rrd")))
                .output()
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<i64>()
                .ok()
        };
        if meters.iter().all(|p| written(p).is_some_and(|t| t >= next)) {
            return Some(());
        }
        daemon.flush();
        None
    });
    // The index says what the files are once the RRD thread has read them.
    wait_for(Duration::from_secs(60), "the index", || {
        let text = std::fs::read_to_string(daemon.data().join("index.json")).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let files = v["files"].as_array()?;
        meters
            .iter()
            .all(|p| files.iter().any(|f| f["path"] == *p))
            .then_some(())
    });
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(daemon.data().join("index.json")).unwrap())
            .unwrap();
    let ds = |path: &str| {
        index["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path)
            .unwrap_or_else(|| panic!("{path}: {index}"))["ds"][0]
            .clone()
    };
    // Counters, as the files hold them; the Shelly's watt-minutes in Wh.
    for (path, unit) in [
        ("zigbee2mqtt/socket/energy", "kWh"),
        ("shellies/plug/relay/0/energy", "Wh"),
        ("tele/meter/SENSOR/ENERGY/Total", "kWh"),
    ] {
        let d = ds(path);
        assert_eq!(
            (d["type"].as_str(), d["unit"].as_str()),
            (Some("DDERIVE"), Some(unit)),
            "{d}"
        );
    }
    let plug_last = plug.last().unwrap().1.floor() / 60.0;
    assert!(
        (ds("shellies/plug/relay/0/energy")["last_value"]
            .as_f64()
            .unwrap()
            - plug_last)
            .abs()
            < 1e-6
    );
    let info = rrd_info(&daemon.data().join("zigbee2mqtt/socket/energy.rrd"));
    assert!(info.contains("ds[value].min = 0.0000000000e+00"), "{info}");
    assert!(
        info.contains("ds[value].minimal_heartbeat = 21600"),
        "{info}"
    );

    // Consumption per local day: the day two days ago, midnight to midnight.
    let day_bar = |path: &str| {
        let text = get_text(&format!("{web}/rrd/energy/{path}.csv?per=day"));
        let bars = csv_bars(&text);
        assert_eq!(bars.len(), 62, "{text}");
        for (start, amount, _) in &bars {
            assert!(
                amount.is_none_or(|a| a >= 0.0),
                "a negative day at {start}: {text}"
            );
        }
        let (_, amount, cost) = bars
            .into_iter()
            .find(|b| b.0 == day)
            .unwrap_or_else(|| panic!("no bar starting at local midnight {day}: {text}"));
        (amount.expect("the day is known"), cost)
    };
    let reading_at =
        |readings: &[(i64, f64)], at: i64| readings.iter().rev().find(|r| r.0 <= at).unwrap().1;

    // The socket: kWh, readings 5 minutes apart.
    let socket_readings: Vec<(i64, f64)> = socket.iter().map(|r| (r.0, r.1)).collect();
    let counted = reading_at(&socket_readings, next) - reading_at(&socket_readings, day);
    let edge = (plug_watts(0) + 40.0) * 2.0 * 300.0 / 3_600_000.0 + 0.002;
    let (socket_day, socket_cost) = day_bar("zigbee2mqtt/socket/energy");
    assert!(
        (socket_day - counted).abs() <= edge,
        "socket: bar {socket_day} kWh, counter rose {counted} kWh (±{edge})"
    );

    // The plug: Wh counted, shown in kWh; readings 2 minutes apart.
    let plug_readings: Vec<(i64, f64)> = plug.iter().map(|r| (r.0, r.1.floor() / 60.0)).collect();
    let counted = (reading_at(&plug_readings, next) - reading_at(&plug_readings, day)) / 1000.0;
    let edge = plug_watts(0) * 2.0 * 2.0 / 60.0 / 1000.0 + 0.001;
    let (plug_day, _) = day_bar("shellies/plug/relay/0/energy");
    assert!(
        (plug_day - counted).abs() <= edge,
        "plug: bar {plug_day} kWh, counter rose {counted} kWh (±{edge})"
    );

    // The house meter: the glitch and the replacement lose the intervals
    // around them (at most three of 2 minutes), never more, never less.
    let truth: f64 = (0..720).map(|i| house_watts(i * 2) * 2.0 / 60_000.0).sum();
    let (house_day, _) = day_bar("tele/meter/SENSOR/ENERGY/Total");
    assert!(
        house_day <= truth + 0.01,
        "house: {house_day} kWh of {truth}"
    );
    assert!(
        house_day >= truth - 3.0 * 2.3 * 2.0 / 60.0,
        "house: {house_day} kWh of {truth}"
    );
    // Its power never a spike: every hour within what a house can draw.
    for (end, kw) in hourly(&web, "tele/meter/SENSOR/ENERGY/Total", day, next) {
        let kw = kw.unwrap_or(0.0);
        assert!((0.0..=3.2).contains(&kw), "{kw} kW in the hour to {end}");
    }

    // Power: the counters drawn in W (plug) and kW (socket) are the
    // published power. The plug reports every 2 minutes: hour by hour,
    // within what a change of power at an hour's edge moves between hours
    // (a reading covers the 2 minutes before it; its power is stored in
    // the step it falls in). The socket reports every 5
    // minutes, and its power reading (a gauge) is held forward until the
    // next while the counter's rise is spread back over the 5 minutes
    // before: hours differ by up to a fridge's step × 5 min / 1 h, so its
    // day is compared, where only midnight's edges differ.
    let plug_power = hourly(&web, "shellies/plug/relay/0/power", day, next);
    let plug_from_counter = hourly(&web, "shellies/plug/relay/0/energy", day, next);
    let mut compared = 0;
    for (power, counted) in plug_power.iter().zip(&plug_from_counter) {
        if let (Some(p), Some(c)) = (power.1, counted.1) {
            // The fridge (108 W) and the television (85 W) switch at
            // some hours' edges: 193 W × 2 min / 1 h = 6.4 W.
            assert!(
                (p - c).abs() <= 7.0,
                "plug hour to {}: {p} W published, {c} W counted",
                power.0
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 24, "every hour of the day compared");
    let mean = |rows: Vec<(i64, Option<f64>)>| {
        let known: Vec<f64> = rows.iter().filter_map(|r| r.1).collect();
        assert_eq!(known.len(), 24, "{rows:?}");
        known.iter().sum::<f64>() / 24.0
    };
    let socket_w = mean(hourly(&web, "zigbee2mqtt/socket/power", day, next));
    let socket_kw = mean(hourly(&web, "zigbee2mqtt/socket/energy", day, next));
    assert!(
        (socket_w - socket_kw * 1000.0).abs() <= 1.0,
        "socket: {socket_w} W published, {socket_kw} kW counted"
    );

    // The cost: each hour at its rate (night 22:00–06:00 local).
    let socket_hours = hourly(&web, "zigbee2mqtt/socket/energy", day, next);
    let priced: f64 = socket_hours
        .iter()
        .map(|(end, kw)| {
            let hour: u32 = local_text(end - 1800, "%-H").parse().unwrap();
            let price = if !(6..22).contains(&hour) { 0.20 } else { 0.30 };
            kw.unwrap_or(0.0) * price
        })
        .sum();
    let socket_cost = socket_cost.expect("a tariff prices kWh");
    assert!(
        (socket_cost - priced).abs() <= 0.01 * priced + 0.001,
        "cost {socket_cost}, hour by hour {priced}"
    );
    assert!(socket_cost > socket_day * 0.20 && socket_cost < socket_day * 0.30);

    // The pages: the overview, a meter's days, its PNG and JSON.
    let overview = get_text(&format!("{web}/rrd/energy"));
    for p in [
        "zigbee2mqtt/socket/energy",
        "shellies/plug/relay/0/energy",
        "tele/meter/SENSOR/ENERGY/Total",
    ] {
        assert!(
            overview.contains(&format!("/rrd/energy/{p}")),
            "{p}: {overview}"
        );
    }
    let page = get_text(&format!(
        "{web}/rrd/energy/zigbee2mqtt/socket/energy?per=day"
    ));
    let day_name = local_text(day, "%a %-d %b %Y");
    assert!(page.contains(&day_name), "{day_name}: {page}");
    assert!(page.contains("EUR"), "costs are shown: {page}");
    assert!(page.contains(ZONE), "the zone is said: {page}");
    let file_page = get_text(&format!("{web}/rrd/file/zigbee2mqtt/socket/energy"));
    assert!(
        file_page.contains("/rrd/energy/zigbee2mqtt/socket/energy?ds=value"),
        "{file_page}"
    );
    let (status, png) = http_get(&format!(
        "{web}/rrd/energy/zigbee2mqtt/socket/energy.png?per=day"
    ));
    assert_eq!(status, 200);
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{} bytes",
        png.len()
    );
    let json: Value = serde_json::from_str(&get_text(&format!(
        "{web}/rrd/energy/zigbee2mqtt/socket/energy.json?per=month"
    )))
    .unwrap();
    assert_eq!(json["unit"], "kWh");
    assert_eq!(json["flow_unit"], "kW");
    assert_eq!(json["time_zone"], ZONE);
    assert_eq!(json["bars"].as_array().unwrap().len(), 24);
    let (status, _) = http_get(&format!(
        "{web}/rrd/energy/zigbee2mqtt/socket/power?per=day"
    ));
    assert_eq!(status, 404, "a power reading is no meter");
    let (status, _) = http_get(&format!(
        "{web}/rrd/energy/zigbee2mqtt/socket/energy?per=week"
    ));
    assert_eq!(status, 400);

    // In a real browser: the bars drawn, the totals shown.
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shots = daemon.dir.path().to_owned();
    runtime.block_on(async {
        let profile = tempfile::tempdir().unwrap();
        let client = browser(&driver, profile.path()).await;
        client
            .goto(&format!("{web}/rrd/energy/zigbee2mqtt/socket/energy?per=day"))
            .await
            .unwrap();
        let bars = wait_js(
            &client,
            "const c = document.getElementById('chart'); \
             return (c && Number(c.dataset.bars) > 0 && c.querySelector('canvas')) ? Number(c.dataset.bars) : null;",
        )
        .await;
        assert!(bars.as_f64().unwrap() >= 13.0, "{bars}");
        // A bar pointed at says its day, its amount and its cost.
        let legend = wait_js(
            &client,
            "const c = document.getElementById('chart'); const g = c.dygraph; \
             let row = g.numRows() - 1; while (row > 0 && g.getValue(row, 1) === null) { row--; } \
             g.setSelection(row); const t = document.getElementById('energy-legend').textContent; \
             return t.includes('EUR') ? t : null;",
        )
        .await;
        let legend = legend.as_str().unwrap();
        assert!(legend.contains("kWh") && legend.contains(": "), "{legend}");
        // Zoomed to the three newest whole days: their total is said.
        let wanted = wait_js(
            &client,
            "const c = document.getElementById('chart'); const g = c.dygraph; \
             let row = g.numRows() - 1; while (row > 0 && g.getValue(row, 1) === null) { row--; } \
             const from = g.getValue(row - 3, 0), to = g.getValue(row, 0); \
             g.updateOptions({ dateWindow: [from, to] }); \
             return g.getValue(row - 3, 1) + g.getValue(row - 2, 1) + g.getValue(row - 1, 1);",
        )
        .await
        .as_f64()
        .unwrap();
        let shown = wait_js(
            &client,
            "const t = document.getElementById('visible-total').textContent; \
             return t.includes(' in 3 days') ? Number(document.getElementById('chart').dataset.visibleTotal) : null;",
        )
        .await
        .as_f64()
        .unwrap();
        assert!((shown - wanted).abs() < 1e-9, "in view {shown}, the bars {wanted}");
        let totals = client
            .find(fantoccini::Locator::Css(".totals"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(totals.contains("kWh") && totals.contains("EUR"), "{totals}");
        let img_ok = wait_js(
            &client,
            "const i = document.querySelector('figure img'); return (i && i.complete && i.naturalWidth > 0) || null;",
        )
        .await;
        assert_eq!(img_ok, Value::Bool(true));
        std::fs::write(shots.join("energy-desktop.png"), client.screenshot().await.unwrap())
            .unwrap();
        client.goto(&format!("{web}/rrd/energy")).await.unwrap();
        std::fs::write(
            shots.join("energy-overview-desktop.png"),
            client.screenshot().await.unwrap(),
        )
        .unwrap();
        // On a phone: the hours of the last two days, and the overview.
        client.set_window_size(390, 1800).await.unwrap();
        client
            .goto(&format!("{web}/rrd/energy/zigbee2mqtt/socket/energy?per=hour"))
            .await
            .unwrap();
        wait_js(
            &client,
            "const c = document.getElementById('chart'); return (c && c.querySelector('canvas')) ? true : null;",
        )
        .await;
        std::fs::write(shots.join("energy-phone.png"), client.screenshot().await.unwrap()).unwrap();
        client.goto(&format!("{web}/rrd/energy")).await.unwrap();
        std::fs::write(
            shots.join("energy-overview-phone.png"),
            client.screenshot().await.unwrap(),
        )
        .unwrap();
        let errors = console_errors(&client).await;
        assert!(errors.is_empty(), "browser console errors: {errors:?}");
        client.close().await.unwrap();
    });
    if let Some(dir) = std::env::var_os("DATALOG_RRD_SCREENSHOT_DIR") {
        for name in [
            "energy-desktop.png",
            "energy-overview-desktop.png",
            "energy-phone.png",
            "energy-overview-phone.png",
        ] {
            std::fs::copy(shots.join(name), std::path::Path::new(&dir).join(name)).unwrap();
        }
    }
}

/// A meter's file made as a gauge by an older version (Tasmota's `Total`
/// kept as readings): it stays a gauge, its readings are held over silent
/// steps again once the daemon knows (from the first write after the
/// upgrade; from the index at later starts), and its consumption is read
/// from their rise.
#[test]
fn a_meter_kept_as_readings_by_an_older_version_stays_readings() {
    let broker = Mosquitto::start();
    let config = format!(
        "{}[web]\nlisten = \"127.0.0.1:0\"\n\
         [[web.bots]]\nname = \"meters\"\ntoken_hash = \"{}\"\npublish = [\"#\"]\n",
        external(broker.port, "1h"),
        hash_password("s3cret"),
    );
    let daemon = Daemon::start(&config);
    // The file as the version before made it: the default template's
    // gauge, heartbeat 2 minutes.
    let dir = daemon.data().join("tele/plug/SENSOR/ENERGY");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("Total.rrd");
    let start = (now_s() / 60 - 50) * 60;
    let status = Command::new("rrdtool")
        .arg("create")
        .arg(&file)
        .args(["--step", "60", "--start", &(start - 60).to_string()])
        .args([
            "DS:value:GAUGE:120:U:U",
            "RRA:AVERAGE:0.5:1:1440",
            "RRA:AVERAGE:0.5:60:1488",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    // A reading every 5 minutes: 10.0, 10.1, … kWh, `n` of them from `from`.
    let readings = |daemon: &Daemon, from: i64, n: i64| {
        for i in from..from + n {
            let t = start + 17 + i * 300;
            let body = format!(
                r#"{{"ts":{t},"tele/plug/SENSOR":{{"ENERGY":{{"Total":{}}}}}}}"#,
                10.0 + 0.1 * i as f64
            );
            assert_eq!(push(&daemon.web_url(), &body), 200, "{body}");
        }
        daemon.flush();
    };
    // Minutes known from the first of `n` readings from `from` on.
    let held = |from: i64, n: i64| {
        let rows = fetch(&file, start + from * 300, start + (from + n) * 300);
        rows.len()
    };
    readings(&daemon, 0, 3);
    daemon.wait_log("keeps its DS as the kind it was made with", 1);
    readings(&daemon, 3, 3);
    let info = rrd_info(&file);
    assert!(info.contains("ds[value].type = \"GAUGE\""), "{info}");
    // Every minute from the first of those readings to the last: 11.
    let n = held(3, 3);
    assert!(
        n >= 11,
        "readings held between reports: {n} {:?}",
        fetch(&file, start, start + 3000)
    );
    // Restarted: the index (written at exit) says so, and the readings
    // are held from the first write.
    let daemon = daemon.restart_after(&config, "info,datalog_rrd=debug,rumqttd=error", |data| {
        let index: Value =
            serde_json::from_str(&std::fs::read_to_string(data.join("index.json")).unwrap())
                .unwrap();
        assert_eq!(index["files"][0]["ds"][0]["type"], "GAUGE", "{index}");
    });
    readings(&daemon, 6, 3);
    // (The first reading's own step follows 5 minutes of nothing, longer
    // than the file's heartbeat: a restart holds nothing over, as before.)
    let n = held(6, 3);
    assert!(
        n >= 10,
        "held from the first write: {n} {:?}",
        fetch(&file, start, start + 3000)
    );
    // Drawn as readings; consumption from their rise: 0.8 kWh.
    let web = daemon.web_url();
    let page = get_text(&format!(
        "{web}/rrd/energy/tele/plug/SENSOR/ENERGY/Total?per=hour"
    ));
    assert!(page.contains("keeps the meter&#39;s readings"), "{page}");
    let text = get_text(&format!(
        "{web}/rrd/energy/tele/plug/SENSOR/ENERGY/Total.csv?per=hour"
    ));
    let total: f64 = csv_bars(&text).iter().filter_map(|b| b.1).sum();
    assert!((total - 0.8).abs() < 0.11, "{total} kWh: {text}");
    let json: Value = serde_json::from_str(&get_text(&format!(
        "{web}/rrd/data/tele/plug/SENSOR/ENERGY/Total.json?range=hour"
    )))
    .unwrap();
    assert_eq!(
        json["columns"][0]["unit"], "kWh",
        "readings, not power: {json}"
    );
}
