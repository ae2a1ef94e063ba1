//! The daemon as a systemd service: readiness, reload and stop
//! notifications, a status line, and a watchdog that only pings while the
//! stages that matter answer.
//!
//! Everything goes through the `sd-notify` crate, which does nothing when
//! `NOTIFY_SOCKET` is unset: outside systemd this module costs a timer.
//!
//! The watchdog ping is earned, not sent from a timer that runs whatever
//! happens: every period the cache task and the RRD thread must each
//! answer a probe that waits in the same queue as their real work. A hung
//! librrd call (a stuck disk, an NFS mount gone) or a wedged cache task
//! stops the pings, and systemd restarts the service after `WatchdogSec`.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use sd_notify::NotifyState;
use tracing::{debug, warn};

use crate::cache::CacheHandle;
use crate::metrics::Metrics;
use crate::rrd::RrdHandle;

/// How often the status line is refreshed when no watchdog asks for more.
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// Talks to the service manager, if there is one.
#[derive(Debug, Clone, Copy)]
pub struct Notifier {
    /// `WATCHDOG_USEC` for this process: systemd kills it when no ping
    /// comes within this.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads the environment systemd sets (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
    /// `WATCHDOG_PID`).
    pub fn from_env() -> Notifier {
        Notifier {
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    pub fn ready(&self, status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// Before a configuration reload; `ready` follows it. systemd 253+
    /// wants the monotonic time with it (252 ignores it).
    pub fn reloading(&self) {
        let mut states = vec![
            NotifyState::Reloading,
            NotifyState::Status("Reloading the configuration"),
        ];
        states.extend(NotifyState::monotonic_usec_now().ok());
        send(&states);
    }

    pub fn stopping(&self) {
        send(&[
            NotifyState::Stopping,
            NotifyState::Status("Stopping: writing cached rows"),
        ]);
    }

    /// How often the watchdog task probes the stages: half the watchdog
    /// period (systemd's advice), or the status refresh without one.
    pub fn probe_every(&self) -> Duration {
        self.watchdog
            .map_or(STATUS_EVERY, |w| (w / 2).min(STATUS_EVERY))
    }

    /// Probes the cache task and the RRD thread every `probe_every`; when
    /// both answer in time, pings the watchdog (if any) and refreshes the
    /// status line. Runs until aborted.
    pub async fn watch(self, cache: CacheHandle, rrd: RrdHandle, metrics: Arc<Metrics>) {
        let every = self.probe_every();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut writes = WriteAge::default();
        let mut failing = false;
        loop {
            tick.tick().await;
            match probe(&cache, &rrd, every).await {
                Ok(series) => {
                    if failing {
                        warn!("The cache and the RRD thread answer again.");
                        failing = false;
                    }
                    if self.watchdog.is_some() {
                        send(&[NotifyState::Watchdog]);
                    }
                    let age = writes.age(metrics.rows_written.load(Relaxed), Instant::now());
                    let line = status_line(series, age, metrics.mqtt_connected.load(Relaxed) == 1);
                    send(&[NotifyState::Status(&line)]);
                }
                Err(stage) => {
                    metrics.health_probes_failed.fetch_add(1, Relaxed);
                    if !failing {
                        warn!(
                            stage,
                            wait = ?every,
                            "Did not answer its health probe in time; the watchdog is not fed."
                        );
                        failing = true;
                    }
                }
            }
        }
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        debug!(error = %e, "Cannot notify the service manager.");
    }
}

/// The series count when both stages answered within `limit`, otherwise the
/// stage that did not.
async fn probe(
    cache: &CacheHandle,
    rrd: &RrdHandle,
    limit: Duration,
) -> Result<usize, &'static str> {
    let stats = tokio::time::timeout(limit, cache.stats())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or("cache")?;
    tokio::time::timeout(limit, rrd.ping())
        .await
        .ok()
        .and_then(Result::ok)
        .ok_or("rrd")?;
    Ok(stats.series)
}

/// When rows were last written, from the RRD thread's row counter.
#[derive(Debug, Default)]
struct WriteAge {
    rows: u64,
    last: Option<Instant>,
}

impl WriteAge {
    fn age(&mut self, rows_written: u64, now: Instant) -> Option<Duration> {
        if rows_written != self.rows {
            self.rows = rows_written;
            self.last = Some(now);
        }
        self.last.map(|at| now.saturating_duration_since(at))
    }
}

/// What `systemctl status` shows under the unit.
fn status_line(series: usize, last_write: Option<Duration>, mqtt_connected: bool) -> String {
    let written = match last_write {
        Some(age) => format!("last write {}s ago", age.as_secs()),
        None => "nothing written yet".to_owned(),
    };
    let mqtt = if mqtt_connected {
        "MQTT connected"
    } else {
        "MQTT disconnected"
    };
    format!("{series} series, {written}, {mqtt}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_says_series_last_write_and_connection() {
        assert_eq!(
            status_line(3, None, false),
            "3 series, nothing written yet, MQTT disconnected"
        );
        assert_eq!(
            status_line(42, Some(Duration::from_millis(61_900)), true),
            "42 series, last write 61s ago, MQTT connected"
        );
    }

    #[test]
    fn write_age_restarts_when_rows_are_written() {
        let start = Instant::now();
        let mut w = WriteAge::default();
        assert_eq!(w.age(0, start), None);
        assert_eq!(w.age(5, start), Some(Duration::ZERO));
        let later = start + Duration::from_secs(30);
        assert_eq!(w.age(5, later), Some(Duration::from_secs(30)));
        assert_eq!(w.age(9, later), Some(Duration::ZERO));
    }

    #[test]
    fn probes_at_half_the_watchdog_period_at_most_every_ten_seconds() {
        let n = |w: Option<u64>| Notifier {
            watchdog: w.map(Duration::from_secs),
        };
        assert_eq!(n(None).probe_every(), STATUS_EVERY);
        assert_eq!(n(Some(6)).probe_every(), Duration::from_secs(3));
        assert_eq!(n(Some(120)).probe_every(), STATUS_EVERY);
    }
}
