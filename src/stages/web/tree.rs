//! The index as a tree of devices, for the `/rrd` page. Pure.
//!
//! A file's device is named by its payload family's layout where we know
//! it (`tele/plug1` for Tasmota's `tele/plug1/SENSOR/ENERGY/Power`, one
//! Shelly for its relays and meters: `families::device_levels`), else it
//! is the file's directory (`zigbee2mqtt/living_room` for
//! `zigbee2mqtt/living_room/temperature`). Devices are grouped by their
//! first topic level, and called by the name discovery gave them. With 10,000 series the first page lists groups and
//! their devices (a few per group, then a link to the rest); a device's page
//! lists its series with their values; a search finds any series at once.

use crate::rrd::index::IndexEntry;

/// Devices listed per group on the first page before "all N devices".
pub const DEVICES_PER_GROUP: usize = 50;
/// Rows per page of a group's devices or of search results.
pub const PAGE_SIZE: usize = 500;

/// The device of the file at `path`: its first levels, as many as its
/// family names the device by.
pub fn device_of(path: &str) -> &str {
    let levels = crate::families::device_levels(path);
    if levels == 0 {
        return "";
    }
    match path.match_indices('/').nth(levels - 1) {
        Some((at, _)) => &path[..at],
        None => path,
    }
}

/// What people call the device of `entry`: the name discovery gave it,
/// else the device's last level as its series spells it. (`devices` and
/// `device_title` look at all of a device's files.)
pub fn device_name(entry: &IndexEntry) -> String {
    if let Some(name) = entry.ds.iter().find_map(|d| d.about.device.clone()) {
        return name;
    }
    let Some(series) = entry.ds.first().map(|d| d.series.as_str()) else {
        return String::new();
    };
    let levels = crate::families::device_levels(series);
    match series.split('/').nth(levels.wrapping_sub(1)) {
        Some(last) if levels > 0 && !last.is_empty() => last.to_owned(),
        _ => "(top level)".to_owned(),
    }
}

/// What people call a series within its device: its label, else its
/// levels below the device, without the families' plumbing levels
/// (`ENERGY Power` for Tasmota's `tele/plug1/SENSOR/ENERGY/Power`).
pub fn series_name(series: &str, label: Option<&str>) -> String {
    if let Some(label) = label {
        return label.to_owned();
    }
    let below = crate::families::field_levels(series);
    let name = if below.is_empty() {
        series.rsplit('/').next().unwrap_or(series).to_owned()
    } else {
        below.join(" ")
    };
    humanised(&name)
}

/// `illuminance_lux` → `Illuminance lux`: words, the first capitalised.
pub(crate) fn humanised(name: &str) -> String {
    let words = name.replace('_', " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// What people call a group of devices (a first topic level): the family
/// that publishes under it, where it is one we know.
pub fn group_name(group: &str) -> String {
    match group {
        "" => "(top level)".to_owned(),
        "zigbee2mqtt" => "Zigbee (zigbee2mqtt)".to_owned(),
        "tele" | "stat" => format!("Tasmota ({group})"),
        "shellies" => "Shelly".to_owned(),
        "homie" => "Homie".to_owned(),
        other => other.to_owned(),
    }
}

fn group_of(device: &str) -> &str {
    device.split('/').next().unwrap_or("")
}

#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    pub path: String,
    /// What people call it (`device_name`).
    pub name: String,
    pub files: usize,
    pub stale: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The first topic level (the group's address).
    pub name: String,
    /// What people call it (`group_name`).
    pub title: String,
    pub device_count: usize,
    pub file_count: usize,
    /// The first devices of the group (all of them on a group's page).
    pub devices: Vec<Device>,
}

/// Every device in path order, with its file counts. Entries come sorted
/// by path, so one pass over the index suffices; devices are sorted after.
pub fn devices<'a>(entries: impl IntoIterator<Item = &'a IndexEntry>) -> Vec<Device> {
    let mut out: Vec<Device> = Vec::new();
    let mut by_path = std::collections::HashMap::<&str, usize>::new();
    let mut last: Option<(&str, usize)> = None;
    for e in entries {
        let device = device_of(&e.path);
        // A device's files mostly come together: the map only when not.
        let i = match last {
            Some((path, i)) if path == device => i,
            _ => *by_path.entry(device).or_insert_with(|| {
                out.push(Device {
                    path: device.to_owned(),
                    name: device_name(e),
                    files: 0,
                    stale: 0,
                });
                out.len() - 1
            }),
        };
        last = Some((device, i));
        // Discovery may name the device on any of its files.
        if let Some(named) = e.ds.iter().find_map(|d| d.about.device.as_ref()) {
            out[i].name.clone_from(named);
        }
        out[i].files += 1;
        out[i].stale += usize::from(e.stale);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Devices (`devices`) grouped by their first level, each group showing
/// at most `per_group` devices. `only`: just that group, every device.
pub fn groups(devices: &[Device], per_group: usize, only: Option<&str>) -> Vec<Group> {
    let mut groups: Vec<Group> = Vec::new();
    for d in devices {
        let name = group_of(&d.path);
        if only.is_some_and(|g| g != name) {
            continue;
        }
        if groups.last().is_none_or(|g| g.name != name) {
            groups.push(Group {
                name: name.to_owned(),
                title: group_name(name),
                device_count: 0,
                file_count: 0,
                devices: Vec::new(),
            });
        }
        let g = groups.last_mut().expect("pushed above");
        g.device_count += 1;
        g.file_count += d.files;
        if g.devices.len() < per_group {
            g.devices.push(d.clone());
        }
    }
    groups
}

/// What people call the device of these files (all of one device): the
/// name discovery gave any of them, else what the first one says.
pub fn device_title(files: &[&IndexEntry]) -> String {
    files
        .iter()
        .find_map(|e| e.ds.iter().find_map(|d| d.about.device.clone()))
        .or_else(|| files.first().map(|e| device_name(e)))
        .unwrap_or_default()
}

/// The files directly in `device`, in path order.
pub fn device_files<'a>(entries: &'a [IndexEntry], device: &str) -> Vec<&'a IndexEntry> {
    let prefix = if device.is_empty() {
        String::new()
    } else {
        format!("{device}/")
    };
    let first = entries.partition_point(|e| e.path.as_str() < prefix.as_str());
    entries[first..]
        .iter()
        .take_while(|e| e.path.starts_with(&prefix))
        .filter(|e| device_of(&e.path) == device)
        .collect()
}

/// Files whose path, series, DS name or label contain every word of `q`
/// (case-insensitive): the first `limit`, and how many matched.
pub fn search<'a>(
    entries: &'a [IndexEntry],
    q: &str,
    limit: usize,
) -> (Vec<&'a IndexEntry>, usize) {
    let words: Vec<String> = q.split_whitespace().map(str::to_lowercase).collect();
    if words.is_empty() {
        return (Vec::new(), 0);
    }
    let mut total = 0;
    let mut found = Vec::new();
    for e in entries {
        let mut text = e.path.to_lowercase();
        for d in &e.ds {
            text.push(' ');
            text.push_str(&d.series.to_lowercase());
            text.push(' ');
            text.push_str(&d.name.to_lowercase());
            if let Some(l) = &d.label {
                text.push(' ');
                text.push_str(&l.to_lowercase());
            }
        }
        if words.iter().all(|w| text.contains(w.as_str())) {
            total += 1;
            if found.len() < limit {
                found.push(e);
            }
        }
    }
    (found, total)
}

