//! One publish at a time: decoded, journaled, handed to the cache, and
//! acknowledged — in that order, so that an acknowledged message is in the
//! journal (it survives the daemon being killed) before the broker forgets
//! it. Acknowledgements leave in arrival order, as MQTT requires.
//!
//! Group commit: acks wait (`acks.rs`) until the journal is committed once
//! for the whole burst — when nothing more is there to read (the loop asks
//! for [`Source::commit`] then), or when `GROUP_MAX` are waiting — instead
//! of once per message, and without a timer.
//!
//! With `sync = "always"` the fsync runs on the blocking pool while
//! messages keep coming: one is in flight whenever records wait for one,
//! and its acks leave the moment it completes. The broker's in-flight
//! window (mosquitto: 20) is then split between the fsync running and the
//! records gathering for the next, instead of idling while the disk works
//! (with the fsync inline, 15% of what the broker could send got through,
//! and a burst overflowed its queue).

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use rumqttc::{AsyncClient, Publish, QoS};
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use super::acks::{Ack, AckQueue};
use super::decode::{DecodeLimits, StateWord, decode, state_word};
use super::discovery;
use crate::cache::{CacheClosed, Intake, Journaled};
use crate::clock::Stamper;
use crate::config::Config;
use crate::events::{self, Events};
use crate::metrics::{Metrics, RateLimiter, Refusals, log_refusal};
use crate::model::RejectReason;

/// Acks held for one journal flush at most when the input does not pause
/// (a broker with a large in-flight window): bounds the wait of the first.
/// With `sync = "always"` the fsync in flight bounds it instead.
const GROUP_MAX: usize = 64;
/// When the input pauses with fewer acks than this waiting, and the last
/// commit was less than `GROUP_WAIT` ago, the commit waits until then (or
/// until more come): under load, pauses are short and frequent, and a
/// journal write and an ack burst at each cost a fifth more CPU per
/// message. A steady home rate never waits: its last commit is older.
const PAUSE_BATCH: usize = 4;
const GROUP_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

pub(super) struct Source {
    client: AsyncClient,
    /// The journal and the cache, shared with the other sources.
    intake: Intake,
    metrics: Arc<Metrics>,
    clock: Stamper,
    limits: DecodeLimits,
    exclude: Vec<String>,
    refusals: Refusals,
    journal_warn: RateLimiter,
    /// Acks, each until the commit covering its message is done and the
    /// client's request queue takes it.
    acks: AckQueue,
    /// The journal's fsync in flight (`sync = "always"`).
    fsync: Option<JoinHandle<io::Result<()>>>,
    /// `sync = "always"`: each commit is an fsync, which batches by itself.
    fsync_commits: bool,
    last_commit: tokio::time::Instant,
    /// Whether discovery messages are read (`mqtt.discovery`).
    discovery: bool,
    /// The series each discovery topic described, to forget them when its
    /// config is removed (an empty retained payload).
    described: HashMap<String, Vec<String>>,
    discovery_warn: RateLimiter,
    /// At most this many discovery topics are remembered (`max_series`),
    /// and as many series told to be states.
    max_described: usize,
    /// The series whose payload was an on/off word, told to the cache as
    /// states once (the cache keeps it, in `discovered.json` too).
    states: HashSet<String>,
    events: Arc<Events>,
    events_topic: Option<String>,
    max_future_s: i64,
}

impl Source {
    pub fn new(
        config: &Config,
        client: AsyncClient,
        intake: Intake,
        metrics: Arc<Metrics>,
        clock: Stamper,
        events: Arc<Events>,
    ) -> Self {
        let mut source = Source {
            client,
            intake,
            refusals: Refusals::new(metrics.clone()),
            metrics,
            clock,
            limits: DecodeLimits {
                max_payload_bytes: 0,
                max_json_leaves: 0,
                max_json_depth: 0,
            },
            exclude: Vec::new(),
            journal_warn: RateLimiter::new(60_000),
            acks: AckQueue::default(),
            fsync: None,
            // The journal's policy is the one it opened with: not reloaded.
            fsync_commits: config
                .journal
                .as_ref()
                .is_some_and(|j| j.sync == crate::config::SyncPolicy::Always),
            last_commit: tokio::time::Instant::now(),
            discovery: false,
            described: HashMap::new(),
            states: HashSet::new(),
            discovery_warn: RateLimiter::new(60_000),
            max_described: 0,
            events,
            events_topic: None,
            max_future_s: 0,
        };
        source.follow(config);
        source
    }

