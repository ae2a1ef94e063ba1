//! An external broker with a password and TLS, as the README promises:
//! mosquitto with a CA made here, the daemon trusting that CA.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;

fn run(dir: &Path, args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for `localhost`, in `dir`.
pub fn make_certificates(dir: &Path) {
    run(
        dir,
        &[
            "openssl",
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "ca.key",
        ],
    );
    run(
        dir,
        &[
            "openssl",
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=datalog-test-ca",
            "-out",
            "ca.pem",
        ],
    );
    run(
        dir,
        &[
            "openssl",
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "server.key",
        ],
    );
    run(
        dir,
        &[
            "openssl",
            "req",
            "-new",
            "-key",
            "server.key",
            "-subj",
            "/CN=localhost",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(
        dir,
        &[
            "openssl",
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-sha256",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
}

#[test]
fn tls_broker_with_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    make_certificates(&d);
    run(
        &d,
        &[
            "mosquitto_passwd",
            "-b",
            "-c",
            "passwd",
            "datalog",
            "s3cret",
        ],
    );
    let port = free_port();
    let listener = format!(
        "cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\nallow_anonymous false\npassword_file {0}/passwd\npersistence false\n",
        d.display()
    );
    let _broker = Mosquitto::start_with(port, dir, &listener);
    let pass_file = d.join("daemon.pass");
    std::fs::write(&pass_file, "s3cret\n").unwrap();
    let daemon = Daemon::start(&format!(
        "[mqtt]\nbroker = \"mqtts://localhost:{port}\"\nusername = \"datalog\"\npassword_file = \"{}\"\nca_file = \"{}\"\n\
         client_id = \"tls-test\"\n[cache]\nflush_after = \"1h\"\n",
        pass_file.display(),
        d.join("ca.pem").display()
    ));
    let t0 = (now_s() / 60 - 2) * 60;
    let ca = d.join("ca.pem");
    let status = Command::new("mosquitto_pub")
        .args([
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
            "--cafile",
            &ca.to_string_lossy(),
            "-u",
            "datalog",
            "-P",
            "s3cret",
        ])
        .args([
            "-q",
            "1",
            "-t",
            "secure/t",
            "-m",
            &format!(r#"{{"ts": {t0}, "value": 5.5}}"#),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    daemon.wait_log("Samples taken", 1);
    daemon.flush();
    assert_eq!(
        fetch(&daemon.data().join("secure/t/value.rrd"), t0 - 60, t0),
        vec![(t0, 5.5)]
    );
}

#[test]
fn a_wrong_password_is_retried_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_owned();
    run(
        &d,
        &["mosquitto_passwd", "-b", "-c", "passwd", "datalog", "right"],
    );
    let port = free_port();
    let _broker = Mosquitto::start_with(
        port,
        dir,
        &format!(
            "allow_anonymous false\npassword_file {}/passwd\n",
            d.display()
        ),
    );
    let config = format!(
        "data_dir = \"{}\"\n[mqtt]\nbroker = \"mqtt://127.0.0.1:{port}\"\nusername = \"datalog\"\npassword = \"wrong\"\n\
         reconnect_min = \"50ms\"\nreconnect_max = \"200ms\"\n",
        d.join("data").display()
    );
    let conf = d.join("c.toml");
    std::fs::write(&conf, config).unwrap();
    let log = std::fs::File::create(d.join("log")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_datalog-rrd"))
        .args(["run", "-c", &conf.to_string_lossy()])
        .env("NO_COLOR", "1")
        .stderr(log)
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(10), "three refused connections", || {
        let text = std::fs::read_to_string(d.join("log")).unwrap_or_default();
        (text.matches("MQTT connection lost").count() >= 3).then_some(())
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the daemon exited on a refused login"
    );
    let _ = child.kill();
    let _ = child.wait();
}
