//! The web UI in a real browser: Debian's headless Chromium driven through
//! chromedriver (WebDriver, with fantoccini), against the daemon fed by a
//! real mosquitto. Needs `chromium`, `chromium-driver` and
//! `libjs-dygraphs` (`scripts/install-deps --test` installs them).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::*;

/// chromedriver on a free loopback port, killed on drop.
pub(crate) struct ChromeDriver {
    child: Child,
    port: u16,
}

impl ChromeDriver {
    pub(crate) fn start() -> ChromeDriver {
        let port = free_port();
        let child = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed (apt-get install chromium-driver)");
        wait_for(Duration::from_secs(10), "chromedriver", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        ChromeDriver { child, port }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The browser's console messages so far (chromedriver's log endpoint).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

pub(crate) async fn console_errors(client: &Client) -> Vec<String> {
    let log = client.issue_cmd(BrowserLog).await.expect("browser log");
    log.as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].to_string())
        .collect()
}

pub(crate) async fn browser(driver: &ChromeDriver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,2000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

fn config(port: u16) -> String {
    format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"browser-{port}\"\n\
         [cache]\nflush_after = \"1h\"\n\
         [[file]]\npath = \"home/climate\"\nds = [\n\
           {{ name = \"temperature\", series = \"home/climate/temperature\", label = \"Temperature\", unit = \"°C\" }},\n\
           {{ name = \"humidity\", series = \"home/climate/humidity\", label = \"Humidity\", unit = \"%\" }},\n]\n\
         [[rule]]\ntopics = [\"home/hall/power\"]\nunit = \"<img src=x onerror=window.pwned=1>W\"\n\
         [[dashboard]]\nname = \"home\"\n\
         [[dashboard.view]]\ntitle = \"Temperature\"\nseries = [{{ series = \"home/climate/temperature\", color = \"#d62728\" }}]\nwarning = 21.5\n\
         [[dashboard.view]]\ntitle = \"Humidity\"\nseries = [{{ series = \"home/climate/humidity\" }}]\n"
    )
}

