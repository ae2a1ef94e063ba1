//! Query strings → validated requests. Pure: every range, size, DS name and
//! resolution is checked here, so nothing from a request reaches librrd
//! except numbers and names the index already holds.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::model::Cf;
use crate::rrd::index::IndexEntry;

/// The oldest and newest times a request may name: before 1990 or after
/// 2100 is a typo or an attack, never data.
const EARLIEST_S: i64 = 631_152_000;
const LATEST_S: i64 = 4_102_444_800;
/// The shortest range worth a graph, and the longest librrd keeps by default.
const MIN_SPAN_S: i64 = 60;
const MAX_SPAN_S: i64 = 20 * 366 * 86_400;

pub const GRAPH_WIDTH: (u32, u32) = (200, 2000);
pub const GRAPH_HEIGHT: (u32, u32) = (80, 1000);
pub const MAX_POINTS: u32 = 10_000;
const MAX_DS: usize = 64;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct QueryError {
    pub key: &'static str,
    pub message: String,
}

fn bad(key: &'static str, message: impl Into<String>) -> QueryError {
    QueryError {
        key,
        message: message.into(),
    }
}

/// The named ranges: Munin's four, and the last hours (the first minutes
/// of a series, what just happened).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Hour,
    SixHours,
    Day,
    Week,
    Month,
    Year,
}

impl Preset {
    pub const ALL: [Preset; 6] = [
        Preset::Hour,
        Preset::SixHours,
        Preset::Day,
        Preset::Week,
        Preset::Month,
        Preset::Year,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Hour => "hour",
            Preset::SixHours => "6h",
            Preset::Day => "day",
            Preset::Week => "week",
            Preset::Month => "month",
            Preset::Year => "year",
        }
    }

    /// "last hour", "last 6 hours"…
    pub fn title(self) -> &'static str {
        match self {
            Preset::Hour => "last hour",
            Preset::SixHours => "last 6 hours",
            Preset::Day => "last day",
            Preset::Week => "last week",
            Preset::Month => "last month",
            Preset::Year => "last year",
        }
    }

    pub fn secs(self) -> i64 {
        match self {
            Preset::Hour => 3600,
            Preset::SixHours => 6 * 3600,
            Preset::Day => 86_400,
            Preset::Week => 7 * 86_400,
            Preset::Month => 31 * 86_400,
            Preset::Year => 366 * 86_400,
        }
    }

    pub fn parse(s: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// The range parameters every graph and export takes: `range=day|week|
/// month|year`, or `start` and `end` as Unix seconds, RFC 3339, or
/// `YYYY-MM-DDTHH:MM[:SS]` in UTC (an HTML datetime-local field); `end`
/// may be `now`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct RangeParams {
    pub range: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_s: i64,
    pub end_s: i64,
}

impl TimeRange {
    /// The range cut to start no earlier than `since` (where a young file's
    /// data starts), so that its first minutes fill the graph instead of a
    /// speck at its right end; at least a minute long.
    pub fn from(self, since: Option<i64>) -> TimeRange {
        match since {
            Some(since) if since > self.start_s => TimeRange {
                start_s: since.min(self.end_s - MIN_SPAN_S),
                end_s: self.end_s,
            },
            _ => self,
        }
    }
}

impl RangeParams {
    /// A range relative to now (a preset, or none given): one a young
    /// file's graph may zoom to its data in.
    pub fn is_relative(&self) -> bool {
        self.start.as_deref().is_none_or(str::is_empty)
    }

