//! The host's events to the program, never dropped.
//!
//! The swarm's task never waits on the program. When the event channel is
//! full:
//! - an inbound request is answered "busy, try again" (the asker retries);
//! - an announcement is reported to gossipsub as ignored (neither
//!   forwarded nor punished; gossip brings it again or sync fetches it);
//! - every other event (connections, misbehaviour, listening addresses) is
//!   held, in order, and sent as room frees. Held events coalesce: a peer's
//!   connection and disconnection that the program has not seen cancel
//!   out, and a peer's misbehaviour is held once. So the queue holds at
//!   most a few events per peer the program knows and per listener, and
//!   nothing is lost.

use crate::behaviour::Behaviour;
use crate::handle::NetEvent;
use libp2p::PeerId;
use libp2p::{gossipsub, Swarm};
use p2p_proto::Response;
use std::collections::{HashMap, HashSet, VecDeque};
use tokio::sync::mpsc;

/// The event channel and the events held while it is full.
pub(crate) struct EventQueue {
    tx: mpsc::Sender<NetEvent>,
    /// Held events in order, each with its number.
    held: VecDeque<(u64, NetEvent)>,
    next: u64,
    /// Held connections the program has not seen, by peer: their numbers.
    unseen: HashMap<PeerId, u64>,
    /// Peers with a misbehaviour report held.
    misbehaved: HashSet<PeerId>,
    /// Held events cancelled by a later one.
    cancelled: HashSet<u64>,
}

impl EventQueue {
    pub(crate) fn new(tx: mpsc::Sender<NetEvent>) -> Self {
        EventQueue {
            tx,
            held: VecDeque::new(),
            next: 0,
            unseen: HashMap::new(),
            misbehaved: HashSet::new(),
            cancelled: HashSet::new(),
        }
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<NetEvent> {
        self.tx.clone()
    }

    pub(crate) fn has_held(&self) -> bool {
        !self.held.is_empty()
    }

    /// Events held now and not cancelled.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.len() - self.cancelled.len()
    }

    /// Sends the oldest held event.
    pub(crate) fn send_held(&mut self, permit: mpsc::Permit<'_, NetEvent>) {
        while let Some((n, ev)) = self.held.pop_front() {
            if self.cancelled.remove(&n) {
                continue;
            }
            match &ev {
                NetEvent::Connected { peer, .. } if self.unseen.get(peer) == Some(&n) => {
                    self.unseen.remove(peer);
                }
                NetEvent::Misbehaved { peer, .. } => {
                    self.misbehaved.remove(peer);
                }
                _ => {}
            }
            permit.send(ev);
            return;
        }
    }

    /// Sends `ev`, or answers, ignores or holds it when the channel is full.
    pub(crate) fn emit(&mut self, ev: NetEvent, swarm: &mut Swarm<Behaviour>) {
        let droppable = matches!(ev, NetEvent::Request { .. } | NetEvent::Announcement { .. });
        // Held events go first, in order.
        if !droppable && !self.held.is_empty() {
            self.hold(ev);
            return;
        }
        match self.tx.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => match ev {
                NetEvent::Request { reply, .. } => {
                    let _ = swarm.behaviour_mut().rr.send_response(
                        reply.0,
                        Response::Error {
                            reason: "busy, try again".into(),
                        },
                    );
                }
                NetEvent::Announcement { id, .. } => {
                    swarm
                        .behaviour_mut()
                        .gossipsub
                        .report_message_validation_result(
                            &id.id,
                            &id.source,
                            gossipsub::MessageAcceptance::Ignore,
                        );
                }
                other => self.hold(other),
            },
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Keeps an event until the channel has room, coalescing it with
    /// those held.
    pub(crate) fn hold(&mut self, ev: NetEvent) {
        match &ev {
            NetEvent::Disconnected { peer } => {
                if let Some(n) = self.unseen.remove(peer) {
                    // The program never saw it connect: it need not see it go.
                    self.cancelled.insert(n);
                    return;
                }
            }
            NetEvent::Misbehaved { peer, .. } if !self.misbehaved.insert(*peer) => return,
            NetEvent::Connected { peer, .. } => {
                self.unseen.insert(*peer, self.next);
            }
            _ => {}
        }
        self.held.push_back((self.next, ev));
        self.next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_events_coalesce_per_peer_and_none_that_matters_is_lost() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut q = EventQueue::new(tx);
        let seen = PeerId::random();
        // The program has seen `seen` connect (through the channel).
        q.hold(NetEvent::Disconnected { peer: seen });
        // Many identities come and go while the program is busy.
        for _ in 0..10_000 {
            let p = PeerId::random();
            q.hold(NetEvent::Connected {
                peer: p,
                address: "/memory/1".parse().expect("an address"),
            });
            q.hold(NetEvent::Misbehaved {
                peer: p,
                reason: "x".into(),
            });
            q.hold(NetEvent::Misbehaved {
                peer: p,
                reason: "y".into(),
            });
            q.hold(NetEvent::Disconnected { peer: p });
        }
        // Each leaves one misbehaviour report, no connection events.
        assert_eq!(q.held(), 1 + 10_000);
        assert!(matches!(
            q.held.front(),
            Some((_, NetEvent::Disconnected { peer })) if *peer == seen
        ));
        assert!(
            rx.try_recv().is_err(),
            "nothing was sent past the held ones"
        );
    }
}
