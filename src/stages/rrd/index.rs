//! The index of RRD files: `index.txt` in janitoo's format (file names
//! without `.rrd`, joined by `|`) and `index.json` with each file's series,
//! DS, template and last update. Owned by the RRD thread, the one writer of
//! the files it describes; rewritten atomically.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic_file::{write_atomic, write_atomic_with};
use crate::model::{About, DsSpec, DsType, FileSpec};

const VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexDs {
    pub name: String,
    pub series: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// A series whose last sample is older than this is shown as stale:
    /// its graph is going unknown (the longer of heartbeat and hold).
    #[serde(default)]
    pub stale_after_secs: u64,
    /// Device class, device name, on/off (absent when unknown).
    #[serde(default, flatten)]
    pub about: About,
    /// The last value written (read from the file at start): what the
    /// pages show until the series sends again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<f64>,
    /// The DS's type as the file has it (read from the file the first
    /// time this run writes it, which may differ from what the
    /// configuration now wants); unknown in an index written before.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub ds_type: Option<DsType>,
}

impl IndexDs {
    fn of(d: &DsSpec) -> Self {
        IndexDs {
            name: d.name.clone(),
            series: d.series.clone(),
            label: d.label.clone(),
            unit: d.unit.clone(),
            stale_after_secs: stale_after_secs(d),
            about: d.about.clone(),
            last_value: None,
            ds_type: Some(d.ds_type),
        }
    }

    /// The meter this DS is, if it counts energy, gas or water: as the
    /// file stores it (a counter, or a gauge of readings its family says
    /// count). Unknown until this run has read the file's type.
    pub fn meter(&self) -> Option<crate::energy::Meter> {
        // The unit and type first: the overview asks every DS of the
        // index, and only a gauge needs its family's word.
        let unit = self
            .unit
            .as_deref()
            .filter(|u| crate::energy::is_counted_unit(u))?;
        let ds_type = self.ds_type?;
        let family_counter =
            ds_type == DsType::Gauge && crate::families::known(&self.series).counter;
        crate::energy::Meter::of(Some(unit), ds_type, family_counter)
    }

    fn describes(&self, d: &DsSpec) -> bool {
        self.name == d.name
            && self.series == d.series
            && self.label == d.label
            && self.unit == d.unit
            && self.stale_after_secs == stale_after_secs(d)
            && self.about == d.about
    }
}

fn stale_after_secs(d: &DsSpec) -> u64 {
    d.hold.as_secs().max(d.heartbeat_secs.into())
}

/// A file of the index. (Also how the web UI shows a file whose rows are
/// still all in the cache.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Relative to the data directory, without `.rrd`.
    pub path: String,
    pub template: String,
    pub step_secs: u32,
    pub ds: Vec<IndexDs>,
    /// Unix seconds of the file's last update.
    pub last_update: Option<i64>,
    /// The series stopped reporting (`cache.dead_after`); the file stays.
    #[serde(default)]
    pub stale: bool,
    /// Unix seconds where the file's data starts, for the files this
    /// daemon created: graphs of a young file zoom to its data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
}

