//! A series' file moved to another series' name, with its index entry:
//! `datalog-rrd rename`, and `[[rule]]`s with `move_history = true`, done
//! at start before anything writes. Both run under the data directory's
//! lock.

use std::path::Path;

use tracing::info;

use super::index::{Index, IndexWrite};
use crate::model::path::rel_path_for_series;

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
        crate::atomic_file::create_dir_all_durable(dir)
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

/// What `[[rule]]`s with `move_history = true` ask (`moves`: old series,
/// new series), done at start under the data directory's lock, before
/// anything writes: the old series' file moves to the new one's place
/// unless that one exists already. Problems are returned for the log;
/// nothing stops the daemon.
pub fn move_histories<'a>(
    data_dir: &Path,
    moves: impl Iterator<Item = (&'a str, &'a str)>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (old, new) in moves {
        let from = data_dir.join(format!("{}.rrd", rel_path_for_series(old)));
        let to = data_dir.join(format!("{}.rrd", rel_path_for_series(new)));
        match (from.exists(), to.exists()) {
            (false, _) => {} // moved already, or never written
            (true, true) => problems.push(format!(
                "both {} and {} exist: the history of {old:?} stays where it is",
                from.display(),
                to.display()
            )),
            (true, false) => {
                if let Err(e) = rename_series(data_dir, old, new) {
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
