//! Poll benchmark: what polling costs the daemon.
//!
//! A stub node answering as munin-node does (greeting, `cap`, `list`,
//! `config` and `fetch`) with BENCH_PLUGINS (200) plugins of 4 fields
//! each, polled every BENCH_INTERVAL (10s) together with a scrape of the
//! real `prometheus-node-exporter` (its `node` profile) when it is
//! installed. The same daemon without jobs runs beside it on the same
//! broker. Over BENCH_ROUNDS (6) rounds after the first (which creates the
//! files), prints: the rounds' durations (from `/metrics`), the CPU time
//! the jobs add per round (the daemon's minus the idle one's, from
//! `/proc`), and both daemons' peak RSS.
//!
//!     cargo bench --bench poll
//!     BENCH_PLUGINS=500 BENCH_ROUNDS=10 cargo bench --bench poll

#[path = "../tests/e2e/support.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Daemon, Mosquitto, env_or, external, free_port, http_get, proc_stats, wait_for};

const FIELDS: [(&str, &str); 4] = [
    ("load", "GAUGE"),
    ("bytes", "DERIVE"),
    ("used", "GAUGE"),
    ("temp", "GAUGE"),
];

/// Answers as munin-node would, a thread per connection.
fn stub_node(plugins: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                let mut lines = BufReader::new(stream).lines();
                let _ = out.write_all(b"# munin node at bench\n");
                let start = Instant::now();
                while let Some(Ok(line)) = lines.next() {
                    let mut answer = String::new();
                    match line.split_once(' ').unwrap_or((line.as_str(), "")) {
                        ("cap", _) => answer.push_str("cap multigraph dirtyconfig\n"),
                        ("list", _) => {
                            let names: Vec<String> =
                                (0..plugins).map(|i| format!("plugin{i:03}")).collect();
                            answer = names.join(" ") + "\n";
                        }
                        ("config", p) => {
                            answer.push_str(&format!(
                                "graph_title {p}\ngraph_vlabel units\ngraph_category bench\n"
                            ));
                            for (f, t) in FIELDS {
                                answer
                                    .push_str(&format!("{f}.label {f}\n{f}.type {t}\n{f}.min 0\n"));
                            }
                            answer.push_str(".\n");
                        }
                        ("fetch", _) => {
                            let t = start.elapsed().as_secs() + 1_000_000;
                            for (i, (f, _)) in FIELDS.iter().enumerate() {
                                answer.push_str(&format!("{f}.value {}\n", t * (i as u64 + 1)));
                            }
                            answer.push_str(".\n");
                        }
                        ("quit", _) => return,
                        _ => answer.push_str("# Unknown command\n"),
                    }
                    if out.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A job's per-job metric, as a float (0 when absent).
fn job_metric(daemon: &Daemon, name: &str, job: &str) -> f64 {
    let (_, body) = http_get(&format!("{}/metrics", daemon.web_url()));
    let line = format!("datalog_rrd_poll_{name}{{job=\"{job}\"}} ");
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(&line)?.trim().parse().ok())
        .unwrap_or(0.0)
}

fn main() {
    let plugins = env_or("BENCH_PLUGINS", 200);
    let rounds = env_or("BENCH_ROUNDS", 6);
    let interval = std::env::var("BENCH_INTERVAL").unwrap_or_else(|_| "10s".into());
    let node_port = stub_node(plugins);
    let exporter_port = free_port();
    let exporter = Command::new("prometheus-node-exporter")
        .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok();
    let broker = Mosquitto::start();
    // Files written every 30 s, so that the window pays librrd's writes.
    let base = external(broker.port, "30s");
    let mut jobs = format!(
        "[[poll]]\nname = \"munin\"\nkind = \"munin\"\ntarget = \"127.0.0.1:{node_port}\"\n\
         interval = \"{interval}\"\ntimeout = \"8s\"\n"
    );
    if exporter.is_some() {
        jobs.push_str(&format!(
            "[[poll]]\nname = \"node\"\nkind = \"prometheus\"\n\
             target = \"http://127.0.0.1:{exporter_port}/metrics\"\nprofile = \"node\"\n\
             interval = \"{interval}\"\ntimeout = \"8s\"\n"
        ));
    } else {
        eprintln!("prometheus-node-exporter not installed: the munin stub alone.");
    }
    let daemon = Daemon::start_with_log(&format!("{base}{jobs}"), "info");
    let idle = Daemon::start_with_log(&base, "info");
    let rounds_done = |d: &Daemon| job_metric(d, "rounds_total", "munin") as usize;
    wait_for(Duration::from_secs(120), "the first round", || {
        (rounds_done(&daemon) >= 1).then_some(())
    });
    let first = rounds_done(&daemon);
    let (busy0, idle0) = (proc_stats(daemon.pid()).0, proc_stats(idle.pid()).0);
    let started = Instant::now();
    let mut durations = Vec::new();
    let mut seen = first;
    let limit = Duration::from_secs(60 * rounds as u64 + 120);
    while seen < first + rounds && started.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(200));
        let now = rounds_done(&daemon);
        if now > seen {
            seen = now;
            durations.push(job_metric(&daemon, "last_duration_seconds", "munin"));
        }
    }
    let (busy1, busy_hwm) = proc_stats(daemon.pid());
    let (idle1, idle_hwm) = proc_stats(idle.pid());
    let done = seen - first;
    assert!(done > 0, "no round finished in {limit:?}");
    let samples = job_metric(&daemon, "last_samples", "munin");
    let node_samples = job_metric(&daemon, "last_samples", "node");
    let cpu_per_round = ((busy1 - busy0) - (idle1 - idle0)) / done as f64;
    durations.sort_by(f64::total_cmp);
    println!(
        "poll: {plugins} munin plugins ({samples} samples a round) + node exporter ({node_samples} samples), every {interval}, {done} rounds"
    );
    println!(
        "  munin round: median {:.0} ms, max {:.0} ms (interval {interval})",
        durations[durations.len() / 2] * 1000.0,
        durations.last().unwrap() * 1000.0
    );
    println!(
        "  CPU added per round (both jobs, with writes every 30 s): {:.1} ms ({:.1} µs per sample)",
        cpu_per_round * 1000.0,
        cpu_per_round * 1e6 / (samples + node_samples).max(1.0)
    );
    println!(
        "  peak RSS: {} MB with the jobs, {} MB without",
        busy_hwm / 1024,
        idle_hwm / 1024
    );
    if let Some(mut e) = exporter {
        let _ = e.kill();
        let _ = e.wait();
    }
}
