//! Static files. Ours (`static/`) are compiled into the binary: one file to
//! install, and a page can never meet a stylesheet of another version.
//! dygraphs comes from Debian's libjs-dygraphs, read once at start from its
//! installed directory (configurable); only its files we use (the library, its stylesheet, the synchronizer extra) are served, by
//! fixed names.

use std::path::Path;

use actix_web::{HttpResponse, web};

use super::{State, WebError};

const STYLE_CSS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/style.css"));
const CHART_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/chart.js"));
const DASHBOARD_JS: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/dashboard.js"));
const ENERGY_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/energy.js"));
const WALLCLOCK_JS: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/static/wallclock.js"));

/// Changes with every release, so assets may be cached for a day.
const VERSION: &str = env!("CARGO_PKG_VERSION");

pub(crate) struct Dygraphs {
    js: Vec<u8>,
    css: Vec<u8>,
    /// The extra that synchronises a dashboard's charts (empty if absent:
    /// the charts then zoom alone).
    synchronizer: Vec<u8>,
}

impl Dygraphs {
    pub fn load(dir: &Path) -> Option<Dygraphs> {
        Some(Dygraphs {
            js: std::fs::read(dir.join("dygraph.min.js")).ok()?,
            css: std::fs::read(dir.join("dygraph.min.css")).unwrap_or_default(),
            synchronizer: std::fs::read(dir.join("extras/synchronizer.js")).unwrap_or_default(),
        })
    }
}

fn asset(content_type: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "public, max-age=86400"))
        .insert_header(("ETag", format!("\"{VERSION}\"")))
        .body(body)
}

pub(crate) async fn ours(name: web::Path<String>) -> Result<HttpResponse, WebError> {
    match name.as_str() {
        "style.css" => Ok(asset("text/css; charset=utf-8", STYLE_CSS.into())),
        "chart.js" => Ok(asset("text/javascript; charset=utf-8", CHART_JS.into())),
        "dashboard.js" => Ok(asset("text/javascript; charset=utf-8", DASHBOARD_JS.into())),
        "energy.js" => Ok(asset("text/javascript; charset=utf-8", ENERGY_JS.into())),
        "wallclock.js" => Ok(asset("text/javascript; charset=utf-8", WALLCLOCK_JS.into())),
        other => Err(WebError::NotFound(format!("static/{other}"))),
    }
}

pub(crate) async fn dygraphs(
    state: web::Data<State>,
    name: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let d = state
        .dygraphs
        .as_ref()
        .ok_or_else(|| WebError::NotFound("dygraphs is not installed (libjs-dygraphs)".into()))?;
    match name.as_str() {
        "dygraph.min.js" => Ok(asset("text/javascript; charset=utf-8", d.js.clone())),
        "dygraph.min.css" => Ok(asset("text/css; charset=utf-8", d.css.clone())),
        "synchronizer.js" => Ok(asset(
            "text/javascript; charset=utf-8",
            d.synchronizer.clone(),
        )),
        other => Err(WebError::NotFound(format!("dygraphs/{other}"))),
    }
}