#[test]
fn a_real_browser_finds_the_series_sees_graphs_and_draws_the_chart() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start(&config(broker.port));
    // Two hours of history, one message a minute, with their timestamps.
    let t0 = (now_s() / 60 - 120) * 60;
    let lines: Vec<String> = (0..120)
        .map(|i| {
            let x = i as f64 / 10.0;
            format!(
                r#"{{"ts": {}, "temperature": {:.2}, "humidity": {:.1}}}"#,
                t0 + 60 * i,
                20.0 + 2.0 * x.sin(),
                50.0 + 10.0 * x.cos()
            )
        })
        .collect();
    publish_lines(broker.port, "home/climate", &lines);
    // The plug's last minutes: a few rows, so its chart has values to draw.
    let power: Vec<String> = (115..120)
        .map(|i| format!(r#"{{"ts": {}, "power": 42.5}}"#, t0 + 60 * i))
        .collect();
    publish_lines(broker.port, "home/hall", &power);
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    let web = daemon.web_url();
    wait_for(
        Duration::from_secs(10),
        "the index to list the files",
        || {
            let (_, body) = http_get(&format!("{web}/rrd/index.txt"));
            (String::from_utf8_lossy(&body) == "home/climate|home/hall/power").then_some(())
        },
    );

    let driver = ChromeDriver::start();
    let profile = tempfile::tempdir().unwrap();
    let screenshot = daemon.dir.path().join("file-page.png");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = browser(&driver, profile.path()).await;
        let wait = || client.wait().at_most(Duration::from_secs(15));

        // Index → device → file: two clicks.
        client.goto(&format!("{web}/rrd")).await.unwrap();
        wait()
            .for_element(Locator::Css("a[href='/rrd?device=home']"))
            .await
            .expect("the index lists the device")
            .click()
            .await
            .unwrap();
        let table = wait()
            .for_element(Locator::Css("table.series"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(table.contains("Temperature") && table.contains("°C"), "{table}");
        wait()
            .for_element(Locator::Css("a[href='/rrd/file/home/climate']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // The PNG graphs load and are real images.
        wait().for_element(Locator::Css("figure img")).await.unwrap();
        client
            .execute("window.scrollTo(0, document.body.scrollHeight)", vec![])
            .await
            .unwrap();
        let widths = wait_js(
            &client,
            "const imgs = [...document.querySelectorAll('figure img')];
             return imgs.every(i => i.complete && i.naturalWidth > 0) ? imgs.map(i => i.naturalWidth) : null;",
        )
        .await;
        let widths = widths.as_array().unwrap();
        // Two hours old: its last hour and 6 hours, not a year of nothing.
        assert_eq!(widths.len(), 2, "hour and 6 hours");
        assert!(widths.iter().all(|w| w.as_u64().unwrap() > 400), "{widths:?}");

        // dygraphs draws the rows of the chart's JSON.
        client.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
        let rows = wait_js(&client, "return document.getElementById('chart').dataset.rows || null;").await;
        let rows: usize = rows.as_str().unwrap().parse().unwrap();
        assert!(rows >= 100, "{rows} rows drawn");
        let painted = client
            .execute(
                "return [...document.querySelectorAll('#chart canvas')].some(c => {
                   if (!c.width || !c.height) return false;
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
                   return false;
                 });",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(painted, Value::Bool(true), "the chart canvas is blank");

        // A drag over the right end zooms in, and the zoomed range is
        // fetched again. The file is two hours old, so the chart shows those
        // two hours at their one-minute step: the drag's span (about a third
        // of the width) comes back as fewer rows at that same step.
        drag_right_end(&client, "#chart canvas", 320.0, 300.0).await;
        wait_js(&client, "return document.getElementById('chart').dataset.loads === '2' || null;").await;
        let zoomed = client
            .execute("return Number(document.getElementById('chart').dataset.rows);", vec![])
            .await
            .unwrap();
        let zoomed = zoomed.as_u64().unwrap() as usize;
        assert!((10..rows).contains(&zoomed), "{zoomed} rows after the zoom, {rows} before");
        client.find(Locator::Id("step-plot")).await.unwrap().click().await.unwrap();

        std::fs::write(&screenshot, client.screenshot().await.unwrap()).unwrap();
        let errors = console_errors(&client).await;
        assert!(errors.is_empty(), "browser console errors: {errors:?}");

        // A unit is anyone's text (discovery): the chart shows it as text.
        client
            .goto(&format!("{web}/rrd/file/home/hall/power"))
            .await
            .unwrap();
        wait_js(&client, "return document.getElementById('chart').dataset.rows || null;").await;
        let label = client
            .execute(
                "return [window.pwned === undefined, document.querySelector('#chart .dygraph-ylabel').textContent];",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(label, json!([true, "<img src=x onerror=window.pwned=1>W"]));
        client.close().await.unwrap();
    });
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    if let Some(dir) = std::env::var_os("DATALOG_RRD_SCREENSHOT_DIR") {
        std::fs::copy(
            &screenshot,
            std::path::Path::new(&dir).join("file-page.png"),
        )
        .unwrap();
    }
}

/// A dashboard's views as interactive charts: zooming one zooms the others.
#[test]
fn a_dashboards_charts_zoom_together() {
    let broker = Mosquitto::start();
    let daemon = Daemon::start(&config(broker.port));
    let t0 = (now_s() / 60 - 120) * 60;
    let lines: Vec<String> = (0..120)
        .map(|i| {
            format!(
                r#"{{"ts": {}, "temperature": {:.2}, "humidity": {:.1}}}"#,
                t0 + 60 * i,
                20.0 + (i % 7) as f64 * 0.5,
                50.0 + (i % 5) as f64
            )
        })
        .collect();
    publish_lines(broker.port, "home/climate", &lines);
    // An event through MQTT, about the device: marked on its charts.
    let event = format!(
        r#"{{"text": "Window open", "ts": {}, "device": "home"}}"#,
        t0 + 3600
    );
    publish_lines(broker.port, "datalog-rrd/events", &[event]);
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    let web = daemon.web_url();
    // The page resolves its views' series through the index.
    wait_for(
        Duration::from_secs(10),
        "the index to list the file",
        || {
            let (_, body) = http_get(&format!("{web}/rrd/index.txt"));
            (body == b"home/climate").then_some(())
        },
    );
    wait_for(Duration::from_secs(10), "the event", || {
        let (_, body) = http_get(&format!("{web}/rrd/events.json?range=day"));
        String::from_utf8_lossy(&body)
            .contains("Window open")
            .then_some(())
    });
    let driver = ChromeDriver::start();
    let profile = tempfile::tempdir().unwrap();
    let screenshot = daemon.dir.path().join("dashboard.png");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = browser(&driver, profile.path()).await;
        client
            .goto(&format!("{web}/rrd/dashboard/home"))
            .await
            .unwrap();
        wait_js(
            &client,
            "return document.body.dataset.charts === '2' || null;",
        )
        .await;
        wait_js(
            &client,
            "return window.datalogCharts.every(c => c.datalogEvents === 1) || null;",
        )
        .await;
        // The temperature view's warning threshold is on its chart too.
        wait_js(
            &client,
            "return (window.datalogCharts[0].datalogThresholds === 1
                     && window.datalogCharts[1].datalogThresholds === 0) || null;",
        )
        .await;
        let ranges = "return window.datalogCharts.map(c => c.xAxisRange());";
        let before = client.execute(ranges, vec![]).await.unwrap();
        // A drag over the first chart's last hours (where the data is), as
        // a person zooms; offsets are from the canvas's centre.
        let width = |v: &Value, i: usize| v[i][1].as_f64().unwrap() - v[i][0].as_f64().unwrap();
        drag_right_end(&client, ".dash-chart canvas", 45.0, 35.0).await;
        let after = wait_js(
            &client,
            &format!(
                "const r = window.datalogCharts.map(c => c.xAxisRange());
                 return r[0][1] - r[0][0] < {} ? r : null;",
                width(&before, 0)
            ),
        )
        .await;
        assert!(
            width(&after, 0) < width(&before, 0) / 2.0,
            "zoomed in: {before} → {after}"
        );
        assert_eq!(after[0], after[1], "the second chart follows the first");
        std::fs::write(&screenshot, client.screenshot().await.unwrap()).unwrap();
        let errors = console_errors(&client).await;
        assert!(errors.is_empty(), "browser console errors: {errors:?}");
        client.close().await.unwrap();
    });
    if let Some(dir) = std::env::var_os("DATALOG_RRD_SCREENSHOT_DIR") {
        std::fs::copy(
            &screenshot,
            std::path::Path::new(&dir).join("dashboard.png"),
        )
        .unwrap();
    }
}

