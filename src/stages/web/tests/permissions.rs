//! The permissions matrix: every route behind authentication (the list the
//! router is built from, so a new route cannot be left out), requested by a
//! viewer, an editor and an admin, with every file, device and dashboard.
//!
//! The oracle: what a user gets from the daemon must be exactly what they
//! would get from a daemon that never had the files their groups hide —
//! same status, same content type, same body (text with digits masked, as
//! ages tick; images byte for byte, drawn in the same second). So no
//! response says whether a hidden file exists, nor draws, lists or counts
//! one. The admin's requests check the other way round: they see all.

use super::*;

/// Each group has a meter too (`z2m/+/energy`, a kWh counter by the rule
/// below): the energy overview must list only the user's.
const KITCHEN: [&str; 3] = [
    "z2m/kitchen/temperature",
    "z2m/kitchen/humidity",
    "z2m/kitchen/energy",
];
const GARAGE: [&str; 2] = ["z2m/garage/temperature", "z2m/garage/energy"];
/// A janitoo-style file with a series of each group: neither viewer sees it.
const MIXED_FILE: &str = "mixed/climate";
const MIXED: [&str; 2] = ["z2m/kitchen/pressure", "z2m/garage/pressure"];

fn config(hash: &str) -> String {
    format!(
        r##"[[rule]]
topics = ["z2m/+/energy"]
unit = "kWh"
ds_type = "DDERIVE"

[[file]]
path = "{MIXED_FILE}"
ds = [
  {{ name = "kitchen", series = "{}" }},
  {{ name = "garage", series = "{}" }},
]

[[dashboard]]
name = "house"
[[dashboard.view]]
title = "Temperatures"
series = [{{ series = "z2m/kitchen/temperature" }}, {{ series = "z2m/garage/temperature" }}]
warning = 21.0

[[dashboard]]
name = "garage-only"
groups = ["garage"]
[[dashboard.view]]
title = "Garage"
series = [{{ series = "z2m/garage/temperature" }}]

[[dashboard_rule]]
name = "rooms"
series = "z2m/+room/#"

[web]
[[web.groups]]
name = "kitchen"
series = ["z2m/kitchen/#"]
[[web.groups]]
name = "garage"
series = ["z2m/garage/#"]
[[web.users]]
name = "kit"
password_hash = "{hash}"
role = "viewer"
groups = ["kitchen"]
[[web.users]]
name = "gar"
password_hash = "{hash}"
role = "editor"
groups = ["garage"]
[[web.users]]
name = "root"
password_hash = "{hash}"
role = "admin"
"##,
        MIXED[0], MIXED[1]
    )
}

/// Every URI to request for a route pattern; panics on a pattern this
/// test does not know how to fill, so that a new route gets a thought.
fn uris(pattern: &str, files: &[&str]) -> Vec<String> {
    let devices = ["z2m/kitchen", "z2m/garage", "mixed"];
    let dashboards = ["house", "garage-only", "rooms:kitchen", "rooms:garage"];
    match pattern {
        "/" | "/metrics" | "/rrd/index.txt" | "/rrd/index.json" | "/rrd/dashboards"
        | "/rrd/jobs" => {
            vec![pattern.to_owned()]
        }
        "/rrd" | "/rrd/" => {
            let mut all = vec![pattern.to_owned(), format!("{pattern}?q=temperature")];
            for d in devices {
                all.push(format!("{pattern}?device={d}"));
                all.push(format!("{pattern}?q={d}"));
            }
            all.push(format!("{pattern}?group=z2m"));
            all.push(format!("{pattern}?group=mixed"));
            all
        }
        "/rrd/static/{name}" => vec!["/rrd/static/style.css".into()],
        "/rrd/dashboards/edit" => vec![pattern.into(), format!("{pattern}?name=house")],
        "/rrd/jobs/edit" => vec![pattern.into(), format!("{pattern}?name=nas")],
        "/rrd/events.json" => {
            let mut all = vec![format!("{pattern}?range=day")];
            all.extend(
                devices
                    .iter()
                    .map(|d| format!("{pattern}?range=day&device={d}")),
            );
            all
        }
        "/rrd/dygraphs/{name}" => vec!["/rrd/dygraphs/dygraph.min.js".into()],
        "/rrd/device-dashboard" => devices
            .iter()
            .map(|d| format!("{pattern}?device={d}"))
            .collect(),
        "/rrd/device-dashboard/view.png" => devices
            .iter()
            .map(|d| format!("{pattern}?device={d}&view=0"))
            .collect(),
        "/rrd/dashboard/{name}" => dashboards
            .iter()
            .map(|d| format!("/rrd/dashboard/{d}"))
            .collect(),
        "/rrd/dashboard/{name}/{view}" => dashboards
            .iter()
            .map(|d| format!("/rrd/dashboard/{d}/0.png"))
            .collect(),
        "/rrd/file/{path:.*}" => files.iter().map(|f| format!("/rrd/file/{f}")).collect(),
        "/rrd/graph/{path:.*}" => files
            .iter()
            .map(|f| format!("/rrd/graph/{f}.png"))
            .collect(),
        "/rrd/data/{path:.*}" => files
            .iter()
            .flat_map(|f| {
                ["json", "csv", "rrd"].map(|ext| format!("/rrd/data/{f}.{ext}?range=day"))
            })
            .collect(),
        "/rrd/energy" => vec![pattern.into()],
        "/rrd/energy/{path:.*}" => files
            .iter()
            .flat_map(|f| {
                ["", ".png", ".json", ".csv"].map(|ext| format!("/rrd/energy/{f}{ext}?per=day"))
            })
            .collect(),
        other => panic!("the permissions test does not know how to request {other:?}: teach it"),
    }
}