    /// The range asked for; a day to `now` by default. `align` rounds a
    /// range ending now down to that many seconds, so that repeated loads
    /// within one step draw the same image (and hit the cache).
    pub fn resolve(&self, now_s: i64, align: i64) -> Result<TimeRange, QueryError> {
        let end_s = match self.end.as_deref() {
            None | Some("" | "now") => now_s - now_s.rem_euclid(align.max(1)),
            Some(s) => parse_time(s).ok_or_else(|| bad("end", format!("{s:?} is not a time")))?,
        };
        let start_s = match (self.range.as_deref(), self.start.as_deref()) {
            (Some(_), Some(_)) => return Err(bad("range", "give range or start, not both")),
            (Some(r), None) => {
                let preset = Preset::parse(r).ok_or_else(|| {
                    bad(
                        "range",
                        format!("{r:?}: use hour, 6h, day, week, month or year"),
                    )
                })?;
                end_s.saturating_sub(preset.secs())
            }
            (None, Some(s)) if !s.is_empty() => {
                parse_time(s).ok_or_else(|| bad("start", format!("{s:?} is not a time")))?
            }
            (None, _) => end_s.saturating_sub(Preset::Day.secs()),
        };
        for (key, t) in [("end", end_s), ("start", start_s)] {
            if !(EARLIEST_S..=LATEST_S).contains(&t) {
                return Err(bad(key, "must be between 1990 and 2100"));
            }
        }
        let span = end_s - start_s;
        if span < MIN_SPAN_S {
            return Err(bad("start", "must be at least a minute before end"));
        }
        if span > MAX_SPAN_S {
            return Err(bad("start", "the range must not exceed 20 years"));
        }
        Ok(TimeRange { start_s, end_s })
    }
}

