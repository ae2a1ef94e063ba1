//! The daemon under systemd's eyes: notifications on `NOTIFY_SOCKET`
//! (ready, reloading, stopping, status, watchdog) and logs fit for the
//! journal. No systemd runs here, so the test plays the service manager:
//! it binds the datagram socket systemd would and reads what comes.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

/// A notification socket, as systemd binds one per service: every
/// datagram received is kept, in order.
struct NotifySocket {
    /// Each datagram, with when it came.
    messages: Arc<Mutex<Vec<(std::time::Instant, String)>>>,
    path: std::path::PathBuf,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let sink = messages.clone();
        // Ends with the test process; the socket file goes with the dir.
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((std::time::Instant::now(), text));
            }
        });
        NotifySocket { messages, path }
    }

    fn all(&self) -> Vec<String> {
        let messages = self.messages.lock().unwrap();
        messages.iter().map(|(_, m)| m.clone()).collect()
    }

    /// When the first datagram carrying `line` came.
    fn first_at(&self, line: &str) -> Option<std::time::Instant> {
        let messages = self.messages.lock().unwrap();
        messages
            .iter()
            .find(|(_, m)| m.lines().any(|l| l == line))
            .map(|(at, _)| *at)
    }

    /// How many datagrams carry the line `line` (e.g. "READY=1").
    fn count(&self, line: &str) -> usize {
        self.all()
            .iter()
            .filter(|m| m.lines().any(|l| l == line))
            .count()
    }

    fn wait(&self, line: &str, times: usize) {
        wait_for(Duration::from_secs(40), line, || {
            (self.count(line) >= times).then_some(())
        });
    }

    /// Index of the first datagram after `from` carrying `line`.
    fn position_after(&self, from: usize, line: &str) -> Option<usize> {
        self.all()
            .iter()
            .enumerate()
            .skip(from)
            .find(|(_, m)| m.lines().any(|l| l == line))
            .map(|(i, _)| i)
    }
}

/// The daemon on `broker_port`, with a notify socket in its directory and
/// `env` (the watchdog's, say); `wait`: until it is connected.
fn start_notified(broker_port: u16, env: &[(&str, &str)], wait: bool) -> (Daemon, NotifySocket) {
    let dir = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind(dir.path());
    let socket = notify.path.to_str().unwrap().to_owned();
    let mut all = vec![("NOTIFY_SOCKET", socket.as_str())];
    all.extend_from_slice(env);
    let config = external(broker_port, "1h");
    let daemon = if wait {
        Daemon::start_in_env(dir, &config, "info", &all)
    } else {
        Daemon::spawn_in_env(dir, &config, "info", &all)
    };
    (daemon, notify)
}

/// A TCP proxy in front of the broker that holds each SUBSCRIBE back for
/// `hold` and notes when the broker's SUBACK reached it, on its way to the client: what
/// "subscribed" means, as the broker sees it.
struct SubscribeDelay {
    port: u16,
    subacked: Arc<Mutex<Option<std::time::Instant>>>,
}

