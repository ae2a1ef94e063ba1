//! Counters every stage bumps and anyone may read (logs, `/metrics`), and
//! the one way bad input is refused: counted, and logged at a rate a flood
//! cannot turn into a flood of log lines ([`Refusals`], [`log_refusal!`]).
//!
//! Counters are relaxed atomics: each has one writer stage and readers only
//! want a recent value, so no lock and no ordering are needed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::model::{RejectReason, UnixMillis};

#[derive(Debug, Default)]
pub struct Metrics {
    pub messages_received: AtomicU64,
    pub samples_accepted: AtomicU64,
    /// Samples a config rule said to ignore.
    pub samples_ignored: AtomicU64,
    /// Discovery messages (Home Assistant configs, Homie attributes) read.
    pub discovery_messages: AtomicU64,
    /// Excluded topics and retained replays.
    pub messages_ignored: AtomicU64,
    rejected: [AtomicU64; RejectReason::ALL.len()],
    pub mqtt_connected: AtomicU64,
    pub mqtt_connections: AtomicU64,
    /// Counters the RRD thread bumps.
    pub rows_written: AtomicU64,
    pub rows_skipped: AtomicU64,
    pub rrd_updates: AtomicU64,
    pub rrd_update_errors: AtomicU64,
    pub files_created: AtomicU64,
    /// Journal bytes appended since start, and failed appends.
    pub journal_bytes: AtomicU64,
    pub journal_errors: AtomicU64,
    /// Snapshots written and their bytes; index files' bytes written:
    /// with the journal, what the daemon writes besides the RRD updates
    /// (SD-card wear, `scripts/sd-wear`).
    pub snapshots_written: AtomicU64,
    pub snapshot_bytes: AtomicU64,
    pub index_bytes: AtomicU64,
    /// Graphs librrd drew and the time it took, in microseconds.
    pub graphs_rendered: AtomicU64,
    pub graph_render_micros: AtomicU64,
    /// Batches written, and the time from a file's batch being handed to
    /// librrd to its answer, in microseconds (flush latency).
    pub flushes: AtomicU64,
    pub flush_micros: AtomicU64,
    /// Health probes (the systemd watchdog's) that the cache or the RRD
    /// thread did not answer in time: the watchdog was not fed.
    pub health_probes_failed: AtomicU64,
    /// Web requests refused for bad credentials.
    pub http_auth_failures: AtomicU64,
    /// What the embedded broker's gate refused, by reason.
    broker_refused: [AtomicU64; BrokerRefusal::ALL.len()],
    /// Steps of the system clock seen while running, and the last one's
    /// size in milliseconds (negative: set back).
    pub clock_steps: AtomicU64,
    pub clock_last_step_ms: AtomicI64,
    /// 1 while samples may be stamped with the clock (trusted, or given up
    /// on after `clock.max_wait`); samples waiting for it; 1 once given up.
    pub clock_trusted: AtomicU64,
    pub clock_waiting_samples: AtomicU64,
    pub clock_gave_up: AtomicU64,
}

impl Metrics {
    pub fn reject(&self, reason: RejectReason, n: u64) {
        self.rejected[reason.index()].fetch_add(n, Relaxed);
    }

    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.index()].load(Relaxed)
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(|c| c.load(Relaxed)).sum()
    }

    pub fn broker_refused(&self, reason: BrokerRefusal) -> u64 {
        self.broker_refused[reason as usize].load(Relaxed)
    }
}

/// Why the embedded broker's gate refused a connection or a message
/// (`broker_refused_total{reason}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRefusal {
    /// A CONNECT without user name or password, to a broker with users.
    NoCredentials,
    BadPassword,
    /// Refused without a check after repeated wrong passwords.
    Throttled,
    TooManyConnections,
    /// A PUBLISH (or a will) to a topic the account may not publish to.
    NotPermitted,
    /// A SUBSCRIBE filter beyond what the account may subscribe to.
    NotPermittedSubscribe,
    /// A PUBLISH held back by `max_publish_rate` (then passed on).
    RateLimited,
    /// A packet over `limits.max_payload_bytes`: the connection is closed.
    Oversized,
    /// Not MQTT 3.1.1, no CONNECT in time, or a malformed packet.
    Protocol,
}

impl BrokerRefusal {
    pub const ALL: [BrokerRefusal; 9] = [
        BrokerRefusal::NoCredentials,
        BrokerRefusal::BadPassword,
        BrokerRefusal::Throttled,
        BrokerRefusal::TooManyConnections,
        BrokerRefusal::NotPermitted,
        BrokerRefusal::NotPermittedSubscribe,
        BrokerRefusal::RateLimited,
        BrokerRefusal::Oversized,
        BrokerRefusal::Protocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BrokerRefusal::NoCredentials => "no_credentials",
            BrokerRefusal::BadPassword => "bad_password",
            BrokerRefusal::Throttled => "throttled",
            BrokerRefusal::TooManyConnections => "too_many_connections",
            BrokerRefusal::NotPermitted => "not_permitted",
            BrokerRefusal::NotPermittedSubscribe => "not_permitted_subscribe",
            BrokerRefusal::RateLimited => "rate_limited",
            BrokerRefusal::Oversized => "oversized",
            BrokerRefusal::Protocol => "protocol",
        }
    }
}

/// A kind of refusal [`Refusals`] counts: a reason for it, counted in
/// [`Metrics`].
pub trait Reason: Copy {
    const COUNT: usize;
    fn index(self) -> usize;
    fn count(self, metrics: &Metrics);
}

