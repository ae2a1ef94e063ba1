//! The embedded MQTT broker (rumqttd), for machines with no broker of their
//! own. The daemon connects to it over TCP like to any broker, so there is
//! one code path. It keeps nothing on disk: messages published while the
//! daemon's client is not connected are lost.

use std::collections::HashMap;
use std::net::TcpListener;

use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings};
use tracing::error;

use crate::config::{EmbeddedBrokerConfig, Limits};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "embedded broker cannot listen on {addr}: {source} (is another broker running? set mqtt.broker to use it)"
    )]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the embedded broker thread: {0}")]
    Thread(std::io::Error),
}

/// Starts the broker on its own threads and returns once it accepts
/// connections (so the client's first attempt does not fail), or after two
/// seconds. The broker runs until the process exits.
pub fn start(config: &EmbeddedBrokerConfig, limits: &Limits) -> Result<(), BrokerError> {
    // rumqttd only logs a failed bind from its own thread; checking first
    // turns a port clash into a clear startup error.
    drop(
        TcpListener::bind(config.listen).map_err(|source| BrokerError::Bind {
            addr: config.listen,
            source,
        })?,
    );
    let server = ServerSettings {
        name: "embedded".into(),
        listen: config.listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: limits.max_payload_bytes,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let broker_config = rumqttd::Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1000,
            max_outgoing_packet_count: 200,
            // Small segments keep rumqttd's in-memory log bounded.
            max_segment_size: config.max_segment_bytes,
            max_segment_count: 3,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_owned(), server)])),
        ..rumqttd::Config::default()
    };
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = Broker::new(broker_config).start() {
                error!(error = %e, "Embedded MQTT broker stopped.");
            }
        })
        .map_err(BrokerError::Thread)?;
    let ready_by = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while std::net::TcpStream::connect(config.listen).is_err()
        && std::time::Instant::now() < ready_by
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}