/// `index.json` as read back.
impl IndexEntry {
    pub fn of(spec: &FileSpec, last_update: Option<i64>) -> IndexEntry {
        IndexEntry {
            path: spec.rel_path.clone(),
            template: spec.template.clone(),
            step_secs: spec.step_secs,
            ds: spec.ds.iter().map(IndexDs::of).collect(),
            last_update,
            stale: false,
            since: None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct IndexJson {
    version: u32,
    files: Vec<IndexEntry>,
}

/// What the compact document starts with, before its first file, for a
/// writer that sends it in pieces (the web UI); it ends with `]}`.
pub const COMPACT_OPENING: &[u8] = b"{\"version\":1,\"files\":[";

/// `index.json` as written, and as the web UI serves a user's part of it:
/// the files serialised one by one from `files`, never copied together.
#[derive(Debug)]
pub struct IndexDocument<I> {
    version: u32,
    files: I,
}

impl<'a, I> IndexDocument<I>
where
    I: Iterator<Item = &'a IndexEntry> + Clone,
{
    pub fn new(files: I) -> IndexDocument<I> {
        IndexDocument {
            version: VERSION,
            files,
        }
    }
}

impl<'a, I> Serialize for IndexDocument<I>
where
    I: Iterator<Item = &'a IndexEntry> + Clone,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        struct Files<I>(I);
        impl<'a, I> Serialize for Files<I>
        where
            I: Iterator<Item = &'a IndexEntry> + Clone,
        {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.clone())
            }
        }
        let mut document = serializer.serialize_struct("IndexDocument", 2)?;
        document.serialize_field("version", &self.version)?;
        document.serialize_field("files", &Files(self.files.clone()))?;
        document.end()
    }
}

#[derive(Debug, Default)]
pub struct Index {
    entries: BTreeMap<String, IndexEntry>,
    /// Files, layouts or staleness changed since the last write: what a
    /// reader of the index must see soon.
    listing_changed: bool,
    /// Only last updates moved: they are on disk in the files themselves,
    /// so the index may carry them late (an SD card is spared a rewrite of
    /// both index files after every flush).
    updates_changed: bool,
}

/// What [`Index::write`] is asked to bring to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexWrite {
    /// Only if the listing changed.
    Listing,
    /// Also if only last updates moved.
    Everything,
}

