//! The HTML pages: `/rrd` (groups of devices, a device's series, a search;
//! `rows.rs` makes their table rows) and `/rrd/file/<path>` (`file.rs`).
//! Page structs feed askama templates compiled into the binary.
//!
//! Files whose rows are all still in the cache (a series' first minutes,
//! before its first write) are listed like the others, with their live
//! value and when their first write comes.

mod file;
mod rows;

use std::collections::HashMap;

use actix_web::web;
use askama::Template;
use askama_web::WebTemplate;
use serde::Deserialize;

pub(crate) use self::file::file;
pub(crate) use self::rows::{SeriesRow, age_text};
use super::access::Access;
use super::chrome::Chrome;
use super::tree::{self, DEVICES_PER_GROUP, Group, PAGE_SIZE};
use super::{State, WebError};
use crate::cache::Unwritten;
use crate::rrd::index::IndexEntry;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct IndexParams {
    q: Option<String>,
    group: Option<String>,
    device: Option<String>,
    page: Option<usize>,
}

#[derive(Template, WebTemplate)]
#[template(path = "index.html")]
pub(crate) struct IndexPage {
    chrome: Chrome,
    heading: String,
    /// Under the heading: a device's topic, say.
    subheading: String,
    q: String,
    devices: usize,
    series: usize,
    /// Series whose first write is still to come, and when the first comes.
    new_series: usize,
    first_write: String,
    groups: Vec<Group>,
    /// On the first page: groups cut at `DEVICES_PER_GROUP` devices.
    cut: bool,
    rows: Vec<SeriesRow>,
    /// A small day graph per file beside its rows (an overview).
    thumbs: bool,
    /// A device's automatic dashboard (a chart per quantity).
    dashboard_link: Option<String>,
    /// Matches beyond the rows shown (search), or devices beyond the page.
    more: usize,
    next_page: Option<String>,
    prev_page: Option<String>,
}

/// Query text is bounded: a search of 10 MB of words is an attack.
const MAX_QUERY: usize = 200;

pub(crate) async fn index(
    state: web::Data<State>,
    access: Access,
    params: web::Query<IndexParams>,
) -> Result<IndexPage, WebError> {
    let q = params.q.clone().unwrap_or_default();
    if q.len() > MAX_QUERY {
        return Err(WebError::BadQuery(format!("q: at most {MAX_QUERY} bytes")));
    }
    let (index, unwritten) = state.live_index(&access).await;
    let mut page = IndexPage {
        chrome: Chrome::of(&state, &access),
        heading: "All devices".into(),
        subheading: String::new(),
        q: q.clone(),
        devices: 0,
        series: index.iter().map(|e| e.ds.len()).sum(),
        new_series: unwritten.values().map(|u| u.spec.ds.len()).sum(),
        first_write: first_write(&unwritten, state.now_s()),
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
        search(&state, &mut page, &index, &unwritten, &q).await;
    } else if let Some(device) = &params.device {
        device_files(&state, &mut page, &index, &unwritten, device, n).await?;
    } else if let Some(group) = &params.group {
        group_devices(&mut page, &state.devices(&index), &index, group, n)?;
    } else {
        page.groups = tree::groups(&state.devices(&index), DEVICES_PER_GROUP, None);
        page.devices = page.groups.iter().map(|g| g.device_count).sum();
        page.cut = true;
    }
    Ok(page)
}

/// "in 4 min": the soonest first write of the unwritten files.
fn first_write(unwritten: &HashMap<String, Unwritten>, now_s: i64) -> String {
    let soonest = unwritten.values().filter_map(|u| u.due_ms).min();
    match soonest {
        Some(due_ms) => format!("in {}", age_text((due_ms.div_euclid(1000) - now_s).max(0))),
        None if unwritten.is_empty() => String::new(),
        None => "now".into(),
    }
}

/// The files whose path or label matches `q`, the first page of them.
async fn search(
    state: &State,
    page: &mut IndexPage,
    index: &[IndexEntry],
    unwritten: &HashMap<String, Unwritten>,
    q: &str,
) {
    let (found, total) = tree::search(index, q, PAGE_SIZE);
    page.heading = match total {
        1 => format!("1 series matches “{q}”"),
        n => format!("{n} series match “{q}”"),
    };
    page.more = total - found.len();
    page.new_series = 0;
    // The summary counts what is shown, not every file.
    page.devices = tree::devices(found.iter().copied()).len();
    page.series = found.iter().map(|e| e.ds.len()).sum();
    page.rows = rows::rows(state, &found, unwritten, true).await;
}

/// One device's files, page `n` of them.
async fn device_files(
    state: &State,
    page: &mut IndexPage,
    index: &[IndexEntry],
    unwritten: &HashMap<String, Unwritten>,
    device: &str,
    n: usize,
) -> Result<(), WebError> {
    let files = tree::device_files(index, device);
    if files.is_empty() {
        return Err(WebError::NotFound(format!("device {device:?}")));
    }
    page.heading = tree::device_title(&files);
    page.subheading = device.to_owned();
    page.dashboard_link = Some(format!(
        "/rrd/device-dashboard?device={}",
        url_escape(device)
    ));
    // The summary counts this device's files, not all of them; its new
    // series say so in their rows.
    page.devices = 1;
    page.new_series = 0;
    page.series = files.iter().map(|e| e.ds.len()).sum();
    let shown: Vec<&IndexEntry> = files
        .iter()
        .skip(n * PAGE_SIZE)
        .take(PAGE_SIZE)
        .copied()
        .collect();
    page.paged(n, files.len(), &format!("?device={}", url_escape(device)));
    page.rows = rows::rows(state, &shown, unwritten, true).await;
    Ok(())
}

/// One group's devices, page `n` of them.
fn group_devices(
    page: &mut IndexPage,
    devices: &[tree::Device],
    index: &[IndexEntry],
    group: &str,
    n: usize,
) -> Result<(), WebError> {
    let mut groups = tree::groups(devices, usize::MAX, Some(group));
    let Some(g) = groups.first_mut() else {
        return Err(WebError::NotFound(format!("group {group:?}")));
    };
    let total = g.devices.len();
    let group_files: Vec<&IndexEntry> = g
        .devices
        .iter()
        .flat_map(|d| tree::device_files(index, &d.path))
        .collect();
    page.devices = total;
    page.series = group_files.iter().map(|e| e.ds.len()).sum();
    g.devices = g
        .devices
        .drain(..)
        .skip(n * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    page.paged(n, total, &format!("?group={}", url_escape(group)));
    page.heading = g.title.clone();
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
pub(crate) fn url_escape(s: &str) -> String {
    let Ok(encoded) = askama::filters::urlencode(s);
    encoded.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_escaped_as_the_templates_do() {
        assert_eq!(url_escape("a b&c/d"), "a%20b%26c/d");
    }
}
