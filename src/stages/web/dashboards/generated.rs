//! Dashboards nobody wrote: one per device (a view per quantity of its
//! series) and those `[[dashboard_rule]]`s make of the index.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::draw::{Drawn, draw};
use super::{DashboardPage, ViewLink, checked_range, range_choices};
use crate::rrd::index::IndexEntry;
use crate::web::access::Access;
use crate::web::chrome::Chrome;
use crate::web::query::GraphParams;
use crate::web::{State, WebError, pages::url_escape};

/// The most series a generated view draws: each keeps a colour of its own
/// (the palette has eight), and the chart stays legible.
const MAX_VIEW_SERIES: usize = 8;

/// A device's dashboard with no configuration: one view per quantity (a
/// unit and a device class: Voltage 231 V never flattens Current 0.23 A),
/// a series with no unit alone, an on/off state alone; at most
/// `MAX_VIEW_SERIES` to a view.
///
/// Series whose source names their chart (a Munin plugin's graph) are
/// drawn as it does instead: one view per chart, its title, its fields in
/// `graph_order` with their draw styles and colours (and its thresholds,
/// `chart_limits`), as numeter's views made of munin's config.
fn device_views<'i>(index: &'i [IndexEntry], device: &str) -> Vec<(String, Vec<Drawn<'i>>)> {
    let mut by_quantity: BTreeMap<(String, String), Vec<Drawn<'i>>> = Default::default();
    let mut charts: BTreeMap<(String, String), Vec<Drawn<'i>>> = Default::default();
    for e in crate::web::tree::device_files(index, device) {
        for (ds, d) in e.ds.iter().enumerate() {
            if let Some(chart) = &d.about.chart {
                charts
                    .entry((chart.title.clone(), chart.id.clone()))
                    .or_default()
                    .push(Drawn::as_charted(e, ds));
                continue;
            }
            let name = crate::web::tree::series_name(&d.series, d.label.as_deref());
            let title = match &d.unit {
                Some(unit) if !d.about.binary => {
                    quantity_title(d.about.device_class.as_deref(), unit)
                }
                _ => name,
            };
            let alone = d.about.binary || d.unit.is_none();
            let key = (
                title,
                if alone {
                    d.series.clone()
                } else {
                    String::new()
                },
            );
            by_quantity
                .entry(key)
                .or_default()
                .push(Drawn::plain(e, ds));
        }
    }
    let mut views = Vec::new();
    for ((title, _), mut series) in charts {
        series.sort_by_key(|s| s.chart().map_or(0, |c| c.order));
        views.push((title, series));
    }
    for ((title, _), series) in by_quantity {
        let parts = series.len().div_ceil(MAX_VIEW_SERIES);
        for (i, chunk) in series.chunks(MAX_VIEW_SERIES).enumerate() {
            let title = if parts > 1 {
                format!("{title} ({}/{parts})", i + 1)
            } else {
                title.clone()
            };
            views.push((title, chunk.to_vec()));
        }
    }
    views
}

