//! Exports: the index (janitoo's `index.txt`, and `index.json`), a file's
//! rows as JSON (the chart's data) or CSV for any range and resolution, and
//! the raw `.rrd` file.
//!
//! Rows come from librrd's `xport`, consolidated to at most `points` rows,
//! so a year of one-minute data stays a few kilobytes at a chart's width.

use std::fmt::Write;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use super::access::Access;
use super::query::{ExportParams, resolution, select_ds, utc_text};
use super::{State, WebError};
use crate::rrd::IndexView;
use crate::rrd::index::{COMPACT_OPENING, IndexDocument};
use crate::rrd::read::{Xport, XportRequest};

pub(crate) async fn index_txt(state: web::Data<State>, access: Access) -> HttpResponse {
    let index = state.index(&access);
    let text = index
        .iter()
        .map(|e| e.path.as_str())
        .collect::<Vec<_>>()
        .join("|");
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(text)
}

/// `index.json` as the user may see it, the same document as the file,
/// sent a few hundred files at a time (100,000 files are 21 MB). An
/// HTTP/1.0 client cannot take chunks (actix-http would send them all the
/// same): it gets the document whole.
pub(crate) async fn index_json(
    request: actix_web::HttpRequest,
    state: web::Data<State>,
    access: Access,
) -> HttpResponse {
    let index = state.index(&access);
    if request.version() < actix_web::http::Version::HTTP_11 {
        return HttpResponse::Ok().json(IndexDocument::new(index.iter()));
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(IndexBody::new(index))
}

/// The JSON of an index, made chunk by chunk as the connection takes it.
struct IndexBody {
    index: IndexView,
    /// The next file to send; `None` once the closing bracket is sent.
    next: Option<usize>,
}

impl IndexBody {
    /// Files per chunk (about 200 bytes each).
    const CHUNK: usize = 256;

    fn new(index: IndexView) -> IndexBody {
        IndexBody {
            index,
            next: Some(0),
        }
    }
}

impl actix_web::body::MessageBody for IndexBody {
    type Error = serde_json::Error;

    fn size(&self) -> actix_web::body::BodySize {
        actix_web::body::BodySize::Stream
    }

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<bytes::Bytes, Self::Error>>> {
        let Some(from) = self.next else {
            return std::task::Poll::Ready(None);
        };
        let to = (from + Self::CHUNK).min(self.index.len());
        let mut chunk = Vec::with_capacity(Self::CHUNK * 256);
        if from == 0 {
            chunk.extend_from_slice(COMPACT_OPENING);
        }
        for (i, entry) in self.index[from..to].iter().enumerate() {
            if from + i > 0 {
                chunk.push(b',');
            }
            if let Err(e) = serde_json::to_writer(&mut chunk, entry) {
                return std::task::Poll::Ready(Some(Err(e)));
            }
        }
        if to == self.index.len() {
            chunk.extend_from_slice(b"]}");
            self.next = None;
        } else {
            self.next = Some(to);
        }
        std::task::Poll::Ready(Some(Ok(chunk.into())))
    }
}

/// A meter's counter is exported as its flow (W, kW, m³/h), as it is
/// drawn.
fn drawn(d: &crate::rrd::index::IndexDs) -> Option<(f64, &'static str)> {
    d.meter().and_then(|m| m.drawn())
}

#[derive(Serialize)]
struct Column<'a> {
    ds: &'a str,
    series: &'a str,
    label: Option<&'a str>,
    unit: Option<&'a str>,
    /// What people call it (its label, or its name within its device).
    name: String,
    /// An on/off state: 1 on, 0 off; `states` says them in words.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    binary: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    states: Option<[&'static str; 2]>,
}

#[derive(Serialize)]
struct DataJson<'a> {
    file: &'a str,
    start: i64,
    end: i64,
    step: i64,
    cf: &'a str,
    /// Values are consolidated over each step (librrd's CF): say so.
    note: &'static str,
    /// The zone people read these times in (`web.time_zone`); the times
    /// themselves are Unix seconds.
    time_zone: &'a str,
    columns: Vec<Column<'a>>,
    /// `[unix seconds, value or null, …]`, the time ending each step.
    rows: Vec<Vec<Option<f64>>>,
}

