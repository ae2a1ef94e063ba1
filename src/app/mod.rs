//! Wiring: starts the stages in data-flow order and stops them in the order
//! that loses nothing. Nothing here decides about data; `run.rs` is the
//! daemon's life (ready, signals, reload, stop), `signals.rs` what drives
//! it, `restart.rs` which reloaded keys wait for a restart, `service.rs`
//! systemd, `config_watch.rs` the config file's changes.
//!
//! Start: embedded broker → RRD thread → recovery → clock → cache task →
//! intake (journal + cache, shared by every source) → web UI → poll jobs →
//! MQTT client.
//! Stop: the web UI stops taking requests (those in progress finish); the
//! poll jobs finish their rounds in progress and stop; the MQTT client
//! stops taking messages and closes the journal; dropping its cache handle closes the
//! cache's input; the cache writes every row and waits for librrd's
//! answers; dropping the last RRD handle lets the RRD thread write the
//! index and exit. All of it under `shutdown_timeout`; a stage that
//! panicked is reported then.

mod config_watch;
mod restart;
mod run;
mod service;
mod signals;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

use self::service::Notifier;
use crate::cache::{self, CacheHandle};
use crate::clock::{Clock, ClockWatch};
use crate::config::Config;
use crate::data_lock::DataDirLock;
use crate::events::Events;
use crate::journal::Journal;
use crate::metrics::Metrics;
use crate::{broker, mqtt, poll, rrd, web};

pub use self::run::run;
pub use self::signals::Signals;

