//! What discovery said of each series, kept across restarts in
//! `<data_dir>/discovered.json`: Home Assistant configs are retained
//! messages, which the embedded broker does not keep on disk, and a device
//! resends them only when it restarts itself. Without this a restart of
//! the daemon lost every name, unit and on/off state discovery gave, until
//! each device restarted.
//!
//! Written atomically, at most every [`WRITE_AFTER`] after a change and at
//! stop, on the blocking pool; a document that cannot be read is set
//! aside and the daemon starts without it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tracing::{error, warn};

use crate::model::SeriesMeta;

const FILE_NAME: &str = "discovered.json";
const VERSION: u32 = 1;
/// A burst of discovery messages (every retained config at a subscribe)
/// makes one write.
pub const WRITE_AFTER: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    series: HashMap<String, SeriesMeta>,
}

/// The document's place, and whether what the cache knows is newer.
pub struct DiscoveredFile {
    path: PathBuf,
    dirty: bool,
}

impl DiscoveredFile {
    pub fn new(data_dir: &Path) -> DiscoveredFile {
        DiscoveredFile {
            path: data_dir.join(FILE_NAME),
            dirty: false,
        }
    }

    /// What a previous run knew; nothing if there is no document.
    pub fn read(&self) -> HashMap<String, SeriesMeta> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HashMap::new(),
            Err(e) => {
                warn!(path = %self.path.display(), error = %e, "Cannot read what discovery said; starting without it.");
                return HashMap::new();
            }
        };
        match serde_json::from_slice::<Document>(&bytes) {
            Ok(doc) if doc.version == VERSION => doc.series,
            other => {
                let why = other
                    .err()
                    .map_or("unknown version".into(), |e| e.to_string());
                let moved = std::fs::rename(&self.path, self.path.with_extension("json.bad"));
                warn!(path = %self.path.display(), why, set_aside = moved.is_ok(), "What discovery said is not readable; starting without it.");
                HashMap::new()
            }
        }
    }

    /// The cache's discovered metadata changed.
    pub fn changed(&mut self) {
        self.dirty = true;
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Writes `series` on the blocking pool if it changed.
    pub fn save(&mut self, series: &HashMap<String, SeriesMeta>) {
        if let Some(write) = self.write_job(series) {
            tokio::task::spawn_blocking(write);
        }
    }

    /// Writes `series` now if it changed (at stop).
    pub async fn save_now(&mut self, series: &HashMap<String, SeriesMeta>) {
        if let Some(write) = self.write_job(series) {
            let _ = tokio::task::spawn_blocking(write).await;
        }
    }

    fn write_job(&mut self, series: &HashMap<String, SeriesMeta>) -> Option<impl FnOnce() + use<>> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let doc = Document {
            version: VERSION,
            series: series.clone(),
        };
        let path = self.path.clone();
        Some(move || {
            let bytes = serde_json::to_vec(&doc).unwrap_or_default();
            if let Err(e) = crate::atomic_file::write_atomic(&path, &bytes) {
                error!(path = %path.display(), error = %e, "Cannot keep what discovery said: names and units come back when devices resend their configs.");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_discovery_said_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = DiscoveredFile::new(dir.path());
        assert!(file.read().is_empty());
        let series = HashMap::from([(
            "zigbee2mqtt/hall/occupancy".to_owned(),
            SeriesMeta {
                label: Some("Hall motion".into()),
                device: Some("Hall sensor".into()),
                binary: Some(true),
                hold: Some(Duration::from_secs(60)),
                ..SeriesMeta::default()
            },
        )]);
        file.save_now(&series).await;
        assert!(file.read().is_empty(), "nothing changed: nothing written");
        file.changed();
        file.save_now(&series).await;
        assert_eq!(DiscoveredFile::new(dir.path()).read(), series);
        std::fs::write(dir.path().join(FILE_NAME), "{not json").unwrap();
        assert!(file.read().is_empty());
        assert!(dir.path().join("discovered.json.bad").exists());
    }
}