/// A daemon holding the files of `series` (and the mixed file if asked),
/// fed the same values at the same times as every other one here.
async fn daemon(hash: &str, series: &[&str], mixed: bool, base_ms: i64) -> Fixture {
    let f = fixture(&config(hash));
    let mut samples: Vec<Sample> = Vec::new();
    let mut all: Vec<&str> = series.to_vec();
    if mixed {
        all.extend(MIXED);
    }
    for s in &all {
        for i in 0..10 {
            samples.push(Sample {
                series: (*s).into(),
                time_ms: base_ms - (10 - i) * 60_000,
                value: 20.0 + i as f64,
            });
        }
    }
    f.state.cache.add(0, samples, None).await.unwrap();
    f.state.cache.flush_all().await.unwrap();
    // The same events in every daemon: events are not files.
    for (device, text) in [
        (Some("z2m/garage"), "garage door fixed"),
        (Some("z2m/kitchen"), "oven cleaned"),
        (None, "power cut"),
    ] {
        let event = crate::events::Event {
            time_s: base_ms / 1000 - 300,
            text: text.into(),
            device: device.map(Into::into),
        };
        f.state.events.add(event).await.unwrap();
    }
    let files = series.len() + usize::from(mixed);
    for _ in 0..100 {
        if f.state.rrd.index().len() >= files {
            return f;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the index did not list {files} files");
}

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    /// Text with digits masked (ages and times tick) and form tokens
    /// blanked (each daemon draws its own); images as they are;
    /// a raw RRD file by its length (librrd starts each archive at a
    /// random row, so two files of the same data differ there).
    fn comparable(&self) -> Vec<u8> {
        if self.content_type.contains("octet-stream") {
            self.body.len().to_le_bytes().to_vec()
        } else if self.content_type.starts_with("image/") {
            self.body.clone()
        } else {
            let mut text: Vec<u8> = self
                .body
                .iter()
                .map(|&b| if b.is_ascii_digit() { b'0' } else { b })
                .collect();
            let marker = b"name=\"csrf\" value=\"";
            let mut at = 0;
            while let Some(i) = text[at..].windows(marker.len()).position(|w| w == marker) {
                let start = at + i + marker.len();
                let end = text[start..]
                    .iter()
                    .position(|&b| b == b'"')
                    .map_or(text.len(), |e| start + e);
                text.drain(start..end);
                at = start;
            }
            text
        }
    }

    fn describe(&self) -> String {
        let body = if self.content_type.starts_with("text/") || self.content_type.contains("json") {
            text(&self.body)
        } else {
            format!("{} bytes", self.body.len())
        };
        format!("{} {} {body}", self.status, self.content_type)
    }
}

async fn ask<S, B>(app: &S, user: &str, uri: &str) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    use base64::Engine as _;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:s3cret"))
    );
    let req = atest::TestRequest::get()
        .uri(uri)
        .insert_header(("Authorization", auth))
        .to_request();
    let (status, content_type, body) = send(app, req).await;
    Answer {
        status,
        content_type,
        body,
    }
}

