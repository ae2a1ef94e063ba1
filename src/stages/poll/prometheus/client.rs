//! One HTTP or HTTPS GET of an exposition, bounded in time and size.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

use crate::config::poll::PollJob;
use crate::poll::{PollError, PollErrorKind};

/// The largest exposition read: node_exporter's is about 100 KB.
const MAX_BODY: usize = 16 << 20;

/// The body as text, and whether it is OpenMetrics (seconds timestamps).
pub async fn get(job: &PollJob, deadline: Instant) -> Result<(String, bool), PollError> {
    let uri = job.url();
    let mut request = hyper::Request::get(&uri)
        .header(
            hyper::header::ACCEPT,
            "text/plain;version=0.0.4;q=1,*/*;q=0.1",
        )
        .header(hyper::header::USER_AGENT, "datalog-rrd");
    if let Some((user, password)) = &job.credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request = request.header(hyper::header::AUTHORIZATION, format!("Basic {token}"));
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| PollError::protocol(format!("{uri}: {e}")))?;
    let fetch = async {
        if !job.https {
            let client = Client::builder(TokioExecutor::new()).build_http();
            return fetch(client, request, &uri).await;
        }
        let tls = tls_config(job)
            .map_err(|e| PollError::new(PollErrorKind::Connect, format!("GET {uri}: {e}")))?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_only()
            .enable_http1()
            .build();
        fetch(
            Client::builder(TokioExecutor::new()).build(https),
            request,
            &uri,
        )
        .await
    };
    tokio::time::timeout_at(deadline, fetch)
        .await
        .map_err(|_| PollError::timeout(&format!("GET {uri}")))?
}

/// The TLS configuration of `job`: its CA file's, read each round (a
/// renewed certificate is trusted without a restart), or the system's
/// roots, read once.
fn tls_config(job: &PollJob) -> Result<Arc<rustls::ClientConfig>, String> {
    static SYSTEM: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    match &job.ca_file {
        Some(ca) => crate::tls::client_config(Some(ca))
            .map(Arc::new)
            .map_err(|e| e.to_string()),
        None => SYSTEM
            .get_or_init(|| {
                crate::tls::client_config(None)
                    .map(Arc::new)
                    .map_err(|e| e.to_string())
            })
            .clone(),
    }
}

async fn fetch<C>(
    client: Client<C, Empty<Bytes>>,
    request: hyper::Request<Empty<Bytes>>,
    uri: &str,
) -> Result<(String, bool), PollError>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let response = client.request(request).await.map_err(|e| {
        let kind = if e.is_connect() {
            PollErrorKind::Connect
        } else {
            PollErrorKind::Io
        };
        PollError::new(kind, format!("GET {uri}: {}", error_chain(&e)))
    })?;
    let status = response.status();
    if status != hyper::StatusCode::OK {
        return Err(PollError::new(
            PollErrorKind::Http,
            format!("GET {uri}: {status}"),
        ));
    }
    let openmetrics = response
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/openmetrics-text"));
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| PollError::new(PollErrorKind::Io, format!("GET {uri}: {e}")))?
        .to_bytes();
    let text = String::from_utf8(body.to_vec())
        .map_err(|_| PollError::protocol(format!("GET {uri}: the body is not UTF-8")))?;
    Ok((text, openmetrics))
}

/// hyper's error and its causes, on one line ("client error (Connect):
/// tcp connect error: Connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
