//! The embedded broker's front door. Devices connect here, not to rumqttd:
//! rumqttd has no hook to refuse a PUBLISH or to count what it refuses, so
//! the gate reads each device's packets (rumqttc's MQTT 3.1.1 codec),
//! decides, and passes what it lets through to rumqttd on a loopback port
//! only the gate and the daemon's own client know the password of.
//!
//! Per connection, in order:
//! - at most `max_connections` at once (a CONNACK "server unavailable"
//!   beyond, on the plain listener);
//! - TLS, when the listener has it (rustls);
//! - a CONNECT within [`CONNECT_WITHIN`], with a user and password that
//!   [`Logins`] accepts (argon2, throttled), and a will the account may
//!   publish;
//! - then each PUBLISH: at most `max_publish_rate` a second after a burst
//!   (beyond, the gate stops reading the connection until the next token:
//!   the device is slowed, nothing is dropped), and only to topics the
//!   account may publish to. A refused PUBLISH is acknowledged to the
//!   device (PUBACK, or PUBREC then PUBCOMP) as mosquitto does with its
//!   ACLs, so the device does not resend it forever, and never reaches
//!   rumqttd;
//! - each SUBSCRIBE filter only within what the account may subscribe to:
//!   a refused one gets 0x80 in the SUBACK and is never subscribed;
//! - the gate's own answers keep MQTT's order among rumqttd's;
//! - a packet larger than the limit, or one that is not MQTT, closes the
//!   connection.
//!
//! Every refusal is counted in `/metrics` (`broker_refused_total{reason}`)
//! and logged at most once a minute per reason.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::{Connect, ConnectReturnCode, Login, Packet, PacketType};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tracing::error;

use super::frames::{FrameError, connack, read_frame};
use super::relay::{Inbound, Owed, to_device};
use super::rights::Rights;
use crate::config::EmbeddedBrokerConfig;
use crate::metrics::{BrokerRefusal, Metrics, Refusals, log_refusal};
use crate::password::{Logins, Verdict};

/// How long a new connection has to finish TLS and send its CONNECT.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);
/// Packets from rumqttd to a device may exceed what a device may send by
/// a topic and rumqttd's framing.
const DOWNSTREAM_EXTRA_BYTES: usize = 70_000;

/// What every connection of both listeners shares.
pub struct Gate {
    /// `None`: anonymous devices are let in (no users configured).
    logins: Option<Arc<Logins>>,
    /// Each configured account's publish and subscribe rights.
    rights: HashMap<String, Rights>,
    /// rumqttd's loopback listener, and the CONNECT login it wants.
    upstream: SocketAddr,
    upstream_login: Login,
    /// The daemon's own client's id: a device taking it would make
    /// rumqttd drop the daemon's session.
    reserved_client_id: String,
    pub(super) max_packet_bytes: usize,
    pub(super) max_publish_rate: u32,
    pub(super) publish_burst: u32,
    connections: Arc<Semaphore>,
    refusals: Mutex<Refusals<BrokerRefusal>>,
}

