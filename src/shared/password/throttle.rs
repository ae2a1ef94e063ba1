//! Login throttling: a brute-force loop against the web UI or the broker is
//! slowed down, per user name and per client address, without running
//! argon2 for the refused attempts. Pure: time is passed in.
//!
//! After `FREE_FAILURES` failures in a row, a key is refused for 1 s, then
//! twice as long at each further failure, up to 5 min; a success clears the
//! user's and the address's counts. Each lockout is reported once, when it
//! starts, not per attempt. Memory is bounded: past `MAX_KEYS` keys the
//! table starts over (an attacker cycling through addresses gains a fresh
//! count, and spends argon2 time on each).

use std::collections::HashMap;
use std::time::{Duration, Instant};

const FREE_FAILURES: u32 = 5;
const FIRST_LOCK: Duration = Duration::from_secs(1);
const MAX_LOCK: Duration = Duration::from_secs(300);
const MAX_KEYS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct Throttle {
    keys: HashMap<String, Failures>,
}

/// What a failure did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failed {
    /// Counted; not locked yet.
    Counted,
    /// This failure locked the key for this long: say so, once.
    Locked(Duration),
}

/// The keys a login counts against: its user, and its address when known
/// (the broker's CONNECT check is not told the address: an empty one must
/// not become one key that every client shares and locks for all).
fn keys(user: &str, addr: &str) -> Vec<String> {
    let mut keys = vec![format!("user:{user}")];
    if !addr.is_empty() {
        keys.push(format!("addr:{addr}"));
    }
    keys
}

impl Throttle {
    /// How long `user` or `addr` must still wait, if either is locked.
    pub fn locked(&self, user: &str, addr: &str, now: Instant) -> Option<Duration> {
        keys(user, addr)
            .iter()
            .filter_map(|k| self.keys.get(k)?.locked_until)
            .filter(|&until| until > now)
            .map(|until| until - now)
            .max()
    }

    /// Counts a failed login of `user` from `addr`.
    pub fn failed(&mut self, user: &str, addr: &str, now: Instant) -> Failed {
        if self.keys.len() + 2 > MAX_KEYS {
            self.keys.clear();
        }
        let mut outcome = Failed::Counted;
        for key in keys(user, addr) {
            let f = self.keys.entry(key).or_insert(Failures {
                count: 0,
                locked_until: None,
            });
            f.count = f.count.saturating_add(1);
            if f.count >= FREE_FAILURES {
                let lock = FIRST_LOCK
                    .saturating_mul(1 << (f.count - FREE_FAILURES).min(16))
                    .min(MAX_LOCK);
                f.locked_until = Some(now + lock);
                if f.count == FREE_FAILURES || matches!(outcome, Failed::Locked(l) if l < lock) {
                    outcome = Failed::Locked(lock);
                }
            }
        }
        outcome
    }

    /// A successful login clears the user's and the address's counts.
    pub fn succeeded(&mut self, user: &str, addr: &str) {
        for key in keys(user, addr) {
            self.keys.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_free_failures_then_locks_that_double_up_to_five_minutes() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for _ in 0..4 {
            assert_eq!(t.failed("ann", "10.0.0.9", now), Failed::Counted);
        }
        assert_eq!(t.locked("ann", "10.0.0.9", now), None);
        assert_eq!(t.failed("ann", "10.0.0.9", now), Failed::Locked(FIRST_LOCK));
        assert_eq!(t.locked("ann", "10.0.0.9", now), Some(FIRST_LOCK));
        // Locked by name from anywhere, and the address for any name.
        assert!(t.locked("ann", "10.0.0.1", now).is_some());
        assert!(t.locked("bob", "10.0.0.9", now).is_some());
        assert_eq!(t.locked("bob", "10.0.0.1", now), None);
        // The lock passes, the next failure locks twice as long.
        let later = now + FIRST_LOCK;
        assert_eq!(t.locked("ann", "10.0.0.9", later), None);
        t.failed("ann", "10.0.0.9", later);
        assert_eq!(t.locked("ann", "10.0.0.9", later), Some(2 * FIRST_LOCK));
        for _ in 0..20 {
            t.failed("ann", "10.0.0.9", later);
        }
        assert_eq!(t.locked("ann", "10.0.0.9", later), Some(MAX_LOCK));
        // A success clears both.
        t.succeeded("ann", "10.0.0.9");
        assert_eq!(t.locked("ann", "10.0.0.9", later), None);
        // Without an address only the user is locked, not every client.
        for _ in 0..10 {
            t.failed("eve", "", now);
        }
        assert!(t.locked("eve", "", now).is_some());
        assert_eq!(t.locked("bob", "", now), None);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut t = Throttle::default();
        let now = Instant::now();
        for i in 0..(3 * MAX_KEYS) {
            t.failed(&format!("u{i}"), &format!("a{i}"), now);
        }
        assert!(t.keys.len() <= MAX_KEYS);
    }
}
