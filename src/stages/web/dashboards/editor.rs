//! Dashboards made in the browser by editors (and admins): a form, its
//! parsing into the same fields a `[[dashboard]]` has, checked by the same
//! validation (every problem with its key), kept by `store.rs`. Dashboards
//! from the configuration stay read-only here. The forms are checked
//! against cross-site requests by extracting an [`EditorForm`].

use actix_web::{HttpResponse, web};
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;
use tracing::info;

use crate::config::{StoredDashboard, StoredView, StoredViewSeries};
use crate::model::{Cf, Draw};
use crate::web::access::Access;
use crate::web::chrome::Chrome;
use crate::web::form::{EditorForm, field, require_editor, see_other};
use crate::web::pages::url_escape;
use crate::web::{State, WebError};

/// Views a form offers: those a dashboard has, plus this many empty ones.
const EMPTY_VIEWS: usize = 2;
/// The most view blocks a form is read for (config allows fewer views).
const MAX_FORM_VIEWS: usize = 64;
/// The most dashboards the store keeps: a bound on a file an editor fills.
const MAX_SAVED: usize = 200;

/// One view's fields in the form.
pub(crate) struct ViewForm {
    index: usize,
    title: String,
    warning: String,
    critical: String,
    /// One series a line: `series | label | #rrggbb | draw | cf`.
    series: String,
    /// The colour the next series added gets unless another is picked.
    next_color: String,
}

