//! The clock policy as one pure state machine: given readings of the
//! clocks and the evidence, it decides whether samples may be stamped with
//! the wall clock, which samples wait, and when they are released. It does
//! no I/O and keeps no time of its own: the cache task feeds it readings
//! and obeys what it returns (`watch.rs` is that shell), as rumqttc's
//! `MqttState` decides and its event loop acts.

use std::time::Duration;

use tokio::time::Instant;

use super::StepDetector;
use super::trust::{Evidence, Trust, TrustState};
use super::waiting::Waiting;
use crate::model::{HeldClock, Sample, UnixMillis};

/// The difference between the wall clock's and the monotonic clock's
/// progress that counts as a step (NTP slews small errors; it steps big
/// ones).
pub const STEP_TOLERANCE: Duration = Duration::from_secs(2);

/// Both clocks read at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    pub wall_ms: UnixMillis,
    /// Wall minus monotonic milliseconds (changes only when stepped).
    pub offset_ms: i64,
    /// tokio's monotonic clock (paused in tests).
    pub at: Instant,
}

/// What changed, for the log and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockNews {
    /// The wall clock jumped by this much (negative: set back); set back,
    /// samples wait until it reads again what it read before.
    Stepped { step_ms: i64 },
    /// The trust changed to this state.
    Trust(TrustState),
}

/// Samples that waited, re-timed: the cache takes them now.
#[derive(Debug, Default, PartialEq)]
pub struct Released {
    pub samples: Vec<Sample>,
    /// The largest move, to say in the log.
    pub moved_ms: i64,
}

/// The outcome of a check: what to say, and what to take.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    pub news: Vec<ClockNews>,
    pub released: Option<Released>,
}

#[derive(Debug)]
pub struct ClockKeeper {
    trust: Trust,
    steps: StepDetector,
    waiting: Waiting,
    /// This boot's id: held samples of another boot are not moved.
    boot: u64,
    /// Whether samples may be stamped, as last announced (the state may
    /// change without a decision: a step sets distrust at once).
    announced_usable: bool,
}

impl ClockKeeper {
    /// A keeper whose trust was decided once, at start (`trust.state()`).
    pub fn new(trust: Trust, boot: u64) -> ClockKeeper {
        let announced_usable = trust.state().is_usable();
        ClockKeeper {
            trust,
            steps: StepDetector::new(STEP_TOLERANCE),
            waiting: Waiting::default(),
            boot,
            announced_usable,
        }
    }

    pub fn max_wait(&self) -> Duration {
        self.trust.max_wait()
    }

    /// Samples waiting for the clock.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// A message received while the clock was not trusted: its samples
    /// stamped with the receive time wait, those with a time of their own
    /// go on (returned first). If the clock was trusted meanwhile, what
    /// waits is released at once (returned second).
    pub fn hold(
        &mut self,
        held: HeldClock,
        samples: Vec<Sample>,
        now: Reading,
    ) -> (Vec<Sample>, Option<Released>) {
        let own_time = self.waiting.hold(held, samples);
        let released = self.release_if_usable(now);
        (own_time, released)
    }

    /// A periodic check: a step of the wall clock since the last check,
    /// then the trust decided again from `evidence`; once the clock is
    /// usable, what waited is released.
    pub fn check(&mut self, now: Reading, evidence: &Evidence) -> Decision {
        let mut news = Vec::new();
        if let Some(step_ms) = self.steps.observe(now.wall_ms, now.at) {
            news.push(ClockNews::Stepped { step_ms });
            if step_ms < 0 {
                self.trust.set_back(now.wall_ms - step_ms, now.at);
            }
        }
        let before = self.trust.state();
        let state = self.trust.decide(evidence, now.at);
        if state != before || state.is_usable() != self.announced_usable {
            self.announced_usable = state.is_usable();
            news.push(ClockNews::Trust(state));
        }
        Decision {
            news,
            released: self.release_if_usable(now),
        }
    }

    /// At a stop without a journal, nothing else would keep what waits:
    /// it is released with the best time there is.
    pub fn release_at_stop(&mut self, now: Reading) -> Option<Released> {
        (!self.waiting.is_empty()).then(|| self.release(now))
    }

    fn release_if_usable(&mut self, now: Reading) -> Option<Released> {
        (self.trust.state().is_usable() && !self.waiting.is_empty()).then(|| self.release(now))
    }

    fn release(&mut self, now: Reading) -> Released {
        let (samples, moved_ms) = self.waiting.release(self.boot, now.wall_ms, now.offset_ms);
        Released { samples, moved_ms }
    }
}

#[cfg(test)]
mod tests {
    use super::super::trust::{Distrust, TrustPolicy};
    use super::*;

    const NOW: UnixMillis = 1_795_000_000_000;
    const DAY_MS: i64 = 86_400_000;

    fn sample(time_ms: i64) -> Sample {
        Sample {
            series: "a".into(),
            time_ms,
            value: 1.0,
        }
    }

