//! The peer table and the connection policy.
//!
//! One [`Entry`] per connected peer holds everything the host knows of it:
//! the direction of its first connection (from libp2p's endpoint, never
//! changed), why this node dialled it, whether it is a peer yet, and what
//! it has done for this node. [`PeerTable`] is pure: given an event and the
//! time it returns the [`Action`]s to take, and the host carries them out.
//! So the policy is tested here without a swarm.
//!
//! The policy follows Bitcoin Core's (`net.cpp`, `node/eviction.cpp`),
//! which exists because of Heilman et al., "Eclipse Attacks on Bitcoin's
//! Peer-to-Peer Network" (USENIX Security 2015):
//! - outbound peers are those this node dialled, and only they count
//!   toward its outbound places;
//! - a full node lets a newcomer in by evicting an inbound peer that is
//!   not protected, from the network group with the most connections;
//! - bootstrap peers are let go only for other outbound peers.

use crate::addr::{inbound_ip_key, netgroup, peer_address, NetGroup};
use crate::config::{
    BOOTSTRAP_RELEASE_AFTER, BOOTSTRAP_RELEASE_PEERS, DIAL_DEADLINE, GRACE, MAX_INBOUND_PER_IP,
    MIN_OUTBOUND, SHORT_LIVED_FOR, SHORT_LIVED_SLOTS, UNCONFIRMED_FOR,
};
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Who opened a peer's first connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The peer dialled this node.
    Inbound,
    /// This node dialled the peer.
    Outbound,
}

/// Why this node dialled a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A `--dest` peer.
    Bootstrap,
    /// An anchor: an outbound peer that served blocks before the last
    /// clean shutdown.
    Anchor,
    /// Picked from the address book to fill an outbound place.
    Book,
    /// Asked for by the program ([`crate::NetHandle::dial`]).
    Asked,
    /// Not chosen: it dialled in, or a Kademlia lookup dialled it.
    None,
}

impl Origin {
    fn chosen(self) -> bool {
        self != Origin::None
    }
}

/// Where a connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Connected, not yet a peer: a peer once it makes a sync request (or
    /// at once, when this node chose to dial it).
    Unconfirmed,
    /// Served in a short-lived slot (a wallet), closed at `until`.
    ShortLived {
        /// When it is closed.
        until: Instant,
    },
    /// A peer, reported to the program.
    Peer {
        /// Since when.
        since: Instant,
    },
}

/// One connected peer.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Its first connection's remote address, ending in `/p2p/<id>`.
    pub address: Multiaddr,
    /// The direction of its first connection.
    pub direction: Direction,
    /// Why this node dialled it.
    pub origin: Origin,
    /// Where it stands.
    pub state: State,
    /// When its first connection opened.
    pub connected_at: Instant,
    /// The network group of its address.
    pub group: NetGroup,
    /// Its open connections.
    pub connections: u32,
    /// The last ping's round trip.
    pub rtt: Option<Duration>,
    /// When it last delivered a new valid block.
    pub last_block: Option<Instant>,
    /// When it last delivered a new valid payment.
    pub last_tx: Option<Instant>,
    /// Whether it answered this node's sync with blocks.
    pub served_blocks: bool,
    /// When its listen addresses were last taken.
    pub addresses_taken: Option<Instant>,
}

impl Entry {
    /// Whether it is a peer (reported to the program).
    pub fn is_peer(&self) -> bool {
        matches!(self.state, State::Peer { .. })
    }
}

/// What the host is to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Report a new peer to the program.
    Connected(PeerId, Multiaddr),
    /// Report a peer gone.
    Disconnected(PeerId),
    /// Close one connection.
    Close(ConnectionId),
    /// Close every connection to a peer, or abort a dial to it.
    Disconnect(PeerId),
}

/// The sizes the policy works within.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Inbound connections that may be peers.
    pub inbound_peer_slots: usize,
    /// [`crate::NetConfig::max_connections`].
    pub max_connections: usize,
}

