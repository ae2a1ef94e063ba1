//! Forms that change something (dashboards, events), protected against
//! cross-site requests: a browser sends basic credentials along with any
//! request to this host, so each user's forms carry a random token the POST
//! must return, and a request the browser marks as cross-site
//! (`Sec-Fetch-Site`) or whose `Origin` is another host is refused before
//! anything is parsed. Handlers take an [`EditorForm`]: the checks are done
//! by extracting it, once for every form.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};

use super::access::Access;
use super::{State, WebError};
use crate::config::Role;

/// One form token per user (`""` when no users are configured).
#[derive(Default)]
pub(crate) struct FormTokens {
    tokens: Mutex<HashMap<String, String>>,
}

impl FormTokens {
    /// The token `access`'s forms carry.
    pub fn token(&self, access: &Access) -> String {
        let user = access.user.clone().unwrap_or_default();
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.entry(user).or_insert_with(random_token).clone()
    }

    fn matches(&self, access: &Access, given: &str) -> bool {
        use subtle::ConstantTimeEq;
        let user = access.user.clone().unwrap_or_default();
        let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens
            .get(&user)
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(given.as_bytes())))
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Without the OS's randomness no form can be trusted: an empty token
    // matches nothing but an empty answer, which is refused.
    if getrandom::fill(&mut bytes).is_err() {
        return String::new();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Only editors (and admins) change things.
pub(crate) fn require_editor(access: &Access) -> Result<(), WebError> {
    if access.role >= Role::Editor {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "making dashboards needs the editor role".into(),
        ))
    }
}

/// Refuses a request a browser sent on another site's behalf.
fn same_origin(req: &HttpRequest) -> Result<(), WebError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("Sec-Fetch-Site")
        && !matches!(site, "same-origin" | "none")
    {
        return Err(WebError::Forbidden(format!("cross-site request ({site})")));
    }
    if let (Some(origin), Some(host)) = (header("Origin"), header("Host")) {
        let origin_host = origin.split_once("://").map_or(origin, |(_, h)| h);
        if origin_host != host {
            return Err(WebError::Forbidden("request from another origin".into()));
        }
    }
    Ok(())
}

/// A form an editor sent from one of our pages: the role, the origin and
/// the token checked; its fields as sent.
pub(crate) struct EditorForm {
    pub access: Access,
    pub fields: Vec<(String, String)>,
}

impl EditorForm {
    /// The first value of `key`.
    pub fn field(&self, key: &str) -> Option<&str> {
        field(&self.fields, key)
    }
}

/// The first value of `key` in form fields.
pub(crate) fn field<'f>(fields: &'f [(String, String)], key: &str) -> Option<&'f str> {
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl FromRequest for EditorForm {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<EditorForm, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let access = Access::extract(&req);
        let form = web::Form::<Vec<(String, String)>>::from_request(&req, payload);
        Box::pin(async move {
            let access = access.await?;
            require_editor(&access)?;
            same_origin(&req)?;
            let fields = form.await?.into_inner();
            let state = req
                .app_data::<web::Data<State>>()
                .ok_or_else(|| WebError::Storage("no state".into()))?;
            if !state
                .form_tokens
                .matches(&access, field(&fields, "csrf").unwrap_or_default())
            {
                return Err(WebError::Forbidden(
                    "the form's token is stale: reload the form".into(),
                )
                .into());
            }
            Ok(EditorForm { access, fields })
        })
    }
}

/// Where the browser goes after a form did its work.
pub(crate) fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .finish()
}
