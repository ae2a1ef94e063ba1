//! Replacing a file so that a reader, or a power cut, sees either the old
//! content or the new, never a mix: temp file in the same directory, fsync,
//! rename over the target, fsync the directory.
//!
//! The file gets mode 0644 less the umask, like a file written in place
//! (a temp file alone would be 0600): under the packaged unit
//! (`UMask=0027`) the `datalog-rrd` group can read the index.

use std::fs::Permissions;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, 0o644)
}

/// As [`write_atomic`], with the content written by `write` through a
/// buffer straight into the temp file: a large document (the index of
/// 100,000 files is 21 MB) is never held whole in memory. Returns its
/// size.
pub fn write_atomic_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<u64> {
    let (dir, mut tmp) = temp_beside(path, 0o644)?;
    let mut out = io::BufWriter::with_capacity(64 << 10, tmp.as_file_mut());
    write(&mut out)?;
    out.flush()?;
    drop(out);
    let bytes = tmp.as_file().metadata()?.len();
    persist(tmp, path, dir)?;
    Ok(bytes)
}

/// As [`write_atomic`], readable by the daemon's user only (0600): for
/// documents that hold secrets (jobs made in the browser keep their
/// passwords).
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(path, bytes, 0o600)
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let (dir, mut tmp) = temp_beside(path, mode)?;
    tmp.write_all(bytes)?;
    persist(tmp, path, dir)
}

/// A temp file in `path`'s directory, with `mode`.
fn temp_beside(path: &Path, mode: u32) -> io::Result<(&Path, tempfile::NamedTempFile)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    Ok((dir, tmp))
}

/// Syncs `tmp`, renames it over `path` and syncs the directory.
fn persist(tmp: tempfile::NamedTempFile, path: &Path, dir: &Path) -> io::Result<()> {
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// `create_dir_all`, made durable: each directory it creates has its
/// entry fsynced in its parent, so that a power cut right after does not
/// take the directory (and everything written into it since) away.
pub fn create_dir_all_durable(path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut dir = Some(path);
    while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        missing.push(d.to_owned());
        dir = d.parent();
    }
    std::fs::create_dir_all(path)?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(parent)?.sync_all()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_content_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.txt");
        super::write_atomic(&path, b"one").unwrap();
        super::write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn directories_are_created_whole_and_an_existing_one_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        super::create_dir_all_durable(&deep).unwrap();
        assert!(deep.is_dir());
        super::create_dir_all_durable(&deep).unwrap();
    }

    #[test]
    fn a_private_file_is_the_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jobs.json");
        super::write_private(&path, b"{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn readable_like_a_file_written_in_place() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        super::write_atomic(&path, b"{}").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // The process's umask, read without changing it (Linux 4.7+).
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .map(|v| u32::from_str_radix(v.trim(), 8).unwrap())
            .unwrap();
        assert_eq!(mode, 0o644 & !umask, "{mode:o} with umask {umask:o}");
    }
}
