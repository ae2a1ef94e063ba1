//! What a connection of the embedded broker may do, decided without I/O:
//! which topics an account may publish to, and how fast.

use std::time::Duration;

use tokio::time::Instant;

/// The topics an account may publish to (and name in its will).
#[derive(Debug, Clone, PartialEq)]
pub enum PublishRights {
    /// Any topic: accounts without a `publish` list, anonymous devices
    /// (`allow_anonymous`), the daemon's own client.
    Any,
    /// Topics matching one of these MQTT filters, `%u` already replaced by
    /// the account's name (which config validation keeps free of `+`, `#`
    /// and `/`, so it cannot widen a filter).
    Filters(Vec<String>),
}

impl PublishRights {
    /// The rights of `user` given its configured `publish` filters.
    pub fn for_user(user: &str, filters: Option<&[String]>) -> PublishRights {
        match filters {
            None => PublishRights::Any,
            Some(filters) => {
                PublishRights::Filters(filters.iter().map(|f| f.replace("%u", user)).collect())
            }
        }
    }

    pub fn allows(&self, topic: &str) -> bool {
        match self {
            PublishRights::Any => true,
            PublishRights::Filters(filters) => filters.iter().any(|f| rumqttc::matches(topic, f)),
        }
    }
}

/// A token bucket: `burst` messages at once, then `per_second`. Written
/// here rather than taken from `governor` because it must run on tokio's
/// clock, which tests pause and advance.
#[derive(Debug)]
pub struct PublishRate {
    per_second: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl PublishRate {
    pub fn new(per_second: u32, burst: u32, now: Instant) -> PublishRate {
        PublishRate {
            per_second: f64::from(per_second.max(1)),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            at: now,
        }
    }

    /// Takes one message's token: `None` if it may go now, else how long
    /// to wait before it may (its token is then already spent).
    pub fn take(&mut self, now: Instant) -> Option<Duration> {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        self.tokens -= 1.0;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_name_what_an_account_may_publish() {
        let rights = PublishRights::for_user(
            "plug1",
            Some(&["tele/%u/#".to_owned(), "stat/+/POWER".to_owned()]),
        );
        assert!(rights.allows("tele/plug1/SENSOR"));
        assert!(rights.allows("stat/anything/POWER"));
        assert!(!rights.allows("tele/plug2/SENSOR"));
        assert!(!rights.allows("homeassistant/sensor/x/config"));
        assert!(!rights.allows("stat/a/b/POWER"));
        // `#` never reaches `$` topics, as the MQTT spec says.
        assert!(!PublishRights::for_user("u", Some(&["#".to_owned()])).allows("$SYS/x"));
        assert!(PublishRights::for_user("u", None).allows("homeassistant/x"));
        assert!(!PublishRights::for_user("u", Some(&[])).allows("a"));
    }

    #[test]
    fn the_rate_lets_a_burst_through_then_spaces_messages() {
        let start = Instant::now();
        let mut rate = PublishRate::new(10, 3, start);
        for _ in 0..3 {
            assert_eq!(rate.take(start), None);
        }
        // The fourth at once waits one token's time, the fifth two.
        assert_eq!(rate.take(start), Some(Duration::from_millis(100)));
        assert_eq!(rate.take(start), Some(Duration::from_millis(200)));
        // After a quiet second the bucket is full again, and no fuller.
        let later = start + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(rate.take(later), None);
        }
        assert!(rate.take(later).is_some());
    }
}
