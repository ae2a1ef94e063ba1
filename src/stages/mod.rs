//! The stages of the data flow, each a folder that owns its state and its
//! task or thread, in the order a message goes through them:
//!
//! 1. `broker`: the embedded MQTT broker (optional), a gate in front of
//!    rumqttd that checks each device's account, rights and rate;
//! 2. `mqtt`: the client that subscribes, decodes each message into samples
//!    (pure decoders, one file per payload family), journals and
//!    acknowledges them, and hands them to the cache;
//!    Beside it, `poll`: jobs that fetch values on a schedule (munin-node,
//!    Prometheus exporters) and hand them over exactly as `mqtt` does;
//! 3. `cache`: rows per file and step, the timers that decide when a file
//!    is written, snapshots and recovery;
//! 4. `rrd`: the one thread that owns librrd: writes, graphs, exports, the
//!    index;
//! 5. `web`: the `/rrd` pages, graphs, exports and `/metrics`, reading
//!    through the cache (flush first) and the RRD thread.
//!
//! Every source hands its samples to a `cache::Intake`, which journals
//! them before the cache has them, in one order for all sources; a new
//! sink beside `rrd` follows the journal (`journal::Reader`).

pub(crate) mod broker;
pub(crate) mod cache;
pub(crate) mod mqtt;
pub(crate) mod poll;
pub(crate) mod rrd;
pub(crate) mod web;
