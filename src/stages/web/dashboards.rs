//! Dashboards declared in the configuration (`[[dashboard]]`): a list, a
//! page per dashboard with its views as PNGs, and each view drawn by librrd
//! from series of any files, with its warning and critical thresholds as
//! horizontal rules. The dashboards follow live reloads. A series a view
//! names is looked up in the index: one that has no file yet is listed on
//! the page as missing, not an error.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::access::Access;
use super::query::{GraphParams, graph_size};
use super::{State, WebError};
use crate::config::{Dashboard, View};
use crate::rrd::index::IndexEntry;
use crate::rrd::read::{GraphLine, GraphRequest, LineStyle, Threshold};

const RANGES: [&str; 4] = ["day", "week", "month", "year"];
const WARNING: (u8, u8, u8) = (0xe6, 0x9f, 0x00);
const CRITICAL: (u8, u8, u8) = (0xd6, 0x27, 0x28);

/// The configured dashboard `name`, if `access` may see it (one that is
/// not shared with the user is answered like one that does not exist).
fn dashboard(state: &State, access: &Access, name: &str) -> Result<Dashboard, WebError> {
    let configured = state
        .config
        .borrow()
        .dashboards
        .iter()
        .find(|d| d.name == name)
        .cloned();
    configured
        .or_else(|| state.saved.get(name))
        .filter(|d| access.sees_dashboard(d))
        .ok_or_else(|| WebError::NotFound(format!("dashboard {name:?}")))
}

/// Each series of `view` found in the index: its file and DS.
fn resolve<'i>(view: &View, index: &'i [IndexEntry]) -> Vec<Option<(&'i IndexEntry, usize)>> {
    view.series
        .iter()
        .map(|s| {
            index.iter().find_map(|e| {
                let ds = e.ds.iter().position(|d| d.series == s.series)?;
                Some((e, ds))
            })
        })
        .collect()
}

