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
//! - a packet larger than the limit, or one that is not MQTT, closes the
//!   connection.
//!
//! Every refusal is counted in `/metrics` (`broker_refused_total{reason}`)
//! and logged at most once a minute per reason.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, FixedHeader, Login, Packet, PacketType, PubAck, PubComp,
    PubRec, PubRel, Publish, QoS,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::error;

use super::rights::{PublishRate, PublishRights};
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
    /// Each configured account's publish rights.
    rights: HashMap<String, PublishRights>,
    /// rumqttd's loopback listener, and the CONNECT login it wants.
    upstream: SocketAddr,
    upstream_login: Login,
    /// The daemon's own client's id: a device taking it would make
    /// rumqttd drop the daemon's session.
    reserved_client_id: String,
    max_packet_bytes: usize,
    max_publish_rate: u32,
    publish_burst: u32,
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
                    let rights = PublishRights::for_user(&u.name, u.publish.as_deref());
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
        let first = tokio::time::timeout(
            CONNECT_WITHIN,
            read_frame(&mut reader, &mut inbox, self.max_packet_bytes),
        )
        .await;
        let (header, frame) = match first {
            Ok(Ok(Some(packet))) => packet,
            // Closed before a CONNECT: a port scan, a health check.
            Ok(Ok(None)) => return,
            Ok(Err(FrameError::TooBig)) => {
                return self.refuse(BrokerRefusal::Oversized, Some(peer), "CONNECT");
            }
            Ok(Err(FrameError::Io(e))) => {
                return self.refuse(BrokerRefusal::Protocol, Some(peer), &e.to_string());
            }
            Ok(Err(FrameError::Malformed)) => {
                return self.refuse(BrokerRefusal::Protocol, Some(peer), "not MQTT");
            }
            Err(_) => {
                return self.refuse(BrokerRefusal::Protocol, Some(peer), "no CONNECT in time");
            }
        };
        let connect = match header.packet_type() {
            Ok(PacketType::Connect) => Connect::read(header, frame).ok(),
            _ => None,
        };
        let Some(mut connect) = connect else {
            // Not MQTT 3.1.1: say so in its own terms, then close.
            let (reason, code) = (
                BrokerRefusal::Protocol,
                ConnectReturnCode::RefusedProtocolVersion,
            );
            return self
                .turn_away(
                    &mut writer,
                    peer,
                    reason,
                    code,
                    "first packet not a CONNECT",
                )
                .await;
        };
        let rights = match self.admit(connect.login.as_ref(), peer).await {
            Ok(rights) => rights,
            Err((reason, code)) => {
                let user = connect.login.as_ref().map(|l| l.username.as_str());
                let what = format!("user {user:?}");
                return self.turn_away(&mut writer, peer, reason, code, &what).await;
            }
        };
        if connect.client_id == self.reserved_client_id {
            let what = format!("client id {:?} is the daemon's", connect.client_id);
            let (reason, code) = (BrokerRefusal::NotPermitted, ConnectReturnCode::BadClientId);
            return self.turn_away(&mut writer, peer, reason, code, &what).await;
        }
        if let Some(will) = &connect.last_will
            && !rights.allows(&will.topic)
        {
            let what = format!("will to {:?}", will.topic);
            let (reason, code) = (
                BrokerRefusal::NotPermitted,
                ConnectReturnCode::NotAuthorized,
            );
            return self.turn_away(&mut writer, peer, reason, code, &what).await;
        }
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
        let (acks_tx, acks_rx) = mpsc::channel(64);
        let device_side = self.relay_device(
            Inbound {
                reader,
                inbox,
                upstream: upstream_writer,
                acks: acks_tx,
            },
            &rights,
            peer,
        );
        let to_device = to_device(
            upstream_reader,
            writer,
            acks_rx,
            self.max_packet_bytes + DOWNSTREAM_EXTRA_BYTES,
        );
        // Either side ending ends both: rumqttd sees the device go (and
        // sends its will), the device sees rumqttd close it.
        tokio::select! {
            () = device_side => {}
            () = to_device => {}
        }
    }

    /// The account's rights if its login is accepted, else why not and
    /// the CONNACK code that says it.
    async fn admit(
        &self,
        login: Option<&Login>,
        peer: SocketAddr,
    ) -> Result<PublishRights, (BrokerRefusal, ConnectReturnCode)> {
        let Some(logins) = &self.logins else {
            return Ok(PublishRights::Any);
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
                .unwrap_or(PublishRights::Any)),
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

    /// Passes the device's packets to rumqttd, each PUBLISH checked and
    /// paced, until either side closes or the device breaks the protocol.
    async fn relay_device<R, W>(
        &self,
        mut inbound: Inbound<R, W>,
        rights: &PublishRights,
        peer: SocketAddr,
    ) where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut rate = PublishRate::new(self.max_publish_rate, self.publish_burst, Instant::now());
        // QoS 2 PUBLISHes refused: their PUBREL is answered here too.
        let mut refused_qos2 = HashSet::new();
        loop {
            loop {
                let (header, frame) = match take_frame(&mut inbound.inbox, self.max_packet_bytes) {
                    Ok(Some(packet)) => packet,
                    Ok(None) => break,
                    Err(e) => {
                        let reason = match e {
                            FrameError::TooBig => BrokerRefusal::Oversized,
                            _ => BrokerRefusal::Protocol,
                        };
                        return self.refuse(reason, Some(peer), "packet");
                    }
                };
                let passed = match header.packet_type() {
                    Ok(PacketType::Publish) => {
                        let Ok(publish) = Publish::read(header, frame.clone()) else {
                            return self.refuse(BrokerRefusal::Protocol, Some(peer), "PUBLISH");
                        };
                        if let Some(wait) = rate.take(Instant::now()) {
                            self.refuse(BrokerRefusal::RateLimited, Some(peer), &publish.topic);
                            if inbound.upstream.flush().await.is_err() {
                                return;
                            }
                            tokio::time::sleep(wait).await;
                        }
                        if rights.allows(&publish.topic) {
                            inbound.upstream.write_all(&frame).await
                        } else {
                            self.refuse(BrokerRefusal::NotPermitted, Some(peer), &publish.topic);
                            let ack = match publish.qos {
                                QoS::AtMostOnce => None,
                                QoS::AtLeastOnce => Some(Packet::PubAck(PubAck::new(publish.pkid))),
                                QoS::ExactlyOnce => {
                                    refused_qos2.insert(publish.pkid);
                                    Some(Packet::PubRec(PubRec::new(publish.pkid)))
                                }
                            };
                            if let Some(ack) = ack
                                && inbound.acks.send(ack).await.is_err()
                            {
                                return;
                            }
                            Ok(())
                        }
                    }
                    Ok(PacketType::PubRel) => {
                        let Ok(release) = PubRel::read(header, frame.clone()) else {
                            return self.refuse(BrokerRefusal::Protocol, Some(peer), "PUBREL");
                        };
                        if refused_qos2.remove(&release.pkid) {
                            let done = Packet::PubComp(PubComp::new(release.pkid));
                            if inbound.acks.send(done).await.is_err() {
                                return;
                            }
                            Ok(())
                        } else {
                            inbound.upstream.write_all(&frame).await
                        }
                    }
                    Ok(PacketType::Connect) => {
                        return self.refuse(BrokerRefusal::Protocol, Some(peer), "second CONNECT");
                    }
                    Err(_) => {
                        return self.refuse(BrokerRefusal::Protocol, Some(peer), "packet type");
                    }
                    Ok(PacketType::Disconnect) => {
                        let _ = inbound.upstream.write_all(&frame).await;
                        let _ = inbound.upstream.flush().await;
                        return;
                    }
                    Ok(_) => inbound.upstream.write_all(&frame).await,
                };
                if passed.is_err() {
                    return;
                }
            }
            if inbound.upstream.flush().await.is_err() {
                return;
            }
            match inbound.reader.read_buf(&mut inbound.inbox).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
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
    fn refuse(&self, reason: BrokerRefusal, peer: Option<SocketAddr>, what: &str) {
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

/// The device-to-rumqttd half of a connection.
struct Inbound<R, W> {
    reader: tokio::io::ReadHalf<R>,
    /// Bytes read from the device, not yet a whole packet.
    inbox: BytesMut,
    upstream: BufWriter<W>,
    /// Acknowledgements the gate sends itself, for what it refused.
    acks: mpsc::Sender<Packet>,
}

/// Copies rumqttd's packets to the device, whole, and slips the gate's
/// own acknowledgements in between them.
async fn to_device<R, W>(
    mut upstream: R,
    mut device: W,
    mut acks: mpsc::Receiver<Packet>,
    max_packet_bytes: usize,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut from_broker = BytesMut::with_capacity(4096);
    let mut ack_bytes = BytesMut::new();
    loop {
        tokio::select! {
            read = upstream.read_buf(&mut from_broker) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
                let Ok(whole) = whole_frames(&from_broker, max_packet_bytes) else {
                    return;
                };
                if whole > 0 {
                    let packets = from_broker.split_to(whole);
                    if device.write_all(&packets).await.is_err() {
                        return;
                    }
                }
            }
            Some(ack) = acks.recv() => {
                ack_bytes.clear();
                if ack.write(&mut ack_bytes, usize::MAX).is_err()
                    || device.write_all(&ack_bytes).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

#[derive(Debug)]
enum FrameError {
    TooBig,
    Malformed,
    Io(std::io::Error),
}

fn frame_error(e: rumqttc::Error) -> FrameError {
    match e {
        rumqttc::Error::PayloadSizeLimitExceeded(_) => FrameError::TooBig,
        _ => FrameError::Malformed,
    }
}

/// The next whole packet at the head of `buffer`, taken off it; `None`
/// if it is not all there yet (room is reserved for the rest).
fn take_frame(
    buffer: &mut BytesMut,
    max: usize,
) -> Result<Option<(FixedHeader, Bytes)>, FrameError> {
    match rumqttc::check(buffer.iter(), max) {
        Ok(header) => Ok(Some((
            header,
            buffer.split_to(header.frame_length()).freeze(),
        ))),
        Err(rumqttc::Error::InsufficientBytes(missing)) => {
            buffer.reserve(missing);
            Ok(None)
        }
        Err(e) => Err(frame_error(e)),
    }
}

/// How many bytes at the head of `buffer` are whole packets.
fn whole_frames(buffer: &BytesMut, max: usize) -> Result<usize, FrameError> {
    let mut at = 0;
    loop {
        match rumqttc::check(buffer[at..].iter(), max) {
            Ok(header) => at += header.frame_length(),
            Err(rumqttc::Error::InsufficientBytes(_)) => return Ok(at),
            Err(e) => return Err(frame_error(e)),
        }
    }
}

/// Reads until a whole packet is there; `None` if the peer closed first.
async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
    max: usize,
) -> Result<Option<(FixedHeader, Bytes)>, FrameError> {
    loop {
        if let Some(frame) = take_frame(buffer, max)? {
            return Ok(Some(frame));
        }
        if reader.read_buf(buffer).await.map_err(FrameError::Io)? == 0 {
            return Ok(None);
        }
    }
}

/// Answers a CONNECT with `code` and closes.
async fn connack<W: AsyncWrite + Unpin>(writer: &mut W, code: ConnectReturnCode) {
    let mut bytes = BytesMut::new();
    if Packet::ConnAck(ConnAck::new(code, false))
        .write(&mut bytes, usize::MAX)
        .is_ok()
    {
        let _ = writer.write_all(&bytes).await;
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, payload: &[u8]) -> BytesMut {
        let mut bytes = BytesMut::new();
        let mut publish = Publish::new(topic, QoS::AtLeastOnce, payload.to_vec());
        publish.pkid = 1;
        Packet::Publish(publish)
            .write(&mut bytes, usize::MAX)
            .unwrap();
        bytes
    }

    #[test]
    fn packets_are_taken_whole_and_only_whole() {
        let mut stream = publish("a/b", b"21.5");
        let one = stream.len();
        stream.extend_from_slice(&publish("c", b"1")[..3]);
        assert_eq!(whole_frames(&stream, 1024).unwrap(), one);
        let (header, frame) = take_frame(&mut stream, 1024).unwrap().unwrap();
        assert_eq!(header.packet_type().unwrap(), PacketType::Publish);
        assert_eq!(Publish::read(header, frame).unwrap().topic, "a/b");
        // The second is cut short: left in the buffer for the next read.
        assert!(take_frame(&mut stream, 1024).unwrap().is_none());
        assert_eq!(stream.len(), 3);
    }

    #[test]
    fn a_packet_over_the_limit_or_garbage_is_an_error() {
        let mut big = publish("a", &[0; 2000]);
        assert!(matches!(
            take_frame(&mut big, 1024),
            Err(FrameError::TooBig)
        ));
        // A remaining length that never ends (five continuation bytes).
        let mut garbage = BytesMut::from(&[0x30, 0xff, 0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(
            take_frame(&mut garbage, 1 << 20),
            Err(FrameError::Malformed)
        ));
    }
}
