//! Ingest benchmark: SERIES × VALUES messages at QoS 0 through a real
//! mosquitto into the daemon, each value with its own `ts` one step apart so
//! each is its own RRD row. Measures messages/s until every value is in the
//! RRD files (read back), values lost, the daemon's peak RSS and CPU time.
//!
//! A bare rumqttc subscriber on the same broker in the same run is the
//! yardstick: the machine is shared and noisy, so the ratio means more than
//! the absolute figure.
//!
//!     cargo bench --bench ingest                 # 1000 series × 100 values, QoS 0
//!     BENCH_SERIES=200 BENCH_VALUES=50 cargo bench --bench ingest
//!     BENCH_QOS=1 BENCH_JOURNAL=always cargo bench --bench ingest
//!
//! BENCH_JOURNAL is the daemon's `journal.sync`: interval (default),
//! always, or off (no journal).

#[path = "../tests/e2e/support.rs"]
mod support;

use std::ffi::CString;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use support::{Daemon, Mosquitto, env_or, now_s, proc_stats};

fn topic(i: usize) -> String {
    format!("bench/s{i:05}")
}

fn value(i: usize, j: usize) -> f64 {
    j as f64 + i as f64 / 100_000.0
}

/// The QoS of the whole run (BENCH_QOS, 0 or 1).
fn qos() -> QoS {
    if env_or("BENCH_QOS", 0) == 1 {
        QoS::AtLeastOnce
    } else {
        QoS::AtMostOnce
    }
}

/// Publishes every message, value-major so each file's values arrive in
/// time order; returns when the last one has left the socket and, at QoS 1,
/// when the broker has acknowledged every one (a DISCONNECT sent earlier
/// would drop the publishes still in flight).
async fn publish_all(port: u16, series: usize, values: usize, t0: i64) {
    let mut opts = MqttOptions::new(format!("bench-pub-{t0}"), "127.0.0.1", port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    opts.set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(opts, 4096);
    let total = series * values;
    let (acked_tx, acked_rx) = tokio::sync::oneshot::channel();
    let driver = tokio::spawn(async move {
        let mut acked = 0;
        let mut acked_tx = Some(acked_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked += 1;
                    if acked == total
                        && let Some(tx) = acked_tx.take()
                    {
                        let _ = tx.send(());
                    }
                }
                Ok(_) => {}
            }
        }
    });
    for j in 0..values {
        for i in 0..series {
            let payload = format!(r#"{{"ts":{},"v":{}}}"#, t0 + 60 * j as i64, value(i, j));
            client
                .publish(topic(i), qos(), false, payload)
                .await
                .unwrap();
        }
    }
    if qos() == QoS::AtLeastOnce {
        let _ = tokio::time::timeout(Duration::from_secs(60), acked_rx).await;
    }
    client.disconnect().await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(60), driver).await;
}

/// The yardstick: how long a bare subscriber takes to receive everything.
async fn baseline(port: u16, series: usize, values: usize, t0: i64) -> (f64, usize) {
    let total = series * values;
    let mut opts = MqttOptions::new("bench-baseline", "127.0.0.1", port);
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    client.subscribe("bench/#", qos()).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await.unwrap() {
            break;
        }
    }
    let start = Instant::now();
    let publisher = tokio::spawn(publish_all(port, series, values, t0));
    let mut got = 0;
    while got < total {
        match tokio::time::timeout(Duration::from_secs(5), eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(_)))) => got += 1,
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let _ = publisher.await;
    (secs, got)
}