/// Unix seconds, RFC 3339 (with its offset), or a date and time without a
/// zone (an HTML datetime-local field: in the web UI's time zone).
pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = s.parse::<i64>() {
        return Some(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    crate::clock::local::parse_form(s)
}

/// Unix seconds as `2026-11-23T12:00:00Z`.
pub fn utc_text(t_s: i64) -> String {
    DateTime::<Utc>::from_timestamp(t_s, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// `ds=a,b`: DS of the file to show, all of them when absent. Unknown or
/// repeated names are refused.
pub fn select_ds(entry: &IndexEntry, ds: Option<&str>) -> Result<Vec<usize>, QueryError> {
    let Some(list) = ds.filter(|s| !s.is_empty()) else {
        return Ok((0..entry.ds.len()).collect());
    };
    let mut picked = Vec::new();
    for name in list.split(',') {
        let i = entry
            .ds
            .iter()
            .position(|d| d.name == name)
            .ok_or_else(|| bad("ds", format!("{name:?} is not a DS of this file")))?;
        if picked.contains(&i) {
            return Err(bad("ds", format!("{name:?} is named twice")));
        }
        picked.push(i);
        if picked.len() > MAX_DS {
            return Err(bad("ds", "too many DS"));
        }
    }
    Ok(picked)
}

#[derive(Debug, Default, Deserialize)]
pub struct GraphParams {
    #[serde(flatten)]
    pub range: RangeParams,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub ds: Option<String>,
    /// `legend=false`: no title and no legend (small graphs).
    pub legend: Option<bool>,
}

pub fn graph_size(p: &GraphParams) -> Result<(u32, u32), QueryError> {
    let width = p.width.unwrap_or(700);
    let height = p.height.unwrap_or(200);
    if !(GRAPH_WIDTH.0..=GRAPH_WIDTH.1).contains(&width) {
        return Err(bad(
            "width",
            format!("must be {}..={}", GRAPH_WIDTH.0, GRAPH_WIDTH.1),
        ));
    }
    if !(GRAPH_HEIGHT.0..=GRAPH_HEIGHT.1).contains(&height) {
        return Err(bad(
            "height",
            format!("must be {}..={}", GRAPH_HEIGHT.0, GRAPH_HEIGHT.1),
        ));
    }
    Ok((width, height))
}

#[derive(Debug, Default, Deserialize)]
pub struct ExportParams {
    #[serde(flatten)]
    pub range: RangeParams,
    /// At most this many rows (librrd consolidates): the chart's width.
    pub points: Option<u32>,
    /// Seconds per row wanted; librrd picks the nearest archive.
    pub step: Option<u32>,
    pub cf: Option<String>,
    pub ds: Option<String>,
}

pub struct Resolution {
    pub max_rows: u32,
    pub step_s: Option<u32>,
    pub cf: Cf,
}

pub fn resolution(p: &ExportParams) -> Result<Resolution, QueryError> {
    let max_rows = p.points.unwrap_or(800);
    if !(2..=MAX_POINTS).contains(&max_rows) {
        return Err(bad("points", format!("must be 2..={MAX_POINTS}")));
    }
    if p.step == Some(0) {
        return Err(bad("step", "must be at least 1"));
    }
    let cf = match p.cf.as_deref().unwrap_or("AVERAGE") {
        "AVERAGE" => Cf::Average,
        "MIN" => Cf::Min,
        "MAX" => Cf::Max,
        "LAST" => Cf::Last,
        other => {
            return Err(bad(
                "cf",
                format!("{other:?}: use AVERAGE, MIN, MAX or LAST"),
            ));
        }
    };
    Ok(Resolution {
        max_rows,
        step_s: p.step,
        cf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_763_900_000;

    fn range(range: Option<&str>, start: Option<&str>, end: Option<&str>) -> RangeParams {
        RangeParams {
            range: range.map(Into::into),
            start: start.map(Into::into),
            end: end.map(Into::into),
        }
    }

    #[test]
    fn presets_and_times_in_every_accepted_form() {
        let aligned = NOW - NOW % 60;
        assert_eq!(
            range(None, None, None).resolve(NOW, 60),
            Ok(TimeRange {
                start_s: aligned - 86_400,
                end_s: aligned
            })
        );
        assert_eq!(
            range(Some("week"), None, Some("now"))
                .resolve(NOW, 1)
                .unwrap()
                .start_s,
            NOW - 7 * 86_400
        );
        let t = range(None, Some("2026-11-01T00:00"), Some("2026-11-02T00:00:00Z"))
            .resolve(NOW, 1)
            .unwrap();
        assert_eq!((t.start_s, t.end_s), (1_793_491_200, 1_793_577_600));
        let t = range(None, Some("1761955200"), Some("1762041600")).resolve(NOW, 1);
        assert_eq!(t.unwrap().end_s, 1_762_041_600);
    }

    #[test]
    fn absurd_ranges_are_refused_with_their_key() {
        let err = |r: RangeParams| r.resolve(NOW, 60).unwrap_err().key;
        assert_eq!(err(range(Some("decade"), None, None)), "range");
        assert_eq!(err(range(Some("day"), Some("1"), None)), "range");
        assert_eq!(err(range(None, Some("yesterday"), None)), "start");
        assert_eq!(err(range(None, Some("-99999999999999"), None)), "start");
        assert_eq!(err(range(None, None, Some("99999999999"))), "end");
        assert_eq!(
            err(range(None, Some("1762041600"), Some("1762041600"))),
            "start"
        );
        assert_eq!(
            err(range(None, Some("700000000"), Some("1762041600"))),
            "start"
        );
        assert_eq!(err(range(None, None, Some("9223372036854775807"))), "end");
        assert_eq!(
            err(range(Some("year"), None, Some("-9223372036854775808"))),
            "end"
        );
    }

    #[test]
    fn sizes_points_and_cf_are_bounded() {
        let size = |w, h| {
            graph_size(&GraphParams {
                width: w,
                height: h,
                ..GraphParams::default()
            })
        };
        assert_eq!(size(None, None), Ok((700, 200)));
        assert_eq!(size(Some(100_000), None).unwrap_err().key, "width");
        assert_eq!(size(None, Some(0)).unwrap_err().key, "height");
        let res = |points, cf: Option<&str>| {
            resolution(&ExportParams {
                points,
                cf: cf.map(Into::into),
                ..ExportParams::default()
            })
        };
        assert_eq!(res(None, None).unwrap().max_rows, 800);
        assert_eq!(res(Some(1_000_000), None).err().unwrap().key, "points");
        assert_eq!(res(None, Some("SUM")).err().unwrap().key, "cf");
        assert_eq!(res(None, Some("MAX")).unwrap().cf, Cf::Max);
    }

    #[test]
    fn ds_must_belong_to_the_file() {
        let entry: IndexEntry = serde_json::from_str(
            r#"{"path":"p","template":"t","step_secs":60,"last_update":null,
                "ds":[{"name":"a","series":"s/a"},{"name":"b","series":"s/b"}]}"#,
        )
        .unwrap();
        assert_eq!(select_ds(&entry, None), Ok(vec![0, 1]));
        assert_eq!(select_ds(&entry, Some("b")), Ok(vec![1]));
        assert_eq!(select_ds(&entry, Some("c")).unwrap_err().key, "ds");
        assert_eq!(select_ds(&entry, Some("a,a")).unwrap_err().key, "ds");
        assert_eq!(select_ds(&entry, Some("a/../../x")).unwrap_err().key, "ds");
    }
}
