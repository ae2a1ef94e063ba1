//! End-to-end tests: one binary, real mosquitto, the real daemon, RRD files
//! read back with `rrdtool`. Needs `mosquitto`, `mosquitto-clients` and
//! `rrdtool` installed (`scripts/install-deps --test` does it).

mod broker_auth;
mod browser;
mod cli;
mod clock;
mod embedded_broker;
mod energy;
mod families;
mod fidelity;
mod flood;
mod janitoo;
mod migrate;
mod pages;
mod pipeline;
mod poll;
mod power_cut;
mod push;
mod recovery;
mod reload;
mod service;
mod support;
mod web;
