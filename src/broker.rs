//! The embedded MQTT broker (rumqttd), for machines with no broker of their
//! own. The daemon connects to it over TCP like to any broker, so there is
//! one code path. It keeps nothing on disk: messages published while the
//! daemon's client is not connected are lost.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use rumqttd::{Broker, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};
use tracing::{error, warn};

use crate::config::{BROKER_INTERNAL_USER, BrokerTls, EmbeddedBrokerConfig, Limits};
use crate::metrics::{Metrics, RateLimiter};
use crate::password::{Logins, Verdict};

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
    #[error("embedded broker TLS: {path}: {why}")]
    Tls {
        path: std::path::PathBuf,
        why: String,
    },
    #[error("no randomness for the daemon's broker password: {0}")]
    Secret(String),
}

/// What the daemon's client needs to connect: credentials when the broker
/// has users.
pub struct Started {
    pub credentials: Option<(String, String)>,
}

/// Starts the broker on its own threads and returns once it accepts
/// connections (so the client's first attempt does not fail), or after two
/// seconds. The broker runs until the process exits.
pub fn start(
    config: &EmbeddedBrokerConfig,
    limits: &Limits,
    metrics: Arc<Metrics>,
) -> Result<Started, BrokerError> {
    // rumqttd only logs a failed bind from its own thread; checking first
    // turns a port clash into a clear startup error.
    let listeners = std::iter::once(config.listen).chain(config.tls.as_ref().map(|t| t.listen));
    for addr in listeners {
        drop(TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?);
    }
    if let Some(tls) = &config.tls {
        check_tls_files(tls)?;
    }
    let credentials = match config.users.is_empty() {
        true => None,
        false => Some((BROKER_INTERNAL_USER.to_owned(), random_secret()?)),
    };
    let logins = credentials.as_ref().map(|(user, secret)| {
        Arc::new(Logins::new(config.users.clone()).with_internal(user.clone(), secret.clone()))
    });
    if config.users.is_empty() && !config.listen.ip().is_loopback() {
        warn!(listen = %config.listen, "The embedded broker takes anonymous connections beyond this machine (allow_anonymous = true).");
    }
    let server = |name: &str, listen, tls| {
        let mut server = ServerSettings {
            name: name.into(),
            listen,
            tls,
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
        if let Some(logins) = &logins {
            let (logins, metrics) = (logins.clone(), metrics.clone());
            let warnings = Arc::new(Mutex::new(RateLimiter::new(60_000)));
            server.set_auth_handler(move |client_id, user, password| {
                check_login(
                    logins.clone(),
                    metrics.clone(),
                    warnings.clone(),
                    client_id,
                    user,
                    password,
                )
            });
        }
        server
    };
    let mut servers = HashMap::from([("1".to_owned(), server("embedded", config.listen, None))]);
    if let Some(tls) = &config.tls {
        let settings = TlsConfig::Rustls {
            capath: None,
            certpath: tls.cert_file.display().to_string(),
            keypath: tls.key_file.display().to_string(),
        };
        servers.insert(
            "2".to_owned(),
            server("embedded-tls", tls.listen, Some(settings)),
        );
    }
    let broker_config = rumqttd::Config {
        id: 0,
        router: RouterConfig {
            max_connections: config.max_connections,
            max_outgoing_packet_count: 200,
            // Small segments keep rumqttd's in-memory log bounded.
            max_segment_size: config.max_segment_bytes,
            max_segment_count: 3,
            ..RouterConfig::default()
        },
        v4: Some(servers),
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
    Ok(Started { credentials })
}

/// rumqttd's CONNECT check: the configured users' argon2 hashes (through
/// `Logins`: verified pairs remembered, failures throttled per user before
/// argon2 runs, one argon2 at a time on a thread of its own), and the
/// daemon's own client. Refusals are counted and logged once a minute.
async fn check_login(
    logins: Arc<Logins>,
    metrics: Arc<Metrics>,
    warnings: Arc<Mutex<RateLimiter>>,
    client_id: String,
    user: String,
    password: String,
) -> bool {
    // The check is not told the client's address: throttled by user alone.
    let verdict = logins.check(&user, &password, "").await;
    if verdict == Verdict::Accepted {
        return true;
    }
    metrics.broker_auth_failures.fetch_add(1, Relaxed);
    let unix_ms = crate::clock::Clock::System.now_ms();
    let warn_now = warnings.lock().ok().and_then(|mut w| w.allow(unix_ms));
    if let Some(held_back) = warn_now {
        // Debug-quoted: both come from the CONNECT as a device sent them.
        warn!(
            ?client_id,
            ?user,
            ?verdict,
            held_back,
            "Embedded broker refused a connection."
        );
    }
    false
}

fn random_secret() -> Result<String, BrokerError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| BrokerError::Secret(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// rumqttd reads the certificate and key at each TLS connection and only
/// logs what is wrong: read them once at start, for a clear error.
fn check_tls_files(tls: &BrokerTls) -> Result<(), BrokerError> {
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
    PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| err(&tls.key_file, e.to_string()))?;
    Ok(())
}