    /// Takes the settings a reload may change.
    pub fn follow(&mut self, config: &Config) {
        self.limits = DecodeLimits {
            max_payload_bytes: config.limits.max_payload_bytes,
            max_json_leaves: config.limits.max_json_leaves,
            max_json_depth: config.limits.max_json_depth,
        };
        self.discovery = config.mqtt.discovery;
        self.events_topic = config.mqtt.events_topic.clone();
        self.max_future_s = config.limits.max_future.as_secs() as i64;
        self.max_described = config.limits.max_series;
        // Our own status is not a reading.
        self.exclude = config
            .mqtt
            .exclude
            .iter()
            .chain(&config.mqtt.status_topic)
            .cloned()
            .collect();
    }

    pub async fn on_publish(&mut self, p: Publish) -> Result<(), CacheClosed> {
        self.metrics.messages_received.fetch_add(1, Relaxed);
        // Discovery configs are retained on purpose: read them all the same.
        if self.discovery && discovery::is_discovery(&p.topic) {
            self.on_discovery(&p).await?;
            self.ack(p).await;
            return Ok(());
        }
        // A retained message replayed on subscribe is old state: stamping it
        // with the receive time would log it at the wrong time.
        if p.retain || self.exclude.iter().any(|f| rumqttc::matches(&p.topic, f)) {
            self.metrics.messages_ignored.fetch_add(1, Relaxed);
            self.ack(p).await;
            return Ok(());
        }
        if self.events_topic.as_deref() == Some(p.topic.as_str()) {
            // Not on disk: no ack, so the broker sends it again.
            if self.on_event(&p).await {
                self.ack(p).await;
            }
            return Ok(());
        }
        let now_ms = self.clock.now_ms();
        match decode(&p.topic, &p.payload, now_ms, &self.limits) {
            // Availability, bridge state, attributes: not data.
            Ok(samples) if samples.is_empty() => {
                self.metrics.messages_ignored.fetch_add(1, Relaxed);
                debug!(topic = p.topic, "Message is not data; ignored.");
                self.ack(p).await;
            }
            Ok(samples) => {
                if let [sample] = samples.as_slice()
                    && let Some(word) = state_word(&p.payload)
                {
                    self.payload_says_state(&sample.series, word).await?;
                }
                // Stamped with an untrusted clock: said so, to wait for it.
                let held = self.clock.held(now_ms);
                match self.intake.add(samples, held).await? {
                    Journaled::Yes | Journaled::NoJournal => self.ack(p).await,
                    // Not in the journal: no ack, so the broker sends it
                    // again.
                    Journaled::Failed(e) => self.journal_failed(&e, now_ms),
                }
            }
            Err(reason) => {
                log_refusal!(
                    self.refusals.refuse(reason, now_ms),
                    topic = p.topic,
                    %reason,
                    bytes = p.payload.len(),
                    "Message refused."
                );
                // Acknowledged all the same: a bad publisher must not wedge
                // the session with a message that will never decode.
                self.ack(p).await;
            }
        }
        Ok(())
    }

