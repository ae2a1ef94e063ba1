//! Shared helpers: a real mosquitto on a free loopback port, the daemon
//! binary on a config of the test's own, `rrdtool fetch`, bounded waits.
//! Everything lives in the test's temp dir and is stopped on drop.

// Shared with the benchmarks, which use helpers the tests do not.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Polls `f` until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, f: impl FnMut() -> Option<T>) -> T {
    wait_for_every(limit, Duration::from_millis(25), what, f)
}

/// The same for a check that costs something (a process started, a flush
/// asked): polled every `every`.
pub fn wait_for_every<T>(
    limit: Duration,
    every: Duration,
    what: &str,
    f: impl FnMut() -> Option<T>,
) -> T {
    poll_until(limit, every, f)
        .unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}

/// Polls `f` every `every` until it returns `Some`; `None` after `limit`
/// (the caller says what is missing).
pub fn poll_until<T>(
    limit: Duration,
    every: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(every);
    }
}

fn wait_port(port: u16) {
    wait_for(Duration::from_secs(10), "a listening port", || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    });
}

pub struct Mosquitto {
    pub port: u16,
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Mosquitto {
        Self::start_on(free_port(), tempfile::tempdir().unwrap())
    }

    /// Starts on a given port and directory (a restart of the same broker).
    pub fn start_on(port: u16, dir: tempfile::TempDir) -> Mosquitto {
        Self::start_with(port, dir, "allow_anonymous true\npersistence false\n")
    }

    /// A broker that keeps sessions and queued messages on disk, in `dir`.
    pub fn start_persistent(port: u16, dir: tempfile::TempDir) -> Mosquitto {
        let conf = format!(
            "allow_anonymous true\npersistence true\npersistence_location {}/\n",
            dir.path().display()
        );
        Self::start_with(port, dir, &conf)
    }

