//! `GET /metrics` in Prometheus' text format, and `GET /healthz`.
//!
//! The counters are the ones every stage already bumps (`metrics.rs`); the
//! cache's gauges are asked of the cache task at scrape time, so they are
//! current. The format is a few lines per metric; writing it here costs
//! less than bridging our atomics into a registry crate.

use std::fmt::Write;
use std::sync::atomic::Ordering::Relaxed;

use actix_web::{HttpResponse, web};

use super::State;
use super::access::Access;
use crate::cache::CacheStats;
use crate::metrics::{BrokerRefusal, Metrics};
use crate::model::RejectReason;

/// `/metrics`: for admins when users are configured (it counts every
/// series and file, whoever may see them).
pub(crate) async fn metrics(state: web::Data<State>, access: Access) -> HttpResponse {
    if !access.sees_all() {
        return HttpResponse::Forbidden()
            .content_type("text/plain; charset=utf-8")
            .body("/metrics is for admins\n");
    }
    let stats = state.cache.stats().await.ok();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(render(&state.metrics, stats, state.journal_enabled) + &jobs(&state.jobs))
}

/// 200 while the cache and the RRD thread run; the MQTT connection is
/// reported but does not fail the check (the daemon reconnects by itself,
/// and restarting it would not bring a broker back).
pub(crate) async fn healthz(state: web::Data<State>) -> HttpResponse {
    let cache_ok = state.cache.stats().await.is_ok();
    let rrd_ok = state.rrd.is_running();
    let mqtt = state.metrics.mqtt_connected.load(Relaxed) == 1;
    let body = serde_json::json!({
        "status": if cache_ok && rrd_ok { "ok" } else { "failing" },
        "cache": cache_ok,
        "rrd": rrd_ok,
        "mqtt_connected": mqtt,
        "clock_steps": state.metrics.clock_steps.load(Relaxed),
        "clock_last_step_s": state.metrics.clock_last_step_ms.load(Relaxed) as f64 / 1000.0,
        "clock_trusted": state.metrics.clock_trusted.load(Relaxed) == 1,
        "clock_waiting_samples": state.metrics.clock_waiting_samples.load(Relaxed),
        "clock_gave_up": state.metrics.clock_gave_up.load(Relaxed) == 1,
    });
    if cache_ok && rrd_ok {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

struct Out(String);

impl Out {
    fn metric(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        let _ = writeln!(
            self.0,
            "# HELP datalog_rrd_{name} {help}\n# TYPE datalog_rrd_{name} {kind}\ndatalog_rrd_{name} {value}"
        );
    }

    fn counter(&mut self, name: &str, help: &str, c: &std::sync::atomic::AtomicU64) {
        self.metric(name, "counter", help, c.load(Relaxed));
    }

    /// A counter with a `reason` label.
    fn by_reason<'a>(
        &mut self,
        name: &str,
        help: &str,
        rows: impl Iterator<Item = (&'a str, u64)>,
    ) {
        let _ = writeln!(
            self.0,
            "# HELP datalog_rrd_{name} {help}\n# TYPE datalog_rrd_{name} counter"
        );
        for (reason, value) in rows {
            let _ = writeln!(self.0, "datalog_rrd_{name}{{reason=\"{reason}\"}} {value}");
        }
    }

    /// A summary without quantiles: total seconds and count.
    fn seconds(&mut self, name: &str, help: &str, micros: u64, count: u64) {
        let _ = writeln!(
            self.0,
            "# HELP datalog_rrd_{name} {help}\n# TYPE datalog_rrd_{name} summary\n\
             datalog_rrd_{name}_sum {}\ndatalog_rrd_{name}_count {count}",
            micros as f64 / 1e6
        );
    }
}

/// The whole page: a section per stage, in data-flow order.
pub(crate) fn render(m: &Metrics, stats: Option<CacheStats>, journal: bool) -> String {
    let mut o = Out(String::with_capacity(4096));
    ingest(&mut o, m);
    if let Some(stats) = stats {
        cache(&mut o, stats);
    }
    rrd(&mut o, m);
    if journal {
        self::journal(&mut o, m);
    }
    snapshots(&mut o, m);
    connections(&mut o, m);
    clock(&mut o, m);
    o.0
}

/// Per poll job: its last success, duration and samples, its errors by
/// kind, its skipped rounds.
pub(crate) fn jobs(jobs: &crate::poll::JobsStatus) -> String {
    use crate::poll::PollErrorKind;
    let all = jobs.snapshot();
    let mut o = String::new();
    if all.is_empty() {
        return o;
    }
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(
            o,
            "# HELP datalog_rrd_poll_{name} {help}\n# TYPE datalog_rrd_poll_{name} {kind}"
        );
    };
    // Job names are `[A-Za-z0-9_-]`: nothing to escape.
    type Value = fn(&crate::poll::JobStatus) -> Option<f64>;
    let gauges: [(&str, &str, &str, Value); 6] = [
        (
            "last_success_timestamp_seconds",
            "gauge",
            "When the job last had an answer.",
            |s| s.last_success_ms.map(|t| t as f64 / 1000.0),
        ),
        (
            "last_duration_seconds",
            "gauge",
            "How long the job's last round took.",
            |s| s.last_duration_ms.map(|d| d as f64 / 1000.0),
        ),
        (
            "last_samples",
            "gauge",
            "Samples the job's last round gave.",
            |s| Some(s.last_samples as f64),
        ),
        (
            "samples_total",
            "counter",
            "Samples the job has given.",
            |s| Some(s.samples_total as f64),
        ),
        ("rounds_total", "counter", "Rounds the job has run.", |s| {
            Some(s.rounds_total as f64)
        }),
        (
            "failing",
            "gauge",
            "Failed rounds in a row (0: the target answers).",
            |s| Some(f64::from(s.failing)),
        ),
    ];
    for (name, kind, help, value) in gauges {
        family(&mut o, name, kind, help);
        for (job, s) in &all {
            if let Some(v) = value(s) {
                let _ = writeln!(o, "datalog_rrd_poll_{name}{{job=\"{job}\"}} {v}");
            }
        }
    }
    family(
        &mut o,
        "errors_total",
        "counter",
        "Failed rounds or parts of rounds, by kind.",
    );
    for (job, s) in &all {
        for kind in PollErrorKind::ALL {
            let n = s.errors.get(&kind).copied().unwrap_or(0);
            let _ = writeln!(
                o,
                "datalog_rrd_poll_errors_total{{job=\"{job}\",kind=\"{}\"}} {n}",
                kind.as_str()
            );
        }
    }
    family(
        &mut o,
        "skipped_rounds_total",
        "counter",
        "Rounds not run: the previous one still ran (busy), or the target was failing (backoff).",
    );
    for (job, s) in &all {
        let _ = writeln!(
            o,
            "datalog_rrd_poll_skipped_rounds_total{{job=\"{job}\",reason=\"busy\"}} {}",
            s.skipped_busy
        );
        let _ = writeln!(
            o,
            "datalog_rrd_poll_skipped_rounds_total{{job=\"{job}\",reason=\"backoff\"}} {}",
            s.skipped_backoff
        );
    }
    o
}

/// What came in over MQTT and what the cache took.
fn ingest(o: &mut Out, m: &Metrics) {
    o.counter(
        "messages_received_total",
        "MQTT messages received.",
        &m.messages_received,
    );
    o.counter(
        "messages_ignored_total",
        "Messages on excluded topics, and retained replays.",
        &m.messages_ignored,
    );
    o.by_reason(
        "rejected_total",
        "Messages or samples refused, by reason.",
        RejectReason::ALL
            .iter()
            .map(|&r| (r.as_str(), m.rejected(r))),
    );
    o.counter(
        "samples_accepted_total",
        "Samples taken by the cache.",
        &m.samples_accepted,
    );
    o.counter(
        "samples_ignored_total",
        "Samples dropped by an `ignore` rule.",
        &m.samples_ignored,
    );
    o.counter(
        "discovery_messages_total",
        "Home Assistant discovery configs and Homie attributes read.",
        &m.discovery_messages,
    );
}

/// The cache's gauges, asked of the cache task at scrape time.
fn cache(o: &mut Out, s: CacheStats) {
    o.metric("series", "gauge", "Series in the cache.", s.series);
    o.metric("files", "gauge", "Files in the cache.", s.files);
    o.metric(
        "pending_rows",
        "gauge",
        "Rows waiting for their flush.",
        s.pending_rows,
    );
}

/// What librrd wrote and drew.
fn rrd(o: &mut Out, m: &Metrics) {
    o.counter(
        "rows_written_total",
        "Rows librrd accepted.",
        &m.rows_written,
    );
    o.counter(
        "rows_skipped_total",
        "Rows dropped: not newer than the file, or refused alone by librrd.",
        &m.rows_skipped,
    );
    o.counter("rrd_updates_total", "librrd update calls.", &m.rrd_updates);
    o.counter(
        "rrd_update_errors_total",
        "Batches librrd could not (fully) write; their rows are kept for a retry.",
        &m.rrd_update_errors,
    );
    o.counter(
        "files_created_total",
        "RRD files created.",
        &m.files_created,
    );
    o.seconds(
        "flush_seconds",
        "Time librrd took to write each file's batch.",
        m.flush_micros.load(Relaxed),
        m.flushes.load(Relaxed),
    );
    o.seconds(
        "graph_render_seconds",
        "Time librrd took to draw each graph.",
        m.graph_render_micros.load(Relaxed),
        m.graphs_rendered.load(Relaxed),
    );
}

/// The journal: with snapshots and the index, what the daemon writes
/// besides the RRD updates.
fn journal(o: &mut Out, m: &Metrics) {
    o.counter(
        "journal_bytes_total",
        "Bytes appended to the journal.",
        &m.journal_bytes,
    );
    o.counter(
        "journal_errors_total",
        "Failed journal appends.",
        &m.journal_errors,
    );
}

/// Snapshots and index files written.
fn snapshots(o: &mut Out, m: &Metrics) {
    o.counter(
        "snapshots_total",
        "Cache snapshots written.",
        &m.snapshots_written,
    );
    o.counter(
        "snapshot_bytes_total",
        "Bytes of cache snapshots written.",
        &m.snapshot_bytes,
    );
    o.counter(
        "index_bytes_total",
        "Bytes of index files (index.json, index.txt) written.",
        &m.index_bytes,
    );
}

/// The MQTT connection, web logins and the embedded broker's refusals.
fn connections(o: &mut Out, m: &Metrics) {
    o.metric(
        "mqtt_connected",
        "gauge",
        "1 while connected to the MQTT broker.",
        m.mqtt_connected.load(Relaxed),
    );
    o.counter(
        "mqtt_connections_total",
        "Connections made to the broker.",
        &m.mqtt_connections,
    );
    o.counter(
        "health_probes_failed_total",
        "Health probes the cache or the RRD thread did not answer in time (the systemd watchdog was not fed).",
        &m.health_probes_failed,
    );
    o.counter(
        "http_auth_failures_total",
        "Web requests refused for bad credentials.",
        &m.http_auth_failures,
    );
    o.metric(
        "http_bad_requests_total",
        "counter",
        "HTTP connections given up on: malformed requests, clients gone mid-request.",
        crate::metrics::HTTP_CLIENT_ERRORS.count(),
    );
    o.by_reason(
        "broker_refused_total",
        "Connections and messages the embedded broker refused, by reason.",
        BrokerRefusal::ALL
            .iter()
            .map(|&r| (r.as_str(), m.broker_refused(r))),
    );
}

/// The system clock: its steps and whether it is trusted.
fn clock(o: &mut Out, m: &Metrics) {
    o.counter(
        "clock_steps_total",
        "Steps of the system clock seen while running.",
        &m.clock_steps,
    );
    o.metric(
        "clock_last_step_seconds",
        "gauge",
        "The last step of the system clock (negative: set back), 0 if none.",
        m.clock_last_step_ms.load(Relaxed) as f64 / 1000.0,
    );
    o.metric(
        "clock_trusted",
        "gauge",
        "1 while samples are stamped with the system clock, 0 while they wait for it.",
        m.clock_trusted.load(Relaxed),
    );
    o.metric(
        "clock_waiting_samples",
        "gauge",
        "Samples waiting for the system clock to be trusted.",
        m.clock_waiting_samples.load(Relaxed),
    );
    o.metric(
        "clock_gave_up",
        "gauge",
        "1 once clock.max_wait passed without a trusted clock.",
        m.clock_gave_up.load(Relaxed),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_line_is_preceded_by_its_type() {
        let m = Metrics::default();
        m.reject(RejectReason::BadJson, 3);
        m.flushes.store(2, Relaxed);
        m.flush_micros.store(1_500_000, Relaxed);
        let stats = CacheStats {
            files: 2,
            series: 3,
            pending_rows: 4,
        };
        let text = render(&m, Some(stats), false);
        assert!(text.contains("datalog_rrd_rejected_total{reason=\"bad_json\"} 3\n"));
        assert!(text.contains("datalog_rrd_pending_rows 4\n"));
        assert!(
            text.contains("datalog_rrd_flush_seconds_sum 1.5\ndatalog_rrd_flush_seconds_count 2\n")
        );
        assert!(!text.contains("journal"));
        assert!(render(&m, None, true).contains("datalog_rrd_journal_bytes_total 0"));
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let base = name.trim_end_matches("_sum").trim_end_matches("_count");
                assert!(typed.contains(name) || typed.contains(base), "{line}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok(), "{line}");
            }
        }
    }
}
