//! Wiring: starts the stages in data-flow order and stops them in the order
//! that loses nothing.
//!
//! Start: embedded broker → RRD thread → cache task → web UI → MQTT client.
//! Stop: the web UI stops taking requests (those in progress finish); the
//! MQTT client stops taking messages; dropping its cache handle
//! closes the cache's input; the cache writes every row and waits for
//! librrd's answers; dropping the last RRD handle lets the RRD thread write
//! the index and exit. All of it under `shutdown_timeout`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use crate::cache::snapshot::{self, Snapshot};
use crate::cache::{self, CacheHandle, Recovered};
use crate::clock::Clock;
use crate::config::Config;
use crate::data_lock::DataDirLock;
use crate::journal::{Journal, Reader};
use crate::metrics::Metrics;
use crate::service::Notifier;
use crate::{broker, mqtt, reload, rrd, web};

/// How long the service's readiness waits for the broker. Past it the
/// daemon says it is ready anyway and keeps reconnecting: a broker that is
/// down at boot must not fail the unit (nothing would be logged at all).
const READY_WAIT_FOR_BROKER: Duration = Duration::from_secs(30);

/// A running daemon.
pub struct App {
    pub cache: CacheHandle,
    pub metrics: Arc<Metrics>,
    config: Arc<Config>,
    config_tx: watch::Sender<Arc<Config>>,
    stop_tx: watch::Sender<bool>,
    mqtt_task: JoinHandle<()>,
    cache_task: JoinHandle<()>,
    /// For the readiness and watchdog probes; dropped at shutdown before
    /// the thread is joined.
    rrd: rrd::RrdHandle,
    rrd_thread: std::thread::JoinHandle<()>,
    web: Option<web::WebServer>,
    /// True once the MQTT client has subscribed.
    subscribed_rx: watch::Receiver<bool>,
    /// Held until the daemon exits: one process per data directory.
    _data_lock: DataDirLock,
}

impl App {
    pub fn start(config: Config) -> anyhow::Result<App> {
        let config = Arc::new(config);
        let data_lock = DataDirLock::acquire(&config.data_dir).map_err(anyhow::Error::msg)?;
        // Before anything reads or writes the files.
        for problem in crate::migrate::move_histories(&config) {
            warn!(problem, "History not moved.");
        }
        let metrics = Arc::new(Metrics::default());
        let mut embedded = None;
        if let Some(b) = &config.embedded_broker {
            match broker::start(b, &config.limits, &config.mqtt.client_id, metrics.clone()) {
                Ok(started) => {
                    info!(listen = %b.listen, tls = ?b.tls.as_ref().map(|t| t.listen), users = b.users.len(),
                        "Embedded MQTT broker started.");
                    embedded = Some(started);
                }
                // Most likely the machine's own broker (Debian's mosquitto
                // service): the one the devices publish to. Use it.
                Err(broker::BrokerError::Bind { addr, source })
                    if source.kind() == std::io::ErrorKind::AddrInUse =>
                {
                    warn!(listen = %addr, "Port taken, by another MQTT broker it seems: connecting to it instead of starting the embedded one.");
                }
                Err(e) => return Err(e.into()),
            }
        }
        let opts = mqtt::options(&config, embedded.as_ref()).context("MQTT settings")?;
        let (rrd, rrd_thread) = rrd::spawn(
            config.data_dir.clone(),
            config.limits.max_future,
            metrics.clone(),
        )
        .with_context(|| format!("data directory {}", config.data_dir.display()))?;
        let clock = Clock::System;
        let recovered = recover(&config, &rrd.index())?;
        // Decided before the first message is stamped.
        let clock_watch = watch_clock(&config, clock, recovered.newest_data_ms, &metrics);
        let stamper = crate::clock::Stamper {
            clock,
            status: clock_watch.status.clone(),
        };
        let journal = match &config.journal {
            Some(j) => Some(
                Journal::open(j, recovered.journal_seq + 1, metrics.clone())
                    .with_context(|| format!("journal {}", j.dir.display()))?,
            ),
            None => None,
        };
        let (cache, cache_task) = cache::spawn(
            config.clone(),
            rrd.clone(),
            metrics.clone(),
            clock,
            clock_watch,
            recovered,
        );
        let (config_tx, config_rx) = watch::channel(config.clone());
        let events = Arc::new(crate::events::Events::load(&config.data_dir));
        let web = match &config.web {
            Some(w) => Some(
                web::start(
                    w,
                    web::WebDeps {
                        rrd: rrd.clone(),
                        cache: cache.clone(),
                        metrics: metrics.clone(),
                        clock,
                        journal_enabled: config.journal.is_some(),
                        config: config_rx.clone(),
                        events: events.clone(),
                    },
                )
                .with_context(|| format!("web UI on {}", w.listen))?,
            ),
            None => None,
        };
        let (stop_tx, stop_rx) = watch::channel(false);
        let (subscribed_tx, subscribed_rx) = watch::channel(false);
        let mqtt_task = tokio::spawn(mqtt::run(
            config_rx,
            opts,
            cache.clone(),
            metrics.clone(),
            stamper,
            journal,
            mqtt::Control {
                stop_rx,
                subscribed_tx,
                events: events.clone(),
            },
        ));
        info!(data_dir = %config.data_dir.display(), broker = %format!("{}:{}", config.mqtt.host, config.mqtt.port),
            "datalog-rrd started.");
        Ok(App {
            cache,
            metrics,
            config,
            config_tx,
            stop_tx,
            mqtt_task,
            cache_task,
            rrd,
            rrd_thread,
            web,
            subscribed_rx,
            _data_lock: data_lock,
        })
    }

