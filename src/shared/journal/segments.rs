//! Segment files under `<data_dir>/journal`: named by their first
//! sequence (20 digits) and creation time (which keeps a new run's first
//! segment apart from an empty or torn one a crash left with the same first
//! sequence), listed in order, and deleted once a snapshot covers them.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

pub(super) const EXTENSION: &str = "journal";

/// A new segment file, written from its start (not `O_APPEND`: its size
/// is allocated ahead of the records).
pub(super) fn new_segment(dir: &Path, first_seq: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(segment_path(dir, first_seq))?;
    // The new name must survive a power cut too.
    File::open(dir)?.sync_all()?;
    Ok(file)
}

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    dir.join(format!("{first_seq:020}-{nanos}.{EXTENSION}"))
}

/// Segments in `dir` by first sequence number.
pub(super) fn segments(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        let first = path
            .extension()
            .filter(|e| *e == EXTENSION)
            .and_then(|_| path.file_stem()?.to_str()?.get(..20)?.parse::<u64>().ok());
        if let Some(first) = first {
            found.push((first, path));
        }
    }
    // By first sequence, then by name (creation time) for equal ones.
    found.sort();
    Ok(found)
}

/// Deletes the segments whose every record is at or before `covered_seq`
/// (a snapshot has them). The segment being written is never deleted: a
/// segment is known complete only when a later one exists.
pub fn truncate(dir: &Path, covered_seq: u64) -> io::Result<usize> {
    let all = segments(dir)?;
    let mut deleted = 0;
    for pair in all.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        if *next_first <= covered_seq + 1 {
            fs::remove_file(path)?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
