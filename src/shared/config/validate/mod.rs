//! Raw sections → runtime [`Config`]: checks every value, derives librrd
//! units (seconds, steps per row, row counts), and reports each problem with
//! its key instead of stopping at the first. The small sections are here;
//! `mqtt.rs`, `broker.rs`, `templates.rs` and `sections.rs` (files, rules,
//! dashboards, web) the larger ones.

use std::path::Path;
use std::time::Duration;

use super::raw::{RawCache, RawClock, RawEnergy, RawJournal, RawLimits, RawSync, RawTrust};
use super::{
    CacheConfig, ClockConfig, Config, EnergyConfig, JournalConfig, KeyError, Limits, Sections,
    SyncPolicy,
};

mod broker;
mod dashboards;
mod mqtt;
mod poll;
mod sections;
mod templates;

use self::broker::embedded_broker;
use self::mqtt::mqtt;
use self::sections::{files, rules, web};
use self::templates::templates;

/// One job, checked exactly as a `[[poll]]` is.
pub(crate) fn poll_job(raw: &super::poll::RawPoll) -> Result<super::poll::PollJob, Vec<KeyError>> {
    let mut errors = Vec::new();
    match poll::poll(raw, "poll", &mut Errors(&mut errors)) {
        Some(job) if errors.is_empty() => Ok(job),
        _ => Err(errors),
    }
}

/// Jobs made in the browser joined to `config`: each checked as a
/// `[[poll]]`, its template first among the templates (a poll job's files
/// take its interval as their step, whatever catch-all the file has). A
/// job that fails, or whose name or template the config has, is left out.
pub(crate) fn browser_jobs(
    config: &mut super::Config,
    stored: &[super::poll::RawPoll],
    errors: &mut Vec<KeyError>,
) {
    let mut e = Errors(errors);
    let mut added = Vec::new();
    for (i, raw) in stored.iter().enumerate() {
        let key = format!("jobs.json[{i}]");
        let Some(mut job) = poll::poll(raw, &key, &mut e) else {
            continue;
        };
        if config.polls.iter().any(|j| j.name == job.name) {
            e.push(
                format!("{key}.name"),
                format!("job {:?} exists already", job.name),
            );
            continue;
        }
        let raw_template =
            super::raw::RawTemplate::for_poll(job.template_name(), &job.prefix, job.interval);
        let Some(template) = templates::template(&raw_template, &key, &mut e) else {
            continue;
        };
        if config.templates.iter().any(|t| t.name == template.name) {
            e.push(
                format!("{key}.name"),
                format!("template {:?} exists already", template.name),
            );
            continue;
        }
        job.origin = super::poll::Origin::Browser;
        added.push(template);
        config.polls.push(job);
    }
    config.templates.splice(0..0, added);
}

/// One dashboard made in the browser, checked exactly as a `[[dashboard]]`
/// is (`groups`: the `[[web.groups]]` it may be shared with).
pub(crate) fn dashboard(
    raw: &super::raw::RawDashboard,
    groups: &[&str],
) -> Result<super::Dashboard, Vec<KeyError>> {
    let mut errors = Vec::new();
    let mut found = dashboards::dashboards(&[Some(raw.clone())], groups, &mut Errors(&mut errors));
    match found.pop() {
        Some(d) if errors.is_empty() => Ok(d),
        _ => Err(errors),
    }
}

pub(super) struct Errors<'a>(pub(super) &'a mut Vec<KeyError>);

impl Errors<'_> {
    pub(super) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(KeyError {
            key: key.into(),
            message: message.into(),
        });
    }
}

