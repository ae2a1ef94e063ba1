//! The embedded broker on a home network: device accounts with argon2
//! passwords, TLS with a CA made here, as LAN devices use it
//! (`mosquitto_pub`), the daemon connecting with its own credentials.

use std::time::Duration;

use crate::broker_auth::make_certificates;
use crate::support::*;

/// `mosquitto_pub` as a device would: its exit status.
fn device_publishes(port: u16, topic: &str, value: &str, more: &[&str]) -> bool {
    mosquitto_pub(port, topic, &[&["-m", value][..], more].concat())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn devices_need_their_password_and_may_use_tls() {
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let (port, tls_port) = (free_port(), free_port());
    let daemon = Daemon::start(&format!(
        "[mqtt]\nbroker = \"embedded\"\nclient_id = \"embedded-{port}\"\n\
         [embedded_broker]\nlisten = \"127.0.0.1:{port}\"\ntls_listen = \"127.0.0.1:{tls_port}\"\n\
         cert_file = \"{}\"\nkey_file = \"{}\"\n\
         [[embedded_broker.users]]\nname = \"sensor\"\npassword_hash = \"{}\"\n\
         [cache]\nflush_after = \"1h\"\n",
        certs.path().join("server.pem").display(),
        certs.path().join("server.key").display(),
        hash_password("plant-42"),
    ));
    // No password, a wrong one: refused, nothing logged.
    assert!(!device_publishes(port, "garden/anon", "1", &[]));
    assert!(!device_publishes(
        port,
        "garden/wrong",
        "2",
        &["-u", "sensor", "-P", "plant-41"]
    ));
    // The right one, in clear and over TLS with the CA: logged.
    assert!(device_publishes(
        port,
        "garden/soil",
        "23.5",
        &["-u", "sensor", "-P", "plant-42", "-q", "1"]
    ));
    let ca = certs.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    assert!(
        device_publishes(
            tls_port,
            "garden/tls",
            "7.25",
            // By name: rustls refuses an IP address as TLS server name.
            &[
                "-h",
                "localhost",
                "-u",
                "sensor",
                "-P",
                "plant-42",
                "-q",
                "1",
                "--cafile",
                ca
            ]
        ),
        "{}",
        daemon.log()
    );
    // TLS without the password is refused too.
    assert!(!device_publishes(
        tls_port,
        "garden/tls-anon",
        "3",
        &["-h", "localhost", "--cafile", ca]
    ));
    daemon.wait_log("Samples taken", 2);
    daemon.flush();
    for (file, value) in [("garden/soil", 23.5), ("garden/tls", 7.25)] {
        let rows = fetch(
            &daemon.data().join(format!("{file}.rrd")),
            now_s() - 300,
            now_s() + 120,
        );
        assert!(rows.iter().any(|(_, v)| *v == value), "{file}: {rows:?}");
    }
    for refused in ["garden/anon", "garden/wrong", "garden/tls-anon"] {
        assert!(
            !daemon.data().join(format!("{refused}.rrd")).exists(),
            "{refused} logged"
        );
    }
    // Every refusal counted, by reason: the two without credentials (plain
    // and TLS) and the wrong password.
    assert_eq!(refused(&daemon, "no_credentials"), 2);
    assert_eq!(refused(&daemon, "bad_password"), 1);
    assert!(
        daemon
            .log()
            .contains("Embedded broker refused a connection")
    );
}

/// `broker_refused_total{reason}` from `/metrics`.
fn refused(daemon: &Daemon, reason: &str) -> u64 {
    metric(
        daemon,
        &format!("broker_refused_total{{reason=\"{reason}\"}}"),
    )
}

fn received(daemon: &Daemon) -> u64 {
    metric(daemon, "messages_received_total")
}

/// A device account publishes where its `publish` filters say, and
/// nowhere else: not into another device's topics, not into
/// `homeassistant/#`, not in its will. What it may not publish is
/// acknowledged (QoS 1 and 2 complete) but never logged.
#[test]
fn a_device_publishes_only_where_its_account_may() {
    let port = free_port();
    let daemon = Daemon::start(&format!(
        "[mqtt]\nbroker = \"embedded\"\nclient_id = \"rights-{port}\"\n\
         [embedded_broker]\nlisten = \"127.0.0.1:{port}\"\n\
         [[embedded_broker.users]]\nname = \"plug1\"\npassword_hash = \"{}\"\n\
         publish = [\"tele/%u/#\", \"shared/+/state\"]\n\
         [[embedded_broker.users]]\nname = \"bridge\"\npassword_hash = \"{}\"\n\
         [cache]\nflush_after = \"1h\"\n",
        hash_password("plug-pass"),
        hash_password("bridge-pass"),
    ));
    let plug = |topic: &str, value: &str, qos: &str| {
        device_publishes(
            port,
            topic,
            value,
            &["-u", "plug1", "-P", "plug-pass", "-q", qos],
        )
    };
    assert!(plug("tele/plug1/power", "11.5", "1"));
    assert!(plug("shared/kitchen/state", "1", "0"));
    // Refused, yet acknowledged at QoS 0, 1 and 2: the device moves on.
    assert!(plug("tele/plug2/power", "666", "1"));
    assert!(plug("homeassistant/sensor/fake", "666", "2"));
    assert!(plug("shared/kitchen/state/x", "666", "0"));
    // A will the account may not publish: the connection is refused.
    assert!(!device_publishes(
        port,
        "tele/plug1/power",
        "12",
        &[
            "-u",
            "plug1",
            "-P",
            "plug-pass",
            "--will-topic",
            "homeassistant/x",
            "--will-payload",
            "1"
        ]
    ));
    // The daemon's own client id is not for devices: rumqttd would drop
    // the daemon's session for it.
    assert!(!device_publishes(
        port,
        "tele/plug1/power",
        "13",
        &[
            "-u",
            "plug1",
            "-P",
            "plug-pass",
            "-i",
            &format!("rights-{port}")
        ]
    ));
    // An account without a list may publish anywhere.
    assert!(device_publishes(
        port,
        "tele/plug2/power",
        "22.5",
        &["-u", "bridge", "-P", "bridge-pass", "-q", "1"]
    ));
    daemon.wait_log("Samples taken", 3);
    daemon.flush();
    let value_of = |file: &str| {
        fetch(
            &daemon.data().join(format!("{file}.rrd")),
            now_s() - 300,
            now_s() + 120,
        )
        .into_iter()
        .map(|(_, v)| v)
        .find(|v| !v.is_nan())
    };
    assert_eq!(value_of("tele/plug1/power"), Some(11.5));
    assert_eq!(value_of("shared/kitchen/state"), Some(1.0));
    // plug2's file holds the bridge's value only, never plug1's 666.
    assert_eq!(value_of("tele/plug2/power"), Some(22.5));
    for refused in ["homeassistant/sensor/fake", "shared/kitchen/state/x"] {
        assert!(
            !daemon.data().join(format!("{refused}.rrd")).exists(),
            "{refused} logged"
        );
    }
    assert_eq!(
        refused(&daemon, "not_permitted"),
        5,
        "three publishes, a will, a client id"
    );
    assert!(daemon.log().contains("not_permitted"), "{}", daemon.log());
}

/// `max_publish_rate` slows a chatty device down; nothing it sent is lost.
#[test]
fn a_chatty_device_is_slowed_not_dropped() {
    let port = free_port();
    let daemon = Daemon::start(&format!(
        "[mqtt]\nbroker = \"embedded\"\nclient_id = \"rate-{port}\"\n\
         [embedded_broker]\nlisten = \"127.0.0.1:{port}\"\n\
         max_publish_rate = 20\npublish_burst = 5\n\
         [cache]\nflush_after = \"1h\"\n",
    ));
    let received_before = received(&daemon);
    // 45 messages on one connection (mosquitto_pub -l: a line each).
    let lines: String = (0..45).map(|i| format!("{i}\n")).collect();
    let started = std::time::Instant::now();
    let mut publisher = mosquitto_pub(port, "chatty/counter", &["-l", "-q", "1"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    publisher
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    assert!(publisher.wait().unwrap().success());
    // 5 at once, then 20 a second: the last 40 take 2 s at least.
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "took {took:?}: not paced"
    );
    daemon.wait_log("Samples taken", 1);
    wait_for(Duration::from_secs(20), "all 45 received", || {
        (received(&daemon) >= received_before + 45).then_some(())
    });
    assert!(refused(&daemon, "rate_limited") >= 35);
}

#[test]
fn a_public_listener_without_users_is_refused_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[embedded_broker]\nlisten = \"0.0.0.0:1883\"\n").unwrap();
    let out = std::process::Command::new(daemon_binary())
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("embedded_broker.listen") && err.contains("allow_anonymous"),
        "{err}"
    );
    std::fs::write(
        &config,
        "[embedded_broker]\nlisten = \"0.0.0.0:1883\"\nallow_anonymous = true\n",
    )
    .unwrap();
    let out = std::process::Command::new(daemon_binary())
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // An account on a public listener without `subscribe` may read every
    // device's values: allowed, and said.
    let account = |subscribe: &str| {
        format!(
            "[embedded_broker]\nlisten = \"0.0.0.0:1883\"\n\
             [[embedded_broker.users]]\nname = \"plug1\"\npassword_hash = \"{}\"\n{subscribe}",
            hash_password("plug-pass")
        )
    };
    let check = |text: String| {
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(daemon_binary())
            .arg("check-config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = check(account(""));
    assert!(
        said.contains("warning: embedded_broker.users[0].subscribe") && said.contains("'#'"),
        "{said}"
    );
    let said = check(account("subscribe = [\"cmnd/%u/#\"]\n"));
    assert!(!said.contains("warning"), "{said}");
}

/// A connection flood (idle sockets, wrong passwords) and an oversized
/// packet: the honest device's values are still logged, and the daemon's
/// memory stays bounded.
#[test]
fn a_flood_and_an_oversized_packet_do_not_stop_the_honest_device() {
    let port = free_port();
    let daemon = Daemon::start(&format!(
        "[mqtt]\nbroker = \"embedded\"\nclient_id = \"flood-{port}\"\n\
         [embedded_broker]\nlisten = \"127.0.0.1:{port}\"\nmax_connections = 50\n\
         [[embedded_broker.users]]\nname = \"sensor\"\npassword_hash = \"{}\"\n\
         [cache]\nflush_after = \"1h\"\n",
        hash_password("plant-42"),
    ));
    let honest = ["-u", "sensor", "-P", "plant-42", "-q", "1"];
    assert!(device_publishes(port, "garden/before", "1", &honest));
    // 30 wrong passwords (throttled after 5) and a 1 MiB payload over
    // limits.max_payload_bytes (64 KiB).
    for i in 0..30 {
        let _ = device_publishes(
            port,
            "garden/guess",
            "0",
            &["-u", "sensor", "-P", &format!("guess{i}")],
        );
    }
    let big = daemon.dir.path().join("big.payload");
    std::fs::write(&big, "9".repeat(1 << 20)).unwrap();
    let _ = mosquitto_pub(
        port,
        "garden/big",
        &[&["-f", big.to_str().unwrap()][..], &honest[..]].concat(),
    )
    .stderr(std::process::Stdio::null())
    .status();
    // 300 sockets that never say CONNECT: 50 held until the gate gives up
    // on them (10 s), the others turned away at once.
    let idle: Vec<std::net::TcpStream> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    // The honest device, after the user's lock (at most 32 s here).
    wait_for_every(
        Duration::from_secs(60),
        Duration::from_millis(500),
        "the honest device to get in",
        || device_publishes(port, "garden/after", "2.5", &honest).then_some(()),
    );
    drop(idle);
    daemon.wait_log("Samples taken", 2);
    daemon.flush();
    let rows = fetch(
        &daemon.data().join("garden/after.rrd"),
        now_s() - 300,
        now_s() + 120,
    );
    assert!(rows.iter().any(|(_, v)| *v == 2.5), "{rows:?}");
    assert!(!daemon.data().join("garden/big.rrd").exists());
    // Each kind of refusal counted: sockets beyond max_connections, the
    // ones that never sent a CONNECT, the guesses, the big packet.
    assert!(refused(&daemon, "too_many_connections") >= 200);
    assert!(refused(&daemon, "protocol") >= 1);
    // The guesses, and the honest device's tries while its user was locked.
    assert!(refused(&daemon, "bad_password") + refused(&daemon, "throttled") >= 30);
    assert_eq!(refused(&daemon, "oversized"), 1);
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    println!(
        "daemon peak RSS after the flood: {:.1} MB",
        peak_kb as f64 / 1024.0
    );
    // One argon2 block (19 MiB) at a time, given back after each check:
    // 134 MB here before malloc was told to (src/main.rs).
    assert!(peak_kb < 100 * 1024, "peak RSS {peak_kb} kB");
}

/// An MQTT 3.1.1 connection spoken by hand (rumqttc's codec), to see the
/// packets on the wire in their order.
struct Wire {
    stream: std::net::TcpStream,
    inbox: bytes::BytesMut,
}

impl Wire {
    fn connect(port: u16, user: &str, password: &str) -> Wire {
        use rumqttc::{Connect, Login, Packet};
        let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut wire = Wire {
            stream,
            inbox: bytes::BytesMut::new(),
        };
        let mut connect = Connect::new(format!("wire-{user}"));
        connect.login = Some(Login::new(user, password));
        wire.send(Packet::Connect(connect));
        match wire.next(Duration::from_secs(10)) {
            Some(Packet::ConnAck(ack)) => {
                assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success, "{user}")
            }
            other => panic!("no CONNACK for {user}: {other:?}"),
        }
        wire
    }

    fn send(&mut self, packet: rumqttc::Packet) {
        use std::io::Write;
        let mut bytes = bytes::BytesMut::new();
        packet.write(&mut bytes, usize::MAX).unwrap();
        self.stream.write_all(&bytes).unwrap();
    }

    /// The next packet within `limit`, if one comes.
    fn next(&mut self, limit: Duration) -> Option<rumqttc::Packet> {
        use std::io::Read;
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Ok(packet) = rumqttc::Packet::read(&mut self.inbox, 1 << 20) {
                return Some(packet);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            let mut buf = [0u8; 4096];
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.inbox.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
        }
    }
}

