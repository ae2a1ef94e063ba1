//! Domain types shared by every stage: samples decoded from MQTT, and the
//! specification of the RRD files they are written to.
//!
//! Nothing here does I/O. The stages (`mqtt` → `cache` → `rrd`) exchange only
//! these types, so each stage can be tested with values built by hand.

pub mod path;

use std::fmt;
use std::time::Duration;

/// Milliseconds since the Unix epoch, UTC. Every time inside the daemon is
/// one of these: local time never enters (janitoo's logs and files drifted
/// with daylight saving).
pub type UnixMillis = i64;

/// One timestamped value of one named series, as decoded from a message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    /// `topic` for plain payloads, `topic/json/path` for JSON leaves.
    pub series: String,
    pub time_ms: UnixMillis,
    pub value: f64,
}

/// How a message received while the system clock was not trusted is told
/// apart and re-timed (`clock::retime`): its samples stamped with the
/// receive time (`received_ms`, the untrusted clock's reading) get
/// `received_ms + (offset now - offset_ms)`, where an offset is the wall
/// clock minus the monotonic clock. That difference only changes when the
/// wall clock is stepped, so this undoes every step since; the monotonic
/// clock counts from boot, so `boot` says whether it still applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeldClock {
    /// This boot's id (`/proc/sys/kernel/random/boot_id`, hashed).
    pub boot: u64,
    pub received_ms: UnixMillis,
    /// Wall minus monotonic milliseconds at receive.
    pub offset_ms: i64,
}

/// How librrd turns successive updates into primary data points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DsType {
    Gauge,
    Counter,
    Derive,
    Absolute,
    Dcounter,
    Dderive,
}

impl DsType {
    pub const ALL: [DsType; 6] = [
        DsType::Gauge,
        DsType::Counter,
        DsType::Derive,
        DsType::Absolute,
        DsType::Dcounter,
        DsType::Dderive,
    ];

    /// The type librrd names `s` (`rrd info`'s `ds[x].type`).
    pub fn from_rrd_str(s: &str) -> Option<DsType> {
        Self::ALL.into_iter().find(|t| t.as_rrd_str() == s)
    }

    /// How long a value of this type is held over a gap when `wanted`:
    /// a gauge's level may be held (a thermostat that reports only on
    /// change); a counter's never (its held rate would invent what was
    /// not counted).
    pub fn hold(self, wanted: Duration) -> Duration {
        if self == DsType::Gauge {
            wanted
        } else {
            Duration::ZERO
        }
    }

    pub fn as_rrd_str(self) -> &'static str {
        match self {
            DsType::Gauge => "GAUGE",
            DsType::Counter => "COUNTER",
            DsType::Derive => "DERIVE",
            DsType::Absolute => "ABSOLUTE",
            DsType::Dcounter => "DCOUNTER",
            DsType::Dderive => "DDERIVE",
        }
    }
}

/// How the samples a data source receives within one step become the single
/// value of that step's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Aggregate {
    /// The sample with the latest time wins (janitoo's behaviour).
    #[default]
    Last,
    Average,
    Min,
    Max,
}

/// How a series is drawn in a chart (Munin's `draw`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Draw {
    #[default]
    Line,
    Area,
    /// Stacked on the series before it.
    Stack,
}

/// Consolidation function of a round-robin archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Cf {
    Average,
    Min,
    Max,
    Last,
}

impl Cf {
    pub fn as_rrd_str(self) -> &'static str {
        match self {
            Cf::Average => "AVERAGE",
            Cf::Min => "MIN",
            Cf::Max => "MAX",
            Cf::Last => "LAST",
        }
    }
}

/// One round-robin archive, already expressed in librrd's units.
#[derive(Debug, Clone, PartialEq)]
pub struct RraSpec {
    pub cf: Cf,
    pub xff: f64,
    pub steps_per_row: u32,
    pub rows: u32,
}

impl fmt::Display for RraSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RRA:{}:{}:{}:{}",
            self.cf.as_rrd_str(),
            self.xff,
            self.steps_per_row,
            self.rows
        )
    }
}

/// One data source of a file and the series that feeds it.
#[derive(Debug, Clone, PartialEq)]
pub struct DsSpec {
    /// librrd DS name: `[A-Za-z0-9_]{1,19}`.
    pub name: String,
    pub series: String,
    pub ds_type: DsType,
    pub heartbeat_secs: u32,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub aggregate: Aggregate,
    /// How long a value is repeated into steps that received no sample.
    pub hold: Duration,
    /// What the web UI calls this DS (its series name when absent).
    pub label: Option<String>,
    /// Unit shown beside values and on graph axes, such as "°C" or "W".
    pub unit: Option<String>,
    /// The name this DS had in the file before (`datalog-rrd migrate`
    /// renames it in place and keeps its history).
    pub renamed_from: Option<String>,
    /// What it is to a person, for the web UI (not part of the layout).
    pub about: About,
}

