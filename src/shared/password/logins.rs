//! Checking a login against configured users, for the web UI's basic auth
//! and the embedded broker's CONNECT alike: argon2 verification (slow on
//! purpose: tens of milliseconds, more on a Raspberry Pi), a bounded memory
//! of verified pairs so that a browser's every request or a device's every
//! reconnection does not pay again, and throttling of repeated failures
//! before argon2 runs.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::throttle::{Failed, Throttle};

/// Verified `user:password` pairs kept; beyond this the set starts over.
const REMEMBERED: usize = 256;

type Job = Box<dyn FnOnce() + Send>;

/// Every argon2 verification runs on this one thread, one at a time: a
/// flood of made-up passwords (web or broker) costs one core at most, and
/// argon2's 19 MiB block is allocated in one thread's heap again and again
/// (on the blocking pool each thread's heap kept its own: 130 MB after a
/// flood of wrong broker passwords).
static ARGON2_THREAD: LazyLock<mpsc::Sender<Job>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("argon2".into())
        .spawn(move || {
            for job in rx {
                job();
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "Cannot start the password-checking thread: logins are refused.");
    }
    tx
});

/// The users and what their logins did lately.
pub struct Logins {
    /// User name → PHC string.
    hashes: HashMap<String, String>,
    /// A user whose password is not hashed: the daemon's own client, with
    /// a random password made for this run.
    internal: Option<(String, String)>,
    verified: Mutex<HashSet<(String, String)>>,
    throttle: Mutex<Throttle>,
}

/// What a login attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    /// Wrong user or password. `locked`: this failure started a lockout
    /// that long (say so, once).
    Refused {
        locked: Option<Duration>,
    },
    /// Refused without checking: too many failures lately, for this long.
    Throttled(Duration),
}

impl Logins {
    pub fn new(users: impl IntoIterator<Item = (String, String)>) -> Logins {
        Logins {
            hashes: users.into_iter().collect(),
            internal: None,
            verified: Mutex::default(),
            throttle: Mutex::default(),
        }
    }

    /// Adds a user checked by plain comparison (in constant time).
    pub fn with_internal(mut self, user: String, password: String) -> Logins {
        self.internal = Some((user, password));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty() && self.internal.is_none()
    }

    /// The answer when it needs no argon2: a pair verified before, the
    /// internal user, or a throttled user or address. `None`: call
    /// [`Self::verify`] (on a blocking thread).
    pub fn quick(&self, user: &str, password: &str, addr: &str, now: Instant) -> Option<Verdict> {
        if let Some((name, secret)) = &self.internal
            && name == user
        {
            use subtle::ConstantTimeEq;
            let same: bool = secret.as_bytes().ct_eq(password.as_bytes()).into();
            return Some(if same {
                Verdict::Accepted
            } else {
                Verdict::Refused { locked: None }
            });
        }
        let key = (user.to_owned(), password.to_owned());
        if self.verified.lock().is_ok_and(|set| set.contains(&key)) {
            return Some(Verdict::Accepted);
        }
        let locked = self.throttle.lock().ok()?.locked(user, addr, now);
        locked.map(Verdict::Throttled)
    }

    /// [`Self::quick`], else [`Self::verify`] on the one argon2 thread.
    pub async fn check(self: &Arc<Self>, user: &str, password: &str, addr: &str) -> Verdict {
        let now = Instant::now();
        if let Some(v) = self.quick(user, password, addr, now) {
            return v;
        }
        let (this, user, password, addr) = (
            self.clone(),
            user.to_owned(),
            password.to_owned(),
            addr.to_owned(),
        );
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(this.verify(&user, &password, &addr));
        });
        if ARGON2_THREAD.send(job).is_err() {
            return Verdict::Refused { locked: None };
        }
        rx.await.unwrap_or(Verdict::Refused { locked: None })
    }

    /// Checks the password with argon2 (slow: run it off the async threads)
    /// and counts the outcome, as of when the check ends (a lock must not
    /// pass while argon2 runs). An unknown user costs a verification too,
    /// so that timing does not tell which names exist.
    pub fn verify(&self, user: &str, password: &str, addr: &str) -> Verdict {
        let known = self.hashes.get(user);
        let Some(hash) = known.or_else(|| self.hashes.values().next()) else {
            return Verdict::Refused { locked: None };
        };
        let ok = super::verify(hash, password) && known.is_some();
        let mut throttle = self.throttle.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            throttle.succeeded(user, addr);
            if let Ok(mut set) = self.verified.lock() {
                if set.len() >= REMEMBERED {
                    set.clear();
                }
                set.insert((user.to_owned(), password.to_owned()));
            }
            Verdict::Accepted
        } else {
            let locked = match throttle.failed(user, addr, Instant::now()) {
                Failed::Locked(lock) => Some(lock),
                Failed::Counted => None,
            };
            Verdict::Refused { locked }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password_and_user_and_are_remembered() {
        let logins = Logins::new([(
            "ann".to_owned(),
            super::super::hash_password("s3cret").unwrap(),
        )])
        .with_internal("self".into(), "r4nd0m".into());
        let now = Instant::now();
        assert_eq!(
            logins.quick("ann", "s3cret", "a", now),
            None,
            "not verified yet"
        );
        assert_eq!(logins.verify("ann", "s3cret", "a"), Verdict::Accepted);
        assert_eq!(
            logins.quick("ann", "s3cret", "a", now),
            Some(Verdict::Accepted)
        );
        assert!(matches!(
            logins.verify("ann", "S3cret", "a"),
            Verdict::Refused { .. }
        ));
        assert!(matches!(
            logins.verify("bob", "s3cret", "a"),
            Verdict::Refused { .. }
        ));
        assert_eq!(
            logins.quick("self", "r4nd0m", "a", now),
            Some(Verdict::Accepted)
        );
        assert!(matches!(
            logins.quick("self", "guess", "a", now),
            Some(Verdict::Refused { .. })
        ));
        assert!(matches!(
            Logins::new([]).verify("ann", "s3cret", "a"),
            Verdict::Refused { .. }
        ));
    }

    #[test]
    fn repeated_failures_are_throttled_before_argon2() {
        let logins = Logins::new([(
            "ann".to_owned(),
            super::super::hash_password("s3cret").unwrap(),
        )]);
        let mut locked = None;
        for _ in 0..5 {
            if let Verdict::Refused { locked: l } = logins.verify("ann", "wrong", "10.0.0.9") {
                locked = locked.or(l);
            }
        }
        assert_eq!(
            locked,
            Some(Duration::from_secs(1)),
            "the fifth failure locks"
        );
        // Locked from the end of the check that failed: even the right
        // password waits, up to a second.
        let after = Instant::now();
        match logins.quick("ann", "s3cret", "10.0.0.9", after) {
            Some(Verdict::Throttled(wait)) => assert!(wait <= Duration::from_secs(1), "{wait:?}"),
            other => panic!("not throttled: {other:?}"),
        }
        assert_eq!(
            logins.quick("ann", "s3cret", "10.0.0.9", after + Duration::from_secs(1)),
            None
        );
    }
}
