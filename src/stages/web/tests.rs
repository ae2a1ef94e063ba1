//! Every endpoint against a real RRD thread and cache task on a temp dir:
//! pages, graphs, exports, metrics, authentication, and hostile requests,
//! each of which must get a clean 4xx (never a panic, never a file outside
//! the index).

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::{App, test as atest};

use super::*;
use crate::cache::{self, Recovered};
use crate::config::Config;
use crate::model::Sample;

struct Fixture {
    state: web::Data<State>,
    _rrd_thread: std::thread::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn now_ms() -> i64 {
    Clock::System.now_ms()
}

/// A daemon without MQTT: samples go straight into the cache.
fn fixture(extra_config: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "data_dir = \"{}\"\n[cache]\nflush_after = \"1h\"\nsnapshot_every = \"0s\"\n\
         [journal]\nenabled = false\n{extra_config}",
        dir.path().display()
    );
    let config = Arc::new(Config::parse(&text, "test").unwrap());
    let metrics = Arc::new(Metrics::default());
    let (rrd, rrd_thread) = crate::rrd::spawn(
        config.data_dir.clone(),
        config.limits.max_future,
        metrics.clone(),
    )
    .unwrap();
    let clock_watch = crate::clock::ClockWatch::always_trusted(Clock::System, metrics.clone());
    let stamper = clock_watch.stamper();
    let (cache, _task) = cache::spawn(
        config.clone(),
        rrd.clone(),
        metrics.clone(),
        Clock::System,
        clock_watch,
        Recovered::default(),
    );
    let web_config = config.web.clone().unwrap();
    let state = web::Data::new(state(
        &web_config,
        WebDeps {
            rrd,
            cache: cache.clone(),
            metrics,
            clock: Clock::System,
            journal_enabled: false,
            events: Arc::new(crate::events::Events::load(&config.data_dir)),
            config: tokio::sync::watch::channel(config.clone()).1,
            jobs: Default::default(),
            browser_jobs: Vec::new(),
            jobs_saved: None,
            intake: crate::cache::Intake::new(None, cache.clone()),
            stamper,
        },
    ));
    Fixture {
        state,
        _rrd_thread: rrd_thread,
        _dir: dir,
    }
}

