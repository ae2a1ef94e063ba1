//! Whether the system clock can be trusted, from evidence (pure), and
//! re-timing what was received while it could not.
//!
//! A Raspberry Pi has no real-time clock: it boots on `fake-hwclock`'s
//! time (that of the last clean shutdown) and NTP steps it forward later,
//! if ever. The kernel's own "unsynchronised" flag is no evidence against a
//! clock (VMs, containers and hosts without an NTP daemon all show it), so
//! it only ever counts *for* one. Evidence against it: a time-sync service
//! runs and has not synchronised yet; the clock reads earlier than data
//! this daemon already wrote; or earlier than the binary was built.

use std::time::Duration;

use tokio::time::Instant;

use crate::model::{HeldClock, UnixMillis};

/// `clock.trust`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustPolicy {
    /// Trusted unless the evidence says otherwise.
    Auto,
    /// Always trusted: the old behaviour, for machines with an RTC.
    Always,
    /// Trusted once a sync is seen (the flag, or the kernel's status).
    WaitForSync,
}

/// What the machine says about its clock now (`evidence::read`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    pub now_ms: UnixMillis,
    /// A time-sync service runs (its run-time directory exists).
    pub sync_service: bool,
    /// A sync has happened: the service's flag file, or the kernel's NTP
    /// status.
    pub synced: bool,
}

/// Why the clock is not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distrust {
    NotSynced,
    /// Earlier than the newest data already written.
    BehindData {
        newest_ms: UnixMillis,
    },
    /// Earlier than the binary was built.
    BeforeBuild {
        built_ms: UnixMillis,
    },
    /// Set back while running: until it reads `until_ms` again (the time
    /// it read before the step), rows up to then are already written.
    SetBack {
        until_ms: UnixMillis,
    },
}

/// The trust state, decided again at each new piece of evidence. Once
/// trusted it stays so for the run (a clock does not become less right by
/// being read again; a step while running is the step detector's).
#[derive(Debug)]
pub struct Trust {
    policy: TrustPolicy,
    /// The newest time of data already written, and the tolerance below
    /// it (payload timestamps may run ahead of the clock).
    newest_data_ms: UnixMillis,
    built_ms: UnixMillis,
    max_wait: Duration,
    /// When distrust was first seen; `None` once trusted.
    distrusted_since: Option<Instant>,
    /// After the clock was set back: the time it read before.
    set_back_until_ms: Option<UnixMillis>,
    state: TrustState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustState {
    Trusted,
    Untrusted(Distrust),
    /// Untrusted for `max_wait`: what waited was written with the best
    /// time there was.
    GaveUp,
}

impl TrustState {
    /// Samples may be stamped with the clock and written.
    pub fn is_usable(self) -> bool {
        !matches!(self, TrustState::Untrusted(_))
    }
}

impl Trust {
    pub fn new(
        policy: TrustPolicy,
        newest_data_ms: UnixMillis,
        built_ms: UnixMillis,
        max_wait: Duration,
        now: Instant,
    ) -> Trust {
        Trust {
            policy,
            newest_data_ms,
            built_ms,
            max_wait,
            distrusted_since: Some(now),
            set_back_until_ms: None,
            state: TrustState::Untrusted(Distrust::NotSynced),
        }
    }

    pub fn state(&self) -> TrustState {
        self.state
    }

    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// The clock was set back while running, from `before_ms`: it is not
    /// trusted again until it reads that time, whatever the sync evidence
    /// (`always` excepted). The samples stamped meanwhile would fall at or
    /// before rows already written.
    pub fn set_back(&mut self, before_ms: UnixMillis, now: Instant) {
        if self.policy == TrustPolicy::Always {
            return;
        }
        self.newest_data_ms = self.newest_data_ms.max(before_ms);
        self.set_back_until_ms = Some(before_ms);
        self.distrusted_since = Some(now);
        self.state = TrustState::Untrusted(Distrust::SetBack {
            until_ms: before_ms,
        });
    }

