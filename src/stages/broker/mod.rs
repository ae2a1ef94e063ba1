//! The embedded MQTT broker, for machines with no broker of their own:
//! rumqttd on a loopback port, behind [`gate`], which is what devices
//! connect to (accounts, publish rights, rates, TLS, limits, every refusal
//! counted). The daemon's own client connects to rumqttd directly. It keeps
//! nothing on disk: messages published while the daemon's client is not
//! connected are lost.

mod frames;
mod gate;
mod relay;
mod rights;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings};
use tracing::{error, warn};

use self::gate::Gate;
use crate::config::{BROKER_INTERNAL_USER, BrokerTls, EmbeddedBrokerConfig, Limits};
use crate::metrics::Metrics;
use crate::password::{Logins, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error(
        "embedded broker cannot listen on {addr}: {source} (is another broker running? set mqtt.broker to use it)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the embedded broker thread: {0}")]
    Thread(std::io::Error),
    #[error("embedded broker TLS: {path}: {why}")]
    Tls {
        path: std::path::PathBuf,
        why: String,
    },
    #[error("no randomness for the embedded broker's internal password: {0}")]
    Secret(String),
    #[error("the embedded broker did not start within {0:?}")]
    NotStarted(Duration),
}

/// Where the daemon's own client connects, and with what.
pub struct Started {
    /// rumqttd's loopback listener.
    pub internal: SocketAddr,
    pub credentials: (String, String),
}

/// Starts rumqttd on its own threads and the gate on the runtime, and
/// returns once both accept connections (so the client's first attempt
/// does not fail). They run until the process exits.
pub fn start(
    config: &EmbeddedBrokerConfig,
    limits: &Limits,
    daemon_client_id: &str,
    metrics: Arc<Metrics>,
) -> Result<Started, BrokerError> {
    let bind = |addr| {
        let listener =
            TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
        listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener))
            .map_err(|source| BrokerError::Bind { addr, source })
    };
    // Both bound before anything starts: a port clash is a clear error.
    let plain = bind(config.listen)?;
    let tls = match &config.tls {
        Some(tls) => Some((bind(tls.listen)?, tls_acceptor(tls)?)),
        None => None,
    };
    if config.users.is_empty() && !config.listen.ip().is_loopback() {
        warn!(listen = %config.listen, "The embedded broker takes anonymous connections beyond this machine (allow_anonymous = true).");
    }
    let internal = free_loopback_port()?;
    let credentials = (BROKER_INTERNAL_USER.to_owned(), random_secret()?);
    start_rumqttd(config, limits, internal, &credentials)?;
    let logins = (!config.users.is_empty()).then(|| {
        let users = config
            .users
            .iter()
            .map(|u| (u.name.clone(), u.password_hash.clone()));
        Arc::new(Logins::new(users))
    });
    let gate = Arc::new(Gate::new(
        config,
        logins,
        internal,
        rumqttc::Login::new(credentials.0.clone(), credentials.1.clone()),
        daemon_client_id,
        limits.max_payload_bytes,
        metrics,
    ));
    tokio::spawn(gate.clone().serve(plain, None));
    if let Some((listener, acceptor)) = tls {
        tokio::spawn(gate.serve(listener, Some(acceptor)));
    }
    Ok(Started {
        internal,
        credentials,
    })
}

/// rumqttd on `internal`, taking only the gate and the daemon's client
/// (the one account, with a password made for this run).
fn start_rumqttd(
    config: &EmbeddedBrokerConfig,
    limits: &Limits,
    internal: SocketAddr,
    credentials: &(String, String),
) -> Result<(), BrokerError> {
    let mut server = ServerSettings {
        name: "embedded".into(),
        listen: internal,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: limits.max_payload_bytes,
            max_inflight_count: config.max_inflight,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let logins =
        Arc::new(Logins::new([]).with_internal(credentials.0.clone(), credentials.1.clone()));
    server.set_auth_handler(move |_client_id, user, password| {
        let logins = logins.clone();
        async move { logins.check(&user, &password, "").await == Verdict::Accepted }
    });
    let broker_config = rumqttd::Config {
        id: 0,
        router: RouterConfig {
            // The gate's own limit, plus the daemon's client.
            max_connections: config.max_connections + 1,
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
    let wait = Duration::from_secs(5);
    let ready_by = Instant::now() + wait;
    while std::net::TcpStream::connect(internal).is_err() {
        if Instant::now() >= ready_by {
            return Err(BrokerError::NotStarted(wait));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// A loopback port free now, for rumqttd, which binds its own listener
/// from an address. Another process could take it before rumqttd binds
/// it: start then fails with [`BrokerError::NotStarted`], not silently.
fn free_loopback_port() -> Result<SocketAddr, BrokerError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    TcpListener::bind(addr)
        .and_then(|l| l.local_addr())
        .map_err(|source| BrokerError::Bind { addr, source })
}

fn random_secret() -> Result<String, BrokerError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| BrokerError::Secret(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The `mqtts` listener's TLS: the certificate chain and key read once at
/// start, so that a bad file is a clear error then.
fn tls_acceptor(tls: &BrokerTls) -> Result<tokio_rustls::TlsAcceptor, BrokerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let err = |path: &std::path::Path, why: String| BrokerError::Tls {
        path: path.to_owned(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .map_err(|e| err(&tls.cert_file, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(&tls.cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(err(&tls.cert_file, "no certificate in it".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| err(&tls.key_file, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| err(&tls.key_file, e.to_string()))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}
