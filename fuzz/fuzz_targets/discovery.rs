//! Discovery configs and janitoo INI files from anywhere: errors, never
//! panics; what is described is a series with a name.
#![no_main]

use datalog_rrd::cores::{is_discovery, parse_discovery as parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (&str, &[u8])| {
    let (topic, payload) = data;
    if is_discovery(topic)
        && let Ok(found) = parse(topic, payload)
    {
        assert!(found.series.iter().all(|(s, _)| !s.is_empty()));
    }
    if let Ok(text) = std::str::from_utf8(payload) {
        let _ = datalog_rrd::cores::import_janitoo(text);
    }
});
