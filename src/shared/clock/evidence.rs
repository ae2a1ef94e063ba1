//! Reading the evidence about the system clock (`trust::Evidence`): files
//! a time-sync service leaves, and the kernel's NTP status. Paths come from
//! `[clock]`, so tests can drive them.

use std::path::PathBuf;

use super::trust::Evidence;
use crate::model::UnixMillis;

/// Where the evidence is read (`[clock]`).
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceSources {
    /// Appears at a time-sync service's first sync (systemd-timesyncd:
    /// `/run/systemd/timesync/synchronized`).
    pub sync_flag: PathBuf,
    /// Any of these existing says a time-sync service runs.
    pub sync_services: Vec<PathBuf>,
    /// The kernel's NTP status counts as a sync when it says synchronised
    /// (chrony and ntpd set it); never against the clock.
    pub kernel_status: bool,
}

impl EvidenceSources {
    pub fn read(&self, now_ms: UnixMillis) -> Evidence {
        Evidence {
            now_ms,
            sync_service: self.sync_services.iter().any(|p| p.exists()),
            synced: self.sync_flag.exists() || (self.kernel_status && kernel_synced()),
        }
    }
}

/// The kernel's NTP status says synchronised (`adjtimex`: no
/// `STA_UNSYNC`, not `TIME_ERROR`).
fn kernel_synced() -> bool {
    // SAFETY: `adjtimex` with `modes = 0` only reads into the struct.
    let mut timex: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut timex) };
    state >= 0 && state != libc::TIME_ERROR && timex.status & libc::STA_UNSYNC == 0
}

/// Milliseconds on the monotonic clock (since boot, not counting suspend):
/// never stepped.
#[allow(
    clippy::useless_conversion,
    reason = "time_t and c_long are i32 on armhf"
)]
pub fn monotonic_ms() -> i64 {
    // SAFETY: a valid clock id and a valid out pointer.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    i64::from(ts.tv_sec) * 1000 + i64::from(ts.tv_nsec) / 1_000_000
}

/// This boot's id, hashed (0 where the kernel does not say: then held
/// samples of an earlier run are re-timed as if from this boot).
pub fn boot_id() -> u64 {
    use std::hash::{Hash, Hasher};
    let Ok(id) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") else {
        return 0;
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.trim().hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_say_whether_a_service_runs_and_has_synced() {
        let dir = tempfile::tempdir().unwrap();
        let sources = EvidenceSources {
            sync_flag: dir.path().join("timesync/synchronized"),
            sync_services: vec![dir.path().join("timesync")],
            kernel_status: false,
        };
        assert_eq!(
            (sources.read(5).sync_service, sources.read(5).synced),
            (false, false)
        );
        std::fs::create_dir(dir.path().join("timesync")).unwrap();
        assert_eq!(
            (sources.read(5).sync_service, sources.read(5).synced),
            (true, false)
        );
        std::fs::write(&sources.sync_flag, "").unwrap();
        assert_eq!(
            (sources.read(5).sync_service, sources.read(5).synced),
            (true, true)
        );
        assert!(monotonic_ms() > 0);
        assert_eq!(boot_id(), boot_id());
    }
}