impl SubscribeDelay {
    fn start(broker_port: u16, hold: Duration) -> SubscribeDelay {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let subacked = Arc::new(Mutex::new(None));
        let noted = subacked.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let mut broker = std::net::TcpStream::connect(("127.0.0.1", broker_port)).unwrap();
                let (mut client_in, mut broker_in) =
                    (client.try_clone().unwrap(), broker.try_clone().unwrap());
                let noted = noted.clone();
                // Broker → client: whole bytes, the SUBACK's time noted
                // before it is passed on (noted after, a daemon quick to
                // say READY=1 could beat this thread to its note).
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = broker_in.read(&mut buf) {
                        if n > 0 && buf[..n].contains(&0x90) {
                            noted
                                .lock()
                                .unwrap()
                                .get_or_insert(std::time::Instant::now());
                        }
                        if n == 0 || client.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
                // Client → broker, packet by packet, a SUBSCRIBE held back.
                std::thread::spawn(move || {
                    let mut pending: Vec<u8> = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = client_in.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(len) = frame_len(&pending) {
                            let packet: Vec<u8> = pending.drain(..len).collect();
                            if packet[0] >> 4 == 8 {
                                std::thread::sleep(hold);
                            }
                            if broker.write_all(&packet).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        SubscribeDelay { port, subacked }
    }
}

/// The length of the whole MQTT packet at the head of `bytes`, if it is
/// all there.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let (mut remaining, mut shift) = (0usize, 0);
    for (i, &b) in bytes.iter().enumerate().skip(1).take(4) {
        remaining |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            let len = 1 + i + remaining;
            return (bytes.len() >= len).then_some(len);
        }
    }
    None
}

/// READY=1 only once subscribed, as the broker sees it: with each
/// SUBSCRIBE held back 2 s on its way, READY=1 comes after the SUBACK.
#[test]
fn ready_only_once_the_broker_has_acknowledged_the_subscription() {
    let broker = Mosquitto::start();
    let proxy = SubscribeDelay::start(broker.port, Duration::from_secs(2));
    let (_daemon, notify) = start_notified(proxy.port, &[], false);
    notify.wait("READY=1", 1);
    let ready_at = notify.first_at("READY=1").unwrap();
    let subacked = proxy.subacked.lock().unwrap().expect("a SUBACK passed");
    assert!(
        subacked <= ready_at,
        "READY=1 before the broker acknowledged the subscription"
    );
}

#[test]
fn tells_systemd_when_it_is_ready_reloading_and_stopping() {
    let broker = Mosquitto::start();
    let (mut daemon, notify) = start_notified(broker.port, &[], true);
    notify.wait("READY=1", 1);
    let ready = notify.position_after(0, "READY=1").unwrap();
    broker.publish("service/check", "7.5");
    // Taken before the stop: a message still in flight at the stop stays
    // with the broker (unacknowledged), which this test does not look at.
    let web = daemon.web_url();
    wait_for(Duration::from_secs(10), "the sample to be taken", || {
        let (_, body) = http_get(&format!("{web}/metrics"));
        String::from_utf8_lossy(&body)
            .contains("datalog_rrd_samples_accepted_total 1\n")
            .then_some(())
    });
    // The status line comes with the first probe (every 10 s without a
    // watchdog) and names the series count.
    wait_for(Duration::from_secs(30), "a STATUS= line", || {
        notify
            .all()
            .iter()
            .any(|m| m.contains("STATUS=") && m.contains(" series, "))
            .then_some(())
    });

    daemon.signal("HUP");
    notify.wait("RELOADING=1", 1);
    let reloading = notify.position_after(ready + 1, "RELOADING=1").unwrap();
    assert!(
        notify.all()[reloading].contains("MONOTONIC_USEC="),
        "systemd 253+ wants MONOTONIC_USEC with RELOADING=1"
    );
    notify.wait("READY=1", 2);
    assert!(notify.position_after(reloading, "READY=1").is_some());

    let status = daemon.stop(Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert_eq!(notify.count("STOPPING=1"), 1);
    assert_eq!(notify.count("WATCHDOG=1"), 0, "no watchdog was asked for");
    let rows = fetch(
        &daemon.data().join("service/check.rrd"),
        now_s() - 300,
        now_s() + 60,
    );
    assert_eq!(rows.iter().map(|r| r.1).collect::<Vec<_>>(), vec![7.5]);
}

/// Without a broker the daemon is not ready yet (it says so after 30 s and
/// keeps trying); a stop meanwhile is prompt and clean.
#[test]
fn a_stop_before_the_broker_answers_is_prompt() {
    let nobody = free_port(); // nothing listens there
    let (mut daemon, notify) = start_notified(nobody, &[], false);
    daemon.wait_log("MQTT connection lost", 1);
    let asked = std::time::Instant::now();
    let status = daemon.stop(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(notify.count("READY=1"), 0);
    assert_eq!(notify.count("STOPPING=1"), 1);
}

/// A librrd call that never returns (here: `rrd_info` opening a FIFO that
/// stands where an RRD file should be, as a stuck disk or NFS mount would
/// block it) stops the watchdog pings, so that systemd restarts the
/// service.
#[test]
fn watchdog_pings_stop_when_the_rrd_thread_hangs() {
    let broker = Mosquitto::start();
    // Probes every 0.5 s.
    let (daemon, notify) = start_notified(broker.port, &[("WATCHDOG_USEC", "1000000")], true);
    notify.wait("READY=1", 1);
    notify.wait("WATCHDOG=1", 3);

    // A healthy file keeps the pings coming through writes.
    broker.publish("service/healthy", "1");
    daemon.flush();
    let before = notify.count("WATCHDOG=1");
    notify.wait("WATCHDOG=1", before + 2);

    let fifo = daemon.data().join("service/stuck.rrd");
    std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    broker.publish("service/stuck", "2");
    // Not `flush()`: it waits for librrd's answer, which never comes. The
    // flush is asked again until the sample has arrived and hung librrd.
    wait_for_every(
        Duration::from_secs(15),
        Duration::from_millis(500),
        "the probe failure in the log",
        || {
            daemon.signal("USR1");
            daemon
                .log()
                .contains("Did not answer its health probe in time")
                .then_some(())
        },
    );
    assert!(daemon.log().contains("stage=\"rrd\"") || daemon.log().contains("stage=rrd"));
    // Two more probe rounds (every 0.5 s) that librrd does not answer.
    let stalled = notify.count("WATCHDOG=1");
    let failed = metric(&daemon, "health_probes_failed_total");
    wait_for(Duration::from_secs(10), "two more failed probes", || {
        (metric(&daemon, "health_probes_failed_total") >= failed + 2).then_some(())
    });
    assert_eq!(
        notify.count("WATCHDOG=1"),
        stalled,
        "pings went on while librrd hung"
    );
    // Dropping the daemon kills it (the blocked open(2) is interruptible).
}

/// Under systemd stderr goes to the journal: no colour codes, no timestamp
/// of our own (journald stamps every line), and each line's priority as a
/// `<N>` prefix. Into a file, the timestamp stays but colours go.
#[test]
fn logs_to_a_pipe_or_the_journal_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let config = dir.path().join("c.toml");
    // A data directory that cannot be made: the daemon logs an error and
    // exits, which is all this test needs to see a log line.
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}/data\"\n[web]\nenabled = false\n[mqtt]\nbroker = \"mqtt://127.0.0.1:9\"\n",
            blocker.display()
        ),
    )
    .unwrap();
    let run = |journal: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_datalog-rrd"));
        cmd.args(["run", "-c"])
            .arg(&config)
            .env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .env_remove("JOURNAL_STREAM")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if journal {
            cmd.env("JOURNAL_STREAM", "8:12345");
        }
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let piped = run(false);
    assert!(piped.contains("ERROR"), "{piped}");
    assert!(!piped.contains('\x1b'), "colour codes in a pipe: {piped:?}");
    assert!(
        piped.trim_start().starts_with("20"),
        "a timestamp first: {piped}"
    );
    let journal = run(true);
    assert!(journal.contains("ERROR"), "{journal}");
    assert!(!journal.contains('\x1b'), "{journal:?}");
    assert!(
        journal.lines().all(|l| !l.trim_start().starts_with("20")),
        "journald stamps lines itself: {journal}"
    );
}
