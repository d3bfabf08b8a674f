//! The composed libp2p behaviour and the swarm built around it.

use crate::codec::SyncCodec;
use crate::config::{
    inbound_peer_slots, NetConfig, CONNECTION_TIMEOUT, EVICTION_HEADROOM, IDLE_TIMEOUT,
    KAD_REFRESH, RELAY_CIRCUIT_BYTES, RELAY_CIRCUIT_FOR, RELAY_MAX_CIRCUITS,
    RELAY_MAX_CIRCUITS_PER_PEER, RELAY_MAX_RESERVATIONS, RELAY_MAX_RESERVATIONS_PER_PEER,
    RELAY_RESERVATION_FOR, REQUEST_TIMEOUT, SHORT_LIVED_SLOTS,
};
use crate::gossip;
use crate::handle::NetError;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, autonat, connection_limits, dcutr, gossipsub, identify, kad, mdns, noise,
    ping, relay, request_response, tcp, upnp, yamux, StreamProtocol, Swarm,
};
use std::time::Duration;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) rr: request_response::Behaviour<SyncCodec>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) mdns: Toggle<mdns::tokio::Behaviour>,
    /// Reaching peers behind NATs: a relay client that listens through
    /// relays, the relay service for others, hole punching, AutoNAT's
    /// tests of this node's addresses and of others', UPnP when asked for.
    pub(crate) relay_client: relay::client::Behaviour,
    pub(crate) relay: crate::relay_service::RelayService,
    pub(crate) dcutr: dcutr::Behaviour,
    pub(crate) autonat: crate::autonat_probe::AutonatClient,
    pub(crate) autonat_server: autonat::v2::server::Behaviour,
    pub(crate) upnp: Toggle<upnp::tokio::Behaviour>,
}

/// The relay service's limits (see the constants in `config`).
fn relay_config() -> relay::Config {
    relay::Config {
        max_reservations: RELAY_MAX_RESERVATIONS,
        max_reservations_per_peer: RELAY_MAX_RESERVATIONS_PER_PEER,
        reservation_duration: RELAY_RESERVATION_FOR,
        max_circuits: RELAY_MAX_CIRCUITS,
        max_circuits_per_peer: RELAY_MAX_CIRCUITS_PER_PEER,
        max_circuit_duration: RELAY_CIRCUIT_FOR,
        max_circuit_bytes: RELAY_CIRCUIT_BYTES,
        // The default rate limits per peer and per IP address stay.
        ..relay::Config::default()
    }
}

pub(crate) fn rr_behaviour() -> request_response::Behaviour<SyncCodec> {
    let cfg = request_response::Config::default()
        .with_request_timeout(REQUEST_TIMEOUT)
        .with_max_concurrent_streams(64);
    request_response::Behaviour::with_codec(
        SyncCodec,
        [(
            StreamProtocol::new(p2p_proto::SYNC_PROTOCOL),
            request_response::ProtocolSupport::Full,
        )],
        cfg,
    )
}

pub(crate) fn gossip_topics() -> (gossipsub::IdentTopic, gossipsub::IdentTopic) {
    (
        gossipsub::IdentTopic::new(p2p_proto::BLOCK_TOPIC),
        gossipsub::IdentTopic::new(p2p_proto::TX_TOPIC),
    )
}

/// Subscribes `gossipsub` to the block and transaction topics.
pub(crate) fn subscribe_topics(gossipsub: &mut gossipsub::Behaviour) -> Result<(), NetError> {
    let (blocks, txs) = gossip_topics();
    for t in [&blocks, &txs] {
        gossipsub
            .subscribe(t)
            .map_err(|e| NetError::Setup(e.to_string()))?;
    }
    Ok(())
}

/// A swarm over TCP alone with a fresh identity, for a client or a test
/// peer: `make` builds its behaviour, and a connection idle for `idle`
/// is closed.
pub(crate) fn tcp_swarm<B: libp2p::swarm::NetworkBehaviour>(
    make: impl FnOnce(&libp2p::identity::Keypair) -> Result<B, Box<dyn std::error::Error + Send + Sync>>,
    idle: Duration,
) -> Result<Swarm<B>, NetError> {
    let setup = |e: String| NetError::Setup(e);
    Ok(libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(e.to_string()))?
        .with_behaviour(make)
        .map_err(|e| setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build())
}

