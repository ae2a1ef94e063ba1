//! Which samples of an exposition a job keeps. node_exporter exposes
//! hundreds of series and a user wants a dozen: a profile picks the usual
//! ones, `include` adds by metric name, `exclude` removes, and `labels`
//! matchers constrain all of them.

use super::parse::{MetricType, PromSample};
use crate::config::poll::PollJob;

/// One rule of a profile: metric names, and label matchers all of which
/// must hold (`true`: the value matches; `false`: it does not).
struct ProfileRule {
    names: &'static str,
    labels: &'static [(&'static str, &'static str, bool)],
}

/// `node`: the health of the machine node_exporter runs on — load, CPU
/// time by mode, memory, the root file system, network traffic of real
/// interfaces, disk traffic, temperatures.
const NODE: &[ProfileRule] = &[
    ProfileRule {
        names: "node_load(1|5|15)",
        labels: &[],
    },
    ProfileRule {
        names: "node_cpu_seconds_total",
        labels: &[("mode", "user|system|iowait|idle", true)],
    },
    ProfileRule {
        names: "node_memory_(MemTotal|MemAvailable|SwapTotal|SwapFree)_bytes",
        labels: &[],
    },
    ProfileRule {
        names: "node_filesystem_(avail|size)_bytes",
        labels: &[("mountpoint", "/", true)],
    },
    ProfileRule {
        names: "node_network_(receive|transmit)_bytes_total",
        labels: &[("device", "lo|veth.*|docker.*|br-.*", false)],
    },
    ProfileRule {
        names: "node_disk_(read|written)_bytes_total",
        labels: &[],
    },
    ProfileRule {
        names: "node_(hwmon_temp|thermal_zone_temp)(_celsius)?",
        labels: &[],
    },
];

struct Compiled {
    names: regex::Regex,
    labels: Vec<(&'static str, regex::Regex, bool)>,
}

fn anchored(re: &str) -> regex::Regex {
    regex::Regex::new(&format!("^(?:{re})$")).expect("built-in patterns are valid")
}

/// A job's selection, compiled once per round.
pub struct Selector<'j> {
    job: &'j PollJob,
    profile: Vec<Compiled>,
}

impl<'j> Selector<'j> {
    pub fn for_job(job: &'j PollJob) -> Selector<'j> {
        let rules: &[ProfileRule] = match job.profile.as_deref() {
            Some("node") => NODE,
            _ => &[],
        };
        Selector {
            job,
            profile: rules
                .iter()
                .map(|r| Compiled {
                    names: anchored(r.names),
                    labels: r
                        .labels
                        .iter()
                        .map(|(l, re, want)| (*l, anchored(re), *want))
                        .collect(),
                })
                .collect(),
        }
    }

    pub fn keeps(&self, s: &PromSample) -> bool {
        let select = &self.job.select;
        let named = select.include.any_match(&s.name);
        let by_profile = self.profile.iter().any(|r| {
            r.names.is_match(&s.name)
                && r.labels
                    .iter()
                    .all(|(l, re, want)| re.is_match(label(s, l)) == *want)
        });
        let everything = self.profile.is_empty() && select.include.is_empty();
        // Buckets and quantiles only when named.
        let detail = matches!(s.kind, MetricType::Histogram | MetricType::Summary)
            && !(s.name.ends_with("_sum") || s.name.ends_with("_count"));
        (named || (!detail && (by_profile || everything)))
            && !select.exclude.any_match(&s.name)
            && self
                .job
                .labels
                .iter()
                .all(|(l, re)| re.any_match(label(s, l)))
    }
}

/// A label's value; a missing label is empty, as in PromQL.
fn label<'s>(s: &'s PromSample, name: &str) -> &'s str {
    s.labels
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v)
}
