//! What an automatic file looks like: its template's layout, overridden by
//! what discovery said of its series (Home Assistant, Homie), overridden in
//! turn by a config rule (rules beat magic). Metadata may come before or
//! after the first value: a file made before keeps its layout on disk (a
//! new DS type is reported, as on reload) and takes the new label and unit.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Cache, FileId, ReloadReport, Why};
use crate::config::{Config, Rule, Template};
use crate::energy;
use crate::model::{Aggregate, DsSpec, DsType, FileSpec, SeriesMeta};

impl Cache {
    /// Takes discovered metadata (`None`: the discovery config was
    /// removed) and applies it to files the cache already has.
    pub fn describe(&mut self, updates: Vec<(String, Option<SeriesMeta>)>) -> ReloadReport {
        let mut report = ReloadReport::default();
        for (series, meta) in updates {
            match meta {
                // Bounded like the series: a flood of discovery topics must
                // not grow memory without end.
                Some(_)
                    if !self.meta.contains_key(&series)
                        && self.meta.len() >= self.config.limits.max_series =>
                {
                    report.kept.push(Why {
                        name: series,
                        reason: "more described series than limits.max_series".into(),
                    });
                    continue;
                }
                Some(m) => {
                    let merged = self
                        .meta
                        .get(&series)
                        .cloned()
                        .unwrap_or_default()
                        .merged(&m);
                    self.meta.insert(series.clone(), merged);
                }
                None => {
                    self.meta.remove(&series);
                }
            }
            let Some(slot) = self.series.get(&series).copied() else {
                continue;
            };
            if self.pinned[slot.file] {
                continue;
            }
            let rel_path = self.files[slot.file].spec.rel_path.clone();
            if let Some(wanted) = self.wanted_spec(&self.config, &series, rel_path) {
                self.update_spec(slot.file, Arc::new(wanted), &mut report);
            }
        }
        report
    }

    /// Takes what a series' payload says (an on/off word: a state, maybe
    /// an opening) as metadata that what was said before wins over: a
    /// guess fills in, it never overrides discovery. `None` when it adds
    /// nothing.
    pub fn guess_state(
        &mut self,
        series: String,
        device_class: Option<&str>,
    ) -> Option<ReloadReport> {
        let said = self.meta.get(&series).cloned().unwrap_or_default();
        let guessed = SeriesMeta {
            binary: Some(true),
            device_class: device_class.map(str::to_owned),
            ..SeriesMeta::default()
        };
        let merged = guessed.merged(&said);
        (merged != said).then(|| self.describe(vec![(series, Some(merged))]))
    }

    /// The rule for a series as stored: matched on its name, or the rule
    /// that renamed a series to it.
    fn rule_for<'c>(config: &'c Config, series: &str) -> Option<&'c Rule> {
        config
            .rules
            .iter()
            .find(|r| r.rename.as_deref() == Some(series))
            .or_else(|| {
                config
                    .rules
                    .iter()
                    .find(|r| r.matches(series) && r.rename.is_none())
            })
    }

    /// The single-DS file `series` gets under `config`; `None` when no
    /// template matches.
    /// Whether `rel_path` is a `[[file]]` of the configuration.
    pub fn is_configured_file(&self, rel_path: &str) -> bool {
        self.config.files.iter().any(|f| f.rel_path == rel_path)
    }

    /// The layout the configuration wants for the file at `rel_path` that
    /// holds `series` (for `migrate`): its `[[file]]`, or for an automatic
    /// file what its series would get now.
    pub fn wanted_spec_for(&self, rel_path: &str, series: &[&str]) -> Option<FileSpec> {
        if let Some(f) = self.config.files.iter().find(|f| f.rel_path == rel_path) {
            return Some(f.clone());
        }
        match series {
            [one] => self.wanted_spec(&self.config, one, rel_path.to_owned()),
            _ => None,
        }
    }

    pub(super) fn wanted_spec(
        &self,
        config: &Config,
        series: &str,
        rel_path: String,
    ) -> Option<FileSpec> {
        let rule = Self::rule_for(config, series);
        let template = match rule.and_then(|r| r.template.as_deref()) {
            Some(name) => config.templates.iter().find(|t| t.name == name),
            None => config
                .templates
                .iter()
                .find(|t| t.topics.iter().any(|f| rumqttc::matches(series, f))),
        }?;
        let discovered = self.meta.get(series).cloned().unwrap_or_default();
        let meta = match rule {
            Some(r) => discovered.merged(&r.meta),
            None => discovered,
        };
        let spec = auto_file_spec(template, series, rel_path, &meta);
        Some(self.with_kinds_on_disk(spec))
    }

    /// The RRD thread found that the file of `file` holds these DS as
    /// another kind than its spec (a meter's file made as a gauge before
    /// its family was known as a counter): from now on they are written
    /// as the file holds them (a gauge's readings held over silent steps;
    /// the file's bounds). The file's path, if its spec changed.
    pub fn keep_kinds_on_disk(
        &mut self,
        file: FileId,
        kinds: crate::rrd::DsKinds,
    ) -> Option<String> {
        let rel_path = self.files[file].spec.rel_path.clone();
        self.kinds_on_disk.insert(rel_path.clone(), kinds);
        let kept = self.with_kinds_on_disk((*self.files[file].spec).clone());
        if kept == *self.files[file].spec {
            return None;
        }
        self.files[file].respec(Arc::new(kept));
        Some(rel_path)
    }

    /// The kinds files hold on disk as the index said at start (a file
    /// this run has not written yet).
    pub fn know_kinds_on_disk(&mut self, kinds: HashMap<String, crate::rrd::DsKinds>) {
        self.kinds_on_disk = kinds;
    }

    /// `spec` with the kinds its file holds on disk, where known.
    fn with_kinds_on_disk(&self, mut spec: FileSpec) -> FileSpec {
        let Some(kinds) = self.kinds_on_disk.get(&spec.rel_path) else {
            return spec;
        };
        let template_hold = self
            .config
            .templates
            .iter()
            .find(|t| t.name == spec.template)
            .map(|t| t.hold);
        for d in &mut spec.ds {
            let Some((_, on_disk)) = kinds.iter().find(|(name, _)| *name == d.name) else {
                continue;
            };
            if (d.ds_type == DsType::Gauge) == (*on_disk == DsType::Gauge) {
                continue;
            }
            d.ds_type = *on_disk;
            // The file's bounds are its own (`layout::keeping_kinds`).
            d.min = None;
            d.max = None;
            d.hold = on_disk.hold(template_hold.unwrap_or(d.hold));
        }
        spec
    }
}