/// Binary search of the (sorted) index for one file.
pub fn find<'a>(entries: &'a [IndexEntry], path: &str) -> Option<&'a IndexEntry> {
    entries
        .binary_search_by(|e| e.path.as_str().cmp(path))
        .ok()
        .map(|i| &entries[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rrd::index::IndexDs;

    pub(crate) fn entry(path: &str) -> IndexEntry {
        IndexEntry {
            path: path.into(),
            template: "default".into(),
            step_secs: 60,
            ds: vec![IndexDs {
                name: "value".into(),
                series: path.replace(".2f", "/"),
                label: None,
                unit: None,
                stale_after_secs: 600,
                about: Default::default(),
                last_value: None,
                ds_type: None,
            }],
            last_update: Some(1_763_900_000),
            stale: path.ends_with("old"),
            since: None,
        }
    }

    fn index(paths: &[&str]) -> Vec<IndexEntry> {
        let mut v: Vec<IndexEntry> = paths.iter().map(|p| entry(p)).collect();
        v.sort_by(|a, b| a.path.cmp(&b.path));
        v
    }

    #[test]
    fn files_are_grouped_by_device_and_first_level() {
        let idx = index(&[
            "z2m/kitchen/temperature",
            "z2m/kitchen/humidity",
            "z2m/hall/old",
            "z2m/kitchen/plug/power",
            "tasmota/plug1/energy",
            "top",
        ]);
        let g = groups(&devices(&idx), 10, None);
        let names: Vec<&str> = g.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["", "tasmota", "z2m"]);
        let z2m = &g[2];
        assert_eq!((z2m.device_count, z2m.file_count), (3, 4));
        let devices: Vec<(&str, usize, usize)> = z2m
            .devices
            .iter()
            .map(|d| (d.path.as_str(), d.files, d.stale))
            .collect();
        assert_eq!(
            devices,
            [
                ("z2m/hall", 1, 1),
                ("z2m/kitchen", 2, 0),
                ("z2m/kitchen/plug", 1, 0)
            ]
        );
        let files: Vec<&str> = device_files(&idx, "z2m/kitchen")
            .iter()
            .map(|e| e.path.as_str())
            .collect();
        assert_eq!(files, ["z2m/kitchen/humidity", "z2m/kitchen/temperature"]);
        assert_eq!(device_files(&idx, "")[0].path, "top");
        assert!(find(&idx, "z2m/kitchen/plug/power").is_some());
        assert!(find(&idx, "z2m/kitchen/../kitchen/humidity").is_none());
    }

    #[test]
    fn big_groups_are_cut_and_a_group_page_lists_all() {
        let paths: Vec<String> = (0..120).map(|i| format!("sensors/s{i:03}/t")).collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let idx = index(&refs);
        let g = groups(&devices(&idx), DEVICES_PER_GROUP, None);
        assert_eq!(
            (g[0].device_count, g[0].devices.len()),
            (120, DEVICES_PER_GROUP)
        );
        let all = groups(&devices(&idx), usize::MAX, Some("sensors"));
        assert_eq!(all[0].devices.len(), 120);
        assert!(groups(&devices(&idx), 10, Some("nothing")).is_empty());
    }

    #[test]
    fn search_matches_every_word_case_insensitively() {
        let idx = index(&[
            "z2m/Kitchen/temperature",
            "z2m/hall/temperature",
            "z2m/kitchen/humidity",
        ]);
        let (found, total) = search(&idx, "kitchen TEMP", 10);
        assert_eq!(total, 1);
        assert_eq!(found[0].path, "z2m/Kitchen/temperature");
        let (found, total) = search(&idx, "z2m", 2);
        assert_eq!((found.len(), total), (2, 3));
        assert_eq!(search(&idx, "   ", 10).1, 0);
    }
}