impl Reason for RejectReason {
    const COUNT: usize = RejectReason::ALL.len();
    fn index(self) -> usize {
        RejectReason::index(self)
    }
    fn count(self, metrics: &Metrics) {
        metrics.reject(self, 1);
    }
}

impl Reason for BrokerRefusal {
    const COUNT: usize = BrokerRefusal::ALL.len();
    fn index(self) -> usize {
        self as usize
    }
    fn count(self, metrics: &Metrics) {
        metrics.broker_refused[self as usize].fetch_add(1, Relaxed);
    }
}

/// Lets one warning through per `every_ms` and counts what it held back, so
/// a publisher sending garbage 1000 times a second costs one log line a
/// minute, and the line still says how many there were.
#[derive(Debug)]
pub struct RateLimiter {
    every_ms: i64,
    next_ms: UnixMillis,
    suppressed: u64,
}

impl RateLimiter {
    pub fn new(every_ms: i64) -> Self {
        RateLimiter {
            every_ms,
            next_ms: i64::MIN,
            suppressed: 0,
        }
    }

    /// `Some(n)` when a warning may be logged now; `n` were held back since
    /// the last one.
    pub fn allow(&mut self, now_ms: UnixMillis) -> Option<u64> {
        if now_ms >= self.next_ms {
            self.next_ms = now_ms.saturating_add(self.every_ms);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

/// Input refused, by reason: counted in `/metrics` (`rejected_total`), and
/// a warning allowed once a minute per reason (saying how many were held
/// back), the others logged at debug. Each stage that refuses input owns
/// one; [`log_refusal!`] logs what it decides.
#[derive(Debug)]
pub struct Refusals<R: Reason = RejectReason> {
    metrics: Arc<Metrics>,
    warnings: Vec<RateLimiter>,
    reason: std::marker::PhantomData<R>,
}

impl<R: Reason> Refusals<R> {
    pub fn new(metrics: Arc<Metrics>) -> Refusals<R> {
        Refusals {
            metrics,
            warnings: (0..R::COUNT).map(|_| RateLimiter::new(60_000)).collect(),
            reason: std::marker::PhantomData,
        }
    }

    /// Counts one refusal. `Some(held_back)`: log it as a warning now,
    /// `held_back` having been logged at debug since the last one.
    #[must_use]
    pub fn refuse(&mut self, reason: R, now_ms: UnixMillis) -> Option<u64> {
        reason.count(&self.metrics);
        self.warnings[reason.index()].allow(now_ms)
    }
}

/// Logs a refusal as [`Refusals::refuse`] decided: at WARN with
/// `held_back`, or at DEBUG. The rest is `tracing` fields and message.
macro_rules! log_refusal {
    ($decision:expr, $($fields_and_message:tt)+) => {
        match $decision {
            Some(held_back) => tracing::warn!(held_back, $($fields_and_message)+),
            None => tracing::debug!($($fields_and_message)+),
        }
    };
}
pub(crate) use log_refusal;

/// HTTP connections actix's HTTP/1 layer gave up on: a malformed request
/// line or header, a client gone in the middle of a request. actix says so
/// only as an ERROR log line per connection, which anyone who reaches the
/// port could repeat at will into the journal; the logging layer
/// (`cli::logging`) keeps those lines out and counts them here, the web
/// stage says how many once a minute. A process-wide static because the
/// logging layer exists before any [`Metrics`] does.
pub static HTTP_CLIENT_ERRORS: ClientErrors = ClientErrors::new();

/// A count, and what the last one said.
#[derive(Debug)]
pub struct ClientErrors {
    count: AtomicU64,
    last: std::sync::Mutex<String>,
}

impl ClientErrors {
    const fn new() -> ClientErrors {
        ClientErrors {
            count: AtomicU64::new(0),
            last: std::sync::Mutex::new(String::new()),
        }
    }

    pub fn add(&self, what: String) {
        self.count.fetch_add(1, Relaxed);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = what;
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    pub fn last(&self) -> String {
        self.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_count_every_one_and_warn_once_a_minute_per_reason() {
        let metrics = Arc::new(Metrics::default());
        let mut refusals = Refusals::new(metrics.clone());
        assert_eq!(refusals.refuse(RejectReason::Future, 0), Some(0));
        assert_eq!(refusals.refuse(RejectReason::Future, 10), None);
        assert_eq!(
            refusals.refuse(RejectReason::Oversize, 10),
            Some(0),
            "reasons apart"
        );
        assert_eq!(refusals.refuse(RejectReason::Future, 60_000), Some(1));
        assert_eq!(metrics.rejected(RejectReason::Future), 3);
        assert_eq!(metrics.rejected_total(), 4);
    }

    #[test]
    fn rate_limiter_counts_what_it_holds_back() {
        let mut r = RateLimiter::new(60_000);
        assert_eq!(r.allow(0), Some(0));
        assert_eq!(r.allow(1), None);
        assert_eq!(r.allow(59_999), None);
        assert_eq!(r.allow(60_000), Some(2));
        assert_eq!(r.allow(60_001), None);
        assert_eq!(r.allow(500_000), Some(1));
    }

    #[test]
    fn rejections_are_counted_per_reason() {
        let m = Metrics::default();
        m.reject(RejectReason::BadJson, 2);
        m.reject(RejectReason::Late, 1);
        assert_eq!(m.rejected(RejectReason::BadJson), 2);
        assert_eq!(m.rejected(RejectReason::Oversize), 0);
        assert_eq!(m.rejected_total(), 3);
    }
}
