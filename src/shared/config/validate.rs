//! Raw sections → runtime [`Config`]: checks every value, derives librrd
//! units (seconds, steps per row, row counts), and reports each problem with
//! its key instead of stopping at the first.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw::{
    RawCache, RawClock, RawEmbeddedBroker, RawJournal, RawLimits, RawMqtt, RawRra, RawSync,
    RawTemplate, RawTrust,
};
use super::{
    BrokerTls, CacheConfig, ClockConfig, Config, EmbeddedBrokerConfig, JournalConfig, KeyError,
    Limits, MqttConfig, Sections, SyncPolicy, Template, TlsConfig,
};
use crate::model::RraSpec;

/// Hold and heartbeat are counted in steps when rows are built; beyond this
/// a typo (a hold of "10y" at a 1 s step) would cost memory, not help.
const MAX_STEPS_PER_SPAN: u64 = 100_000;
const MAX_RRA_ROWS: u64 = 10_000_000;

mod sections;

use sections::{files, rules, web};

/// One dashboard made in the browser, checked exactly as a `[[dashboard]]`
/// is (`groups`: the `[[web.groups]]` it may be shared with).
pub(crate) fn dashboard(
    raw: &super::raw::RawDashboard,
    groups: &[&str],
) -> Result<super::Dashboard, Vec<KeyError>> {
    let mut errors = Vec::new();
    let mut found = sections::dashboards(&[Some(raw.clone())], groups, &mut Errors(&mut errors));
    match found.pop() {
        Some(d) if errors.is_empty() => Ok(d),
        _ => Err(errors),
    }
}

pub(super) struct Errors<'a>(pub(super) &'a mut Vec<KeyError>);

impl Errors<'_> {
    pub(super) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(KeyError {
            key: key.into(),
            message: message.into(),
        });
    }
}

