//! How a view becomes a graph: its series looked up in the index, drawn
//! by librrd as one PNG (its files' cached rows written first, the result
//! cached like a file's graph), its thresholds as rules, and the same
//! series for the interactive chart.

use actix_web::{HttpRequest, HttpResponse};

use super::resolve;
use crate::config::View;
use crate::rrd::index::IndexEntry;
use crate::rrd::read::{GraphLine, GraphRequest, LineStyle, Threshold};
use crate::web::query::{GraphParams, graph_size};
use crate::web::{State, WebError, pages::url_escape};

const WARNING: (u8, u8, u8) = (0xe6, 0x9f, 0x00);
const CRITICAL: (u8, u8, u8) = (0xd6, 0x27, 0x28);

/// One series of an interactive chart: where its data is, and how it looks.
#[derive(serde::Serialize)]
struct ChartSeries {
    url: String,
    /// Its file, for the events about it.
    path: String,
    label: String,
    color: Option<String>,
    /// An on/off state, and its words for on and off.
    #[serde(skip_serializing_if = "Option::is_none")]
    states: Option<[&'static str; 2]>,
}

/// The series of a view, for `static/dashboard.js`; empty when none has a
/// file yet (no chart then, only the list of missing series).
pub(super) fn chart_series(series: &[Drawn<'_>]) -> String {
    if series.is_empty() {
        return String::new();
    }
    let all: Vec<ChartSeries> = series
        .iter()
        .map(|s| {
            let d = &s.entry.ds[s.ds];
            ChartSeries {
                path: s.entry.path.clone(),
                url: format!(
                    "/rrd/data/{}.json?ds={}&cf={}",
                    url_escape(&s.entry.path),
                    url_escape(&d.name),
                    s.style.cf.unwrap_or(crate::model::Cf::Average).as_rrd_str()
                ),
                label: s.label.clone().unwrap_or_else(|| {
                    crate::web::tree::series_name(&d.series, d.label.as_deref())
                }),
                color: s
                    .style
                    .color
                    .map(|(r, g, b)| format!("#{r:02x}{g:02x}{b:02x}")),
                states: d.about.states(),
            }
        })
        .collect();
    serde_json::to_string(&all).unwrap_or_default()
}

/// The series of a configured view that have a file, as drawn.
pub(super) fn drawn<'i>(view: &View, index: &'i [IndexEntry]) -> Vec<Drawn<'i>> {
    resolve(view, index)
        .into_iter()
        .zip(&view.series)
        .filter_map(|(found, s)| {
            let (entry, ds) = found?;
            Some(Drawn {
                entry,
                ds,
                label: s.label.clone(),
                style: LineStyle {
                    file: Some(entry.path.clone()),
                    color: s.color,
                    draw: s.draw,
                    cf: Some(s.cf),
                },
            })
        })
        .collect()
}

/// One series of a chart: its file, DS and how it is drawn.
#[derive(Clone)]
pub(super) struct Drawn<'i> {
    entry: &'i IndexEntry,
    ds: usize,
    label: Option<String>,
    style: LineStyle,
}

impl<'i> Drawn<'i> {
    /// DS `ds` of `entry`, drawn as its source's chart says (a Munin
    /// plugin's draw style and colour), or with the defaults.
    pub(super) fn as_charted(entry: &'i IndexEntry, ds: usize) -> Self {
        let mut drawn = Drawn::plain(entry, ds);
        if let Some(chart) = &entry.ds[ds].about.chart {
            drawn.style.draw = chart.draw;
            drawn.style.color = chart.colour;
        }
        drawn
    }

    /// The chart hint of its series, if its source gave one.
    pub(super) fn chart(&self) -> Option<&crate::model::Chart> {
        self.entry.ds[self.ds].about.chart.as_deref()
    }

    /// DS `ds` of `entry`, drawn with the defaults.
    pub(super) fn plain(entry: &'i IndexEntry, ds: usize) -> Self {
        Drawn {
            entry,
            ds,
            label: None,
            style: LineStyle {
                file: Some(entry.path.clone()),
                ..LineStyle::default()
            },
        }
    }
}

/// One chart of series from several files, its files' cached rows written
/// first.
pub(super) async fn draw(
    state: &State,
    req: &HttpRequest,
    title: &str,
    series: &[Drawn<'_>],
    params: &GraphParams,
    thresholds: Vec<Threshold>,
) -> Result<HttpResponse, WebError> {
    let Some(first) = series.first() else {
        return Err(WebError::NotFound(format!(
            "no series of {title:?} has a file yet"
        )));
    };
    let step = series.iter().map(|s| s.entry.step_secs).min().unwrap_or(60);
    let range = params.range.resolve(state.now_s(), step.into())?;
    let (width, height) = graph_size(params)?;
    let _slot = state.render_slot()?;
    for s in series {
        state.flush(&s.entry.path).await;
    }
    let paths: Vec<&str> = series.iter().map(|s| s.entry.path.as_str()).collect();
    let marks = state.marks(&paths, range.start_s, range.end_s);
    let lines: Vec<GraphLine> = series
        .iter()
        .map(|s| {
            let d = &s.entry.ds[s.ds];
            let legend = s
                .label
                .clone()
                .unwrap_or_else(|| crate::web::tree::series_name(&d.series, d.label.as_deref()));
            crate::web::graph::line_of(d, legend, s.style.clone())
        })
        .collect();
    let request = GraphRequest {
        rel_path: first.entry.path.clone(),
        title: title.to_owned(),
        lines,
        start_s: range.start_s,
        end_s: range.end_s,
        width,
        height,
        step_s: Some(step),
        unless_last_update: None,
        thresholds,
        compact: false,
        marks,
        svg: false,
        empty: false,
    };
    // Cached like a file's graph: drawn again only when one of its files,
    // its events or its thresholds' legends (crossed or not) changed.
    let key = format!(
        "view|{:016x}",
        crate::model::path::fnv1a(format!("{request:?}").as_bytes())
    );
    let image = crate::web::graph::draw_unless_cached(state, key, request).await?;
    Ok(crate::web::graph::respond(req, image))
}

/// The view's thresholds as rules; a legend names the series whose last
/// value crosses one.
pub(super) async fn thresholds(
    state: &State,
    (warning, critical): (Option<f64>, Option<f64>),
    series: &[Drawn<'_>],
) -> Vec<Threshold> {
    let names: Vec<String> = series
        .iter()
        .map(|s| s.entry.ds[s.ds].series.clone())
        .collect();
    let latest = state.cache.latest(names.clone()).await.unwrap_or_default();
    // The cache's newest sample, else what the file holds last.
    let values: Vec<Option<f64>> = series
        .iter()
        .zip(latest.into_iter().chain(std::iter::repeat(None)))
        .map(|(s, l)| l.map(|(v, _)| v).or(s.entry.ds[s.ds].last_value))
        .collect();
    let crossing = |limit: f64| -> Vec<String> {
        names
            .iter()
            .zip(&values)
            .filter_map(|(n, v)| v.filter(|v| *v >= limit).map(|v| format!("{n} {v}")))
            .collect()
    };
    [
        ("warning", warning, WARNING),
        ("critical", critical, CRITICAL),
    ]
    .into_iter()
    .filter_map(|(what, value, color)| {
        let value = value?;
        let over = crossing(value);
        let legend = if over.is_empty() {
            format!("{what} {value}")
        } else {
            format!("{what} {value}: CROSSED by {}", over.join(", "))
        };
        Some(Threshold {
            value,
            color,
            legend,
        })
    })
    .collect()
}
