//! What the web UI asks of the RRD thread: graphs, exports and file copies.
//!
//! Requests arrive already validated (ranges, sizes, DS names checked by
//! `web::query` against the index); this module turns them into librrd's
//! typed graph elements (`graph.rs`) or `xport` arguments, built from
//! numbers and index names only, never from request text. Building is pure
//! and tested here; the RRD thread runs the calls.

mod bars;
mod graph;

use std::path::Path;

use rrd::ops::graph::props::ImageFormat;

use crate::model::Cf;

pub use self::bars::{BarsRequest, bars_elements};
pub use self::graph::{PALETTE, graph_elements};

/// One DS to draw, with the text its legend shows.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphLine {
    pub ds: String,
    pub legend: String,
    pub unit: Option<String>,
    pub style: LineStyle,
    /// An on/off state: drawn as a band, its legend the share of time on.
    pub binary: bool,
    /// Drawn multiplied by this (a meter's rate per second as a flow per
    /// hour: `energy::Meter::drawn`), `unit` being the product's.
    pub scale: Option<f64>,
}

/// Where a line comes from and how it is drawn, beyond one file's
/// averaged lines (dashboards' views).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineStyle {
    /// Another file of the index than the request's (its path, from the
    /// index: never request text).
    pub file: Option<String>,
    pub color: Option<(u8, u8, u8)>,
    pub draw: crate::model::Draw,
    /// `AVERAGE` unless said.
    pub cf: Option<Cf>,
}

/// A horizontal rule: a view's warning or critical threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub value: f64,
    pub color: (u8, u8, u8),
    pub legend: String,
}

/// A PNG graph of one file.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphRequest {
    pub rel_path: String,
    pub title: String,
    pub lines: Vec<GraphLine>,
    pub start_s: i64,
    pub end_s: i64,
    /// Size of the plotting area in pixels (librrd adds axes and legend).
    pub width: u32,
    pub height: u32,
    /// The file's step: librrd reads the finest archive that covers the
    /// range and averages what is known per pixel. Left to itself it reads
    /// the archive nearest to one row per pixel, where a lone value among
    /// unknowns is consolidated away (xff) and the graph stays empty.
    pub step_s: Option<u32>,
    /// Do not draw when the file's last update is still this one: the
    /// caller holds that image already.
    pub unless_last_update: Option<i64>,
    /// Drawn as horizontal rules, with their legend.
    pub thresholds: Vec<Threshold>,
    /// No title and no legend: the overview's small graphs.
    pub compact: bool,
    /// Events in the range, drawn as vertical rules.
    pub marks: Vec<Mark>,
    /// SVG instead of PNG: lines a phone can scale.
    pub svg: bool,
    /// The file holds no value in the range: the legend says so in words
    /// (librrd would print "-nan" for every figure).
    pub empty: bool,
}

/// An event on a graph: a vertical rule at its time, its text in the legend.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub time_s: i64,
    pub text: String,
}

#[derive(Debug)]
pub enum GraphReply {
    /// The file did not change since `unless_last_update`.
    Unchanged,
    /// The image (PNG, or SVG when asked).
    Image {
        bytes: Vec<u8>,
        last_update: i64,
        /// The time at the right end of its axis, as librrd wrote it there
        /// (local time, `YYYY-MM-DD HH:MM`).
        axis_end: Option<String>,
    },
}

/// Rows of some DS of one file, consolidated by librrd to at most
/// `max_rows` rows (the chart's width), so that a year stays light.
#[derive(Debug, Clone, PartialEq)]
pub struct XportRequest {
    pub rel_path: String,
    pub ds: Vec<String>,
    /// Per DS, what its values are multiplied by (as [`GraphLine::scale`]).
    pub scales: Vec<Option<f64>>,
    pub cf: Cf,
    pub start_s: i64,
    pub end_s: i64,
    pub max_rows: u32,
    /// Wanted seconds per row; librrd picks the nearest archive.
    pub step_s: Option<u32>,
}

/// `xport`'s answer. Row `i` is at `start_s + (i + 1) * step_s` (librrd's
/// time stamps mark the end of each interval); `None` is unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct Xport {
    pub start_s: i64,
    pub end_s: i64,
    pub step_s: i64,
    pub columns: Vec<String>,
    pub rows: Vec<(i64, Vec<Option<f64>>)>,
}

/// A meter's archives for the consumption views: every AVERAGE archive's
/// rows over the range, finest first, each where no finer one reaches.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchivesRequest {
    pub rel_path: String,
    pub ds: String,
    pub start_s: i64,
    pub end_s: i64,
}

/// What [`ArchivesRequest`] gets back.
#[derive(Debug, Clone, PartialEq)]
pub struct MeterArchives {
    /// The DS's type in the file (a counter, or a gauge of readings).
    pub ds_type: crate::model::DsType,
    pub last_update: i64,
    /// Each AVERAGE archive's step and rows, finest first (for what the
    /// file lacks).
    pub layout: Vec<(i64, i64)>,
    pub archives: Vec<crate::energy::Archive>,
}

/// Why a read of a file failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("librrd cannot read {path}: {reason}")]
    Librrd { path: String, reason: String },
    #[error("the RRD thread has stopped")]
    Stopped,
}

pub const IMAGE_FORMAT: ImageFormat = ImageFormat::Png;

/// `xport`'s arguments: only numbers, the file's path and DS names from
/// the index.
pub fn xport_args(req: &XportRequest, file: &Path) -> Vec<String> {
    let mut args = vec![
        "xport".to_owned(),
        "--start".to_owned(),
        req.start_s.to_string(),
        "--end".to_owned(),
        req.end_s.to_string(),
        "--maxrows".to_owned(),
        req.max_rows.to_string(),
    ];
    if let Some(step) = req.step_s {
        args.push("--step".to_owned());
        args.push(step.to_string());
    }
    let path = file.to_string_lossy();
    for (i, ds) in req.ds.iter().enumerate() {
        let cf = req.cf.as_rrd_str();
        match req.scales.get(i).copied().flatten() {
            Some(scale) => {
                args.push(format!("DEF:r{i}={path}:{ds}:{cf}"));
                args.push(format!("CDEF:v{i}=r{i},{scale},*"));
            }
            None => args.push(format!("DEF:v{i}={path}:{ds}:{cf}")),
        }
    }
    for (i, ds) in req.ds.iter().enumerate() {
        args.push(format!("XPORT:v{i}:{ds}"));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xport_arguments_are_numbers_paths_and_ds_names() {
        let req = XportRequest {
            rel_path: "a/b".into(),
            ds: vec!["value".into(), "other".into()],
            scales: vec![None, Some(3600.0)],
            cf: Cf::Max,
            start_s: 10,
            end_s: 20,
            max_rows: 800,
            step_s: Some(300),
        };
        assert_eq!(
            xport_args(&req, Path::new("/d/a/b.rrd")),
            [
                "xport",
                "--start",
                "10",
                "--end",
                "20",
                "--maxrows",
                "800",
                "--step",
                "300",
                "DEF:v0=/d/a/b.rrd:value:MAX",
                "DEF:r1=/d/a/b.rrd:other:MAX",
                "CDEF:v1=r1,3600,*",
                "XPORT:v0:value",
                "XPORT:v1:other",
            ]
        );
    }
}