    /// Starts with `listener_conf` (TLS, authentication…) under the listener.
    pub fn start_with(port: u16, dir: tempfile::TempDir, listener_conf: &str) -> Mosquitto {
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "per_listener_settings false\nlistener {port} 127.0.0.1\n{listener_conf}\
                 max_queued_messages 1000000\nmax_inflight_messages 0\nlog_dest stderr\nlog_type error\n"
            ),
        )
        .unwrap();
        // As root, mosquitto drops to user `mosquitto`: let it read its dir.
        let _ = Command::new("chown")
            .args(["-R", "mosquitto:", &dir.path().to_string_lossy()])
            .status();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto is installed (apt-get install mosquitto)");
        wait_port(port);
        Mosquitto { port, child, dir }
    }

    /// Stops the broker, keeping its directory for a restart.
    pub fn stop(mut self) -> (u16, tempfile::TempDir) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let port = self.port;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        (port, dir)
    }

    pub fn publish(&self, topic: &str, payload: &str) {
        publish(self.port, topic, payload);
    }

    /// A clean restart (SIGTERM: a persistent broker saves its state), on
    /// the same port and directory.
    pub fn restart_persistent(mut self) -> Mosquitto {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
        let (port, dir) = (
            self.port,
            std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()),
        );
        Mosquitto::start_persistent(port, dir)
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_pub` at QoS 1 to `topic` on the loopback broker at `port`,
/// with `more` arguments (`-m <payload>`, `-l`, `-r`…).
pub fn mosquitto_pub(port: u16, topic: &str, more: &[&str]) -> Command {
    let mut command = Command::new("mosquitto_pub");
    command
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
            "-t",
            topic,
        ])
        .args(more);
    command
}

pub fn publish(port: u16, topic: &str, payload: &str) {
    let status = mosquitto_pub(port, topic, &["-m", payload])
        .status()
        .expect("mosquitto_pub is installed (apt-get install mosquitto-clients)");
    assert!(status.success(), "mosquitto_pub {topic}");
}

/// A config for an external broker on `port` (client id `e2e-<port>`),
/// reconnecting fast, with files flushed `flush_after` their first row.
pub fn external(port: u16, flush_after: &str) -> String {
    format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{port}\"\nclient_id = \"e2e-{port}\"\nreconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n\
         [cache]\nflush_after = \"{flush_after}\"\nflush_jitter = \"0s\"\n"
    )
}

/// The config a test daemon runs on: `config` with its data directory
/// (unless `config` names one), and the web UI on a port the system picks
/// (unless `config` has [web]).
fn with_data_dir(data: &Path, config: &str) -> String {
    let web = if config.contains("[web]") {
        ""
    } else {
        "\n[web]\nlisten = \"127.0.0.1:0\"\n"
    };
    if config.lines().any(|l| l.starts_with("data_dir")) {
        return format!("{config}{web}");
    }
    format!("data_dir = \"{}\"\n{config}{web}", data.display())
}

/// The daemon binary `Daemon` runs: this build's, or `DATALOG_RRD_BIN`,
/// so that a benchmark can run another build (the commit before a change)
/// beside this one in the same run.
pub fn daemon_binary() -> std::path::PathBuf {
    std::env::var_os("DATALOG_RRD_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_datalog-rrd").into())
}

/// An argon2 hash of `password`, made by `datalog-rrd hash-password` as
/// a user would, for `[[web.users]]` and `[[embedded_broker.users]]`.
pub fn hash_password(password: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(daemon_binary())
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "hash-password failed: {out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

pub struct Daemon {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `datalog-rrd run` with `config` (data_dir is set to the temp
    /// dir's `data`) and waits until it is connected to its broker.
    pub fn start(config: &str) -> Daemon {
        Self::start_with_log(config, "info,datalog_rrd=debug,rumqttd=error")
    }

    pub fn start_with_log(config: &str, log_filter: &str) -> Daemon {
        Self::start_in(tempfile::tempdir().unwrap(), config, log_filter)
    }

    /// Starts in `dir`, whose `data` may hold a previous run's files.
    pub fn start_in(dir: tempfile::TempDir, config: &str, log_filter: &str) -> Daemon {
        Self::start_in_env(dir, config, log_filter, &[])
    }

    /// Starts in `dir` with extra environment variables (systemd's, say).
    pub fn start_in_env(
        dir: tempfile::TempDir,
        config: &str,
        log_filter: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        // A restart in the same directory appends to the log: wait for this
        // run's own line (a signal sent before it may find the process
        // without its handlers yet, and SIGUSR1's default is to exit).
        let connected = "Connected to the MQTT broker";
        let before = std::fs::read_to_string(dir.path().join("daemon.log"))
            .map_or(0, |log| log.matches(connected).count());
        let d = Self::spawn_in_env(dir, config, log_filter, env);
        d.wait_log(connected, before + 1);
        d
    }

    /// Starts without waiting for anything.
    pub fn spawn_in_env(
        dir: tempfile::TempDir,
        config: &str,
        log_filter: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        let path = dir.path().join("datalog-rrd.toml");
        std::fs::write(&path, with_data_dir(&dir.path().join("data"), config)).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(daemon_binary())
            .args(["--log", log_filter, "run", "-c"])
            .arg(&path)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Daemon {
            child: Some(child),
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("datalog-rrd.toml")
    }

    /// Replaces the config file as editors do: a new file renamed over it.
    pub fn rewrite_config(&self, config: &str) {
        let tmp = self.dir.path().join(".datalog-rrd.toml.new");
        std::fs::write(&tmp, with_data_dir(&self.data(), config)).unwrap();
        std::fs::rename(&tmp, self.config_path()).unwrap();
    }

    /// `http://127.0.0.1:<port>` of the web UI, as the daemon logged it.
    pub fn web_url(&self) -> String {
        wait_for(Duration::from_secs(10), "the web UI address", || {
            let log = self.log();
            // The newest run's, when a restart appended to the log.
            let at = log.rfind("Web UI listening on http://")?;
            let rest = &log[at + "Web UI listening on ".len()..];
            let url = rest.split_whitespace().next()?;
            Some(url.trim_end_matches("/rrd").to_owned())
        })
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// Waits until `needle` appears `times` times in the log.
    pub fn wait_log(&self, needle: &str, times: usize) {
        let found = poll_until(Duration::from_secs(20), Duration::from_millis(25), || {
            (self.log().matches(needle).count() >= times).then_some(())
        });
        if found.is_none() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "timed out after 20s waiting for {needle:?} ({times}x); the daemon's log ends:\n{}",
                tail.join("\n")
            );
        }
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args([&format!("-{sig}"), &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// SIGUSR1, then waits for the flush it starts to finish.
    pub fn flush(&self) {
        let before = self.log().matches("Flush finished").count();
        self.signal("USR1");
        self.wait_log("Flush finished", before + 1);
    }

    /// SIGTERM and the exit status, within `limit`. The temp dir stays
    /// until the `Daemon` is dropped.
    pub fn stop(&mut self, limit: Duration) -> ExitStatus {
        self.signal("TERM");
        let mut child = self.child.take().unwrap();
        wait_for(limit, "the daemon to exit", || child.try_wait().unwrap())
    }
}

impl Daemon {
    /// Stops (SIGTERM) and starts again in the same directory on `config`,
    /// the old run's log kept as `daemon.log.1`, so that the start waits
    /// for this run's own connection (and signals wait for its handlers).
    pub fn restart(self, config: &str, log_filter: &str) -> Daemon {
        self.restart_after(config, log_filter, |_| {})
    }

    /// [`Daemon::restart`], doing `meanwhile` to the data directory while
    /// the daemon is stopped.
    pub fn restart_after(
        mut self,
        config: &str,
        log_filter: &str,
        meanwhile: impl FnOnce(&Path),
    ) -> Daemon {
        let status = self.stop(Duration::from_secs(30));
        assert!(status.success(), "stopped with {status:?}");
        meanwhile(&self.data());
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        std::fs::rename(
            dir.path().join("daemon.log"),
            dir.path().join("daemon.log.1"),
        )
        .unwrap();
        Daemon::start_in(dir, config, log_filter)
    }

    /// SIGKILL, as a crash or the OOM killer would; returns the directory
    /// for a restart.
    pub fn kill9(mut self) -> tempfile::TempDir {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A metric's value from the daemon's `/metrics`, by its name without the
/// `datalog_rrd_` prefix (labels included: `rejected_total{reason="late"}`).
pub fn metric(daemon: &Daemon, name: &str) -> u64 {
    let (_, metrics) = http_get(&format!("{}/metrics", daemon.web_url()));
    let metrics = String::from_utf8_lossy(&metrics);
    let line = format!("datalog_rrd_{name} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// `(time, value)` rows of the first DS that `rrdtool fetch` prints with a
/// known value, between `start` and `end`.
pub fn fetch(path: &Path, start: i64, end: i64) -> Vec<(i64, f64)> {
    let (_, rows) = fetch_columns(path, start, end);
    rows.into_iter()
        .filter_map(|(t, values)| Some((t, *values.first()?)).filter(|(_, v)| !v.is_nan()))
        .collect()
}

/// `rrdtool fetch` of every DS at 60 s: the DS names, and each row's time
/// and values (NaN for unknown).
pub fn fetch_columns(path: &Path, start: i64, end: i64) -> (Vec<String>, Vec<(i64, Vec<f64>)>) {
    let (start, end) = (start.to_string(), end.to_string());
    let out = Command::new("rrdtool")
        .args([
            "fetch",
            &path.to_string_lossy(),
            "AVERAGE",
            "-r",
            "60",
            "-s",
            &start,
            "-e",
            &end,
        ])
        .output()
        .expect("rrdtool is installed");
    assert!(
        out.status.success(),
        "rrdtool fetch {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let rows = lines
        .filter_map(|l| {
            let (t, v) = l.split_once(':')?;
            let values = v
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(f64::NAN))
                .collect();
            Some((t.trim().parse().ok()?, values))
        })
        .collect();
    (header, rows)
}

/// Every file under `dir`, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Publishes each line of `lines` as one QoS 1 message on `topic`, with one
/// `mosquitto_pub -l` (one connection for all of them).
pub fn publish_lines(port: u16, topic: &str, lines: &[String]) {
    use std::io::Write;
    let mut child = mosquitto_pub(port, topic, &["-l"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub is installed (apt-get install mosquitto-clients)");
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success(), "mosquitto_pub -l {topic}");
}

/// `GET url` (plain HTTP/1.0, so the body ends with the connection): the
/// status code and the body. Raw on purpose: the path is sent exactly as
/// given, `..` and all, as a hostile client would.
pub fn http_get(url: &str) -> (u16, Vec<u8>) {
    http_request("GET", url, None)
}

/// The CSRF token of the form at `url` (a page with `name="csrf"`),
/// read as a browser would before posting it.
pub fn form_token(url: &str) -> String {
    let (status, form) = http_get(url);
    assert_eq!(status, 200, "{url}");
    let form = String::from_utf8_lossy(&form);
    form.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("the form's token")
        .to_owned()
}

/// POSTs an HTML form's fields (`a=1&b=2`, already encoded).
pub fn http_post_form(url: &str, form: &str) -> (u16, Vec<u8>) {
    http_request("POST", url, Some(form))
}

fn http_request(method: &str, url: &str, form: Option<&str>) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = TcpStream::connect(host).expect("web UI reachable");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    match form {
        None => write!(stream, "{method} {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap(),
        Some(body) => write!(
            stream,
            "{method} {path} HTTP/1.0\r\nHost: {host}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap(),
    }
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&response[..head_end]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, response[head_end + 4..].to_vec())
}

/// A number from the environment (benchmark sizes), or `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `rrdtool info` of `path`.
pub fn rrd_info(path: &Path) -> String {
    let out = Command::new("rrdtool")
        .arg("info")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// CPU seconds (user + system) and peak RSS (kB) of a process.
pub fn proc_stats(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let hwm_kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    ((tick(11) + tick(12)) / 100.0, hwm_kb)
}

/// Debian's `prometheus-node-exporter` on a free loopback port, killed on
/// drop.
pub struct NodeExporter {
    child: Child,
    pub port: u16,
}

impl NodeExporter {
    pub fn start() -> NodeExporter {
        Self::start_with(&[])
    }

    /// Serving https with `dir`'s `server.pem` and `server.key` (the
    /// exporter's web configuration file).
    pub fn start_tls(dir: &Path) -> NodeExporter {
        let web_config = dir.join("web.yml");
        std::fs::write(
            &web_config,
            format!(
                "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
                dir.join("server.pem").display(),
                dir.join("server.key").display()
            ),
        )
        .unwrap();
        Self::start_with(&[format!("--web.config.file={}", web_config.display())])
    }

    fn start_with(args: &[String]) -> NodeExporter {
        let port = free_port();
        let child = Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter is installed (scripts/install-deps --test)");
        wait_for(Duration::from_secs(20), "node exporter", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        NodeExporter { child, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
