//! Values pushed over HTTP by a bot, as a cron script with `curl` would.

use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// `curl -X POST` with a bearer token (or basic credentials): the status
/// and the body.
fn push(url: &str, auth: &str, body: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", "POST"])
        .args(["-H", auth, "-H", "Content-Type: application/json"])
        .args(["--data-binary", body, url])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap();
    (code.trim().parse().unwrap(), body.to_owned())
}

/// A counter of `/metrics`, read as the admin alice.
fn rejected(daemon: &Daemon, reason: &str) -> u64 {
    let out = Command::new("curl")
        .args(["-s", "-u", "alice:pw"])
        .arg(format!("{}/metrics", daemon.web_url()))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = format!("datalog_rrd_rejected_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in {text}"))
}

#[test]
fn bots_push_values_within_their_filters() {
    let broker = Mosquitto::start();
    let token_hash = hash_password("s3cret");
    let user_hash = hash_password("pw");
    let config = format!(
        "{}[web]\nlisten = \"127.0.0.1:0\"\n\
         [[web.users]]\nname = \"alice\"\npassword_hash = \"{user_hash}\"\n\
         [[web.bots]]\nname = \"garden\"\ntoken_hash = \"{token_hash}\"\npublish = [\"%u/#\"]\n",
        external(broker.port, "1s"),
    );
    let daemon = Daemon::start(&config);
    let url = format!("{}/rrd/api/values", daemon.web_url());
    let bearer = "Authorization: Bearer garden:s3cret";
    let ts = now_s() - 30;
    let (status, body) = push(
        &url,
        bearer,
        &format!(
            r#"{{"ts": {ts}, "garden/soil": 41.5, "garden/shed": {{"temp": 7.5}}, "garden/x": "warm"}}"#
        ),
    );
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["accepted"], 2, "{body}");
    assert_eq!(answer["refused"][0]["reason"], "not_numeric", "{body}");
    // In the journal when answered; in the file once flushed.
    daemon.flush();
    let soil = daemon.data().join("garden/soil.rrd");
    let rows = wait_for(Duration::from_secs(20), "the pushed value", || {
        let rows = soil.exists().then(|| fetch(&soil, ts - 120, now_s()))?;
        (!rows.is_empty()).then_some(rows)
    });
    assert!(rows.iter().any(|(_, v)| *v == 41.5), "{rows:?}");
    assert!(daemon.data().join("garden/shed/temp.rrd").exists());
    // Outside its filters: refused whole, counted.
    let (status, body) = push(&url, bearer, r#"{"garden/ok": 1, "house/door": 1}"#);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("house/door"), "{body}");
    assert_eq!(rejected(&daemon, "not_allowed"), 1);
    // Wrong token, no token, a web user's password: 401.
    for auth in [
        "Authorization: Bearer garden:wrong",
        "Authorization: Bearer nobody:s3cret",
        "X-Nothing: 1",
        "Authorization: Basic YWxpY2U6cHc=",
    ] {
        let (status, body) = push(&url, auth, r#"{"garden/soil": 1}"#);
        assert_eq!(status, 401, "{auth}: {body}");
    }
    // Not JSON: 400, counted.
    let (status, _) = push(&url, bearer, "soil=1");
    assert_eq!(status, 400);
    assert_eq!(rejected(&daemon, "bad_json"), 1);
    assert!(!daemon.data().join("garden/ok.rrd").exists());
}
