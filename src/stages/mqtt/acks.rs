//! Acknowledgements in the order MQTT requires (that of the messages), each
//! held until the journal commit covering its message is done. Pure: the
//! source begins commits and sends what is [`AckQueue::next_ready`].
//!
//! At most one commit is in flight. Acks that come while it runs wait for
//! the next, which the source begins as soon as that one is done: with
//! `sync = "always"` an fsync is then always running while records wait,
//! and each covers everything that came during the one before.

use std::collections::VecDeque;

use rumqttc::{Publish, QoS};

/// What an acknowledgement needs of its message: keeping the message
/// itself would pin rumqttc's read buffer while acks wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Ack {
    pub pkid: u16,
    pub qos: QoS,
}

impl Ack {
    pub fn packet(self) -> Publish {
        let mut p = Publish::new("", self.qos, Vec::<u8>::new());
        p.pkid = self.pkid;
        p
    }
}

#[derive(Debug, Default)]
pub(super) struct AckQueue {
    /// Acks whose messages' records are not committed, in order: the first
    /// `covered` wait for the commit in flight, the rest for the next.
    waiting: VecDeque<Ack>,
    covered: usize,
    in_flight: bool,
    /// Committed: may be sent, in order.
    ready: VecDeque<Ack>,
}

impl AckQueue {
    pub fn push(&mut self, ack: Ack) {
        self.waiting.push_back(ack);
    }

    /// Acks that no commit covers yet.
    pub fn uncovered(&self) -> usize {
        self.waiting.len() - self.covered
    }

    /// Whether a commit can begin now for acks that wait for one.
    pub fn wants_commit(&self) -> bool {
        !self.in_flight && !self.waiting.is_empty()
    }

    /// A commit begins that covers every waiting ack.
    pub fn begin(&mut self) {
        debug_assert!(!self.in_flight, "one commit in flight at a time");
        self.in_flight = true;
        self.covered = self.waiting.len();
    }

    /// The commit in flight is done: its acks are ready when it succeeded,
    /// dropped when it failed (the broker sends those messages again).
    /// Returns how many were dropped.
    pub fn done(&mut self, succeeded: bool) -> usize {
        self.in_flight = false;
        let covered = self.waiting.drain(..std::mem::take(&mut self.covered));
        if succeeded {
            self.ready.extend(covered);
            0
        } else {
            covered.len()
        }
    }

    /// The next ack to send; [`Self::sent`] once the client took it.
    pub fn next_ready(&self) -> Option<Ack> {
        self.ready.front().copied()
    }

    pub fn sent(&mut self) {
        self.ready.pop_front();
    }

    /// After a reconnect, packet ids of the old connection mean nothing:
    /// the broker sends unacknowledged messages again. A commit in flight
    /// then completes with nothing to release.
    pub fn forget(&mut self) {
        self.waiting.clear();
        self.ready.clear();
        self.covered = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(pkid: u16) -> Ack {
        Ack {
            pkid,
            qos: QoS::AtLeastOnce,
        }
    }

    fn drain(q: &mut AckQueue) -> Vec<u16> {
        let mut sent = Vec::new();
        while let Some(a) = q.next_ready() {
            sent.push(a.pkid);
            q.sent();
        }
        sent
    }

    #[test]
    fn nothing_is_ready_before_the_commit_covering_it_is_done() {
        let mut q = AckQueue::default();
        q.push(ack(1));
        q.push(ack(2));
        assert!(q.wants_commit());
        q.begin();
        // Messages keep coming while the fsync runs.
        q.push(ack(3));
        assert!(!q.wants_commit(), "one commit in flight at a time");
        assert_eq!(q.uncovered(), 1);
        assert_eq!(drain(&mut q), Vec::<u16>::new());
        assert_eq!(q.done(true), 0);
        assert_eq!(drain(&mut q), [1, 2], "3 waits for the next commit");
        assert!(q.wants_commit());
        q.begin();
        assert_eq!(drain(&mut q), Vec::<u16>::new());
        q.done(true);
        assert_eq!(drain(&mut q), [3]);
        assert!(!q.wants_commit());
    }

    #[test]
    fn a_failed_commit_drops_only_what_it_covered_and_order_holds() {
        let mut q = AckQueue::default();
        q.push(ack(1));
        q.begin();
        q.push(ack(2));
        assert_eq!(q.done(false), 1);
        q.begin();
        q.push(ack(3));
        q.done(true);
        q.begin();
        q.done(true);
        assert_eq!(drain(&mut q), [2, 3]);
    }

    #[test]
    fn ready_acks_wait_in_order_when_the_client_is_full() {
        let mut q = AckQueue::default();
        for pkid in 1..=3 {
            q.push(ack(pkid));
        }
        q.begin();
        q.done(true);
        q.push(ack(4));
        q.begin();
        q.done(true);
        // The client took one, then its queue was full.
        assert_eq!(q.next_ready(), Some(ack(1)));
        q.sent();
        assert_eq!(drain(&mut q), [2, 3, 4]);
    }

    #[test]
    fn a_reconnect_forgets_every_old_packet_id() {
        let mut q = AckQueue::default();
        q.push(ack(1));
        q.begin();
        q.push(ack(2));
        q.forget();
        q.push(ack(1)); // the new connection's first message
        assert!(!q.wants_commit(), "the old fsync is still in flight");
        assert_eq!(q.done(true), 0);
        assert_eq!(drain(&mut q), Vec::<u16>::new());
        q.begin();
        q.done(true);
        assert_eq!(drain(&mut q), [1]);
    }
}