    /// Keeps an event (on disk before the message is acknowledged); one
    /// that cannot be read is refused like a bad payload. False when it
    /// could not be written (then it must not be acknowledged).
    async fn on_event(&mut self, p: &Publish) -> bool {
        let now_ms = self.clock.now_ms();
        let parsed = if p.payload.len() > self.limits.max_payload_bytes {
            Err((
                RejectReason::Oversize,
                "over limits.max_payload_bytes".to_owned(),
            ))
        } else if !self.events.admit(now_ms.div_euclid(1000)) {
            Err((
                RejectReason::EventRate,
                format!("more than {} a minute", events::MAX_PER_MINUTE),
            ))
        } else {
            events::from_payload(&p.payload, now_ms.div_euclid(1000), self.max_future_s)
                .map_err(|why| (RejectReason::BadJson, why))
        };
        match parsed {
            Ok(event) => match self.events.add(event).await {
                Ok(()) => true,
                Err(e) => {
                    error!(error = %e, "Cannot write the events: the message stays unacknowledged for the broker to send again.");
                    false
                }
            },
            Err((reason, why)) => {
                log_refusal!(
                    self.refusals.refuse(reason, now_ms),
                    topic = p.topic,
                    why,
                    "Event refused."
                );
                true
            }
        }
    }

    /// Hands what a discovery message says to the cache. Metadata is not
    /// journaled: brokers keep discovery configs retained and send them at
    /// every subscription.
    async fn on_discovery(&mut self, p: &Publish) -> Result<(), CacheClosed> {
        self.metrics.discovery_messages.fetch_add(1, Relaxed);
        let now_ms = self.clock.now_ms();
        if p.payload.len() > self.limits.max_payload_bytes {
            log_refusal!(
                self.refusals.refuse(RejectReason::Oversize, now_ms),
                topic = p.topic,
                bytes = p.payload.len(),
                "Discovery message over limits.max_payload_bytes; ignored."
            );
            return Ok(());
        }
        let found = match discovery::parse(&p.topic, &p.payload) {
            Ok(found) => found,
            Err(why) => {
                if let Some(held_back) = self.discovery_warn.allow(now_ms) {
                    warn!(
                        topic = p.topic,
                        why, held_back, "Discovery message not understood; ignored."
                    );
                }
                return Ok(());
            }
        };
        for template in &found.unsupported {
            if let Some(held_back) = self.discovery_warn.allow(now_ms) {
                warn!(
                    topic = p.topic,
                    template,
                    held_back,
                    "Value template not supported; the values are logged under the decoder's names."
                );
            }
        }
        let series: Vec<String> = found.series.iter().map(|(s, _)| s.clone()).collect();
        let mut updates: Vec<_> = found
            .series
            .into_iter()
            .map(|(s, m)| (s, Some(m)))
            .collect();
        // Forget what this topic described before and no longer does.
        let before = if series.is_empty() {
            self.described.remove(&p.topic)
        } else if self.described.len() < self.max_described || self.described.contains_key(&p.topic)
        {
            self.described.insert(p.topic.clone(), series.clone())
        } else {
            None // past the bound, a removal of this config is not tracked
        };
        for gone in before.into_iter().flatten().filter(|s| !series.contains(s)) {
            updates.push((gone, None));
        }
        if updates.is_empty() {
            return Ok(());
        }
        debug!(
            topic = p.topic,
            series = updates.len(),
            "Discovery metadata read."
        );
        self.intake.cache().describe(updates).await
    }

    /// Tells the cache, before the series' first sample, that a series
    /// whose payload is an on/off word (`ON`, `closed`) is a state: its file
    /// then keeps each step's maximum, and pages say it in words. Once per
    /// series and run; what discovery and rules say wins over it.
    async fn payload_says_state(
        &mut self,
        series: &str,
        word: StateWord,
    ) -> Result<(), CacheClosed> {
        if self.states.contains(series) || self.states.len() >= self.max_described {
            return Ok(());
        }
        self.states.insert(series.to_owned());
        self.intake
            .cache()
            .guess_state(series.to_owned(), word.device_class)
            .await
    }

    fn journal_failed(&mut self, e: &std::io::Error, now_ms: i64) {
        self.metrics.journal_errors.fetch_add(1, Relaxed);
        if let Some(held_back) = self.journal_warn.allow(now_ms) {
            error!(error = %e, held_back,
                "Cannot write the journal: messages stay unacknowledged for the broker to send again.");
        }
    }

