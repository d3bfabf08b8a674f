//! AutoNAT's client, shown only the candidates a server could dial back.
//!
//! Identify turns every connection's observed address into a candidate
//! external address, and AutoNAT v2 asks a server to dial each one back.
//! Over TCP and QUIC identify first moves the observed address onto the
//! port this node listens on; where it cannot (an ephemeral port of the
//! in-process transport, a WebSocket's), the candidate is a port nothing
//! listens on: its test can only fail, costs the server a dial, and the
//! failures made a node that is reachable at its listen address count
//! itself unreachable until a later probe. This wrapper passes a
//! candidate on only when it ends in a port (or `/memory/` number) this
//! node listens on, and everything else unchanged.

use libp2p::autonat::v2::client;
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use std::collections::HashSet;
use std::task::{Context, Poll};

/// The endpoint an address is reached at, after its host: which
/// transport, and its port or `/memory/` number.
fn port_of(addr: &Multiaddr) -> Option<(&'static str, u64)> {
    addr.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(("tcp", port.into())),
        Protocol::Udp(port) => Some(("udp", port.into())),
        Protocol::Memory(n) => Some(("memory", n)),
        _ => None,
    })
}

/// Whether a server could dial `candidate` back: it ends in a port (or
/// `/memory/` number) one of `listen` has.
pub(crate) fn could_be_dialled_back(candidate: &Multiaddr, listen: &HashSet<Multiaddr>) -> bool {
    port_of(candidate).is_some_and(|c| listen.iter().any(|l| port_of(l) == Some(c)))
}

pub(crate) struct AutonatClient {
    inner: client::Behaviour,
    /// This node's listen addresses (as the swarm reports them).
    listen: HashSet<Multiaddr>,
}

impl AutonatClient {
    pub(crate) fn new(inner: client::Behaviour) -> AutonatClient {
        AutonatClient {
            inner,
            listen: HashSet::new(),
        }
    }
}

impl NetworkBehaviour for AutonatClient {
    type ConnectionHandler = <client::Behaviour as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = client::Event;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.inner
            .handle_pending_inbound_connection(id, local, remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner
            .handle_established_inbound_connection(id, peer, local, remote)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: Option<PeerId>,
        addresses: &[Multiaddr],
        role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.inner
            .handle_pending_outbound_connection(id, peer, addresses, role)
    }

    fn handle_established_outbound_connection(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.inner
            .handle_established_outbound_connection(id, peer, addr, role, port_use)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::NewListenAddr(l) => {
                self.listen.insert(l.addr.clone());
            }
            FromSwarm::ExpiredListenAddr(l) => {
                self.listen.remove(l.addr);
            }
            FromSwarm::NewExternalAddrCandidate(c)
                if !could_be_dialled_back(c.addr, &self.listen) =>
            {
                tracing::trace!(addr = %c.addr, "not tested: no listener on its port");
                return;
            }
            _ => {}
        }
        self.inner.on_swarm_event(event);
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.inner.on_connection_handler_event(peer, id, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.inner.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(addrs: &[&str]) -> HashSet<Multiaddr> {
        addrs.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn only_candidates_on_a_listening_port_are_tested() {
        let listen = set(&[
            "/ip4/10.0.0.2/tcp/4001",
            "/ip4/10.0.0.2/udp/4001/quic-v1",
            "/memory/77",
        ]);
        let can = |a: &str| could_be_dialled_back(&a.parse().unwrap(), &listen);
        // Identify's translation onto the listen port, over TCP and QUIC.
        assert!(can("/ip4/203.0.113.9/tcp/4001"));
        assert!(can("/ip4/203.0.113.9/udp/4001/quic-v1"));
        assert!(can("/memory/77"));
        // An ephemeral port nothing listens on.
        assert!(!can("/ip4/203.0.113.9/tcp/51234"));
        assert!(!can("/memory/9138472211"));
        // The right number on another transport is not the listener.
        assert!(!can("/ip4/203.0.113.9/tcp/77"));
        assert!(!can("/ip4/203.0.113.9/udp/4002/quic-v1"));
        // No port at all.
        assert!(!can("/ip4/203.0.113.9"));
        // Nothing listening: nothing can be dialled back.
        assert!(!could_be_dialled_back(
            &"/ip4/203.0.113.9/tcp/4001".parse().unwrap(),
            &HashSet::new()
        ));
    }
}
