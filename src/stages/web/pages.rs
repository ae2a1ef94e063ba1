//! The HTML pages: `/rrd` (groups of devices, a device's series, a search)
//! and `/rrd/file/<path>` (graphs, DS table, exports, interactive chart).
//! Page structs feed askama templates compiled into the binary.

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

use super::access::Access;
use super::query::{GraphParams, Preset, form_text, graph_size, utc_text};
use super::tree::{self, DEVICES_PER_GROUP, Group, PAGE_SIZE};
use super::{State, WebError};
use crate::rrd::index::IndexEntry;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct IndexParams {
    q: Option<String>,
    group: Option<String>,
    device: Option<String>,
    page: Option<usize>,
}

/// One DS of one file, as a row of a table.
pub(crate) struct SeriesRow {
    file: String,
    ds: String,
    name: String,
    series: String,
    value: String,
    unit: String,
    age: String,
    stale: bool,
    /// On each file's first row: its day graph, small, for the overview.
    thumb: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
pub(crate) struct IndexPage {
    heading: String,
    q: String,
    files: usize,
    series: usize,
    groups: Vec<Group>,
    /// On the first page: groups cut at `DEVICES_PER_GROUP` devices.
    cut: bool,
    rows: Vec<SeriesRow>,
    /// A small day graph per file beside its rows (an overview).
    thumbs: bool,
    /// A device's automatic dashboard (one chart per unit).
    dashboard_link: Option<String>,
    /// Matches beyond the rows shown (search), or devices beyond the page.
    more: usize,
    next_page: Option<String>,
    prev_page: Option<String>,
}

/// The overview's graphs: the smallest librrd draws legibly.
const THUMB_WIDTH: u32 = 300;
const THUMB_HEIGHT: u32 = 80;

/// Query text is bounded: a search of 10 MB of words is an attack.
const MAX_QUERY: usize = 200;

pub(crate) async fn index(
    state: web::Data<State>,
    access: Access,
    params: web::Query<IndexParams>,
) -> Result<IndexPage, WebError> {
    let index = state.index(&access);
    let q = params.q.clone().unwrap_or_default();
    if q.len() > MAX_QUERY {
        return Err(WebError::BadQuery(format!("q: at most {MAX_QUERY} bytes")));
    }
    let mut page = IndexPage {
        heading: "All devices".into(),
        q: q.clone(),
        files: index.len(),
        series: index.iter().map(|e| e.ds.len()).sum(),
        groups: Vec::new(),
        cut: false,
        rows: Vec::new(),
        thumbs: true,
        dashboard_link: None,
        more: 0,
        next_page: None,
        prev_page: None,
    };
    let n = params.page.unwrap_or(0);
    if !q.trim().is_empty() {
        search(&state, &mut page, &index, &q).await;
    } else if let Some(device) = &params.device {
        device_files(&state, &mut page, &index, device, n).await?;
    } else if let Some(group) = &params.group {
        group_devices(&mut page, &index, group, n)?;
    } else {
        page.groups = tree::groups(&index, DEVICES_PER_GROUP, None);
        page.cut = true;
    }
    Ok(page)
}

/// The files whose path or label matches `q`, the first page of them.
async fn search(state: &State, page: &mut IndexPage, index: &[IndexEntry], q: &str) {
    let (found, total) = tree::search(index, q, PAGE_SIZE);
    page.heading = format!("{total} files match “{q}”");
    page.more = total - found.len();
    // The summary counts what is shown, not every file.
    page.files = found.len();
    page.series = found.iter().map(|e| e.ds.len()).sum();
    page.rows = rows(state, &found, true).await;
}

/// One device's files, page `n` of them.
async fn device_files(
    state: &State,
    page: &mut IndexPage,
    index: &[IndexEntry],
    device: &str,
    n: usize,
) -> Result<(), WebError> {
    let files = tree::device_files(index, device);
    if files.is_empty() {
        return Err(WebError::NotFound(format!("device {device:?}")));
    }
    page.heading = if device.is_empty() {
        "(top level)".into()
    } else {
        device.to_owned()
    };
    page.dashboard_link = Some(format!(
        "/rrd/device-dashboard?device={}",
        url_escape(device)
    ));
    // The summary counts this device's files, not all of them.
    page.files = files.len();
    page.series = files.iter().map(|e| e.ds.len()).sum();
    let shown: Vec<&IndexEntry> = files
        .iter()
        .skip(n * PAGE_SIZE)
        .take(PAGE_SIZE)
        .copied()
        .collect();
    page.paged(n, files.len(), &format!("?device={}", url_escape(device)));
    page.rows = rows(state, &shown, true).await;
    Ok(())
}

/// One group's devices, page `n` of them.
fn group_devices(
    page: &mut IndexPage,
    index: &[IndexEntry],
    group: &str,
    n: usize,
) -> Result<(), WebError> {
    let mut groups = tree::groups(index, usize::MAX, Some(group));
    let Some(g) = groups.first_mut() else {
        return Err(WebError::NotFound(format!("group {group:?}")));
    };
    let total = g.devices.len();
    let group_files: Vec<&IndexEntry> = g
        .devices
        .iter()
        .flat_map(|d| tree::device_files(index, &d.path))
        .collect();
    page.files = group_files.len();
    page.series = group_files.iter().map(|e| e.ds.len()).sum();
    g.devices = g
        .devices
        .drain(..)
        .skip(n * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    page.paged(n, total, &format!("?group={}", url_escape(group)));
    page.heading = format!("{group}: {total} devices");
    page.groups = groups;
    Ok(())
}

impl IndexPage {
    /// Links to the pages before and after page `n` of `total` items;
    /// `query`: the page's own query, without the page number.
    fn paged(&mut self, n: usize, total: usize, query: &str) {
        let link = |p: usize| format!("{query}&page={p}");
        self.next_page = ((n + 1) * PAGE_SIZE < total).then(|| link(n + 1));
        self.prev_page = (n > 0).then(|| link(n - 1));
    }
}

/// Percent-encodes a path or query value for a link built in Rust: the
/// templates' own `urlencode` filter, so both escape alike.
pub(super) fn url_escape(s: &str) -> String {
    let Ok(encoded) = askama::filters::urlencode(s);
    encoded.to_string()
}

/// Table rows for these files, with each series' latest sample from the
/// cache (or the file's last update when the cache has not seen it).
async fn rows(state: &State, files: &[&IndexEntry], thumbs: bool) -> Vec<SeriesRow> {
    let series: Vec<String> = files
        .iter()
        .flat_map(|e| e.ds.iter().map(|d| d.series.clone()))
        .collect();
    let latest = state.cache.latest(series).await.unwrap_or_default();
    let now_s = state.now_s();
    let mut latest = latest.into_iter();
    let mut out = Vec::with_capacity(files.len());
    for e in files {
        for (i, d) in e.ds.iter().enumerate() {
            let sample = latest.next().flatten();
            let seen_s = sample.map(|(_, t)| t.div_euclid(1000)).or(e.last_update);
            let age_s = seen_s.map(|t| (now_s - t).max(0));
            out.push(SeriesRow {
                file: e.path.clone(),
                ds: d.name.clone(),
                name: d.label.clone().unwrap_or_else(|| d.series.clone()),
                series: d.series.clone(),
                value: sample.map_or_else(|| "—".into(), |(v, _)| format_value(v)),
                unit: d.unit.clone().unwrap_or_default(),
                age: age_s.map_or_else(|| "never".into(), age_text),
                stale: e.stale
                    || age_s.is_none_or(|a| a as u64 > d.stale_after_secs.max(e.step_secs.into())),
                thumb: (thumbs && i == 0).then(|| {
                    format!(
                        "/rrd/graph/{}.png?range=day&width={THUMB_WIDTH}&height={THUMB_HEIGHT}&legend=false",
                        url_escape(&e.path)
                    )
                }),
            });
        }
    }
    out
}

/// A value with at most 4 decimals and no trailing zeros.
fn format_value(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_owned() }
}

fn age_text(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

pub(crate) struct GraphLink {
    title: String,
    src: String,
    range_query: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "file.html")]
pub(crate) struct FilePage {
    path: String,
    device: String,
    template: String,
    step_secs: u32,
    last_update: String,
    stale: bool,
    rows: Vec<SeriesRow>,
    /// Never: the file page shows its graphs large.
    thumbs: bool,
    graphs: Vec<GraphLink>,
    start_text: String,
    end_text: String,
    width: u32,
    height: u32,
    dygraphs: bool,
}

pub(crate) async fn file(
    state: web::Data<State>,
    access: Access,
    path: web::Path<String>,
    params: web::Query<GraphParams>,
) -> Result<FilePage, WebError> {
    let entry = state.entry(&access, &path, "")?;
    let (width, height) = graph_size(&params)?;
    let size = format!("&width={width}&height={height}");
    let src = |query: &str| format!("/rrd/graph/{}.png?{query}{size}", entry.path);
    let custom = params.range.start.is_some() || params.range.end.is_some();
    let mut graphs = Vec::new();
    let (start_text, end_text) = if custom {
        let range = params
            .range
            .resolve(state.now_s(), entry.step_secs.into())?;
        let query = format!("start={}&end={}", range.start_s, range.end_s);
        graphs.push(GraphLink {
            title: format!(
                "{} to {} (UTC)",
                utc_text(range.start_s),
                utc_text(range.end_s)
            ),
            src: src(&query),
            range_query: query,
        });
        (form_text(range.start_s), form_text(range.end_s))
    } else {
        let now = state.now_s();
        (form_text(now - 86_400), form_text(now))
    };
    for p in Preset::ALL {
        let query = format!("range={}", p.as_str());
        graphs.push(GraphLink {
            title: format!("Last {}", p.as_str()),
            src: src(&query),
            range_query: query,
        });
    }
    let rows = rows(&state, &[&entry], false).await;
    Ok(FilePage {
        device: tree::device_of(&entry.path).to_owned(),
        template: entry.template.clone(),
        step_secs: entry.step_secs,
        last_update: entry.last_update.map_or_else(|| "never".into(), utc_text),
        stale: entry.stale,
        rows,
        thumbs: false,
        graphs,
        start_text,
        end_text,
        width,
        height,
        dygraphs: state.dygraphs.is_some(),
        path: entry.path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_ages_and_urls_read_well() {
        assert_eq!(format_value(21.5), "21.5");
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(-0.00001), "0");
        assert_eq!(format_value(1.0 / 3.0), "0.3333");
        assert_eq!(age_text(59), "59 s");
        assert_eq!(age_text(600), "10 min");
        assert_eq!(age_text(7200), "2 h");
        assert_eq!(age_text(5 * 86_400), "5 d");
        assert_eq!(url_escape("a b&c/d"), "a%20b%26c/d");
    }
}
