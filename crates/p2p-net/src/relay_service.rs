//! The relay service (circuit relay v2), with one correction.
//!
//! `relay::Behaviour` tells every connection when it turns itself on or off
//! (when the node's first external address is confirmed, or its last one
//! expires), relayed connections included; but a relayed connection's
//! handler takes no commands, and the command panics its task. Such a
//! status change is routine here (AutoNAT confirms addresses while circuits
//! are open), so this wrapper drops commands addressed to relayed
//! connections and passes everything else through.

use crate::nat::is_relayed;
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::relay;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use std::collections::HashSet;
use std::task::{Context, Poll};

pub(crate) struct RelayService {
    inner: relay::Behaviour,
    /// Open relayed connections (bounded by the swarm's connection limits).
    relayed: HashSet<ConnectionId>,
}

impl RelayService {
    pub(crate) fn new(inner: relay::Behaviour) -> RelayService {
        RelayService {
            inner,
            relayed: HashSet::new(),
        }
    }
}

impl NetworkBehaviour for RelayService {
    type ConnectionHandler = <relay::Behaviour as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = relay::Event;

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
        if is_relayed(local) {
            self.relayed.insert(id);
        }
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
        if is_relayed(addr) {
            self.relayed.insert(id);
        }
        self.inner
            .handle_established_outbound_connection(id, peer, addr, role, port_use)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::ConnectionClosed(c) => {
                self.relayed.remove(&c.connection_id);
            }
            FromSwarm::ListenFailure(f) => {
                self.relayed.remove(&f.connection_id);
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
        loop {
            match self.inner.poll(cx) {
                Poll::Ready(ToSwarm::NotifyHandler {
                    handler: NotifyHandler::One(id),
                    ..
                }) if self.relayed.contains(&id) => continue,
                other => return other,
            }
        }
    }
}