/// Peers protected from eviction for each reason (Bitcoin Core's numbers).
const PROTECT_BY_GROUP: usize = 4;
const PROTECT_BY_PING: usize = 8;
const PROTECT_BY_TX: usize = 4;
const PROTECT_BY_BLOCK: usize = 4;

/// Every connected peer, the dials of this node's choosing in flight, and
/// the counts the limits are checked against.
#[derive(Debug)]
pub struct PeerTable {
    limits: Limits,
    entries: HashMap<PeerId, Entry>,
    /// Dials of this node's choosing in flight: why, and since when.
    dialing: HashMap<PeerId, (Origin, Instant, NetGroup)>,
    /// Inbound connections counted per IPv4 address or IPv6 /64.
    inbound_ips: HashMap<IpAddr, usize>,
    /// Which counted key each inbound connection holds.
    counted: HashMap<ConnectionId, IpAddr>,
    /// Established inbound connections.
    inbound_connections: usize,
    /// Keys the network groups protected from eviction, so an attacker
    /// cannot tell which group to come from.
    group_key: std::collections::hash_map::RandomState,
}

impl PeerTable {
    /// An empty table.
    pub fn new(limits: Limits) -> PeerTable {
        PeerTable {
            limits,
            entries: HashMap::new(),
            dialing: HashMap::new(),
            inbound_ips: HashMap::new(),
            counted: HashMap::new(),
            inbound_connections: 0,
            group_key: Default::default(),
        }
    }

    /// The entry of a connected peer.
    pub fn get(&self, peer: &PeerId) -> Option<&Entry> {
        self.entries.get(peer)
    }

    /// The entry of a connected peer, to update what it has done.
    pub fn get_mut(&mut self, peer: &PeerId) -> Option<&mut Entry> {
        self.entries.get_mut(peer)
    }

    /// Every connected peer.
    pub fn iter(&self) -> impl Iterator<Item = (&PeerId, &Entry)> {
        self.entries.iter()
    }

    /// Whether `peer` is connected (in any state) or being dialled.
    pub fn knows(&self, peer: &PeerId) -> bool {
        self.entries.contains_key(peer) || self.dialing.contains_key(peer)
    }

    /// Whether `peer` could be made an outbound peer: not being dialled,
    /// and not connected, or connected only by this node's own dial that
    /// is not a peer's yet (a Kademlia lookup's).
    pub fn may_become_outbound(&self, peer: &PeerId) -> bool {
        !self.dialing.contains_key(peer)
            && self
                .entries
                .get(peer)
                .is_none_or(|e| e.direction == Direction::Outbound && !e.is_peer())
    }

    /// Whether `peer` is a peer.
    pub fn is_peer(&self, peer: &PeerId) -> bool {
        self.entries.get(peer).is_some_and(Entry::is_peer)
    }

