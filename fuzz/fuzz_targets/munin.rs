//! munin-node's `config` and `fetch` answers, any lines: never a panic,
//! every field name munin's shape, every number finite.
#![no_main]

use datalog_rrd::cores::{parse_munin_config, parse_munin_fetch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for graph in parse_munin_config("plugin", &lines) {
        assert!(!graph.name.is_empty());
        for f in &graph.fields {
            assert!(!f.name.is_empty() && !f.name.contains('.'), "{f:?}");
            for v in [f.min, f.max, f.scale, f.warning, f.critical].into_iter().flatten() {
                assert!(v.is_finite(), "{f:?}");
            }
        }
    }
    for (graph, field, value) in parse_munin_fetch("plugin", &lines) {
        assert!(!graph.is_empty() && !field.is_empty());
        let text = format!("{value:?}");
        assert!(!text.contains("NaN") && !text.contains("inf"), "{text}");
    }
});
