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

use crate::filtered::{Filter, Filtered};
use libp2p::autonat::v2::client;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::FromSwarm;
use libp2p::Multiaddr;
use std::collections::HashSet;

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

/// AutoNAT's client, shown only candidates on a listening port.
pub(crate) type AutonatClient = Filtered<client::Behaviour, ListeningPorts>;

/// This node's listen addresses (as the swarm reports them).
#[derive(Default)]
pub(crate) struct ListeningPorts(HashSet<Multiaddr>);

impl Filter<client::Behaviour> for ListeningPorts {
    fn shows(&mut self, event: &FromSwarm) -> bool {
        match event {
            FromSwarm::NewListenAddr(l) => {
                self.0.insert(l.addr.clone());
            }
            FromSwarm::ExpiredListenAddr(l) => {
                self.0.remove(l.addr);
            }
            FromSwarm::NewExternalAddrCandidate(c) if !could_be_dialled_back(c.addr, &self.0) => {
                tracing::trace!(addr = %c.addr, "not tested: no listener on its port");
                return false;
            }
            _ => {}
        }
        true
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
