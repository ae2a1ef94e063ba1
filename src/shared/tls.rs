//! TLS clients (an `mqtts://` broker, an `https://` exporter): rustls with
//! the ring provider, trusting a configured CA file (a self-signed
//! certificate at home) or else the system's roots (Debian's
//! ca-certificates).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("no trusted root certificate found (system store empty; set a ca_file)")]
    NoRoots,
    #[error("TLS setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A client configuration trusting `ca_file`'s certificates, or the
/// system's roots without one.
pub fn client_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let err = |reason: String| TlsError::CaFile {
                path: path.to_owned(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))?;
            for cert in certs {
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
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_or_certificate_less_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = client_config(Some(&missing)).err().unwrap().to_string();
        assert!(
            err.contains("cannot read CA file") && err.contains("missing.pem"),
            "{err}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        assert!(matches!(
            client_config(Some(&empty)),
            Err(TlsError::NoRoots)
        ));
        let torn = dir.path().join("torn.pem");
        std::fs::write(&torn, "-----BEGIN CERTIFICATE-----\nAAAA\n").unwrap();
        let err = client_config(Some(&torn)).err().unwrap().to_string();
        assert!(err.contains("cannot read CA file"), "{err}");
    }
}