/// Every section, checked. Problems go to `errors`, all of them (the
/// caller refuses the config if there are any); the config returned then
/// holds placeholders where values were wrong.
pub(crate) fn validate(s: Sections, errors: &mut Vec<KeyError>) -> Config {
    let mut e = Errors(errors);
    let data_dir = s.top.data_dir;
    if data_dir.as_os_str().is_empty() {
        e.push("data_dir", "must not be empty");
    }
    if data_dir.to_string_lossy().contains(':') {
        e.push(
            "data_dir",
            "must not contain ':' (librrd graph definitions split on it)",
        );
    }
    if s.top.shutdown_timeout.is_zero() || s.top.shutdown_timeout > HOUR {
        e.push("shutdown_timeout", "must be between 1s and 1h");
    }
    let (mut mqtt, embedded) = mqtt(&s.mqtt, &mut e);
    let embedded_broker = embedded.then(|| embedded_broker(&s.embedded_broker, &mut e));
    if let Some(b) = &embedded_broker {
        mqtt.host = b.listen.ip().to_string();
        mqtt.port = b.listen.port();
    }
    let cache = cache(&s.cache, &mut e);
    let journal = s
        .journal
        .enabled
        .then(|| journal(&s.journal, &cache, &data_dir, &mut e));
    let clock = clock(&s.clock, &mut e);
    let limits = limits(&s.limits, &mut e);
    let templates = templates(&s.templates, &mut e);
    let files = files(&s.files, &templates, &mut e);
    let rules = rules(&s.rules, &templates, &mut e);
    let dashboards = {
        let groups: Vec<&str> = s.web.groups.iter().map(|g| g.name.as_str()).collect();
        sections::dashboards(&s.dashboards, &groups, &mut e)
    };
    let dashboard_rules = sections::dashboard_rules(&s.dashboard_rules, &mut e);
    let web = web(&s.web, &mut e);

    Config {
        data_dir,
        shutdown_timeout: s.top.shutdown_timeout,
        mqtt,
        embedded_broker,
        cache,
        journal,
        clock,
        limits,
        web,
        templates,
        files,
        rules,
        dashboards,
        dashboard_rules,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

fn clock(raw: &RawClock, e: &mut Errors) -> ClockConfig {
    use crate::clock::TrustPolicy;
    if !(Duration::from_secs(10)..=7 * DAY).contains(&raw.max_wait) {
        e.push("clock.max_wait", "must be between 10s and 7d");
    }
    ClockConfig {
        trust: match raw.trust {
            RawTrust::Auto => TrustPolicy::Auto,
            RawTrust::Always => TrustPolicy::Always,
            RawTrust::WaitForSync => TrustPolicy::WaitForSync,
        },
        evidence: crate::clock::EvidenceSources {
            sync_flag: raw.sync_flag.clone(),
            sync_services: raw.sync_services.clone(),
            kernel_status: raw.kernel_status,
        },
        max_wait: raw.max_wait,
    }
}
const DAY: Duration = Duration::from_secs(86_400);

fn embedded_broker(raw: &RawEmbeddedBroker, e: &mut Errors) -> EmbeddedBrokerConfig {
    let listen = raw.listen.parse::<SocketAddr>().unwrap_or_else(|err| {
        e.push(
            "embedded_broker.listen",
            format!("not an address:port ({err})"),
        );
        SocketAddr::from(([127, 0, 0, 1], 1883))
    });
    if !(4096..=(256 << 20)).contains(&raw.max_segment_bytes) {
        e.push(
            "embedded_broker.max_segment_bytes",
            "must be between 4096 and 268435456",
        );
    }
    let mut names = HashSet::new();
    for (i, u) in raw.users.iter().enumerate() {
        let key = format!("embedded_broker.users[{i}]");
        if u.name.is_empty() || !names.insert(&u.name) {
            e.push(format!("{key}.name"), "must be non-empty and unique");
        } else if u.name == super::BROKER_INTERNAL_USER {
            e.push(
                format!("{key}.name"),
                format!("{:?} is the daemon's own account", u.name),
            );
        }
        if u.name.contains(['+', '#', '/', '\0']) {
            e.push(
                format!("{key}.name"),
                "must not hold '+', '#', '/' or NUL (it stands for %u in topic filters)",
            );
        }
        if let Err(why) = crate::password::check_hash(&u.password_hash) {
            e.push(format!("{key}.password_hash"), why);
        }
        for (j, filter) in u.publish.iter().flatten().enumerate() {
            if !rumqttc::valid_filter(&filter.replace("%u", "u")) {
                e.push(
                    format!("{key}.publish[{j}]"),
                    format!("{filter:?} is not an MQTT topic filter"),
                );
            }
        }
    }
    let tls = tls_listener(raw, e);
    let public =
        !listen.ip().is_loopback() || tls.as_ref().is_some_and(|t| !t.listen.ip().is_loopback());
    if public && raw.users.is_empty() && !raw.allow_anonymous {
        e.push(
            "embedded_broker.listen",
            format!(
                "{listen} is reachable beyond this machine and no [[embedded_broker.users]] are \
                 configured: anyone could publish (and fill the disk up to limits.max_series \
                 files); add users, or set embedded_broker.allow_anonymous = true"
            ),
        );
    }
    if !(1..=10_000).contains(&raw.max_connections) {
        e.push(
            "embedded_broker.max_connections",
            "must be between 1 and 10000",
        );
    }
    if !(1..=65_535).contains(&raw.max_inflight) {
        e.push(
            "embedded_broker.max_inflight",
            "must be between 1 and 65535",
        );
    }
    if !(1..=1_000_000).contains(&raw.max_publish_rate) {
        e.push(
            "embedded_broker.max_publish_rate",
            "must be between 1 and 1000000 (messages a second)",
        );
    }
    if !(1..=1_000_000).contains(&raw.publish_burst) {
        e.push(
            "embedded_broker.publish_burst",
            "must be between 1 and 1000000",
        );
    }
    EmbeddedBrokerConfig {
        listen,
        max_segment_bytes: raw.max_segment_bytes,
        users: raw
            .users
            .iter()
            .map(|u| super::BrokerUser {
                name: u.name.clone(),
                password_hash: u.password_hash.clone(),
                publish: u.publish.clone(),
            })
            .collect(),
        max_connections: raw.max_connections,
        max_inflight: raw.max_inflight,
        max_publish_rate: raw.max_publish_rate,
        publish_burst: raw.publish_burst,
        tls,
    }
}

/// The `mqtts` listener: an address, and a certificate and key that exist.
fn tls_listener(raw: &RawEmbeddedBroker, e: &mut Errors) -> Option<BrokerTls> {
    let listen = raw.tls_listen.as_ref()?;
    let listen = listen.parse::<SocketAddr>().map_err(|err| {
        e.push(
            "embedded_broker.tls_listen",
            format!("not an address:port ({err})"),
        );
    });
    let mut file = |key: &str, path: &Option<PathBuf>| match path {
        Some(p) if p.is_file() => Some(p.clone()),
        Some(p) => {
            e.push(
                format!("embedded_broker.{key}"),
                format!("{} is not a readable file", p.display()),
            );
            None
        }
        None => {
            e.push(
                format!("embedded_broker.{key}"),
                "tls_listen needs it (PEM)",
            );
            None
        }
    };
    let cert_file = file("cert_file", &raw.cert_file);
    let key_file = file("key_file", &raw.key_file);
    Some(BrokerTls {
        listen: listen.ok()?,
        cert_file: cert_file?,
        key_file: key_file?,
    })
}

fn cache(raw: &RawCache, e: &mut Errors) -> CacheConfig {
    let cache = CacheConfig {
        flush_after: raw.flush_after,
        flush_jitter: raw.flush_jitter,
        stats_every: raw.stats_every,
        snapshot_every: raw.snapshot_every,
        dead_after: raw.dead_after,
        apply_layout_changes: raw.apply_layout_changes,
    };
    // Bounded so that millisecond arithmetic on them cannot overflow.
    for (key, value, max) in [
        ("cache.flush_after", cache.flush_after, 7 * DAY),
        ("cache.flush_jitter", cache.flush_jitter, DAY),
        ("cache.stats_every", cache.stats_every, DAY),
        ("cache.snapshot_every", cache.snapshot_every, DAY),
        ("cache.dead_after", cache.dead_after, 3650 * DAY),
    ] {
        if value > max {
            e.push(
                key,
                format!("must not exceed {}", humantime::format_duration(max)),
            );
        }
    }
    if cache.stats_every.is_zero() {
        e.push("cache.stats_every", "must be more than 0s");
    }
    cache
}

fn journal(
    raw: &RawJournal,
    cache: &CacheConfig,
    data_dir: &Path,
    e: &mut Errors,
) -> JournalConfig {
    if cache.snapshot_every.is_zero() {
        e.push(
            "journal.enabled",
            "the journal needs snapshots (cache.snapshot_every) to be truncated",
        );
    }
    let sync = match raw.sync {
        RawSync::Always => SyncPolicy::Always,
        RawSync::Never => SyncPolicy::Never,
        RawSync::Interval => {
            if !(Duration::from_millis(10)..=HOUR).contains(&raw.sync_every) {
                e.push("journal.sync_every", "must be between 10ms and 1h");
            }
            SyncPolicy::Interval(raw.sync_every)
        }
    };
    JournalConfig {
        dir: data_dir.join("journal"),
        sync,
    }
}

fn limits(raw: &RawLimits, e: &mut Errors) -> Limits {
    let limits = Limits {
        max_payload_bytes: raw.max_payload_bytes,
        max_json_leaves: raw.max_json_leaves,
        max_json_depth: raw.max_json_depth,
        max_series: raw.max_series,
        max_future: raw.max_future,
    };
    if !(1..=(256 << 20)).contains(&limits.max_payload_bytes) {
        e.push(
            "limits.max_payload_bytes",
            "must be between 1 and 268435456",
        );
    }
    if !(1..=64).contains(&limits.max_json_depth) {
        e.push("limits.max_json_depth", "must be between 1 and 64");
    }
    if limits.max_json_leaves == 0 {
        e.push("limits.max_json_leaves", "must be at least 1");
    }
    if limits.max_series == 0 {
        e.push("limits.max_series", "must be at least 1");
    }
    if limits.max_future > DAY {
        e.push(
            "limits.max_future",
            "must be at most 1d: a sample that far ahead would lock its file for as long",
        );
    }
    limits
}

/// The templates that are valid, each name once.
fn templates(raw: &[Option<RawTemplate>], e: &mut Errors) -> Vec<Template> {
    let mut names = HashSet::new();
    raw.iter()
        .enumerate()
        .filter_map(|(i, t)| {
            let t = template(t.as_ref()?, &format!("template[{i}]"), e)?;
            if !names.insert(t.name.clone()) {
                e.push(
                    format!("template[{i}].name"),
                    format!("duplicate template {:?}", t.name),
                );
            }
            Some(t)
        })
        .collect()
}

/// Returns the MQTT settings and whether the embedded broker is wanted.
fn mqtt(raw: &RawMqtt, e: &mut Errors) -> (MqttConfig, bool) {
    let (embedded, tls, host, port) = match parse_broker(&raw.broker) {
        Ok(BrokerAddr::Embedded) => (true, false, String::new(), 0),
        Ok(BrokerAddr::Remote { tls, host, port }) => (false, tls, host, port),
        Err(msg) => {
            e.push("mqtt.broker", msg);
            (false, false, String::new(), 0)
        }
    };
    if raw.client_id.is_empty() {
        e.push("mqtt.client_id", "must not be empty");
    }
    let password = match (&raw.password, &raw.password_file) {
        (Some(_), Some(_)) => {
            e.push(
                "mqtt.password_file",
                "give password or password_file, not both",
            );
            None
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(p) => Some(p.trim_end_matches(['\r', '\n']).to_owned()),
            Err(err) => {
                e.push(
                    "mqtt.password_file",
                    format!("cannot read {}: {err}", path.display()),
                );
                None
            }
        },
        (None, None) => None,
    };
    let credentials = match (&raw.username, password) {
        (Some(u), p) => Some((u.clone(), p.unwrap_or_default())),
        (None, Some(_)) => {
            e.push("mqtt.username", "a password needs a username");
            None
        }
        (None, None) => None,
    };
    if let Some(ca) = &raw.ca_file {
        if !tls {
            e.push("mqtt.ca_file", "only used with an mqtts:// broker");
        } else if !ca.is_file() {
            e.push(
                "mqtt.ca_file",
                format!("{} is not a readable file", ca.display()),
            );
        }
    }
    if raw.topics.is_empty() {
        e.push("mqtt.topics", "must name at least one topic filter");
    }
    for (key, list) in [("mqtt.topics", &raw.topics), ("mqtt.exclude", &raw.exclude)] {
        for (i, f) in list.iter().enumerate() {
            if f.is_empty() || !rumqttc::valid_filter(f) {
                e.push(
                    format!("{key}[{i}]"),
                    format!("{f:?} is not a valid MQTT topic filter"),
                );
            }
        }
    }
    if !raw.events_topic.is_empty() && !rumqttc::valid_topic(&raw.events_topic) {
        e.push(
            "mqtt.events_topic",
            format!("{:?} is not a topic (no wildcards)", raw.events_topic),
        );
    }
    if !raw.status_topic.is_empty() && !rumqttc::valid_topic(&raw.status_topic) {
        e.push(
            "mqtt.status_topic",
            format!("{:?} is not a topic one can publish to", raw.status_topic),
        );
    }
    let qos = match raw.qos {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        2 => rumqttc::QoS::ExactlyOnce,
        _ => {
            e.push("mqtt.qos", "must be 0, 1 or 2");
            rumqttc::QoS::AtLeastOnce
        }
    };
    if !raw.keep_alive.is_zero() && !(1..=65_535).contains(&raw.keep_alive.as_secs()) {
        e.push(
            "mqtt.keep_alive",
            "must be 0s (off) or between 1s and 65535s",
        );
    }
    if raw.reconnect_min.is_zero() {
        e.push("mqtt.reconnect_min", "must be more than 0s");
    }
    if raw.reconnect_max < raw.reconnect_min || raw.reconnect_max > Duration::from_secs(3600) {
        e.push("mqtt.reconnect_max", "must be between reconnect_min and 1h");
    }
    let mut topics = raw.topics.clone();
    // Discovery configs must reach us even when `topics` names only the
    // devices' own trees.
    if raw.discovery
        && !topics
            .iter()
            .any(|f| rumqttc::matches("homeassistant/sensor/x/y/config", f))
    {
        topics.push("homeassistant/#".into());
    }
    let config = MqttConfig {
        host,
        port,
        tls: tls.then(|| TlsConfig {
            ca_file: raw.ca_file.clone(),
        }),
        client_id: raw.client_id.clone(),
        credentials,
        topics,
        exclude: raw.exclude.clone(),
        status_topic: (!raw.status_topic.is_empty()).then(|| raw.status_topic.clone()),
        events_topic: (!raw.events_topic.is_empty()).then(|| raw.events_topic.clone()),
        discovery: raw.discovery,
        clean_session: raw.clean_session,
        qos,
        keep_alive: raw.keep_alive,
        reconnect_min: raw.reconnect_min,
        reconnect_max: raw.reconnect_max,
    };
    (config, embedded)
}

#[derive(Debug, PartialEq)]
enum BrokerAddr {
    Embedded,
    Remote { tls: bool, host: String, port: u16 },
}

/// `embedded`, `mqtt://host[:port]` or `mqtts://host[:port]`; IPv6 hosts in
/// brackets. Credentials go in their own keys, not in the URL.
fn parse_broker(s: &str) -> Result<BrokerAddr, String> {
    if s == "embedded" {
        return Ok(BrokerAddr::Embedded);
    }
    let (tls, rest) = if let Some(r) = s.strip_prefix("mqtt://") {
        (false, r)
    } else if let Some(r) = s.strip_prefix("mqtts://") {
        (true, r)
    } else {
        return Err(format!(
            "{s:?}: expected \"embedded\", mqtt://host[:port] or mqtts://host[:port]"
        ));
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') || rest.contains('/') {
        return Err(format!(
            "{s:?}: only host and port go in the URL (use mqtt.username/password)"
        ));
    }
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("{s:?}: unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(format!("{s:?}: no host"));
    }
    let port = match port {
        None => default_port,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("{s:?}: bad port"))?,
    };
    Ok(BrokerAddr::Remote {
        tls,
        host: host.to_owned(),
        port,
    })
}

fn whole_secs(d: Duration, key: &str, e: &mut Errors) -> u64 {
    if d.subsec_nanos() != 0 {
        e.push(key, "must be a whole number of seconds");
    }
    d.as_secs()
}

fn template(raw: &RawTemplate, key: &str, e: &mut Errors) -> Option<Template> {
    if raw.name.is_empty() {
        e.push(format!("{key}.name"), "must not be empty");
    }
    for (i, f) in raw.topics.iter().enumerate() {
        if f.is_empty() || !rumqttc::valid_filter(f) {
            e.push(
                format!("{key}.topics[{i}]"),
                format!("{f:?} is not a valid MQTT topic filter"),
            );
        }
    }
    let step = whole_secs(raw.step, &format!("{key}.step"), e);
    if step == 0 || step > 86_400 {
        e.push(format!("{key}.step"), "must be between 1s and 1d");
        return None;
    }
    let heartbeat = match raw.heartbeat {
        Some(h) => whole_secs(h, &format!("{key}.heartbeat"), e),
        None => 2 * step,
    };
    if heartbeat < step || heartbeat > step * MAX_STEPS_PER_SPAN {
        e.push(
            format!("{key}.heartbeat"),
            format!("must be between the step ({step}s) and 100000 steps"),
        );
    }
    if raw.hold.as_secs() > step * MAX_STEPS_PER_SPAN {
        e.push(format!("{key}.hold"), "must not exceed 100000 steps");
    }
    check_bounds(raw.min, raw.max, key, e);
    if raw.rra.is_empty() {
        e.push(format!("{key}.rra"), "needs at least one archive");
    }
    let rras = raw
        .rra
        .iter()
        .enumerate()
        .flat_map(|(i, r)| rra(r, step, &format!("{key}.rra[{i}]"), e))
        .collect();
    Some(Template {
        name: raw.name.clone(),
        topics: raw.topics.clone(),
        step_secs: step as u32,
        ds_type: raw.ds_type,
        heartbeat_secs: heartbeat.min(u32::MAX as u64) as u32,
        min: raw.min,
        max: raw.max,
        aggregate: raw.aggregate,
        hold: raw.hold,
        unit: raw.unit.clone(),
        rras,
    })
}

pub(super) fn check_bounds(min: Option<f64>, max: Option<f64>, key: &str, e: &mut Errors) {
    for (name, v) in [("min", min), ("max", max)] {
        if v.is_some_and(|v| !v.is_finite()) {
            e.push(format!("{key}.{name}"), "must be a finite number");
        }
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo >= hi
    {
        e.push(format!("{key}.max"), "must be greater than min");
    }
}

fn rra(raw: &RawRra, step: u64, key: &str, e: &mut Errors) -> Vec<RraSpec> {
    let every = whole_secs(raw.every, &format!("{key}.every"), e);
    if every == 0 || !every.is_multiple_of(step) {
        e.push(
            format!("{key}.every"),
            format!("must be a multiple of the step ({step}s)"),
        );
        return Vec::new();
    }
    let keep = raw.keep.as_secs();
    let rows = keep.div_ceil(every);
    if rows == 0 || rows > MAX_RRA_ROWS {
        e.push(
            format!("{key}.keep"),
            "must cover between 1 and 10000000 rows of `every`",
        );
        return Vec::new();
    }
    if !(0.0..1.0).contains(&raw.xff) {
        e.push(format!("{key}.xff"), "must be in [0, 1)");
    }
    raw.cf
        .to_vec()
        .into_iter()
        .map(|cf| RraSpec {
            cf,
            xff: raw.xff,
            steps_per_row: (every / step) as u32,
            rows: rows as u32,
        })
        .collect()
}

/// librrd DS names: 1 to 19 of `[A-Za-z0-9_]`.
pub fn is_valid_ds_name(name: &str) -> bool {
    (1..=19).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(parse_broker("embedded"), Ok(BrokerAddr::Embedded));
        assert_eq!(
            parse_broker("mqtt://example.org"),
            Ok(BrokerAddr::Remote {
                tls: false,
                host: "example.org".into(),
                port: 1883
            })
        );
        assert_eq!(
            parse_broker("mqtts://[::1]:8884/"),
            Ok(BrokerAddr::Remote {
                tls: true,
                host: "::1".into(),
                port: 8884
            })
        );
        for bad in [
            "tcp://x",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://u:p@h",
            "mqtt://[::1",
        ] {
            assert!(parse_broker(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ds_names() {
        assert!(is_valid_ds_name("value"));
        assert!(is_valid_ds_name("a234567890123456789"));
        assert!(!is_valid_ds_name("a2345678901234567890"));
        assert!(!is_valid_ds_name("bad-name"));
        assert!(!is_valid_ds_name(""));
    }
}
