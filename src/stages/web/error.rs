//! Errors of the web stage and the HTTP status each maps to. Bodies are
//! plain text naming what was wrong; nothing internal leaks beyond the
//! librrd message of a file the index already lists.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

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