/// A device account subscribes only within its `subscribe` filters: `#`
/// and another device's topics get the failure code (0x80) in the SUBACK,
/// are counted, and deliver nothing; its own command topic works, in the
/// same SUBSCRIBE.
#[test]
fn a_device_reads_only_what_its_account_may_subscribe_to() {
    use rumqttc::{Packet, Publish, QoS, Subscribe, SubscribeFilter, SubscribeReasonCode};
    let port = free_port();
    let daemon = Daemon::start(&format!(
        "[mqtt]\nbroker = \"embedded\"\nclient_id = \"subs-{port}\"\n\
         [embedded_broker]\nlisten = \"127.0.0.1:{port}\"\n\
         [[embedded_broker.users]]\nname = \"plug1\"\npassword_hash = \"{hash}\"\n\
         publish = [\"tele/%u/#\"]\nsubscribe = [\"cmnd/%u/#\"]\n\
         [[embedded_broker.users]]\nname = \"plug2\"\npassword_hash = \"{hash}\"\n\
         [cache]\nflush_after = \"1h\"\n",
        hash = hash_password("plug-pass"),
    ));
    let mut plug1 = Wire::connect(port, "plug1", "plug-pass");
    let mut subscribe = Subscribe::new_many([
        SubscribeFilter::new("#".into(), QoS::AtLeastOnce),
        SubscribeFilter::new("cmnd/plug1/#".into(), QoS::AtLeastOnce),
        SubscribeFilter::new("tele/+/SENSOR".into(), QoS::AtMostOnce),
        SubscribeFilter::new("datalog-rrd/status".into(), QoS::AtMostOnce),
    ]);
    subscribe.pkid = 9;
    plug1.send(Packet::Subscribe(subscribe));
    match plug1.next(Duration::from_secs(10)) {
        Some(Packet::SubAck(ack)) => {
            assert_eq!(ack.pkid, 9);
            assert_eq!(
                ack.return_codes,
                [
                    SubscribeReasonCode::Failure,
                    SubscribeReasonCode::Success(QoS::AtLeastOnce),
                    SubscribeReasonCode::Failure,
                    SubscribeReasonCode::Failure,
                ]
            );
        }
        other => panic!("no SUBACK: {other:?}"),
    }
    // plug2 publishes its values and a command for plug1: only the
    // command reaches plug1.
    let mut plug2 = Wire::connect(port, "plug2", "plug-pass");
    for (pkid, topic, payload) in [
        (1, "tele/plug2/SENSOR", "{\"ENERGY\":{\"Power\":12}}"),
        (2, "cmnd/plug1/POWER", "OFF"),
        (3, "tele/plug2/STATE", "{\"POWER\":\"ON\"}"),
    ] {
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload);
        publish.pkid = pkid;
        plug2.send(Packet::Publish(publish));
    }
    let mut got = Vec::new();
    while let Some(packet) = plug1.next(Duration::from_secs(2)) {
        if let Packet::Publish(p) = packet {
            got.push(p.topic);
        }
    }
    assert_eq!(got, ["cmnd/plug1/POWER"]);
    assert_eq!(refused(&daemon, "not_permitted_subscribe"), 3);
}

