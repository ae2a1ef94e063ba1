//! A device's packets on their way to rumqttd, and rumqttd's back: each
//! PUBLISH paced and checked against the account's rights, a refused one
//! acknowledged by the gate itself (PUBACK, or PUBREC then PUBCOMP) and
//! never passed on; each SUBSCRIBE's filters checked, a refused one
//! answered 0x80 (failure) in its SUBACK and never subscribed. The gate's
//! own answers keep MQTT's order among rumqttd's (`Owed`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use rumqttc::{
    FixedHeader, Packet, PacketType, PubAck, PubComp, PubRec, PubRel, Publish, QoS, SubAck,
    Subscribe, SubscribeReasonCode,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::frames::{FrameError, take_frame};
use super::gate::Gate;
use super::rights::{PublishRate, Rights};
use crate::metrics::BrokerRefusal;

/// What a device is owed, in the order MQTT 3.1.1 (§4.6) wants: the
/// answers to its QoS 1 and 2 PUBLISHes (PUBACK, PUBREC) in the order of
/// the PUBLISHes, whether rumqttd gives them (the allowed ones) or the gate
/// (the refused ones), and rumqttd's SUBACKs with the refused filters put
/// back. Shared by the two halves of a connection; pure.
#[derive(Debug, Default)]
pub(super) struct Owed {
    answers: VecDeque<Answer>,
    /// SUBSCRIBEs passed on without their refused filters, by packet id:
    /// which of the device's filters were allowed.
    subscribed: HashMap<u16, Vec<bool>>,
}

#[derive(Debug)]
enum Answer {
    /// rumqttd's answer to the PUBLISH with this packet id, awaited.
    Upstream(u16),
    /// The gate's own, sent once every answer before it is.
    Own(Packet),
}

/// The most answers a connection may be owed at once. MQTT clients keep
/// a window of 10 to 100 unacknowledged messages (`max_inflight` is 100 by
/// default); beyond this the device is not reading what it asked for.
const MAX_OWED: usize = 1000;

impl Owed {
    /// Answers owed, awaited from rumqttd or ready.
    pub(super) fn len(&self) -> usize {
        self.answers.len()
    }

    /// A PUBLISH passed on: its answer comes from rumqttd.
    pub(super) fn await_upstream(&mut self, pkid: u16) {
        self.answers.push_back(Answer::Upstream(pkid));
    }

    /// An answer of the gate's own, after those owed before it.
    pub(super) fn own(&mut self, answer: Packet) {
        self.answers.push_back(Answer::Own(answer));
    }

    /// rumqttd answered the PUBLISH `pkid`: it is no longer awaited. The
    /// gate's answers now first in line, to send after rumqttd's.
    pub(super) fn upstream_answered(&mut self, pkid: u16) -> Vec<Packet> {
        if let Some(at) = self
            .answers
            .iter()
            .position(|a| matches!(a, Answer::Upstream(p) if *p == pkid))
        {
            self.answers.remove(at);
        }
        self.ready()
    }

    /// The gate's answers first in line, taken.
    pub(super) fn ready(&mut self) -> Vec<Packet> {
        let mut ready = Vec::new();
        while let Some(Answer::Own(_)) = self.answers.front() {
            if let Some(Answer::Own(p)) = self.answers.pop_front() {
                ready.push(p);
            }
        }
        ready
    }

    /// A SUBSCRIBE passed on with only the filters `allowed` says.
    pub(super) fn subscribed_in_part(&mut self, pkid: u16, allowed: Vec<bool>) {
        self.subscribed.insert(pkid, allowed);
    }

    /// rumqttd's SUBACK, with a failure (0x80) where the gate refused a
    /// filter of the device's SUBSCRIBE.
    pub(super) fn suback(&mut self, suback: SubAck) -> SubAck {
        let Some(allowed) = self.subscribed.remove(&suback.pkid) else {
            return suback;
        };
        let mut upstream = suback.return_codes.into_iter();
        let return_codes = allowed
            .iter()
            .map(|&ok| {
                if ok {
                    upstream.next().unwrap_or(SubscribeReasonCode::Failure)
                } else {
                    SubscribeReasonCode::Failure
                }
            })
            .collect();
        SubAck::new(suback.pkid, return_codes)
    }
}

