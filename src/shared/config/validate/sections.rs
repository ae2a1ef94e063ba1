//! Validation of the sections that describe what is logged and served:
//! `[[file]]`s, `[[rule]]`s and `[web]`. Split from `validate.rs` for
//! size; the same `Errors` collects every problem with its key.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::super::raw::{RawFile, RawRule, RawWeb};
use super::super::{Role, Rule, Template, WebConfig, WebGroup, WebUser};
use super::{Errors, check_bounds, is_valid_ds_name};
use crate::model::path::is_safe_rel_path;
use crate::model::{DsSpec, DsType, FileSpec, SeriesMeta};

pub(super) fn rules(raw: &[Option<RawRule>], templates: &[Template], e: &mut Errors) -> Vec<Rule> {
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let Some(r) = r else { continue };
        let key = format!("rule[{i}]");
        if r.topics.is_empty() || r.topics.iter().any(|t| t.is_empty()) {
            e.push(
                format!("{key}.topics"),
                "needs at least one non-empty filter",
            );
        }
        if let Some(name) = &r.rename
            && (name.is_empty() || name.contains(['+', '#']))
        {
            e.push(
                format!("{key}.rename"),
                "must be a series name, without wildcards",
            );
        }
        if r.move_history
            && (r.rename.is_none()
                || r.topics.len() != 1
                || r.topics.iter().any(|t| t.contains(['+', '#'])))
        {
            e.push(
                format!("{key}.move_history"),
                "needs `rename` and one topic without wildcards: the series whose file moves",
            );
        }
        if let Some(scale) = r.scale
            && (!scale.is_finite() || scale == 0.0)
        {
            e.push(format!("{key}.scale"), "must be a finite, non-zero number");
        }
        if let Some(t) = &r.template
            && !templates.iter().any(|x| &x.name == t)
        {
            e.push(
                format!("{key}.template"),
                format!("no template named {t:?}"),
            );
        }
        out.push(Rule {
            topics: r.topics.clone(),
            ignore: r.ignore,
            rename: r.rename.clone(),
            scale: r.scale,
            template: r.template.clone(),
            move_history: r.move_history,
            meta: SeriesMeta {
                label: r.label.clone(),
                unit: r.unit.clone(),
                ds_type: r.ds_type,
                min: None,
                hold: None,
            },
        });
    }
    out
}

pub(super) fn web(raw: &RawWeb, e: &mut Errors) -> Option<WebConfig> {
    if !raw.enabled {
        return None;
    }
    let listen = raw.listen.parse::<SocketAddr>().unwrap_or_else(|err| {
        e.push("web.listen", format!("not an address:port ({err})"));
        SocketAddr::from(([127, 0, 0, 1], 8088))
    });
    if raw.users.is_empty() && !listen.ip().is_loopback() && !raw.allow_public_without_auth {
        e.push(
            "web.listen",
            format!(
                "{listen} is reachable beyond this machine and no [[web.users]] are configured: \
                 add users, or set web.allow_public_without_auth = true"
            ),
        );
    }
    if !(1..=1024).contains(&raw.render_queue) {
        e.push("web.render_queue", "must be between 1 and 1024");
    }
    let groups = web_groups(raw, e);
    let mut names = HashSet::new();
    let users = raw
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let key = format!("web.users[{i}]");
            if u.name.is_empty() || u.name.contains(':') {
                e.push(format!("{key}.name"), "must be non-empty, without ':'");
            } else if !names.insert(u.name.clone()) {
                e.push(
                    format!("{key}.name"),
                    format!("duplicate user {:?}", u.name),
                );
            }
            if let Err(why) = crate::password::check_hash(&u.password_hash) {
                e.push(format!("{key}.password_hash"), why);
            }
            let role = match u.role.as_deref() {
                None | Some("admin") => Role::Admin,
                Some("editor") => Role::Editor,
                Some("viewer") => Role::Viewer,
                Some(other) => {
                    e.push(
                        format!("{key}.role"),
                        format!("{other:?}: must be viewer, editor or admin"),
                    );
                    Role::Viewer
                }
            };
            if role != Role::Admin && u.groups.is_empty() {
                e.push(
                    format!("{key}.groups"),
                    "a viewer or editor needs groups: without any it would see nothing",
                );
            }
            for g in &u.groups {
                if !groups.iter().any(|known| &known.name == g) {
                    e.push(
                        format!("{key}.groups"),
                        format!("{g:?} is not a [[web.groups]] name"),
                    );
                }
            }
            WebUser {
                name: u.name.clone(),
                password_hash: u.password_hash.clone(),
                role,
                groups: u.groups.clone(),
            }
        })
        .collect();
    Some(WebConfig {
        listen,
        users,
        dygraphs_dir: raw.dygraphs_dir.clone(),
        render_queue: raw.render_queue,
        groups,
    })
}