/// How long an on/off state holds between reports, at least: such sensors
/// report on change, and check in every hour or so (zigbee devices: about
/// 50 minutes).
pub const STATE_HOLD: std::time::Duration = std::time::Duration::from_secs(2 * 3600);

/// A meter's heartbeat, at least: plugs and meters report their counter
/// every few minutes, some only when it moved (zigbee reporting), and a
/// counter's rise over a longer gap is still what was used in it.
pub const METER_HEARTBEAT_SECS: u32 = 6 * 3600;

/// The single-DS file an automatic series gets from its template and what
/// is known of it.
///
/// What the series' payload family says (`families`) comes last: the
/// template's unit, discovery and rules all beat it. An on/off state keeps
/// each step's maximum, so that a detection shorter than a step is not
/// averaged away (a 20 s motion in a 60 s step is a 1, not 0.33), and
/// holds its state at least [`STATE_HOLD`].
pub(super) fn auto_file_spec(
    t: &Template,
    series: &str,
    rel_path: String,
    meta: &SeriesMeta,
) -> FileSpec {
    let mut family = SeriesMeta::from_family(crate::families::known(series));
    if t.ds_type != DsType::Gauge {
        // A template that chose a kind of counter keeps it (and its bounds).
        family.ds_type = None;
        family.min = None;
    }
    let unit = meta
        .unit
        .clone()
        .or_else(|| t.unit.clone())
        .or_else(|| family.unit.clone());
    let meta = family.merged(meta);
    let about = meta.about();
    let ds_type = meta.ds_type.unwrap_or(t.ds_type);
    // A meter's counter: a reading hours apart still counts what was used
    // between (spread evenly), and one absurd reading is stored unknown.
    let meter = ds_type != DsType::Gauge && unit.as_deref().is_some_and(energy::is_counted_unit);
    let heartbeat_secs = if meter {
        t.heartbeat_secs.max(METER_HEARTBEAT_SECS)
    } else {
        t.heartbeat_secs
    };
    let max = meta.max.or(t.max).or_else(|| {
        meter
            .then(|| unit.as_deref().and_then(energy::counter_max))
            .flatten()
    });
    FileSpec {
        rel_path,
        template: t.name.clone(),
        step_secs: t.step_secs,
        ds: vec![DsSpec {
            name: "value".into(),
            series: series.to_owned(),
            ds_type,
            heartbeat_secs,
            min: meta.min.or(t.min),
            max,
            aggregate: if about.binary {
                Aggregate::Max
            } else {
                t.aggregate
            },
            hold: ds_type.hold(meta.hold.unwrap_or(if about.binary {
                t.hold.max(STATE_HOLD)
            } else {
                t.hold
            })),
            label: meta.label.clone(),
            unit,
            renamed_from: None,
            about,
        }],
        rras: t.rras.clone(),
    }
}
