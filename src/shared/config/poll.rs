//! `[[poll]]` jobs as the daemon runs them: what to fetch, from where, how
//! often, and which of the values to keep. Checked in `validate/poll.rs`,
//! the same check for a job made in the browser.

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::raw::RawPoll;

/// What a job speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PollKind {
    /// munin-node's text protocol (TCP 4949).
    Munin,
    /// A Prometheus / OpenMetrics text exposition over HTTP.
    Prometheus,
    /// ICMP echo: round-trip times and loss.
    Ping,
    /// SNMP v2c or v3 (UDP 161): OIDs, or the interface table.
    Snmp,
}

impl PollKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PollKind::Munin => "munin",
            PollKind::Prometheus => "prometheus",
            PollKind::Ping => "ping",
            PollKind::Snmp => "snmp",
        }
    }

    /// The port a target without one is reached on.
    pub fn default_port(self) -> u16 {
        match self {
            PollKind::Munin => 4949,
            PollKind::Prometheus => 9100,
            PollKind::Ping => 0,
            PollKind::Snmp => 161,
        }
    }
}

impl std::fmt::Display for PollKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A list of regular expressions; equal when their sources are (a reload
/// compares jobs to keep the unchanged ones' schedules).
#[derive(Debug, Clone, Default)]
pub struct Patterns(pub Vec<regex::Regex>);

impl PartialEq for Patterns {
    fn eq(&self, other: &Patterns) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(&other.0)
                .all(|(a, b)| a.as_str() == b.as_str())
    }
}

impl Patterns {
    pub fn any_match(&self, s: &str) -> bool {
        self.0.iter().any(|r| r.is_match(s))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Which names a job keeps: those `include` matches (all when it is
/// empty) and `exclude` does not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub include: Patterns,
    pub exclude: Patterns,
}

impl Selection {
    pub fn keeps(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.any_match(name)) && !self.exclude.any_match(name)
    }
}

/// Where a job is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `[[poll]]` in the configuration file: read-only in the browser.
    Config,
    /// Made by an admin at `/rrd/jobs`, kept in `jobs.json`.
    Browser,
}

/// A validated `[[poll]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PollJob {
    /// Stable: the job's id in logs, metrics and the jobs page.
    pub name: String,
    pub origin: Origin,
    pub kind: PollKind,
    pub host: String,
    pub port: u16,
    /// Prometheus: the path of the exposition (`/metrics`).
    pub path: String,
    /// Prometheus: over TLS (`https://`), trusting `ca_file` or else the
    /// system's roots.
    pub https: bool,
    pub ca_file: Option<std::path::PathBuf>,
    pub interval: Duration,
    pub timeout: Duration,
    /// The first levels of every series the job makes.
    pub prefix: String,
    /// munin: plugin names; Prometheus: metric names.
    pub select: Selection,
    /// Prometheus: every label matcher must match (a missing label is
    /// the empty string, as in PromQL).
    pub labels: Vec<(String, Patterns)>,
    pub profile: Option<String>,
    pub credentials: Option<(String, String)>,
    pub paused: bool,
    /// Ping: echo requests per round.
    pub packets: u32,
    /// SNMP v2c's community (v3 when `credentials` are given).
    pub community: String,
    /// SNMP: dotted OIDs to GET.
    pub oids: Vec<String>,
}

impl PollJob {
    /// Prometheus: the exposition's URL.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}{}", self.address(), self.path)
    }

    /// The name of the template its files get (`poll:<name>`).
    pub fn template_name(&self) -> String {
        format!("poll:{}", self.name)
    }

    /// Where it connects, as `host:port` (brackets around IPv6).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// A fixed offset into the interval, from the job's name: jobs are
    /// spread over the interval instead of all starting at :00, and a job
    /// keeps its offset across restarts.
    pub fn jitter(&self) -> Duration {
        let ms = self.interval.as_millis().max(1) as u64;
        Duration::from_millis(crate::model::path::fnv1a(self.name.as_bytes()) % ms)
    }
}
