//! A new configuration for a running cache. Files already on disk keep the
//! layout they were created with (a step or DS cannot change under
//! librrd's feet) unless `cache.apply_layout_changes` asks otherwise: then
//! a new step, archives or DS settings are taken now, the cached rows
//! follow, and the RRD thread rebuilds the file at its next write. What
//! only the cache uses (`aggregate`, `hold`) takes effect at once; new
//! templates and files apply to series seen from now on.

use std::sync::Arc;

use super::{Cache, Slot};
use crate::config::Config;
use crate::model::FileSpec;

/// What a reload did.
#[derive(Debug, Default, PartialEq)]
pub struct ReloadReport {
    /// Files declared in config that the cache did not have.
    pub added: usize,
    /// Files whose cache-only settings were updated.
    pub updated: usize,
    /// Files (or described series) left as they are, and why.
    pub kept: Vec<Why>,
    /// Files whose layout changes at their next write, and how.
    pub relayout: Vec<Why>,
}

/// A file or series named in a report, with the reason in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Why {
    pub name: String,
    pub reason: String,
}

impl Cache {
    pub fn reload(&mut self, config: Arc<Config>) -> ReloadReport {
        let mut report = ReloadReport::default();
        // Cache settings first: they decide what happens to layouts.
        let mut with_new_cache = (*self.config).clone();
        with_new_cache.cache = config.cache.clone();
        self.config = Arc::new(with_new_cache);
        self.sched.set_flush_after(config.cache.flush_after);
        for spec in &config.files {
            match self.by_path.get(&spec.rel_path) {
                Some(&id) => self.update_spec(id, Arc::new(spec.clone()), &mut report),
                None => {
                    if let Some(taken) =
                        spec.ds.iter().find(|d| self.series.contains_key(&d.series))
                    {
                        let why = format!(
                            "series {:?} already goes to another file until a restart",
                            taken.series
                        );
                        report.kept.push(Why {
                            name: spec.rel_path.clone(),
                            reason: why,
                        });
                        continue;
                    }
                    let id = self.add_file(Arc::new(spec.clone()), true);
                    for (ds, d) in spec.ds.iter().enumerate() {
                        self.series.insert(d.series.clone(), Slot { file: id, ds });
                    }
                    report.added += 1;
                }
            }
        }
        for id in 0..self.files.len() {
            let spec = &self.files[id].spec;
            if self.pinned[id] || spec.ds.len() != 1 {
                continue;
            }
            let series = spec.ds[0].series.clone();
            if let Some(wanted) = self.wanted_spec(&config, &series, spec.rel_path.clone()) {
                self.update_spec(id, Arc::new(wanted), &mut report);
            }
        }
        self.config = config;
        report
    }

    /// Takes `wanted` for file `id` if its layout on disk is the same.
    pub(super) fn update_spec(
        &mut self,
        id: usize,
        wanted: Arc<FileSpec>,
        report: &mut ReloadReport,
    ) {
        let current = &self.files[id].spec;
        if **current == *wanted {
            return;
        }
        if let Some(difference) = layout_difference(current, &wanted) {
            // The same DS, in the same order: rows keep their shape.
            let same_ds = current.ds.len() == wanted.ds.len()
                && current
                    .ds
                    .iter()
                    .zip(&wanted.ds)
                    .all(|(a, b)| a.name == b.name);
            let apply = self.config.cache.apply_layout_changes;
            if apply && same_ds {
                report.relayout.push(Why {
                    name: current.rel_path.clone(),
                    reason: difference,
                });
                self.files[id].respec(wanted);
            } else {
                let why = if apply {
                    format!(
                        "{difference}; DS added, removed or renamed need `datalog-rrd migrate`, the daemon stopped"
                    )
                } else {
                    format!(
                        "{difference}; `datalog-rrd migrate` (daemon stopped) or cache.apply_layout_changes applies it"
                    )
                };
                report.kept.push(Why {
                    name: current.rel_path.clone(),
                    reason: why,
                });
            }
            return;
        }
        self.files[id].spec = wanted;
        report.updated += 1;
    }
}

/// What differs between two layouts of one file, as librrd sees it.
fn layout_difference(current: &FileSpec, wanted: &FileSpec) -> Option<String> {
    if current.step_secs != wanted.step_secs {
        return Some(format!(
            "its step is {}s, the configuration now says {}s",
            current.step_secs, wanted.step_secs
        ));
    }
    let ds = |s: &FileSpec| s.ds.iter().map(|d| d.to_rrd_arg()).collect::<Vec<_>>();
    if ds(current) != ds(wanted) {
        return Some(format!(
            "its data sources are {:?}, the configuration now says {:?}",
            ds(current),
            ds(wanted)
        ));
    }
    if current.rras != wanted.rras {
        return Some("its archives (RRA) differ from the configuration's".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Aggregate, Sample};

    const T0_MS: i64 = 1_763_633_700_000;

    fn config(extra: &str) -> Arc<Config> {
        Arc::new(Config::parse(extra, "t").unwrap())
    }

    fn sample(series: &str) -> Sample {
        Sample {
            series: series.into(),
            time_ms: T0_MS,
            value: 1.0,
        }
    }

    #[test]
    fn new_templates_and_files_apply_and_existing_layouts_stay() {
        let mut cache = Cache::new(config(""));
        cache.ingest(vec![sample("fast/old"), sample("slow/x")], T0_MS);
        let new = config(
            r#"
            [[template]]
            name = "fast"
            topics = ["fast/#"]
            step = "10s"
            rra = [{ cf = "AVERAGE", every = "10s", keep = "1d" }]
            [[template]]
            name = "default"
            aggregate = "average"
            [[file]]
            path = "climate"
            ds = [{ name = "t", series = "z/t" }]
            "#,
        );
        let report = cache.reload(new);
        assert_eq!(report.added, 1);
        assert_eq!(report.updated, 1, "slow/x takes the new aggregate");
        assert_eq!(report.kept.len(), 1, "{:?}", report.kept);
        assert_eq!(report.kept[0].name, "fast/old");
        assert!(
            report.kept[0].reason.contains("step is 60s"),
            "{}",
            report.kept[0].reason
        );
        // Rows cached before the reload are all still there.
        assert_eq!(cache.pending_rows(), 2);
        let slow = cache.series["slow/x"].file;
        assert_eq!(cache.files[slow].spec.ds[0].aggregate, Aggregate::Average);
        // A new series gets the new template, the new file takes its series.
        cache.ingest(vec![sample("fast/new"), sample("z/t")], T0_MS);
        assert_eq!(cache.spec(cache.series["fast/new"].file).step_secs, 10);
        assert_eq!(cache.spec(cache.series["z/t"].file).rel_path, "climate");
    }
}