pub(crate) struct DashboardLink {
    href: String,
    title: String,
    views: usize,
    /// Its form, for a dashboard made in the browser and an editor.
    edit: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboards.html")]
pub(crate) struct ListPage {
    dashboards: Vec<DashboardLink>,
    /// The user may make dashboards and events.
    can_edit: bool,
    /// The form token, for an editor.
    token: String,
    /// The devices an editor may note an event about.
    devices: Vec<String>,
}

pub(crate) async fn list(state: web::Data<State>, access: Access) -> ListPage {
    let config = state.config.borrow().clone();
    let index = state.index(&access);
    let can_edit = access.role >= crate::config::Role::Editor;
    let mut dashboards: Vec<DashboardLink> = config
        .dashboards
        .iter()
        .filter(|d| access.sees_dashboard(d))
        .map(|d| DashboardLink {
            href: format!("/rrd/dashboard/{}", d.name),
            title: d.title.clone(),
            views: d.views.len(),
            edit: None,
        })
        .collect();
    dashboards.extend(
        state
            .saved
            .all()
            .into_iter()
            .filter(|d| access.sees_dashboard(d))
            .map(|d| DashboardLink {
                href: format!("/rrd/dashboard/{}", d.name),
                edit: can_edit.then(|| format!("/rrd/dashboards/edit?name={}", d.name)),
                title: d.title,
                views: d.views.len(),
            }),
    );
    dashboards.extend(
        generated(&config, &index)
            .into_iter()
            .map(|(name, views)| DashboardLink {
                href: format!("/rrd/dashboard/{}", super::pages::url_escape(&name)),
                title: name,
                views: views.len(),
                edit: None,
            }),
    );
    let devices = if can_edit {
        super::tree::devices(&index)
            .into_iter()
            .map(|d| d.path)
            .collect()
    } else {
        Vec::new()
    };
    ListPage {
        token: if can_edit {
            state.saved.token(&access)
        } else {
            String::new()
        },
        dashboards,
        can_edit,
        devices,
    }
}

pub(crate) struct ViewLink {
    title: String,
    src: String,
    missing: Vec<String>,
    /// The interactive chart's series, as JSON for `static/dashboard.js`.
    series_json: String,
    /// Thresholds, drawn on the chart too (empty: none).
    warning: String,
    critical: String,
}

impl ViewLink {
    /// A view made from the index (a device's or a rule's): nothing
    /// missing, no thresholds.
    fn generated(title: &str, src: String, series: &[Drawn<'_>]) -> ViewLink {
        ViewLink {
            title: title.to_owned(),
            src,
            missing: Vec::new(),
            series_json: chart_series(series),
            warning: String::new(),
            critical: String::new(),
        }
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "dashboard.html")]
pub(crate) struct DashboardPage {
    title: String,
    range: String,
    /// Each range and whether it is the one shown.
    ranges: Vec<(&'static str, bool)>,
    /// The page's address for another range, but for the range's name.
    range_link: String,
    views: Vec<ViewLink>,
    /// Interactive charts beside the PNGs (libjs-dygraphs is installed).
    dygraphs: bool,
    /// The form of a dashboard made in the browser, for an editor.
    edit_link: Option<String>,
}

/// One series of an interactive chart: where its data is, and how it looks.
#[derive(serde::Serialize)]
struct ChartSeries {
    url: String,
    /// Its file, for the events about it.
    path: String,
    label: String,
    color: Option<String>,
}

/// The series of a view, for `static/dashboard.js`; empty when none has a
/// file yet (no chart then, only the list of missing series).
fn chart_series(series: &[Drawn<'_>]) -> String {
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
                    super::pages::url_escape(&s.entry.path),
                    super::pages::url_escape(&d.name),
                    s.style.cf.unwrap_or(crate::model::Cf::Average).as_rrd_str()
                ),
                label: s
                    .label
                    .clone()
                    .or_else(|| d.label.clone())
                    .unwrap_or_else(|| d.series.clone()),
                color: s
                    .style
                    .color
                    .map(|(r, g, b)| format!("#{r:02x}{g:02x}{b:02x}")),
            }
        })
        .collect();
    serde_json::to_string(&all).unwrap_or_default()
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageParams {
    range: Option<String>,
}

pub(crate) async fn page(
    state: web::Data<State>,
    access: Access,
    name: web::Path<String>,
    params: web::Query<PageParams>,
) -> Result<DashboardPage, WebError> {
    let Ok(d) = dashboard(&state, &access, &name) else {
        return generated_page(&state, &access, &name, params.range.clone());
    };
    let range = params.range.clone().unwrap_or_else(|| d.range.clone());
    if !RANGES.contains(&range.as_str()) {
        return Err(WebError::BadQuery("range: day, week, month or year".into()));
    }
    let index = state.index(&access);
    let views = d
        .views
        .iter()
        .enumerate()
        .map(|(i, v)| ViewLink {
            title: v.title.clone(),
            src: format!("/rrd/dashboard/{}/{i}.png?range={range}", d.name),
            missing: v
                .series
                .iter()
                .zip(resolve(v, &index))
                .filter(|(_, found)| found.is_none())
                .map(|(s, _)| s.series.clone())
                .collect(),
            series_json: chart_series(&drawn(v, &index)),
            warning: v.warning.map(|w| w.to_string()).unwrap_or_default(),
            critical: v.critical.map(|c| c.to_string()).unwrap_or_default(),
        })
        .collect();
    Ok(DashboardPage {
        dygraphs: state.dygraphs.is_some(),
        edit_link: (access.role >= crate::config::Role::Editor
            && state.saved.get(&d.name).is_some())
        .then(|| format!("/rrd/dashboards/edit?name={}", d.name)),
        title: d.title.clone(),
        ranges: RANGES.iter().map(|&r| (r, r == range)).collect(),
        range_link: format!("/rrd/dashboard/{}?range=", d.name),
        range,
        views,
    })
}

pub(crate) async fn view_png(
    state: web::Data<State>,
    access: Access,
    path: web::Path<(String, String)>,
    params: web::Query<GraphParams>,
    req: HttpRequest,
) -> Result<HttpResponse, WebError> {
    let (name, file) = path.into_inner();
    let index = state.index(&access);
    let Ok(d) = dashboard(&state, &access, &name) else {
        let config = state.config.borrow().clone();
        let all = generated(&config, &index);
        let (title, series) = all
            .get(&name)
            .and_then(|views| {
                let i: usize = file.strip_suffix(".png")?.parse().ok()?;
                views.get(i)
            })
            .ok_or_else(|| WebError::NotFound(format!("view {file:?} of {name:?}")))?;
        return draw(&state, &req, title, series, &params, Vec::new()).await;
    };
    let view = file
        .strip_suffix(".png")
        .and_then(|i| i.parse::<usize>().ok())
        .and_then(|i| d.views.get(i))
        .ok_or_else(|| WebError::NotFound(format!("view {file:?} of {name:?}")))?;
    let series = drawn(view, &index);
    let thresholds = thresholds(&state, view, &series).await;
    draw(&state, &req, &view.title, &series, &params, thresholds).await
}

/// The series of a configured view that have a file, as drawn.
fn drawn<'i>(view: &View, index: &'i [IndexEntry]) -> Vec<Drawn<'i>> {
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
struct Drawn<'i> {
    entry: &'i IndexEntry,
    ds: usize,
    label: Option<String>,
    style: LineStyle,
}

