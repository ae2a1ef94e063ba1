//! `GET /rrd/graph/<file>.png` (or `.svg`): a graph drawn by librrd on the
//! RRD thread, after the file's cached rows are written. A young file's
//! graph of a relative range (the last day…) starts where its data does.
//!
//! Images are kept in a small LRU keyed by the request (file, absolute
//! range, size, DS). A key seen before is sent to the RRD thread with the
//! last update its image was drawn at, and librrd draws again only if the
//! file changed since. Responses carry an ETag and Last-Modified, so a
//! browser revalidating an unchanged graph gets a 304 and no image.

use std::num::NonZeroUsize;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use lru::LruCache;

use super::access::Access;
use super::query::{GraphParams, graph_size, select_ds};
use super::{State, WebError};
use crate::model::path::fnv1a;
use crate::rrd::index::{IndexDs, IndexEntry};
use crate::rrd::read::{GraphLine, GraphReply, GraphRequest, LineStyle};

const CACHED_IMAGES: usize = 128;
/// And at most this many bytes of them: a Pi has little memory to spare.
const CACHED_BYTES: usize = 8 << 20;

#[derive(Clone)]
pub(crate) struct CachedPng {
    last_update: i64,
    etag: String,
    bytes: web::Bytes,
    /// The local time at the axis' right end (`X-Axis-End`).
    axis_end: Option<String>,
}

pub(crate) struct PngCache {
    images: LruCache<String, CachedPng>,
    bytes: usize,
}

impl PngCache {
    pub fn new() -> Self {
        PngCache {
            images: LruCache::new(NonZeroUsize::new(CACHED_IMAGES).expect("non-zero")),
            bytes: 0,
        }
    }

    fn get(&mut self, key: &str) -> Option<&CachedPng> {
        self.images.get(key)
    }

    /// Keeps `image`, evicting the least recently used beyond the bounds.
    fn put(&mut self, key: String, image: CachedPng) {
        self.bytes += image.bytes.len();
        if let Some((_, old)) = self.images.push(key, image) {
            self.bytes -= old.bytes.len();
        }
        while self.bytes > CACHED_BYTES && self.images.len() > 1 {
            match self.images.pop_lru() {
                Some((_, old)) => self.bytes -= old.bytes.len(),
                None => break,
            }
        }
    }
}

pub(crate) async fn png(
    state: web::Data<State>,
    access: Access,
    path: web::Path<String>,
    params: web::Query<GraphParams>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let svg = path.ends_with(".svg");
    let suffix = if svg { ".svg" } else { ".png" };
    let entry = state.entry(&access, &path, suffix).await?;
    let (key, mut request) = graph_request(&state, &entry, &params)?;
    request.svg = svg;
    let key = format!("{key}|{suffix}");
    let _slot = state.render_slot()?;
    state.flush(&entry.path).await;
    let image = draw_unless_cached(&state, key, request).await?;
    Ok(respond(&req, image))
}

/// How a DS is drawn: a meter's counter as its flow (W, kW, m³/h), the
/// rest as stored.
pub(super) fn line_of(d: &IndexDs, legend: String, style: LineStyle) -> GraphLine {
    let meter = d.meter();
    let (scale, unit, legend) = match meter.and_then(|m| Some((m, m.drawn()?))) {
        Some((m, (scale, unit))) => (
            Some(scale),
            Some(unit.to_owned()),
            format!("{legend}, as {}", m.flow_word()),
        ),
        None => (None, d.unit.clone(), legend),
    };
    GraphLine {
        ds: d.name.clone(),
        legend,
        unit,
        style,
        binary: d.about.binary,
        scale,
    }
}

/// The title of a file's graph: what its DS are called (a single DS's
/// label or name within its device), or the device's name and the file's.
pub(super) fn title_of(entry: &IndexEntry) -> String {
    match entry.ds.as_slice() {
        [one] => {
            let name = super::tree::series_name(&one.series, one.label.as_deref());
            match one.label {
                Some(_) => name,
                None => format!("{} · {name}", super::tree::device_name(entry)),
            }
        }
        _ => format!(
            "{} · {}",
            super::tree::device_name(entry),
            entry.path.rsplit('/').next().unwrap_or(&entry.path)
        ),
    }
}