/// librrd's last update of a file (header read only), 0 if unreadable.
fn last_update(path: &Path) -> i64 {
    let c = CString::new(path.to_string_lossy().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; rrd_last_r reads the file's header.
    let t = unsafe { rrd_sys::rrd_last_r(c.as_ptr()) };
    unsafe { rrd_sys::rrd_clear_error() };
    t.max(0)
}

/// How many of the expected values each file holds.
fn count_values(path: &Path, i: usize, values: usize, t0: i64) -> usize {
    let start = std::time::UNIX_EPOCH + Duration::from_secs((t0 - 120) as u64);
    let end = std::time::UNIX_EPOCH + Duration::from_secs((t0 + 60 * values as i64) as u64);
    let Ok(data) = rrd::ops::fetch::fetch(
        path,
        rrd::ConsolidationFn::Avg,
        start,
        end,
        Duration::from_secs(60),
    ) else {
        return 0;
    };
    let got: Vec<f64> = data
        .rows()
        .iter()
        .filter_map(|r| r.as_slice().first().copied())
        .filter(|v| !v.is_nan())
        .collect();
    if i == 0 && std::env::var("BENCH_DEBUG").is_ok() {
        eprintln!(
            "file 0: {} known rows, first {:?} last {:?}, start {:?} step {:?}",
            got.len(),
            got.first(),
            got.last(),
            data.start(),
            data.step()
        );
    }
    // librrd stores a GAUGE as value × interval / step: the last bit may differ.
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    let found: Vec<usize> = (0..values)
        .filter(|&j| got.iter().any(|&g| close(g, value(i, j))))
        .collect();
    if found.len() < values && i < 5 {
        let missing: Vec<usize> = (0..values).filter(|j| !found.contains(j)).take(5).collect();
        eprintln!(
            "file {i}: missing values #{missing:?} ({} known rows)",
            got.len()
        );
    }
    found.len()
}

/// Anonymous and file-backed resident KB now: librrd's graphics libraries
/// (cairo, pango…) are file-backed and shared; anonymous memory is ours.
fn rss_split(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (kb("RssAnon:"), kb("RssFile:"))
}

struct RunResult {
    peak_anon_kb: u64,
    peak_file_kb: u64,
    secs: f64,
    publish_secs: f64,
    lost: usize,
}

async fn daemon_run(
    daemon: &Daemon,
    port: u16,
    series: usize,
    values: usize,
    t0: i64,
) -> RunResult {
    let total = series * values;
    let last_t = t0 + 60 * (values as i64 - 1);
    let start = Instant::now();
    let pid = daemon.pid();
    let peaks = std::sync::Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let sampler = {
        let peaks = peaks.clone();
        tokio::spawn(async move {
            loop {
                let (a, f) = rss_split(pid);
                peaks[0].fetch_max(a, Relaxed);
                peaks[1].fetch_max(f, Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    publish_all(port, series, values, t0).await;
    let publish_secs = start.elapsed().as_secs_f64();
    let data = daemon.data();
    let paths: Vec<_> = (0..series)
        .map(|i| data.join(format!("{}/v.rrd", topic(i))))
        .collect();
    let mut done = vec![false; series];
    let deadline = Instant::now() + Duration::from_secs(60);
    // Watch the last series published first: opening every file in a tight
    // loop would compete with the daemon for the CPU and for file locks.
    let sentinel = &paths[series - 1];
    while Instant::now() < deadline && last_update(sentinel) < last_t {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    while Instant::now() < deadline && done.iter().any(|d| !d) {
        for (k, p) in paths.iter().enumerate() {
            if !done[k] && last_update(p) >= last_t {
                done[k] = true;
            }
        }
        if done.iter().any(|d| !d) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    sampler.abort();
    let (peak_anon_kb, peak_file_kb) = (peaks[0].load(Relaxed), peaks[1].load(Relaxed));
    let found: usize = paths
        .iter()
        .enumerate()
        .map(|(i, p)| count_values(p, i, values, t0))
        .sum();
    RunResult {
        peak_anon_kb,
        peak_file_kb,
        secs,
        publish_secs,
        lost: total - found,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / test harness probing
    }
    let series = env_or("BENCH_SERIES", 1000);
    let values = env_or("BENCH_VALUES", 100);
    let total = series * values;
    let broker = Mosquitto::start();
    let t0 = (now_s() / 60) * 60 - 60 * (3 * values as i64 + 10);

    let (base_secs, base_got) = baseline(broker.port, series, values, t0).await;
    println!(
        "bare subscriber:  {total} msgs in {base_secs:.2}s = {:.0} msg/s, received {base_got}",
        total as f64 / base_secs
    );

    let journal = std::env::var("BENCH_JOURNAL").unwrap_or_else(|_| "interval".into());
    let journal_conf = match journal.as_str() {
        "off" => "enabled = false".to_owned(),
        sync => format!("sync = \"{sync}\""),
    };
    // Snapshots once an hour: the journal then keeps every record, so its
    // size per message can be read off at the end.
    let config = format!(
        "[mqtt]\nbroker = \"mqtt://127.0.0.1:{}\"\nclient_id = \"bench-daemon\"\nqos = {}\n\
         [cache]\nflush_after = \"{}\"\nflush_jitter = \"0s\"\nstats_every = \"1h\"\nsnapshot_every = \"1h\"\n\
         [journal]\n{journal_conf}\n[limits]\nmax_series = 1000000\n",
        broker.port,
        env_or("BENCH_QOS", 0),
        std::env::var("BENCH_FLUSH_AFTER").unwrap_or_else(|_| "500ms".into())
    );
    println!("QoS {}, journal {journal}", env_or("BENCH_QOS", 0));
    let mut daemon = Daemon::start_with_log(
        &config,
        "warn,datalog_rrd::mqtt=info,datalog_rrd::stages::mqtt=info",
    );
    let pid = daemon.pid();
    let runs = [
        ("cold (creates files)", t0),
        ("warm (files exist)", t0 + 60 * values as i64),
    ];
    let skip_cold = std::env::var("BENCH_WARM_ONLY").is_ok();
    let mut runs_done = 0;
    for (label, start_t) in runs.into_iter().skip(skip_cold as usize) {
        runs_done += 1;
        let (cpu_before, _) = proc_stats(pid);
        let r = daemon_run(&daemon, broker.port, series, values, start_t).await;
        let (cpu_after, hwm_kb) = proc_stats(pid);
        let cpu = cpu_after - cpu_before;
        println!(
            "daemon {label}: {total} msgs in {:.2}s = {:.0} msg/s end to end ({:.0}% of bare), publish {:.2}s, lost {}, \
             daemon CPU {cpu:.2}s = {:.1} µs/msg, peak RSS {:.1} MB (sampled: anon {:.1} MB + file-backed {:.1} MB)",
            r.secs,
            total as f64 / r.secs,
            100.0 * base_secs / r.secs,
            r.publish_secs,
            r.lost,
            cpu * 1e6 / total as f64,
            hwm_kb as f64 / 1024.0,
            r.peak_anon_kb as f64 / 1024.0,
            r.peak_file_kb as f64 / 1024.0,
        );
    }
    let journal_dir = daemon.data().join("journal");
    let journal_bytes: u64 = std::fs::read_dir(&journal_dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    if journal_bytes > 0 {
        let messages = (total * runs_done) as f64;
        println!(
            "journal: {journal_bytes} bytes for {messages} messages = {:.1} bytes/sample",
            journal_bytes as f64 / messages
        );
    }
    let status = daemon.stop(Duration::from_secs(30));
    println!("daemon stopped: {status}");
    let log = daemon.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    println!("daemon warnings: {}", warnings.len());
    for w in warnings.iter().take(10) {
        println!("  {w}");
    }
}