/// `[[web.groups]]`: names unique and fit for a URL, filters valid.
fn web_groups(raw: &RawWeb, e: &mut Errors) -> Vec<WebGroup> {
    let mut names = HashSet::new();
    raw.groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let key = format!("web.groups[{i}]");
            if !is_page_name(&g.name) {
                e.push(format!("{key}.name"), "1 to 64 of [A-Za-z0-9_-]");
            } else if !names.insert(g.name.clone()) {
                e.push(
                    format!("{key}.name"),
                    format!("duplicate group {:?}", g.name),
                );
            }
            if g.series.is_empty() {
                e.push(format!("{key}.series"), "needs at least one topic filter");
            }
            for f in &g.series {
                if f.is_empty() || !rumqttc::valid_filter(f) {
                    e.push(
                        format!("{key}.series"),
                        format!("{f:?} is not an MQTT topic filter"),
                    );
                }
            }
            WebGroup {
                name: g.name.clone(),
                series: g.series.clone(),
            }
        })
        .collect()
}

pub(super) fn files(
    raw: &[Option<RawFile>],
    templates: &[Template],
    e: &mut Errors,
) -> Vec<FileSpec> {
    let mut paths = HashSet::new();
    let mut series = HashSet::new();
    let mut out = Vec::new();
    for (i, f) in raw.iter().enumerate() {
        let Some(f) = f else { continue };
        let key = format!("file[{i}]");
        if !is_safe_rel_path(&f.path) {
            e.push(
                format!("{key}.path"),
                "must be a relative path of [A-Za-z0-9_.-] segments, without '.' or '..'",
            );
        } else if !paths.insert(f.path.clone()) {
            e.push(
                format!("{key}.path"),
                format!("{:?} is declared twice", f.path),
            );
        }
        let Some(t) = templates.iter().find(|t| t.name == f.template) else {
            e.push(
                format!("{key}.template"),
                format!("no template named {:?}", f.template),
            );
            continue;
        };
        if f.ds.is_empty() {
            e.push(format!("{key}.ds"), "needs at least one data source");
        }
        let mut ds_names = HashSet::new();
        let ds =
            f.ds.iter()
                .enumerate()
                .map(|(j, d)| {
                    let dkey = format!("{key}.ds[{j}]");
                    if !is_valid_ds_name(&d.name) {
                        e.push(
                            format!("{dkey}.name"),
                            format!("{:?}: DS names are 1-19 of [A-Za-z0-9_]", d.name),
                        );
                    } else if !ds_names.insert(d.name.clone()) {
                        e.push(format!("{dkey}.name"), format!("duplicate DS {:?}", d.name));
                    }
                    if d.series.is_empty() || !series.insert(d.series.clone()) {
                        e.push(
                            format!("{dkey}.series"),
                            format!("{:?} is empty or already mapped", d.series),
                        );
                    }
                    check_bounds(d.min, d.max, &dkey, e);
                    if let Some(old) = d.renamed_from.as_deref().filter(|n| !is_valid_ds_name(n)) {
                        e.push(
                            format!("{dkey}.renamed_from"),
                            format!("{old:?}: DS names are 1-19 of [A-Za-z0-9_]"),
                        );
                    }
                    DsSpec {
                        name: d.name.clone(),
                        series: d.series.clone(),
                        ds_type: d.ds_type.unwrap_or(t.ds_type),
                        heartbeat_secs: t.heartbeat_secs,
                        min: d.min.or(t.min),
                        max: d.max.or(t.max),
                        aggregate: d.aggregate.unwrap_or(t.aggregate),
                        hold: if d.ds_type.unwrap_or(t.ds_type) == DsType::Gauge {
                            t.hold
                        } else {
                            Duration::ZERO
                        },
                        label: d.label.clone(),
                        unit: d.unit.clone().or_else(|| t.unit.clone()),
                        renamed_from: d.renamed_from.clone(),
                    }
                })
                .collect();
        out.push(FileSpec {
            rel_path: f.path.clone(),
            template: t.name.clone(),
            step_secs: t.step_secs,
            ds,
            rras: t.rras.clone(),
        });
    }
    out
}

/// A name that is also an address: 1 to 64 of `[A-Za-z0-9_-]`.
fn is_page_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// At most this many views a dashboard, series a view: a page stays a page.
const MAX_VIEWS: usize = 50;
const MAX_VIEW_SERIES: usize = 32;

/// `[[dashboard]]`s (and dashboards made in the browser): `groups` are
/// the `[[web.groups]]` names a dashboard may be shared with.
pub(super) fn dashboards(
    raw: &[Option<super::super::raw::RawDashboard>],
    groups: &[&str],
    e: &mut Errors,
) -> Vec<super::super::Dashboard> {
    use super::super::{Dashboard, View, ViewSeries};
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
        if !["day", "week", "month", "year"].contains(&d.range.as_str()) {
            e.push(format!("{key}.range"), "must be day, week, month or year");
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
            .map(|(j, v)| {
                let vkey = format!("{key}.view[{j}]");
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
            })
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

/// `#rrggbb` as three bytes.
fn parse_color(c: &str) -> Option<(u8, u8, u8)> {
    let hex = c
        .strip_prefix('#')
        .filter(|h| h.len() == 6 && h.is_ascii())?;
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).ok();
    Some((byte(0)?, byte(2)?, byte(4)?))
}

pub(super) fn dashboard_rules(
    raw: &[Option<super::super::raw::RawDashboardRule>],
    e: &mut Errors,
) -> Vec<super::super::DashboardRule> {
    use super::super::{DashboardRule, RuleLevel};
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
