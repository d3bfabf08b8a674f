//! Reachability from outside: whether peers can dial this node (AutoNAT's
//! answers, `--external-address`, UPnP), the relay reservation a node that
//! cannot be dialled holds, and which connections are relayed circuits.
//!
//! Pure bookkeeping: the host feeds it events and carries out what it
//! returns, so it is tested without a swarm.

use crate::addr::{ip_of, is_local_ip};
use crate::config::{
    DIRECT_SETTLES_IN, MAX_CIRCUITS_PER_RELAY, PRIVATE_AFTER_FAILURES, PUNCH_TRIES, RESERVE_EVERY,
};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

/// Whether peers can dial this node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reachability {
    /// Not known yet: no address confirmed, too few failed tests.
    #[default]
    Unknown,
    /// Some address of this node was dialled back (or given).
    Public,
    /// Every dial-back test failed: behind a NAT or a firewall.
    Private,
}

impl Reachability {
    /// As the status line and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown",
            Reachability::Public => "public",
            Reachability::Private => "private",
        }
    }
}

/// Checks an address given as this node's external address
/// (`--external-address`): one peers can dial, an IP address (not
/// 0.0.0.0 or `::`) and a TCP or QUIC port, not through a relay.
pub fn check_external_address(addr: &Multiaddr) -> Result<(), String> {
    let base = crate::addr::transport_address(addr);
    if is_relayed(&base)
        || !crate::addr::is_dialable(&base)
        || !crate::addr::is_peer_listen_address(&base)
        || ip_of(&base).is_none()
    {
        return Err(format!(
            "{addr} is not an address peers can dial (give the public IP address and port, for example /ip4/203.0.113.7/tcp/3000)"
        ));
    }
    Ok(())
}

/// Whether `addr` goes through a relay.
pub fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The relay's peer id in a relayed address (`…/p2p/RELAY/p2p-circuit…`).
pub fn relay_of(addr: &Multiaddr) -> Option<PeerId> {
    let mut last = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(id) => last = Some(id),
            Protocol::P2pCircuit => return last,
            _ => {}
        }
    }
    None
}

/// The relayed address at which this node is reached through `relay`
/// (dialled at `relay_addr`): `<relay_addr>/p2p/<relay>/p2p-circuit`.
pub fn circuit_address(relay_addr: &Multiaddr, relay: PeerId) -> Multiaddr {
    crate::addr::peer_address(relay_addr, relay).with(Protocol::P2pCircuit)
}

/// One relay reservation this node asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The relay.
    pub relay: PeerId,
    /// The address listened on: the relay's, then `/p2p-circuit`.
    pub address: Multiaddr,
    /// Whether the relay accepted it.
    pub accepted: bool,
}

/// What to do about a new connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnConnection {
    /// Nothing.
    Keep,
    /// Close this circuit: one relay carries too many circuits to this
    /// node, or the peer is connected directly already.
    CloseThis,
}

/// A circuit no longer needed: the peer is connected directly at `direct`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Superseded {
    /// The peer.
    pub peer: PeerId,
    /// The relayed connection to close.
    pub circuit: ConnectionId,
    /// The remote address of its direct connection.
    pub direct: Multiaddr,
}

/// A peer's direct connections.
#[derive(Debug)]
struct Direct {
    count: u32,
    since: Instant,
    address: Multiaddr,
}

/// Reachability and relays.
#[derive(Debug, Default)]
pub struct Nat {
    /// Addresses of this node confirmed reachable (not relayed).
    confirmed: BTreeSet<Multiaddr>,
    /// AutoNAT tests that failed since the last confirmation.
    failures: u32,
    /// Connected peers that offer the relay service, at the address this
    /// node dialled them on.
    relays: HashMap<PeerId, Multiaddr>,
    reservation: Option<Reservation>,
    /// When a reservation was last asked for.
    asked: Option<Instant>,
    /// Open relayed connections: the peer, and the relay they run through.
    relayed: HashMap<ConnectionId, (PeerId, Option<PeerId>)>,
    /// Open direct connections per peer.
    direct: HashMap<PeerId, Direct>,
    /// Failed hole punches per peer, kept across reconnections (bounded:
    /// cleared when it outgrows [`PUNCH_FAILURES_KEPT`]).
    punch_failures: HashMap<PeerId, u32>,
}

