//! Configuration: TOML text in, a validated [`Config`] out.
//!
//! Loading is two-staged (ripgrep's way): `raw` holds what the file says,
//! `validate` derives the runtime form and collects every problem, each
//! naming its key, so `check-config` shows them all at once. Each section is
//! deserialised on its own for the same reason: a typo in `[cache]` does not
//! hide one in `[mqtt]`.

pub mod browser_jobs;
pub mod poll;
mod raw;
mod sections;
mod validate;

pub use crate::clock::ClockConfig;
pub use crate::model::Draw;
pub use raw::{
    RawDashboard as StoredDashboard, RawView as StoredView, RawViewSeries as StoredViewSeries,
    ViewBy,
};

/// A dashboard made in the browser, checked exactly as a `[[dashboard]]`:
/// every problem with its key (`dashboard[0].view[1].title`…).
pub fn check_dashboard(
    stored: &StoredDashboard,
    groups: &[WebGroup],
) -> Result<Dashboard, Vec<KeyError>> {
    let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    validate::dashboard(stored, &names)
}
pub use validate::is_valid_ds_name;

/// A job as a `[[poll]]` of its own is checked: a job made in the
/// browser, before it is stored (every problem with its key,
/// `poll.interval`…).
pub fn check_poll(raw: &poll::RawPoll) -> Result<poll::PollJob, Vec<KeyError>> {
    validate::poll_job(raw)
}

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use self::sections::Sections;

use crate::model::{Aggregate, DsType, FileSpec, RraSpec, SeriesMeta};

/// The shipped default configuration, embedded in the binary.
pub const DEFAULT_CONFIG_TOML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/datalog-rrd.toml"
));

/// Validated configuration, as the daemon uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub shutdown_timeout: Duration,
    pub mqtt: MqttConfig,
    /// Present when `mqtt.broker = "embedded"`.
    pub embedded_broker: Option<EmbeddedBrokerConfig>,
    pub cache: CacheConfig,
    /// Present when the journal is enabled.
    pub journal: Option<JournalConfig>,
    pub clock: ClockConfig,
    /// Prices of what meters count (`[[energy.tariff]]`).
    pub energy: EnergyConfig,
    pub limits: Limits,
    /// Present when the web UI is enabled.
    pub web: Option<WebConfig>,
    pub templates: Vec<Template>,
    /// Multi-DS files declared in config.
    pub files: Vec<FileSpec>,
    /// Overrides for matching series, first match wins.
    pub rules: Vec<Rule>,
    /// Pages of views declared in config (`[[dashboard]]`).
    pub dashboards: Vec<Dashboard>,
    /// Dashboards made from the index by rules (`[[dashboard_rule]]`).
    pub dashboard_rules: Vec<DashboardRule>,
    /// Jobs that fetch values on a schedule (`[[poll]]`).
    pub polls: Vec<poll::PollJob>,
}

/// A validated `[[dashboard_rule]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardRule {
    pub name: String,
    /// The filter's levels; exactly one is `Capture`.
    pub levels: Vec<RuleLevel>,
    pub view_by: ViewBy,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleLevel {
    Exact(String),
    /// `+`: any one level.
    Any,
    /// `+name`: any one level, naming the dashboard.
    Capture,
    /// `#`: the rest.
    Rest,
}

impl DashboardRule {
    /// The captured level when `series` matches.
    pub fn capture<'s>(&self, series: &'s str) -> Option<&'s str> {
        let mut parts = series.split('/');
        let mut captured = None;
        for level in &self.levels {
            match level {
                RuleLevel::Rest => return captured,
                RuleLevel::Exact(want) => (parts.next()? == want).then_some(())?,
                RuleLevel::Any => {
                    parts.next()?;
                }
                RuleLevel::Capture => captured = Some(parts.next()?),
            }
        }
        parts.next().is_none().then_some(captured).flatten()
    }
}

/// A validated `[[dashboard]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dashboard {
    /// `[A-Za-z0-9_-]{1,64}`: its URL.
    pub name: String,
    pub title: String,
    /// `day`, `week`, `month` or `year`.
    pub range: String,
    pub views: Vec<View>,
    /// The web groups whose users see it; empty: every user. Either way a
    /// user sees only the series their groups allow.
    pub groups: Vec<String>,
}

/// One chart of a dashboard.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub title: String,
    pub series: Vec<ViewSeries>,
    /// Drawn as horizontal rules; the legend says when the last value
    /// crosses them.
    pub warning: Option<f64>,
    pub critical: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ViewSeries {
    /// A series name, found in the index at drawing time.
    pub series: String,
    pub label: Option<String>,
    pub color: Option<(u8, u8, u8)>,
    pub draw: Draw,
    pub cf: crate::model::Cf,
}