/// A device connection's state between its packets.
struct Relayed<'r, R, W> {
    inbound: Inbound<R, W>,
    rights: &'r Rights,
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
        rights: &Rights,
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
                    self.inbound
                        .owe(Packet::PubComp(PubComp::new(release.pkid)));
                    return Next::Go;
                }
                self.inbound.upstream.write_all(&frame).await
            }
            Ok(PacketType::Subscribe) => {
                let Ok(subscribe) = Subscribe::read(header, frame.clone()) else {
                    gate.refuse(BrokerRefusal::Protocol, peer, "SUBSCRIBE");
                    return Next::Stop;
                };
                return self.subscribe(gate, subscribe, frame).await;
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
        if publish.qos != QoS::AtMostOnce && lock(&self.inbound.owed).len() >= MAX_OWED {
            // A device that sends and never reads its answers (or a
            // rumqttd that stopped answering): memory stays bounded.
            gate.refuse(BrokerRefusal::Protocol, peer, "too many answers unread");
            return Next::Stop;
        }
        if self.rights.publish.allows(&publish.topic) {
            if publish.qos != QoS::AtMostOnce {
                // Before it goes: rumqttd's answer may come at once.
                lock(&self.inbound.owed).await_upstream(publish.pkid);
            }
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
        self.inbound.owe(ack);
        Next::Go
    }

    /// A SUBSCRIBE: passed on with the filters the account may subscribe
    /// to; refused filters get a failure in the SUBACK and are counted.
    async fn subscribe(&mut self, gate: &Gate, subscribe: Subscribe, frame: Bytes) -> Next {
        let allowed: Vec<bool> = subscribe
            .filters
            .iter()
            .map(|f| self.rights.subscribe.covers(&f.path))
            .collect();
        if allowed.iter().all(|&ok| ok) {
            return go_on(self.inbound.upstream.write_all(&frame).await.is_ok());
        }
        for (f, _) in subscribe
            .filters
            .iter()
            .zip(&allowed)
            .filter(|(_, ok)| !**ok)
        {
            gate.refuse(
                BrokerRefusal::NotPermittedSubscribe,
                Some(self.peer),
                &f.path,
            );
        }
        if !allowed.iter().any(|&ok| ok) {
            let failures = vec![SubscribeReasonCode::Failure; allowed.len()];
            self.inbound
                .owe(Packet::SubAck(SubAck::new(subscribe.pkid, failures)));
            return Next::Go;
        }
        let mut kept = Subscribe::new_many(
            subscribe
                .filters
                .into_iter()
                .zip(&allowed)
                .filter(|(_, ok)| **ok)
                .map(|(f, _)| f),
        );
        kept.pkid = subscribe.pkid;
        lock(&self.inbound.owed).subscribed_in_part(kept.pkid, allowed);
        let mut bytes = BytesMut::new();
        if Packet::Subscribe(kept)
            .write(&mut bytes, usize::MAX)
            .is_err()
        {
            return Next::Stop;
        }
        go_on(self.inbound.upstream.write_all(&bytes).await.is_ok())
    }
}

fn lock(owed: &Mutex<Owed>) -> std::sync::MutexGuard<'_, Owed> {
    owed.lock().unwrap_or_else(|p| p.into_inner())
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
    /// What the device is owed, shared with [`to_device`].
    pub owed: Arc<Mutex<Owed>>,
    /// Wakes [`to_device`] when the gate owes an answer of its own.
    pub owed_more: Arc<Notify>,
}

impl<R, W> Inbound<R, W> {
    /// An answer of the gate's own, sent in its turn.
    fn owe(&self, answer: Packet) {
        lock(&self.owed).own(answer);
        self.owed_more.notify_one();
    }
}

