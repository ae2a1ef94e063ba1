//! `datalog-rrd migrate`: the data directory brought to what the
//! configuration says, history kept. Run with the daemon stopped: it takes
//! the data directory's lock.
//!
//! Every file of the index is checked against the layout its `[[file]]` or
//! template now wants (see `rrd::layout`). For automatic files the DS type
//! and bounds stay as the file has them (discovery may have set them, and
//! it is not asked again here); step, heartbeat and archives follow the
//! template. `rename` is `rrd::rename_series`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::Cache;
use crate::config::Config;
use crate::data_lock::DataDirLock;
use crate::model::DsType;
use crate::rrd::index::{Index, IndexWrite};
use crate::rrd::layout::Change;
use crate::rrd::migrate::{migrate_file, read_layout};

/// One file's outcome.
#[derive(Debug)]
pub struct FileOutcome {
    pub rel_path: String,
    pub result: Result<Change, String>,
    pub backup: Option<PathBuf>,
}

/// The report's line: `path: change (old file kept as …)`.
impl fmt::Display for FileOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(change) => write!(f, "{}: {change}", self.rel_path)?,
            Err(e) => return write!(f, "{}: NOT MIGRATED: {e}", self.rel_path),
        }
        match &self.backup {
            Some(backup) => write!(f, " (old file kept as {})", backup.display()),
            None => Ok(()),
        }
    }
}

/// Migrates every indexed file of `config.data_dir` (or says what it
/// would do, with `dry_run`).
pub fn migrate_all(config: Config, dry_run: bool) -> Result<Vec<FileOutcome>, String> {
    let _lock = DataDirLock::acquire(&config.data_dir)?;
    let data_dir = config.data_dir.clone();
    let (mut index, problem) = Index::load(&data_dir);
    if let Some(problem) = problem {
        return Err(format!(
            "the index cannot be read ({problem}): run the daemon once to rebuild it"
        ));
    }
    let cache = Cache::new(Arc::new(config));
    let mut outcomes = Vec::new();
    for entry in index.entries() {
        let path = data_dir.join(format!("{}.rrd", entry.path));
        let series: Vec<&str> = entry.ds.iter().map(|d| d.series.as_str()).collect();
        let Some(mut wanted) = cache.wanted_spec_for(&entry.path, &series) else {
            outcomes.push(FileOutcome {
                rel_path: entry.path.clone(),
                result: Err("no [[file]] or template wants it any more: left as it is".into()),
                backup: None,
            });
            continue;
        };
        let automatic = !cache.is_configured_file(&entry.path);
        let result = read_layout(&path).and_then(|found| {
            if automatic && let (Some(want), Some(have)) = (wanted.ds.first_mut(), found.ds.first())
            {
                want.ds_type = DsType::from_rrd_str(&have.ds_type).unwrap_or(want.ds_type);
                want.min = have.min;
                want.max = have.max;
            }
            migrate_file(&path, &wanted, dry_run)
        });
        let (result, backup) = match result {
            Ok(m) => {
                if !dry_run && m.change != Change::None {
                    let last = read_layout(&path).ok().map(|l| l.last_update);
                    index.record(&wanted, last);
                }
                (Ok(m.change), m.backup)
            }
            Err(e) => (Err(e), None),
        };
        outcomes.push(FileOutcome {
            rel_path: entry.path.clone(),
            result,
            backup,
        });
    }
    if !dry_run {
        index
            .write(&data_dir, IndexWrite::Everything)
            .map_err(|e| format!("cannot write the index in {}: {e}", data_dir.display()))?;
    }
    Ok(outcomes)
}