/// A validated `[[rule]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub topics: Vec<String>,
    /// Matching samples are dropped (counted as ignored).
    pub ignore: bool,
    /// The series name samples are stored under instead.
    pub rename: Option<String>,
    /// Values are multiplied by this (watt-minutes → Wh: 1/60).
    pub scale: Option<f64>,
    /// Template for the series' file instead of the first matching one.
    pub template: Option<String>,
    /// The renamed series' file moved to the new name at start
    /// (`Config::history_moves`, `rrd::move_histories`).
    pub move_history: bool,
    pub meta: SeriesMeta,
}

impl Rule {
    pub fn matches(&self, series: &str) -> bool {
        self.topics.iter().any(|f| rumqttc::matches(series, f))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsConfig>,
    pub client_id: String,
    pub credentials: Option<(String, String)>,
    pub topics: Vec<String>,
    pub exclude: Vec<String>,
    /// Where the daemon says `online`/`offline` (retained, with a last
    /// will); `None` when the config sets it to "".
    pub status_topic: Option<String>,
    /// Events (`{"text": …, "ts": …, "device": …}`) arrive here; drawn on
    /// graphs and charts.
    pub events_topic: Option<String>,
    /// Read Home Assistant discovery configs (`homeassistant/#` is then
    /// subscribed) and Homie attributes for series names, units, DS types.
    pub discovery: bool,
    /// `false`: the broker keeps the session (subscriptions and queued
    /// QoS 1 messages) while the daemon is away.
    pub clean_session: bool,
    pub qos: rumqttc::QoS,
    pub keep_alive: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TlsConfig {
    /// PEM file with the CA to trust; the system roots when absent.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedBrokerConfig {
    pub listen: SocketAddr,
    pub max_segment_bytes: usize,
    /// Device accounts. Empty: anyone may connect (loopback only, unless
    /// `allow_anonymous`).
    pub users: Vec<BrokerUser>,
    pub max_connections: usize,
    /// Unacknowledged QoS 1/2 messages a connection may have in flight.
    pub max_inflight: usize,
    /// PUBLISH packets a connection may send per second, after a burst.
    pub max_publish_rate: u32,
    pub publish_burst: u32,
    pub tls: Option<BrokerTls>,
}

/// `[[embedded_broker.users]]`: a device account.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerUser {
    pub name: String,
    /// argon2 PHC string.
    pub password_hash: String,
    /// Topic filters it may publish to, `%u` standing for its name; `None`:
    /// any topic.
    pub publish: Option<Vec<String>>,
    /// Topic filters it may subscribe within, `%u` standing for its name;
    /// `None`: any (it may read every other device's values).
    pub subscribe: Option<Vec<String>>,
}

/// The user name the daemon's own client connects to the embedded broker
/// with when the broker has users; its password is made at random for each
/// run. Not a name `[[embedded_broker.users]]` may take.
pub const BROKER_INTERNAL_USER: &str = "datalog-rrd";

/// The embedded broker's `mqtts` listener.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerTls {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnergyConfig {
    /// Said beside costs (`€`, `CHF`, `$`).
    pub currency: String,
    /// Every unit's tariffs cover the whole day.
    pub tariffs: Vec<crate::energy::Tariff>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub flush_after: Duration,
    pub flush_jitter: Duration,
    pub stats_every: Duration,
    /// Zero: no snapshots.
    pub snapshot_every: Duration,
    /// Zero: series are never forgotten.
    pub dead_after: Duration,
    /// A file whose step, archives, heartbeat, bounds or DS type the
    /// configuration changed is rebuilt (history kept) at its next write,
    /// by the RRD thread, instead of being reported and left alone.
    pub apply_layout_changes: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct JournalConfig {
    pub dir: PathBuf,
    pub sync: SyncPolicy,
}

/// When journal records are fsynced. A message is acknowledged once its
/// record is in the kernel (it survives the daemon being killed); the
/// policy bounds what a power cut can take.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SyncPolicy {
    /// Before every acknowledgement: nothing acknowledged is lost, slowly.
    Always,
    /// Every so often: a power cut loses at most that much.
    Interval(Duration),
    /// Left to the kernel (about 30 s on Linux).
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_payload_bytes: usize,
    pub max_json_leaves: usize,
    pub max_json_depth: usize,
    pub max_series: usize,
    /// Samples stamped later than this after their receive time are
    /// refused: one would move its file's last update into the future, and
    /// librrd then refuses every sample until that time comes.
    pub max_future: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebConfig {
    pub listen: SocketAddr,
    /// Empty: no authentication (then `listen` is loopback, or the config
    /// said `allow_public_without_auth`).
    pub users: Vec<WebUser>,
    /// Where Debian's libjs-dygraphs installed `dygraph.min.js`.
    pub dygraphs_dir: PathBuf,
    /// Graph and export requests that may wait for the RRD thread at once;
    /// more are answered 503.
    pub render_queue: usize,
    pub groups: Vec<WebGroup>,
    /// The zone pages, charts and human exports show times in: the
    /// configured one, else the system's when the config was read.
    pub time_zone: String,
    /// `[[web.bots]]`: who may push values to `/rrd/api/values`.
    pub bots: Vec<Bot>,
}

/// A validated `[[web.bots]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Bot {
    pub name: String,
    pub token_hash: String,
    /// Topic filters with `%u` already replaced by its name; `None`: any.
    pub publish: Option<Vec<String>>,
}

