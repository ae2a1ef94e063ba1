//! `datalog-rrd migrate` and `datalog-rrd rename`: the data directory
//! brought to what the configuration says, history kept. Run with the
//! daemon stopped: both take the data directory's lock.
//!
//! - migrate: every file of the index against the layout its `[[file]]` or
//!   template now wants (see `rrd::layout`). For automatic files the DS type
//!   and bounds stay as the file has them (discovery may have set them, and
//!   it is not asked again here); step, heartbeat and archives follow the
//!   template.
//! - rename: the file of one series moved to the path of another, with its
//!   index entry; a `[[rule]]` with `rename` and `move_history = true` does
//!   the same at start, and keeps sending late samples of the old name to
//!   the new file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::info;

use crate::cache::Cache;
use crate::config::Config;
use crate::data_lock::DataDirLock;
use crate::model::DsType;
use crate::rrd::index::{Index, IndexWrite};
use crate::rrd::layout::Change;
use crate::rrd::migrate::{migrate_file, read_layout};
use crate::rrd::path::rel_path_for_series;

/// One file's outcome.
#[derive(Debug)]
pub struct FileOutcome {
    pub rel_path: String,
    pub result: Result<Change, String>,
    pub backup: Option<PathBuf>,
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

/// Moves the file of series `old` to where series `new` keeps its file,
/// with its index entry. Refuses when `new` has a file already (merging two
/// histories is not something librrd does).
pub fn rename_series(data_dir: &Path, old: &str, new: &str) -> Result<(String, String), String> {
    let (from, to) = (rel_path_for_series(old), rel_path_for_series(new));
    let (from_path, to_path) = (
        data_dir.join(format!("{from}.rrd")),
        data_dir.join(format!("{to}.rrd")),
    );
    if !from_path.exists() {
        return Err(format!(
            "{old:?} has no file ({} is missing)",
            from_path.display()
        ));
    }
    if to_path.exists() {
        return Err(format!(
            "{new:?} has a file already ({}): two histories cannot be merged",
            to_path.display()
        ));
    }
    if let Some(dir) = to_path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::rename(&from_path, &to_path).map_err(|e| {
        format!(
            "cannot move {} to {}: {e}",
            from_path.display(),
            to_path.display()
        )
    })?;
    for dir in [from_path.parent(), to_path.parent()].into_iter().flatten() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    let (mut index, _) = Index::load(data_dir);
    if index.rename_file(&from, &to, old, new) {
        index
            .write(data_dir, IndexWrite::Everything)
            .map_err(|e| format!("cannot write the index in {}: {e}", data_dir.display()))?;
    }
    info!(
        from = old,
        to = new,
        "History moved to the new series' file."
    );
    Ok((from, to))
}

/// What `[[rule]]`s with `move_history = true` ask, done at start under the
/// data directory's lock, before anything writes: the old series' file
/// moves to the new one's place unless that one exists already. Problems
/// are returned for the log; nothing stops the daemon.
pub fn move_histories(config: &Config) -> Vec<String> {
    let mut problems = Vec::new();
    for rule in config.rules.iter().filter(|r| r.move_history) {
        let (Some(new), [old]) = (rule.rename.as_deref(), rule.topics.as_slice()) else {
            continue;
        };
        let from = config
            .data_dir
            .join(format!("{}.rrd", rel_path_for_series(old)));
        let to = config
            .data_dir
            .join(format!("{}.rrd", rel_path_for_series(new)));
        match (from.exists(), to.exists()) {
            (false, _) => {} // moved already, or never written
            (true, true) => problems.push(format!(
                "both {} and {} exist: the history of {old:?} stays where it is",
                from.display(),
                to.display()
            )),
            (true, false) => {
                if let Err(e) = rename_series(&config.data_dir, old, new) {
                    problems.push(e);
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_series_takes_its_file_and_index_entry() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("home/old/t.rrd");
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::write(&old, b"RRD\0").unwrap();
        std::fs::write(
            dir.path().join("index.json"),
            r#"{"version": 1, "files": [{"path": "home/old/t", "template": "default", "step_secs": 60,
                "ds": [{"name": "value", "series": "home/old/t"}], "last_update": 60}]}"#,
        )
        .unwrap();
        rename_series(dir.path(), "home/old/t", "home/new/t").unwrap();
        assert!(!old.exists());
        assert_eq!(
            std::fs::read(dir.path().join("home/new/t.rrd")).unwrap(),
            b"RRD\0"
        );
        let (index, _) = Index::load(dir.path());
        let entry = index.get("home/new/t").unwrap();
        assert_eq!(entry.ds[0].series, "home/new/t");
        assert!(index.get("home/old/t").is_none());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("index.txt")).unwrap(),
            "home/new/t"
        );

        // Never over another history, and only from an existing one.
        std::fs::write(&old, b"RRD\0").unwrap();
        let refused = rename_series(dir.path(), "home/old/t", "home/new/t").unwrap_err();
        assert!(refused.contains("cannot be merged"), "{refused}");
        let refused = rename_series(dir.path(), "home/none", "home/x").unwrap_err();
        assert!(refused.contains("has no file"), "{refused}");
    }
}