/// A running daemon.
pub struct App {
    cache: CacheHandle,
    metrics: Arc<Metrics>,
    /// The configuration file's, as last loaded: joined with
    /// `browser_jobs`, it makes `config`.
    file_config: Config,
    /// The poll jobs made in the browser (`jobs.json`), as last saved.
    browser_jobs: Vec<crate::config::poll::RawPoll>,
    /// What runs: the file's configuration with the browser's jobs.
    config: Arc<Config>,
    /// The web UI's changed job lists.
    jobs_saved_rx: tokio::sync::mpsc::UnboundedReceiver<web::JobsSaved>,
    config_tx: watch::Sender<Arc<Config>>,
    stop_tx: watch::Sender<bool>,
    mqtt_task: JoinHandle<()>,
    poll_task: JoinHandle<()>,
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
    pub fn start(file_config: Config) -> anyhow::Result<App> {
        let data_lock = DataDirLock::acquire(&file_config.data_dir).map_err(anyhow::Error::msg)?;
        for w in file_config.warnings() {
            warn!(key = w.key, "{}", w.message);
        }
        let browser_jobs = read_browser_jobs(&file_config.data_dir);
        let config = Arc::new(joined(&file_config, &browser_jobs));
        // Before anything reads or writes the files.
        for problem in rrd::move_histories(&config.data_dir, config.history_moves()) {
            warn!(problem, "History not moved.");
        }
        let metrics = Arc::new(Metrics::default());
        let embedded = start_broker(&config, &metrics)?;
        let opts = mqtt::options(&config, embedded.as_ref()).context("MQTT settings")?;
        let (rrd, rrd_thread) = rrd::spawn(
            config.data_dir.clone(),
            config.limits.max_future,
            metrics.clone(),
        )
        .with_context(|| format!("data directory {}", config.data_dir.display()))?;
        let clock = Clock::System;
        let recovered = cache::recover(&config, &rrd.index())?;
        // Decided before the first message is stamped.
        let clock_watch = ClockWatch::start(
            &config.clock,
            clock,
            recovered.newest_data_ms,
            metrics.clone(),
        );
        let stamper = clock_watch.stamper();
        let journal = open_journal(&config, recovered.journal_seq + 1, &metrics)?;
        let (cache, cache_task) = cache::spawn(
            config.clone(),
            rrd.clone(),
            metrics.clone(),
            clock,
            clock_watch,
            recovered,
        );
        let (config_tx, config_rx) = watch::channel(config.clone());
        // Every source hands samples over through it: MQTT, polls, pushes.
        let intake = cache::Intake::new(journal, cache.clone());
        let jobs = poll::JobsStatus::default();
        let (jobs_saved_tx, jobs_saved_rx) = tokio::sync::mpsc::unbounded_channel();
        let events = Arc::new(Events::load(&config.data_dir));
        let web_deps = web::WebDeps {
            rrd: rrd.clone(),
            cache: cache.clone(),
            metrics: metrics.clone(),
            clock,
            journal_enabled: config.journal.is_some(),
            config: config_rx.clone(),
            events: events.clone(),
            jobs: jobs.clone(),
            browser_jobs: browser_jobs.clone(),
            jobs_saved: Some(jobs_saved_tx),
            intake: intake.clone(),
            stamper: stamper.clone(),
        };
        let web = start_web(&config, web_deps)?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let poll_task = tokio::spawn(poll::run(
            config_rx.clone(),
            poll::PollDeps {
                intake: intake.clone(),
                stamper: stamper.clone(),
                status: jobs,
            },
            stop_rx.clone(),
        ));
        let (subscribed_tx, subscribed_rx) = watch::channel(false);
        let control = mqtt::Control {
            stop_rx,
            subscribed_tx,
            events,
        };
        let mqtt_task = tokio::spawn(mqtt::run(
            config_rx,
            opts,
            intake,
            metrics.clone(),
            stamper,
            control,
        ));
        info!(data_dir = %config.data_dir.display(), broker = %format!("{}:{}", config.mqtt.host, config.mqtt.port),
            "datalog-rrd started.");
        Ok(App {
            cache,
            metrics,
            file_config,
            browser_jobs,
            config,
            jobs_saved_rx,
            config_tx,
            stop_tx,
            mqtt_task,
            poll_task,
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
    /// The future holds no borrow of the daemon: it may be changed meanwhile.
    pub fn wait_ready(
        &self,
        broker_wait: Duration,
    ) -> impl Future<Output = anyhow::Result<bool>> + use<> {
        let rrd = self.rrd.clone();
        let mut subscribed = self.subscribed_rx.clone();
        async move {
            rrd.ping().await.context("the RRD thread stopped")?;
            match tokio::time::timeout(broker_wait, subscribed.wait_for(|s| *s)).await {
                Ok(Ok(_)) => Ok(true),
                Ok(Err(_)) => anyhow::bail!("the MQTT client stopped"),
                Err(_) => Ok(false),
            }
        }
    }

    /// Pings systemd's watchdog while the cache and the RRD thread answer,
    /// and keeps the unit's status line fresh (see `service`).
    pub fn spawn_watchdog(&self, notifier: Notifier) -> JoinHandle<()> {
        tokio::spawn(notifier.watch(self.cache.clone(), self.rrd.clone(), self.metrics.clone()))
    }

    /// Writes every cached row now, without waiting (SIGUSR1).
    pub fn flush_all(&self) {
        let cache = self.cache.clone();
        tokio::spawn(async move {
            info!("SIGUSR1: writing every cached row.");
            if cache.flush_all().await.is_ok() {
                info!("Flush finished.");
            }
        });
    }

    /// Applies a new, valid configuration file to the running daemon (with
    /// the jobs made in the browser): templates, files, topics, limits,
    /// poll jobs and cache timings follow at once; connection settings and
    /// paths are reported as needing a restart.
    pub async fn reload(&mut self, file_config: Config) {
        for key in restart::restart_needed(&self.file_config, &file_config) {
            warn!(
                key,
                "Changed in the configuration file; takes effect after a restart."
            );
        }
        let new = joined(&file_config, &self.browser_jobs);
        self.file_config = file_config;
        self.apply(new).await;
        info!(
            poll_jobs = self.config.polls.len(),
            "Configuration reloaded."
        );
    }

    /// The next list of jobs the web UI saved; pending while there is none
    /// (for ever without a web UI).
    pub async fn jobs_saved(&mut self) -> Option<web::JobsSaved> {
        self.jobs_saved_rx.recv().await
    }

    /// Runs the jobs made in the browser as saved, then tells the web UI.
    pub async fn apply_browser_jobs(&mut self, saved: web::JobsSaved) {
        self.browser_jobs = saved.jobs;
        let new = joined(&self.file_config, &self.browser_jobs);
        self.apply(new).await;
        let _ = saved.applied.send(());
    }

    async fn apply(&mut self, new: Config) {
        let new = Arc::new(new);
        // The cache says what each file does with it.
        if self.cache.reload(new.clone()).await.is_err() {
            return;
        }
        let _ = self.config_tx.send(new.clone());
        self.config = new;
    }

    /// Stops taking messages and writes everything cached. `Err` when the
    /// deadline passed first (rows still in memory are then lost), or when
    /// a stage had panicked.
    pub async fn shutdown(self, deadline: Duration) -> anyhow::Result<()> {
        // What the drain needs; the rest (the RRD handle first: the thread
        // exits once the cache's handles are gone too) is dropped now.
        let (web, stop_tx, cache) = (self.web, self.stop_tx, self.cache);
        let (mqtt_task, poll_task, cache_task, rrd_thread) = (
            self.mqtt_task,
            self.poll_task,
            self.cache_task,
            self.rrd_thread,
        );
        drop(self.rrd);
        let drain = async move {
            let mut panicked = Vec::new();
            if let Some(web) = web
                && !web.stop().await
            {
                panicked.push("web UI");
            }
            let _ = stop_tx.send(true);
            drop(cache);
            // Pollers first: the MQTT client closes the journal they share.
            if poll_task.await.is_err() {
                panicked.push("poll jobs");
            }
            if mqtt_task.await.is_err() {
                panicked.push("MQTT client");
            }
            if cache_task.await.is_err() {
                panicked.push("cache");
            }
            let joined = tokio::task::spawn_blocking(move || rrd_thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                panicked.push("RRD thread");
            }
            panicked
        };
        let Ok(panicked) = tokio::time::timeout(deadline, drain).await else {
            error!(deadline = ?deadline, "Shutdown deadline passed; rows still cached are lost.");
            anyhow::bail!("shutdown took longer than {deadline:?}")
        };
        if panicked.is_empty() {
            info!("Stopped cleanly.");
            return Ok(());
        }
        for stage in &panicked {
            error!(
                stage,
                "A stage had panicked (see its message above); what it held is lost."
            );
        }
        anyhow::bail!("a stage had panicked: {}", panicked.join(", "))
    }
}

/// The jobs made in the browser that `data_dir` keeps. A document that
/// cannot be read is set aside (`jobs.json.bad`) and said: the daemon
/// starts without those jobs rather than not at all.
fn read_browser_jobs(data_dir: &std::path::Path) -> Vec<crate::config::poll::RawPoll> {
    use crate::config::browser_jobs;
    match browser_jobs::read(data_dir) {
        Ok(jobs) => jobs,
        Err(why) => {
            let path = browser_jobs::path(data_dir);
            let moved = std::fs::rename(&path, path.with_extension("json.bad"));
            error!(path = %path.display(), why, set_aside = moved.is_ok(),
                "Poll jobs made in the browser not readable; starting without them.");
            Vec::new()
        }
    }
}

/// `file_config` with the jobs made in the browser; those that do not
/// pass (a name the file took since) are left out and said.
fn joined(file_config: &Config, browser_jobs: &[crate::config::poll::RawPoll]) -> Config {
    let (config, problems) = file_config.clone().with_browser_jobs(browser_jobs);
    for p in problems {
        warn!(
            key = p.key,
            problem = p.message,
            "Poll job made in the browser left out."
        );
    }
    config
}

/// The journal, if configured, its first record `next_seq`.
fn open_journal(
    config: &Config,
    next_seq: u64,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<Journal>> {
    let Some(j) = &config.journal else {
        return Ok(None);
    };
    let journal = Journal::open(j, next_seq, metrics.clone())
        .with_context(|| format!("journal {}", j.dir.display()))?;
    Ok(Some(journal))
}

/// The web UI, if configured.
fn start_web(config: &Config, deps: web::WebDeps) -> anyhow::Result<Option<web::WebServer>> {
    let Some(w) = &config.web else {
        return Ok(None);
    };
    let server = web::start(w, deps).with_context(|| format!("web UI on {}", w.listen))?;
    Ok(Some(server))
}

/// The embedded broker, if configured. When its port is taken, most likely
/// by the machine's own broker (Debian's mosquitto service, the one the
/// devices publish to), the daemon connects to that one instead.
fn start_broker(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> anyhow::Result<Option<broker::Started>> {
    let Some(b) = &config.embedded_broker else {
        return Ok(None);
    };
    match broker::start(b, &config.limits, &config.mqtt.client_id, metrics.clone()) {
        Ok(started) => {
            info!(listen = %b.listen, tls = ?b.tls.as_ref().map(|t| t.listen), users = b.users.len(),
                "Embedded MQTT broker started.");
            Ok(Some(started))
        }
        Err(broker::BrokerError::Bind { addr, source })
            if source.kind() == std::io::ErrorKind::AddrInUse =>
        {
            warn!(listen = %addr, "Port taken, by another MQTT broker it seems: connecting to it instead of starting the embedded one.");
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
