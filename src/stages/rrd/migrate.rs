//! Bringing an existing file to the layout its configuration now wants,
//! without losing its history (`datalog-rrd migrate`).
//!
//! In place when `rrdtool tune` can do it; otherwise a new file is created
//! beside the old one, pre-filled from it by librrd (`--source`), checked,
//! and renamed over it, the old file kept as `<name>.rrd.bak`. A rename is
//! atomic: a reader sees the old file or the new one, whole. The caller
//! makes sure nothing else writes the file meanwhile (the data directory's
//! lock, or the RRD thread itself).

use std::path::{Path, PathBuf};

use super::ffi;
use super::layout::{Change, FileLayout, Tune, keeping_kinds, plan_change};
use crate::model::FileSpec;

/// What [`migrate_file`] found, and did unless it was a dry run.
#[derive(Debug, Clone, PartialEq)]
pub struct Migrated {
    pub change: Change,
    /// The old file, kept, after a rebuild.
    pub backup: Option<PathBuf>,
}

/// The layout of the file at `path`.
pub fn read_layout(path: &Path) -> Result<FileLayout, String> {
    let info = ffi::info(path)?;
    FileLayout::from_info(&info)
}

/// Brings the file at `path` to `spec`'s layout (or, with `dry_run`, only
/// says what that takes).
pub fn migrate_file(path: &Path, spec: &FileSpec, dry_run: bool) -> Result<Migrated, String> {
    let found = read_layout(path)?;
    let spec = &keeping_kinds(&found, spec);
    let change = plan_change(&found, spec);
    let mut backup = None;
    if !dry_run {
        match &change {
            Change::None => {}
            Change::Tune(tunes) => ffi::tune(path, &tune_args(tunes))?,
            Change::Rebuild(_) => backup = Some(rebuild(path, spec, &found)?),
        }
    }
    Ok(Migrated { change, backup })
}

fn tune_args(tunes: &[Tune]) -> Vec<String> {
    tunes.iter().flat_map(Tune::args).collect()
}

fn rebuild(path: &Path, spec: &FileSpec, found: &FileLayout) -> Result<PathBuf, String> {
    let with_suffix = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    let backup = (0..1000)
        .map(|n| {
            with_suffix(&if n == 0 {
                ".bak".into()
            } else {
                format!(".bak.{n}")
            })
        })
        .find(|p| !p.exists())
        .ok_or_else(|| {
            format!(
                "{}.bak to .bak.999 all exist: delete old backups",
                path.display()
            )
        })?;
    std::fs::copy(path, &backup).map_err(|e| io("cannot copy to", &backup, e))?;
    // DS renamed on the way: librrd pre-fills by DS name, so the source
    // must carry the new names (a copy: the backup stays the original).
    let renames: Vec<Tune> = spec
        .ds
        .iter()
        .filter_map(|d| {
            let from = d.renamed_from.as_ref()?;
            (found.ds.iter().any(|f| &f.name == from) && !found.ds.iter().any(|f| f.name == d.name))
                .then(|| Tune::Rename {
                    from: from.clone(),
                    to: d.name.clone(),
                })
        })
        .collect();
    let source = if renames.is_empty() {
        path.to_owned()
    } else {
        let source = with_suffix(".migrate-source");
        std::fs::copy(path, &source).map_err(|e| io("cannot copy to", &source, e))?;
        ffi::tune(&source, &tune_args(&renames))?;
        source
    };
    let fresh = with_suffix(".migrating");
    let _ = std::fs::remove_file(&fresh);
    let built = ffi::create(
        &fresh,
        spec.step_secs,
        found.last_update,
        &spec.create_args(),
        Some(&source),
    )
    .and_then(|()| {
        // Checked before it replaces anything: the wanted layout, and the
        // same last update (no time lost, none invented).
        let made = read_layout(&fresh)?;
        match plan_change(&made, spec) {
            Change::None if made.last_update == found.last_update => Ok(()),
            other => Err(format!("the rebuilt file is not as wanted: {other:?}")),
        }
    })
    .and_then(|()| std::fs::rename(&fresh, path).map_err(|e| io("cannot rename", &fresh, e)))
    .and_then(|()| sync_dir(path));
    if source != path {
        let _ = std::fs::remove_file(&source);
    }
    if let Err(e) = built {
        let _ = std::fs::remove_file(&fresh);
        return Err(e);
    }
    Ok(backup)
}

/// Makes a rename in `path`'s directory survive a power cut.
fn sync_dir(path: &Path) -> Result<(), String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests;