impl Index {
    /// Reads `index.json` from a previous run. A missing file is an empty
    /// index; an unreadable one too, with the reason returned for the log
    /// (the index is rebuilt as files are written).
    pub fn load(data_dir: &Path) -> (Index, Option<String>) {
        let path = data_dir.join("index.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return (Index::default(), None),
            Err(e) => return (Index::default(), Some(format!("{}: {e}", path.display()))),
        };
        match serde_json::from_str::<IndexJson>(&text) {
            Ok(j) if j.version == VERSION => {
                let entries = j.files.into_iter().map(|e| (e.path.clone(), e)).collect();
                (
                    Index {
                        entries,
                        ..Index::default()
                    },
                    None,
                )
            }
            Ok(j) => (
                Index::default(),
                Some(format!("{}: unknown version {}", path.display(), j.version)),
            ),
            Err(e) => (Index::default(), Some(format!("{}: {e}", path.display()))),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[cfg(test)]
    pub fn get(&self, path: &str) -> Option<&IndexEntry> {
        self.entries.get(path)
    }

    /// Records that a file exists with this spec and last update; `true`
    /// when the file is new to the index (or its layout changed). Cheap when
    /// only the last update moves: it runs for every batch written.
    pub fn record(&mut self, spec: &FileSpec, last_update: Option<i64>) -> bool {
        if let Some(e) = self.entries.get_mut(&spec.rel_path)
            && e.template == spec.template
            && e.step_secs == spec.step_secs
            && e.ds.len() == spec.ds.len()
            && e.ds.iter().zip(&spec.ds).all(|(a, b)| a.describes(b))
        {
            if e.stale {
                e.stale = false;
                self.listing_changed = true;
            }
            if e.last_update != last_update {
                e.last_update = last_update;
                self.updates_changed = true;
            }
            return false;
        }
        let mut entry = IndexEntry::of(spec, last_update);
        // A layout changed by a reload keeps what its DS last had.
        if let Some(old) = self.entries.get(&spec.rel_path) {
            for d in &mut entry.ds {
                d.last_value = old
                    .ds
                    .iter()
                    .find(|o| o.name == d.name)
                    .and_then(|o| o.last_value);
            }
        }
        self.entries.insert(spec.rel_path.clone(), entry);
        self.listing_changed = true;
        true
    }

    /// The last value of each DS of the file at `rel_path`, by DS name
    /// (a name the entry lacks, or `None`, changes nothing).
    pub fn set_last_values<'a>(
        &mut self,
        rel_path: &str,
        values: impl IntoIterator<Item = (&'a str, Option<f64>)>,
    ) {
        let Some(e) = self.entries.get_mut(rel_path) else {
            return;
        };
        for (name, value) in values {
            if let (Some(d), Some(v)) = (e.ds.iter_mut().find(|d| d.name == name), value)
                && d.last_value != Some(v)
            {
                d.last_value = Some(v);
                self.updates_changed = true;
            }
        }
    }

    /// The DS types the file at `rel_path` has on disk (they stay what
    /// they are while the configuration wants another kind: see
    /// `layout::keeping_kinds`).
    pub fn set_ds_types(&mut self, rel_path: &str, types: &[(String, DsType)]) {
        let Some(e) = self.entries.get_mut(rel_path) else {
            return;
        };
        for (name, t) in types {
            if let Some(d) = e.ds.iter_mut().find(|d| &d.name == name)
                && d.ds_type != Some(*t)
            {
                d.ds_type = Some(*t);
                self.listing_changed = true;
            }
        }
    }

    /// Paths of every file, in order.
    pub fn paths(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Where the data of the file at `rel_path` starts (it was just
    /// created).
    pub fn set_since(&mut self, rel_path: &str, since_s: i64) {
        if let Some(e) = self.entries.get_mut(rel_path)
            && e.since != Some(since_s)
        {
            e.since = Some(since_s);
            self.listing_changed = true;
        }
    }

    /// Moves `from`'s entry to the path `to`, its series `old_series` now
    /// named `new_series`; `false` if `from` is unknown.
    pub fn rename_file(
        &mut self,
        from: &str,
        to: &str,
        old_series: &str,
        new_series: &str,
    ) -> bool {
        let Some(mut entry) = self.entries.remove(from) else {
            return false;
        };
        entry.path = to.to_owned();
        for d in &mut entry.ds {
            if d.series == old_series {
                d.series = new_series.to_owned();
            }
        }
        self.entries.insert(to.to_owned(), entry);
        self.listing_changed = true;
        true
    }

    /// Marks a file whose series stopped reporting; `false` if unknown.
    pub fn mark_stale(&mut self, path: &str) -> bool {
        match self.entries.get_mut(path) {
            Some(e) if !e.stale => {
                e.stale = true;
                self.listing_changed = true;
                true
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Anything changed since the last write.
    pub fn is_dirty(&self) -> bool {
        self.listing_changed || self.updates_changed
    }

    /// The listing changed since the last write.
    #[cfg(test)]
    pub fn listing_changed(&self) -> bool {
        self.listing_changed
    }

    /// Every entry, in path order: what the web UI lists.
    pub fn entries(&self) -> Vec<IndexEntry> {
        self.entries.values().cloned().collect()
    }

    pub fn to_txt(&self) -> String {
        self.entries
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("|")
    }

    /// `index.json`, written into `out` one file at a time.
    pub fn write_json(&self, out: &mut dyn io::Write) -> io::Result<()> {
        serde_json::to_writer_pretty(out, &IndexDocument::new(self.entries.values()))
            .map_err(io::Error::from)
    }

    /// Writes what changed since the last write, as `what` allows:
    /// `index.txt` (paths only) when the listing changed, `index.json` when
    /// the listing or, for [`IndexWrite::Everything`], a last update did.
    /// The bytes written, 0 if nothing was due.
    pub fn write(&mut self, data_dir: &Path, what: IndexWrite) -> io::Result<u64> {
        let json = self.listing_changed || (self.updates_changed && what == IndexWrite::Everything);
        if !json {
            return Ok(0);
        }
        let mut bytes = 0;
        if self.listing_changed {
            let txt = self.to_txt();
            write_atomic(&data_dir.join("index.txt"), txt.as_bytes())?;
            bytes += txt.len() as u64;
        }
        bytes += write_atomic_with(&data_dir.join("index.json"), |out| self.write_json(out))?;
        self.listing_changed = false;
        self.updates_changed = false;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &str) -> FileSpec {
        FileSpec {
            rel_path: path.into(),
            template: "default".into(),
            step_secs: 60,
            ds: vec![DsSpec::test_gauge("value", path)],
            rras: vec![].into(),
        }
    }

    /// The file is written from the entries one by one (never copied into
    /// one string), and starts as the web UI's pieces say it does.
    #[test]
    fn the_json_is_streamed_and_its_compact_form_starts_with_the_opening() {
        let mut index = Index::default();
        index.record(&spec("home/a"), Some(60));
        index.record(&spec("home/b"), None);
        let mut streamed = Vec::new();
        index.write_json(&mut streamed).unwrap();
        let read: IndexJson = serde_json::from_slice(&streamed).unwrap();
        assert_eq!(read.version, VERSION);
        let paths: Vec<&str> = read.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["home/a", "home/b"]);
        let compact = serde_json::to_vec(&IndexDocument::new(index.entries.values())).unwrap();
        assert!(compact.starts_with(COMPACT_OPENING));
        assert!(compact.ends_with(b"]}"));
    }

    #[test]
    fn writes_janitoo_txt_and_json_and_reads_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::default();
        index.record(&spec("home/b"), Some(120));
        index.record(&spec("home/a"), None);
        assert!(index.write(dir.path(), IndexWrite::Listing).unwrap() > 0);
        assert!(!index.is_dirty());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("index.txt")).unwrap(),
            "home/a|home/b"
        );
        let (loaded, problem) = Index::load(dir.path());
        assert_eq!(problem, None);
        assert_eq!(loaded.get("home/b").unwrap().last_update, Some(120));
        assert_eq!(loaded.get("home/a").unwrap().ds[0].series, "home/a");
    }

    #[test]
    fn stale_files_are_marked_until_written_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::default();
        index.record(&spec("home/a"), Some(60));
        index.write(dir.path(), IndexWrite::Listing).unwrap();
        assert!(index.mark_stale("home/a"));
        assert!(!index.mark_stale("home/unknown"));
        assert!(index.listing_changed());
        assert!(index.write(dir.path(), IndexWrite::Listing).unwrap() > 0);
        let (loaded, _) = Index::load(dir.path());
        assert!(loaded.get("home/a").unwrap().stale);
        index.record(&spec("home/a"), Some(120));
        assert!(!index.get("home/a").unwrap().stale);
    }

    #[test]
    fn last_updates_alone_wait_for_an_everything_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = Index::default();
        index.record(&spec("home/a"), Some(60));
        index.write(dir.path(), IndexWrite::Listing).unwrap();
        let txt = dir.path().join("index.txt");
        // A write replaces the file (a rename): a new inode.
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let txt_written = inode(&txt);

        assert!(!index.record(&spec("home/a"), Some(120)));
        assert!(index.is_dirty() && !index.listing_changed());
        assert_eq!(index.write(dir.path(), IndexWrite::Listing).unwrap(), 0);
        assert_eq!(
            Index::load(dir.path()).0.get("home/a").unwrap().last_update,
            Some(60)
        );

        assert!(index.write(dir.path(), IndexWrite::Everything).unwrap() > 0);
        assert!(!index.is_dirty());
        assert_eq!(
            Index::load(dir.path()).0.get("home/a").unwrap().last_update,
            Some(120)
        );
        // The paths did not change: index.txt was left alone.
        assert_eq!(inode(&txt), txt_written);
    }

    #[test]
    fn a_corrupt_index_is_reported_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("index.json"),
            "{\"version\": 1, \"files\": [",
        )
        .unwrap();
        let (index, problem) = Index::load(dir.path());
        assert!(index.is_empty());
        assert!(problem.unwrap().contains("index.json"));
        let (_, problem) = Index::load(&dir.path().join("missing"));
        assert_eq!(problem, None);
    }
}