    /// Waits until the daemon does its job: the RRD thread answers, the web
    /// UI is bound (it is, once `start` returned) and the MQTT client has
    /// subscribed, the latter for `broker_wait` at most. `false` when the
    /// broker did not answer in time.
    pub async fn wait_ready(&self, broker_wait: Duration) -> anyhow::Result<bool> {
        self.rrd.ping().await.context("the RRD thread stopped")?;
        let mut subscribed = self.subscribed_rx.clone();
        match tokio::time::timeout(broker_wait, subscribed.wait_for(|s| *s)).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(_)) => anyhow::bail!("the MQTT client stopped"),
            Err(_) => Ok(false),
        }
    }

    /// Pings systemd's watchdog while the cache and the RRD thread answer,
    /// and keeps the unit's status line fresh (see `service`).
    pub fn spawn_watchdog(&self, notifier: Notifier) -> JoinHandle<()> {
        tokio::spawn(notifier.watch(self.cache.clone(), self.rrd.clone(), self.metrics.clone()))
    }

    /// Applies a new, valid configuration to the running daemon: templates,
    /// files, topics, limits and cache timings follow at once; connection
    /// settings and paths are reported as needing a restart.
    pub async fn reload(&mut self, new: Config) {
        let old = &self.config;
        let restart_only = [
            ("data_dir", old.data_dir != new.data_dir),
            (
                "mqtt.broker",
                (&old.mqtt.host, old.mqtt.port, &old.mqtt.tls)
                    != (&new.mqtt.host, new.mqtt.port, &new.mqtt.tls),
            ),
            ("mqtt.client_id", old.mqtt.client_id != new.mqtt.client_id),
            (
                "mqtt.username/password",
                old.mqtt.credentials != new.mqtt.credentials,
            ),
            ("mqtt.qos", old.mqtt.qos != new.mqtt.qos),
            (
                "mqtt.keep_alive",
                old.mqtt.keep_alive != new.mqtt.keep_alive,
            ),
            (
                "mqtt.status_topic",
                old.mqtt.status_topic != new.mqtt.status_topic,
            ),
            (
                "embedded_broker",
                old.embedded_broker != new.embedded_broker,
            ),
            (
                "cache.snapshot_every",
                old.cache.snapshot_every != new.cache.snapshot_every,
            ),
            (
                "cache.stats_every",
                old.cache.stats_every != new.cache.stats_every,
            ),
            ("web", old.web != new.web),
        ];
        for (key, _) in restart_only.iter().filter(|(_, changed)| *changed) {
            warn!(
                key,
                "Changed in the configuration file; takes effect after a restart."
            );
        }
        let new = Arc::new(new);
        match self.cache.reload(new.clone()).await {
            Ok(report) => {
                for kept in &report.kept {
                    warn!(
                        file = kept.name,
                        why = kept.reason,
                        "File keeps its layout."
                    );
                }
                for relayout in &report.relayout {
                    info!(
                        file = relayout.name,
                        change = relayout.reason,
                        "File takes its new layout at its next write, history kept."
                    );
                }
                info!(
                    added_files = report.added,
                    updated_files = report.updated,
                    "Configuration reloaded."
                );
            }
            Err(_) => return,
        }
        let _ = self.config_tx.send(new.clone());
        self.config = new;
    }

    /// Stops taking messages and writes everything cached. `Err` when the
    /// deadline passed first (rows still in memory are then lost).
    pub async fn shutdown(self, deadline: Duration) -> anyhow::Result<()> {
        let App {
            cache,
            stop_tx,
            mqtt_task,
            cache_task,
            rrd,
            rrd_thread,
            web,
            ..
        } = self;
        drop(rrd);
        let drain = async move {
            if let Some(web) = web {
                web.stop().await;
            }
            let _ = stop_tx.send(true);
            drop(cache);
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

/// What a previous run left: its snapshot, then the journal records after
/// the snapshot's sequence (a torn last record is what a crash leaves: it
/// was never acknowledged, and is skipped).
/// The build's time (`build.rs`): a clock reading earlier is wrong.
const BUILT_MS: i64 = match i64::from_str_radix(env!("DATALOG_RRD_BUILT_S"), 10) {
    Ok(s) => s * 1000,
    Err(_) => 0,
};

/// Whether the system clock can be trusted at start, from the evidence
/// (`[clock]`) and the data already written.
fn watch_clock(
    config: &Config,
    clock: Clock,
    newest_data_ms: i64,
    metrics: &Metrics,
) -> crate::clock::ClockWatch {
    use crate::clock::{ClockStatus, ClockWatch, Trust, TrustState, boot_id};
    let mut trust = Trust::new(
        config.clock.trust,
        newest_data_ms,
        BUILT_MS,
        config.clock.max_wait,
        tokio::time::Instant::now(),
    );
    let now_ms = clock.now_ms();
    let state = trust.decide(
        &config.clock.evidence.read(now_ms),
        tokio::time::Instant::now(),
    );
    if let TrustState::Untrusted(why) = state {
        warn!(?why, clock = %humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_millis(now_ms.max(0) as u64)), max_wait = ?config.clock.max_wait,
            "The system clock is not trusted yet: samples without a time of their own wait for it (clock.trust).");
    }
    metrics.clock_trusted.store(
        u64::from(state.is_usable()),
        std::sync::atomic::Ordering::Relaxed,
    );
    ClockWatch {
        trust,
        evidence: config.clock.evidence.clone(),
        status: std::sync::Arc::new(ClockStatus::new(state.is_usable(), boot_id())),
        waiting: crate::clock::Waiting::default(),
    }
}

/// What a previous run left: the snapshot, the journal records after it,
/// and from `index` (as the RRD thread loaded it) the files' last updates.
fn recover(config: &Config, index: &[crate::rrd::index::IndexEntry]) -> anyhow::Result<Recovered> {
    let snapshot = load_snapshot(config);
    let after = snapshot.as_ref().map_or(0, |s| s.journal_seq);
    let mut recovered = Recovered {
        newest_data_ms: snapshot.as_ref().map_or(0, |s| s.taken_at_ms),
        snapshot,
        journal_seq: after,
        ..Recovered::default()
    };
    // Payload times may run ahead of the clock by up to max_future, and a
    // file's last update by one step more (a forced flush writes the open
    // step at its end).
    let ahead_ms = i64::try_from(config.limits.max_future.as_millis()).unwrap_or(0);
    for entry in index {
        if let Some(last_update) = entry.last_update {
            // Saturating: the index is a file anyone could have edited.
            let newest_ms = last_update
                .saturating_sub(i64::from(entry.step_secs))
                .saturating_mul(1000)
                .saturating_sub(ahead_ms);
            recovered.newest_data_ms = recovered.newest_data_ms.max(newest_ms);
            recovered
                .last_updates
                .insert(entry.path.clone(), last_update);
        }
    }
    if let Some(j) = &config.journal {
        let mut replayed = Vec::new();
        let mut reader =
            Reader::open(&j.dir, after).with_context(|| format!("journal {}", j.dir.display()))?;
        while let Some((_, samples, held)) = reader
            .next_record()
            .with_context(|| format!("journal {}", j.dir.display()))?
        {
            match held {
                // Stamped by an untrusted clock: no evidence, and waits.
                Some(held) => recovered.held.push((held, samples)),
                None => {
                    let newest = samples
                        .iter()
                        .map(|s| s.time_ms.saturating_sub(ahead_ms))
                        .max();
                    recovered.newest_data_ms = recovered.newest_data_ms.max(newest.unwrap_or(0));
                    replayed.extend(samples);
                }
            }
        }
        let stats = reader.stats();
        if stats.records > 0 || stats.torn > 0 {
            info!(
                records = stats.records,
                samples = stats.samples,
                torn = stats.torn,
                after_seq = after,
                "Journal read for replay."
            );
        }
        recovered.replayed = replayed;
        recovered.journal_seq = stats.last_seq.max(after);
    }
    Ok(recovered)
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
/// now; SIGHUP, or a change to `config_path`, reloads the configuration. A
/// second stop signal during shutdown exits at once.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut hup = signal(SignalKind::hangup())?;
    let deadline = config.shutdown_timeout;
    let notifier = Notifier::from_env();
    let mut app = App::start(config)?;
    // A stop signal while waiting to be ready stops at once.
    let ready = tokio::select! {
        ready = app.wait_ready(READY_WAIT_FOR_BROKER) => Some(ready?),
        _ = term.recv() => None,
        _ = int.recv() => None,
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
    let (_watcher, mut changes) = match config_path.as_deref().map(reload::watch) {
        Some(Ok((w, rx))) => (Some(w), rx),
        Some(Err(e)) => {
            warn!(error = %e, "Cannot watch the configuration file; SIGHUP still reloads it.");
            (None, tokio::sync::mpsc::unbounded_channel().1)
        }
        None => (None, tokio::sync::mpsc::unbounded_channel().1),
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                notifier.reloading();
                reload_from(&mut app, config_path.as_deref()).await;
                notifier.ready("Running");
            }
            Some(()) = changes.recv() => {
                // One save is several events: let them settle.
                tokio::time::sleep(Duration::from_millis(200)).await;
                while changes.try_recv().is_ok() {}
                notifier.reloading();
                reload_from(&mut app, config_path.as_deref()).await;
                notifier.ready("Running");
            }
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
    notifier.stopping();
    watchdog.abort();
    info!(deadline = ?deadline, "Stopping: writing cached rows.");
    tokio::select! {
        result = app.shutdown(deadline) => result,
        _ = term.recv() => anyhow::bail!("second stop signal: exited before every row was written"),
        _ = int.recv() => anyhow::bail!("second stop signal: exited before every row was written"),
    }
}
