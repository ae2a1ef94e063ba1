//! Samples that wait for the clock to be trusted (pure): kept with what
//! re-times them, released all at once, each moved by the steps of the
//! wall clock since it came.

use super::trust::retime_shift_ms;
use crate::model::{HeldClock, Sample};

#[derive(Debug, Default)]
pub struct Waiting {
    messages: Vec<(HeldClock, Vec<Sample>)>,
    samples: usize,
}

impl Waiting {
    /// Splits a message received while the clock was not trusted: its
    /// samples stamped with the receive time wait (returned: none), the
    /// ones with a time of their own go on (returned).
    pub fn hold(&mut self, held: HeldClock, samples: Vec<Sample>) -> Vec<Sample> {
        let (waiting, own_time): (Vec<_>, Vec<_>) = samples
            .into_iter()
            .partition(|s| s.time_ms == held.received_ms);
        if !waiting.is_empty() {
            self.samples += waiting.len();
            self.messages.push((held, waiting));
        }
        own_time
    }

    /// Every waiting sample, re-timed for boot `boot` whose wall clock
    /// reads `now_ms`, `now_offset_ms` ahead of the monotonic one. Also
    /// returns the largest move, in milliseconds, to say in the log.
    pub fn release(&mut self, boot: u64, now_ms: i64, now_offset_ms: i64) -> (Vec<Sample>, i64) {
        let mut released = Vec::with_capacity(self.samples);
        let mut largest = 0i64;
        for (held, samples) in self.messages.drain(..) {
            let shift = retime_shift_ms(&held, boot, now_ms, now_offset_ms);
            largest = if shift.abs() > largest.abs() {
                shift
            } else {
                largest
            };
            released.extend(samples.into_iter().map(|mut s| {
                s.time_ms = s.time_ms.saturating_add(shift);
                s
            }));
        }
        self.samples = 0;
        (released, largest)
    }

    pub fn len(&self) -> usize {
        self.samples
    }

    pub fn is_empty(&self) -> bool {
        self.samples == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(series: &str, time_ms: i64) -> Sample {
        Sample {
            series: series.into(),
            time_ms,
            value: 1.0,
        }
    }

    #[test]
    fn receive_stamped_samples_wait_and_come_back_at_their_true_time() {
        let fake = 1_794_740_000_000;
        let mut waiting = Waiting::default();
        let held = |received_ms, monotonic_ms| HeldClock {
            boot: 1,
            received_ms,
            offset_ms: received_ms - monotonic_ms,
        };
        // Two messages 10 s apart at the fake time; the second has a
        // sample with a time of its own, which goes on at once.
        assert!(
            waiting
                .hold(held(fake, 5_000), vec![sample("a", fake)])
                .is_empty()
        );
        let own = waiting.hold(
            held(fake + 10_000, 15_000),
            vec![sample("a", fake + 10_000), sample("b", 1_795_000_000_000)],
        );
        assert_eq!(own, vec![sample("b", 1_795_000_000_000)]);
        assert_eq!(waiting.len(), 2);
        // The clock is stepped 3 days forward: the true time is 3 days on.
        let step = 3 * 86_400_000;
        // 20 s after boot on the monotonic clock.
        let (released, largest) = waiting.release(1, fake + step + 15_000, fake + step - 5_000);
        assert_eq!(
            released,
            vec![sample("a", fake + step), sample("a", fake + 10_000 + step)]
        );
        assert_eq!(largest, step);
        assert!(waiting.is_empty());
    }
}
