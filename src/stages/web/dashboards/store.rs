//! The dashboards made in the browser: one JSON document under
//! `data_dir` (`dashboards.json`, versioned), written atomically, read at
//! start, each dashboard checked by the same validation as a
//! `[[dashboard]]` (a group removed from the config leaves it out).

use std::path::PathBuf;
use std::sync::RwLock;

use actix_web::web;
use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::{Dashboard, KeyError, StoredDashboard, WebGroup};
use crate::web::WebError;

const FILE_NAME: &str = "dashboards.json";
const VERSION: u32 = 1;

/// The dashboards made in the browser: as stored, and as checked.
pub(crate) struct Saved {
    path: PathBuf,
    dashboards: RwLock<Vec<(StoredDashboard, Dashboard)>>,
    /// Held from a change to its write: two editors saving at once must not
    /// put the older document on disk last.
    writing: tokio::sync::Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct Document {
    version: u32,
    dashboards: Vec<StoredDashboard>,
}

impl Saved {
    /// Reads `<data_dir>/dashboards.json`. An unreadable document is set
    /// aside (renamed `.bad`) and logged; a dashboard that no longer passes
    /// the checks (a group removed from the config) is left out and logged.
    pub fn load(data_dir: &std::path::Path, groups: &[WebGroup]) -> Saved {
        let path = data_dir.join(FILE_NAME);
        let mut dashboards = Vec::new();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Document>(&bytes) {
                Ok(doc) if doc.version == VERSION => {
                    for stored in doc.dashboards {
                        match crate::config::check_dashboard(&stored, groups) {
                            Ok(checked) => dashboards.push((stored, checked)),
                            Err(errors) => warn!(
                                dashboard = stored.name,
                                problems = %describe(&errors),
                                "Dashboard made in the browser left out."
                            ),
                        }
                    }
                }
                Ok(doc) => set_aside(&path, &format!("version {} unknown", doc.version)),
                Err(e) => set_aside(&path, &e.to_string()),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(path = %path.display(), error = %e, "Cannot read the dashboards made in the browser.")
            }
        }
        Saved {
            path,
            dashboards: RwLock::new(dashboards),
            writing: tokio::sync::Mutex::const_new(()),
        }
    }

    pub fn get(&self, name: &str) -> Option<Dashboard> {
        self.read()
            .iter()
            .find(|(s, _)| s.name == name)
            .map(|(_, d)| d.clone())
    }

    pub fn stored(&self, name: &str) -> Option<StoredDashboard> {
        self.read()
            .iter()
            .find(|(s, _)| s.name == name)
            .map(|(s, _)| s.clone())
    }

    pub fn all(&self) -> Vec<Dashboard> {
        self.read().iter().map(|(_, d)| d.clone()).collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<(StoredDashboard, Dashboard)>> {
        self.dashboards.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies `change` and writes the document (on the blocking pool).
    pub async fn change(
        &self,
        change: impl FnOnce(&mut Vec<(StoredDashboard, Dashboard)>) -> Result<(), String>,
    ) -> Result<(), WebError> {
        let _one_writer = self.writing.lock().await;
        let doc = {
            let mut all = self.dashboards.write().unwrap_or_else(|e| e.into_inner());
            let mut next = all.clone();
            change(&mut next).map_err(WebError::BadQuery)?;
            let doc = Document {
                version: VERSION,
                dashboards: next.iter().map(|(s, _)| s.clone()).collect(),
            };
            *all = next;
            doc
        };
        let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        let path = self.path.clone();
        let written = web::block(move || crate::atomic_file::write_atomic(&path, &bytes)).await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(WebError::Storage(e.to_string())),
            Err(e) => Err(WebError::Storage(e.to_string())),
        }
    }
}

fn set_aside(path: &std::path::Path, why: &str) {
    let aside = path.with_extension("json.bad");
    let moved = std::fs::rename(path, &aside);
    warn!(path = %path.display(), why, set_aside = moved.is_ok(), "Dashboards made in the browser not readable; starting without them.");
}

fn describe(errors: &[KeyError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.key, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}