/// Peers whose failed hole punches are remembered.
const PUNCH_FAILURES_KEPT: usize = 1024;

impl Nat {
    /// Whether peers can dial this node.
    pub fn reachability(&self) -> Reachability {
        if !self.confirmed.is_empty() {
            Reachability::Public
        } else if self.failures >= PRIVATE_AFTER_FAILURES {
            Reachability::Private
        } else {
            Reachability::Unknown
        }
    }

    /// The addresses confirmed reachable.
    pub fn confirmed(&self) -> impl Iterator<Item = &Multiaddr> {
        self.confirmed.iter()
    }

    /// An address was confirmed reachable (AutoNAT, `--external-address`, UPnP).
    /// A relayed address is not this node's own reachability.
    pub fn address_confirmed(&mut self, addr: Multiaddr) {
        if !is_relayed(&addr) {
            self.confirmed.insert(addr);
            self.failures = 0;
        }
    }

    /// An address is no longer reachable.
    pub fn address_expired(&mut self, addr: &Multiaddr) {
        self.confirmed.remove(addr);
    }

    /// An AutoNAT test of one of this node's addresses failed.
    pub fn test_failed(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// A connected peer offers the relay service; `addr` is where this
    /// node dialled it. Only peers this node dialled directly, at a public
    /// address, are taken: a relay on a private network cannot help.
    pub fn relay_offered(&mut self, peer: PeerId, addr: &Multiaddr, dialled: bool) {
        let public = ip_of(addr).is_some_and(|ip| !is_local_ip(ip));
        if dialled && public && !is_relayed(addr) {
            self.relays
                .insert(peer, crate::addr::transport_address(addr));
        }
    }

    /// A reservation to ask for now: when the node is private and holds
    /// none, on a relay it is connected to, at most once per
    /// [`RESERVE_EVERY`] (a relay that is not public yet refuses). The
    /// relay with the smallest id is taken, so the choice is stable.
    pub fn reservation_wanted(&mut self, now: Instant) -> Option<Reservation> {
        if self.reachability() != Reachability::Private
            || self.reservation.is_some()
            || self
                .asked
                .is_some_and(|t| now.duration_since(t) < RESERVE_EVERY)
        {
            return None;
        }
        let (relay, addr) = self.relays.iter().min_by_key(|(p, _)| **p)?;
        let r = Reservation {
            relay: *relay,
            address: circuit_address(addr, *relay),
            accepted: false,
        };
        self.reservation = Some(r.clone());
        self.asked = Some(now);
        Some(r)
    }

    /// The relay accepted the reservation: the address peers can reach
    /// this node at, ending in `/p2p-circuit` (the caller appends its id).
    pub fn reservation_accepted(&mut self, relay: PeerId) -> Option<Multiaddr> {
        match &mut self.reservation {
            Some(r) if r.relay == relay => {
                let first = !r.accepted;
                r.accepted = true;
                first.then(|| r.address.clone())
            }
            _ => None,
        }
    }

    /// The reservation's listener closed (the relay refused or went away):
    /// another may be asked for.
    pub fn reservation_lost(&mut self, address: &Multiaddr) -> bool {
        if self
            .reservation
            .as_ref()
            .is_some_and(|r| r.address == *address)
        {
            self.reservation = None;
            return true;
        }
        false
    }

    /// The reservation held, if any.
    pub fn reservation(&self) -> Option<&Reservation> {
        self.reservation.as_ref()
    }

    /// A connection opened at `remote`; `relayed` when it runs over a
    /// circuit, whose relay is `relay` (when the address names it).
    pub fn on_established(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        relayed: Option<Option<PeerId>>,
        remote: &Multiaddr,
        now: Instant,
    ) -> OnConnection {
        let Some(relay) = relayed else {
            let d = self.direct.entry(peer).or_insert_with(|| Direct {
                count: 0,
                since: now,
                address: remote.clone(),
            });
            d.count += 1;
            return OnConnection::Keep;
        };
        if let Some(r) = relay {
            let through = self
                .relayed
                .values()
                .filter(|(_, via)| *via == Some(r))
                .count();
            if through >= MAX_CIRCUITS_PER_RELAY {
                return OnConnection::CloseThis;
            }
        }
        self.relayed.insert(connection, (peer, relay));
        if self.settled(&peer, now) {
            return OnConnection::CloseThis;
        }
        OnConnection::Keep
    }

    /// Whether `peer` has had a direct connection for [`DIRECT_SETTLES_IN`]:
    /// not a passing one, as AutoNAT's dial-back is.
    fn settled(&self, peer: &PeerId, now: Instant) -> bool {
        self.direct
            .get(peer)
            .is_some_and(|d| now.duration_since(d.since) >= DIRECT_SETTLES_IN)
    }

    fn circuits_of(&self, peer: &PeerId) -> Vec<ConnectionId> {
        let mut v: Vec<ConnectionId> = self
            .relayed
            .iter()
            .filter(|(_, (p, _))| p == peer)
            .map(|(c, _)| *c)
            .collect();
        v.sort_unstable();
        v
    }

    /// A hole punch to `peer` failed. While it has no direct connection
    /// and fewer than [`PUNCH_TRIES`] punches failed, returns its circuits
    /// to close: the side that dialled through the relay dials again, and
    /// the new circuit brings a new punch. (A punch right after start
    /// fails when the node does not yet know its observed address.) After
    /// that the circuit stays, for gossip.
    pub fn punch_failed(&mut self, peer: &PeerId) -> Vec<ConnectionId> {
        if self.punch_failures.len() >= PUNCH_FAILURES_KEPT
            && !self.punch_failures.contains_key(peer)
        {
            self.punch_failures.clear();
        }
        let n = self.punch_failures.entry(*peer).or_default();
        *n += 1;
        if *n >= PUNCH_TRIES || self.direct.contains_key(peer) {
            return Vec::new();
        }
        self.circuits_of(peer)
    }

    /// A hole punch made a direct connection to `peer`: its circuits go.
    pub fn hole_punched(&mut self, peer: &PeerId) -> Vec<Superseded> {
        self.punch_failures.remove(peer);
        let Some(direct) = self.direct.get(peer).map(|d| d.address.clone()) else {
            return Vec::new();
        };
        self.circuits_of(peer)
            .into_iter()
            .map(|circuit| Superseded {
                peer: *peer,
                circuit,
                direct: direct.clone(),
            })
            .collect()
    }

    /// Circuits to peers whose direct connection has settled.
    pub fn superseded(&self, now: Instant) -> Vec<Superseded> {
        let mut peers: Vec<PeerId> = self.relayed.values().map(|(p, _)| *p).collect();
        peers.sort_unstable();
        peers.dedup();
        peers
            .into_iter()
            .filter(|p| self.settled(p, now))
            .flat_map(|p| {
                let direct = self.direct[&p].address.clone();
                self.circuits_of(&p)
                    .into_iter()
                    .map(move |circuit| Superseded {
                        peer: p,
                        circuit,
                        direct: direct.clone(),
                    })
            })
            .collect()
    }

    /// A connection closed. When it was a circuit and the peer is still
    /// connected directly, returns the direct connection's address: the
    /// peer is listed there now.
    pub fn on_closed(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        remaining: u32,
    ) -> Option<Multiaddr> {
        let was_circuit = self.relayed.remove(&connection).is_some();
        if !was_circuit {
            if let Some(d) = self.direct.get_mut(&peer) {
                d.count -= 1;
                if d.count == 0 {
                    self.direct.remove(&peer);
                }
            }
        }
        if remaining == 0 {
            self.direct.remove(&peer);
            self.relays.remove(&peer);
        }
        let direct = self.direct.get(&peer)?;
        was_circuit.then(|| direct.address.clone())
    }

    /// Whether `connection` is a relayed circuit.
    pub fn is_relayed_connection(&self, connection: &ConnectionId) -> bool {
        self.relayed.contains_key(connection)
    }

    /// Whether `peer` has a direct connection (sync runs only over one).
    pub fn has_direct(&self, peer: &PeerId) -> bool {
        self.direct.contains_key(peer)
    }

    /// Open relayed connections.
    pub fn relayed_connections(&self) -> usize {
        self.relayed.len()
    }
}

#[cfg(test)]
mod tests;
