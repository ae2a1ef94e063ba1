//! Noticing that the config file changed.
//!
//! The watch is on the file's directory, not the file: editors and config
//! managers save by writing a new file and renaming it over the old one,
//! which ends a watch on the file itself after the first save. Access
//! events are ignored (reading the file must not trigger a reload).

use std::ffi::OsString;
use std::path::Path;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Watches `config_path`; a unit arrives on the receiver after each change
/// (several per save, usually: the caller waits a moment and drains).
/// Keep the watcher alive as long as changes are wanted.
pub fn watch(
    config_path: &Path,
) -> notify::Result<(RecommendedWatcher, mpsc::UnboundedReceiver<()>)> {
    let name: Option<OsString> = config_path.file_name().map(|n| n.to_owned());
    let dir = match config_path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let Ok(event) = event else { return };
        if matches!(event.kind, EventKind::Access(_)) {
            return;
        }
        if event.paths.iter().any(|p| p.file_name() == name.as_deref()) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok((watcher, rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn next_change(rx: &mut mpsc::UnboundedReceiver<()>) -> bool {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn sees_atomic_saves_again_and_again_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("datalog-rrd.toml");
        std::fs::write(&path, "a = 1").unwrap();
        let (_watcher, mut rx) = watch(&path).unwrap();
        for i in 0..3 {
            // An editor's save: a new file renamed over the old one.
            let tmp = dir.path().join(format!(".datalog-rrd.toml.{i}"));
            std::fs::write(&tmp, format!("a = {i}")).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
            assert!(next_change(&mut rx).await, "save {i} not seen");
            while tokio::time::timeout(Duration::from_millis(100), rx.recv())
                .await
                .is_ok()
            {}
        }
        std::fs::write(dir.path().join("other.toml"), "x").unwrap();
        let _ = std::fs::read_to_string(&path).unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), rx.recv())
                .await
                .is_err()
        );
    }
}
