//! Validation of the sections that describe what is logged and served:
//! `[[file]]`s, `[[rule]]`s and `[web]` (dashboards are `dashboards.rs`);
//! the same `Errors` collects every problem with its key.

use std::collections::HashSet;
use std::net::SocketAddr;

use super::super::raw::{RawFile, RawFileDs, RawRule, RawWeb};
use super::super::{Role, Rule, Template, WebConfig, WebGroup, WebUser};
use super::templates::check_bounds;
use super::{Errors, is_valid_ds_name};
use crate::model::path::is_safe_rel_path;
use crate::model::{DsSpec, FileSpec, SeriesMeta};

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
                device_class: r.device_class.clone(),
                binary: r.binary,
                ..SeriesMeta::default()
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
    let users = web_users(raw, &groups, e);
    Some(WebConfig {
        listen,
        users,
        dygraphs_dir: raw.dygraphs_dir.clone(),
        render_queue: raw.render_queue,
        groups,
        time_zone: time_zone(raw.time_zone.as_deref(), e),
        bots: bots(raw, e),
    })
}

/// `[[web.bots]]`: unique names without ':' (a token is `<name>:<secret>`),
/// argon2 hashes, valid filters.
fn bots(raw: &RawWeb, e: &mut Errors) -> Vec<crate::config::Bot> {
    let mut names = HashSet::new();
    raw.bots
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let key = format!("web.bots[{i}]");
            if b.name.is_empty() || b.name.contains(':') || b.name.contains(char::is_whitespace) {
                e.push(
                    format!("{key}.name"),
                    "must be non-empty, without ':' or spaces",
                );
            } else if !names.insert(b.name.clone()) {
                e.push(format!("{key}.name"), format!("duplicate bot {:?}", b.name));
            }
            if let Err(why) = crate::password::check_hash(&b.token_hash) {
                e.push(format!("{key}.token_hash"), why);
            }
            let publish = b.publish.as_ref().map(|filters| {
                filters
                    .iter()
                    .enumerate()
                    .map(|(j, f)| {
                        let f = f.replace("%u", &b.name);
                        if f.is_empty() || !rumqttc::valid_filter(&f) {
                            e.push(
                                format!("{key}.publish[{j}]"),
                                format!("{f:?} is not a valid MQTT topic filter"),
                            );
                        }
                        f
                    })
                    .collect()
            });
            crate::config::Bot {
                name: b.name.clone(),
                token_hash: b.token_hash.clone(),
                publish,
            }
        })
        .collect()
}

/// `web.time_zone`: a name of the zone database, or the system's zone.
fn time_zone(raw: Option<&str>, e: &mut Errors) -> String {
    use crate::clock::local;
    match raw {
        None => local::system_zone(),
        Some(zone) if local::is_zone(zone) => zone.to_owned(),
        Some(zone) => {
            e.push(
                "web.time_zone",
                format!("{zone:?} is not a time zone of /usr/share/zoneinfo (e.g. \"Europe/Berlin\", \"UTC\")"),
            );
            "UTC".to_owned()
        }
    }
}

/// `[[web.users]]`: unique names, argon2 hashes, a role, known groups.
fn web_users(raw: &RawWeb, groups: &[WebGroup], e: &mut Errors) -> Vec<WebUser> {
    let mut names = HashSet::new();
    raw.users
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
        .collect()
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
                    check_ds(d, &dkey, &mut ds_names, &mut series, e);
                    ds_spec(d, t)
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

/// A `[[file.ds]]`: its name unique in the file, its series in the
/// config, its bounds sane.
fn check_ds(
    d: &RawFileDs,
    dkey: &str,
    ds_names: &mut HashSet<String>,
    series: &mut HashSet<String>,
    e: &mut Errors,
) {
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
    check_bounds(d.min, d.max, dkey, e);
    if let Some(old) = d.renamed_from.as_deref().filter(|n| !is_valid_ds_name(n)) {
        e.push(
            format!("{dkey}.renamed_from"),
            format!("{old:?}: DS names are 1-19 of [A-Za-z0-9_]"),
        );
    }
}

/// A `[[file.ds]]` with what it leaves unsaid taken from its template.
fn ds_spec(d: &RawFileDs, t: &Template) -> DsSpec {
    let ds_type = d.ds_type.unwrap_or(t.ds_type);
    DsSpec {
        name: d.name.clone(),
        series: d.series.clone(),
        ds_type,
        heartbeat_secs: t.heartbeat_secs,
        min: d.min.or(t.min),
        max: d.max.or(t.max),
        aggregate: d.aggregate.unwrap_or(t.aggregate),
        hold: ds_type.hold(t.hold),
        label: d.label.clone(),
        unit: d.unit.clone().or_else(|| t.unit.clone()),
        renamed_from: d.renamed_from.clone(),
        about: Default::default(),
    }
}

/// A name that is also an address: 1 to 64 of `[A-Za-z0-9_-]`.
pub(super) fn is_page_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
