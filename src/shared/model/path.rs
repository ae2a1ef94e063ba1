//! Series name → file path under the data directory. Pure and total: any
//! string a publisher can send maps to a path that stays inside the data
//! directory, and two different series never share a file.
//!
//! The rule, as the README documents it:
//! - each `/`-separated level of the series name is one path segment;
//! - bytes `[A-Za-z0-9_-]` are kept, every other byte (including `.`) is
//!   written as `.` followed by two upper-case hex digits (`°C` → `.C2.B0C`),
//!   so `.`/`..` segments cannot occur and the mapping is reversible;
//! - an empty level (janitoo's leading `/`, or `a//b`) becomes `.e`;
//! - a segment longer than 96 bytes is cut and ends with `.h` and a 16-digit
//!   hash of the whole level, which escaping never produces;
//! - levels past the 16th are folded into the 16th (their `/` escaped);
//! - the file is `<segments joined by />.rrd`.

use std::fmt::Write;

const MAX_SEGMENT: usize = 96;
const MAX_DEPTH: usize = 16;

/// The relative path (without `.rrd`) of the file for `series`.
pub fn rel_path_for_series(series: &str) -> String {
    let mut levels: Vec<&str> = series.split('/').collect();
    let folded;
    if levels.len() > MAX_DEPTH {
        folded = levels[MAX_DEPTH - 1..].join("/");
        levels.truncate(MAX_DEPTH - 1);
        levels.push(&folded);
    }
    let mut out = String::with_capacity(series.len() + 8);
    for (i, level) in levels.iter().enumerate() {
        if i > 0 {
            out.push('/');
        }
        push_segment(&mut out, level);
    }
    out
}

fn push_segment(out: &mut String, level: &str) {
    if level.is_empty() {
        out.push_str(".e");
        return;
    }
    let start = out.len();
    for &b in level.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            let _ = write!(out, ".{b:02X}");
        }
    }
    if out.len() - start > MAX_SEGMENT {
        // Cut on a char boundary that does not split an escape.
        let mut cut = start + MAX_SEGMENT - 19;
        while out.as_bytes()[cut - 1] == b'.' || out.as_bytes()[cut.saturating_sub(2)] == b'.' {
            cut -= 1;
        }
        out.truncate(cut);
        let _ = write!(out, ".h{:016x}", fnv1a(level.as_bytes()));
    }
}

/// FNV-1a: stable across Rust versions and runs, unlike `DefaultHasher`,
/// so a long topic maps to the same file after an upgrade.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Whether a configured relative path is safe: `/`-separated segments of
/// `[A-Za-z0-9_.-]`, none empty, `.` or `..`, at most 16 deep.
pub fn is_safe_rel_path(path: &str) -> bool {
    let segments: Vec<&str> = path.split('/').collect();
    segments.len() <= MAX_DEPTH
        && segments.iter().all(|s| {
            !s.is_empty()
                && s.len() <= MAX_SEGMENT + 4
                && *s != "."
                && *s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_topics_keep_their_shape() {
        assert_eq!(
            rel_path_for_series("home/kitchen/temperature"),
            "home/kitchen/temperature"
        );
        assert_eq!(
            rel_path_for_series("zigbee2mqtt/living_room/battery"),
            "zigbee2mqtt/living_room/battery"
        );
        assert_eq!(rel_path_for_series("a-b/c_d"), "a-b/c_d");
    }

    #[test]
    fn hostile_topics_are_escaped() {
        assert_eq!(
            rel_path_for_series("home/../../etc/passwd"),
            "home/.2E.2E/.2E.2E/etc/passwd"
        );
        assert_eq!(rel_path_for_series("/values/user"), ".e/values/user");
        assert_eq!(rel_path_for_series("a//b/"), "a/.e/b/.e");
        assert_ne!(rel_path_for_series("\0"), rel_path_for_series(""));
        assert_eq!(rel_path_for_series("."), ".2E");
        assert_eq!(rel_path_for_series("x:y z"), "x.3Ay.20z");
        assert_eq!(rel_path_for_series("t/°C"), "t/.C2.B0C");
        assert_eq!(rel_path_for_series("a\\b\0c"), "a.5Cb.00c");
    }

    #[test]
    fn long_and_deep_topics_are_bounded() {
        let long = "x".repeat(5000);
        let p = rel_path_for_series(&long);
        assert!(p.len() <= MAX_SEGMENT, "{}", p.len());
        assert!(p.contains(".h"));
        assert_ne!(p, rel_path_for_series(&format!("{long}y")));
        let deep = "a/".repeat(100);
        let p = rel_path_for_series(&deep);
        assert_eq!(p.split('/').count(), MAX_DEPTH);
        let escaped_long = "é".repeat(100);
        assert!(is_safe_rel_path(&rel_path_for_series(&escaped_long)));
    }

    #[test]
    fn configured_paths() {
        assert!(is_safe_rel_path("living_room/climate"));
        assert!(is_safe_rel_path("a/b.c-d"));
        for bad in [
            "", "/abs", "a/../b", "..", "a/./b", "a//b", "a/b/", "a:b", "a b", "a\\b",
        ] {
            assert!(!is_safe_rel_path(bad), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn every_series_maps_to_a_safe_path(series in ".{0,300}") {
            let p = rel_path_for_series(&series);
            prop_assert!(is_safe_rel_path(&p), "{:?} -> {:?}", series, p);
            prop_assert!(!p.contains(':'));
        }

        #[test]
        fn distinct_series_get_distinct_paths(a in "[a-z./_é-]{0,12}(/[a-z./_é-]{0,12}){0,3}",
                                              b in "[a-z./_é-]{0,12}(/[a-z./_é-]{0,12}){0,3}") {
            prop_assume!(a != b);
            prop_assert_ne!(rel_path_for_series(&a), rel_path_for_series(&b));
        }
    }
}