#[actix_web::test]
async fn no_response_reveals_a_file_outside_the_users_groups() {
    let hash = crate::password::hash_password("s3cret").unwrap();
    let base_ms = now_ms() / 60_000 * 60_000;
    let every_series: Vec<&str> = KITCHEN.iter().chain(&GARAGE).copied().collect();
    let full = daemon(&hash, &every_series, true, base_ms).await;
    let full_app = app!(full);
    let mut files: Vec<&str> = every_series.clone();
    files.push(MIXED_FILE);
    // Each user, and the daemon that never had what their groups hide.
    let worlds = [("kit", &KITCHEN[..]), ("gar", &GARAGE[..])];
    let mut compared = 0;
    for (user, visible) in worlds {
        let own = daemon(&hash, visible, false, base_ms).await;
        let own_app = app!(own);
        for &(method, pattern) in AUTHENTICATED_ROUTES {
            if method != "get" {
                // Forms: `editors_make_dashboards…` below.
                continue;
            }
            for uri in uris(pattern, &files) {
                // Drawn in the same second, or asked again.
                let mut last = None;
                for _ in 0..3 {
                    let got = ask(&full_app, user, &uri).await;
                    let expected = ask(&own_app, user, &uri).await;
                    let same = got.status == expected.status
                        && got.content_type == expected.content_type
                        && got.comparable() == expected.comparable();
                    if same {
                        last = None;
                        break;
                    }
                    last = Some((got, expected));
                }
                if let Some((got, expected)) = last {
                    panic!(
                        "{user} {uri}: {}\nbut without the hidden files: {}",
                        got.describe(),
                        expected.describe()
                    );
                }
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "only {compared} requests compared");

    // The other way round: an admin sees every file, and only admins see
    // /metrics; a viewer gets their own files.
    for f in &files {
        for uri in [format!("/rrd/file/{f}"), format!("/rrd/graph/{f}.png")] {
            let a = ask(&full_app, "root", &uri).await;
            assert_eq!(a.status, StatusCode::OK, "root {uri}");
        }
    }
    assert_eq!(
        ask(&full_app, "root", "/metrics").await.status,
        StatusCode::OK
    );
    assert_eq!(
        ask(&full_app, "kit", "/metrics").await.status,
        StatusCode::FORBIDDEN
    );
    // The poll jobs page, and pushing values (bots only), likewise.
    assert_eq!(
        ask(&full_app, "root", "/rrd/jobs").await.status,
        StatusCode::OK
    );
    for user in ["kit", "gar"] {
        assert_eq!(
            ask(&full_app, user, "/rrd/jobs").await.status,
            StatusCode::FORBIDDEN
        );
    }
    let own = ask(&full_app, "kit", "/rrd/graph/z2m/kitchen/temperature.png").await;
    assert_eq!(
        (own.status, own.content_type.as_str()),
        (StatusCode::OK, "image/png")
    );
    let hidden = ask(&full_app, "kit", "/rrd/graph/z2m/garage/temperature.png").await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    // A dashboard shared with a group is for its members.
    let shared = "/rrd/dashboard/garage-only";
    assert_eq!(
        ask(&full_app, "kit", shared).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(ask(&full_app, "gar", shared).await.status, StatusCode::OK);
    let list = html(&ask(&full_app, "kit", "/rrd/dashboards").await.body);
    assert!(
        !list.contains("garage-only") && list.contains("house"),
        "{list}"
    );
    let events = html(
        &ask(&full_app, "kit", "/rrd/events.json?range=day")
            .await
            .body,
    );
    assert!(
        events.contains("oven cleaned") && events.contains("power cut"),
        "{events}"
    );
    assert!(!events.contains("garage door"), "{events}");
    let index = html(&ask(&full_app, "kit", "/rrd/index.txt").await.body);
    assert_eq!(
        index,
        "z2m/kitchen/energy|z2m/kitchen/humidity|z2m/kitchen/temperature"
    );
    // The energy overview lists the user's meter, not the garage's.
    let meters = html(&ask(&full_app, "kit", "/rrd/energy").await.body);
    assert!(
        meters.contains("/rrd/energy/z2m/kitchen/energy"),
        "{meters}"
    );
    assert!(!meters.contains("garage"), "{meters}");
}

/// Dashboards made in the browser: editors make them (checked like the
/// config's, shared only with their own groups), viewers cannot, a form
/// needs its token and the same origin, and they survive a restart.
#[actix_web::test]
async fn editors_make_dashboards_viewers_cannot_and_forms_need_their_token() {
    let hash = crate::password::hash_password("s3cret").unwrap();
    let base_ms = now_ms() / 60_000 * 60_000;
    let f = daemon(&hash, &GARAGE, false, base_ms).await;
    let app = app!(f);
    let post = |user: &str, uri: &str, body: String, headers: Vec<(&'static str, &'static str)>| {
        post_as(user, uri, body, &headers)
    };
    // The form, and its token.
    let form = ask(&app, "gar", "/rrd/dashboards/edit").await;
    assert_eq!(form.status, StatusCode::OK);
    let page = html(&form.body);
    assert!(
        page.contains("z2m/garage/temperature"),
        "the series to pick"
    );
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_owned();
    assert_eq!(token.len(), 64);
    let body = |token: &str, groups: &str| {
        format!(
            "csrf={token}&name=shed&title=Shed&range=week{groups}&v0.title=Heat&v0.order=0\
             &v0.series=z2m%2Fgarage%2Ftemperature+%7C+Shed+%7C+%23ff7f0e+%7C+area&v0.warning=30\
             &v0.critical=&v0.add="
        )
    };
    let status = |res: ServiceResponse| res.status();
    // A viewer may not; a stale token, another site or another group's
    // sharing neither.
    for (user, token, groups, headers, expected) in [
        ("kit", token.as_str(), "", vec![], StatusCode::FORBIDDEN),
        ("gar", "0000", "", vec![], StatusCode::FORBIDDEN),
        (
            "gar",
            token.as_str(),
            "",
            vec![("Sec-Fetch-Site", "cross-site")],
            StatusCode::FORBIDDEN,
        ),
        (
            "gar",
            token.as_str(),
            "",
            vec![
                ("Origin", "http://evil.example"),
                ("Host", "localhost:8088"),
            ],
            StatusCode::FORBIDDEN,
        ),
        (
            "gar",
            token.as_str(),
            "&groups=kitchen",
            vec![],
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = atest::call_service(
            &app,
            post(user, "/rrd/dashboards/save", body(token, groups), headers),
        )
        .await;
        assert_eq!(status(res), expected, "{user} {token} {groups}");
    }
    assert!(f.state.saved.get("shed").is_none(), "nothing saved so far");
    // Bad input comes back as the form, with each problem named.
    let bad = body(&token, "&groups=garage").replace("v0.warning=30", "v0.warning=hot");
    let res = atest::call_service(&app, post("gar", "/rrd/dashboards/save", bad, vec![])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = html(&atest::read_body(res).await);
    assert!(page.contains("warning") && page.contains("hot"), "{page}");
    // The editor's own group: saved, shown, listed with its edit link.
    let res = atest::call_service(
        &app,
        post(
            "gar",
            "/rrd/dashboards/save",
            body(&token, "&groups=garage"),
            vec![("Sec-Fetch-Site", "same-origin")],
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers().get("Location").unwrap(),
        "/rrd/dashboard/shed"
    );
    let shown = ask(&app, "gar", "/rrd/dashboard/shed").await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(html(&shown.body).contains("Heat"));
    let png = ask(&app, "gar", "/rrd/dashboard/shed/0.png").await;
    assert_eq!(
        (png.status, png.content_type.as_str()),
        (StatusCode::OK, "image/png")
    );
    assert_eq!(
        ask(&app, "kit", "/rrd/dashboard/shed").await.status,
        StatusCode::NOT_FOUND,
        "shared with garage only"
    );
    assert!(
        html(&ask(&app, "gar", "/rrd/dashboards").await.body)
            .contains("/rrd/dashboards/edit?name=shed")
    );
    // A configuration dashboard stays read-only.
    let taken = body(&token, "").replace("name=shed", "name=house");
    let res = atest::call_service(&app, post("gar", "/rrd/dashboards/save", taken, vec![])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        ask(&app, "gar", "/rrd/dashboards/edit?name=house")
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Stored as one document under data_dir: a restart reads it back.
    let again = dashboards::Saved::load(&f.state.config.borrow().data_dir, &f.state.groups);
    let shed = again.get("shed").expect("the dashboard survives a restart");
    assert_eq!(
        (shed.range.as_str(), shed.views[0].series[0].draw),
        ("week", crate::model::Draw::Area)
    );

    // Events: an editor notes one about a device of theirs, not another's.
    let list = html(&ask(&app, "gar", "/rrd/dashboards").await.body);
    assert!(
        list.contains("action=\"/rrd/events/add\""),
        "the event form"
    );
    let note = |device: &str| format!("csrf={token}&text=New+door&device={device}&time=");
    let res = atest::call_service(
        &app,
        post("gar", "/rrd/events/add", note("z2m/kitchen"), vec![]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = atest::call_service(&app, post("kit", "/rrd/events/add", note(""), vec![])).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN, "viewers do not");
    let res = atest::call_service(
        &app,
        post("gar", "/rrd/events/add", note("z2m/garage"), vec![]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let seen = html(
        &ask(
            &app,
            "gar",
            "/rrd/events.json?range=day&device=z2m/garage/temperature",
        )
        .await
        .body,
    );
    assert!(seen.contains("New door"), "{seen}");
    assert!(!html(&ask(&app, "kit", "/rrd/events.json?range=day").await.body).contains("New door"));

    // Deleted by its editor.
    let res = atest::call_service(
        &app,
        post(
            "gar",
            "/rrd/dashboards/delete",
            format!("csrf={token}&name=shed"),
            vec![],
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        ask(&app, "gar", "/rrd/dashboard/shed").await.status,
        StatusCode::NOT_FOUND
    );
    let again = dashboards::Saved::load(&f.state.config.borrow().data_dir, &f.state.groups);
    assert!(again.get("shed").is_none());
}

/// A form post as `user`, with extra headers.
fn post_as(
    user: &str,
    uri: &str,
    body: String,
    headers: &[(&'static str, &'static str)],
) -> actix_http::Request {
    use base64::Engine as _;
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:s3cret"))
    );
    let mut req = atest::TestRequest::post()
        .uri(uri)
        .insert_header(("Authorization", auth))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload(body);
    for h in headers {
        req = req.insert_header(*h);
    }
    req.to_request()
}

/// Poll jobs made in the browser: only admins reach the page and its
/// forms (an editor makes dashboards, not network probes), a form needs its
/// token and the same origin, bad fields come back named, the file's jobs
/// stay read-only, and the list is stored readable by the daemon alone,
/// password included, never shown back.
#[actix_web::test]
async fn admins_manage_poll_jobs_and_no_one_else_does() {
    let hash = crate::password::hash_password("s3cret").unwrap();
    let f = fixture(&format!(
        "[[poll]]\nname = \"router\"\nkind = \"ping\"\ntarget = \"127.0.0.1\"\n{}",
        config(&hash)
    ));
    let app = app!(f);
    for user in ["kit", "gar"] {
        for uri in ["/rrd/jobs", "/rrd/jobs/edit"] {
            assert_eq!(
                ask(&app, user, uri).await.status,
                StatusCode::FORBIDDEN,
                "{user} {uri}"
            );
        }
    }
    let form = ask(&app, "root", "/rrd/jobs/edit").await;
    assert_eq!(form.status, StatusCode::OK);
    let token = html(&form.body)
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .unwrap()
        .to_owned();
    let body = |token: &str, interval: &str| {
        format!(
            "csrf={token}&name=nas&kind=snmp&target=10.0.0.5&interval={interval}&timeout=&prefix=\
             &include=&exclude=&labels=&profile=if&community=&oids=&packets=\
             &username=monitor&password=s3cret-auth"
        )
    };
    let post = |user: &str, uri: &str, body: String, headers: &[(&'static str, &'static str)]| {
        post_as(user, uri, body, headers)
    };
    for (user, token, headers) in [
        ("kit", token.as_str(), vec![]),
        ("gar", token.as_str(), vec![]),
        ("root", "0000", vec![]),
        (
            "root",
            token.as_str(),
            vec![("Sec-Fetch-Site", "cross-site")],
        ),
        (
            "root",
            token.as_str(),
            vec![
                ("Origin", "http://evil.example"),
                ("Host", "localhost:8088"),
            ],
        ),
    ] {
        let res = atest::call_service(
            &app,
            post(user, "/rrd/jobs/save", body(token, "5m"), &headers),
        )
        .await;
        assert_eq!(
            res.status(),
            StatusCode::FORBIDDEN,
            "{user} {token} {headers:?}"
        );
    }
    assert!(
        f.state.stored_jobs.all().is_empty(),
        "nothing stored so far"
    );
    // Bad fields come back as the form, each named, what was typed kept.
    let res = atest::call_service(
        &app,
        post("root", "/rrd/jobs/save", body(&token, "7s"), &[]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let page = html(&atest::read_body(res).await);
    assert!(
        page.contains("interval: must be whole seconds that divide 30m"),
        "{page}"
    );
    assert!(page.contains("value=\"10.0.0.5\""), "what was typed stays");
    assert!(
        !page.contains("s3cret-auth"),
        "a password is never sent back"
    );
    // The file's job stays read-only.
    let taken = body(&token, "5m").replace("name=nas", "name=router");
    let res = atest::call_service(&app, post("root", "/rrd/jobs/save", taken, &[])).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        ask(&app, "root", "/rrd/jobs/edit?name=router").await.status,
        StatusCode::FORBIDDEN
    );
    // Saved: stored, listed with its buttons, the password kept apart.
    let res = atest::call_service(
        &app,
        post(
            "root",
            "/rrd/jobs/save",
            body(&token, "5m"),
            &[("Sec-Fetch-Site", "same-origin")],
        ),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers().get("Location").unwrap(), "/rrd/jobs#job-nas");
    let path = crate::config::browser_jobs::path(&f.state.config.borrow().data_dir);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "jobs.json holds passwords");
    }
    let stored = crate::config::browser_jobs::read(path.parent().unwrap()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].profile.as_deref(), stored[0].password.as_deref()),
        (Some("if"), Some("s3cret-auth"))
    );
    let list = html(&ask(&app, "root", "/rrd/jobs").await.body);
    assert!(
        list.contains("id=\"job-nas\"") && list.contains("action=\"/rrd/jobs/pause\""),
        "{list}"
    );
    assert!(
        list.contains("From the configuration file."),
        "the file's job, read-only"
    );
    let edit = html(&ask(&app, "root", "/rrd/jobs/edit?name=nas").await.body);
    assert!(edit.contains("(stored; empty keeps it)") && !edit.contains("s3cret-auth"));
    // A second "new" job of that name is refused; an edit keeps the
    // password when its field is left empty.
    let res = atest::call_service(
        &app,
        post("root", "/rrd/jobs/save", body(&token, "1m"), &[]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "the name is taken");
    let edited = body(&token, "1m").replace("password=s3cret-auth", "password=") + "&existing=1";
    let res = atest::call_service(&app, post("root", "/rrd/jobs/save", edited, &[])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let nas = f.state.stored_jobs.get("nas").unwrap();
    assert_eq!(
        (nas.interval, nas.password.as_deref()),
        (Some(Duration::from_secs(60)), Some("s3cret-auth"))
    );
    // Paused and resumed, then removed; never by an editor.
    let named = |extra: &str| format!("csrf={token}&name=nas{extra}");
    let res = atest::call_service(&app, post("gar", "/rrd/jobs/pause", named(""), &[])).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = atest::call_service(
        &app,
        post("root", "/rrd/jobs/pause", named("&paused=1"), &[]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(f.state.stored_jobs.get("nas").unwrap().paused);
    let res = atest::call_service(
        &app,
        post("root", "/rrd/jobs/pause", named("&paused=0"), &[]),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(!f.state.stored_jobs.get("nas").unwrap().paused);
    let res = atest::call_service(
        &app,
        post(
            "root",
            "/rrd/jobs/delete",
            format!("csrf={token}&name=router"),
            &[],
        ),
    )
    .await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the file's job is not the browser's to remove"
    );
    let res = atest::call_service(&app, post("gar", "/rrd/jobs/delete", named(""), &[])).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = atest::call_service(&app, post("root", "/rrd/jobs/delete", named(""), &[])).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        crate::config::browser_jobs::read(path.parent().unwrap())
            .unwrap()
            .is_empty()
    );
}
