//! The MQTT stage: a rumqttc client whose messages become samples for the
//! cache. Decoding is apart, in `decode`, as pure functions.
//!
//! rumqttc reconnects when polled again, but without waiting and without
//! resubscribing; this loop adds both: a doubling wait between attempts, and
//! a subscription at every CONNACK (a new session has none; a kept one may
//! lack topics added since).

mod acks;
pub mod decode;
pub mod discovery;
mod source;
mod tls;

use source::Source;

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnAck, ConnectionError, Event, LastWill, MqttOptions, Packet, QoS, SubAck,
    SubscribeFilter, SubscribeReasonCode,
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::cache::Intake;
use crate::config::{Config, MqttConfig};
use crate::events::Events;
use crate::metrics::Metrics;

/// The largest packet MQTT allows. rumqttc drops the connection on a packet
/// over its limit, and a broker holding that message for a persistent
/// session would send it again at once: a wedge. So the client takes any
/// packet and the decoder refuses oversize payloads.
const MAX_PACKET: usize = 268_435_455;

/// Builds the client options from config; fails only on unreadable TLS files.
///
/// `embedded`: the embedded broker's own address and account, which the
/// client uses instead of `mqtt.broker` (plain TCP on loopback).
pub fn options(
    config: &Config,
    embedded: Option<&crate::broker::Started>,
) -> Result<MqttOptions, tls::TlsError> {
    let m = &config.mqtt;
    let mut opts = match embedded {
        Some(b) => {
            let (user, password) = b.credentials.clone();
            let mut opts = MqttOptions::new(
                m.client_id.clone(),
                b.internal.ip().to_string(),
                b.internal.port(),
            );
            opts.set_credentials(user, password);
            opts
        }
        None => {
            let mut opts = MqttOptions::new(m.client_id.clone(), m.host.clone(), m.port);
            if let Some((user, pass)) = &m.credentials {
                opts.set_credentials(user.clone(), pass.clone());
            }
            if let Some(t) = &m.tls {
                opts.set_transport(tls::transport(t)?);
            }
            opts
        }
    };
    opts.set_keep_alive(m.keep_alive);
    opts.set_clean_session(m.clean_session);
    // With a journal, a message is acknowledged once it is journaled.
    opts.set_manual_acks(config.journal.is_some());
    opts.set_max_packet_size(MAX_PACKET, 64 * 1024);
    if let Some(topic) = &m.status_topic {
        opts.set_last_will(LastWill::new(topic, OFFLINE, QoS::AtLeastOnce, true));
    }
    Ok(opts)
}

/// How the app steers the client and learns that it is ready.
pub struct Control {
    /// Turns true when the client must stop.
    pub stop_rx: watch::Receiver<bool>,
    /// Turns true at the first SUBACK: from then on messages flow (the
    /// service's readiness waits for it).
    pub subscribed_tx: watch::Sender<bool>,
    /// Where events from `mqtt.events_topic` go.
    pub events: Arc<Events>,
}

