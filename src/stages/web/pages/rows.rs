//! A series as a row of a table, the way a person reads it: its name, its
//! last value with its unit (an on/off state in its device class's words:
//! Detected, Open, On), how long ago it came, and for a series still
//! waiting for its first write, when that comes.

use std::collections::HashMap;

use crate::cache::Unwritten;
use crate::rrd::index::{IndexDs, IndexEntry};
use crate::web::State;
use crate::web::pages::url_escape;
use crate::web::tree;

/// The overview's graphs: the smallest librrd draws legibly.
const THUMB_WIDTH: u32 = 300;
const THUMB_HEIGHT: u32 = 80;

/// One DS of one file, as a row of a table.
pub(crate) struct SeriesRow {
    /// The file's path, for links.
    pub file: String,
    /// What people call it (its label, else its levels below the device).
    pub name: String,
    /// The topic it comes from.
    pub series: String,
    /// Its last value: a number, or an on/off state's word.
    pub value: String,
    pub unit: String,
    /// "2 min ago"
    pub age: String,
    pub stale: bool,
    /// "first write in 4 min": its rows are all still in the cache.
    pub pending: Option<String>,
    /// On each file's first row: its day graph, small, for the overview.
    pub thumb: Option<String>,
}

/// Table rows for these files, with each series' latest sample from the
/// cache (or the file's last value and update when the cache has not seen
/// it since the start).
/// `unwritten`: files whose rows are all in the cache yet, by path.
pub(crate) async fn rows(
    state: &State,
    files: &[&IndexEntry],
    unwritten: &HashMap<String, Unwritten>,
    thumbs: bool,
) -> Vec<SeriesRow> {
    let series: Vec<String> = files
        .iter()
        .flat_map(|e| e.ds.iter().map(|d| d.series.clone()))
        .collect();
    let latest = state.cache.latest(series).await.unwrap_or_default();
    let now_s = state.now_s();
    let mut latest = latest.into_iter();
    let mut out = Vec::with_capacity(files.len());
    for e in files {
        let pending = unwritten.get(&e.path);
        for (i, d) in e.ds.iter().enumerate() {
            let sample = latest.next().flatten();
            let seen_s = sample.map(|(_, t)| t.div_euclid(1000)).or(e.last_update);
            let age_s = seen_s.map(|t| (now_s - t).max(0));
            out.push(SeriesRow {
                file: e.path.clone(),
                name: tree::series_name(&d.series, d.label.as_deref()),
                series: d.series.clone(),
                // The cache's newest sample, else what the file holds last.
                value: sample
                    .map(|(v, _)| v)
                    .or(d.last_value)
                    .map_or_else(|| "—".into(), |v| value_text(d, v)),
                unit: if d.about.binary {
                    String::new()
                } else {
                    d.unit.clone().unwrap_or_default()
                },
                age: age_s.map_or_else(|| "never".into(), |a| format!("{} ago", age_text(a))),
                stale: e.stale
                    || age_s.is_none_or(|a| a as u64 > d.stale_after_secs.max(e.step_secs.into())),
                pending: pending.map(|u| first_write_text(u, now_s)),
                thumb: (thumbs && i == 0 && pending.is_none()).then(|| thumb_src(&e.path)),
            });
        }
    }
    out
}

fn thumb_src(path: &str) -> String {
    format!(
        "/rrd/graph/{}.png?range=day&width={THUMB_WIDTH}&height={THUMB_HEIGHT}&legend=false",
        url_escape(path)
    )
}

/// "first write in 4 min", or "being written".
fn first_write_text(u: &Unwritten, now_s: i64) -> String {
    match u.due_ms {
        Some(due_ms) => {
            let in_s = (due_ms.div_euclid(1000) - now_s).max(0);
            format!("first write in {}", age_text(in_s))
        }
        None => "being written".into(),
    }
}

/// A value as the DS is read: an on/off state in its words, else a number.
pub(crate) fn value_text(d: &IndexDs, v: f64) -> String {
    match d.about.states() {
        Some([on, off]) => if v >= 0.5 { on } else { off }.to_owned(),
        None => format_value(v),
    }
}

/// A value with at most 4 decimals and no trailing zeros.
pub(crate) fn format_value(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

/// "59 s", "10 min", "2 h", "5 d".
pub(crate) fn age_text(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::About;

    #[test]
    fn values_and_ages_read_well() {
        assert_eq!(format_value(21.5), "21.5");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(-0.00001), "0");
        assert_eq!(format_value(1.0 / 3.0), "0.3333");
        assert_eq!(age_text(59), "59 s");
        assert_eq!(age_text(600), "10 min");
        assert_eq!(age_text(7200), "2 h");
        assert_eq!(age_text(5 * 86_400), "5 d");
    }

    #[test]
    fn on_off_states_are_said_in_words() {
        let mut d = IndexDs {
            about: About {
                binary: true,
                device_class: Some("occupancy".into()),
                ..About::default()
            },
            ..IndexDs::default()
        };
        assert_eq!(value_text(&d, 1.0), "Detected");
        assert_eq!(value_text(&d, 0.0), "Clear");
        d.about.device_class = Some("door".into());
        assert_eq!(value_text(&d, 1.0), "Open");
        d.about.binary = false;
        assert_eq!(value_text(&d, 1.0), "1");
    }
}