pub(crate) fn build_swarm(
    cfg: &NetConfig,
    keypair: libp2p::identity::Keypair,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<Swarm<Behaviour>, NetError> {
    let setup = |e: String| NetError::Setup(e);
    let mdns_on = cfg.mdns;
    let agent = cfg.agent.clone();
    let max = cfg.max_connections;
    let upnp_on = cfg.reach.upnp;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(e.to_string()))?
        .with_quic()
        // libp2p's in-process transport, for `/memory/<n>` addresses: many
        // hosts in one process (simulations, tests) with the same Noise and
        // Yamux upgrades and the same protocols as over TCP.
        // With a simulated link (`crate::link`), what this host writes on
        // them is delayed as the link model says.
        .with_other_transport(|key| {
            let link = cfg.link.clone();
            let memory = libp2p::Transport::and_then(
                libp2p::core::transport::MemoryTransport::default(),
                move |io, endpoint: libp2p::core::ConnectedPoint| {
                    let link = link.clone();
                    async move {
                        match link {
                            Some(l) => l
                                .wrap(io, endpoint.is_dialer())
                                .await
                                .map(futures::future::Either::Left),
                            None => Ok(futures::future::Either::Right(io)),
                        }
                    }
                },
            );
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                libp2p::Transport::upgrade(memory, libp2p::core::upgrade::Version::V1)
                    .authenticate(noise::Config::new(key)?)
                    .multiplex(yamux::Config::default()),
            )
        })
        .map_err(|e| setup(e.to_string()))?
        // Circuits through relays, with the same upgrades.
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| setup(e.to_string()))?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key, relay_client| {
            let peer = key.public().to_peer_id();
            let gcfg = gossip::config(&cfg.gossip, p2p_proto::MAX_ANNOUNCEMENT_SIZE + 4096)?;
            let mut gossipsub =
                gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Anonymous, gcfg)?
                    .with_metrics(
                        registry.sub_registry_with_prefix("gossipsub"),
                        gossipsub::MetricsConfig::default(),
                    );
            let (blocks, txs) = gossip_topics();
            let (params, thresholds) = gossip::scoring(&blocks, &txs);
            gossipsub.with_peer_score(params, thresholds)?;
            let mut kcfg = kad::Config::new(StreamProtocol::new("/chain/kad/1"));
            kcfg.set_query_timeout(Duration::from_secs(30));
            kcfg.set_periodic_bootstrap_interval(Some(KAD_REFRESH));
            // The routing table takes only what `learn_address` gives it.
            // Left to itself, Kademlia inserts every peer that connects,
            // and into a full bucket that means dialling the bucket's
            // oldest disconnected peer to check on it: each connection
            // then caused another, across the whole network.
            kcfg.set_kbucket_inserts(kad::BucketInserts::Manual);
            // The node keeps no records and no providers for anyone: a
            // `PUT_VALUE` or `ADD_PROVIDER` is handed to the host, which
            // drops it, instead of filling a store it never reads.
            kcfg.set_record_filtering(kad::StoreInserts::FilterBoth);
            let mut kad =
                kad::Behaviour::with_config(peer, kad::store::MemoryStore::new(peer), kcfg);
            kad.set_mode(Some(kad::Mode::Server));
            let mdns = if mdns_on {
                Some(mdns::tokio::Behaviour::new(mdns::Config::default(), peer)?)
            } else {
                None
            };
            // The peer slots, and the short-lived ones beyond them: which
            // inbound connection is a peer is the host's choice (see
            // `peers`); these are the hard limits.
            // Inbound, EVICTION_HEADROOM more are let in, each of which
            // evicts another or is closed at once (`peers::Policy`).
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established(Some(max + SHORT_LIVED_SLOTS + EVICTION_HEADROOM))
                .with_max_established_incoming(Some(
                    inbound_peer_slots(max) + SHORT_LIVED_SLOTS + EVICTION_HEADROOM,
                ))
                .with_max_established_per_peer(Some(2))
                .with_max_pending_incoming(Some(32))
                .with_max_pending_outgoing(Some(32));
            Ok(Behaviour {
                blocked: Default::default(),
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(
                    identify::Config::new("/chain/id/1".into(), key.public())
                        .with_agent_version(agent)
                        // No cache of others' addresses: it grew with every
                        // push, and the host keeps what it needs, bounded.
                        .with_cache_size(0),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                rr: rr_behaviour(),
                gossipsub,
                kad,
                mdns: Toggle::from(mdns),
                relay_client,
                relay: crate::relay_service::RelayService::new(relay::Behaviour::new(
                    peer,
                    relay_config(),
                )),
                dcutr: dcutr::Behaviour::new(peer),
                autonat: crate::autonat_probe::AutonatClient::new(
                    autonat::v2::client::Behaviour::default(),
                ),
                autonat_server: autonat::v2::server::Behaviour::default(),
                upnp: Toggle::from(upnp_on.then(upnp::tokio::Behaviour::default)),
            })
        })
        .map_err(|e| setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .with_connection_timeout(CONNECTION_TIMEOUT)
        .build();
    Ok(swarm)
}
