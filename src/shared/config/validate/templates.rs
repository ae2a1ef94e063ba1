//! `[[template]]`: the layout of automatic files (step, DS, heartbeat,
//! bounds, archives), each turned into librrd's units.

use std::collections::HashSet;

use super::{Errors, whole_secs};
use crate::config::Template;
use crate::config::poll::PollJob;
use crate::config::raw::{RawRra, RawTemplate};
use crate::model::RraSpec;

/// Hold and heartbeat are counted in steps when rows are built; beyond this
/// a typo (a hold of "10y" at a 1 s step) would cost memory, not help.
const MAX_STEPS_PER_SPAN: u64 = 100_000;
const MAX_RRA_ROWS: u64 = 10_000_000;

/// The templates that are valid, each name once. The built-in catch-all
/// `default` comes last unless the file defines its own: adding one
/// template must not silently stop every other series.
///
/// Each poll job's own template (`RawTemplate::for_poll`) comes first:
/// its files' step is its interval, whatever catch-all the file has. A
/// `[[rule]]` naming another template still wins.
pub(super) fn templates(
    raw: &[Option<RawTemplate>],
    polls: &[PollJob],
    e: &mut Errors,
) -> Vec<Template> {
    let builtin =
        (!raw.iter().flatten().any(|t| t.name == "default")).then(RawTemplate::builtin_default);
    let for_polls: Vec<RawTemplate> = polls
        .iter()
        .map(|p| RawTemplate::for_poll(p.template_name(), &p.prefix, p.interval))
        .collect();
    let mut names = HashSet::new();
    for_polls
        .iter()
        .map(Some)
        .chain(raw.iter().map(Option::as_ref))
        .chain(builtin.as_ref().map(Some))
        .enumerate()
        .filter_map(|(i, t)| {
            let t = template(t?, &format!("template[{i}]"), e)?;
            if !names.insert(t.name.clone()) {
                e.push(
                    format!("template[{i}].name"),
                    format!("duplicate template {:?}", t.name),
                );
            }
            Some(t)
        })
        .collect()
}

pub(super) fn template(raw: &RawTemplate, key: &str, e: &mut Errors) -> Option<Template> {
    if raw.name.is_empty() {
        e.push(format!("{key}.name"), "must not be empty");
    }
    for (i, f) in raw.topics.iter().enumerate() {
        if f.is_empty() || !rumqttc::valid_filter(f) {
            e.push(
                format!("{key}.topics[{i}]"),
                format!("{f:?} is not a valid MQTT topic filter"),
            );
        }
    }
    let step = whole_secs(raw.step, &format!("{key}.step"), e);
    if step == 0 || step > 86_400 {
        e.push(format!("{key}.step"), "must be between 1s and 1d");
        return None;
    }
    let heartbeat = match raw.heartbeat {
        Some(h) => whole_secs(h, &format!("{key}.heartbeat"), e),
        None => 2 * step,
    };
    if heartbeat < step || heartbeat > step * MAX_STEPS_PER_SPAN {
        e.push(
            format!("{key}.heartbeat"),
            format!("must be between the step ({step}s) and 100000 steps"),
        );
    }
    if raw.hold.as_secs() > step * MAX_STEPS_PER_SPAN {
        e.push(format!("{key}.hold"), "must not exceed 100000 steps");
    }
    check_bounds(raw.min, raw.max, key, e);
    if raw.rra.is_empty() {
        e.push(format!("{key}.rra"), "needs at least one archive");
    }
    let rras = raw
        .rra
        .iter()
        .enumerate()
        .flat_map(|(i, r)| rra(r, step, &format!("{key}.rra[{i}]"), e))
        .collect();
    Some(Template {
        name: raw.name.clone(),
        topics: raw.topics.clone(),
        step_secs: step as u32,
        ds_type: raw.ds_type,
        heartbeat_secs: heartbeat.min(u32::MAX as u64) as u32,
        min: raw.min,
        max: raw.max,
        aggregate: raw.aggregate,
        hold: raw.hold,
        unit: raw.unit.clone(),
        rras,
    })
}

pub(super) fn check_bounds(min: Option<f64>, max: Option<f64>, key: &str, e: &mut Errors) {
    for (name, v) in [("min", min), ("max", max)] {
        if v.is_some_and(|v| !v.is_finite()) {
            e.push(format!("{key}.{name}"), "must be a finite number");
        }
    }
    if let (Some(lo), Some(hi)) = (min, max)
        && lo >= hi
    {
        e.push(format!("{key}.max"), "must be greater than min");
    }
}

fn rra(raw: &RawRra, step: u64, key: &str, e: &mut Errors) -> Vec<RraSpec> {
    let every = whole_secs(raw.every, &format!("{key}.every"), e);
    if every == 0 || !every.is_multiple_of(step) {
        e.push(
            format!("{key}.every"),
            format!("must be a multiple of the step ({step}s)"),
        );
        return Vec::new();
    }
    let keep = raw.keep.as_secs();
    let rows = keep.div_ceil(every);
    if rows == 0 || rows > MAX_RRA_ROWS {
        e.push(
            format!("{key}.keep"),
            "must cover between 1 and 10000000 rows of `every`",
        );
        return Vec::new();
    }
    if !(0.0..1.0).contains(&raw.xff) {
        e.push(format!("{key}.xff"), "must be in [0, 1)");
    }
    raw.cf
        .to_vec()
        .into_iter()
        .map(|cf| RraSpec {
            cf,
            xff: raw.xff,
            steps_per_row: (every / step) as u32,
            rows: rows as u32,
        })
        .collect()
}
