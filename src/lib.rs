//! datalog-rrd: an MQTT datalogger writing round-robin databases.
//!
//! ```text
//!  devices ─► broker (embedded, optional) ─► MQTT broker
//!                                               │
//!               mqtt (client loop, decode) ◄────┘   poll (munin, Prometheus,
//!                 │ samples                            ping, SNMP jobs); web push
//!                 ▼                                      │
//!               cache::Intake (journal, then cache) ◄────┘
//!                 │
//!                 ▼
//!               cache (rows per step, timers) ──batches, one per file──► rrd (one thread owns librrd) ──► *.rrd, index
//!                                                                          ▲
//!               web (/rrd pages, graphs, exports, /metrics) ──flush, read──┘
//! ```
//!
//! The tree says the same (`ls src`):
//! - `stages/`: one folder per stage of the data flow above (`broker`,
//!   `mqtt`, `poll`, `cache`, `rrd`, `web`; a source of samples is a stage
//!   beside `mqtt` that hands samples to a `cache::Intake`);
//!   each owns its state and talks to the others through handles and
//!   channels;
//! - `shared/`: what the stages share and own no task of: the
//!   configuration (`config`), the domain types (`model`), the clock and
//!   its trust (`clock`), the journal, the counters (`metrics`), passwords,
//!   TLS clients' roots (`tls`),
//!   events, and atomic files and the data directory's lock. Nothing in
//!   `shared/` imports a stage (`scripts/check-cycles` checks it);
//! - `app/`: the running daemon's wiring: start in data-flow order,
//!   signals, reload, shutdown, systemd;
//! - `cli/`: the subcommands `main.rs` maps to, and logging.
//!
//! Every module is named at the crate root (`crate::cache`, `crate::config`)
//! so that a path says what it reaches, not which folder holds it. See
//! `ARCHITECTURE.md` for the data flow, the shutdown order, and where a new
//! stage, page or config section goes.

// Every module is private to the crate: the binary, the fuzz targets and
// the benchmarks use the few entry points below, so the compiler can tell
// what nothing uses.
mod app;
pub mod cli;
mod shared;
mod stages;

use shared::{
    atomic_file, clock, config, data_lock, energy, events, families, journal, metrics, model,
    password, tls,
};
use stages::{broker, cache, mqtt, poll, rrd, web};

/// The pure cores the fuzz targets, benchmarks and end-to-end tests drive
/// or read. Not an API.
#[doc(hidden)]
pub mod cores {
    pub use crate::cache::snapshot::{Snapshot, read as read_snapshot};
    pub use crate::cli::import_janitoo;
    pub use crate::model::path::{is_safe_rel_path, rel_path_for_series};
    pub use crate::mqtt::decode::{DecodeLimits, decode};
    pub use crate::mqtt::discovery::{is_discovery, parse as parse_discovery};
    pub use crate::poll::munin::protocol::{
        parse_config as parse_munin_config, parse_fetch as parse_munin_fetch,
    };
    pub use crate::poll::prometheus::parse::parse as parse_exposition;
    pub use crate::rrd::read::{GraphLine, GraphRequest, IMAGE_FORMAT, graph_elements};
}