impl Fixture {
    /// Graphs librrd has drawn so far.
    fn graphs_drawn(&self) -> u64 {
        (self.state.metrics.graphs_rendered).load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Adds samples for `series` (10 steps back to now) and waits until
    /// their files are on disk and in the published index.
    async fn feed(&self, series: &[&str]) {
        let now = now_ms();
        let samples: Vec<Sample> = series
            .iter()
            .flat_map(|s| {
                (0..10).map(move |i| Sample {
                    series: (*s).into(),
                    time_ms: now - (10 - i) * 60_000,
                    value: 20.0 + i as f64,
                })
            })
            .collect();
        self.state.cache.add(0, samples, None).await.unwrap();
        self.state.cache.flush_all().await.unwrap();
        for _ in 0..100 {
            if self.state.rrd.index().len() >= series.len() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the index did not list {series:?}");
    }
}

async fn get<S, B>(app: &S, uri: &str) -> (StatusCode, String, Vec<u8>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    send(app, atest::TestRequest::get().uri(uri).to_request()).await
}

/// Status, content type and body of `req`'s answer.
async fn send<S, B>(app: &S, req: actix_http::Request) -> (StatusCode, String, Vec<u8>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = atest::call_service(app, req).await;
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = atest::read_body(res).await.to_vec();
    (status, content_type, body)
}

fn html(body: &[u8]) -> String {
    String::from_utf8(body.to_vec()).expect("UTF-8 page")
}

/// The body as text, cut short: failures must not print whole files.
fn text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(4000).collect()
}

macro_rules! app {
    ($f:expr) => {
        atest::init_service(App::new().configure(|cfg| routes(cfg, $f.state.clone()))).await
    };
}

#[actix_web::test]
async fn pages_list_devices_series_and_values() {
    let f = fixture("");
    f.feed(&[
        "z2m/kitchen/temperature",
        "z2m/kitchen/humidity",
        "tasmota/plug/power",
    ])
    .await;
    let app = app!(f);
    let (status, ct, body) = get(&app, "/rrd").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/html"), "{ct}");
    let page = html(&body);
    assert!(page.contains("2 devices, 3 series"), "{page}");
    assert!(page.contains("href=\"/rrd?device=z2m/kitchen\""), "{page}");
    let (_, _, body) = get(&app, "/rrd?device=z2m/kitchen").await;
    let page = html(&body);
    assert!(page.contains("/rrd/file/z2m/kitchen/humidity"), "{page}");
    assert!(page.contains(">29<"), "latest value shown: {page}");
    // The device's own files are counted, and each shows its last day,
    // loaded as it scrolls into view; the small graph is drawn. Names are
    // words, not topics.
    assert!(page.contains("1 device, 2 series"), "{page}");
    assert!(page.contains(">Humidity</a>"), "{page}");
    let thumb = "/rrd/graph/z2m/kitchen/humidity.png?range=day&#38;width=300&#38;height=80&#38;legend=false";
    assert!(
        page.contains(&format!("<img src=\"{thumb}\" loading=\"lazy\"")),
        "{page}"
    );
    let (status, ct, png) = get(&app, &thumb.replace("&#38;", "&")).await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));
    let (_, _, body) = get(&app, "/rrd/file/z2m/kitchen/humidity").await;
    assert!(
        !html(&body).contains("width=300&#38;height=80"),
        "no thumbnails on the file page"
    );
    let (_, _, body) = get(&app, "/rrd?group=z2m").await;
    assert!(html(&body).contains("<h1>z2m</h1>"), "{}", text(&body));
    assert!(
        html(&body).contains("1 device, 2 series"),
        "the group's files"
    );
    let (_, _, body) = get(&app, "/rrd?q=PLUG+power").await;
    assert!(text(&body).contains("1 series matches"));
    assert!(
        html(&body).contains("1 device, 1 series"),
        "the matches, not all files"
    );
    // The file is ten minutes old: its last hour, not a year of nothing.
    let (status, _, body) = get(&app, "/rrd/file/z2m/kitchen/temperature").await;
    assert_eq!(status, StatusCode::OK);
    let page = html(&body);
    assert!(page.contains("/rrd/graph/z2m/kitchen/temperature.png?range=hour"));
    assert!(
        !page.contains("/rrd/graph/z2m/kitchen/temperature.png?range=year"),
        "{page}"
    );
    // Its first row ends at the minute after the first sample (10 min
    // ago): 10 min and up to 59 s more, so 11 near the end of a minute.
    assert!(
        page.contains("Its data starts 10 min ago") || page.contains("Its data starts 11 min ago"),
        "{page}"
    );
    assert!(page.contains("/rrd/data/z2m/kitchen/temperature.rrd"));
    let (_, _, body) = get(&app, "/rrd/index.txt").await;
    assert_eq!(
        text(&body),
        "tasmota/plug/power|z2m/kitchen/humidity|z2m/kitchen/temperature"
    );
    let (_, ct, body) = get(&app, "/rrd/index.json").await;
    assert!(ct.starts_with("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["files"].as_array().unwrap().len(), 3);
    let (status, _, _) = get(&app, "/").await;
    assert_eq!(status, StatusCode::FOUND);
}

#[actix_web::test]
async fn graphs_are_pngs_with_validators_and_revalidate_to_304() {
    let f = fixture("");
    f.feed(&["home/t"]).await;
    let app = app!(f);
    let res = atest::call_service(
        &app,
        atest::TestRequest::get()
            .uri("/rrd/graph/home/t.png?range=day&width=400&height=100")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(res.headers().contains_key("last-modified"));
    let png = atest::read_body(res).await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(png.len() > 1000, "{} bytes", png.len());
    let res = atest::call_service(
        &app,
        atest::TestRequest::get()
            .uri("/rrd/graph/home/t.png?range=day&width=400&height=100")
            .insert_header(("If-None-Match", etag.as_str()))
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(f.graphs_drawn(), 1);
}

/// A dashboard view (several files) is cached like a file's graph: not
/// drawn again while none of its files changed, drawn again when one did.
#[actix_web::test]
async fn dashboard_views_are_cached_until_one_of_their_files_changes() {
    let f = fixture(
        "[[dashboard]]\nname = \"d\"\n[[dashboard.view]]\ntitle = \"both\"\n\
         series = [{ series = \"home/a\" }, { series = \"home/b\" }]\n",
    );
    f.feed(&["home/a", "home/b"]).await;
    let app = app!(f);
    let drawn = || f.graphs_drawn();
    let uri = "/rrd/dashboard/d/0.png?range=day";
    let fetch = |etag: Option<String>| {
        let mut req = atest::TestRequest::get().uri(uri);
        if let Some(e) = etag {
            req = req.insert_header(("If-None-Match", e));
        }
        req.to_request()
    };
    let res = atest::call_service(&app, fetch(None)).await;
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(drawn(), 1);
    let res = atest::call_service(&app, fetch(None)).await;
    assert_eq!(
        (res.status(), drawn()),
        (StatusCode::OK, 1),
        "from the cache"
    );
    let res = atest::call_service(&app, fetch(Some(etag.clone()))).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    // The second file gets a row: drawn again, a new validator.
    f.state
        .cache
        .add(
            0,
            vec![Sample {
                series: "home/b".into(),
                time_ms: now_ms(),
                value: 42.0,
            }],
            None,
        )
        .await
        .unwrap();
    let res = atest::call_service(&app, fetch(Some(etag.clone()))).await;
    assert_eq!((res.status(), drawn()), (StatusCode::OK, 2));
    assert_ne!(res.headers().get("etag").unwrap().to_str().unwrap(), etag);
}

#[actix_web::test]
async fn exports_flush_the_file_first_and_bound_their_rows() {
    let f = fixture("");
    f.feed(&["home/t"]).await;
    // A sample of the open step: only in the cache until someone reads.
    let now = now_ms();
    f.state
        .cache
        .add(
            0,
            vec![Sample {
                series: "home/t".into(),
                time_ms: now,
                value: 99.5,
            }],
            None,
        )
        .await
        .unwrap();
    let app = app!(f);
    let end = now / 1000 + 120;
    let (status, ct, body) = get(
        &app,
        &format!("/rrd/data/home/t.json?start={}&end={end}", end - 3600),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", text(&body));
    assert!(ct.starts_with("application/json"));
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["columns"][0]["ds"], "value");
    let values: Vec<f64> = json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r[1].as_f64())
        .collect();
    assert!(
        values.contains(&99.5),
        "open step not flushed before reading: {values:?}"
    );
    assert!(values.contains(&25.0), "{values:?}");

    let (_, _, body) = get(&app, "/rrd/data/home/t.json?range=year&points=50").await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(json["rows"].as_array().unwrap().len() <= 51);

    let (status, ct, body) = get(&app, "/rrd/data/home/t.csv?range=day").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/csv"));
    assert!(
        text(&body).starts_with("time_local,time_utc,unix,home/t\n"),
        "{}",
        text(&body)
    );

    let (status, _, body) = get(&app, "/rrd/data/home/t.rrd").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.starts_with(b"RRD\0"));
}

#[actix_web::test]
async fn hostile_requests_get_clean_4xx() {
    let f = fixture("");
    f.feed(&["home/t"]).await;
    let app = app!(f);
    let cases: &[(&str, u16)] = &[
        ("/rrd/file/../../etc/passwd", 404),
        ("/rrd/file/home/../home/t", 404),
        ("/rrd/graph/..%2f..%2fetc%2fpasswd.png", 404),
        ("/rrd/graph/%2e%2e/%2e%2e/etc/passwd.png", 404),
        ("/rrd/data/../../../etc/passwd.rrd", 404),
        ("/rrd/data/home/t.exe", 404),
        ("/rrd/data/home/t", 404),
        ("/rrd/graph/home/t", 404),
        ("/rrd/graph/nowhere.png", 404),
        ("/rrd/static/../../Cargo.toml", 404),
        ("/rrd/static/style.css%00.js", 404),
        ("/rrd/dygraphs/..%2f..%2f..%2fetc%2fpasswd", 404),
        ("/rrd/graph/home/t.png?start=0&end=1", 400),
        (
            "/rrd/graph/home/t.png?start=1990-01-01T00:00&end=2099-01-01T00:00",
            400,
        ),
        ("/rrd/graph/home/t.png?start=99999999999999999999999", 400),
        ("/rrd/graph/home/t.png?width=100000&height=100000", 400),
        ("/rrd/graph/home/t.png?width=-1", 400),
        ("/rrd/graph/home/t.png?width=abc", 400),
        ("/rrd/graph/home/t.png?ds=value,value", 400),
        ("/rrd/graph/home/t.png?ds=x:y", 400),
        ("/rrd/graph/home/t.png?range=day&start=1", 400),
        ("/rrd/graph/home/t.png?range=%ff%fe", 400),
        ("/rrd/data/home/t.json?points=0", 400),
        ("/rrd/data/home/t.json?points=99999999", 400),
        ("/rrd/data/home/t.json?cf=SUM", 400),
        ("/rrd/data/home/t.csv?step=0", 400),
        ("/rrd/file/home/t?width=1", 400),
        ("/rrd?device=nowhere", 404),
        ("/rrd?group=nowhere", 404),
        ("/rrd?page=-1", 400),
        ("/rrd/nothing-here", 404),
    ];
    for (uri, want) in cases {
        let (status, _, body) = get(&app, uri).await;
        assert_eq!(status.as_u16(), *want, "{uri}: {}", text(&body));
    }
    let long = format!("/rrd?q={}", "a".repeat(1000));
    assert_eq!(get(&app, &long).await.0, StatusCode::BAD_REQUEST);
    // Markup in a query or a topic is shown as text, never run.
    let (status, _, body) = get(&app, "/rrd?q=%3Cscript%3Ealert(1)%3C/script%3E").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html(&body).contains("<script>alert"), "{}", text(&body));
    assert!(html(&body).contains("&#60;script&#62;") || html(&body).contains("&lt;script&gt;"));
    // Nothing above reached librrd with a bad argument.
    assert_eq!(f.graphs_drawn(), 0);
}