    /// Queues the ack of `p` behind the messages waiting for the journal.
    async fn ack(&mut self, p: Publish) {
        if !self.intake.has_journal() || p.qos == QoS::AtMostOnce {
            return; // rumqttc acknowledged it already, or nothing to do
        }
        self.acks.push(Ack {
            pkid: p.pkid,
            qos: p.qos,
        });
        if self.acks.uncovered() >= GROUP_MAX {
            self.commit().await;
        }
    }

    /// Whether acks wait for a commit that can begin now.
    pub fn wants_commit(&self) -> bool {
        self.acks.wants_commit()
    }

    /// When the input has paused: when the waiting acks must be committed
    /// (a time already past for "now", so the caller reads the clock once;
    /// or a moment later if a commit just ran and few wait).
    pub fn commit_due(&self) -> tokio::time::Instant {
        if self.fsync_commits || self.acks.uncovered() >= PAUSE_BATCH {
            return self.last_commit;
        }
        self.last_commit + GROUP_WAIT
    }

    /// Whether an fsync of the journal is in flight.
    pub fn fsyncing(&self) -> bool {
        self.fsync.is_some()
    }

    /// Commits the journal for every waiting ack: flushed to the kernel,
    /// then released in order; or, with `sync = "always"`, an fsync begun
    /// on the blocking pool that releases them when it completes
    /// ([`Self::on_fsync_done`]). Nothing while a commit is in flight.
    pub async fn commit(&mut self) {
        if !self.acks.wants_commit() {
            return;
        }
        self.acks.begin();
        self.last_commit = tokio::time::Instant::now();
        match self.intake.begin_commit().await {
            Ok(None) => self.commit_done(Ok(())),
            Ok(Some(fsync)) => self.fsync = Some(fsync),
            Err(e) => self.commit_done(Err(e)),
        }
    }

    /// Completes when the fsync in flight does (never without one).
    pub async fn fsync_done(&mut self) -> io::Result<()> {
        match &mut self.fsync {
            Some(fsync) => fsync.await.unwrap_or_else(|e| Err(io::Error::other(e))),
            None => std::future::pending().await,
        }
    }

    /// The fsync in flight completed: its acks leave, and the records that
    /// came meanwhile get the next one at once.
    pub async fn on_fsync_done(&mut self, synced: io::Result<()>) {
        self.fsync = None;
        self.commit_done(synced);
        self.commit().await;
    }

    /// Releases the acks of the commit in flight; if the journal could not
    /// be written they are dropped: the broker will send those messages
    /// again.
    fn commit_done(&mut self, committed: io::Result<()>) {
        match committed {
            Ok(()) => {
                self.acks.done(true);
                self.retry_acks();
            }
            Err(e) => {
                self.acks.done(false);
                let now_ms = self.clock.now_ms();
                self.journal_failed(&e, now_ms);
            }
        }
    }

    /// Sends the acks that are ready, in order, as far as the client's
    /// request queue takes them.
    pub fn retry_acks(&mut self) {
        while let Some(ack) = self.acks.next_ready() {
            if self.client.try_ack(&ack.packet()).is_err() {
                break;
            }
            self.acks.sent();
        }
    }

    /// After a reconnect, packet ids of the old connection mean nothing:
    /// the broker sends unacknowledged messages again.
    pub fn forget_unacked(&mut self) {
        self.acks.forget();
    }

    /// `sync = "interval"`: the journal fsynced in the background.
    pub async fn sync_in_background(&mut self) {
        self.intake.sync_in_background().await;
    }

    /// A clean stop: everything journaled reaches the disk.
    pub async fn close(&mut self) {
        self.commit().await;
        while self.fsyncing() {
            let synced = self.fsync_done().await;
            self.on_fsync_done(synced).await;
        }
        if let Err(e) = self.intake.close().await {
            error!(error = %e, "Cannot fsync the journal at stop.");
        }
    }
}