/// `GET /rrd/data/<file>.json|.csv|.rrd`
pub(crate) async fn data(
    state: web::Data<State>,
    access: Access,
    path: web::Path<String>,
    params: web::Query<ExportParams>,
) -> Result<HttpResponse, WebError> {
    let (suffix, csv) = if path.ends_with(".json") {
        (".json", false)
    } else if path.ends_with(".csv") {
        (".csv", true)
    } else if path.ends_with(".rrd") {
        return raw(state, &access, &path).await;
    } else {
        return Err(WebError::NotFound(format!(
            "{path:?}: use .json, .csv or .rrd"
        )));
    };
    let entry = state.entry(&access, &path, suffix).await?;
    let mut range = params
        .range
        .resolve(state.now_s(), entry.step_secs.into())?;
    if params.range.is_relative() {
        range = range.from(entry.since);
    }
    let res = resolution(&params)?;
    let picked = select_ds(&entry, params.ds.as_deref())?;
    let request = XportRequest {
        rel_path: entry.path.clone(),
        ds: picked.iter().map(|&i| entry.ds[i].name.clone()).collect(),
        scales: picked
            .iter()
            .map(|&i| drawn(&entry.ds[i]).map(|(scale, _)| scale))
            .collect(),
        cf: res.cf,
        start_s: range.start_s,
        end_s: range.end_s,
        max_rows: res.max_rows,
        step_s: res.step_s,
    };
    let export = {
        let _slot = state.render_slot()?;
        state.flush(&entry.path).await;
        state.rrd.xport(request).await?
    };
    let columns: Vec<Column> = picked
        .iter()
        .map(|&i| {
            let d = &entry.ds[i];
            Column {
                ds: &d.name,
                series: &d.series,
                label: d.label.as_deref(),
                unit: drawn(d).map(|(_, unit)| unit).or(d.unit.as_deref()),
                name: match d.meter().filter(|m| m.drawn().is_some()) {
                    Some(m) => format!(
                        "{}, as {}",
                        super::tree::series_name(&d.series, d.label.as_deref()),
                        m.flow_word()
                    ),
                    None => super::tree::series_name(&d.series, d.label.as_deref()),
                },
                binary: d.about.binary,
                states: d.about.states(),
            }
        })
        .collect();
    if csv {
        return Ok(csv_response(&entry.path, &columns, &export));
    }
    let body = DataJson {
        file: &entry.path,
        start: export.start_s,
        end: export.end_s,
        step: export.step_s,
        cf: res.cf.as_rrd_str(),
        note: "each value is the consolidated value of the step ending at its time",
        time_zone: &state.time_zone,
        columns,
        rows: json_rows(&export),
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-cache"))
        .json(body))
}

/// An export as a CSV download named after its file.
fn csv_response(path: &str, columns: &[Column], export: &Xport) -> HttpResponse {
    let name = path.rsplit('/').next().unwrap_or("export");
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}.csv\""),
        ))
        .body(to_csv(columns, export))
}

/// `[time, value or null, …]` per row.
fn json_rows(export: &Xport) -> Vec<Vec<Option<f64>>> {
    export
        .rows
        .iter()
        .map(|(t, values)| {
            std::iter::once(Some(*t as f64))
                .chain(values.iter().copied())
                .collect()
        })
        .collect()
}

fn to_csv(columns: &[Column], export: &Xport) -> String {
    let mut out = String::with_capacity(32 * (export.rows.len() + 1));
    out.push_str("time_local,time_utc,unix");
    for c in columns {
        out.push(',');
        out.push_str(&csv_field(c.label.unwrap_or(c.series)));
    }
    out.push('\n');
    for (t, values) in &export.rows {
        let _ = write!(
            out,
            "{},{},{t}",
            crate::clock::local::text_with_offset(*t),
            utc_text(*t)
        );
        for v in values {
            out.push(',');
            if let Some(v) = v {
                let _ = write!(out, "{v}");
            }
        }
        out.push('\n');
    }
    out
}

/// A CSV field, quoted when it holds a separator, a quote or a newline; a
/// leading `=`, `+`, `-` or `@` is prefixed with `'` so that a spreadsheet
/// does not run a label as a formula.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

async fn raw(
    state: web::Data<State>,
    access: &Access,
    path: &str,
) -> Result<HttpResponse, WebError> {
    let entry = state.entry(access, path, ".rrd").await?;
    let bytes = {
        let _slot = state.render_slot()?;
        state.flush(&entry.path).await;
        state.rrd.copy(entry.path.clone()).await?
    };
    let name = entry.path.rsplit('/').next().unwrap_or("file");
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}.rrd\""),
        ))
        .body(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rrd::index::IndexEntry;

    /// Sent in chunks, the index reads back as the one document the file
    /// holds, whatever its size against a chunk's.
    #[actix_web::test]
    async fn the_index_sent_in_chunks_is_the_whole_document() {
        for files in [0, 1, IndexBody::CHUNK, IndexBody::CHUNK * 2 + 7] {
            let index: IndexView = std::sync::Arc::new(
                (0..files)
                    .map(|i| IndexEntry {
                        path: format!("home/s{i}"),
                        template: "default".into(),
                        step_secs: 60,
                        last_update: Some(i as i64),
                        ..Default::default()
                    })
                    .collect(),
            );
            let sent = actix_web::body::to_bytes(IndexBody::new(index.clone()))
                .await
                .unwrap();
            let whole = serde_json::to_vec(&IndexDocument::new(index.iter())).unwrap();
            assert_eq!(sent, whole, "{files} files");
        }
    }

    #[test]
    fn csv_has_local_and_utc_times_and_empty_unknowns_and_safe_labels() {
        let columns = [
            Column {
                ds: "a",
                series: "s/a",
                label: Some("=cmd|' /C calc'!A0"),
                unit: None,
                name: String::new(),
                binary: false,
                states: None,
            },
            Column {
                ds: "b",
                series: "s/b",
                label: Some("power, \"W\""),
                unit: Some("W"),
                name: String::new(),
                binary: false,
                states: None,
            },
        ];
        let export = Xport {
            start_s: 0,
            end_s: 120,
            step_s: 60,
            columns: vec!["a".into(), "b".into()],
            rows: vec![(1_763_900_040, vec![Some(1.5), None])],
        };
        let local = crate::clock::local::text_with_offset(1_763_900_040);
        assert_eq!(
            to_csv(&columns, &export),
            format!(
                "time_local,time_utc,unix,'=cmd|' /C calc'!A0,\"power, \"\"W\"\"\"\n\
                 {local},2025-11-23T12:14:00Z,1763900040,1.5,\n"
            )
        );
    }
}