    /// The peers, in no order.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.entries
            .iter()
            .filter(|(_, e)| e.is_peer())
            .map(|(p, _)| p)
    }

    /// Outbound peers.
    pub fn outbound_peers(&self) -> usize {
        self.entries
            .values()
            .filter(|e| e.direction == Direction::Outbound && e.is_peer())
            .count()
    }

    /// Dials of this node's choosing in flight, of `origin`.
    pub fn dialing(&self, origin: Origin) -> usize {
        self.dialing
            .values()
            .filter(|(o, _, _)| *o == origin)
            .count()
    }

    /// The network groups of the outbound peers and the dials in flight:
    /// a new outbound peer comes from none of them.
    pub fn outbound_groups(&self) -> HashSet<NetGroup> {
        self.entries
            .values()
            .filter(|e| e.direction == Direction::Outbound && e.is_peer())
            .map(|e| e.group.clone())
            .chain(self.dialing.values().map(|(_, _, g)| g.clone()))
            .collect()
    }

    /// Records a dial of this node's choosing to `addr`.
    pub fn dial_started(&mut self, peer: PeerId, addr: &Multiaddr, origin: Origin, now: Instant) {
        self.dialing.insert(peer, (origin, now, netgroup(addr)));
    }

    /// A dial failed: returns why it was made, if this node chose it.
    pub fn dial_failed(&mut self, peer: &PeerId) -> Option<Origin> {
        self.dialing.remove(peer).map(|(o, _, _)| o)
    }

    /// This node chooses `peer`, which is connected already: if it is not
    /// a peer yet, it is one now, keeping the direction of its connection.
    pub fn choose_connected(&mut self, peer: PeerId, origin: Origin, now: Instant) -> Vec<Action> {
        match self.entries.get_mut(&peer) {
            Some(e) if origin.chosen() && !e.is_peer() => {
                e.origin = origin;
                e.state = State::Peer { since: now };
                vec![Action::Connected(peer, e.address.clone())]
            }
            _ => Vec::new(),
        }
    }

    /// A connection was established.
    pub fn on_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        dialer: bool,
        remote: &Multiaddr,
        now: Instant,
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        if !dialer {
            self.inbound_connections += 1;
            if let Some(key) = inbound_ip_key(remote) {
                self.counted.insert(connection, key);
                let n = self.inbound_ips.entry(key).or_default();
                *n += 1;
                if *n > MAX_INBOUND_PER_IP {
                    tracing::debug!(%peer, ip = %key, "too many inbound connections from one address");
                    actions.push(Action::Close(connection));
                    return actions;
                }
            }
        }
        let origin = if dialer {
            self.dialing
                .remove(&peer)
                .map_or(Origin::None, |(o, _, _)| o)
        } else {
            Origin::None
        };
        if let Some(e) = self.entries.get_mut(&peer) {
            e.connections += 1;
            // This node's own dial met the peer's (two nodes that find each
            // other at once): it is a peer now, as this node chose, and its
            // direction stays that of its first connection.
            if origin.chosen() && !e.is_peer() {
                e.origin = origin;
                e.state = State::Peer { since: now };
                actions.push(Action::Connected(peer, e.address.clone()));
            }
            return actions;
        }
        let direction = if dialer {
            Direction::Outbound
        } else {
            Direction::Inbound
        };
        let address = peer_address(remote, peer);
        let state = if direction == Direction::Outbound && origin.chosen() {
            actions.push(Action::Connected(peer, address.clone()));
            State::Peer { since: now }
        } else {
            State::Unconfirmed
        };
        self.entries.insert(
            peer,
            Entry {
                group: netgroup(remote),
                address,
                direction,
                origin,
                state,
                connected_at: now,
                connections: 1,
                rtt: None,
                last_block: None,
                last_tx: None,
                served_blocks: false,
                addresses_taken: None,
            },
        );
        if direction == Direction::Inbound && self.inbound_connections > self.inbound_capacity() {
            match self.evict_inbound(now) {
                Some(victim) => {
                    tracing::debug!(%victim, newcomer = %peer, "inbound slots full: evicting a peer for a newcomer");
                    actions.push(Action::Disconnect(victim));
                }
                None => {
                    tracing::debug!(%peer, "inbound slots full and every inbound connection protected: closing the newcomer");
                    actions.push(Action::Close(connection));
                }
            }
        }
        actions
    }

    /// Inbound connections kept: the peer slots and the short-lived ones.
    fn inbound_capacity(&self) -> usize {
        self.limits.inbound_peer_slots + SHORT_LIVED_SLOTS as usize
    }

    /// The peer's connection is now the direct one at `remote` (its relayed
    /// circuit is closed): its address and group are those of `remote`.
    pub fn direct_address(&mut self, peer: &PeerId, remote: &Multiaddr) {
        if let Some(e) = self.entries.get_mut(peer) {
            e.address = peer_address(remote, *peer);
            e.group = netgroup(remote);
        }
    }

    /// A connection closed; `remaining` are the peer's still open.
    pub fn on_closed(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        dialer: bool,
        remaining: u32,
    ) -> Vec<Action> {
        if !dialer {
            self.inbound_connections = self.inbound_connections.saturating_sub(1);
        }
        if let Some(key) = self.counted.remove(&connection) {
            if let Some(n) = self.inbound_ips.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    self.inbound_ips.remove(&key);
                }
            }
        }
        if remaining > 0 {
            if let Some(e) = self.entries.get_mut(&peer) {
                e.connections = remaining;
            }
            return Vec::new();
        }
        match self.entries.remove(&peer) {
            Some(e) if e.is_peer() => vec![Action::Disconnected(peer)],
            _ => Vec::new(),
        }
    }

    /// `peer` made a request on the sync protocol: a connection not yet a
    /// peer's becomes one, or, with the inbound peer slots full, is served
    /// for [`SHORT_LIVED_FOR`] and closed.
    pub fn on_request(&mut self, peer: PeerId, now: Instant) -> Vec<Action> {
        let inbound_peers = self
            .entries
            .values()
            .filter(|e| e.direction == Direction::Inbound && e.is_peer())
            .count();
        let Some(e) = self.entries.get_mut(&peer) else {
            return Vec::new();
        };
        if e.state != State::Unconfirmed {
            return Vec::new();
        }
        if e.direction == Direction::Inbound && inbound_peers >= self.limits.inbound_peer_slots {
            tracing::debug!(%peer, "inbound peer slots full: a short-lived connection");
            e.state = State::ShortLived {
                until: now + SHORT_LIVED_FOR,
            };
            return Vec::new();
        }
        e.state = State::Peer { since: now };
        vec![Action::Connected(peer, e.address.clone())]
    }

    /// The inbound connection to close so that a newcomer fits, or none
    /// when every one is protected. Connections younger than [`GRACE`] and
    /// short-lived ones within their time are protected. First to go is
    /// the oldest connection that never became a peer's. Among peers, as
    /// Bitcoin Core's `SelectNodeToEvict`: protect some of distinct network
    /// groups (chosen by a key this node keeps secret), the lowest ping
    /// times, those that last delivered valid payments and blocks, and half
    /// of the rest by time connected; then evict the youngest peer of the
    /// network group with the most connections.
    pub fn evict_inbound(&self, now: Instant) -> Option<PeerId> {
        let inbound = self.entries.iter().filter(|(_, e)| {
            e.direction == Direction::Inbound && now.duration_since(e.connected_at) >= GRACE
        });
        let idle = inbound
            .clone()
            .filter(|(_, e)| e.state == State::Unconfirmed)
            .min_by_key(|(_, e)| e.connected_at);
        if let Some((p, _)) = idle {
            return Some(*p);
        }
        let mut candidates: Vec<(&PeerId, &Entry)> = inbound.filter(|(_, e)| e.is_peer()).collect();
        // Distinct network groups, in an order only this node knows.
        candidates.sort_by_key(|(_, e)| self.group_key.hash_one(&e.group));
        let mut seen = HashSet::new();
        let mut kept = 0;
        candidates.retain(|(_, e)| {
            if kept < PROTECT_BY_GROUP && seen.insert(e.group.clone()) {
                kept += 1;
                return false;
            }
            true
        });
        protect(&mut candidates, PROTECT_BY_PING, |e| {
            e.rtt.map(std::cmp::Reverse)
        });
        protect(&mut candidates, PROTECT_BY_TX, |e| e.last_tx);
        protect(&mut candidates, PROTECT_BY_BLOCK, |e| e.last_block);
        let half = candidates.len() / 2;
        protect(&mut candidates, half, |e| {
            Some(std::cmp::Reverse(e.connected_at))
        });
        let mut groups: HashMap<&NetGroup, Vec<(&PeerId, &Entry)>> = HashMap::new();
        for c in candidates {
            groups.entry(&c.1.group).or_default().push(c);
        }
        let youngest = |v: &[(&PeerId, &Entry)]| v.iter().map(|(_, e)| e.connected_at).max();
        let (_, group) = groups
            .into_iter()
            .max_by_key(|(_, v)| (v.len(), youngest(v)))?;
        group
            .into_iter()
            .max_by_key(|(_, e)| e.connected_at)
            .map(|(p, _)| *p)
    }

    /// What is due at `now`: short-lived connections past their time,
    /// connections that never became a peer's while the node is over its
    /// limit, dials past [`DIAL_DEADLINE`], and bootstrap peers to let go.
    /// Returns the actions and the dials given up.
    pub fn tick(&mut self, now: Instant) -> (Vec<Action>, Vec<(PeerId, Origin)>) {
        let mut actions: Vec<Action> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.state, State::ShortLived { until } if until <= now))
            .map(|(p, _)| Action::Disconnect(*p))
            .collect();
        let established: usize = self.entries.values().map(|e| e.connections as usize).sum();
        let excess = established.saturating_sub(self.limits.max_connections);
        let mut stale: Vec<(Instant, PeerId)> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.state == State::Unconfirmed
                    && now.duration_since(e.connected_at) >= UNCONFIRMED_FOR
            })
            .map(|(p, e)| (e.connected_at, *p))
            .collect();
        stale.sort_unstable();
        actions.extend(
            stale
                .into_iter()
                .take(excess)
                .map(|(_, p)| Action::Disconnect(p)),
        );
        let late: Vec<(PeerId, Origin)> = self
            .dialing
            .iter()
            .filter(|(_, (_, since, _))| now.duration_since(*since) >= DIAL_DEADLINE)
            .map(|(p, (o, _, _))| (*p, *o))
            .collect();
        for (p, _) in &late {
            self.dialing.remove(p);
            actions.push(Action::Disconnect(*p));
        }
        actions.extend(
            self.bootstrap_to_release(now)
                .into_iter()
                .map(Action::Disconnect),
        );
        (actions, late)
    }

    /// Whether the node has enough other outbound peers to let its
    /// bootstrap peers go (and so not to dial them again).
    pub fn bootstrap_not_needed(&self) -> bool {
        let others = self
            .entries
            .values()
            .filter(|e| {
                e.direction == Direction::Outbound && e.is_peer() && e.origin != Origin::Bootstrap
            })
            .count();
        others >= BOOTSTRAP_RELEASE_PEERS
    }

    /// Bootstrap peers held for [`BOOTSTRAP_RELEASE_AFTER`], once
    /// [`BOOTSTRAP_RELEASE_PEERS`] other outbound peers are connected, and
    /// never leaving fewer than [`MIN_OUTBOUND`] outbound peers.
    fn bootstrap_to_release(&self, now: Instant) -> Vec<PeerId> {
        if !self.bootstrap_not_needed() {
            return Vec::new();
        }
        let mut outbound = self.outbound_peers();
        let mut out = Vec::new();
        for (p, e) in &self.entries {
            let held = matches!(e.state, State::Peer { since } if now.duration_since(since) >= BOOTSTRAP_RELEASE_AFTER);
            if e.origin == Origin::Bootstrap && held && outbound > MIN_OUTBOUND {
                tracing::debug!(peer = %p, "closing the connection to a bootstrap peer: other outbound peers are connected");
                out.push(*p);
                outbound -= 1;
            }
        }
        out
    }
}

/// Removes from `candidates` the `n` with the greatest `key` (those with
/// none are never protected by it).
fn protect<K: Ord>(
    candidates: &mut Vec<(&PeerId, &Entry)>,
    n: usize,
    key: impl Fn(&Entry) -> Option<K>,
) {
    let mut keyed: Vec<(K, PeerId)> = candidates
        .iter()
        .filter_map(|(p, e)| key(e).map(|k| (k, **p)))
        .collect();
    keyed.sort_by(|a, b| b.0.cmp(&a.0));
    let protected: HashSet<PeerId> = keyed.into_iter().take(n).map(|(_, p)| p).collect();
    candidates.retain(|(p, _)| !protected.contains(*p));
}

#[cfg(test)]
mod tests;
