//! Which changes of a reloaded configuration take effect only after a
//! restart: connection settings, paths, and what is built once at start.
//! Everything else (files, templates, rules, topics, limits, cache
//! timings, dashboards) follows at once.

use crate::config::Config;

/// The keys whose change needs a restart, as the log names them.
pub fn restart_needed(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (&old.mqtt, &new.mqtt);
    [
        ("data_dir", old.data_dir != new.data_dir),
        (
            "mqtt.broker",
            (&o.host, o.port, &o.tls) != (&n.host, n.port, &n.tls),
        ),
        ("mqtt.client_id", o.client_id != n.client_id),
        ("mqtt.username/password", o.credentials != n.credentials),
        ("mqtt.qos", o.qos != n.qos),
        ("mqtt.keep_alive", o.keep_alive != n.keep_alive),
        ("mqtt.status_topic", o.status_topic != n.status_topic),
        (
            "embedded_broker",
            old.embedded_broker != new.embedded_broker,
        ),
        (
            "cache.snapshot_every",
            old.cache.snapshot_every != new.cache.snapshot_every,
        ),
        (
            "cache.stats_every",
            old.cache.stats_every != new.cache.stats_every,
        ),
        ("web", old.web != new.web),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, "test").unwrap()
    }

    #[test]
    fn connection_settings_and_paths_need_a_restart_the_rest_does_not() {
        let old = config("[mqtt]\nbroker = \"mqtt://broker:1883\"\n");
        assert!(restart_needed(&old, &old).is_empty());
        let moved = config("[mqtt]\nbroker = \"mqtt://other:1883\"\nqos = 0\n");
        assert_eq!(restart_needed(&old, &moved), ["mqtt.broker", "mqtt.qos"]);
        let timings =
            config("[mqtt]\nbroker = \"mqtt://broker:1883\"\n[cache]\nflush_after = \"1m\"\n");
        assert!(
            restart_needed(&old, &timings).is_empty(),
            "flush_after follows at once"
        );
        let elsewhere = config("data_dir = \"/tmp/y\"\n[mqtt]\nbroker = \"mqtt://broker:1883\"\n");
        assert_eq!(restart_needed(&old, &elsewhere), ["data_dir"]);
    }
}
