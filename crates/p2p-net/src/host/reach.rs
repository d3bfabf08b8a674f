//! The host's part in reachability: AutoNAT's answers, the relay
//! reservation, hole punches and relayed circuits, carried out on the
//! swarm as `nat::Nat` decides; and their metrics.

use super::Host;
use crate::nat::{is_relayed, OnConnection, Reachability};
use libp2p::swarm::ConnectionId;
use libp2p::{autonat, dcutr, Multiaddr, PeerId};
use std::time::Instant;

/// Metrics of reachability that libp2p's own do not give.
pub(super) struct NatMetrics {
    /// 1 when some address of this node is confirmed reachable.
    pub(super) public: prometheus_client::metrics::gauge::Gauge,
    /// 1 while a relay reservation is held.
    pub(super) reservation: prometheus_client::metrics::gauge::Gauge,
    /// Open relayed connections.
    pub(super) relayed: prometheus_client::metrics::gauge::Gauge,
    /// Hole punches that made a direct connection, and that failed.
    pub(super) punched: prometheus_client::metrics::counter::Counter,
    pub(super) punch_failed: prometheus_client::metrics::counter::Counter,
}

impl NatMetrics {
    pub(super) fn register(registry: &mut prometheus_client::registry::Registry) -> NatMetrics {
        let m = NatMetrics {
            public: Default::default(),
            reservation: Default::default(),
            relayed: Default::default(),
            punched: Default::default(),
            punch_failed: Default::default(),
        };
        let r = registry.sub_registry_with_prefix("nat");
        r.register(
            "public",
            "1 when an address of this node is confirmed reachable",
            m.public.clone(),
        );
        r.register(
            "relay_reservation",
            "1 while this node holds a relay reservation",
            m.reservation.clone(),
        );
        r.register(
            "relayed_connections",
            "Open connections over relay circuits",
            m.relayed.clone(),
        );
        r.register(
            "hole_punch_succeeded",
            "Hole punches that made a direct connection",
            m.punched.clone(),
        );
        r.register(
            "hole_punch_failed",
            "Hole punches that failed",
            m.punch_failed.clone(),
        );
        m
    }
}

impl Host {
    /// A connection opened: relayed circuits are bounded per relay, and
    /// not kept beside a direct connection.
    pub(super) fn on_nat_connection(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        relayed: Option<Option<PeerId>>,
        remote: &Multiaddr,
        now: Instant,
    ) {
        if self
            .nat
            .on_established(peer, connection, relayed, remote, now)
            == OnConnection::CloseThis
        {
            tracing::debug!(%peer, "a circuit not needed or over the relay's allowance: closed");
            self.swarm.close_connection(connection);
        }
    }

    /// Closes circuits whose peer is connected directly, and lists the
    /// peer at its direct address.
    pub(super) fn close_circuits(&mut self, superseded: Vec<crate::nat::Superseded>) {
        for s in superseded {
            if self.swarm.close_connection(s.circuit) {
                tracing::info!(peer = %s.peer, address = %s.direct, "connected directly: the relayed connection is closed");
            }
            self.table.direct_address(&s.peer, &s.direct);
        }
    }

    /// Asks for a relay reservation when the node is private and holds none.
    pub(super) fn maybe_reserve(&mut self) {
        let Some(r) = self.nat.reservation_wanted(Instant::now()) else {
            return;
        };
        tracing::info!(relay = %r.relay, "not reachable from outside: asking a relay for a reservation");
        match self.swarm.listen_on(r.address.clone()) {
            Ok(id) => self.reservation_listener = Some(id),
            Err(e) => {
                tracing::warn!(address = %r.address, "cannot listen through the relay: {e}");
                self.nat.reservation_lost(&r.address);
            }
        }
    }

    pub(super) fn reservation_ended(&mut self) {
        self.reservation_listener = None;
        if let Some(addr) = self.nat.reservation().map(|r| r.address.clone()) {
            self.nat.reservation_lost(&addr);
        }
        self.nat_metrics.reservation.set(0);
    }

    /// An AutoNAT test of one of this node's addresses finished.
    pub(super) fn on_autonat(&mut self, e: autonat::v2::client::Event) {
        let autonat::v2::client::Event {
            tested_addr,
            server,
            result,
            ..
        } = e;
        match result {
            Ok(()) => tracing::debug!(%tested_addr, %server, "AutoNAT: reachable"),
            // A relayed address is reached through the relay, not this node.
            Err(_) if is_relayed(&tested_addr) => {}
            Err(e) => {
                tracing::debug!(%tested_addr, %server, "AutoNAT: not reachable: {e}");
                let before = self.nat.reachability();
                self.nat.test_failed();
                if before != Reachability::Private
                    && self.nat.reachability() == Reachability::Private
                {
                    tracing::info!(
                        "not reachable from outside (AutoNAT): peers must come through a relay"
                    );
                }
                self.maybe_reserve();
            }
        }
    }

    pub(super) fn on_reservation_accepted(&mut self, relay: PeerId) {
        if let Some(addr) = self.nat.reservation_accepted(relay) {
            tracing::info!(%relay, %addr, "relay reservation accepted");
            self.nat_metrics.reservation.set(1);
        }
    }

    /// A hole punch finished: on success the circuits go; on failure they
    /// may go too, for another try (`Nat::punch_failed`).
    pub(super) fn on_hole_punch(&mut self, e: dcutr::Event) {
        let peer = e.remote_peer_id;
        match e.result {
            Ok(_) => {
                tracing::info!(%peer, "hole punch succeeded: connected directly");
                self.nat_metrics.punched.inc();
                let superseded = self.nat.hole_punched(&peer);
                self.close_circuits(superseded);
            }
            Err(e) => {
                tracing::info!(%peer, "hole punch failed: {e}");
                self.nat_metrics.punch_failed.inc();
                for c in self.nat.punch_failed(&peer) {
                    self.swarm.close_connection(c);
                }
            }
        }
    }
}
