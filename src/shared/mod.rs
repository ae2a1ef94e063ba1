//! What the stages share. No task or thread lives here, and nothing here
//! imports a stage (`scripts/check-cycles`): each module is a type, a pure
//! rule, or a small piece of I/O that several stages need alike.

// Temp file, fsync, rename, fsync the directory.
pub(crate) mod atomic_file;
// Wall time, the step detector, and whether the clock can be trusted.
pub(crate) mod clock;
// Raw TOML sections, their validation (every error with its key) and the
// embedded default.
pub(crate) mod config;
// One process per data directory (`flock` on `<data_dir>/.lock`).
pub(crate) mod data_lock;
// Meters (energy, gas, water): flows, consumption per local period, tariffs.
pub(crate) mod energy;
// Events (a time, a text, a device) kept in `events.json`, drawn on graphs.
pub(crate) mod events;
// What the payload families say of their series: devices, units, states.
pub(crate) mod families;
// The write-ahead journal: written by a source, replayed at start.
pub(crate) mod journal;
// Counters every stage bumps, and refusals counted and rate-limited.
pub(crate) mod metrics;
// Domain types: samples, rows, file specs; series name → file path.
pub(crate) mod model;
// argon2 hashes and login checks, shared by the web UI and the broker.
pub(crate) mod password;
// TLS clients' configuration: a CA file, or the system's roots.
pub(crate) mod tls;
