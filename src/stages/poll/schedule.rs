//! When a job runs next. Pure: times in, times out.
//!
//! A job runs on its phase: the instants `jitter + k × interval` since the
//! epoch, so that jobs are spread over the interval (not all at :00) and a
//! job keeps its phase across restarts and reloads. A round that ends
//! after its next instant skips it (a job never overlaps itself), and the
//! skip is counted. While a target is down, rounds thin out: after `n`
//! failures in a row the job waits `2^(n-1)` intervals (at most 8, and no
//! more than 15 minutes unless the interval itself is longer), so a dead
//! host costs little and a living one is back within minutes.

use std::time::Duration;

use crate::model::UnixMillis;

const MAX_BACKOFF_FACTOR: i64 = 8;
const MAX_BACKOFF_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    interval_ms: i64,
    jitter_ms: i64,
    /// Failed rounds in a row.
    failures: u32,
}

/// What follows a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Next {
    pub at_ms: UnixMillis,
    /// Instants passed while the round ran.
    pub skipped_busy: u64,
    /// Instants left out to back off from a failing target.
    pub skipped_backoff: u64,
}

impl Schedule {
    pub fn new(interval: Duration, jitter: Duration) -> Schedule {
        let interval_ms = (interval.as_millis() as i64).max(1);
        Schedule {
            interval_ms,
            jitter_ms: (jitter.as_millis() as i64).rem_euclid(interval_ms),
            failures: 0,
        }
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The first instant of the phase at or after `now_ms`.
    pub fn first(&self, now_ms: UnixMillis) -> UnixMillis {
        let k = (now_ms - self.jitter_ms).div_euclid(self.interval_ms);
        let at = self.jitter_ms + k * self.interval_ms;
        if at < now_ms {
            at + self.interval_ms
        } else {
            at
        }
    }

    /// After the round due at `due_ms` ended at `ended_ms`, `ok` or not.
    pub fn after_round(&mut self, due_ms: UnixMillis, ended_ms: UnixMillis, ok: bool) -> Next {
        self.failures = if ok {
            0
        } else {
            self.failures.saturating_add(1)
        };
        // The first instant after the round's own and after its end.
        let normal = self.first(ended_ms.max(due_ms) + 1);
        let skipped_busy = ((normal - due_ms) / self.interval_ms - 1).max(0) as u64;
        let at_ms = if self.failures == 0 {
            normal
        } else {
            let factor = 1i64 << (self.failures - 1).min(3);
            let wait = (factor.min(MAX_BACKOFF_FACTOR) * self.interval_ms)
                .min(MAX_BACKOFF_MS.max(self.interval_ms));
            self.first(due_ms + wait).max(normal)
        };
        Next {
            at_ms,
            skipped_busy,
            skipped_backoff: ((at_ms - normal) / self.interval_ms) as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn every_minute_at(jitter_ms: i64) -> Schedule {
        Schedule::new(
            Duration::from_secs(60),
            Duration::from_millis(jitter_ms as u64),
        )
    }

    #[test]
    fn jobs_run_on_their_phase() {
        let s = every_minute_at(7_000);
        assert_eq!(s.first(0), 7_000);
        assert_eq!(s.first(7_000), 7_000);
        assert_eq!(s.first(7_001), MIN + 7_000);
        assert_eq!(s.first(10 * MIN + 59_000), 11 * MIN + 7_000);
    }

    #[test]
    fn a_round_that_overran_skips_and_counts() {
        let mut s = every_minute_at(0);
        let next = s.after_round(10 * MIN, 10 * MIN + 2_000, true);
        assert_eq!(
            next,
            Next {
                at_ms: 11 * MIN,
                skipped_busy: 0,
                skipped_backoff: 0
            }
        );
        // Waited for a free slot past two instants.
        let next = s.after_round(11 * MIN, 13 * MIN + 5, true);
        assert_eq!(next.at_ms, 14 * MIN);
        assert_eq!(next.skipped_busy, 2);
        // Ending exactly on the next instant: that instant is taken.
        let next = s.after_round(14 * MIN, 15 * MIN, true);
        assert_eq!((next.at_ms, next.skipped_busy), (16 * MIN, 1));
    }

    #[test]
    fn a_failing_target_is_polled_less_often_then_as_before() {
        let mut s = every_minute_at(0);
        let mut due = 0;
        let mut waits = Vec::new();
        for _ in 0..6 {
            let next = s.after_round(due, due + 1_000, false);
            waits.push((next.at_ms - due) / MIN);
            due = next.at_ms;
        }
        assert_eq!(waits, [1, 2, 4, 8, 8, 8]);
        assert_eq!(s.failures(), 6);
        let next = s.after_round(due, due + 1_000, true);
        assert_eq!(next.at_ms - due, MIN);
        assert_eq!(s.failures(), 0);
    }

    #[test]
    fn backoff_is_bounded_in_time_and_counted() {
        let mut s = Schedule::new(Duration::from_secs(300), Duration::ZERO);
        let mut due = 0;
        let mut last = Next {
            at_ms: 0,
            skipped_busy: 0,
            skipped_backoff: 0,
        };
        for _ in 0..5 {
            last = s.after_round(due, due + 1_000, false);
            due = last.at_ms;
        }
        // 5 minutes × 8 would be 40: capped at 15.
        assert_eq!(last.skipped_backoff, 2);
        let mut long = Schedule::new(Duration::from_secs(1800), Duration::ZERO);
        long.after_round(0, 1, false);
        assert_eq!(
            long.after_round(1_800_000, 1_800_001, false).at_ms,
            3_600_000
        );
    }
}