/// "Power (W)", "Temperature (°C)", or the unit alone.
fn quantity_title(device_class: Option<&str>, unit: &str) -> String {
    match device_class {
        Some(class) => format!("{} ({unit})", crate::web::tree::humanised(class)),
        None => unit.to_owned(),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeviceParams {
    device: String,
    range: Option<String>,
    view: Option<usize>,
}

/// `/rrd/device-dashboard?device=…`: the device's automatic dashboard.
pub(crate) async fn device_page(
    state: web::Data<State>,
    access: Access,
    params: web::Query<DeviceParams>,
) -> Result<DashboardPage, WebError> {
    let range = checked_range(params.range.clone(), "day")?;
    let index = state.index(&access);
    let views = device_views(&index, &params.device);
    if views.is_empty() {
        return Err(WebError::NotFound(format!("device {:?}", params.device)));
    }
    let device = url_escape(&params.device);
    let files = crate::web::tree::device_files(&index, &params.device);
    let title = format!("Charts of {}", crate::web::tree::device_title(&files));
    let title = title.as_str();
    let mut page = page(
        Chrome::of(&state, &access),
        state.dygraphs.is_some(),
        title,
        &views,
        range,
        &format!("/rrd/device-dashboard?device={device}&range="),
        |i, range| format!("/rrd/device-dashboard/view.png?device={device}&view={i}&range={range}"),
    );
    page.device_link = Some(format!("/rrd?device={device}"));
    Ok(page)
}

/// A dashboard page of generated views, `png_of(view, range)` each view's
/// image, `range_link` the page for another range but for its name.
fn page(
    chrome: Chrome,
    dygraphs: bool,
    title: &str,
    views: &[(String, Vec<Drawn<'_>>)],
    range: String,
    range_link: &str,
    png_of: impl Fn(usize, &str) -> String,
) -> DashboardPage {
    DashboardPage {
        chrome,
        device_link: None,
        dygraphs,
        edit_link: None,
        title: title.to_owned(),
        ranges: range_choices(&range),
        range_link: range_link.to_owned(),
        views: views
            .iter()
            .enumerate()
            .map(|(i, (title, series))| ViewLink::generated(title, png_of(i, &range), series))
            .collect(),
        range,
    }
}

/// One view of a device's automatic dashboard, as a PNG.
pub(crate) async fn device_view_png(
    state: web::Data<State>,
    access: Access,
    which: web::Query<DeviceParams>,
    params: web::Query<GraphParams>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let index = state.index(&access);
    let views = device_views(&index, &which.device);
    let (title, series) = which
        .view
        .and_then(|i| views.get(i))
        .ok_or_else(|| WebError::NotFound(format!("view of device {:?}", which.device)))?;
    let limits = chart_limits(series);
    let thresholds = super::draw::thresholds(&state, limits, series).await;
    draw(&state, &req, title, series, &params, thresholds).await
}

/// A chart's warning and critical lines: its fields' (Munin sets them
/// per field; a view has one of each, the lowest of its fields').
fn chart_limits(series: &[Drawn<'_>]) -> (Option<f64>, Option<f64>) {
    let lowest = |pick: fn(&crate::model::Chart) -> Option<f64>| {
        series
            .iter()
            .filter_map(|s| s.chart().and_then(pick))
            .min_by(f64::total_cmp)
    };
    (lowest(|c| c.warning), lowest(|c| c.critical))
}

/// The views of every dashboard `[[dashboard_rule]]`s make of the index,
/// by name (`<rule>:<captured level>`): each a title and its views.
type Generated<'i> = BTreeMap<String, Vec<(String, Vec<Drawn<'i>>)>>;

pub(super) fn generated<'i>(
    config: &crate::config::Config,
    index: &'i [IndexEntry],
) -> Generated<'i> {
    use crate::config::ViewBy;
    let mut out: BTreeMap<String, BTreeMap<String, Vec<Drawn<'i>>>> = Default::default();
    for rule in &config.dashboard_rules {
        for e in index {
            for (ds, d) in e.ds.iter().enumerate() {
                let Some(captured) = rule.capture(&d.series) else {
                    continue;
                };
                let view = match rule.view_by {
                    ViewBy::Kind => d.series.rsplit('/').next().unwrap_or_default().to_owned(),
                    ViewBy::Unit => d.unit.clone().unwrap_or_else(|| "(no unit)".into()),
                };
                out.entry(format!("{}:{captured}", rule.name))
                    .or_default()
                    .entry(view)
                    .or_default()
                    .push(Drawn::plain(e, ds));
            }
        }
    }
    out.into_iter()
        .map(|(name, views)| (name, views.into_iter().collect()))
        .collect()
}

/// The page of a dashboard a `[[dashboard_rule]]` made.
pub(super) fn generated_page(
    state: &State,
    access: &Access,
    name: &str,
    range: Option<String>,
) -> Result<DashboardPage, WebError> {
    let range = checked_range(range, "day")?;
    let config = state.config.borrow().clone();
    let index = state.index(access);
    let all = generated(&config, &index);
    let views = all
        .get(name)
        .ok_or_else(|| WebError::NotFound(format!("dashboard {name:?}")))?;
    let escaped = url_escape(name);
    Ok(page(
        Chrome::of(state, access),
        state.dygraphs.is_some(),
        name,
        views,
        range,
        &format!("/rrd/dashboard/{escaped}?range="),
        |i, range| format!("/rrd/dashboard/{escaped}/{i}.png?range={range}"),
    ))
}
