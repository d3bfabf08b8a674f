//! The relay service (circuit relay v2), with one correction.
//!
//! `relay::Behaviour` tells every connection when it turns itself on or off
//! (when the node's first external address is confirmed, or its last one
//! expires), relayed connections included; but a relayed connection's
//! handler takes no commands, and the command panics its task. Such a
//! status change is routine here (AutoNAT confirms addresses while circuits
//! are open), so this wrapper drops commands addressed to relayed
//! connections and passes everything else through.

use crate::filtered::{Filter, Filtered};
use crate::nat::is_relayed;
use libp2p::relay;
use libp2p::swarm::{
    ConnectionId, FromSwarm, NetworkBehaviour, NotifyHandler, THandlerInEvent, ToSwarm,
};
use libp2p::Multiaddr;
use std::collections::HashSet;

/// The relay service, its commands to relayed connections dropped.
pub(crate) type RelayService = Filtered<relay::Behaviour, RelayedConnections>;

/// The open relayed connections (bounded by the swarm's connection limits).
#[derive(Default)]
pub(crate) struct RelayedConnections(HashSet<ConnectionId>);

impl Filter<relay::Behaviour> for RelayedConnections {
    fn established(&mut self, id: ConnectionId, addr: &Multiaddr) {
        if is_relayed(addr) {
            self.0.insert(id);
        }
    }

    fn shows(&mut self, event: &FromSwarm) -> bool {
        match event {
            FromSwarm::ConnectionClosed(c) => {
                self.0.remove(&c.connection_id);
            }
            FromSwarm::ListenFailure(f) => {
                self.0.remove(&f.connection_id);
            }
            _ => {}
        }
        true
    }

    fn passes(
        &self,
        command: &ToSwarm<
            <relay::Behaviour as NetworkBehaviour>::ToSwarm,
            THandlerInEvent<relay::Behaviour>,
        >,
    ) -> bool {
        !matches!(command, ToSwarm::NotifyHandler { handler: NotifyHandler::One(id), .. } if self.0.contains(id))
    }
}
