//! The shell around the pure [`ClockKeeper`]: reads the clocks and the
//! evidence, publishes the decision to the MQTT source ([`ClockStatus`])
//! and the metrics, and logs what changed. The cache task owns one and
//! takes the samples it releases.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use super::keeper::{ClockKeeper, ClockNews, Reading, Released};
use super::trust::{Trust, TrustState};
use super::{Clock, ClockConfig, ClockStatus, EvidenceSources, Stamper, boot_id};
use crate::metrics::Metrics;
use crate::model::{HeldClock, Sample, UnixMillis};

/// How often the cache task checks the clock: a step is seen, and trust
/// decided again, within this.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// The build's time (`build.rs`): a clock reading earlier is wrong.
const BUILT_MS: i64 = match i64::from_str_radix(env!("DATALOG_RRD_BUILT_S"), 10) {
    Ok(s) => s * 1000,
    Err(_) => 0,
};

#[derive(Debug)]
pub struct ClockWatch {
    keeper: ClockKeeper,
    sources: EvidenceSources,
    status: Arc<ClockStatus>,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl ClockWatch {
    /// Decides, before the first message is stamped, whether the system
    /// clock can be trusted, from `config`'s evidence and the data already
    /// written (`newest_data_ms`).
    pub fn start(
        config: &ClockConfig,
        clock: Clock,
        newest_data_ms: UnixMillis,
        metrics: Arc<Metrics>,
    ) -> ClockWatch {
        let mut trust = Trust::new(
            config.trust,
            newest_data_ms,
            BUILT_MS,
            config.max_wait,
            Instant::now(),
        );
        let now_ms = clock.now_ms();
        let state = trust.decide(&config.evidence.read(now_ms), Instant::now());
        if let TrustState::Untrusted(why) = state {
            warn!(?why, clock = %format_ms(now_ms), max_wait = ?config.max_wait,
                "The system clock is not trusted yet: samples without a time of their own wait for it (clock.trust).");
        }
        metrics
            .clock_trusted
            .store(u64::from(state.is_usable()), Relaxed);
        let boot = boot_id();
        ClockWatch {
            keeper: ClockKeeper::new(trust, boot),
            sources: config.evidence.clone(),
            status: Arc::new(ClockStatus::new(state.is_usable(), boot)),
            clock,
            metrics,
        }
    }

    /// A clock always trusted (`clock.trust = "always"`), for tests.
    #[cfg(test)]
    pub fn always_trusted(clock: Clock, metrics: Arc<Metrics>) -> ClockWatch {
        let config = ClockConfig {
            trust: super::TrustPolicy::Always,
            evidence: EvidenceSources {
                sync_flag: "/nonexistent".into(),
                sync_services: Vec::new(),
                kernel_status: false,
            },
            max_wait: Duration::from_secs(3600),
        };
        ClockWatch::start(&config, clock, 0, metrics)
    }

    /// What the MQTT source stamps messages with.
    pub fn stamper(&self) -> Stamper {
        Stamper {
            clock: self.clock,
            status: self.status.clone(),
        }
    }

    /// Samples waiting for the clock.
    pub fn waiting(&self) -> usize {
        self.keeper.waiting()
    }

    /// A message stamped while the clock was not trusted: the samples that
    /// go on now (a time of their own), and those released if the clock
    /// was trusted meanwhile (all that waited, re-timed).
    pub fn hold(&mut self, held: HeldClock, samples: Vec<Sample>) -> (Vec<Sample>, Vec<Sample>) {
        let (own_time, released) = self.keeper.hold(held, samples, self.reading());
        let released = released.map(|r| self.take(r)).unwrap_or_default();
        self.publish_waiting();
        (own_time, released)
    }

    /// The periodic check (every [`CHECK_EVERY`]): what changed is said, and
    /// the samples released are returned for the cache.
    pub fn check(&mut self) -> Vec<Sample> {
        let now = self.reading();
        let evidence = self.sources.read(now.wall_ms);
        let decision = self.keeper.check(now, &evidence);
        for news in decision.news {
            self.say(news);
        }
        decision
            .released
            .map(|released| self.take(released))
            .unwrap_or_default()
    }

    /// At a stop without a journal: what waits, with the best time there is.
    pub fn release_at_stop(&mut self) -> Vec<Sample> {
        let now = self.reading();
        let Some(released) = self.keeper.release_at_stop(now) else {
            return Vec::new();
        };
        warn!(
            waiting = released.samples.len(),
            "Stopping without a journal: samples waiting for the clock are written with the best time there is."
        );
        self.take(released)
    }

    fn reading(&self) -> Reading {
        let wall_ms = self.clock.now_ms();
        Reading {
            wall_ms,
            offset_ms: self.clock.offset_ms(wall_ms),
            at: Instant::now(),
        }
    }

    fn take(&mut self, released: Released) -> Vec<Sample> {
        info!(
            samples = released.samples.len(),
            moved_s = released.moved_ms as f64 / 1000.0,
            "Samples that waited for the clock taken, at their re-timed times."
        );
        self.publish_waiting();
        released.samples
    }

    fn publish_waiting(&self) {
        self.metrics
            .clock_waiting_samples
            .store(self.keeper.waiting() as u64, Relaxed);
    }

    fn say(&self, news: ClockNews) {
        match news {
            ClockNews::Stepped { step_ms } => {
                self.metrics.clock_steps.fetch_add(1, Relaxed);
                self.metrics.clock_last_step_ms.store(step_ms, Relaxed);
                let step_s = step_ms as f64 / 1000.0;
                if step_ms < 0 {
                    warn!(
                        step_s,
                        "The system clock was set back: samples without a time of their own wait until it reads again what it read before."
                    );
                } else {
                    warn!(step_s, "The system clock was stepped forward.");
                }
            }
            ClockNews::Trust(state) => {
                self.status.set_trusted(state.is_usable());
                self.metrics
                    .clock_trusted
                    .store(u64::from(state.is_usable()), Relaxed);
                match state {
                    TrustState::Trusted => info!("The system clock is trusted now."),
                    TrustState::GaveUp => {
                        self.metrics.clock_gave_up.store(1, Relaxed);
                        warn!(waited = ?self.keeper.max_wait(), "The system clock was never trusted: writing with the best time there is (clock.max_wait).");
                    }
                    TrustState::Untrusted(why) => info!(?why, "The system clock is not trusted."),
                }
            }
        }
    }
}

fn format_ms(ms: UnixMillis) -> humantime::Rfc3339Timestamp {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64),
    )
}
