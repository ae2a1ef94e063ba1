//! `[embedded_broker]`: where it listens (and whether that is safe), its
//! accounts and their publish and subscribe rights, TLS, and its limits.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use super::Errors;
use crate::config::raw::{RawBrokerUser, RawEmbeddedBroker};
use crate::config::{BROKER_INTERNAL_USER, BrokerTls, BrokerUser, EmbeddedBrokerConfig};

pub(super) fn embedded_broker(raw: &RawEmbeddedBroker, e: &mut Errors) -> EmbeddedBrokerConfig {
    let listen = raw.listen.parse::<SocketAddr>().unwrap_or_else(|err| {
        e.push(
            "embedded_broker.listen",
            format!("not an address:port ({err})"),
        );
        SocketAddr::from(([127, 0, 0, 1], 1883))
    });
    let users = users(&raw.users, e);
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
    check_limits(raw, e);
    EmbeddedBrokerConfig {
        listen,
        max_segment_bytes: raw.max_segment_bytes,
        users,
        max_connections: raw.max_connections,
        max_inflight: raw.max_inflight,
        max_publish_rate: raw.max_publish_rate,
        publish_burst: raw.publish_burst,
        tls,
    }
}

/// `[[embedded_broker.users]]`: unique names that are not the daemon's own
/// and can stand for `%u` in a filter, argon2 hashes, topic filters.
fn users(raw: &[RawBrokerUser], e: &mut Errors) -> Vec<BrokerUser> {
    let mut names = HashSet::new();
    for (i, u) in raw.iter().enumerate() {
        let key = format!("embedded_broker.users[{i}]");
        if u.name.is_empty() || !names.insert(&u.name) {
            e.push(format!("{key}.name"), "must be non-empty and unique");
        } else if u.name == BROKER_INTERNAL_USER {
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
        for (list, filters) in [("publish", &u.publish), ("subscribe", &u.subscribe)] {
            for (j, filter) in filters.iter().flatten().enumerate() {
                if !rumqttc::valid_filter(&filter.replace("%u", "u")) {
                    e.push(
                        format!("{key}.{list}[{j}]"),
                        format!("{filter:?} is not an MQTT topic filter"),
                    );
                }
            }
        }
    }
    raw.iter()
        .map(|u| BrokerUser {
            name: u.name.clone(),
            password_hash: u.password_hash.clone(),
            publish: u.publish.clone(),
            subscribe: u.subscribe.clone(),
        })
        .collect()
}

fn check_limits(raw: &RawEmbeddedBroker, e: &mut Errors) {
    let checks: [(&str, u64, u64, u64, &str); 5] = [
        (
            "max_segment_bytes",
            raw.max_segment_bytes as u64,
            4096,
            256 << 20,
            "",
        ),
        ("max_connections", raw.max_connections as u64, 1, 10_000, ""),
        ("max_inflight", raw.max_inflight as u64, 1, 65_535, ""),
        (
            "max_publish_rate",
            raw.max_publish_rate as u64,
            1,
            1_000_000,
            " (messages a second)",
        ),
        ("publish_burst", raw.publish_burst as u64, 1, 1_000_000, ""),
    ];
    for (key, value, min, max, what) in checks {
        if !(min..=max).contains(&value) {
            e.push(
                format!("embedded_broker.{key}"),
                format!("must be between {min} and {max}{what}"),
            );
        }
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