/// What a series is to a person, beyond its label and unit: how the web UI
/// groups, draws and says it. Not part of a file's layout.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct About {
    /// Home Assistant's device class: "temperature", "occupancy"…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_class: Option<String>,
    /// The device it belongs to, as discovery names it ("Fridge plug").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// An on/off state (1 on, 0 off): its step keeps the maximum (a short
    /// "on" within a step is not averaged away), it is drawn as a band and
    /// said with its device class's words.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
    /// The chart its source draws it in (a Munin plugin's graph).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<Box<Chart>>,
}

/// How a series' own source draws it: Munin's graph of a plugin, with its
/// fields' styles and thresholds. The web UI makes of these a dashboard
/// per device, one view per chart, as numeter's auto-configured views did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Chart {
    /// The chart's id within its device (the plugin or multigraph name).
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default)]
    pub draw: Draw,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub colour: Option<(u8, u8, u8)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<f64>,
    /// Its place among the chart's series (`graph_order`).
    #[serde(default)]
    pub order: u16,
}

impl About {
    /// An on/off state's words, `[on, off]`, by its device class
    /// (`families::state_words`); `None` for a measurement.
    pub fn states(&self) -> Option<[&'static str; 2]> {
        self.binary.then(|| {
            let (on, off) = crate::families::state_words(self.device_class.as_deref());
            [on, off]
        })
    }
}

impl DsSpec {
    /// A GAUGE DS with a 120 s heartbeat and nothing else set: for tests.
    #[cfg(test)]
    pub fn test_gauge(name: &str, series: &str) -> DsSpec {
        DsSpec {
            name: name.into(),
            series: series.into(),
            ds_type: DsType::Gauge,
            heartbeat_secs: 120,
            min: None,
            max: None,
            aggregate: Aggregate::Last,
            hold: Duration::ZERO,
            label: None,
            unit: None,
            renamed_from: None,
            about: About::default(),
        }
    }

    /// The `DS:` argument librrd's create takes.
    pub fn to_rrd_arg(&self) -> String {
        let bound = |b: Option<f64>| b.map_or_else(|| "U".to_owned(), |v| v.to_string());
        format!(
            "DS:{}:{}:{}:{}:{}",
            self.name,
            self.ds_type.as_rrd_str(),
            self.heartbeat_secs,
            bound(self.min),
            bound(self.max)
        )
    }
}

/// What is known about a series beyond its samples: from discovery (Home
/// Assistant, Homie) or from a config rule. Each field overrides the
/// template's when set.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SeriesMeta {
    pub label: Option<String>,
    pub unit: Option<String>,
    pub ds_type: Option<DsType>,
    pub min: Option<f64>,
    /// Home Assistant's `expire_after`: how long a value holds.
    pub hold: Option<Duration>,
    /// Home Assistant's `device_class`.
    pub device_class: Option<String>,
    /// The device's name (Home Assistant's `device.name`).
    pub device: Option<String>,
    /// An on/off state (a `binary_sensor`, a switch).
    pub binary: Option<bool>,
    pub max: Option<f64>,
    /// The chart its source draws it in.
    pub chart: Option<Chart>,
}

impl SeriesMeta {
    /// `other`'s fields where it has them, ours elsewhere.
    pub fn merged(&self, other: &SeriesMeta) -> SeriesMeta {
        let pick = |o: &Option<String>, s: &Option<String>| o.clone().or_else(|| s.clone());
        SeriesMeta {
            label: pick(&other.label, &self.label),
            unit: pick(&other.unit, &self.unit),
            ds_type: other.ds_type.or(self.ds_type),
            min: other.min.or(self.min),
            hold: other.hold.or(self.hold),
            device_class: pick(&other.device_class, &self.device_class),
            device: pick(&other.device, &self.device),
            binary: other.binary.or(self.binary),
            max: other.max.or(self.max),
            chart: other.chart.clone().or_else(|| self.chart.clone()),
        }
    }

    /// What a family says of a series, as metadata that anything else
    /// overrides.
    pub fn from_family(known: crate::families::Known) -> SeriesMeta {
        SeriesMeta {
            unit: known.unit.map(str::to_owned),
            device_class: known.device_class.map(str::to_owned),
            binary: known.binary.then_some(true),
            // A meter's counter, as Home Assistant's `total_increasing`:
            // a restart at 0 is a fall librrd stores unknown.
            ds_type: known.counter.then_some(DsType::Dderive),
            min: known.counter.then_some(0.0),
            ..SeriesMeta::default()
        }
    }

    /// The person-facing part, for a file's DS.
    pub fn about(&self) -> About {
        About {
            device_class: self.device_class.clone(),
            device: self.device.clone(),
            binary: self.binary.unwrap_or(false),
            chart: self.chart.clone().map(Box::new),
        }
    }
}

