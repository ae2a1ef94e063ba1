//! The configuration as written in TOML: plain serde structs, every field
//! optional with the default the shipped `config/datalog-rrd.toml` shows.
//!
//! Nothing is checked here beyond types; `validate` turns these into the
//! runtime form and reports every problem at once.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::model::{Aggregate, Cf, DsType};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawTop {
    pub data_dir: PathBuf,
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for RawTop {
    fn default() -> Self {
        RawTop {
            data_dir: PathBuf::from("rrd"),
            shutdown_timeout: secs(20),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawMqtt {
    pub broker: String,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub topics: Vec<String>,
    pub exclude: Vec<String>,
    pub status_topic: String,
    pub events_topic: String,
    pub discovery: bool,
    pub clean_session: bool,
    pub qos: u8,
    #[serde(with = "humantime_serde")]
    pub keep_alive: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_min: Duration,
    #[serde(with = "humantime_serde")]
    pub reconnect_max: Duration,
}

impl Default for RawMqtt {
    fn default() -> Self {
        RawMqtt {
            broker: "embedded".into(),
            client_id: "datalog-rrd".into(),
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            topics: vec!["#".into()],
            exclude: vec!["$SYS/#".into(), "homeassistant/#".into()],
            status_topic: "datalog-rrd/status".into(),
            events_topic: "datalog-rrd/events".into(),
            discovery: true,
            clean_session: false,
            qos: 1,
            keep_alive: secs(30),
            reconnect_min: secs(1),
            reconnect_max: secs(60),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawEmbeddedBroker {
    pub listen: String,
    pub max_segment_bytes: usize,
    pub users: Vec<RawBrokerUser>,
    pub allow_anonymous: bool,
    pub max_connections: usize,
    pub max_inflight: usize,
    /// PUBLISH packets a connection may send per second, and in a burst.
    pub max_publish_rate: u32,
    pub publish_burst: u32,
    /// `mqtts`: a second listener with TLS, and its certificate and key.
    pub tls_listen: Option<String>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl Default for RawEmbeddedBroker {
    fn default() -> Self {
        RawEmbeddedBroker {
            listen: "127.0.0.1:1883".into(),
            max_segment_bytes: 1 << 20,
            users: Vec::new(),
            allow_anonymous: false,
            max_connections: 100,
            max_inflight: 100,
            max_publish_rate: 100,
            publish_burst: 1000,
            tls_listen: None,
            cert_file: None,
            key_file: None,
        }
    }
}

/// `[[embedded_broker.users]]`: a device account.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBrokerUser {
    pub name: String,
    pub password_hash: String,
    /// MQTT topic filters the account may publish to (`%u`: its name);
    /// absent: any topic.
    pub publish: Option<Vec<String>>,
    /// MQTT topic filters the account may subscribe within (`%u`: its
    /// name); absent: any, every other device's values included.
    pub subscribe: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCache {
    #[serde(with = "humantime_serde")]
    pub flush_after: Duration,
    #[serde(with = "humantime_serde")]
    pub flush_jitter: Duration,
    #[serde(with = "humantime_serde")]
    pub stats_every: Duration,
    #[serde(with = "humantime_serde")]
    pub snapshot_every: Duration,
    #[serde(with = "humantime_serde")]
    pub dead_after: Duration,
    pub apply_layout_changes: bool,
}

impl Default for RawCache {
    fn default() -> Self {
        RawCache {
            flush_after: secs(300),
            flush_jitter: secs(30),
            stats_every: secs(300),
            snapshot_every: secs(300),
            dead_after: secs(86_400),
            apply_layout_changes: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RawSync {
    Always,
    Interval,
    Never,
}

/// `[energy]`: how meters' consumption is priced.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawEnergy {
    pub currency: String,
    pub tariff: Vec<RawTariff>,
}

impl Default for RawEnergy {
    fn default() -> Self {
        RawEnergy {
            currency: "€".into(),
            tariff: Vec::new(),
        }
    }
}

/// `[[energy.tariff]]`: a price per unit, all day or from a local time of
/// day to another.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTariff {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "default_tariff_unit")]
    pub unit: String,
    pub price: f64,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

fn default_tariff_unit() -> String {
    "kWh".into()
}

/// `[clock]`: whether the system clock can be trusted (`clock::Trust`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawClock {
    pub trust: RawTrust,
    pub sync_flag: PathBuf,
    pub sync_services: Vec<PathBuf>,
    pub kernel_status: bool,
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RawTrust {
    Auto,
    Always,
    WaitForSync,
}

impl Default for RawClock {
    fn default() -> Self {
        RawClock {
            trust: RawTrust::Auto,
            sync_flag: "/run/systemd/timesync/synchronized".into(),
            sync_services: vec![
                "/run/systemd/timesync".into(),
                "/run/chrony".into(),
                "/run/ntpd.pid".into(),
            ],
            kernel_status: true,
            max_wait: secs(3600),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawJournal {
    pub enabled: bool,
    pub sync: RawSync,
    #[serde(with = "humantime_serde")]
    pub sync_every: Duration,
}

impl Default for RawJournal {
    fn default() -> Self {
        RawJournal {
            enabled: true,
            sync: RawSync::Interval,
            sync_every: secs(300),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawLimits {
    pub max_payload_bytes: usize,
    pub max_json_leaves: usize,
    pub max_json_depth: usize,
    pub max_series: usize,
    #[serde(with = "humantime_serde")]
    pub max_future: Duration,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_payload_bytes: 65536,
            max_json_leaves: 256,
            max_json_depth: 16,
            max_series: 10_000,
            max_future: secs(300),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawWeb {
    pub enabled: bool,
    pub listen: String,
    pub allow_public_without_auth: bool,
    pub dygraphs_dir: PathBuf,
    pub render_queue: usize,
    /// The zone pages show times in (`Europe/Berlin`); absent: the system's.
    pub time_zone: Option<String>,
    pub users: Vec<RawWebUser>,
    pub groups: Vec<RawWebGroup>,
    pub bots: Vec<RawBot>,
}

/// `[[web.bots]]`: a script or device that pushes values over HTTP.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBot {
    pub name: String,
    /// The argon2 hash of its token's secret (`datalog-rrd hash-password`).
    pub token_hash: String,
    /// Series (MQTT topic filters, `%u`: its name) it may push; absent:
    /// any.
    pub publish: Option<Vec<String>>,
}

impl Default for RawWeb {
    fn default() -> Self {
        RawWeb {
            enabled: true,
            listen: "127.0.0.1:8088".into(),
            allow_public_without_auth: false,
            dygraphs_dir: PathBuf::from("/usr/share/javascript/dygraphs"),
            render_queue: 16,
            time_zone: None,
            users: Vec::new(),
            groups: Vec::new(),
            bots: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebUser {
    pub name: String,
    pub password_hash: String,
    /// `viewer`, `editor` or `admin`; absent: `admin` (users from before
    /// roles existed keep seeing everything).
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebGroup {
    pub name: String,
    /// MQTT topic filters on series names.
    pub series: Vec<String>,
}

/// `cf` may be one function or a list: one archive is made for each.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: Clone> OneOrMany<T> {
    pub fn to_vec(&self) -> Vec<T> {
        match self {
            OneOrMany::One(t) => vec![t.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRra {
    pub cf: OneOrMany<Cf>,
    #[serde(with = "humantime_serde")]
    pub every: Duration,
    #[serde(with = "humantime_serde")]
    pub keep: Duration,
    #[serde(default = "default_xff")]
    pub xff: f64,
}

fn default_xff() -> f64 {
    0.5
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTemplate {
    pub name: String,
    #[serde(default = "match_all")]
    pub topics: Vec<String>,
    #[serde(with = "humantime_serde", default = "default_step")]
    pub step: Duration,
    #[serde(default = "default_ds_type")]
    pub ds_type: DsType,
    #[serde(with = "humantime_serde", default)]
    pub heartbeat: Option<Duration>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub aggregate: Aggregate,
    #[serde(with = "humantime_serde", default = "default_hold")]
    pub hold: Duration,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default = "default_rras")]
    pub rra: Vec<RawRra>,
}

fn match_all() -> Vec<String> {
    vec!["#".into()]
}
fn default_step() -> Duration {
    secs(60)
}
fn default_ds_type() -> DsType {
    DsType::Gauge
}
fn default_hold() -> Duration {
    secs(600)
}

/// Day, week, two months and five years: the day at each step as it was
/// (the average, minimum and maximum of one step are the same value, so
/// one archive), the others with average, min and max. About 142 KB per
/// single-DS file at a 60 s step, and at every flush two archives fewer to
/// write (on an SD card, ~15% fewer bytes for the RRD updates).
fn default_rras() -> Vec<RawRra> {
    let all = OneOrMany::Many(vec![Cf::Average, Cf::Min, Cf::Max]);
    let day = 86_400;
    // Five of humantime's years (365.25 days), as "5y" in the shipped file.
    [
        (60, day),
        (300, 7 * day),
        (3600, 62 * day),
        (day, 5 * 31_557_600),
    ]
    .into_iter()
    .map(|(every, keep)| RawRra {
        cf: if every == 60 {
            OneOrMany::One(Cf::Average)
        } else {
            all.clone()
        },
        every: secs(every),
        keep: secs(keep),
        xff: default_xff(),
    })
    .collect()
}

impl RawTemplate {
    /// The layout of a poll job's files: one row per poll (step = the
    /// job's interval, a missed poll is a gap, not a held value), then
    /// Munin's own archives (30 minutes for 9 days, 2 hours for 45 days, a
    /// day for 450 days), so that a Munin user finds the reach they know.
    pub fn for_poll(name: String, prefix: &str, interval: Duration) -> Self {
        let day = 86_400;
        let all = OneOrMany::Many(vec![Cf::Average, Cf::Min, Cf::Max]);
        let rra = std::iter::once(RawRra {
            cf: OneOrMany::One(Cf::Average),
            every: interval,
            keep: secs(2 * day),
            xff: default_xff(),
        })
        .chain(
            [(1800, 9 * day), (7200, 45 * day), (day, 450 * day)]
                .into_iter()
                .map(|(every, keep)| RawRra {
                    cf: all.clone(),
                    every: secs(every),
                    keep: secs(keep),
                    xff: default_xff(),
                }),
        )
        .collect();
        RawTemplate {
            name,
            topics: vec![format!("{prefix}/#")],
            step: interval,
            ds_type: default_ds_type(),
            heartbeat: Some(interval * 2),
            min: None,
            max: None,
            aggregate: Aggregate::Last,
            hold: Duration::ZERO,
            unit: None,
            rra,
        }
    }

    /// The template used when a config declares none.
    pub fn builtin_default() -> Self {
        RawTemplate {
            name: "default".into(),
            topics: match_all(),
            step: default_step(),
            ds_type: default_ds_type(),
            heartbeat: Some(secs(120)),
            min: None,
            max: None,
            aggregate: Aggregate::Last,
            hold: default_hold(),
            unit: None,
            rra: default_rras(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFileDs {
    pub name: String,
    pub series: String,
    #[serde(default)]
    pub ds_type: Option<DsType>,
    #[serde(default)]
    pub aggregate: Option<Aggregate>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    /// The DS's name in the file until now: `migrate` renames it in place.
    #[serde(default)]
    pub renamed_from: Option<String>,
}

/// `[[rule]]`: what to do with the series matching `topics`, overriding
/// what discovery or the payload says.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub topics: Vec<String>,
    #[serde(default)]
    pub ignore: bool,
    #[serde(default)]
    pub rename: Option<String>,
    #[serde(default)]
    pub scale: Option<f64>,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub ds_type: Option<DsType>,
    /// Home Assistant's device class ("occupancy", "door", "power"…): how
    /// an on/off state is said.
    #[serde(default)]
    pub device_class: Option<String>,
    /// An on/off state: the step keeps its maximum, the web UI draws a band.
    #[serde(default)]
    pub binary: Option<bool>,
    #[serde(default)]
    pub template: Option<String>,
    /// With `rename`: the old series' file moves to the new name at start.
    #[serde(default)]
    pub move_history: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub path: String,
    #[serde(default = "default_template_name")]
    pub template: String,
    pub ds: Vec<RawFileDs>,
}

fn default_template_name() -> String {
    "default".into()
}

/// `[[dashboard]]`: a named page of views.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawDashboard {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    /// `day`, `week`, `month` or `year`.
    #[serde(default = "default_range")]
    pub range: String,
    #[serde(default)]
    pub view: Vec<RawView>,
    /// The web groups that see it (absent: every user).
    #[serde(default)]
    pub groups: Vec<String>,
}

fn default_range() -> String {
    "day".into()
}

/// `[[dashboard.view]]`: one chart of series from any files.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawView {
    pub title: String,
    pub series: Vec<RawViewSeries>,
    #[serde(default)]
    pub warning: Option<f64>,
    #[serde(default)]
    pub critical: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawViewSeries {
    pub series: String,
    #[serde(default)]
    pub label: Option<String>,
    /// `#rrggbb`.
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub draw: crate::model::Draw,
    #[serde(default)]
    pub cf: Option<crate::model::Cf>,
}

/// `[[dashboard_rule]]`: one dashboard per value of a topic level.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDashboardRule {
    pub name: String,
    /// An MQTT filter over series names with one named capture, `+room`.
    pub series: String,
    #[serde(default)]
    pub view_by: ViewBy,
}

/// How a generated dashboard splits its series into views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ViewBy {
    /// The series name's last level: temperature, humidity…
    #[default]
    Kind,
    /// The series' unit.
    Unit,
}

/// `[[poll]]`: a job that fetches values on a schedule (and, stored in
/// `jobs.json`, one made in the browser: hence `Serialize`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawPoll {
    pub name: String,
    pub kind: super::poll::PollKind,
    pub target: String,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub interval: Option<Duration>,
    #[serde(
        default,
        with = "humantime_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// Prometheus: label matchers, `label = "regex"`, all of which a
    /// sample's labels must match.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password itself: what a job made in the browser keeps (in
    /// `jobs.json`, mode 0600). In the file, prefer `password_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Prometheus over https: the CA that signed the exporter's
    /// certificate (a self-signed one at home); absent: the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Ping: echo requests per round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u32>,
    /// SNMP v2c: the community (`public` when absent and no `username`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// SNMP: OIDs to GET, dotted (`1.3.6.1.2.1.1.3.0`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oids: Vec<String>,
}