impl Bot {
    /// Whether it may push values of `series`.
    pub fn may_push(&self, series: &str) -> bool {
        self.publish
            .as_ref()
            .is_none_or(|filters| filters.iter().any(|f| rumqttc::matches(series, f)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebUser {
    pub name: String,
    /// A PHC string (`$argon2id$…`), as `datalog-rrd hash-password` prints.
    pub password_hash: String,
    pub role: Role,
    /// Names of `[[web.groups]]`: what a viewer or editor may see.
    pub groups: Vec<String>,
}

/// What a web user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads the series of their groups.
    Viewer,
    /// And makes dashboards and events.
    Editor,
    /// Reads everything, `/metrics` included.
    Admin,
}

/// `[[web.groups]]`: a name for a set of series, by MQTT topic filters.
#[derive(Debug, Clone, PartialEq)]
pub struct WebGroup {
    pub name: String,
    pub series: Vec<String>,
}

/// Layout given to automatic (single-DS) files whose series matches `topics`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    pub topics: Vec<String>,
    pub step_secs: u32,
    pub ds_type: DsType,
    pub heartbeat_secs: u32,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub aggregate: Aggregate,
    pub hold: Duration,
    pub unit: Option<String>,
    pub rras: std::sync::Arc<[RraSpec]>,
}

/// One problem found in a configuration, with the key it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyError {
    pub key: String,
    pub message: String,
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ConfigError {
    pub source_name: String,
    pub errors: Vec<KeyError>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        write!(
            f,
            "{}: {n} error{}",
            self.source_name,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {}: {}", e.key, e.message)?;
        }
        Ok(())
    }
}

impl Config {
    /// Where the cache snapshot lives.
    pub fn snapshot_path(&self) -> PathBuf {
        self.data_dir.join("datalog-rrd.snapshot")
    }

    /// What is allowed but probably not meant, each with its key: said by
    /// `check-config` and logged at start.
    pub fn warnings(&self) -> Vec<KeyError> {
        let mut warnings = Vec::new();
        if let Some(b) = &self.embedded_broker {
            let public = !b.listen.ip().is_loopback()
                || b.tls.as_ref().is_some_and(|t| !t.listen.ip().is_loopback());
            for (i, u) in b.users.iter().enumerate() {
                if public && u.subscribe.is_none() {
                    warnings.push(KeyError {
                        key: format!("embedded_broker.users[{i}].subscribe"),
                        message: format!(
                            "absent on a listener beyond this machine: {:?} may subscribe to                              '#' and read every other device's values and the daemon's status                              (give it filters, such as [\"cmnd/%u/#\"], or [] for none)",
                            u.name
                        ),
                    });
                }
            }
        }
        warnings
    }

    /// The histories `[[rule]]`s with `move_history = true` move at start:
    /// (old series, new series). Validation allows it only on a rule
    /// renaming one exact topic.
    pub fn history_moves(&self) -> impl Iterator<Item = (&str, &str)> {
        self.rules
            .iter()
            .filter(|r| r.move_history)
            .filter_map(|r| match (r.rename.as_deref(), r.topics.as_slice()) {
                (Some(new), [old]) => Some((old.as_str(), new)),
                _ => None,
            })
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: name.clone(),
            errors: vec![KeyError {
                key: "(file)".into(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        Config::parse(&text, &name)
    }

    /// The embedded default configuration.
    pub fn default_config() -> Result<Config, ConfigError> {
        Config::parse(DEFAULT_CONFIG_TOML, "(built-in default)")
    }

    /// Parses and validates TOML text; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let message = e.message().to_owned();
                let key = match e.span() {
                    Some(span) => format!("line {}", line_of(text, span.start)),
                    None => "(syntax)".into(),
                };
                return Err(ConfigError {
                    source_name: source_name.into(),
                    errors: vec![KeyError { key, message }],
                });
            }
        };
        let sections = Sections::split(table, &mut errors);
        let config = validate::validate(sections, &mut errors);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                source_name: source_name.into(),
                errors,
            })
        }
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests;
