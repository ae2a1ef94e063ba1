//! Optional HTTP basic authentication against users from the config, whose
//! passwords are stored as argon2 PHC strings, checked by
//! `password::Logins` (shared with the embedded broker): a verified header
//! is remembered so that only the first request of a session pays argon2,
//! on a blocking thread, and repeated failures are throttled before it.

use std::sync::Arc;

use actix_web::HttpMessage;
use actix_web::dev::ServiceRequest;
use actix_web::web;
use actix_web_httpauth::extractors::AuthenticationError;
use actix_web_httpauth::extractors::basic::{BasicAuth, Config};

use super::State;
use super::access::Access;
use crate::config::{WebGroup, WebUser};
use crate::password::{Logins, Verdict};

pub(crate) struct Users {
    logins: Arc<Logins>,
    /// Each user's access, worked out once.
    access: std::collections::HashMap<String, Access>,
}

impl Users {
    pub fn new(users: Vec<WebUser>, groups: &[WebGroup]) -> Self {
        Users {
            access: users
                .iter()
                .map(|u| (u.name.clone(), Access::of(u, groups)))
                .collect(),
            logins: Arc::new(Logins::new(
                users.into_iter().map(|u| (u.name, u.password_hash)),
            )),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.logins.is_empty()
    }
}

/// actix-web-httpauth's validator: lets the request through when its
/// credentials are a configured user's, answers 401 otherwise, and 429
/// with `Retry-After` while the user or address is throttled.
pub(crate) async fn validator(
    req: ServiceRequest,
    credentials: BasicAuth,
) -> Result<ServiceRequest, (actix_web::Error, ServiceRequest)> {
    let Some(state) = req.app_data::<web::Data<State>>().cloned() else {
        return Err((actix_web::error::ErrorInternalServerError("no state"), req));
    };
    let user = credentials.user_id().to_owned();
    let password = credentials.password().unwrap_or_default().to_owned();
    let addr = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let verdict = state.users.logins.check(&user, &password, &addr).await;
    let refused = |state: &State| {
        state
            .metrics
            .http_auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    match verdict {
        Verdict::Accepted => Ok(with_access(req, &state, &user)),
        Verdict::Throttled(wait) => {
            refused(&state);
            let response = actix_web::HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", wait.as_secs().max(1).to_string()))
                .finish();
            Err((
                actix_web::error::InternalError::from_response("login throttled", response).into(),
                req,
            ))
        }
        Verdict::Refused { locked } => {
            refused(&state);
            if let Some(lock) = locked {
                // Debug-quoted: the name comes from the request as it is.
                tracing::warn!(
                    ?user,
                    addr,
                    lock_s = lock.as_secs(),
                    "Repeated failed logins: further attempts are refused for a while (429)."
                );
            }
            let challenge = Config::default().realm("datalog-rrd");
            Err((AuthenticationError::from(challenge).into(), req))
        }
    }
}

/// The request, carrying what its (verified) user may see.
fn with_access(req: ServiceRequest, state: &State, user: &str) -> ServiceRequest {
    if let Some(access) = state.users.access.get(user) {
        req.extensions_mut().insert(access.clone());
    }
    req
}