impl Gate {
    pub fn new(
        config: &EmbeddedBrokerConfig,
        logins: Option<Arc<Logins>>,
        upstream: SocketAddr,
        upstream_login: Login,
        reserved_client_id: &str,
        max_packet_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> Gate {
        Gate {
            logins,
            rights: config
                .users
                .iter()
                .map(|u| {
                    let rights =
                        Rights::for_user(&u.name, u.publish.as_deref(), u.subscribe.as_deref());
                    (u.name.clone(), rights)
                })
                .collect(),
            upstream,
            upstream_login,
            reserved_client_id: reserved_client_id.to_owned(),
            max_packet_bytes,
            max_publish_rate: config.max_publish_rate,
            publish_burst: config.publish_burst,
            connections: Arc::new(Semaphore::new(config.max_connections)),
            refusals: Mutex::new(Refusals::new(metrics)),
        }
    }

    /// Accepts connections on `listener` until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, tls: Option<TlsAcceptor>) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most likely: wait, do not spin.
                    self.refuse(BrokerRefusal::TooManyConnections, None, &e.to_string());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let gate = self.clone();
            let tls = tls.clone();
            let permit = self.connections.clone().try_acquire_owned();
            tokio::spawn(async move {
                let Ok(_permit) = permit else {
                    gate.refuse(BrokerRefusal::TooManyConnections, Some(peer), "");
                    if tls.is_none() {
                        let mut stream = stream;
                        connack(&mut stream, ConnectReturnCode::ServiceUnavailable).await;
                    }
                    return;
                };
                match tls {
                    None => gate.connection(stream, peer).await,
                    Some(acceptor) => {
                        match tokio::time::timeout(CONNECT_WITHIN, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => gate.connection(stream, peer).await,
                            Ok(Err(e)) => gate.refuse(
                                BrokerRefusal::Protocol,
                                Some(peer),
                                &format!("TLS: {e}"),
                            ),
                            Err(_) => gate.refuse(
                                BrokerRefusal::Protocol,
                                Some(peer),
                                "no TLS handshake in time",
                            ),
                        }
                    }
                }
            });
        }
    }

    /// One device's connection, from its CONNECT to its end.
    async fn connection<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let mut inbox = BytesMut::with_capacity(1024);
        let Some(mut connect) = self
            .first_connect(&mut reader, &mut writer, &mut inbox, peer)
            .await
        else {
            return;
        };
        let rights = match self.check_connect(&connect, peer).await {
            Ok(rights) => rights,
            Err((reason, code, what)) => {
                return self.turn_away(&mut writer, peer, reason, code, &what).await;
            }
        };
        let upstream = match TcpStream::connect(self.upstream).await {
            Ok(upstream) => upstream,
            Err(e) => {
                error!(error = %e, "Embedded broker: cannot reach rumqttd.");
                connack(&mut writer, ConnectReturnCode::ServiceUnavailable).await;
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        let (upstream_reader, upstream_writer) = upstream.into_split();
        let mut upstream_writer = BufWriter::new(upstream_writer);
        // rumqttd knows one account: the gate's.
        connect.login = Some(self.upstream_login.clone());
        let mut bytes = BytesMut::new();
        if Packet::Connect(connect)
            .write(&mut bytes, usize::MAX)
            .is_err()
            || upstream_writer.write_all(&bytes).await.is_err()
        {
            return;
        }
        let owed = Arc::new(Mutex::new(Owed::default()));
        let owed_more = Arc::new(tokio::sync::Notify::new());
        let inbound = Inbound {
            reader,
            inbox,
            upstream: upstream_writer,
            owed: owed.clone(),
            owed_more: owed_more.clone(),
        };
        let device_side = self.relay_device(inbound, &rights, peer);
        let downstream_max = self.max_packet_bytes + DOWNSTREAM_EXTRA_BYTES;
        let to_device = to_device(upstream_reader, writer, owed, owed_more, downstream_max);
        // Either side ending ends both: rumqttd sees the device go (and
        // sends its will), the device sees rumqttd close it.
        tokio::select! {
            () = device_side => {}
            () = to_device => {}
        }
    }

    /// The device's CONNECT, read within [`CONNECT_WITHIN`]; `None` (the
    /// refusal counted, and answered where MQTT allows) if none came.
    async fn first_connect<R, W>(
        &self,
        reader: &mut R,
        writer: &mut W,
        inbox: &mut BytesMut,
        peer: SocketAddr,
    ) -> Option<Connect>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let first = read_frame(reader, inbox, self.max_packet_bytes);
        let (reason, what) = match tokio::time::timeout(CONNECT_WITHIN, first).await {
            Ok(Ok(Some((header, frame)))) => {
                if let Ok(PacketType::Connect) = header.packet_type()
                    && let Ok(connect) = Connect::read(header, frame)
                {
                    return Some(connect);
                }
                // Not MQTT 3.1.1: say so in its own terms, then close.
                let (reason, code) = (
                    BrokerRefusal::Protocol,
                    ConnectReturnCode::RefusedProtocolVersion,
                );
                let what = "first packet not a CONNECT";
                self.turn_away(writer, peer, reason, code, what).await;
                return None;
            }
            // Closed before a CONNECT: a port scan, a health check.
            Ok(Ok(None)) => return None,
            Ok(Err(FrameError::TooBig)) => (BrokerRefusal::Oversized, "CONNECT".to_owned()),
            Ok(Err(FrameError::Io(e))) => (BrokerRefusal::Protocol, e.to_string()),
            Ok(Err(FrameError::Malformed)) => (BrokerRefusal::Protocol, "not MQTT".to_owned()),
            Err(_) => (BrokerRefusal::Protocol, "no CONNECT in time".to_owned()),
        };
        self.refuse(reason, Some(peer), &what);
        None
    }

    /// The account's rights, if its CONNECT may go on: a login the account
    /// list accepts, a client id that is not the daemon's, a will it may
    /// publish. Else why not, the CONNACK code that says it, and what.
    async fn check_connect(
        &self,
        connect: &Connect,
        peer: SocketAddr,
    ) -> Result<Rights, (BrokerRefusal, ConnectReturnCode, String)> {
        let rights = self
            .admit(connect.login.as_ref(), peer)
            .await
            .map_err(|(reason, code)| {
                let user = connect.login.as_ref().map(|l| l.username.as_str());
                (reason, code, format!("user {user:?}"))
            })?;
        if connect.client_id == self.reserved_client_id {
            let what = format!("client id {:?} is the daemon's", connect.client_id);
            return Err((
                BrokerRefusal::NotPermitted,
                ConnectReturnCode::BadClientId,
                what,
            ));
        }
        if let Some(will) = &connect.last_will
            && !rights.publish.allows(&will.topic)
        {
            let what = format!("will to {:?}", will.topic);
            return Err((
                BrokerRefusal::NotPermitted,
                ConnectReturnCode::NotAuthorized,
                what,
            ));
        }
        Ok(rights)
    }

    /// The account's rights if its login is accepted, else why not and
    /// the CONNACK code that says it.
    async fn admit(
        &self,
        login: Option<&Login>,
        peer: SocketAddr,
    ) -> Result<Rights, (BrokerRefusal, ConnectReturnCode)> {
        let Some(logins) = &self.logins else {
            return Ok(Rights::ANY);
        };
        let Some(login) = login else {
            return Err((
                BrokerRefusal::NoCredentials,
                ConnectReturnCode::NotAuthorized,
            ));
        };
        let addr = peer.ip().to_string();
        match logins.check(&login.username, &login.password, &addr).await {
            Verdict::Accepted => Ok(self
                .rights
                .get(&login.username)
                .cloned()
                .unwrap_or(Rights::ANY)),
            Verdict::Refused { .. } => Err((
                BrokerRefusal::BadPassword,
                ConnectReturnCode::BadUserNamePassword,
            )),
            Verdict::Throttled(_) => Err((
                BrokerRefusal::Throttled,
                ConnectReturnCode::BadUserNamePassword,
            )),
        }
    }

    /// Refuses a CONNECT: counted, logged, answered with `code`, closed.
    async fn turn_away<W: AsyncWrite + Unpin>(
        &self,
        writer: &mut W,
        peer: SocketAddr,
        reason: BrokerRefusal,
        code: ConnectReturnCode,
        what: &str,
    ) {
        self.refuse(reason, Some(peer), what);
        connack(writer, code).await;
    }

    /// Counts a refusal and logs it (at most once a minute per reason).
    pub(super) fn refuse(&self, reason: BrokerRefusal, peer: Option<SocketAddr>, what: &str) {
        let now_ms = crate::clock::Clock::System.now_ms();
        let Ok(mut refusals) = self.refusals.lock() else {
            return;
        };
        let decision = refusals.refuse(reason, now_ms);
        drop(refusals);
        // Debug-quoted: `what` holds topics and user names as sent.
        log_refusal!(
            decision,
            reason = reason.as_str(),
            ?peer,
            ?what,
            "Embedded broker refused a connection or a message."
        );
    }
}
