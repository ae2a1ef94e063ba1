//! The command line: help, default config, check-config.

use std::process::Command;

use crate::support::hash_password;

fn datalog(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_datalog-rrd"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn help_lists_the_commands() {
    let out = datalog(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for cmd in ["run", "check-config", "print-default-config"] {
        assert!(text.contains(cmd), "{cmd} missing from --help:\n{text}");
    }
}

#[test]
fn printed_default_config_is_the_shipped_file_and_checks_ok() {
    let out = datalog(&["print-default-config"]);
    assert!(out.status.success());
    let shipped = include_str!("../../config/datalog-rrd.toml");
    assert_eq!(String::from_utf8_lossy(&out.stdout), shipped);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, &out.stdout).unwrap();
    let check = datalog(&["check-config", &path.to_string_lossy()]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn check_config_lists_every_error_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[mqtt]\nqos = 3\nbroker = \"ftp://x\"\n[cache]\nflush_after = \"soon\"\n[limits]\nmax_series = 0\n").unwrap();
    let out = datalog(&["check-config", &path.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "mqtt.qos",
        "mqtt.broker",
        "cache.flush_after",
        "limits.max_series",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    let missing = datalog(&["check-config", "/nonexistent/datalog-rrd.toml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

#[test]
fn run_refuses_a_broken_config_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "data_dir = 5\n").unwrap();
    let out = datalog(&["run", "-c", &path.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("data_dir"));
}

#[test]
fn a_public_web_ui_needs_users_and_hash_password_makes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("public.toml");
    std::fs::write(&path, "[web]\nlisten = \"0.0.0.0:8088\"\n").unwrap();
    let out = datalog(&["check-config", &path.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("web.listen"));

    // `hash_password` runs `datalog-rrd hash-password` as a user would.
    let hash = hash_password("correct horse");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    std::fs::write(
        &path,
        format!(
            "[web]\nlisten = \"0.0.0.0:8088\"\n[[web.users]]\nname = \"admin\"\npassword_hash = \"{}\"\n",
            hash.trim()
        ),
    )
    .unwrap();
    let out = datalog(&["check-config", &path.to_string_lossy()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `check-config` says which jobs made in the browser the daemon would run
/// with this file, and which it would leave out, and why; it still passes
/// (the daemon starts either way).
#[test]
fn check_config_says_which_browser_jobs_would_be_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(
        data.join("jobs.json"),
        r#"{"version": 1, "jobs": [
            {"name": "pi", "kind": "ping", "target": "10.0.0.1"},
            {"name": "nas", "kind": "munin", "target": "nas"}]}"#,
    )
    .unwrap();
    let path = dir.path().join("datalog-rrd.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[[poll]]\nname = \"pi\"\nkind = \"ping\"\ntarget = \"127.0.0.1\"\n",
            data
        ),
    )
    .unwrap();
    let out = datalog(&["check-config", &path.to_string_lossy()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("2 poll jobs made in the browser"),
        "{stdout}"
    );
    assert!(
        stdout.contains("left out: jobs.json[0].name: job \"pi\" exists already"),
        "{stdout}"
    );
    assert!(!stdout.contains("jobs.json[1]"), "{stdout}");
}
