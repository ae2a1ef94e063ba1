//! Errors of the web stage and the HTTP status each maps to. Bodies are
//! plain text naming what was wrong; nothing internal leaks beyond the
//! librrd message of a file the index already lists. A browser asking for
//! a page gets the same words in a page with the header and a way back
//! ([`html_errors`]).

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use askama::Template;

use super::query::QueryError;
use crate::rrd::read::ReadError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("bad request: {0}")]
    Query(#[from] QueryError),
    #[error("bad request: {0}")]
    BadQuery(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("busy: too many graphs and exports are waiting; retry in a moment")]
    Busy,
    #[error("the daemon is stopping")]
    Stopping,
    #[error("{0}")]
    Read(ReadError),
    #[error("page not rendered: {0}")]
    Template(#[from] askama::Error),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not stored: {0}")]
    Storage(String),
}

impl From<ReadError> for WebError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NotFound(path) => WebError::NotFound(path),
            ReadError::Stopped => WebError::Stopping,
            e => WebError::Read(e),
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::Query(_) | WebError::BadQuery(_) => StatusCode::BAD_REQUEST,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Busy | WebError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::Read(_) | WebError::Template(_) | WebError::Storage(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        response.content_type("text/plain; charset=utf-8");
        if matches!(self, WebError::Busy) {
            response.insert_header(("Retry-After", "1"));
        }
        response.body(format!("{self}\n"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: super::chrome::Chrome,
    status: u16,
    title: &'static str,
    message: String,
}

/// An error answered to a browser asking for a page (`Accept: text/html`,
/// not an image or data a script fetches) becomes a page: the header, the
/// message, links back. Other clients keep the plain text.
pub(crate) fn html_errors<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let wants_page = res
        .request()
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let status = res.status();
    let path = res.request().path();
    let a_page = !path.starts_with("/rrd/data/")
        && !path.starts_with("/rrd/graph/")
        && !path.starts_with("/rrd/static/")
        && !path.ends_with(".json");
    if !wants_page || !a_page || status == StatusCode::UNAUTHORIZED {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let message = res
        .response()
        .error()
        .map(|e| e.to_string())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned());
    let chrome = {
        let req = res.request();
        let state = req.app_data::<web::Data<super::State>>();
        let access = req.extensions().get::<super::access::Access>().cloned();
        match (state, access) {
            (Some(state), Some(access)) => super::chrome::Chrome::of(state, &access),
            (Some(state), None) if !state.users.enabled() => {
                super::chrome::Chrome::of(state, &super::access::Access::everything())
            }
            (Some(state), None) => super::chrome::Chrome::anonymous(&state.time_zone),
            (None, _) => super::chrome::Chrome::anonymous("UTC"),
        }
    };
    let page = ErrorPage {
        chrome,
        status: status.as_u16(),
        title: match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not for you",
            StatusCode::BAD_REQUEST => "That request is not understood",
            StatusCode::SERVICE_UNAVAILABLE => "Busy: try again in a moment",
            _ => "Something went wrong",
        },
        message,
    };
    let Ok(body) = page.render() else {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    };
    let (req, res) = res.into_parts();
    let mut res = res.set_body(BoxBody::new(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    let res = ServiceResponse::new(req, res).map_body(|_, b| EitherBody::right(b));
    Ok(ErrorHandlerResponse::Response(res))
}
