//! What a connection of the embedded broker may do, decided without I/O:
//! which topics an account may publish to, and how fast.

use std::time::Duration;

use tokio::time::Instant;

/// What an account may do with topics: publish (and name in its will),
/// and subscribe to.
#[derive(Debug, Clone, PartialEq)]
pub struct Rights {
    pub publish: TopicRights,
    pub subscribe: TopicRights,
}

impl Rights {
    /// Anything: anonymous devices (`allow_anonymous`), the daemon's own
    /// client.
    pub const ANY: Rights = Rights {
        publish: TopicRights::Any,
        subscribe: TopicRights::Any,
    };

    /// The rights of `user` given its configured `publish` and `subscribe`
    /// filters (absent: any topic).
    pub fn for_user(
        user: &str,
        publish: Option<&[String]>,
        subscribe: Option<&[String]>,
    ) -> Rights {
        Rights {
            publish: TopicRights::for_user(user, publish),
            subscribe: TopicRights::for_user(user, subscribe),
        }
    }
}

/// The topics one right covers.
#[derive(Debug, Clone, PartialEq)]
pub enum TopicRights {
    /// Any topic: accounts without the list.
    Any,
    /// Topics matching one of these MQTT filters, `%u` already replaced by
    /// the account's name (which config validation keeps free of `+`, `#`
    /// and `/`, so it cannot widen a filter).
    Filters(Vec<String>),
}

impl TopicRights {
    fn for_user(user: &str, filters: Option<&[String]>) -> TopicRights {
        match filters {
            None => TopicRights::Any,
            Some(filters) => {
                TopicRights::Filters(filters.iter().map(|f| f.replace("%u", user)).collect())
            }
        }
    }

    /// Whether a PUBLISH to `topic` is allowed.
    pub fn allows(&self, topic: &str) -> bool {
        match self {
            TopicRights::Any => true,
            TopicRights::Filters(filters) => filters.iter().any(|f| rumqttc::matches(topic, f)),
        }
    }

    /// Whether a SUBSCRIBE to `filter` is allowed: every topic it could
    /// match must be one an allowed filter matches (`tele/plug1/#` is
    /// within `tele/%u/#`; `tele/+/#` and `#` are not).
    pub fn covers(&self, filter: &str) -> bool {
        match self {
            TopicRights::Any => true,
            TopicRights::Filters(filters) => filters.iter().any(|f| within(filter, f)),
        }
    }
}

/// Whether every topic `inner` matches, `outer` matches too. Level by
/// level: `#` in `outer` takes the rest; `+` takes one level that is not a
/// wildcard `#`; a name takes only itself. As MQTT says, a wildcard in the
/// first level does not match topics starting with `$`.
fn within(inner: &str, outer: &str) -> bool {
    if inner.starts_with('$') && outer.starts_with(['+', '#']) {
        return false;
    }
    let mut inner_levels = inner.split('/');
    for o in outer.split('/') {
        match (o, inner_levels.next()) {
            ("#", _) => return true,
            (_, None) => return false,
            ("+", Some(i)) if i != "#" => {}
            (o, Some(i)) if o == i && o != "+" => {}
            _ => return false,
        }
    }
    inner_levels.next().is_none()
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
        let rights = TopicRights::for_user(
            "plug1",
            Some(&["tele/%u/#".to_owned(), "stat/+/POWER".to_owned()]),
        );
        assert!(rights.allows("tele/plug1/SENSOR"));
        assert!(rights.allows("stat/anything/POWER"));
        assert!(!rights.allows("tele/plug2/SENSOR"));
        assert!(!rights.allows("homeassistant/sensor/x/config"));
        assert!(!rights.allows("stat/a/b/POWER"));
        // `#` never reaches `$` topics, as the MQTT spec says.
        assert!(!TopicRights::for_user("u", Some(&["#".to_owned()])).allows("$SYS/x"));
        assert!(TopicRights::for_user("u", None).allows("homeassistant/x"));
        assert!(!TopicRights::for_user("u", Some(&[])).allows("a"));
    }

    #[test]
    fn a_subscription_is_allowed_only_within_the_accounts_filters() {
        let rights = TopicRights::for_user(
            "plug1",
            Some(&[
                "cmnd/%u/#".to_owned(),
                "zigbee2mqtt/+/set".to_owned(),
                "homeassistant/status".to_owned(),
            ]),
        );
        for inside in [
            "cmnd/plug1/#",
            "cmnd/plug1/POWER",
            "cmnd/plug1/+",
            "cmnd/plug1",
            "zigbee2mqtt/lamp/set",
            "zigbee2mqtt/+/set",
            "homeassistant/status",
        ] {
            assert!(rights.covers(inside), "{inside}");
        }
        for outside in [
            "#",
            "+/plug1/#",
            "cmnd/+/#",
            "cmnd/plug2/#",
            "cmnd/#",
            "zigbee2mqtt/#",
            "zigbee2mqtt/+/+",
            "zigbee2mqtt/lamp/set/x",
            "homeassistant/+",
            "homeassistant/status/#",
        ] {
            assert!(!rights.covers(outside), "{outside}");
        }
        assert!(!TopicRights::for_user("u", Some(&["#".to_owned()])).covers("$SYS/#"));
        assert!(TopicRights::for_user("u", Some(&["#".to_owned()])).covers("#"));
        assert!(TopicRights::for_user("u", None).covers("#"));
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