impl<'i> Drawn<'i> {
    /// DS `ds` of `entry`, drawn with the defaults.
    fn plain(entry: &'i IndexEntry, ds: usize) -> Self {
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
async fn draw(
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
            GraphLine {
                ds: d.name.clone(),
                legend: s
                    .label
                    .clone()
                    .or_else(|| d.label.clone())
                    .unwrap_or_else(|| d.series.clone()),
                unit: d.unit.clone(),
                style: s.style.clone(),
            }
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
    };
    // Cached like a file's graph: drawn again only when one of its files,
    // its events or its thresholds' legends (crossed or not) changed.
    let key = format!(
        "view|{:016x}",
        crate::model::path::fnv1a(format!("{request:?}").as_bytes())
    );
    let image = super::graph::draw_unless_cached(state, key, request).await?;
    Ok(super::graph::respond(req, image))
}

/// The view's thresholds as rules; a legend names the series whose last
/// value crosses one.
async fn thresholds(state: &State, view: &View, series: &[Drawn<'_>]) -> Vec<Threshold> {
    let names: Vec<String> = series
        .iter()
        .map(|s| s.entry.ds[s.ds].series.clone())
        .collect();
    let latest = state.cache.latest(names.clone()).await.unwrap_or_default();
    let crossing = |limit: f64| -> Vec<String> {
        names
            .iter()
            .zip(&latest)
            .filter_map(|(n, l)| {
                l.filter(|(v, _)| *v >= limit)
                    .map(|(v, _)| format!("{n} {v}"))
            })
            .collect()
    };
    [
        ("warning", view.warning, WARNING),
        ("critical", view.critical, CRITICAL),
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

/// A device's dashboard with no configuration: one view per unit, of all
/// the device's series in that unit (discovery and rules set units).
fn device_views<'i>(index: &'i [IndexEntry], device: &str) -> Vec<(String, Vec<Drawn<'i>>)> {
    let mut by_unit: std::collections::BTreeMap<String, Vec<Drawn<'i>>> = Default::default();
    for e in super::tree::device_files(index, device) {
        for (ds, d) in e.ds.iter().enumerate() {
            let unit = d.unit.clone().unwrap_or_default();
            by_unit.entry(unit).or_default().push(Drawn::plain(e, ds));
        }
    }
    by_unit
        .into_iter()
        .map(|(unit, series)| {
            let title = if unit.is_empty() {
                "(no unit)".to_owned()
            } else {
                unit
            };
            (title, series)
        })
        .collect()
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
    let range = params.range.clone().unwrap_or_else(|| "day".into());
    if !RANGES.contains(&range.as_str()) {
        return Err(WebError::BadQuery("range: day, week, month or year".into()));
    }
    let index = state.index(&access);
    let views = device_views(&index, &params.device);
    if views.is_empty() {
        return Err(WebError::NotFound(format!("device {:?}", params.device)));
    }
    let device = super::pages::url_escape(&params.device);
    Ok(DashboardPage {
        dygraphs: state.dygraphs.is_some(),
        edit_link: None,
        title: if params.device.is_empty() {
            "(top level)".into()
        } else {
            params.device.clone()
        },
        ranges: RANGES.iter().map(|&r| (r, r == range)).collect(),
        views: views
            .iter()
            .enumerate()
            .map(|(i, (title, series))| {
                ViewLink::generated(
                    title,
                    format!(
                        "/rrd/device-dashboard/view.png?device={device}&view={i}&range={range}"
                    ),
                    series,
                )
            })
            .collect(),
        range,
        range_link: format!("/rrd/device-dashboard?device={device}&range="),
    })
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
    draw(&state, &req, title, series, &params, Vec::new()).await
}

/// The views of every dashboard `[[dashboard_rule]]`s make of the index,
/// by name (`<rule>:<captured level>`): each a title and its views.
type Generated<'i> = std::collections::BTreeMap<String, Vec<(String, Vec<Drawn<'i>>)>>;

fn generated<'i>(config: &crate::config::Config, index: &'i [IndexEntry]) -> Generated<'i> {
    use crate::config::ViewBy;
    let mut out: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, Vec<Drawn<'i>>>,
    > = Default::default();
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
fn generated_page(
    state: &State,
    access: &Access,
    name: &str,
    range: Option<String>,
) -> Result<DashboardPage, WebError> {
    let range = range.unwrap_or_else(|| "day".into());
    if !RANGES.contains(&range.as_str()) {
        return Err(WebError::BadQuery("range: day, week, month or year".into()));
    }
    let config = state.config.borrow().clone();
    let index = state.index(access);
    let all = generated(&config, &index);
    let views = all
        .get(name)
        .ok_or_else(|| WebError::NotFound(format!("dashboard {name:?}")))?;
    let escaped = super::pages::url_escape(name);
    Ok(DashboardPage {
        dygraphs: state.dygraphs.is_some(),
        edit_link: None,
        title: name.to_owned(),
        ranges: RANGES.iter().map(|&r| (r, r == range)).collect(),
        range_link: format!("/rrd/dashboard/{escaped}?range="),
        views: views
            .iter()
            .enumerate()
            .map(|(i, (title, series))| {
                ViewLink::generated(
                    title,
                    format!("/rrd/dashboard/{escaped}/{i}.png?range={range}"),
                    series,
                )
            })
            .collect(),
        range,
    })
}