#[actix_web::test]
async fn topics_with_markup_are_escaped_on_every_page() {
    let f = fixture("");
    f.feed(&["evil/<img src=x onerror=alert(1)>"]).await;
    let app = app!(f);
    let index = f.state.rrd.index();
    let path = index[0].path.clone();
    assert!(!path.contains('<'), "{path}");
    for uri in [
        "/rrd".to_owned(),
        "/rrd?device=evil".to_owned(),
        format!("/rrd/file/{path}"),
        "/rrd?q=onerror".to_owned(),
    ] {
        let (status, _, body) = get(&app, &uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        let page = html(&body);
        assert!(!page.contains("<img src=x"), "{uri}: {page}");
    }
    let (_, _, body) = get(&app, "/rrd?device=evil").await;
    assert!(
        html(&body).contains("onerror=alert(1)"),
        "the series name is shown, escaped"
    );
}

#[actix_web::test]
async fn a_full_render_queue_answers_503_with_retry_after() {
    let f = fixture("[web]\nrender_queue = 1\n");
    f.feed(&["home/t"]).await;
    let app = app!(f);
    let held = f.state.render_slots.try_acquire().unwrap();
    let res = atest::call_service(
        &app,
        atest::TestRequest::get()
            .uri("/rrd/graph/home/t.png")
            .to_request(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers().get("retry-after").unwrap(), "1");
    drop(held);
    let (status, _, _) = get(&app, "/rrd/graph/home/t.png").await;
    assert_eq!(status, StatusCode::OK);
}

#[actix_web::test]
async fn metrics_and_health() {
    let f = fixture("");
    f.feed(&["home/t"]).await;
    let app = app!(f);
    let (status, ct, body) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/plain; version=0.0.4"));
    let m = text(&body);
    assert!(m.contains("datalog_rrd_rows_written_total 10\n"), "{m}");
    assert!(m.contains("datalog_rrd_series 1\n"), "{m}");
    assert!(m.contains("datalog_rrd_flush_seconds_count 1\n"), "{m}");
    let (status, _, body) = get(&app, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let health: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["mqtt_connected"], false);
}

#[actix_web::test]
async fn users_need_their_password_except_for_healthz() {
    let hash = crate::password::hash_password("s3cret").unwrap();
    let f = fixture(&format!(
        "[web]\n[[web.users]]\nname = \"ann\"\npassword_hash = \"{hash}\"\n"
    ));
    let app = app!(f);
    let basic = |user: &str, password: &str| {
        use base64::Engine;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };
    let call = |auth: Option<String>| {
        let mut req = atest::TestRequest::get().uri("/rrd");
        if let Some(a) = auth {
            req = req.insert_header(("Authorization", a));
        }
        req.to_request()
    };
    let res = atest::call_service(&app, call(None)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("datalog-rrd")
    );
    let res = atest::call_service(&app, call(Some(basic("ann", "wrong")))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = atest::call_service(&app, call(Some(basic("bob", "s3cret")))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = atest::call_service(&app, call(Some("Basic !!!not-base64".into()))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for _ in 0..2 {
        let res = atest::call_service(&app, call(Some(basic("ann", "s3cret")))).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    assert_eq!(get(&app, "/healthz").await.0, StatusCode::OK);
    assert_eq!(get(&app, "/metrics").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        f.state
            .metrics
            .http_auth_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[test]
fn config_refuses_public_listen_without_users() {
    let err = Config::parse("[web]\nlisten = \"0.0.0.0:8088\"\n", "t").unwrap_err();
    assert!(err.to_string().contains("web.listen"), "{err}");
    Config::parse(
        "[web]\nlisten = \"0.0.0.0:8088\"\nallow_public_without_auth = true\n",
        "t",
    )
    .unwrap();
    let err = Config::parse(
        "[web]\n[[web.users]]\nname = \"a\"\npassword_hash = \"hunter2\"\n",
        "t",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("web.users[0].password_hash"),
        "{err}"
    );
    assert!(
        Config::parse("[web]\nenabled = false\n", "t")
            .unwrap()
            .web
            .is_none()
    );
}

#[test]
fn config_checks_roles_groups_and_shared_dashboards_with_their_keys() {
    let hash = crate::password::hash_password("x").unwrap();
    let err = Config::parse(
        &format!(
            "[[dashboard]]\nname = \"d\"\ngroups = [\"nobody\"]\n\
             [[dashboard.view]]\ntitle = \"t\"\nseries = [{{ series = \"a\" }}]\n\
             [web]\n[[web.groups]]\nname = \"bad name!\"\nseries = [\"a/#/b\"]\n\
             [[web.users]]\nname = \"v\"\npassword_hash = \"{hash}\"\nrole = \"viewer\"\n\
             [[web.users]]\nname = \"w\"\npassword_hash = \"{hash}\"\nrole = \"boss\"\ngroups = [\"nope\"]\n"
        ),
        "t",
    )
    .unwrap_err()
    .to_string();
    for key in [
        "dashboard[0].groups",
        "web.groups[0].name",
        "web.groups[0].series",
        "web.users[0].groups",
        "web.users[1].role",
        "web.users[1].groups",
    ] {
        assert!(err.contains(key), "{key} missing from: {err}");
    }
    // Without a role, a user is an admin, as before roles existed.
    let c = Config::parse(
        &format!("[web]\n[[web.users]]\nname = \"a\"\npassword_hash = \"{hash}\"\n"),
        "t",
    )
    .unwrap();
    assert_eq!(c.web.unwrap().users[0].role, crate::config::Role::Admin);
}

/// The `<h2>` headings of a page, in order: a dashboard's views.
fn h2_titles(page: &str) -> Vec<&str> {
    page.split("<h2>")
        .skip(1)
        .filter_map(|s| s.split("</h2>").next())
        .collect()
}

#[actix_web::test]
async fn dashboards_from_the_config_draw_their_views() {
    let f = fixture(
        r##"
        [[dashboard]]
        name = "house"
        title = "The house"
        [[dashboard.view]]
        title = "Kitchen"
        warning = 25.0
        critical = 30.0
        series = [
          { series = "z2m/kitchen/temperature", label = "Temperature", color = "#d62728" },
          { series = "z2m/kitchen/humidity", draw = "area" },
          { series = "z2m/cellar/temperature" },
        ]
        "##,
    );
    f.feed(&["z2m/kitchen/temperature", "z2m/kitchen/humidity"])
        .await;
    let app = app!(f);
    let (status, _, body) = get(&app, "/rrd/dashboards").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html(&body).contains("href=\"/rrd/dashboard/house\""),
        "{}",
        html(&body)
    );
    let (status, _, body) = get(&app, "/rrd/dashboard/house").await;
    assert_eq!(status, StatusCode::OK);
    let page = html(&body);
    assert!(
        page.contains("The house") && page.contains("<h2>Kitchen</h2>"),
        "{page}"
    );
    assert!(
        page.contains("/rrd/dashboard/house/0.png?range=day"),
        "{page}"
    );
    assert!(
        page.contains("No file yet for: z2m/cellar/temperature"),
        "{page}"
    );
    let (status, ct, png) = get(&app, "/rrd/dashboard/house/0.png?range=day").await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));
    for (uri, expected) in [
        ("/rrd/dashboard/nope", StatusCode::NOT_FOUND),
        ("/rrd/dashboard/house/9.png", StatusCode::NOT_FOUND),
        (
            "/rrd/dashboard/house/..%2F..%2Fetc.png",
            StatusCode::NOT_FOUND,
        ),
        ("/rrd/dashboard/house?range=decade", StatusCode::BAD_REQUEST),
        (
            "/rrd/dashboard/house/0.png?width=99999",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(get(&app, uri).await.0, expected, "{uri}");
    }
}

#[actix_web::test]
async fn every_device_has_a_dashboard_with_a_chart_per_unit() {
    let f = fixture(
        r#"
        [[rule]]
        topics = ["z2m/kitchen/temperature", "z2m/kitchen/setpoint"]
        unit = "°C"
        [[rule]]
        topics = ["z2m/kitchen/humidity"]
        unit = "%"
        "#,
    );
    f.feed(&[
        "z2m/kitchen/temperature",
        "z2m/kitchen/setpoint",
        "z2m/kitchen/humidity",
        "z2m/kitchen/linkquality",
    ])
    .await;
    let app = app!(f);
    let (_, _, body) = get(&app, "/rrd?device=z2m/kitchen").await;
    assert!(html(&body).contains("href=\"/rrd/device-dashboard?device=z2m/kitchen\""));
    let (status, _, body) = get(&app, "/rrd/device-dashboard?device=z2m/kitchen").await;
    assert_eq!(status, StatusCode::OK);
    let page = html(&body);
    // A view per quantity; a series without a unit alone, by its name.
    let titles = h2_titles(&page);
    assert_eq!(titles, ["%", "Linkquality", "°C"], "{page}");
    assert!(
        page.contains("/rrd/device-dashboard/view.png?device=z2m/kitchen&#38;view=2&#38;range=day"),
        "{page}"
    );
    let (status, ct, png) = get(
        &app,
        "/rrd/device-dashboard/view.png?device=z2m/kitchen&view=2&range=week",
    )
    .await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));
    for (uri, expected) in [
        (
            "/rrd/device-dashboard?device=nowhere",
            StatusCode::NOT_FOUND,
        ),
        (
            "/rrd/device-dashboard/view.png?device=z2m/kitchen&view=3",
            StatusCode::NOT_FOUND,
        ),
        (
            "/rrd/device-dashboard/view.png?device=z2m/kitchen",
            StatusCode::NOT_FOUND,
        ),
        (
            "/rrd/device-dashboard?device=z2m/kitchen&range=decade",
            StatusCode::BAD_REQUEST,
        ),
        ("/rrd/device-dashboard", StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(get(&app, uri).await.0, expected, "{uri}");
    }
}

#[actix_web::test]
async fn dashboard_rules_make_one_dashboard_per_captured_level() {
    let f = fixture(
        r#"
        [[dashboard_rule]]
        name = "rooms"
        series = "z2m/+room/#"
        "#,
    );
    f.feed(&[
        "z2m/kitchen/temperature",
        "z2m/kitchen/humidity",
        "z2m/cellar/temperature",
        "tasmota/plug/power",
    ])
    .await;
    let app = app!(f);
    let (_, _, body) = get(&app, "/rrd/dashboards").await;
    let page = html(&body);
    assert!(
        page.contains("href=\"/rrd/dashboard/rooms%3Acellar\""),
        "{page}"
    );
    assert!(
        page.contains("href=\"/rrd/dashboard/rooms%3Akitchen\""),
        "{page}"
    );
    let links = page.split("<h2>Events").next().unwrap_or_default();
    assert!(!links.contains("plug"), "no dashboard for the plug: {page}");
    let (status, _, body) = get(&app, "/rrd/dashboard/rooms%3Akitchen").await;
    assert_eq!(status, StatusCode::OK);
    let page = html(&body);
    // One view per measurement kind.
    let titles = h2_titles(&page);
    assert_eq!(titles, ["humidity", "temperature"], "{page}");
    let (status, ct, png) = get(&app, "/rrd/dashboard/rooms%3Akitchen/1.png?range=day").await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "image/png"));
    assert!(png.starts_with(b"\x89PNG"));
    assert_eq!(
        get(&app, "/rrd/dashboard/rooms%3Aattic").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, "/rrd/dashboard/rooms%3Akitchen/2.png").await.0,
        StatusCode::NOT_FOUND
    );
}

#[actix_web::test]
async fn repeated_failed_logins_are_throttled_before_argon2() {
    let hash = crate::password::hash_password("s3cret").unwrap();
    let f = fixture(&format!(
        "[web]\n[[web.users]]\nname = \"cat\"\npassword_hash = \"{hash}\"\n"
    ));
    let app = app!(f);
    let login = |password: &str| {
        use base64::Engine;
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("cat:{password}"))
        );
        atest::TestRequest::get()
            .uri("/rrd")
            .peer_addr("10.9.8.7:4242".parse().unwrap())
            .insert_header(("Authorization", auth))
            .to_request()
    };
    for _ in 0..5 {
        let res = atest::call_service(&app, login("guess")).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked now: even the right password waits, and says how long.
    let res = atest::call_service(&app, login("s3cret")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers().get("retry-after").unwrap(), "1");
    // (That the lock passes, and doubles, is the throttle's own test.)
}

mod permissions;

/// The jobs page says a job is paused as soon as the configuration says
/// so, before the poll stage has followed the change (the page an admin
/// lands on right after Pause), and never "paused" for a resumed one.
#[actix_web::test]
async fn the_jobs_page_follows_the_configured_pause_at_once() {
    let f = fixture(
        "[[poll]]\nname = \"asleep\"\nkind = \"ping\"\ntarget = \"127.0.0.1\"\npaused = true\n\
         [[poll]]\nname = \"awake\"\nkind = \"ping\"\ntarget = \"127.0.0.2\"\n",
    );
    // The poll stage last saw them the other way round.
    for (name, paused) in [("asleep", false), ("awake", true)] {
        f.state.jobs.update(
            name,
            || {
                crate::poll::JobStatus::new(
                    crate::config::poll::PollKind::Ping,
                    "127.0.0.1".into(),
                    300,
                    crate::config::poll::Origin::Config,
                )
            },
            |s| s.paused = paused,
        );
    }
    let app = app!(f);
    let (status, _, body) = get(&app, "/rrd/jobs").await;
    assert_eq!(status, StatusCode::OK);
    let page = html(&body);
    let card = |name: &str| {
        let start = page.find(&format!("id=\"job-{name}\"")).expect(name);
        page[start..].split("</li>").next().unwrap().to_owned()
    };
    assert!(card("asleep").contains(">paused<"), "{}", card("asleep"));
    assert!(!card("awake").contains(">paused<"), "{}", card("awake"));
    assert!(card("awake").contains(">starting<"), "{}", card("awake"));
}