/// Everything needed to create, fill and index one RRD file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileSpec {
    /// Path relative to the data directory, `/`-separated, without `.rrd`.
    /// Always produced by `model::path` or validated config: no `..`, no `:`.
    pub rel_path: String,
    /// Template it was made from, or `file` for files declared in config.
    pub template: String,
    pub step_secs: u32,
    pub ds: Vec<DsSpec>,
    pub rras: std::sync::Arc<[RraSpec]>,
}

impl FileSpec {
    /// Smallest heartbeat of the file: a gap longer than this between two
    /// updates makes librrd forget the later value unless a `U` row
    /// precedes it.
    /// The `DS:…` and `RRA:…` arguments librrd's create takes.
    pub fn create_args(&self) -> Vec<String> {
        self.ds
            .iter()
            .map(DsSpec::to_rrd_arg)
            .chain(self.rras.iter().map(ToString::to_string))
            .collect()
    }

    /// How far back from its last row the finest archive (fewest steps per
    /// row) keeps data, in seconds; `None` without archives. A row older
    /// than that would be written nowhere but in coarser archives' averages
    /// at best, and usually refused as the file moves on.
    pub fn finest_reach_secs(&self) -> Option<i64> {
        let finest = self.rras.iter().map(|r| r.steps_per_row).min()?;
        self.rras
            .iter()
            .filter(|r| r.steps_per_row == finest)
            .map(|r| i64::from(r.steps_per_row) * i64::from(r.rows) * i64::from(self.step_secs))
            .max()
    }

    pub fn min_heartbeat_secs(&self) -> u32 {
        self.ds
            .iter()
            .map(|d| d.heartbeat_secs)
            .min()
            .unwrap_or(self.step_secs)
    }
}

/// Why a message or one of its values was not turned into a sample. Each is
/// counted apart so an operator sees what a publisher does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    Oversize,
    Empty,
    NotNumeric,
    NotFinite,
    BadJson,
    BadTimestamp,
    TooManyLeaves,
    TooDeep,
    NoTemplate,
    SeriesLimit,
    PathTaken,
    Late,
    /// Stamped more than `limits.max_future` after it was received.
    Future,
    /// Older than the file's finest archive reaches back from now.
    TooOld,
    /// An event beyond `events::MAX_PER_MINUTE`.
    EventRate,
    /// Pushed over HTTP by a bot to a series outside its `publish`.
    NotAllowed,
}

impl RejectReason {
    pub const ALL: [RejectReason; 16] = [
        RejectReason::Oversize,
        RejectReason::Empty,
        RejectReason::NotNumeric,
        RejectReason::NotFinite,
        RejectReason::BadJson,
        RejectReason::BadTimestamp,
        RejectReason::TooManyLeaves,
        RejectReason::TooDeep,
        RejectReason::NoTemplate,
        RejectReason::SeriesLimit,
        RejectReason::PathTaken,
        RejectReason::Late,
        RejectReason::Future,
        RejectReason::TooOld,
        RejectReason::EventRate,
        RejectReason::NotAllowed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Oversize => "oversize",
            RejectReason::Empty => "empty",
            RejectReason::NotNumeric => "not_numeric",
            RejectReason::NotFinite => "not_finite",
            RejectReason::BadJson => "bad_json",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::TooManyLeaves => "too_many_leaves",
            RejectReason::TooDeep => "too_deep",
            RejectReason::NoTemplate => "no_template",
            RejectReason::SeriesLimit => "series_limit",
            RejectReason::PathTaken => "path_taken",
            RejectReason::Late => "late",
            RejectReason::Future => "future",
            RejectReason::TooOld => "older_than_archives",
            RejectReason::EventRate => "event_rate",
            RejectReason::NotAllowed => "not_allowed",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row ready for librrd: the end of its step (whole seconds, UTC, a
/// multiple of the step) and one value per DS (`None` = unknown).
///
/// Values are inline for single-DS files (every automatic file): batches hold tens of
/// thousands of rows under load, and a heap block per row doubled their
/// memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub time_s: i64,
    pub values: RowValues,
}

pub type RowValues = smallvec::SmallVec<[Option<f64>; 1]>;

/// The end of the step that contains `time_ms`: steps are `(end - step, end]`
/// as in `rrdtool fetch`, so a sample taken exactly on a boundary belongs to
/// the step that ends there, the row a direct `rrdtool update` would fill.
pub fn row_end(step_secs: u32, time_ms: UnixMillis) -> i64 {
    let step_ms = step_secs as i64 * 1000;
    time_ms.div_euclid(step_ms) * step_secs as i64
        + if time_ms.rem_euclid(step_ms) == 0 {
            0
        } else {
            step_secs as i64
        }
}