/// `#rrggbb` of the palette's `n`th colour (as graphs give them).
fn palette_color(n: usize) -> String {
    let palette = crate::rrd::read::PALETTE;
    let (r, g, b) = palette[n % palette.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

#[derive(Template, WebTemplate)]
#[template(path = "editor.html")]
pub(crate) struct EditPage {
    chrome: Chrome,
    name: String,
    title: String,
    range: String,
    /// The groups the user may share with, and whether it is shared.
    groups: Vec<(String, bool)>,
    views: Vec<ViewForm>,
    /// Series the user may pick (the search box's suggestions).
    series_names: Vec<String>,
    token: String,
    errors: Vec<String>,
    existing: bool,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EditParams {
    name: Option<String>,
}

/// The groups `access` may share a dashboard with: its own, or any for an
/// admin.
fn shareable(state: &State, access: &Access) -> Vec<String> {
    state
        .groups
        .iter()
        .map(|g| g.name.clone())
        .filter(|g| access.sees_all() || access.in_group(g))
        .collect()
}

/// `GET /rrd/dashboards/edit?name=…`: the form, empty or with a dashboard
/// made in the browser.
pub(crate) async fn edit(
    state: web::Data<State>,
    access: Access,
    params: web::Query<EditParams>,
) -> Result<EditPage, WebError> {
    require_editor(&access)?;
    let name = params.name.clone().unwrap_or_default();
    if state
        .config
        .borrow()
        .dashboards
        .iter()
        .any(|d| d.name == name)
    {
        return Err(WebError::Forbidden(format!(
            "dashboard {name:?} comes from the configuration: edit it there"
        )));
    }
    let stored = state.saved.stored(&name).filter(|s| {
        state
            .saved
            .get(&s.name)
            .is_some_and(|d| access.sees_dashboard(&d))
    });
    let existing = stored.is_some();
    let stored = stored.unwrap_or_else(|| StoredDashboard {
        name,
        title: None,
        range: "day".into(),
        view: Vec::new(),
        groups: Vec::new(),
    });
    Ok(page(&state, &access, &stored, Vec::new(), existing))
}

fn page(
    state: &State,
    access: &Access,
    stored: &StoredDashboard,
    errors: Vec<String>,
    existing: bool,
) -> EditPage {
    let mut views: Vec<ViewForm> = stored
        .view
        .iter()
        .enumerate()
        .map(|(index, v)| ViewForm {
            index,
            title: v.title.clone(),
            warning: v.warning.map(|w| w.to_string()).unwrap_or_default(),
            critical: v.critical.map(|c| c.to_string()).unwrap_or_default(),
            series: v
                .series
                .iter()
                .map(series_line)
                .collect::<Vec<_>>()
                .join("\n"),
            next_color: palette_color(v.series.len()),
        })
        .collect();
    for _ in 0..EMPTY_VIEWS {
        views.push(ViewForm {
            index: views.len(),
            title: String::new(),
            warning: String::new(),
            critical: String::new(),
            series: String::new(),
            next_color: palette_color(0),
        });
    }
    let mut series_names: Vec<String> = state
        .index(access)
        .iter()
        .flat_map(|e| e.ds.iter().map(|d| d.series.clone()))
        .collect();
    series_names.sort();
    EditPage {
        chrome: Chrome::of(state, access),
        name: stored.name.clone(),
        title: stored.title.clone().unwrap_or_default(),
        range: stored.range.clone(),
        groups: shareable(state, access)
            .into_iter()
            .map(|g| {
                let on = stored.groups.contains(&g);
                (g, on)
            })
            .collect(),
        views,
        series_names,
        token: state.form_tokens.token(access),
        errors,
        existing,
    }
}

fn series_line(s: &StoredViewSeries) -> String {
    let draw = match s.draw {
        Draw::Line => "line",
        Draw::Area => "area",
        Draw::Stack => "stack",
    };
    let cf = s.cf.map(Cf::as_rrd_str).unwrap_or("");
    format!(
        "{} | {} | {} | {draw} | {cf}",
        s.series,
        s.label.as_deref().unwrap_or(""),
        s.color.as_deref().unwrap_or("")
    )
    .trim_end_matches([' ', '|'])
    .to_owned()
}

/// `POST /rrd/dashboards/save`: checks, stores, and shows the dashboard.
pub(crate) async fn save(
    state: web::Data<State>,
    form: EditorForm,
) -> Result<HttpResponse, WebError> {
    let access = &form.access;
    let (stored, mut errors) = parse_form(&form.fields);
    let shareable = shareable(&state, access);
    for g in &stored.groups {
        if !shareable.contains(g) {
            errors.push(format!("groups: {g:?} is not one of yours"));
        }
    }
    // A series the editor does not see would show as "no file yet" to
    // them, and to others whatever their groups allow: refused, named.
    for (i, view) in stored.view.iter().enumerate() {
        for s in view
            .series
            .iter()
            .filter(|s| !access.sees_series(&s.series))
        {
            errors.push(format!(
                "view {}: {:?} is not a series you may see",
                i + 1,
                s.series
            ));
        }
    }
    if state
        .config
        .borrow()
        .dashboards
        .iter()
        .any(|d| d.name == stored.name)
    {
        errors.push(format!(
            "name: {:?} is a dashboard of the configuration",
            stored.name
        ));
    }
    let replaced = state.saved.get(&stored.name);
    if replaced.as_ref().is_some_and(|d| !access.sees_dashboard(d)) {
        errors.push(format!("name: {:?} is taken", stored.name));
    }
    let checked = if errors.is_empty() {
        match crate::config::check_dashboard(&stored, &state.groups) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.extend(
                    e.iter()
                        .map(|e| format!("{}: {}", form_key(&e.key), e.message)),
                );
                None
            }
        }
    } else {
        None
    };
    let Some(checked) = checked else {
        let page = page(&state, access, &stored, errors, replaced.is_some());
        let body = page.render().map_err(WebError::Template)?;
        return Ok(HttpResponse::BadRequest()
            .content_type("text/html; charset=utf-8")
            .body(body));
    };
    let name = stored.name.clone();
    state
        .saved
        .change(move |all| {
            let count = all.len();
            match all.iter_mut().find(|(s, _)| s.name == stored.name) {
                Some(slot) => *slot = (stored, checked),
                None if count >= MAX_SAVED => {
                    return Err(format!("at most {MAX_SAVED} dashboards"));
                }
                None => all.push((stored, checked)),
            }
            Ok(())
        })
        .await?;
    info!(
        dashboard = name,
        user = access.user.as_deref().unwrap_or(""),
        "Dashboard saved."
    );
    Ok(see_other(&format!("/rrd/dashboard/{}", url_escape(&name))))
}

/// `POST /rrd/dashboards/delete`.
pub(crate) async fn delete(
    state: web::Data<State>,
    form: EditorForm,
) -> Result<HttpResponse, WebError> {
    let access = &form.access;
    let name = form.field("name").unwrap_or_default().to_owned();
    match state.saved.get(&name) {
        Some(d) if access.sees_dashboard(&d) => {}
        _ => return Err(WebError::NotFound(format!("dashboard {name:?}"))),
    }
    let gone = name.clone();
    state
        .saved
        .change(move |all| {
            all.retain(|(s, _)| s.name != gone);
            Ok(())
        })
        .await?;
    info!(
        dashboard = name,
        user = access.user.as_deref().unwrap_or(""),
        "Dashboard deleted."
    );
    Ok(see_other("/rrd/dashboards"))
}

/// A validation key (`dashboard[0].view[1].title`) as the form names it.
fn form_key(key: &str) -> String {
    key.strip_prefix("dashboard[0].").unwrap_or(key).to_owned()
}

/// The form's fields as a dashboard, and what could not be read (numbers,
/// draw styles, CFs). Views without a title and series are left out;
/// views are ordered by their `order` field.
pub(crate) fn parse_form(form: &[(String, String)]) -> (StoredDashboard, Vec<String>) {
    let mut errors = Vec::new();
    let text = |key: &str| field(form, key).unwrap_or_default().trim().to_owned();
    let mut views: Vec<(i64, usize, StoredView)> = Vec::new();
    // Bounded: a hostile form of thousands of views costs no more.
    for i in 0..MAX_FORM_VIEWS {
        let key = |f: &str| format!("v{i}.{f}");
        if field(form, &key("title")).is_none() {
            break;
        }
        let mut lines: Vec<String> = text(&key("series")).lines().map(str::to_owned).collect();
        let added = text(&key("add"));
        if !added.is_empty() {
            // The picker's label and colour, when given, with it.
            let label = text(&key("add_label")).replace('|', "/");
            let color = text(&key("add_color"));
            lines.push(format!("{added} | {label} | {color}"));
        }
        let series: Vec<StoredViewSeries> = lines
            .iter()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| match parse_series_line(l) {
                Ok(s) => Some(s),
                Err(e) => {
                    errors.push(format!("view {}: {e}", i + 1));
                    None
                }
            })
            .collect();
        let title = text(&key("title"));
        if title.is_empty() && series.is_empty() || field(form, &key("remove")).is_some() {
            continue;
        }
        let mut number = |f: &str| -> Option<f64> {
            let t = text(&key(f));
            if t.is_empty() {
                return None;
            }
            match t.parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => {
                    errors.push(format!("view {} {f}: {t:?} is not a number", i + 1));
                    None
                }
            }
        };
        let warning = number("warning");
        let critical = number("critical");
        let order = text(&key("order")).parse::<i64>().unwrap_or(i as i64);
        views.push((
            order,
            i,
            StoredView {
                title,
                series,
                warning,
                critical,
            },
        ));
    }
    views.sort_by_key(|(order, i, _)| (*order, *i));
    let title = text("title");
    let stored = StoredDashboard {
        name: text("name"),
        title: (!title.is_empty()).then_some(title),
        range: text("range"),
        view: views.into_iter().map(|(_, _, v)| v).collect(),
        groups: form
            .iter()
            .filter(|(k, _)| k == "groups")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    (stored, errors)
}

