//! Wiring: starts the stages in data-flow order and stops them in the order
//! that loses nothing.
//!
//! Start: embedded broker → RRD thread → cache task → MQTT client.
//! Stop: the MQTT client stops taking messages; dropping its cache handle
//! closes the cache's input; the cache writes every row and waits for
//! librrd's answers; dropping the last RRD handle lets the RRD thread write
//! the index and exit. All of it under `shutdown_timeout`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::cache::snapshot::{self, Snapshot};
use crate::cache::{self, CacheHandle};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::{broker, mqtt, rrd};

/// A running daemon.
pub struct App {
    pub cache: CacheHandle,
    pub metrics: Arc<Metrics>,
    stop_tx: watch::Sender<bool>,
    mqtt_task: JoinHandle<()>,
    cache_task: JoinHandle<()>,
    rrd_thread: std::thread::JoinHandle<()>,
}

impl App {
    pub fn start(config: Config) -> anyhow::Result<App> {
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::default());
        let opts = mqtt::options(&config).context("MQTT settings")?;
        if let Some(b) = &config.embedded_broker {
            broker::start(b, &config.limits)?;
            info!(listen = %b.listen, "Embedded MQTT broker started.");
        }
        let (rrd, rrd_thread) = rrd::spawn(config.data_dir.clone(), metrics.clone())
            .with_context(|| format!("data directory {}", config.data_dir.display()))?;
        let clock = Clock::System;
        let restored = load_snapshot(&config);
        let (cache, cache_task) =
            cache::spawn(config.clone(), rrd, metrics.clone(), clock, restored);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mqtt_task = tokio::spawn(mqtt::run(
            config.clone(),
            opts,
            cache.clone(),
            metrics.clone(),
            clock,
            stop_rx,
        ));
        info!(data_dir = %config.data_dir.display(), broker = %format!("{}:{}", config.mqtt.host, config.mqtt.port),
            "datalog-rrd started.");
        Ok(App {
            cache,
            metrics,
            stop_tx,
            mqtt_task,
            cache_task,
            rrd_thread,
        })
    }

    /// Stops taking messages and writes everything cached. `Err` when the
    /// deadline passed first (rows still in memory are then lost).
    pub async fn shutdown(self, deadline: Duration) -> anyhow::Result<()> {
        let App {
            cache,
            stop_tx,
            mqtt_task,
            cache_task,
            rrd_thread,
            ..
        } = self;
        let _ = stop_tx.send(true);
        drop(cache);
        let drain = async move {
            let _ = mqtt_task.await;
            let _ = cache_task.await;
            let _ = tokio::task::spawn_blocking(move || rrd_thread.join()).await;
        };
        match tokio::time::timeout(deadline, drain).await {
            Ok(()) => {
                info!("Stopped cleanly.");
                Ok(())
            }
            Err(_) => {
                error!(deadline = ?deadline, "Shutdown deadline passed; rows still cached are lost.");
                anyhow::bail!("shutdown took longer than {deadline:?}")
            }
        }
    }
}

/// The snapshot a previous run left, if any. One that cannot be trusted is
/// renamed aside (for a post-mortem) and reported: the daemon still starts.
fn load_snapshot(config: &Config) -> Option<Snapshot> {
    if config.cache.snapshot_every.is_zero() {
        return None;
    }
    let path = config.snapshot_path();
    match snapshot::read(&path) {
        Ok(found) => found,
        Err(e) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let aside = path.with_extension(format!("snapshot.unusable-{now}"));
            let kept = std::fs::rename(&path, &aside).is_ok();
            error!(path = %path.display(), error = %e, kept_as = kept.then(|| aside.display().to_string()),
                "Cache snapshot unusable: the rows it held are lost.");
            None
        }
    }
}

/// Runs the daemon until SIGINT or SIGTERM; SIGUSR1 writes every cached row
/// now. A second stop signal during shutdown exits at once.
pub async fn run(config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let deadline = config.shutdown_timeout;
    let app = App::start(config)?;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = usr1.recv() => {
                let cache = app.cache.clone();
                tokio::spawn(async move {
                    info!("SIGUSR1: writing every cached row.");
                    if cache.flush_all().await.is_ok() {
                        info!("Flush finished.");
                    }
                });
            }
        }
    }
    info!(deadline = ?deadline, "Stopping: writing cached rows.");
    tokio::select! {
        result = app.shutdown(deadline) => result,
        _ = term.recv() => anyhow::bail!("second stop signal: exited before every row was written"),
        _ = int.recv() => anyhow::bail!("second stop signal: exited before every row was written"),
    }
}