/// MQTT 3.1.1 §4.6: PUBACKs in the order of their PUBLISHes, whether
/// rumqttd gives them (allowed) or the gate (refused), interleaved.
#[test]
fn acknowledgements_keep_the_order_of_the_publishes() {
    use rumqttc::{Packet, Publish, QoS};
    let port = free_port();
    let _daemon = Daemon::start(&format!(
        "[mqtt]\nbroker = \"embedded\"\nclient_id = \"order-{port}\"\n\
         [embedded_broker]\nlisten = \"127.0.0.1:{port}\"\n\
         [[embedded_broker.users]]\nname = \"plug1\"\npassword_hash = \"{}\"\n\
         publish = [\"tele/%u/#\"]\n\
         [cache]\nflush_after = \"1h\"\n",
        hash_password("plug-pass"),
    ));
    let mut plug = Wire::connect(port, "plug1", "plug-pass");
    let count: u16 = 200;
    for pkid in 1..=count {
        // Every third refused (another device's topic).
        let topic = if pkid % 3 == 0 {
            "tele/plug2/power"
        } else {
            "tele/plug1/power"
        };
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, pkid.to_string());
        publish.pkid = pkid;
        plug.send(Packet::Publish(publish));
    }
    let mut acked = Vec::new();
    while acked.len() < count as usize {
        match plug.next(Duration::from_secs(10)) {
            Some(Packet::PubAck(ack)) => acked.push(ack.pkid),
            Some(_) => {}
            None => break,
        }
    }
    let expected: Vec<u16> = (1..=count).collect();
    assert_eq!(acked, expected, "PUBACKs in the order of the PUBLISHes");
}
