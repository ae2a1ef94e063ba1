//! `/rrd/file/<path>`: one file as a person reads it: its name and device,
//! its series' last values, an interactive chart, graphs of the ranges
//! that show its data (a file four minutes old gets its last hour, zoomed
//! to its data, not a year of nothing), a custom range in local time, and
//! its exports.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;

use super::rows::{self, SeriesRow, age_text};
use super::url_escape;
use crate::clock::local;
use crate::web::access::Access;
use crate::web::chrome::Chrome;
use crate::web::query::{GraphParams, Preset, graph_size};
use crate::web::{State, WebError, graph, tree};

pub(crate) struct GraphLink {
    title: String,
    src: String,
    range_query: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "file.html")]
pub(crate) struct FilePage {
    chrome: Chrome,
    path: String,
    /// The device's address and what people call it.
    device: String,
    device_name: String,
    title: String,
    /// The topics its series come from.
    topics: String,
    /// "A value every minute; last written 09:15 (2 min ago)."
    facts: String,
    stale: bool,
    rows: Vec<SeriesRow>,
    /// Never: the file page shows its graphs large.
    thumbs: bool,
    graphs: Vec<GraphLink>,
    /// Why longer ranges are not drawn (the file is younger than them).
    young: Option<String>,
    start_text: String,
    end_text: String,
    width: u32,
    height: u32,
    dygraphs: bool,
    /// An on/off state: the chart draws a band and says its words.
    binary: bool,
    /// A meter's consumption page (a counter of energy, gas or water).
    energy_link: Option<String>,
}

pub(crate) async fn file(
    state: web::Data<State>,
    access: Access,
    path: web::Path<String>,
    params: web::Query<GraphParams>,
) -> Result<FilePage, WebError> {
    let (index, unwritten) = state.live_index(&access).await;
    let entry = state.entry(&access, &path, "").await?;
    let (width, height) = graph_size(&params)?;
    let size = format!("&width={width}&height={height}");
    let escaped = url_escape(&entry.path);
    let src = |query: &str| format!("/rrd/graph/{escaped}.png?{query}{size}");
    let now = state.now_s();
    let mut graphs = Vec::new();
    let (start_text, end_text) = if params.range.is_relative() {
        (local::form_text(now - 86_400), local::form_text(now))
    } else {
        let range = params.range.resolve(now, entry.step_secs.into())?;
        let query = format!("start={}&end={}", range.start_s, range.end_s);
        graphs.push(GraphLink {
            title: format!(
                "From {} to {}",
                local::text(range.start_s),
                local::short_text(range.end_s, range.start_s)
            ),
            src: src(&query),
            range_query: query,
        });
        (
            local::form_text(range.start_s),
            local::form_text(range.end_s),
        )
    };
    let age_s = entry.since.map(|s| (now - s).max(0));
    let (presets, cut) = presets_for(age_s);
    for p in presets {
        let query = format!("range={}", p.as_str());
        graphs.push(GraphLink {
            title: capitalised(p.title()),
            src: src(&query),
            range_query: query,
        });
    }
    let rows = rows::rows(&state, &[&entry], &unwritten, false).await;
    let facts = facts(&entry, unwritten.get(&entry.path), now);
    Ok(FilePage {
        chrome: Chrome::of(&state, &access),
        device: tree::device_of(&entry.path).to_owned(),
        device_name: tree::device_title(&tree::device_files(&index, tree::device_of(&entry.path))),
        title: graph::title_of(&entry),
        topics: entry
            .ds
            .iter()
            .map(|d| d.series.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        facts,
        stale: entry.stale,
        young: (cut && age_s.is_some()).then(|| {
            format!(
                "Its data starts {} ago: longer ranges would show the same.",
                age_text(age_s.unwrap_or(0))
            )
        }),
        rows,
        thumbs: false,
        graphs,
        start_text,
        end_text,
        width,
        height,
        dygraphs: state.dygraphs.is_some(),
        binary: entry.ds.iter().all(|d| d.about.binary),
        energy_link: entry
            .ds
            .iter()
            .find(|d| d.meter().is_some())
            .map(|d| format!("/rrd/energy/{escaped}?ds={}", url_escape(&d.name))),
        path: entry.path,
    })
}

/// The ranges worth a graph for a file whose data is `age_s` old (unknown:
/// an older file): the last hours for a young one, Munin's four
/// otherwise, up to the first range that holds all its data. `true` when
/// longer ones were left out for that reason.
fn presets_for(age_s: Option<i64>) -> (Vec<Preset>, bool) {
    let young = age_s.is_some_and(|a| a < Preset::Day.secs());
    let mut shown = Vec::new();
    for p in Preset::ALL {
        if !young && p.secs() < Preset::Day.secs() {
            continue;
        }
        shown.push(p);
        if age_s.is_some_and(|a| a <= p.secs()) {
            return (shown, p != Preset::Year);
        }
    }
    (shown, false)
}

/// "One value a minute. Last written 09:15 (2 min ago)."
fn facts(
    entry: &crate::rrd::index::IndexEntry,
    unwritten: Option<&crate::cache::Unwritten>,
    now: i64,
) -> String {
    let every = match entry.step_secs {
        60 => "One value a minute".to_owned(),
        3600 => "One value an hour".to_owned(),
        s if s % 60 == 0 => format!("One value every {} minutes", s / 60),
        s => format!("One value every {s} seconds"),
    };
    let written = match (unwritten, entry.last_update) {
        (Some(u), _) => match u.due_ms {
            Some(due) => format!(
                "Its first values are in memory; written to disk in {}",
                age_text((due.div_euclid(1000) - now).max(0))
            ),
            None => "Its first values are being written".to_owned(),
        },
        (None, Some(t)) => format!(
            "Last written {} ({} ago)",
            local::short_text(t, now),
            age_text((now - t).max(0))
        ),
        (None, None) => "Not written yet".to_owned(),
    };
    format!("{every}. {written}.")
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_young_file_gets_the_ranges_that_show_its_data() {
        assert_eq!(presets_for(Some(240)), (vec![Preset::Hour], true));
        assert_eq!(
            presets_for(Some(3 * 3600)),
            (vec![Preset::Hour, Preset::SixHours], true)
        );
        assert_eq!(
            presets_for(Some(2 * 86_400)),
            (vec![Preset::Day, Preset::Week], true)
        );
        let old = vec![Preset::Day, Preset::Week, Preset::Month, Preset::Year];
        assert_eq!(presets_for(None), (old.clone(), false));
        assert_eq!(presets_for(Some(900 * 86_400)), (old, false));
        assert_eq!(capitalised("last day"), "Last day");
    }
}
