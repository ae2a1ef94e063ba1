//! The daemon's life: start, ready, act on signals until told to stop,
//! then stop within the deadline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{error, info, warn};

use super::App;
use super::service::Notifier;
use super::signals::{Signal, Signals};
use crate::config::Config;

/// How long the service's readiness waits for the broker. Past it the
/// daemon says it is ready anyway and keeps reconnecting: a broker that is
/// down at boot must not fail the unit (nothing would be logged at all).
const READY_WAIT_FOR_BROKER: Duration = Duration::from_secs(30);

/// Runs the daemon until `signals` says stop: `FlushAll` writes every
/// cached row now; `Reload` (SIGHUP), or a change to `config_path`,
/// reloads the configuration. A second stop during shutdown returns at
/// once.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    mut signals: Signals,
) -> anyhow::Result<()> {
    let deadline = config.shutdown_timeout;
    let notifier = Notifier::from_env();
    let mut app = App::start(config)?;
    // While waiting to be ready (for the broker, up to 30 s) the daemon
    // already works: a stop stops at once, a flush or a reload is done
    // (not dropped), jobs saved in the web UI (it serves from the start)
    // run. The wait holds handles of the RRD thread: it ends before a stop.
    let ready = {
        let mut readiness = std::pin::pin!(app.wait_ready(READY_WAIT_FOR_BROKER));
        loop {
            tokio::select! {
                ready = &mut readiness => break Some(ready?),
                signal = signals.recv() => match signal {
                    None | Some(Signal::Stop) => break None,
                    Some(Signal::FlushAll) => app.flush_all(),
                    Some(Signal::Reload | Signal::ConfigChanged) => {
                        info!("Reloading the configuration (not ready yet).");
                        reload_from(&mut app, config_path.as_deref()).await;
                    }
                },
                Some(saved) = app.jobs_saved() => app.apply_browser_jobs(saved).await,
            }
        }
    };
    match ready {
        Some(true) => notifier.ready("Running"),
        Some(false) => {
            warn!(waited = ?READY_WAIT_FOR_BROKER, "No MQTT broker yet; ready anyway, still trying to connect.");
            notifier.ready("Running; no MQTT broker yet, still trying");
        }
        None => {
            notifier.stopping();
            info!(deadline = ?deadline, "Stopped before being ready: writing cached rows.");
            return app.shutdown(deadline).await;
        }
    }
    let watchdog = app.spawn_watchdog(notifier);
    let _config_watch = config_path.as_deref().and_then(|path| {
        signals
            .watch_config(path)
            .inspect_err(|e| warn!(error = %e, "Cannot watch the configuration file; SIGHUP still reloads it."))
            .ok()
    });
    loop {
        // A job list saved in the web UI is applied between signals.
        let signal = tokio::select! {
            signal = signals.recv() => signal,
            Some(saved) = app.jobs_saved() => {
                app.apply_browser_jobs(saved).await;
                continue;
            }
        };
        let Some(signal) = signal else { break };
        match signal {
            Signal::Stop => break,
            Signal::FlushAll => app.flush_all(),
            Signal::Reload | Signal::ConfigChanged => {
                if signal == Signal::Reload {
                    info!("SIGHUP: reloading the configuration.");
                } else {
                    info!("The configuration file changed: reloading it.");
                }
                notifier.reloading();
                reload_from(&mut app, config_path.as_deref()).await;
                notifier.ready("Running");
            }
        }
    }
    notifier.stopping();
    watchdog.abort();
    info!(deadline = ?deadline, "Stopping: writing cached rows.");
    tokio::select! {
        result = app.shutdown(deadline) => result,
        () = signals.stop() => anyhow::bail!("second stop signal: exited before every row was written"),
    }
}

async fn reload_from(app: &mut App, path: Option<&Path>) {
    let Some(path) = path else {
        info!("Running on the built-in configuration: nothing to reload.");
        return;
    };
    match Config::load(path) {
        Ok(config) => app.reload(config).await,
        Err(e) => error!(errors = %e, "Configuration not reloaded; the running one stays."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No broker answers (port 1 on loopback): the daemon waits to be
    /// ready, does a flush asked meanwhile, and a stop then ends it at once
    /// and cleanly, letting go of the data directory.
    #[tokio::test]
    async fn a_stop_while_waiting_for_the_broker_stops_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "data_dir = {:?}\n[mqtt]\nbroker = \"mqtt://127.0.0.1:1\"\n[web]\nenabled = false\n",
            dir.path()
        );
        let config = Config::parse(&text, "test").unwrap();
        let (signals_tx, signals) = Signals::channel();
        let daemon = tokio::spawn(run(config, None, signals));
        signals_tx.send(Signal::FlushAll).unwrap();
        signals_tx.send(Signal::Stop).unwrap();
        let stopped = tokio::time::timeout(Duration::from_secs(10), daemon).await;
        stopped.expect("stopped in time").unwrap().unwrap();
        crate::data_lock::DataDirLock::acquire(dir.path()).expect("the data directory let go");
    }
}
