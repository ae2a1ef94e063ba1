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

pub mod app;
pub mod atomic_file;
pub mod broker;
pub mod cache;
pub mod clock;
pub mod config;
pub mod data_lock;
pub mod janitoo;
pub mod journal;
pub mod logging;
pub mod metrics;
pub mod migrate;
pub mod model;
pub mod mqtt;
pub mod password;
pub mod reload;
pub mod rrd;
pub mod service;
pub mod web;
