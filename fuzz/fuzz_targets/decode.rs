//! The payload decoder on any topic and any bytes: never a panic, only
//! finite values, never a sample without a series, and the limits hold.
#![no_main]

use datalog_rrd::cores::{DecodeLimits, decode};
use libfuzzer_sys::fuzz_target;

const LIMITS: DecodeLimits = DecodeLimits {
    max_payload_bytes: 4096,
    max_json_leaves: 64,
    max_json_depth: 8,
};

fuzz_target!(|data: &[u8]| {
    // First byte: the topic's length; the topic, then the payload.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = (n as usize).min(rest.len());
    let Ok(topic) = std::str::from_utf8(&rest[..n]) else {
        return;
    };
    if let Ok(samples) = decode(topic, &rest[n..], 1_763_633_700_000, &LIMITS) {
        assert!(samples.len() <= LIMITS.max_json_leaves + 1);
        for s in &samples {
            assert!(s.value.is_finite(), "{s:?}");
            assert!(topic.is_empty() || !s.series.is_empty());
            assert!((0..=253_402_300_799_000).contains(&s.time_ms), "{s:?}");
        }
    }
});
