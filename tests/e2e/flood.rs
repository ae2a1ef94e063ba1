//! Logs no client can flood (issue 23): a thousand bad requests of each
//! kind a remote party can send — garbage HTTP, bad query strings, wrong
//! passwords, forms without their token, bots with a wrong token, MQTT
//! payloads that are not values, CONNECTs with a wrong password — are
//! counted, and the log says each kind a few times at most.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;

/// Of each kind.
const BAD: usize = 1000;

/// A kind of bad request, and how to send the `i`th.
type Kind<'a> = (&'static str, Box<dyn Fn(usize) + 'a>);

/// Sends `request` on a connection of its own and reads the answer.
fn send_raw(port: u16, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

/// An HTTP/1.0 request with basic credentials, and its status.
fn http(port: u16, method: &str, path: &str, auth: &str, body: &str) -> u16 {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(auth);
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = send_raw(port, request.as_bytes());
    String::from_utf8_lossy(&answer)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A metric's value, read as the admin (`name` with its labels).
fn metric_as_admin(port: u16, name: &str) -> u64 {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("root:s3cret-pass");
    let request = format!("GET /metrics HTTP/1.0\r\nAuthorization: Basic {auth}\r\n\r\n");
    let answer = String::from_utf8_lossy(&send_raw(port, request.as_bytes())).into_owned();
    let line = format!("datalog_rrd_{name} ");
    answer
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// An MQTT 3.1.1 CONNECT with a user name and password; the CONNACK's
/// return code.
fn mqtt_connect(port: u16, user: &str, password: &str) -> u8 {
    let mut variable = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60];
    for field in ["flood", user, password] {
        variable.extend_from_slice(&(field.len() as u16).to_be_bytes());
        variable.extend_from_slice(field.as_bytes());
    }
    let mut packet = vec![0x10, variable.len() as u8];
    packet.extend(variable);
    let answer = send_raw(port, &packet);
    answer.get(3).copied().unwrap_or(0xff)
}

#[test]
fn a_thousand_bad_requests_of_each_kind_write_a_few_log_lines() {
    let (mqtt_port, web_port) = (free_port(), free_port());
    let config = format!(
        "[mqtt]\nbroker = \"embedded\"\nclient_id = \"flood-{mqtt_port}\"\n\
         [embedded_broker]\nlisten = \"127.0.0.1:{mqtt_port}\"\n\
         [[embedded_broker.users]]\nname = \"sensor\"\npassword_hash = \"{hash}\"\n\
         [cache]\nflush_after = \"1h\"\n\
         [web]\nlisten = \"127.0.0.1:{web_port}\"\n\
         [[web.users]]\nname = \"root\"\npassword_hash = \"{hash}\"\nrole = \"admin\"\n\
         [[web.bots]]\nname = \"garden\"\ntoken_hash = \"{hash}\"\n",
        hash = hash_password("s3cret-pass"),
    );
    // The binary's default filter (`--log`), as the packaged unit runs it.
    let daemon = Daemon::start_with_log(&config, "info,rumqttd=off");
    let quiet_from = daemon.log().len();
    let started = Instant::now();
    let kinds: [Kind; 7] = [
        (
            "garbage HTTP",
            Box::new(|i| {
                send_raw(
                    web_port,
                    format!("\x16\x03\x01 garbage {i}\r\n\r\n").as_bytes(),
                );
            }),
        ),
        (
            "bad query strings",
            Box::new(|i| {
                let status = http(
                    web_port,
                    "GET",
                    &format!("/rrd/events.json?range=x{i}"),
                    "root:s3cret-pass",
                    "",
                );
                assert_eq!(status, 400);
            }),
        ),
        (
            "wrong passwords",
            Box::new(|i| {
                let status = http(web_port, "GET", "/rrd", &format!("user{i}:wrong"), "");
                assert!(matches!(status, 401 | 429), "{status}");
            }),
        ),
        (
            "forms without their token",
            Box::new(|i| {
                let status = http(
                    web_port,
                    "POST",
                    "/rrd/events/add",
                    "root:s3cret-pass",
                    &format!("csrf={i}&text=x"),
                );
                assert_eq!(status, 403);
            }),
        ),
        (
            "bots with a wrong token",
            Box::new(|i| {
                let request = format!(
                    "POST /rrd/api/values HTTP/1.0\r\nAuthorization: Bearer garden:wrong{i}\r\n\
                     Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
                );
                let answer =
                    String::from_utf8_lossy(&send_raw(web_port, request.as_bytes())).into_owned();
                assert!(
                    answer.contains(" 401 ") || answer.contains(" 429 "),
                    "{answer}"
                );
            }),
        ),
        // Before the wrong passwords: they lock the account for a while.
        ("payloads that are not values", Box::new(|_| {})),
        (
            "CONNECTs with a wrong password",
            Box::new(|_| {
                // 4: bad user name or password; 5: not authorised.
                assert!(matches!(mqtt_connect(mqtt_port, "sensor", "wrong"), 4 | 5));
            }),
        ),
    ];
    let mut lines_per_kind = Vec::new();
    for (kind, send) in &kinds {
        let before = daemon.log().len();
        if *kind == "payloads that are not values" {
            let payloads: Vec<String> = (0..BAD).map(|i| format!("{{\"broken\": [{i}")).collect();
            let mut child = mosquitto_pub(
                mqtt_port,
                "home/flood/sensor",
                &["-l", "-u", "sensor", "-P", "s3cret-pass"],
            )
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            for p in &payloads {
                writeln!(stdin, "{p}").unwrap();
            }
            drop(stdin);
            assert!(child.wait().unwrap().success());
            wait_for(Duration::from_secs(30), "the payloads refused", || {
                (metric_as_admin(web_port, "rejected_total{reason=\"bad_json\"}") >= BAD as u64)
                    .then_some(())
            });
        } else {
            for i in 0..BAD {
                send(i);
            }
        }
        let said = daemon.log()[before..].lines().count();
        lines_per_kind.push((*kind, said));
    }
    // The per-minute summary of broken HTTP connections.
    let log = daemon.log();
    let flood_log = &log[quiet_from..];
    for (kind, said) in &lines_per_kind {
        assert!(
            *said <= 3,
            "{BAD} {kind} wrote {said} log lines:\n{flood_log}"
        );
    }
    let total = flood_log.lines().count();
    assert!(
        total <= 12,
        "{total} log lines for {} bad requests:\n{flood_log}",
        BAD * kinds.len()
    );
    assert!(!flood_log.contains("ERROR"), "{flood_log}");
    assert!(
        metric_as_admin(web_port, "http_bad_requests_total") >= BAD as u64,
        "garbage HTTP counted"
    );
    assert!(metric_as_admin(web_port, "http_auth_failures_total") >= BAD as u64);
    eprintln!(
        "{} bad requests in {:?}: {lines_per_kind:?}",
        BAD * kinds.len(),
        started.elapsed()
    );
}
