//! Optional HTTP basic authentication against users from the config, whose
//! passwords are stored as argon2 PHC strings (`crate::password`).
//!
//! argon2 is slow on purpose (tens of milliseconds, more on a Raspberry
//! Pi), and a browser sends the same header with every graph it loads: a
//! verified header is remembered (in memory, a bounded set) so that only
//! the first request of a session pays, on a blocking thread.

use std::collections::HashSet;
use std::sync::Mutex;

use actix_web::HttpMessage;
use actix_web::dev::ServiceRequest;
use actix_web::web;
use actix_web_httpauth::extractors::AuthenticationError;
use actix_web_httpauth::extractors::basic::{BasicAuth, Config};

use super::State;
use super::access::Access;
use crate::config::{WebGroup, WebUser};
use crate::password;

/// Verified `user:password` pairs kept; beyond this the set starts over.
const REMEMBERED: usize = 256;

pub(crate) struct Users {
    users: Vec<WebUser>,
    /// Each user's access, worked out once.
    access: std::collections::HashMap<String, Access>,
    verified: Mutex<HashSet<(String, String)>>,
    throttle: Mutex<super::throttle::Throttle>,
}

impl Users {
    pub fn new(users: Vec<WebUser>, groups: &[WebGroup]) -> Self {
        Users {
            access: users
                .iter()
                .map(|u| (u.name.clone(), Access::of(u, groups)))
                .collect(),
            users,
            verified: Mutex::new(HashSet::new()),
            throttle: Mutex::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.users.is_empty()
    }

    fn remembered(&self, key: &(String, String)) -> bool {
        self.verified.lock().is_ok_and(|set| set.contains(key))
    }

    fn remember(&self, key: (String, String)) {
        if let Ok(mut set) = self.verified.lock() {
            if set.len() >= REMEMBERED {
                set.clear();
            }
            set.insert(key);
        }
    }

    /// Whether `password` is `user`'s. An unknown user costs a verification
    /// too, so that timing does not tell which names exist.
    fn verify(&self, user: &str, password: &str) -> bool {
        let known = self.users.iter().find(|u| u.name == user);
        let Some(hash) = known.or(self.users.first()).map(|u| &u.password_hash) else {
            return false;
        };
        password::verify(hash, password) && known.is_some()
    }
}

/// actix-web-httpauth's validator: lets the request through when its
/// credentials are a configured user's, answers 401 otherwise.
pub(crate) async fn validator(
    req: ServiceRequest,
    credentials: BasicAuth,
) -> Result<ServiceRequest, (actix_web::Error, ServiceRequest)> {
    let Some(state) = req.app_data::<web::Data<State>>().cloned() else {
        return Err((actix_web::error::ErrorInternalServerError("no state"), req));
    };
    let key = (
        credentials.user_id().to_owned(),
        credentials.password().unwrap_or_default().to_owned(),
    );
    if state.users.remembered(&key) {
        return Ok(with_access(req, &state, &key.0));
    }
    // Throttled before argon2 runs: a brute-force loop costs us nothing.
    let addr = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let now = std::time::Instant::now();
    let locked = state
        .users
        .throttle
        .lock()
        .ok()
        .and_then(|t| t.locked(&key.0, &addr, now));
    if let Some(wait) = locked {
        state
            .metrics
            .http_auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let response = actix_web::HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", wait.as_secs().max(1).to_string()))
            .finish();
        return Err((
            actix_web::error::InternalError::from_response("login throttled", response).into(),
            req,
        ));
    }
    let checked = key.clone();
    let users = state.clone();
    let ok = web::block(move || users.users.verify(&checked.0, &checked.1))
        .await
        .unwrap_or(false);
    if ok {
        if let Ok(mut t) = state.users.throttle.lock() {
            t.succeeded(&key.0, &addr);
        }
        let user = key.0.clone();
        state.users.remember(key);
        Ok(with_access(req, &state, &user))
    } else {
        state
            .metrics
            .http_auth_failures
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let failed = state
            .users
            .throttle
            .lock()
            .ok()
            .map(|mut t| t.failed(&key.0, &addr, now));
        if let Some(super::throttle::Failed::Locked(lock)) = failed {
            tracing::warn!(
                user = key.0,
                addr,
                lock_s = lock.as_secs(),
                "Repeated failed logins: further attempts are refused for a while (429)."
            );
        }
        let challenge = Config::default().realm("datalog-rrd");
        Err((AuthenticationError::from(challenge).into(), req))
    }
}

/// The request, carrying what its (verified) user may see.
fn with_access(req: ServiceRequest, state: &State, user: &str) -> ServiceRequest {
    if let Some(access) = state.users.access.get(user) {
        req.extensions_mut().insert(access.clone());
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_their_password_and_user() {
        let hash = password::hash_password("s3cret").unwrap();
        let users = Users::new(
            vec![WebUser {
                name: "ann".into(),
                password_hash: hash,
                role: crate::config::Role::Admin,
                groups: Vec::new(),
            }],
            &[],
        );
        assert!(users.verify("ann", "s3cret"));
        assert!(!users.verify("ann", "S3cret"));
        assert!(!users.verify("bob", "s3cret"));
        assert!(!Users::new(vec![], &[]).verify("ann", "s3cret"));
    }
}
