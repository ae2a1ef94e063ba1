//! The Prometheus / OpenMetrics text parser on any bytes: never a panic,
//! every line a sample, a comment, blank or counted as bad, every sample
//! named as the format allows.
#![no_main]

use datalog_rrd::cores::parse_exposition;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines = text.lines().count();
    for openmetrics in [false, true] {
        let e = parse_exposition(&text, openmetrics);
        assert!(e.samples.len() + e.bad_lines <= lines);
        assert_eq!(e.bad_lines > 0, e.first_bad.is_some());
        for s in &e.samples {
            assert!(!s.name.is_empty() && !s.name.starts_with(|c: char| c.is_ascii_digit()));
            assert!(s.labels.iter().all(|(k, _)| !k.is_empty()));
        }
    }
});
