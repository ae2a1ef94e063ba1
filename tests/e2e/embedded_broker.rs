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
    let (_, metrics) = http_get(&format!("{}/metrics", daemon.web_url()));
    let metrics = String::from_utf8_lossy(&metrics);
    let failures: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("datalog_rrd_broker_auth_failures_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    // The wrong password; rumqttd refuses a CONNECT without credentials
    // before asking us, so those two are not counted (README says so).
    assert_eq!(failures, 1, "refusals counted");
    assert!(
        daemon
            .log()
            .contains("Embedded broker refused a connection")
    );
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
    // 300 sockets that never say CONNECT.
    let idle: Vec<std::net::TcpStream> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
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
    // The honest device, after the user's lock (at most 32 s here).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !device_publishes(port, "garden/after", "2.5", &honest) {
        assert!(
            std::time::Instant::now() < deadline,
            "the honest device never got in"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
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
