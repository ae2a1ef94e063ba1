//! `[[dashboard]]`s (and dashboards made in the browser, checked alike)
//! and `[[dashboard_rule]]`s.

use std::collections::HashSet;

use super::Errors;
use super::sections::is_page_name;
use crate::config::raw::{RawDashboard, RawDashboardRule, RawView};
use crate::config::{Dashboard, DashboardRule, RuleLevel, View, ViewSeries};

/// At most this many views a dashboard, series a view: a page stays a page.
const MAX_VIEWS: usize = 50;
const MAX_VIEW_SERIES: usize = 32;

/// `[[dashboard]]`s (and dashboards made in the browser): `groups` are
/// the `[[web.groups]]` names a dashboard may be shared with.
pub(super) fn dashboards(
    raw: &[Option<RawDashboard>],
    groups: &[&str],
    e: &mut Errors,
) -> Vec<Dashboard> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, d) in raw.iter().enumerate() {
        let Some(d) = d else { continue };
        let key = format!("dashboard[{i}]");
        if !is_page_name(&d.name) {
            e.push(
                format!("{key}.name"),
                "1 to 64 of [A-Za-z0-9_-]: it is the page's address",
            );
        } else if !names.insert(d.name.clone()) {
            e.push(
                format!("{key}.name"),
                format!("duplicate dashboard {:?}", d.name),
            );
        }
        if !["hour", "6h", "day", "week", "month", "year"].contains(&d.range.as_str()) {
            e.push(
                format!("{key}.range"),
                "must be hour, 6h, day, week, month or year",
            );
        }
        if d.view.is_empty() || d.view.len() > MAX_VIEWS {
            e.push(
                format!("{key}.view"),
                format!("needs 1 to {MAX_VIEWS} [[dashboard.view]]"),
            );
        }
        let views = d
            .view
            .iter()
            .enumerate()
            .map(|(j, v)| view(v, &format!("{key}.view[{j}]"), e))
            .collect();
        for g in &d.groups {
            if !groups.contains(&g.as_str()) {
                e.push(
                    format!("{key}.groups"),
                    format!("{g:?} is not a [[web.groups]] name"),
                );
            }
        }
        out.push(Dashboard {
            name: d.name.clone(),
            title: d.title.clone().unwrap_or_else(|| d.name.clone()),
            range: d.range.clone(),
            views,
            groups: d.groups.clone(),
        });
    }
    out
}

/// One `[[dashboard.view]]`: a title, 1 to 32 series, finite thresholds.
fn view(v: &RawView, vkey: &str, e: &mut Errors) -> View {
    if v.title.trim().is_empty() {
        e.push(format!("{vkey}.title"), "must not be empty");
    }
    if v.series.is_empty() || v.series.len() > MAX_VIEW_SERIES {
        e.push(
            format!("{vkey}.series"),
            format!("needs 1 to {MAX_VIEW_SERIES} series"),
        );
    }
    for (name, value) in [("warning", v.warning), ("critical", v.critical)] {
        if value.is_some_and(|x| !x.is_finite()) {
            e.push(format!("{vkey}.{name}"), "must be a finite number");
        }
    }
    let series = v
        .series
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let skey = format!("{vkey}.series[{k}]");
            if s.series.is_empty() || s.series.contains(['+', '#']) {
                e.push(format!("{skey}.series"), "a series name, without wildcards");
            }
            let color = s.color.as_deref().and_then(|c| {
                let rgb = parse_color(c);
                if rgb.is_none() {
                    e.push(format!("{skey}.color"), format!("{c:?}: use #rrggbb"));
                }
                rgb
            });
            ViewSeries {
                series: s.series.clone(),
                label: s.label.clone(),
                color,
                draw: s.draw,
                cf: s.cf.unwrap_or(crate::model::Cf::Average),
            }
        })
        .collect();
    View {
        title: v.title.clone(),
        series,
        warning: v.warning,
        critical: v.critical,
    }
}

/// `#rrggbb` as three bytes.
fn parse_color(c: &str) -> Option<(u8, u8, u8)> {
    let hex = c
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.is_ascii())?;
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

pub(super) fn dashboard_rules(
    raw: &[Option<RawDashboardRule>],
    e: &mut Errors,
) -> Vec<DashboardRule> {
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let Some(r) = r else { continue };
        let key = format!("dashboard_rule[{i}]");
        if !is_page_name(&r.name) {
            e.push(format!("{key}.name"), "1 to 64 of [A-Za-z0-9_-]");
        } else if !names.insert(r.name.clone()) {
            e.push(
                format!("{key}.name"),
                format!("duplicate rule {:?}", r.name),
            );
        }
        let parts: Vec<&str> = r.series.split('/').collect();
        let levels: Vec<RuleLevel> = parts
            .iter()
            .map(|p| match *p {
                "#" => RuleLevel::Rest,
                "+" => RuleLevel::Any,
                p if p.len() > 1 && p.starts_with('+') => RuleLevel::Capture,
                p => RuleLevel::Exact(p.to_owned()),
            })
            .collect();
        let captures = levels.iter().filter(|l| **l == RuleLevel::Capture).count();
        let misplaced_rest = levels
            .iter()
            .position(|l| *l == RuleLevel::Rest)
            .is_some_and(|at| at + 1 != levels.len());
        let stray = parts
            .iter()
            .any(|p| p.len() > 1 && (p.contains('#') || p[1..].contains('+')));
        if captures != 1 || misplaced_rest || stray {
            e.push(
                format!("{key}.series"),
                "an MQTT filter with exactly one named capture, e.g. \"zigbee2mqtt/+room/#\"",
            );
        }
        out.push(DashboardRule {
            name: r.name.clone(),
            levels,
            view_by: r.view_by,
        });
    }
    out
}