    /// Decides again with `evidence`; returns the new state.
    pub fn decide(&mut self, evidence: &Evidence, now: Instant) -> TrustState {
        if self.state.is_usable() {
            return self.state;
        }
        let set_back = self
            .set_back_until_ms
            .filter(|&until_ms| evidence.now_ms < until_ms);
        self.set_back_until_ms = set_back;
        let distrust = match self.policy {
            TrustPolicy::Always => None,
            _ if set_back.is_some() => set_back.map(|until_ms| Distrust::SetBack { until_ms }),
            _ if evidence.synced => None,
            TrustPolicy::WaitForSync => Some(Distrust::NotSynced),
            TrustPolicy::Auto if evidence.sync_service => Some(Distrust::NotSynced),
            TrustPolicy::Auto if evidence.now_ms < self.newest_data_ms => {
                Some(Distrust::BehindData {
                    newest_ms: self.newest_data_ms,
                })
            }
            TrustPolicy::Auto if evidence.now_ms < self.built_ms => Some(Distrust::BeforeBuild {
                built_ms: self.built_ms,
            }),
            TrustPolicy::Auto => None,
        };
        let since = *self.distrusted_since.get_or_insert(now);
        self.state = match distrust {
            None => TrustState::Trusted,
            Some(_) if now.saturating_duration_since(since) >= self.max_wait => TrustState::GaveUp,
            Some(why) => TrustState::Untrusted(why),
        };
        if self.state.is_usable() {
            self.distrusted_since = None;
        }
        self.state
    }
}

/// How far to move the samples `held` stamped with the receive time, now
/// that the wall clock reads `now_ms`, `now_offset_ms` ahead of the
/// monotonic clock, on boot `boot`: every step since they came. From
/// another boot (a reboot before the clock was trusted) the monotonic
/// clock says nothing: not moved, their guess is the best time there is.
/// Another boot is told by its id, and, where the id cannot be read (0),
/// by a monotonic reading earlier than theirs.
pub fn retime_shift_ms(held: &HeldClock, boot: u64, now_ms: i64, now_offset_ms: i64) -> i64 {
    let held_monotonic_ms = held.received_ms.saturating_sub(held.offset_ms);
    let now_monotonic_ms = now_ms.saturating_sub(now_offset_ms);
    if held.boot == boot && now_monotonic_ms >= held_monotonic_ms {
        now_offset_ms.saturating_sub(held.offset_ms)
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixMillis = 1_795_000_000_000;
    const DAY_MS: i64 = 86_400_000;

    fn evidence(now_ms: UnixMillis, sync_service: bool, synced: bool) -> Evidence {
        Evidence {
            now_ms,
            sync_service,
            synced,
        }
    }

    fn trust(policy: TrustPolicy, newest_data_ms: UnixMillis) -> (Trust, Instant) {
        let start = Instant::now();
        let built = NOW - 30 * DAY_MS;
        let trust = Trust::new(
            policy,
            newest_data_ms,
            built,
            Duration::from_secs(3600),
            start,
        );
        (trust, start)
    }

    #[test]
    fn a_right_clock_without_a_sync_service_is_trusted_at_once() {
        let (mut t, start) = trust(TrustPolicy::Auto, NOW - 60_000);
        // The kernel's "unsynchronised" flag (synced: false) alone holds
        // nothing back.
        assert_eq!(
            t.decide(&evidence(NOW, false, false), start),
            TrustState::Trusted
        );
    }

    #[test]
    fn a_clock_behind_the_data_waits_for_the_step() {
        // fake-hwclock after a power cut: 3 days behind what was written.
        let (mut t, start) = trust(TrustPolicy::Auto, NOW);
        let behind = evidence(NOW - 3 * DAY_MS, false, false);
        assert_eq!(
            t.decide(&behind, start),
            TrustState::Untrusted(Distrust::BehindData { newest_ms: NOW })
        );
        // NTP steps it: trusted, and stays so.
        let later = start + Duration::from_secs(60);
        assert_eq!(
            t.decide(&evidence(NOW + 60_000, false, false), later),
            TrustState::Trusted
        );
        assert_eq!(t.decide(&behind, later), TrustState::Trusted);
    }

    #[test]
    fn a_sync_service_that_has_not_synced_holds_until_it_does() {
        let (mut t, start) = trust(TrustPolicy::Auto, NOW - DAY_MS);
        assert_eq!(
            t.decide(&evidence(NOW, true, false), start),
            TrustState::Untrusted(Distrust::NotSynced)
        );
        assert_eq!(
            t.decide(&evidence(NOW, true, true), start),
            TrustState::Trusted
        );
    }

    #[test]
    fn before_the_build_time_is_not_trusted() {
        let (mut t, start) = trust(TrustPolicy::Auto, 0);
        // 1970, or any time before the binary existed.
        assert!(matches!(
            t.decide(&evidence(1_000, false, false), start),
            TrustState::Untrusted(Distrust::BeforeBuild { .. })
        ));
    }

    #[test]
    fn policies_always_and_wait_for_sync() {
        let (mut t, start) = trust(TrustPolicy::Always, NOW);
        assert_eq!(
            t.decide(&evidence(0, true, false), start),
            TrustState::Trusted
        );
        // No service, a right clock: still waits for a sync.
        let (mut t, start) = trust(TrustPolicy::WaitForSync, 0);
        assert_eq!(
            t.decide(&evidence(NOW, false, false), start),
            TrustState::Untrusted(Distrust::NotSynced)
        );
        assert_eq!(
            t.decide(&evidence(NOW, false, true), start),
            TrustState::Trusted
        );
    }

    #[test]
    fn an_offline_machine_gives_up_after_max_wait() {
        let (mut t, start) = trust(TrustPolicy::WaitForSync, 0);
        let offline = evidence(NOW, true, false);
        assert!(!t.decide(&offline, start).is_usable());
        let almost = start + Duration::from_secs(3599);
        assert!(!t.decide(&offline, almost).is_usable());
        assert_eq!(
            t.decide(&offline, start + Duration::from_secs(3600)),
            TrustState::GaveUp
        );
    }

    #[test]
    fn a_clock_set_back_is_distrusted_until_it_reads_that_time_again() {
        let (mut t, start) = trust(TrustPolicy::Auto, NOW - DAY_MS);
        assert!(t.decide(&evidence(NOW, false, true), start).is_usable());
        // Set back 10 minutes: untrusted, even though synced.
        t.set_back(NOW, start);
        let back = NOW - 600_000;
        assert_eq!(
            t.decide(&evidence(back + 300_000, false, true), start),
            TrustState::Untrusted(Distrust::SetBack { until_ms: NOW })
        );
        assert_eq!(
            t.decide(&evidence(NOW + 1, false, true), start),
            TrustState::Trusted
        );
        // `always` ignores it.
        let (mut t, start) = trust(TrustPolicy::Always, 0);
        t.decide(&evidence(NOW, false, false), start);
        t.set_back(NOW, start);
        assert!(t.state().is_usable());
    }

    #[test]
    fn retiming_undoes_the_steps_since_receipt_on_the_same_boot_only() {
        // Received at the fake time, monotonic 1000 s after boot.
        let fake_ms = NOW - 3 * DAY_MS;
        let held = HeldClock {
            boot: 7,
            received_ms: fake_ms,
            offset_ms: fake_ms - 1_000_000,
        };
        // Later: NTP stepped the clock 3 days forward; 90 s went by.
        let now_ms = NOW + 90_000;
        let now_offset = now_ms - 1_090_000;
        let shift = retime_shift_ms(&held, 7, now_ms, now_offset);
        assert_eq!(held.received_ms + shift, NOW, "the true receive time");
        // No step: no shift. Another boot: no shift either, whether its
        // id says so or the monotonic clock went back.
        let unstepped_ms = held.received_ms + 90_000;
        assert_eq!(retime_shift_ms(&held, 7, unstepped_ms, held.offset_ms), 0);
        assert_eq!(retime_shift_ms(&held, 8, now_ms, now_offset), 0);
        assert_eq!(retime_shift_ms(&held, 7, now_ms, now_ms - 500_000), 0);
    }
}