/// Copies rumqttd's packets to the device, whole, and slips the gate's
/// own answers in between them in their turn.
pub(super) async fn to_device<R, W>(
    mut upstream: R,
    mut device: W,
    owed: Arc<Mutex<Owed>>,
    owed_more: Arc<Notify>,
    max_packet_bytes: usize,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut from_broker = BytesMut::with_capacity(4096);
    let mut out = BytesMut::new();
    loop {
        out.clear();
        tokio::select! {
            read = upstream.read_buf(&mut from_broker) => {
                if !matches!(read, Ok(n) if n > 0) {
                    return;
                }
                loop {
                    let (header, frame) = match take_frame(&mut from_broker, max_packet_bytes) {
                        Ok(Some(packet)) => packet,
                        Ok(None) => break,
                        Err(_) => return,
                    };
                    if !downstream(header, frame, &owed, &mut out) {
                        return;
                    }
                }
            }
            () = owed_more.notified() => {
                for answer in lock(&owed).ready() {
                    if answer.write(&mut out, usize::MAX).is_err() {
                        return;
                    }
                }
            }
        }
        if !out.is_empty() && device.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// One packet from rumqttd to the device, into `out`: a PUBACK or PUBREC
/// followed by the gate's answers now in turn, a SUBACK with the refused
/// filters put back, the rest as it is. `false` on a packet rumqttc cannot
/// read.
fn downstream(header: FixedHeader, frame: Bytes, owed: &Mutex<Owed>, out: &mut BytesMut) -> bool {
    let answered = match header.packet_type() {
        Ok(PacketType::PubAck) => PubAck::read(header, frame.clone()).map(|a| Some(a.pkid)),
        Ok(PacketType::PubRec) => PubRec::read(header, frame.clone()).map(|a| Some(a.pkid)),
        Ok(PacketType::SubAck) => {
            let Ok(suback) = SubAck::read(header, frame) else {
                return false;
            };
            let suback = lock(owed).suback(suback);
            return Packet::SubAck(suback).write(out, usize::MAX).is_ok();
        }
        _ => Ok(None),
    };
    out.extend_from_slice(&frame);
    match answered {
        Ok(Some(pkid)) => lock(owed)
            .upstream_answered(pkid)
            .into_iter()
            .all(|answer| answer.write(out, usize::MAX).is_ok()),
        Ok(None) => true,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkids(packets: &[Packet]) -> Vec<u16> {
        packets
            .iter()
            .map(|p| match p {
                Packet::PubAck(a) => a.pkid,
                Packet::PubRec(a) => a.pkid,
                Packet::PubComp(a) => a.pkid,
                Packet::SubAck(a) => a.pkid,
                _ => 0,
            })
            .collect()
    }

    /// Allowed 1, refused 2, allowed 3, refused 4: the gate's answer to 2
    /// waits for rumqttd's to 1, its answer to 4 for rumqttd's to 3.
    #[test]
    fn the_gates_answers_wait_for_rumqttds_before_them() {
        let mut owed = Owed::default();
        owed.await_upstream(1);
        owed.own(Packet::PubAck(PubAck::new(2)));
        owed.await_upstream(3);
        owed.own(Packet::PubAck(PubAck::new(4)));
        assert!(owed.ready().is_empty(), "2 waits for 1");
        assert_eq!(pkids(&owed.upstream_answered(1)), [2]);
        assert!(owed.ready().is_empty(), "4 waits for 3");
        assert_eq!(pkids(&owed.upstream_answered(3)), [4]);
        // Nothing awaited: the gate answers at once.
        owed.own(Packet::PubAck(PubAck::new(5)));
        assert_eq!(pkids(&owed.ready()), [5]);
    }

    #[test]
    fn a_suback_gets_its_refused_filters_back() {
        let mut owed = Owed::default();
        owed.subscribed_in_part(7, vec![false, true, false, true]);
        let upstream = SubAck::new(
            7,
            vec![
                SubscribeReasonCode::Success(QoS::AtLeastOnce),
                SubscribeReasonCode::Success(QoS::AtMostOnce),
            ],
        );
        let whole = owed.suback(upstream);
        assert_eq!(
            whole.return_codes,
            [
                SubscribeReasonCode::Failure,
                SubscribeReasonCode::Success(QoS::AtLeastOnce),
                SubscribeReasonCode::Failure,
                SubscribeReasonCode::Success(QoS::AtMostOnce),
            ]
        );
        // Another SUBACK passes as it is.
        let other = SubAck::new(8, vec![SubscribeReasonCode::Success(QoS::AtMostOnce)]);
        assert_eq!(owed.suback(other.clone()), other);
    }
}
