//! TLS for `mqtts://` brokers: the shared client configuration (a
//! configured CA file, or else the system's roots) as rumqttc's transport.

use std::sync::Arc;

use rumqttc::{TlsConfiguration, Transport};

use crate::config::TlsConfig;
pub use crate::tls::TlsError;

pub fn transport(config: &TlsConfig) -> Result<Transport, TlsError> {
    let client = crate::tls::client_config(config.ca_file.as_deref())?;
    Ok(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(client),
    )))
}