/// `series | label | #rrggbb | draw | cf`, all but the series optional.
fn parse_series_line(line: &str) -> Result<StoredViewSeries, String> {
    let mut parts = line.split('|').map(str::trim);
    let series = parts.next().unwrap_or_default().to_owned();
    let opt = |p: Option<&str>| p.filter(|s| !s.is_empty()).map(str::to_owned);
    let label = opt(parts.next());
    let color = opt(parts.next());
    let draw = match parts.next().unwrap_or("") {
        "" | "line" => Draw::Line,
        "area" => Draw::Area,
        "stack" => Draw::Stack,
        other => {
            return Err(format!(
                "{series}: draw {other:?} is not line, area or stack"
            ));
        }
    };
    let cf = match parts.next().unwrap_or("").to_ascii_uppercase().as_str() {
        "" => None,
        "AVERAGE" => Some(Cf::Average),
        "MIN" => Some(Cf::Min),
        "MAX" => Some(Cf::Max),
        "LAST" => Some(Cf::Last),
        other => {
            return Err(format!(
                "{series}: CF {other:?} is not AVERAGE, MIN, MAX or LAST"
            ));
        }
    };
    if parts.next().is_some() {
        return Err(format!(
            "{series}: at most 5 fields: series | label | #rrggbb | draw | cf"
        ));
    }
    Ok(StoredViewSeries {
        series,
        label,
        color,
        draw,
        cf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_form_becomes_a_dashboard_with_views_in_order() {
        let (d, errors) = parse_form(&form(&[
            ("name", "house"),
            ("title", " The house "),
            ("range", "week"),
            ("groups", "kitchen"),
            ("groups", "garage"),
            ("v0.title", "Climate"),
            ("v0.order", "2"),
            (
                "v0.series",
                "a/temperature | Living | #1f77b4 | area | max\n\nb/temperature",
            ),
            ("v0.add", "c/temperature"),
            ("v0.warning", "25"),
            ("v0.critical", ""),
            ("v1.title", "Power"),
            ("v1.order", "1"),
            ("v1.series", "plug/power"),
            ("v2.title", ""),
            ("v2.series", ""),
            ("v3.title", "Gone"),
            ("v3.series", "x"),
            ("v3.remove", "on"),
        ]));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            (d.name.as_str(), d.title.as_deref(), d.range.as_str()),
            ("house", Some("The house"), "week")
        );
        assert_eq!(d.groups, ["kitchen", "garage"]);
        let titles: Vec<&str> = d.view.iter().map(|v| v.title.as_str()).collect();
        assert_eq!(
            titles,
            ["Power", "Climate"],
            "ordered, empty and removed views left out"
        );
        let climate = &d.view[1];
        assert_eq!(climate.warning, Some(25.0));
        assert_eq!(climate.critical, None);
        assert_eq!(climate.series.len(), 3);
        let first = &climate.series[0];
        assert_eq!(
            (
                first.label.as_deref(),
                first.color.as_deref(),
                first.draw,
                first.cf
            ),
            (Some("Living"), Some("#1f77b4"), Draw::Area, Some(Cf::Max))
        );
        assert_eq!(
            series_line(first),
            "a/temperature | Living | #1f77b4 | area | MAX"
        );
        assert_eq!(
            series_line(&climate.series[1]),
            "b/temperature |  |  | line",
            "read back"
        );
        assert_eq!(parse_series_line(&series_line(first)).unwrap(), *first);
    }

    #[test]
    fn bad_numbers_styles_and_cfs_are_named() {
        let (_, errors) = parse_form(&form(&[
            ("name", "x"),
            ("v0.title", "t"),
            (
                "v0.series",
                "a | | | dots\nb | | | line | MEDIAN\nc|1|#000000|line|MAX|more",
            ),
            ("v0.warning", "NaN"),
            ("v0.critical", "lots"),
        ]));
        let all = errors.join("\n");
        for expected in ["dots", "MEDIAN", "at most 5 fields", "warning", "critical"] {
            assert!(all.contains(expected), "{expected} missing from {all}");
        }
    }
}
