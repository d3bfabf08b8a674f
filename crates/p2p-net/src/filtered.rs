//! A libp2p behaviour passed through unchanged but for what a [`Filter`]
//! holds back: the swarm's events it is shown and the commands it gives.
//! The corrections this node makes to libp2p's relay service
//! (`relay_service`) and AutoNAT client (`autonat_probe`) are filters.

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use std::task::{Context, Poll};

/// What a [`Filtered`] behaviour is not to see or not to do.
pub(crate) trait Filter<B: NetworkBehaviour>: 'static {
    /// A connection was established: `addr` is its local address when it
    /// came in, the address dialled when this node dialled.
    fn established(&mut self, _id: ConnectionId, _addr: &Multiaddr) {}
    /// Whether the behaviour is shown `event` (the filter sees every one).
    fn shows(&mut self, _event: &FromSwarm) -> bool {
        true
    }
    /// Whether the behaviour's `command` goes to the swarm.
    fn passes(&self, _command: &ToSwarm<B::ToSwarm, THandlerInEvent<B>>) -> bool {
        true
    }
}

/// `inner`, seen through `filter`.
pub(crate) struct Filtered<B, F> {
    inner: B,
    filter: F,
}

impl<B, F: Default> Filtered<B, F> {
    /// `inner`, seen through a filter that has seen nothing yet.
    pub(crate) fn new(inner: B) -> Filtered<B, F> {
        Filtered {
            inner,
            filter: F::default(),
        }
    }
}

impl<B: NetworkBehaviour, F: Filter<B>> NetworkBehaviour for Filtered<B, F> {
    type ConnectionHandler = B::ConnectionHandler;
    type ToSwarm = B::ToSwarm;

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
        self.filter.established(id, local);
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
        self.filter.established(id, addr);
        self.inner
            .handle_established_outbound_connection(id, peer, addr, role, port_use)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if self.filter.shows(&event) {
            self.inner.on_swarm_event(event);
        }
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
                Poll::Ready(command) if !self.filter.passes(&command) => continue,
                other => return other,
            }
        }
    }
}

#[cfg(test)]
mod tests;
