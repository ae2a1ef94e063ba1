//! TLS for `mqtts://` brokers: rustls with the ring provider, trusting a
//! configured CA file or else the system's roots.

use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use rumqttc::{TlsConfiguration, Transport};

use crate::config::TlsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("no trusted root certificate found (system store empty; set mqtt.ca_file)")]
    NoRoots,
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

pub fn transport(config: &TlsConfig) -> Result<Transport, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.ca_file {
        Some(path) => {
            let err = |reason: String| TlsError::CaFile {
                path: path.clone(),
                reason,
            };
            let file = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
            for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
                roots
                    .add(cert.map_err(|e| err(e.to_string()))?)
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err(TlsError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client),
    )))
}