/// Runs the client until `control.stop_rx` turns true or the cache closes.
/// Topics, exclusions and payload limits follow `config_rx`; connection
/// settings are those it starts with.
// Over 80 lines: one `select!` over the client's event loop, the journal's
// commit and fsyncs and the config, which all act on the same loop state
// (source, session, event loop); split, each branch would take all of it
// along.
pub async fn run(
    mut config_rx: watch::Receiver<Arc<Config>>,
    opts: MqttOptions,
    intake: Intake,
    metrics: Arc<Metrics>,
    clock: crate::clock::Stamper,
    control: Control,
) {
    let Control {
        stop_rx: mut stop,
        subscribed_tx,
        events,
    } = control;
    let config = config_rx.borrow_and_update().clone();
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let sync_every = intake.sync_every().await;
    let mut sync_tick =
        tokio::time::interval(sync_every.unwrap_or(std::time::Duration::from_secs(3600)));
    let mut source = Source::new(
        &config,
        client.clone(),
        intake,
        metrics.clone(),
        clock,
        events,
    );
    let mut session = Session::new(&config, client, metrics, subscribed_tx);
    loop {
        // Biased: the order below is the order of importance. The commit
        // comes last, so it runs only when nothing is there to read: one
        // journal write (or fsync) and one burst of acks per burst of
        // messages, and no timer at a steady low rate.
        // The clock is read only when acks wait (not per QoS 0 message).
        let commit_at = source.wants_commit().then(|| source.commit_due());
        let event = tokio::select! {
            biased;
            _ = stop.changed() => break,
            synced = source.fsync_done(), if source.fsyncing() => {
                source.on_fsync_done(synced).await;
                continue;
            }
            _ = sync_tick.tick(), if sync_every.is_some() => {
                source.sync_in_background().await;
                continue;
            }
            Ok(()) = config_rx.changed() => {
                let new = config_rx.borrow_and_update().clone();
                source.follow(&new);
                session.follow(&new.mqtt);
                continue;
            }
            event = eventloop.poll() => event,
            () = crate::clock::sleep_until(commit_at), if commit_at.is_some() => {
                source.commit().await;
                continue;
            }
        };
        source.retry_acks();
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if source.on_publish(p).await.is_err() {
                    break;
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                source.forget_unacked();
                session.connected(&ack);
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => session.subscribed(&ack),
            Ok(_) => {}
            Err(e) => {
                let wait = session.lost(&e);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }
    if session.metrics.mqtt_connected.swap(0, Relaxed) == 1 {
        say_goodbye(
            &session.client,
            &mut eventloop,
            &mut source,
            config.mqtt.status_topic.as_deref(),
        )
        .await;
    }
    source.close().await;
    info!("MQTT client stopped.");
}

/// The connection across reconnections: what it subscribes to, how long
/// it waits before the next attempt, what it tells the app and `/metrics`.
struct Session {
    client: AsyncClient,
    /// The filters subscribed to (they follow reloads).
    topics: Vec<String>,
    qos: QoS,
    status_topic: Option<String>,
    broker: String,
    reconnect_min: Duration,
    reconnect_max: Duration,
    /// The wait before the next attempt: doubles at each failure, back to
    /// `reconnect_min` once connected.
    backoff: Duration,
    metrics: Arc<Metrics>,
    subscribed_tx: watch::Sender<bool>,
}

impl Session {
    fn new(
        config: &Config,
        client: AsyncClient,
        metrics: Arc<Metrics>,
        subscribed_tx: watch::Sender<bool>,
    ) -> Session {
        let mqtt = &config.mqtt;
        Session {
            client,
            topics: mqtt.topics.clone(),
            qos: mqtt.qos,
            status_topic: mqtt.status_topic.clone(),
            broker: format!("{}:{}", mqtt.host, mqtt.port),
            reconnect_min: mqtt.reconnect_min,
            reconnect_max: mqtt.reconnect_max,
            backoff: mqtt.reconnect_min,
            metrics,
            subscribed_tx,
        }
    }

    fn connected(&mut self, ack: &ConnAck) {
        self.metrics.mqtt_connected.store(1, Relaxed);
        self.metrics.mqtt_connections.fetch_add(1, Relaxed);
        self.backoff = self.reconnect_min;
        info!(
            broker = self.broker,
            session_present = ack.session_present,
            "Connected to the MQTT broker."
        );
        if let Some(topic) = &self.status_topic {
            let _ = self
                .client
                .try_publish(topic, QoS::AtLeastOnce, true, ONLINE);
        }
        // Always (re)subscribe: a new session has no subscriptions, and a
        // kept one may predate topics added to the config. Retained replays
        // this causes are skipped (`Source::on_publish`).
        let filters = self
            .topics
            .iter()
            .map(|t| SubscribeFilter::new(t.clone(), self.qos));
        if let Err(e) = self.client.try_subscribe_many(filters) {
            warn!(error = %e, "Cannot queue the subscription.");
        }
    }

    fn subscribed(&self, ack: &SubAck) {
        let refused = ack
            .return_codes
            .iter()
            .filter(|c| matches!(c, SubscribeReasonCode::Failure))
            .count();
        if refused > 0 {
            warn!(
                refused,
                "The broker refused subscriptions (its ACL?): those topics are not logged."
            );
        }
        debug!(codes = ?ack.return_codes, "Subscribed.");
        self.subscribed_tx.send_replace(true);
    }

    /// The connection failed or dropped: how long to wait before polling
    /// again (rumqttc reconnects then).
    fn lost(&mut self, e: &ConnectionError) -> Duration {
        self.metrics.mqtt_connected.store(0, Relaxed);
        let wait = self.backoff;
        warn!(broker = self.broker, error = %e, retry_in = ?wait, "MQTT connection lost.");
        self.backoff = wait.saturating_mul(2).min(self.reconnect_max);
        wait
    }

    /// Subscribes to the filters a reload adds and unsubscribes from those
    /// it drops. When disconnected the requests wait in the client's queue,
    /// and a new session subscribes to `topics` anyway.
    fn follow(&mut self, mqtt: &MqttConfig) {
        let added: Vec<SubscribeFilter> = mqtt
            .topics
            .iter()
            .filter(|t| !self.topics.contains(t))
            .map(|t| SubscribeFilter::new(t.clone(), mqtt.qos))
            .collect();
        if !added.is_empty() {
            info!(topics = ?added.iter().map(|f| &f.path).collect::<Vec<_>>(), "Subscribing to new topics.");
            let _ = self.client.try_subscribe_many(added);
        }
        for gone in self.topics.iter().filter(|t| !mqtt.topics.contains(t)) {
            info!(topic = gone, "Unsubscribing.");
            let _ = self.client.try_unsubscribe(gone.clone());
        }
        self.topics = mqtt.topics.clone();
        self.qos = mqtt.qos;
    }
}

/// A clean stop: `offline` on the status topic, then DISCONNECT (which
/// tells the broker not to send the last will), both actually sent.
/// Messages that still arrive meanwhile go to the cache like any other.
async fn say_goodbye(
    client: &AsyncClient,
    eventloop: &mut rumqttc::EventLoop,
    source: &mut Source,
    status_topic: Option<&str>,
) {
    if let Some(topic) = status_topic {
        let _ = client.try_publish(topic, QoS::AtLeastOnce, true, OFFLINE);
    }
    let _ = client.try_disconnect();
    let sent = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if source.on_publish(p).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), sent).await;
}

const ONLINE: &str = "online";
const OFFLINE: &str = "offline";