/// Every section, checked. Problems go to `errors`, all of them (the
/// caller refuses the config if there are any); the config returned then
/// holds placeholders where values were wrong.
pub(crate) fn validate(s: Sections, errors: &mut Vec<KeyError>) -> Config {
    let mut e = Errors(errors);
    let data_dir = s.top.data_dir;
    if data_dir.as_os_str().is_empty() {
        e.push("data_dir", "must not be empty");
    }
    if data_dir.to_string_lossy().contains(':') {
        e.push(
            "data_dir",
            "must not contain ':' (librrd graph definitions split on it)",
        );
    }
    if s.top.shutdown_timeout.is_zero() || s.top.shutdown_timeout > HOUR {
        e.push("shutdown_timeout", "must be between 1s and 1h");
    }
    let (mut mqtt, embedded) = mqtt(&s.mqtt, &mut e);
    let embedded_broker = embedded.then(|| embedded_broker(&s.embedded_broker, &mut e));
    if let Some(b) = &embedded_broker {
        mqtt.host = b.listen.ip().to_string();
        mqtt.port = b.listen.port();
    }
    let cache = cache(&s.cache, &mut e);
    let journal = s
        .journal
        .enabled
        .then(|| journal(&s.journal, &cache, &data_dir, &mut e));
    let clock = clock(&s.clock, &mut e);
    let energy = energy(&s.energy, &mut e);
    let limits = limits(&s.limits, &mut e);
    let polls = poll::polls(&s.polls, &mut e);
    let templates = templates(&s.templates, &polls, &mut e);
    let files = files(&s.files, &templates, &mut e);
    let rules = rules(&s.rules, &templates, &mut e);
    let dashboards = {
        let groups: Vec<&str> = s.web.groups.iter().map(|g| g.name.as_str()).collect();
        dashboards::dashboards(&s.dashboards, &groups, &mut e)
    };
    let dashboard_rules = dashboards::dashboard_rules(&s.dashboard_rules, &mut e);
    let web = web(&s.web, &mut e);

    Config {
        data_dir,
        shutdown_timeout: s.top.shutdown_timeout,
        mqtt,
        embedded_broker,
        cache,
        journal,
        clock,
        energy,
        limits,
        web,
        templates,
        files,
        rules,
        dashboards,
        dashboard_rules,
        polls,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

fn energy(raw: &RawEnergy, e: &mut Errors) -> EnergyConfig {
    use crate::energy::{Tariff, TariffPeriod, covers_the_day};
    let minute = |key: String, text: &str, e: &mut Errors| {
        let parsed = chrono::NaiveTime::parse_from_str(text, "%H:%M").ok();
        if parsed.is_none() {
            e.push(key, format!("{text:?} is not a local time of day (HH:MM)"));
        }
        parsed.map(|t| chrono::Timelike::hour(&t) * 60 + chrono::Timelike::minute(&t))
    };
    let mut tariffs = Vec::new();
    for (i, t) in raw.tariff.iter().enumerate() {
        let key = |field: &str| format!("energy.tariff[{i}].{field}");
        if !t.price.is_finite() || t.price < 0.0 {
            e.push(key("price"), "must be a price of 0 or more");
        }
        if !crate::energy::is_price_unit(&t.unit) {
            e.push(
                key("unit"),
                format!(
                    "{:?} is not a unit meters are priced in (kWh, m³, ft³, gal)",
                    t.unit
                ),
            );
        }
        let period = match (&t.from, &t.to) {
            (None, None) => None,
            (Some(from), Some(to)) => {
                match (minute(key("from"), from, e), minute(key("to"), to, e)) {
                    (Some(from_min), Some(to_min)) if from_min == to_min => {
                        e.push(
                            key("to"),
                            "must differ from `from` (leave both out for all day)",
                        );
                        None
                    }
                    (Some(from_min), Some(to_min)) => Some(TariffPeriod { from_min, to_min }),
                    _ => None,
                }
            }
            _ => {
                e.push(
                    key("from"),
                    "`from` and `to` go together (leave both out for all day)",
                );
                None
            }
        };
        tariffs.push(Tariff {
            name: t
                .name
                .clone()
                .unwrap_or_else(|| format!("tariff {}", i + 1)),
            unit: t.unit.clone(),
            price: t.price,
            period,
        });
    }
    let mut units: Vec<&str> = tariffs.iter().map(|t| t.unit.as_str()).collect();
    units.sort_unstable();
    units.dedup();
    for unit in units {
        let of_unit: Vec<&Tariff> = tariffs.iter().filter(|t| t.unit == unit).collect();
        if of_unit.iter().filter(|t| t.period.is_none()).count() > 1 {
            e.push("energy.tariff", format!("two all-day prices per {unit}"));
        }
        if !covers_the_day(&of_unit) {
            e.push(
                "energy.tariff",
                format!("the prices per {unit} leave hours of the day without a price: add one without `from` and `to`"),
            );
        }
    }
    EnergyConfig {
        currency: raw.currency.clone(),
        tariffs,
    }
}

fn clock(raw: &RawClock, e: &mut Errors) -> ClockConfig {
    use crate::clock::TrustPolicy;
    if !(Duration::from_secs(10)..=7 * DAY).contains(&raw.max_wait) {
        e.push("clock.max_wait", "must be between 10s and 7d");
    }
    ClockConfig {
        trust: match raw.trust {
            RawTrust::Auto => TrustPolicy::Auto,
            RawTrust::Always => TrustPolicy::Always,
            RawTrust::WaitForSync => TrustPolicy::WaitForSync,
        },
        evidence: crate::clock::EvidenceSources {
            sync_flag: raw.sync_flag.clone(),
            sync_services: raw.sync_services.clone(),
            kernel_status: raw.kernel_status,
        },
        max_wait: raw.max_wait,
    }
}
const DAY: Duration = Duration::from_secs(86_400);

fn cache(raw: &RawCache, e: &mut Errors) -> CacheConfig {
    let cache = CacheConfig {
        flush_after: raw.flush_after,
        flush_jitter: raw.flush_jitter,
        stats_every: raw.stats_every,
        snapshot_every: raw.snapshot_every,
        dead_after: raw.dead_after,
        apply_layout_changes: raw.apply_layout_changes,
    };
    // Bounded so that millisecond arithmetic on them cannot overflow.
    for (key, value, max) in [
        ("cache.flush_after", cache.flush_after, 7 * DAY),
        ("cache.flush_jitter", cache.flush_jitter, DAY),
        ("cache.stats_every", cache.stats_every, DAY),
        ("cache.snapshot_every", cache.snapshot_every, DAY),
        ("cache.dead_after", cache.dead_after, 3650 * DAY),
    ] {
        if value > max {
            e.push(
                key,
                format!("must not exceed {}", humantime::format_duration(max)),
            );
        }
    }
    if cache.stats_every.is_zero() {
        e.push("cache.stats_every", "must be more than 0s");
    }
    cache
}

fn journal(
    raw: &RawJournal,
    cache: &CacheConfig,
    data_dir: &Path,
    e: &mut Errors,
) -> JournalConfig {
    if cache.snapshot_every.is_zero() {
        e.push(
            "journal.enabled",
            "the journal needs snapshots (cache.snapshot_every) to be truncated",
        );
    }
    let sync = match raw.sync {
        RawSync::Always => SyncPolicy::Always,
        RawSync::Never => SyncPolicy::Never,
        RawSync::Interval => {
            if !(Duration::from_millis(10)..=HOUR).contains(&raw.sync_every) {
                e.push("journal.sync_every", "must be between 10ms and 1h");
            }
            SyncPolicy::Interval(raw.sync_every)
        }
    };
    JournalConfig {
        dir: data_dir.join("journal"),
        sync,
    }
}

fn limits(raw: &RawLimits, e: &mut Errors) -> Limits {
    let limits = Limits {
        max_payload_bytes: raw.max_payload_bytes,
        max_json_leaves: raw.max_json_leaves,
        max_json_depth: raw.max_json_depth,
        max_series: raw.max_series,
        max_future: raw.max_future,
    };
    if !(1..=(256 << 20)).contains(&limits.max_payload_bytes) {
        e.push(
            "limits.max_payload_bytes",
            "must be between 1 and 268435456",
        );
    }
    if !(1..=64).contains(&limits.max_json_depth) {
        e.push("limits.max_json_depth", "must be between 1 and 64");
    }
    if limits.max_json_leaves == 0 {
        e.push("limits.max_json_leaves", "must be at least 1");
    }
    if limits.max_series == 0 {
        e.push("limits.max_series", "must be at least 1");
    }
    if limits.max_future > DAY {
        e.push(
            "limits.max_future",
            "must be at most 1d: a sample that far ahead would lock its file for as long",
        );
    }
    limits
}

fn whole_secs(d: Duration, key: &str, e: &mut Errors) -> u64 {
    if d.subsec_nanos() != 0 {
        e.push(key, "must be a whole number of seconds");
    }
    d.as_secs()
}

/// librrd DS names: 1 to 19 of `[A-Za-z0-9_]`.
pub fn is_valid_ds_name(name: &str) -> bool {
    (1..=19).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_names() {
        assert!(is_valid_ds_name("value"));
        assert!(is_valid_ds_name("a234567890123456789"));
        assert!(!is_valid_ds_name("a2345678901234567890"));
        assert!(!is_valid_ds_name("bad-name"));
        assert!(!is_valid_ds_name(""));
    }
}