    fn evidence(now_ms: UnixMillis, synced: bool) -> Evidence {
        Evidence {
            now_ms,
            sync_service: true,
            synced,
        }
    }

    /// A keeper waiting for a sync, its first decision taken at `start`.
    fn waiting_for_sync(start: Instant, wall_ms: UnixMillis) -> ClockKeeper {
        let mut trust = Trust::new(TrustPolicy::Auto, 0, 0, Duration::from_secs(3600), start);
        trust.decide(&evidence(wall_ms, false), start);
        ClockKeeper::new(trust, 7)
    }

    #[test]
    fn held_samples_wait_until_the_sync_then_go_stepped_forward() {
        let start = Instant::now();
        // Booted on a fake time 3 days behind; monotonic 1000 s.
        let fake = NOW - 3 * DAY_MS;
        let mut keeper = waiting_for_sync(start, fake);
        let at_receipt = Reading {
            wall_ms: fake,
            offset_ms: fake - 1_000_000,
            at: start,
        };
        let held = HeldClock {
            boot: 7,
            received_ms: fake,
            offset_ms: at_receipt.offset_ms,
        };
        let (own, released) = keeper.hold(held, vec![sample(fake), sample(NOW - 5)], at_receipt);
        assert_eq!(own, vec![sample(NOW - 5)], "a time of its own goes on");
        assert_eq!((released, keeper.waiting()), (None, 1));
        let first = keeper.check(at_receipt, &evidence(fake, false));
        assert_eq!(first, Decision::default(), "nothing new: still waits");

        // 10 s later NTP has stepped the clock 3 days forward and synced.
        let later = Reading {
            wall_ms: NOW + 10_000,
            offset_ms: NOW + 10_000 - 1_010_000,
            at: start + Duration::from_secs(10),
        };
        let decision = keeper.check(later, &evidence(later.wall_ms, true));
        assert_eq!(
            decision.news,
            [
                ClockNews::Stepped {
                    step_ms: 3 * DAY_MS
                },
                ClockNews::Trust(TrustState::Trusted)
            ]
        );
        let released = decision.released.expect("released once trusted");
        assert_eq!(released.samples, [sample(NOW)], "at its true time");
        assert_eq!((released.moved_ms, keeper.waiting()), (3 * DAY_MS, 0));
    }

    #[test]
    fn set_back_while_trusted_holds_new_samples_until_the_clock_catches_up() {
        let start = Instant::now();
        let mut trust = Trust::new(TrustPolicy::Auto, 0, 0, Duration::from_secs(3600), start);
        trust.decide(&evidence(NOW, true), start);
        let mut keeper = ClockKeeper::new(trust, 7);
        let reading = |wall_ms: i64, secs: u64| Reading {
            wall_ms,
            offset_ms: wall_ms - (secs as i64 * 1000),
            at: start + Duration::from_secs(secs),
        };
        assert!(
            keeper
                .check(reading(NOW, 0), &evidence(NOW, true))
                .news
                .is_empty()
        );
        // Set back 10 minutes, 10 s later.
        let back = NOW + 10_000 - 600_000;
        let decision = keeper.check(reading(back, 10), &evidence(back, true));
        assert_eq!(
            decision.news,
            [
                ClockNews::Stepped { step_ms: -600_000 },
                ClockNews::Trust(TrustState::Untrusted(Distrust::SetBack {
                    until_ms: NOW + 10_000
                }))
            ]
        );
        // A message now waits (the MQTT source holds it while untrusted).
        let held = HeldClock {
            boot: 7,
            received_ms: back,
            offset_ms: back - 10_000,
        };
        let (own, released) = keeper.hold(held, vec![sample(back)], reading(back, 10));
        assert!(own.is_empty() && released.is_none());
        // Put right 10 s later: trusted, released, moved by the 10 minutes.
        let right = NOW + 20_000;
        let decision = keeper.check(reading(right, 20), &evidence(right, true));
        assert_eq!(decision.news[0], ClockNews::Stepped { step_ms: 600_000 });
        assert_eq!(decision.news[1], ClockNews::Trust(TrustState::Trusted));
        assert_eq!(decision.released.unwrap().samples, [sample(NOW + 10_000)]);
    }

    #[test]
    fn what_waits_at_a_stop_goes_with_the_best_time_there_is() {
        let start = Instant::now();
        let mut keeper = waiting_for_sync(start, NOW);
        let now = Reading {
            wall_ms: NOW,
            offset_ms: NOW - 5_000,
            at: start,
        };
        assert_eq!(keeper.release_at_stop(now), None);
        let held = HeldClock {
            boot: 7,
            received_ms: NOW,
            offset_ms: now.offset_ms,
        };
        keeper.hold(held, vec![sample(NOW)], now);
        let released = keeper.release_at_stop(now).unwrap();
        assert_eq!(
            (released.samples, released.moved_ms),
            (vec![sample(NOW)], 0)
        );
    }
}
