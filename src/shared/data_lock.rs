//! One process at a time in a data directory. Two daemons on one directory
//! would append to one journal and reject each other's RRD updates; a
//! `migrate` under a running daemon would rebuild a file the daemon is
//! writing. Each takes an exclusive `flock` on `<data_dir>/.lock`, held
//! until it exits (the kernel drops it even after `kill -9`).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

/// Held for as long as the value lives.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (created if missing), or says who holds it.
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, String> {
        crate::atomic_file::create_dir_all_durable(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let path = data_dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // SAFETY: a valid open descriptor for the call's duration.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(if e.kind() == std::io::ErrorKind::WouldBlock {
                format!(
                    "{} is in use by another datalog-rrd (the daemon, or a migrate): stop it first",
                    data_dir.display()
                )
            } else {
                format!("cannot lock {}: {e}", path.display())
            });
        }
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let refused = DataDirLock::acquire(dir.path()).unwrap_err();
        assert!(
            refused.contains("in use by another datalog-rrd"),
            "{refused}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
