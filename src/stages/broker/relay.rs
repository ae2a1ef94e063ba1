//! A device's packets on their way to rumqttd, and rumqttd's back: each
//! PUBLISH paced and checked against the account's rights, a refused one
//! acknowledged by the gate itself (PUBACK, or PUBREC then PUBCOMP) and
//! never passed on.

use std::collections::HashSet;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use rumqttc::{FixedHeader, Packet, PacketType, PubAck, PubComp, PubRec, PubRel, Publish, QoS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::frames::{FrameError, take_frame, whole_frames};
use super::gate::Gate;
use super::rights::{PublishRate, PublishRights};
use crate::metrics::BrokerRefusal;

/// A device connection's state between its packets.
struct Relayed<'r, R, W> {
    inbound: Inbound<R, W>,
    rights: &'r PublishRights,
    peer: SocketAddr,
    rate: PublishRate,
    /// QoS 2 PUBLISHes refused: their PUBREL is answered here too.
    refused_qos2: HashSet<u16>,
}

/// Whether the connection goes on after a packet.
enum Next {
    Go,
    Stop,
}

impl Gate {
    /// Passes the device's packets to rumqttd, each PUBLISH checked and
    /// paced, until either side closes or the device breaks the protocol.
    pub(super) async fn relay_device<R, W>(
        &self,
        inbound: Inbound<R, W>,
        rights: &PublishRights,
        peer: SocketAddr,
    ) where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut relayed = Relayed {
            inbound,
            rights,
            peer,
            rate: PublishRate::new(self.max_publish_rate, self.publish_burst, Instant::now()),
            refused_qos2: HashSet::new(),
        };
        loop {
            loop {
                let inbox = &mut relayed.inbound.inbox;
                let (header, frame) = match take_frame(inbox, self.max_packet_bytes) {
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
                if let Next::Stop = relayed.packet(self, header, frame).await {
                    return;
                }
            }
            let inbound = &mut relayed.inbound;
            if inbound.upstream.flush().await.is_err() {
                return;
            }
            match inbound.reader.read_buf(&mut inbound.inbox).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }
}

impl<R, W: AsyncWrite + Unpin> Relayed<'_, R, W> {
    /// One packet from the device.
    async fn packet(&mut self, gate: &Gate, header: FixedHeader, frame: Bytes) -> Next {
        let peer = Some(self.peer);
        let passed = match header.packet_type() {
            Ok(PacketType::Publish) => {
                let Ok(publish) = Publish::read(header, frame.clone()) else {
                    gate.refuse(BrokerRefusal::Protocol, peer, "PUBLISH");
                    return Next::Stop;
                };
                return self.publish(gate, publish, frame).await;
            }
            Ok(PacketType::PubRel) => {
                let Ok(release) = PubRel::read(header, frame.clone()) else {
                    gate.refuse(BrokerRefusal::Protocol, peer, "PUBREL");
                    return Next::Stop;
                };
                if self.refused_qos2.remove(&release.pkid) {
                    let done = Packet::PubComp(PubComp::new(release.pkid));
                    return go_on(self.inbound.acks.send(done).await.is_ok());
                }
                self.inbound.upstream.write_all(&frame).await
            }
            Ok(PacketType::Connect) => {
                gate.refuse(BrokerRefusal::Protocol, peer, "second CONNECT");
                return Next::Stop;
            }
            Err(_) => {
                gate.refuse(BrokerRefusal::Protocol, peer, "packet type");
                return Next::Stop;
            }
            Ok(PacketType::Disconnect) => {
                let _ = self.inbound.upstream.write_all(&frame).await;
                let _ = self.inbound.upstream.flush().await;
                return Next::Stop;
            }
            Ok(_) => self.inbound.upstream.write_all(&frame).await,
        };
        go_on(passed.is_ok())
    }

    /// A PUBLISH: paced by the rate cap, then passed on if the account may
    /// publish there, else acknowledged here and dropped.
    async fn publish(&mut self, gate: &Gate, publish: Publish, frame: Bytes) -> Next {
        let peer = Some(self.peer);
        if let Some(wait) = self.rate.take(Instant::now()) {
            gate.refuse(BrokerRefusal::RateLimited, peer, &publish.topic);
            if self.inbound.upstream.flush().await.is_err() {
                return Next::Stop;
            }
            tokio::time::sleep(wait).await;
        }
        if self.rights.allows(&publish.topic) {
            return go_on(self.inbound.upstream.write_all(&frame).await.is_ok());
        }
        gate.refuse(BrokerRefusal::NotPermitted, peer, &publish.topic);
        let ack = match publish.qos {
            QoS::AtMostOnce => return Next::Go,
            QoS::AtLeastOnce => Packet::PubAck(PubAck::new(publish.pkid)),
            QoS::ExactlyOnce => {
                self.refused_qos2.insert(publish.pkid);
                Packet::PubRec(PubRec::new(publish.pkid))
            }
        };
        go_on(self.inbound.acks.send(ack).await.is_ok())
    }
}

fn go_on(ok: bool) -> Next {
    if ok { Next::Go } else { Next::Stop }
}

/// The device-to-rumqttd half of a connection.
pub(super) struct Inbound<R, W> {
    pub reader: tokio::io::ReadHalf<R>,
    /// Bytes read from the device, not yet a whole packet.
    pub inbox: BytesMut,
    pub upstream: BufWriter<W>,
    /// Acknowledgements the gate sends itself, for what it refused.
    pub acks: mpsc::Sender<Packet>,
}

/// Copies rumqttd's packets to the device, whole, and slips the gate's
/// own acknowledgements in between them.
pub(super) async fn to_device<R, W>(
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