/// An editor makes a dashboard in the browser; a viewer is refused.
#[test]
fn an_editor_makes_a_dashboard_and_a_viewer_cannot() {
    let broker = Mosquitto::start();
    let users = format!(
        "[web]\nlisten = \"127.0.0.1:0\"\n[[web.groups]]\nname = \"home\"\nseries = [\"home/#\"]\n\
         [[web.users]]\nname = \"ed\"\npassword_hash = \"{}\"\nrole = \"editor\"\ngroups = [\"home\"]\n\
         [[web.users]]\nname = \"vi\"\npassword_hash = \"{}\"\nrole = \"viewer\"\ngroups = [\"home\"]\n",
        hash_password("ed-pass"),
        hash_password("vi-pass")
    );
    let daemon = Daemon::start(&format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"editor-{}\"\n[cache]\nflush_after = \"1h\"\n{users}",
        broker.port, broker.port
    ));
    broker.publish("home/hall/temperature", "19.5");
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    let web = daemon.web_url();
    let host = web.strip_prefix("http://").unwrap().to_owned();
    wait_for(Duration::from_secs(10), "the file", || {
        daemon
            .data()
            .join("home/hall/temperature.rrd")
            .exists()
            .then_some(())
    });
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let screenshot = daemon.dir.path().join("editor.png");
    runtime.block_on(async {
        let (client, _profile) =
            session_at(&driver, &format!("http://ed:ed-pass@{host}/rrd/dashboards")).await;
        let wait = || client.wait().at_most(Duration::from_secs(15));
        click(&client, Locator::LinkText("New dashboard")).await;
        wait()
            .for_element(Locator::Css("form.editor"))
            .await
            .unwrap();
        fill(&client, "name", "hall").await;
        fill(&client, "title", "The hall").await;
        fill(&client, "v0.title", "Warmth").await;
        fill(&client, "v0.add", "home/hall/temperature").await;
        fill(&client, "v0.warning", "24").await;
        std::fs::write(&screenshot, client.screenshot().await.unwrap()).unwrap();
        click(&client, Locator::Css("form.editor button[type=submit]")).await;
        // The editor's page has an h1 too: wait for the dashboard's page
        // to replace it before reading its heading.
        wait_js(
            &client,
            "return location.pathname.endsWith('/rrd/dashboard/hall') || null;",
        )
        .await;
        assert_eq!(text_of(&client, Locator::Css("h1")).await, "The hall");
        // One drawing per view: the chart (the PNG is for no scripts).
        wait()
            .for_element(Locator::Css("section.view .dash-chart canvas"))
            .await
            .expect("the view's chart");
        let errors = console_errors(&client).await;
        assert!(errors.is_empty(), "browser console errors: {errors:?}");
        client.close().await.unwrap();

        // A viewer sees the dashboard, but may not make one.
        let (client, _profile) =
            session_at(&driver, &format!("http://vi:vi-pass@{host}/rrd/dashboards")).await;
        let list = text_of(&client, Locator::Css("main")).await;
        assert!(
            list.contains("The hall") && !list.contains("New dashboard"),
            "{list}"
        );
        client
            .goto(&format!("http://vi:vi-pass@{host}/rrd/dashboards/edit"))
            .await
            .unwrap();
        let refused = client.source().await.unwrap();
        assert!(refused.contains("needs the editor role"), "{refused}");
        client.close().await.unwrap();
    });
    if let Some(dir) = std::env::var_os("DATALOG_RRD_SCREENSHOT_DIR") {
        std::fs::copy(&screenshot, std::path::Path::new(&dir).join("editor.png")).unwrap();
    }
}