/// The request for librrd, and the key its image is cached under (what
/// the image depends on besides the file's contents).
fn graph_request(
    state: &State,
    entry: &IndexEntry,
    params: &GraphParams,
) -> Result<(String, GraphRequest), WebError> {
    let mut range = params
        .range
        .resolve(state.now_s(), entry.step_secs.into())?;
    if params.range.is_relative() {
        range = range.from(entry.since);
    }
    let (width, height) = graph_size(params)?;
    let picked = select_ds(entry, params.ds.as_deref())?;
    let lines: Vec<GraphLine> = picked
        .iter()
        .map(|&i| {
            let d = &entry.ds[i];
            line_of(
                d,
                super::tree::series_name(&d.series, d.label.as_deref()),
                LineStyle::default(),
            )
        })
        .collect();
    let compact = params.legend == Some(false);
    let ds_list: Vec<&str> = lines.iter().map(|l| l.ds.as_str()).collect();
    let marks = state.marks(&[&entry.path], range.start_s, range.end_s);
    // The image shows the events too: a new one draws it again.
    let marks_seen = marks.last().map_or(0, |m| m.time_s);
    let key = format!(
        "{}|{}|{}|{width}|{height}|{compact}|{}|{}:{marks_seen}",
        entry.path,
        range.start_s,
        range.end_s,
        ds_list.join(","),
        marks.len()
    );
    let request = GraphRequest {
        rel_path: entry.path.clone(),
        title: title_of(entry),
        lines,
        start_s: range.start_s,
        end_s: range.end_s,
        width,
        height,
        step_s: Some(entry.step_secs),
        unless_last_update: None,
        thresholds: Vec::new(),
        compact,
        marks,
        svg: false,
        // A file quiet since before the range, or younger than its end.
        empty: entry.last_update.is_some_and(|t| t <= range.start_s)
            || entry.since.is_some_and(|s| s >= range.end_s),
    };
    Ok((key, request))
}

/// The image for `key`: the cached one if the file has not changed since it
/// was drawn (librrd is asked, with the last update it was drawn at, and
/// answers `Unchanged` without drawing), else a new one, cached.
pub(super) async fn draw_unless_cached(
    state: &State,
    key: String,
    mut request: GraphRequest,
) -> Result<CachedPng, WebError> {
    let cached = state
        .pngs
        .lock()
        .ok()
        .and_then(|mut cache| cache.get(&key).cloned());
    request.unless_last_update = cached.as_ref().map(|c| c.last_update);
    match state.rrd.graph(request).await? {
        // Only answered to a request that carried a cached image's time.
        GraphReply::Unchanged => cached.ok_or(WebError::Stopping),
        GraphReply::Image {
            bytes,
            last_update,
            axis_end,
        } => {
            let image = CachedPng {
                last_update,
                etag: format!(
                    "\"{:016x}\"",
                    fnv1a(format!("{key}|{last_update}").as_bytes())
                ),
                bytes: bytes.into(),
                axis_end,
            };
            if let Ok(mut cache) = state.pngs.lock() {
                cache.put(key, image.clone());
            }
            Ok(image)
        }
    }
}

/// The image with its validators, or 304 when the browser has it already.
pub(super) fn respond(req: &HttpRequest, image: CachedPng) -> HttpResponse {
    let not_modified = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == image.etag));
    let mut response = if not_modified {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    let modified =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(image.last_update.max(0) as u64);
    if let Some(end) = &image.axis_end
        && let Ok(value) = header::HeaderValue::from_str(end)
    {
        response.insert_header(("X-Axis-End", value));
    }
    response
        .insert_header((header::ETAG, image.etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::LAST_MODIFIED, header::HttpDate::from(modified)));
    if not_modified {
        response.finish()
    } else {
        let svg = image.bytes.starts_with(b"<?xml") || image.bytes.starts_with(b"<svg");
        let content_type = if svg { "image/svg+xml" } else { "image/png" };
        response.content_type(content_type).body(image.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(len: usize) -> CachedPng {
        CachedPng {
            last_update: 0,
            etag: String::new(),
            bytes: vec![0; len].into(),
            axis_end: None,
        }
    }

    #[test]
    fn the_image_cache_is_bounded_in_count_and_bytes() {
        let mut cache = PngCache::new();
        for i in 0..200 {
            cache.put(format!("k{i}"), image(10));
        }
        assert_eq!(cache.images.len(), CACHED_IMAGES);
        assert_eq!(cache.bytes, CACHED_IMAGES * 10);
        cache.put("big".into(), image(CACHED_BYTES - 5));
        assert!(cache.bytes <= CACHED_BYTES, "{}", cache.bytes);
        assert!(cache.get("big").is_some(), "the newest image stays");
        cache.put("big".into(), image(100));
        let held: usize = cache.images.iter().map(|(_, i)| i.bytes.len()).sum();
        assert_eq!(cache.bytes, held);
    }
}
