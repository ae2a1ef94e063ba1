//! datalog-rrd: an MQTT datalogger writing round-robin databases.
//!
//! ```text
//!  MQTT broker ──► mqtt (client loop, decode) ──samples──► cache (rows per step, timers)
//!                                                              │ batches, one per file
//!                                                              ▼
//!                          index.txt / index.json ◄── rrd (one thread owns librrd) ──► *.rrd
//! ```
//!
//! Each stage owns its state and talks to the next through a channel; see
//! `ARCHITECTURE.md` for the data flow and the shutdown order.

// Every stage is private to the crate: the binary, the fuzz targets and
// the benchmarks use the few entry points below, so the compiler can tell
// what nothing uses.
mod app;
mod atomic_file;
mod broker;
mod cache;
mod clock;
mod config;
mod data_lock;
mod events;
mod janitoo_import;
mod journal;
mod logging;
mod metrics;
mod migrate;
mod model;
mod mqtt;
mod password;
mod reload;
mod rrd;
mod service;
mod web;

// What the binary runs.
pub use app::run;
pub use config::{Config, DEFAULT_CONFIG_TOML};
pub use data_lock::DataDirLock;
pub use janitoo_import::{Imported, import as import_janitoo};
pub use logging::init as init_logging;
pub use migrate::{FileOutcome, migrate_all, rename_series};
pub use password::hash_password;

/// The pure cores the fuzz targets, benchmarks and end-to-end tests drive
/// or read. Not an API.
#[doc(hidden)]
pub mod cores {
    pub use crate::cache::snapshot::{Snapshot, read as read_snapshot};
    pub use crate::janitoo_import::import as import_janitoo;
    pub use crate::mqtt::decode::{DecodeLimits, decode};
    pub use crate::mqtt::discovery::{is_discovery, parse as parse_discovery};
    pub use crate::rrd::path::{is_safe_rel_path, rel_path_for_series};
    pub use crate::rrd::read::{GraphLine, GraphRequest, IMAGE_FORMAT, graph_elements};
}
