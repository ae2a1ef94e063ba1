//! Series name → file path: always a safe relative path inside the data
//! directory, and two different series never share a file.
#![no_main]

use datalog_rrd::cores::{is_safe_rel_path, rel_path_for_series};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (&str, &str)| {
    let (a, b) = data;
    let pa = rel_path_for_series(a);
    assert!(is_safe_rel_path(&pa), "{a:?} -> {pa:?}");
    assert!(
        !pa.split('/').any(|s| s == ".." || s == "." || s.is_empty()),
        "{pa:?}"
    );
    assert!(!pa.contains(':') && !pa.contains('\0'), "{pa:?}");
    if a != b {
        assert_ne!(pa, rel_path_for_series(b), "{a:?} and {b:?} share a file");
    }
});
