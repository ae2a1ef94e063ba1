//! Local time, for people: the web UI's captions, forms, charts and the
//! human columns of exports, in one time zone (`web.time_zone`, by default
//! the system's). Files, the journal and machine exports stay in UTC.
//!
//! The zone is the process's (`TZ`), set once at start before any thread
//! exists ([`use_zone`]), so that librrd's graph axes (which read the C
//! library's local time) and these texts always agree.

use std::path::Path;

use chrono::{DateTime, Local, LocalResult, NaiveDateTime, TimeZone};

/// Where the C library finds zones (Debian's `tzdata`).
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// The system's zone by name (`Europe/Berlin`), `UTC` when it cannot be
/// told.
pub fn system_zone() -> String {
    if let Ok(tz) = std::env::var("TZ") {
        let name = tz.trim_start_matches(':');
        if is_zone(name) {
            return name.to_owned();
        }
    }
    iana_time_zone::get_timezone()
        .ok()
        .filter(|z| is_zone(z))
        .unwrap_or_else(|| "UTC".to_owned())
}

/// Whether `name` is a zone the C library knows: `UTC`, or a file of the
/// zone database (a name, never a path out of it).
pub fn is_zone(name: &str) -> bool {
    if name == "UTC" {
        return true;
    }
    let plain = !name.is_empty()
        && !name.starts_with('/')
        && name
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
    plain && Path::new(ZONEINFO).join(name).is_file()
}

/// Makes `zone` the process's local time zone.
///
/// # Safety
/// Changes the environment: call it before any other thread exists.
pub unsafe fn use_zone(zone: &str) {
    // SAFETY: the caller guarantees no other thread reads the
    // environment; tzset only re-reads TZ.
    unsafe {
        std::env::set_var("TZ", zone);
        tzset();
    }
}

// POSIX; the libc crate declares it for Windows only.
unsafe extern "C" {
    fn tzset();
}

fn local(t_s: i64) -> Option<DateTime<Local>> {
    DateTime::from_timestamp(t_s, 0).map(|t| t.with_timezone(&Local))
}

/// `2026-12-03 09:15` in local time.
pub fn text(t_s: i64) -> String {
    local(t_s)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// `09:15`, or `2026-12-03 09:15` when `t_s` is not on the same local day
/// as `same_day_as`: a range's end beside its start.
pub fn short_text(t_s: i64, same_day_as: i64) -> String {
    match (local(t_s), local(same_day_as)) {
        (Some(t), Some(other)) if t.date_naive() == other.date_naive() => {
            t.format("%H:%M").to_string()
        }
        _ => text(t_s),
    }
}

/// `2026-12-03 09:15:00+01:00`: local, and unambiguous (CSV).
pub fn text_with_offset(t_s: i64) -> String {
    local(t_s)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S%:z").to_string())
        .unwrap_or_default()
}

/// An HTML datetime-local value (`2026-12-03T09:15`) in local time.
pub fn form_text(t_s: i64) -> String {
    local(t_s)
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// A local date and time without a zone (`2026-12-03T09:15[:SS]`, or with
/// a space): the Unix time it names. Of the two a clock set back for the
/// end of summer time reads twice, the first; a time the clock skipped
/// (spring) is none.
pub fn parse_form(s: &str) -> Option<i64> {
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?;
    match Local.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.timestamp()),
        LocalResult::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names_are_zone_database_names_only() {
        assert!(is_zone("UTC"));
        assert!(is_zone("Europe/Berlin"), "tzdata is installed");
        for bad in [
            "",
            "/etc/passwd",
            "../../etc/passwd",
            "Europe/../UTC",
            "Mars/Olympus",
        ] {
            assert!(!is_zone(bad), "{bad}");
        }
    }

    #[test]
    fn a_form_time_reads_back() {
        let t = 1_764_752_100; // a whole minute
        assert_eq!(parse_form(&form_text(t)), Some(t));
        assert_eq!(short_text(t + 3600, t).len(), 5);
        assert_eq!(short_text(t + 3 * 86_400, t), text(t + 3 * 86_400));
        assert!(text_with_offset(t).starts_with(&text(t)));
    }
}
