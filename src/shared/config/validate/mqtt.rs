//! `[mqtt]`: the broker's address, credentials, topics and timings.

use std::time::Duration;

use super::Errors;
use crate::config::raw::RawMqtt;
use crate::config::{MqttConfig, TlsConfig};

/// Returns the MQTT settings and whether the embedded broker is wanted.
pub(super) fn mqtt(raw: &RawMqtt, e: &mut Errors) -> (MqttConfig, bool) {
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
    let credentials = credentials(raw, e);
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
    check_topics(raw, e);
    check_timings(raw, e);
    let config = MqttConfig {
        host,
        port,
        tls: tls.then(|| TlsConfig {
            ca_file: raw.ca_file.clone(),
        }),
        client_id: raw.client_id.clone(),
        credentials,
        topics: subscribed(raw),
        exclude: raw.exclude.clone(),
        status_topic: (!raw.status_topic.is_empty()).then(|| raw.status_topic.clone()),
        events_topic: (!raw.events_topic.is_empty()).then(|| raw.events_topic.clone()),
        discovery: raw.discovery,
        clean_session: raw.clean_session,
        qos: qos(raw.qos, e),
        keep_alive: raw.keep_alive,
        reconnect_min: raw.reconnect_min,
        reconnect_max: raw.reconnect_max,
    };
    (config, embedded)
}

/// User name and password (given, or read from `password_file`).
fn credentials(raw: &RawMqtt, e: &mut Errors) -> Option<(String, String)> {
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
    match (&raw.username, password) {
        (Some(u), p) => Some((u.clone(), p.unwrap_or_default())),
        (None, Some(_)) => {
            e.push("mqtt.username", "a password needs a username");
            None
        }
        (None, None) => None,
    }
}

fn check_topics(raw: &RawMqtt, e: &mut Errors) {
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
}

/// The filters subscribed to: `topics`, and Home Assistant's discovery
/// tree when discovery is on, even when `topics` names only the devices'
/// own trees.
fn subscribed(raw: &RawMqtt) -> Vec<String> {
    let mut topics = raw.topics.clone();
    if raw.discovery
        && !topics
            .iter()
            .any(|f| rumqttc::matches("homeassistant/sensor/x/y/config", f))
    {
        topics.push("homeassistant/#".into());
    }
    topics
}

fn qos(raw: u8, e: &mut Errors) -> rumqttc::QoS {
    match raw {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        2 => rumqttc::QoS::ExactlyOnce,
        _ => {
            e.push("mqtt.qos", "must be 0, 1 or 2");
            rumqttc::QoS::AtLeastOnce
        }
    }
}

fn check_timings(raw: &RawMqtt, e: &mut Errors) {
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
}
