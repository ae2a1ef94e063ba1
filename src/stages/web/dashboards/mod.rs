//! Dashboards: those declared in the configuration (`[[dashboard]]`,
//! following live reloads), those made in the browser (`store.rs`, edited
//! in `editor.rs`) and those nobody wrote (`generated.rs`: per device, and
//! by `[[dashboard_rule]]`). A list, a page per dashboard with its views as
//! PNGs and interactive charts, and each view drawn by librrd from series
//! of any files, with its warning and critical thresholds as horizontal
//! rules (`draw.rs`). A series a view names is looked up in the index: one
//! that has no file yet is listed on the page as missing, not an error.

mod draw;
pub(super) mod editor;
mod generated;
mod store;

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use self::draw::{chart_series, draw, drawn, thresholds};
pub(crate) use self::generated::{device_page, device_view_png};
use self::generated::{generated, generated_page};
pub(crate) use self::store::Saved;
use super::access::Access;
use super::chrome::Chrome;
use super::pages::url_escape;
use super::query::GraphParams;
use super::{State, WebError};
use crate::config::{Dashboard, Role, View};
use crate::rrd::index::IndexEntry;

const RANGES: [&str; 6] = ["hour", "6h", "day", "week", "month", "year"];

/// The range a page asks for (`default` without one), checked.
fn checked_range(asked: Option<String>, default: &str) -> Result<String, WebError> {
    let range = asked.unwrap_or_else(|| default.to_owned());
    if RANGES.contains(&range.as_str()) {
        Ok(range)
    } else {
        Err(WebError::BadQuery(
            "range: hour, 6h, day, week, month or year".into(),
        ))
    }
}

/// Each range, and whether it is `shown`.
fn range_choices(shown: &str) -> Vec<(&'static str, bool)> {
    RANGES.iter().map(|&r| (r, r == shown)).collect()
}

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
    chrome: Chrome,
    dashboards: Vec<DashboardLink>,
    /// The user may make dashboards and events.
    can_edit: bool,
    /// The form token, for an editor.
    token: String,
    /// The devices an editor may note an event about: address and name.
    devices: Vec<(String, String)>,
    /// The events of the last 30 days the user sees, newest first.
    events: Vec<EventRow>,
}

/// An event as the list shows it.
pub(crate) struct EventRow {
    time_s: i64,
    time: String,
    text: String,
    device: String,
}

/// How far back the list of events goes.
const EVENTS_LISTED_S: i64 = 30 * 86_400;

pub(crate) async fn list(state: web::Data<State>, access: Access) -> ListPage {
    let config = state.config.borrow().clone();
    let index = state.index(&access);
    let can_edit = access.role >= Role::Editor;
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
                href: format!("/rrd/dashboard/{}", url_escape(&name)),
                title: name,
                views: views.len(),
                edit: None,
            }),
    );
    let devices = if can_edit {
        state
            .devices(&index)
            .iter()
            .map(|d| (d.path.clone(), d.name.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let now = state.now_s();
    let mut events: Vec<EventRow> = state
        .events
        .between(now - EVENTS_LISTED_S, now + 86_400, |e| {
            super::events_api::sees(&state, &access, e)
        })
        .into_iter()
        .map(|e| EventRow {
            time_s: e.time_s,
            time: crate::clock::local::text(e.time_s),
            text: e.text,
            device: e.device.unwrap_or_default(),
        })
        .collect();
    events.reverse();
    ListPage {
        chrome: Chrome::of(&state, &access),
        token: if can_edit {
            state.form_tokens.token(&access)
        } else {
            String::new()
        },
        dashboards,
        can_edit,
        devices,
        events,
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
    fn generated(title: &str, src: String, series: &[draw::Drawn<'_>]) -> ViewLink {
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
    chrome: Chrome,
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
    /// A device's charts link back to its series.
    device_link: Option<String>,
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
    let range = checked_range(params.range.clone(), &d.range)?;
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
        chrome: Chrome::of(&state, &access),
        dygraphs: state.dygraphs.is_some(),
        device_link: None,
        edit_link: (access.role >= Role::Editor && state.saved.get(&d.name).is_some())
            .then(|| format!("/rrd/dashboards/edit?name={}", d.name)),
        title: d.title.clone(),
        ranges: range_choices(&range),
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
    let thresholds = thresholds(&state, (view.warning, view.critical), &series).await;
    draw(&state, &req, &view.title, &series, &params, thresholds).await
}
