//! Wall-clock time in Unix milliseconds, and the tokio instant at which a
//! given wall time comes; whether that wall clock can be trusted, and the
//! samples that wait until it is.
//!
//! Rows are aligned to UTC, so the cache needs wall time; its timers need
//! tokio instants. `System` reads the real clock (no drift over months of
//! uptime). `Anchored` derives wall time from tokio's clock, so tests that
//! pause and advance tokio time move the wall clock with it.
//!
//! The policy is pure: `trust.rs` decides from evidence, `waiting.rs` keeps
//! and re-times held samples, `keeper.rs` ties them to the step detector
//! and says what to release when. `evidence.rs` reads the machine, and
//! `watch.rs` is the shell the cache task owns: it reads, asks the keeper,
//! publishes and logs; the cache task only takes what it releases.

mod evidence;
mod keeper;
pub mod local;
mod trust;
mod waiting;
mod watch;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

pub use self::evidence::{EvidenceSources, boot_id};
pub use self::trust::TrustPolicy;
pub use self::watch::{CHECK_EVERY, ClockWatch};
use crate::model::{HeldClock, UnixMillis};

/// `[clock]`: when samples may be stamped with the system clock.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockConfig {
    pub trust: TrustPolicy,
    pub evidence: EvidenceSources,
    /// Past this without trust, what waited is written with the best time
    /// there is.
    pub max_wait: Duration,
}

/// Whether samples may be stamped with the wall clock now: set by the
/// cache task (which decides, `Trust`), read by the MQTT source at every
/// message. One writer, relaxed: a message stamped a moment before the
/// change is held and re-timed, which moves it by nothing.
#[derive(Debug)]
pub struct ClockStatus {
    trusted: AtomicBool,
    boot: u64,
}

impl ClockStatus {
    pub fn new(trusted: bool, boot: u64) -> ClockStatus {
        ClockStatus {
            trusted: AtomicBool::new(trusted),
            boot,
        }
    }

    pub fn set_trusted(&self, trusted: bool) {
        self.trusted.store(trusted, Relaxed);
    }

    pub fn trusted(&self) -> bool {
        self.trusted.load(Relaxed)
    }
}

/// The clock the MQTT source stamps messages with, and whether it may.
#[derive(Debug, Clone)]
pub struct Stamper {
    pub clock: Clock,
    pub status: std::sync::Arc<ClockStatus>,
}

impl Stamper {
    pub fn now_ms(&self) -> UnixMillis {
        self.clock.now_ms()
    }

    /// For a message received at `received_ms`: `None` when the clock is
    /// trusted, else what re-times it later.
    pub fn held(&self, received_ms: UnixMillis) -> Option<HeldClock> {
        (!self.status.trusted()).then(|| HeldClock {
            boot: self.status.boot,
            received_ms,
            offset_ms: self.clock.offset_ms(received_ms),
        })
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Clock {
    System,
    #[cfg(test)]
    Anchored {
        wall_ms: UnixMillis,
        at: Instant,
    },
}

impl Clock {
    /// A clock reading `wall_ms` now and advancing with tokio time.
    #[cfg(test)]
    pub fn anchored(wall_ms: UnixMillis) -> Clock {
        Clock::Anchored {
            wall_ms,
            at: Instant::now(),
        }
    }

    pub fn now_ms(&self) -> UnixMillis {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            #[cfg(test)]
            Clock::Anchored { wall_ms, at } => wall_ms + at.elapsed().as_millis() as i64,
        }
    }

    /// Wall minus monotonic milliseconds, given the wall clock's reading
    /// `wall_ms` now: it changes only when the wall clock is stepped.
    pub fn offset_ms(&self, wall_ms: UnixMillis) -> i64 {
        match self {
            Clock::System => wall_ms - evidence::monotonic_ms(),
            // Moves with tokio time like the wall clock: never stepped.
            #[cfg(test)]
            Clock::Anchored {
                wall_ms: anchor, ..
            } => *anchor + (wall_ms - self.now_ms()),
        }
    }

    /// The tokio instant at which the wall clock reads `wall_ms`.
    pub fn instant_at(&self, wall_ms: UnixMillis) -> Instant {
        let ahead = wall_ms.saturating_sub(self.now_ms()).max(0) as u64;
        // Clamp: a due time centuries away must not overflow `Instant`.
        Instant::now() + Duration::from_millis(ahead.min(86_400_000 * 365))
    }
}

/// Sleeps until `at`; forever without one (a `select!` branch that never
/// fires while there is nothing to wait for). A time already past returns
/// at once, without a trip through the timer.
pub async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) if at > Instant::now() => tokio::time::sleep_until(at).await,
        Some(_) => {}
        None => std::future::pending().await,
    }
}

/// Notices the system clock being stepped while the daemon runs (NTP's
/// first sync after a Raspberry Pi booted on `fake-hwclock`'s time, a
/// person, a bad time server): between two readings the wall clock and the
/// monotonic clock advance alike, and a difference beyond the tolerance is
/// a step. Pure: both readings are passed in (tokio's monotonic clock, so
/// that tests pausing it move both alike).
#[derive(Debug)]
pub struct StepDetector {
    last: Option<(UnixMillis, Instant)>,
    tolerance_ms: i64,
}

impl StepDetector {
    pub fn new(tolerance: Duration) -> StepDetector {
        StepDetector {
            last: None,
            tolerance_ms: tolerance.as_millis() as i64,
        }
    }

    /// Takes a reading; returns the step since the previous one, in
    /// milliseconds (positive: the wall clock jumped forward), if any.
    pub fn observe(&mut self, wall_ms: UnixMillis, monotonic: Instant) -> Option<i64> {
        let previous = self.last.replace((wall_ms, monotonic));
        let (last_wall, last_mono) = previous?;
        let wall = wall_ms.saturating_sub(last_wall);
        let mono = monotonic.saturating_duration_since(last_mono).as_millis() as i64;
        let step = wall.saturating_sub(mono);
        (step.abs() > self.tolerance_ms).then_some(step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_told_apart_from_time_passing() {
        let mut d = StepDetector::new(Duration::from_secs(2));
        let t0 = Instant::now();
        let w0 = 1_764_000_000_000;
        assert_eq!(d.observe(w0, t0), None, "nothing to compare yet");
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(d.observe(w0 + 10_500, t1), None, "half a second of drift");
        // NTP steps the clock 3 days forward (a Pi after a power cut).
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(
            d.observe(w0 + 20_500 + 3 * 86_400_000, t2),
            Some(3 * 86_400_000)
        );
        // Then someone sets it back an hour.
        let t3 = t2 + Duration::from_secs(10);
        assert_eq!(
            d.observe(w0 + 30_500 + 3 * 86_400_000 - 3_600_000, t3),
            Some(-3_600_000)
        );
        let t4 = t3 + Duration::from_secs(10);
        assert_eq!(
            d.observe(w0 + 40_500 + 3 * 86_400_000 - 3_600_000, t4),
            None
        );
    }
}
