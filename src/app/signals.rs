//! What tells a running daemon to act: the OS's signals and changes to
//! its config file, as one stream of [`Signal`]s. `run` reads only this
//! stream, so a test drives the daemon by sending into it, as mini-redis's
//! `run(listener, shutdown)` takes its shutdown future.

use std::path::Path;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long the changes of one save may keep coming (an editor writes,
/// renames, sets modes): they are one reload.
const SAVE_SETTLES: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM, SIGINT: stop, writing every cached row. A second one during
    /// the shutdown exits at once.
    Stop,
    /// SIGUSR1: write every cached row now.
    FlushAll,
    /// SIGHUP: reload the config file.
    Reload,
    /// The config file changed (one save, however many events it made):
    /// reload it.
    ConfigChanged,
}

pub struct Signals {
    rx: mpsc::UnboundedReceiver<Signal>,
    /// For the config file's watcher.
    tx: mpsc::UnboundedSender<Signal>,
    /// The task turning the OS's signals into [`Signal`]s, if any.
    os: Option<JoinHandle<()>>,
}

impl Drop for Signals {
    fn drop(&mut self) {
        if let Some(os) = &self.os {
            os.abort();
        }
    }
}

impl Signals {
    /// Signals sent by hand: the sender drives the daemon (tests).
    pub fn channel() -> (mpsc::UnboundedSender<Signal>, Signals) {
        let (tx, rx) = mpsc::unbounded_channel();
        (tx.clone(), Signals { rx, tx, os: None })
    }

    /// The process's SIGTERM, SIGINT, SIGUSR1 and SIGHUP. Needs a tokio
    /// runtime.
    pub fn from_os() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (tx, mut signals) = Signals::channel();
        signals.os = Some(tokio::spawn(async move {
            loop {
                let signal = tokio::select! {
                    _ = term.recv() => Signal::Stop,
                    _ = int.recv() => Signal::Stop,
                    _ = usr1.recv() => Signal::FlushAll,
                    _ = hup.recv() => Signal::Reload,
                };
                if tx.send(signal).is_err() {
                    break;
                }
            }
        }));
        Ok(signals)
    }

    /// The next signal; `None` once nothing can send any more.
    pub async fn recv(&mut self) -> Option<Signal> {
        self.rx.recv().await
    }

    /// Returns at the next [`Signal::Stop`], skipping the others.
    pub async fn stop(&mut self) {
        loop {
            match self.rx.recv().await {
                Some(Signal::Stop) => return,
                Some(_) => {}
                None => std::future::pending().await,
            }
        }
    }

    /// Changes to `config_path` arrive as [`Signal::ConfigChanged`], one
    /// per save, as long as the returned watch is kept.
    pub fn watch_config(&self, config_path: &Path) -> notify::Result<ConfigWatch> {
        let (watcher, mut changes) = super::config_watch::watch(config_path)?;
        let tx = self.tx.clone();
        let forward = tokio::spawn(async move {
            while changes.recv().await.is_some() {
                tokio::time::sleep(SAVE_SETTLES).await;
                while changes.try_recv().is_ok() {}
                if tx.send(Signal::ConfigChanged).is_err() {
                    break;
                }
            }
        });
        Ok(ConfigWatch {
            _watcher: watcher,
            forward,
        })
    }
}

/// Watches the config file while it lives.
pub struct ConfigWatch {
    _watcher: notify::RecommendedWatcher,
    forward: JoinHandle<()>,
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stop_skips_other_signals() {
        let (tx, mut signals) = Signals::channel();
        tx.send(Signal::FlushAll).unwrap();
        tx.send(Signal::Reload).unwrap();
        tx.send(Signal::Stop).unwrap();
        signals.stop().await;
        tx.send(Signal::Reload).unwrap();
        assert_eq!(signals.recv().await, Some(Signal::Reload));
    }
}