/// Grafolean's bots, managed in the browser: an admin adds a job to
/// scrape a real node exporter; the daemon runs it at once, its series land
/// in files; paused, it says so; it survives a restart; a viewer cannot
/// reach the jobs.
#[test]
fn an_admin_adds_a_poll_job_in_the_browser_and_a_viewer_cannot() {
    let exporter = NodeExporter::start();
    let broker = Mosquitto::start();
    let config = format!(
        "{}[web]\nlisten = \"127.0.0.1:0\"\n\
         [[web.groups]]\nname = \"home\"\nseries = [\"home/#\"]\n\
         [[web.users]]\nname = \"ad\"\npassword_hash = \"{}\"\nrole = \"admin\"\n\
         [[web.users]]\nname = \"vi\"\npassword_hash = \"{}\"\nrole = \"viewer\"\ngroups = [\"home\"]\n",
        external(broker.port, "1s"),
        hash_password("ad-pass"),
        hash_password("vi-pass")
    );
    let daemon = Daemon::start(&config);
    let host = daemon.web_url().strip_prefix("http://").unwrap().to_owned();
    let load = daemon
        .data()
        .join("prometheus/127.2E0.2E0.2E1/node_load1.rrd");
    let driver = ChromeDriver::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let shots = daemon.dir.path().to_owned();
    let target = exporter.url();
    runtime.block_on(async {
        let (client, _profile) =
            session_at(&driver, &format!("http://ad:ad-pass@{host}/rrd/jobs")).await;
        click(&client, Locator::LinkText("Add a job")).await;
        text_of(&client, Locator::Css("form.job-editor")).await;
        fill(&client, "name", "pi").await;
        fill(&client, "target", &target).await;
        fill(&client, "interval", "10s").await;
        fill(&client, "include", "node_load1").await;
        click(&client, Locator::Css("select[name='kind'] option[value='prometheus']")).await;
        std::fs::write(shots.join("job-edit.png"), client.screenshot().await.unwrap()).unwrap();
        click(&client, Locator::Css("form.job-editor button[type=submit]")).await;
        // Back on the list, the job is there, run by the daemon already.
        wait_js(
            &client,
            "return (location.pathname == '/rrd/jobs' && document.getElementById('job-pi')) || null;",
        )
        .await;
        let card = text_of(&client, Locator::Id("job-pi")).await;
        assert!(card.contains("prometheus, every 10s"), "{card}");
        assert!(!card.contains("not running"), "{card}");
        wait_for(Duration::from_secs(60), "the job's series", || {
            daemon.flush();
            load.exists().then_some(())
        });
        client.refresh().await.unwrap();
        let card = text_of(&client, Locator::Id("job-pi")).await;
        assert!(card.contains("answering") && card.contains("1 sample"), "{card}");
        std::fs::write(shots.join("jobs.png"), client.screenshot().await.unwrap()).unwrap();
        // Paused from its card.
        click(&client, Locator::Css("#job-pi form[action='/rrd/jobs/pause'] button")).await;
        wait_js(
            &client,
            "const c = document.getElementById('job-pi'); return (c && c.textContent.includes('Resume')) || null;",
        )
        .await;
        let errors = console_errors(&client).await;
        assert!(errors.is_empty(), "browser console errors: {errors:?}");
        client.close().await.unwrap();

        // A viewer sees no Jobs link, and is refused the page.
        let (client, _profile) =
            session_at(&driver, &format!("http://vi:vi-pass@{host}/rrd")).await;
        let nav = text_of(&client, Locator::Css("nav")).await;
        assert!(!nav.contains("Jobs"), "{nav}");
        client
            .goto(&format!("http://vi:vi-pass@{host}/rrd/jobs"))
            .await
            .unwrap();
        let refused = client.source().await.unwrap();
        assert!(refused.contains("for admins"), "{refused}");
        client.close().await.unwrap();
    });
    daemon.wait_log("Poll job started.", 1);
    let log = daemon.log();
    assert!(log.contains("Poll job saved."), "{log}");
    // The job survives a restart, paused as it was left.
    let daemon = daemon.restart(&config, "info");
    let jobs_page = || {
        let out = std::process::Command::new("curl")
            .args(["-sf", "-u", "ad:ad-pass"])
            .arg(format!("{}/rrd/jobs", daemon.web_url()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let page = jobs_page();
    assert!(
        page.contains("id=\"job-pi\"") && page.contains(">paused<"),
        "{page}"
    );
    // A reload of the configuration file keeps the browser's jobs.
    daemon.rewrite_config(&format!("{config}# edited\n"));
    daemon.wait_log("Configuration reloaded. poll_jobs=1", 1);
    let page = jobs_page();
    assert!(
        page.contains("id=\"job-pi\"") && page.contains(">paused<"),
        "{page}"
    );
    if let Some(dir) = std::env::var_os("DATALOG_RRD_SCREENSHOT_DIR") {
        for shot in ["job-edit.png", "jobs.png"] {
            std::fs::copy(
                daemon.dir.path().join(shot),
                std::path::Path::new(&dir).join(shot),
            )
            .unwrap();
        }
    }
}

/// Drags over the first `canvas` as a person zooms: from `from_end`
/// pixels before its right end, `by` pixels to the right (the last hours of
/// a day, where the test data is). Pointer offsets are from its centre.
async fn drag_right_end(client: &Client, canvas: &str, from_end: f64, by: f64) {
    let element = client.find(Locator::Css(canvas)).await.unwrap();
    let half_width = client
        .execute(
            &format!("return document.querySelector('{canvas}').clientWidth / 2;"),
            vec![],
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap();
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element,
            duration: None,
            x: half_width - from_end,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(300)),
            x: by,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    client.perform_actions(drag).await.unwrap();
}

/// Runs `script` until it returns something other than null, for at most
/// 15 seconds.
/// A browser session of its own (a fresh profile), on `url`.
async fn session_at(driver: &ChromeDriver, url: &str) -> (Client, tempfile::TempDir) {
    let profile = tempfile::tempdir().unwrap();
    let client = browser(driver, profile.path()).await;
    client.goto(url).await.unwrap();
    (client, profile)
}

/// Waits for the element `locator` finds (15 s at most) and clicks it.
async fn click(client: &Client, locator: Locator<'_>) {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(locator)
        .await
        .unwrap_or_else(|e| panic!("{locator:?}: {e}"))
        .click()
        .await
        .unwrap();
}

/// The text of the element `locator` finds (waited for, 15 s at most).
async fn text_of(client: &Client, locator: Locator<'_>) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(locator)
        .await
        .unwrap_or_else(|e| panic!("{locator:?}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Types `value` into the form field named `name`.
async fn fill(client: &Client, name: &str, value: &str) {
    client
        .find(Locator::Css(&format!("[name='{name}']")))
        .await
        .unwrap()
        .send_keys(value)
        .await
        .unwrap();
}

pub(crate) async fn wait_js(client: &Client, script: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let v = client.execute(script, vec![]).await.unwrap();
        if !v.is_null() {
            return v;
        }
        if std::time::Instant::now() >= deadline {
            let url = client.current_url().await.map(|u| u.to_string());
            let page = client.source().await.unwrap_or_default();
            let page: String = page.chars().take(3000).collect();
            panic!("timed out: {script}\nat {url:?}:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
