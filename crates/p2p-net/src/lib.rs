//! The libp2p host: TCP with Noise and Yamux; identify and ping;
//! request-response for sync, submission and wallet queries; gossipsub for
//! announcements; Kademlia and mDNS for discovery; connection limits and a
//! ban list; a persistent identity and peer store.
//!
//! One task owns the `Swarm`. The rest of the program talks to it through a
//! cloneable [`NetHandle`] (bounded command channel, answers on oneshot
//! channels) and reads [`NetEvent`]s from a bounded channel. The swarm task
//! never waits on the program: when the event channel is full, an inbound
//! request is answered "busy" and an announcement is ignored, so a slow
//! consumer cannot stall the network or deadlock with its own requests.
//! This crate knows nothing of chain rules.

mod codec;
pub mod gossip;
pub mod persist;

pub use gossip::GossipParams;

pub use libp2p::{Multiaddr, PeerId};
pub use p2p_proto::{Announcement, Request, Response};

use codec::SyncCodec;
use futures::StreamExt;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, gossipsub, identify, kad, mdns, noise, ping,
    request_response, tcp, yamux, StreamProtocol, Swarm,
};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a request may take before it fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Capacity of the command and event channels.
const CHANNEL: usize = 1024;

/// Requests a peer may make in a burst.
pub const REQUEST_BURST: u32 = 100;
/// Requests per second a peer may sustain.
pub const REQUESTS_PER_SEC: u32 = 50;
/// Requests over the rate limit after which the peer is reported as misbehaving.
pub const RATE_STRIKES_TO_BAN: u32 = 200;

/// Strikes forgiven per second: an honest peer that bursts now and then
/// never reaches [`RATE_STRIKES_TO_BAN`], a flooding one does.
pub const STRIKE_DECAY_PER_SEC: u32 = 2;
/// How long a disconnected peer's rate state is kept: the ban period, so a
/// reconnect neither refills its bucket nor clears its strikes.
pub const RATE_STATE_KEPT: Duration = Duration::from_secs(600);
/// Connection slots inbound peers cannot take, so this node can always dial
/// out to peers of its own choosing (eclipse resistance).
pub const OUTBOUND_RESERVE: u32 = 8;
/// Peers this node dials itself, from those Kademlia finds, while it has
/// fewer outbound peers than this. Inbound peers do not count: a node
/// that many dial still chooses some peers of its own.
pub const OUTBOUND_TARGET: usize = 8;
/// How long a connection with nothing to do is kept (a finished client's).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay without becoming a peer's (Kademlia's
/// lookups open such connections) before it may be closed to make room.
/// Gossipsub's long-lived streams keep every connection busy, so such
/// connections never idle out; past the peer limit the oldest are closed.
pub const UNCONFIRMED_FOR: Duration = Duration::from_secs(10);
/// How often Kademlia refreshes its routing table (a bootstrap: a lookup
/// of this node's id and of a random id in each bucket, some forty
/// requests in a network of a hundred). Kademlia also bootstraps on its
/// own while its table holds fewer than 20 peers.
pub const KAD_REFRESH: Duration = Duration::from_secs(300);
/// How long a peer whose connection closed is not dialled again for
/// Kademlia's sake: a full node that closed a short-lived connection is
/// not asked again at once.
pub const REDIAL_BACKOFF: Duration = Duration::from_secs(60);
/// Inbound connections beyond the peer slots, for clients that come, ask
/// and go (wallets, a node looking for peers): such a connection is not
/// made a peer, and is closed after [`SHORT_LIVED_FOR`].
pub const SHORT_LIVED_SLOTS: u32 = 16;
/// Slots kept free for clients (a wallet's one request): past the limits
/// less these, connections that never became a peer's (other nodes'
/// Kademlia lookups) are closed, oldest first, once [`IDLE_GUEST_AFTER`]
/// old, so a popular node still takes a wallet's connection.
pub const CLIENT_RESERVE: usize = 4;
/// How long a connection that has not become a peer's is left alone
/// before it may be closed to keep [`CLIENT_RESERVE`] slots free: a node
/// that dials speaks the sync protocol at once, and a lookup is done well
/// within it.
pub const IDLE_GUEST_AFTER: Duration = Duration::from_secs(2);
/// How long a connection in a short-lived slot is kept.
pub const SHORT_LIVED_FOR: Duration = Duration::from_secs(20);
/// Peers that, once connected, let this node close its connections to the
/// bootstrap (`--dest`) peers after [`BOOTSTRAP_RELEASE_AFTER`]: a popular
/// bootstrap node is not held by everyone forever. It stays in Kademlia.
pub const BOOTSTRAP_RELEASE_PEERS: usize = 8;
/// How long a bootstrap peer is kept once the node has other peers.
pub const BOOTSTRAP_RELEASE_AFTER: Duration = Duration::from_secs(60);
/// The first wait before a bootstrap (`--dest`) or LAN peer that could not
/// be reached is dialled again; each further attempt waits twice as long,
/// up to [`REDIAL_CHOSEN_MAX`]. Nodes may be started in any order.
pub const REDIAL_CHOSEN_FIRST: Duration = Duration::from_secs(2);
/// The longest wait between attempts to reach a bootstrap or LAN peer.
pub const REDIAL_CHOSEN_MAX: Duration = Duration::from_secs(60);
/// Inbound connections from one IP address (loopback exempt, so local
/// multi-node set-ups and wallets keep working).
pub const MAX_INBOUND_PER_IP: usize = 4;

/// A per-peer token bucket for inbound requests.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
    strikes: u32,
    /// When strikes were last decayed.
    decayed: Instant,
}

impl Bucket {
    fn new(now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(REQUEST_BURST),
            last: now,
            strikes: 0,
            decayed: now,
        }
    }

    /// Takes a token; false when the peer is over its rate.
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.duration_since(self.last).as_secs_f64() * f64::from(REQUESTS_PER_SEC);
        self.tokens = (self.tokens + refill).min(f64::from(REQUEST_BURST));
        self.last = now;
        let whole_secs = now.duration_since(self.decayed).as_secs();
        if whole_secs > 0 {
            let forgiven = u32::try_from(whole_secs)
                .unwrap_or(u32::MAX)
                .saturating_mul(STRIKE_DECAY_PER_SEC);
            self.strikes = self.strikes.saturating_sub(forgiven);
            self.decayed += Duration::from_secs(whole_secs);
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.strikes += 1;
            false
        }
    }
}

/// What the host is started with.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Directory for the identity key and the peer store (never the chain directory).
    pub identity_dir: PathBuf,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start and bootstrap Kademlia from (each ending in /p2p/<id>).
    pub bootstrap: Vec<Multiaddr>,
    /// Whether to discover peers on the LAN with mDNS.
    pub mdns: bool,
    /// The agent string announced by identify.
    pub agent: String,
    /// Most established connections to peers. [`SHORT_LIVED_SLOTS`] more
    /// are kept for short-lived clients (wallets).
    pub max_connections: u32,
    /// Gossipsub's mesh and heartbeat.
    pub gossip: GossipParams,
}

/// Errors of the network layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// Identity, transport or listener set-up failed.
    #[error("network set-up failed: {0}")]
    Setup(String),
    /// A multiaddress without the peer id.
    #[error(
        "{0} does not end with /p2p/<peer id>; use the full address the node prints when it starts"
    )]
    NoPeerId(Multiaddr),
    /// The peer could not be reached.
    #[error("cannot reach {addr}: {reason}")]
    Unreachable {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A request failed.
    #[error("request to {peer} failed: {reason}")]
    RequestFailed {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// The node closed a new connection at once, before answering: it is
    /// at its connection limit.
    #[error("the node at {addr} refused the connection: it is at its connection limit; try again shortly, or use another node")]
    Refused {
        /// The address.
        addr: String,
    },
    /// An announcement was not sent.
    #[error("not published: {0}")]
    NotPublished(String),
    /// The host stopped.
    #[error("the network host has stopped")]
    Stopped,
}

/// Where to send the answer to an inbound request.
pub struct ReplyHandle(request_response::ResponseChannel<Response>);

impl std::fmt::Debug for ReplyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReplyHandle")
    }
}

/// Identifies a received announcement, for reporting its validation result.
#[derive(Clone, Debug)]
pub struct GossipId {
    id: gossipsub::MessageId,
    source: PeerId,
}

/// The result of validating an announcement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Invalid: drop it and penalise the sender.
    Reject,
    /// Neither (already known, or not checkable yet): drop it quietly.
    Ignore,
}

/// What the host reports.
#[derive(Debug)]
pub enum NetEvent {
    /// Listening on an address (with this node's /p2p/ id appended).
    Listening(Multiaddr),
    /// A connection to a peer opened.
    Connected {
        /// The peer.
        peer: PeerId,
        /// Its address.
        address: Multiaddr,
    },
    /// The last connection to a peer closed.
    Disconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A peer asks something; answer with [`NetHandle::respond`].
    Request {
        /// Who asks.
        peer: PeerId,
        /// What.
        request: Request,
        /// Where to answer.
        reply: ReplyHandle,
    },
    /// An announcement arrived; report its validity with [`NetHandle::validate`].
    Announcement {
        /// The peer it came from.
        peer: PeerId,
        /// Its id.
        id: GossipId,
        /// The content.
        announcement: Announcement,
        /// Its encoded size in bytes, as received.
        size: usize,
    },
    /// A peer sent something undecodable.
    Misbehaved {
        /// The peer.
        peer: PeerId,
        /// What it did.
        reason: String,
    },
}

enum Command {
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, NetError>>,
    },
    Respond {
        handle: ReplyHandle,
        response: Response,
    },
    Publish {
        announcement: Announcement,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Validate {
        id: GossipId,
        verdict: Verdict,
    },
    Ban {
        peer: PeerId,
        duration: Duration,
    },
    Unban {
        peer: PeerId,
    },
    Dial {
        addr: Multiaddr,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    Metrics {
        reply: oneshot::Sender<String>,
    },
    Info {
        reply: oneshot::Sender<NetInfo>,
    },
    Shutdown,
}

/// A peer as the host sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerDetail {
    /// Its id.
    pub id: PeerId,
    /// The address of its connection (ending in /p2p/<id>).
    pub address: Multiaddr,
    /// Whether it dialled this node.
    pub inbound: bool,
    /// How long it has been a peer.
    pub connected_for: Duration,
    /// The last ping's round trip, once one has been measured.
    pub ping: Option<Duration>,
}

/// What the host is doing: for an API or a status display.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetInfo {
    /// The addresses it listens on (ending in /p2p/<id>).
    pub listening: Vec<Multiaddr>,
    /// Its peers.
    pub peers: Vec<PeerDetail>,
    /// Peers banned now, with the time their ban has left.
    pub bans: Vec<(PeerId, Duration)>,
}

/// The program's handle on the host. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NetHandle {
    tx: mpsc::Sender<Command>,
    local: PeerId,
}

impl NetHandle {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    async fn send(&self, c: Command) -> Result<(), NetError> {
        self.tx.send(c).await.map_err(|_| NetError::Stopped)
    }

    /// Sends the command `make` builds around a reply channel and waits for the reply.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply)).await?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// Sends a request and waits for the answer (bounded by [`REQUEST_TIMEOUT`]).
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        self.ask(|reply| Command::Request {
            peer,
            request,
            reply,
        })
        .await?
    }

    /// Answers an inbound request.
    pub async fn respond(&self, handle: ReplyHandle, response: Response) -> Result<(), NetError> {
        self.send(Command::Respond { handle, response }).await
    }

    /// Announces a block or transaction to the network. Fails with
    /// [`NetError::NotPublished`] when no connected peer takes the topic yet
    /// or the message is over the size limit.
    pub async fn publish(&self, announcement: Announcement) -> Result<(), NetError> {
        self.ask(|reply| Command::Publish {
            announcement,
            reply,
        })
        .await?
    }

    /// Reports whether a received announcement is valid.
    pub async fn validate(&self, id: GossipId, verdict: Verdict) -> Result<(), NetError> {
        self.send(Command::Validate { id, verdict }).await
    }

    /// Disconnects a peer and refuses it for `duration`.
    pub async fn ban(&self, peer: PeerId, duration: Duration) -> Result<(), NetError> {
        self.send(Command::Ban { peer, duration }).await
    }

    /// Lifts a ban at once.
    pub async fn unban(&self, peer: PeerId) -> Result<(), NetError> {
        self.send(Command::Unban { peer }).await
    }

    /// Dials `addr` (ending in `/p2p/<id>`) unless already connected to it.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.send(Command::Dial { addr }).await
    }

    /// The host's metrics (libp2p's: connections, bandwidth, identify,
    /// Kademlia, ping, gossipsub) in Prometheus text format.
    pub async fn metrics(&self) -> Result<String, NetError> {
        self.ask(|reply| Command::Metrics { reply }).await
    }

    /// Listening addresses, peers and bans.
    pub async fn info(&self) -> Result<NetInfo, NetError> {
        self.ask(|reply| Command::Info { reply }).await
    }

    /// The peers connected now.
    pub async fn peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// Stops the host.
    pub async fn shutdown(&self) {
        let _ = self.send(Command::Shutdown).await;
    }
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    rr: request_response::Behaviour<SyncCodec>,
    gossipsub: gossipsub::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

fn rr_behaviour() -> request_response::Behaviour<SyncCodec> {
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

/// Splits `/…/p2p/<id>` into the peer id and the address before it. A
/// repeated trailing `/p2p/<id>` of the same peer is dropped too; one that
/// names two different peers is not a peer's address.
pub fn split_peer(addr: &Multiaddr) -> Option<(PeerId, Multiaddr)> {
    let mut a = addr.clone();
    let Some(libp2p::multiaddr::Protocol::P2p(peer)) = a.pop() else {
        return None;
    };
    while let Some(libp2p::multiaddr::Protocol::P2p(other)) = a.iter().last() {
        if other != peer {
            return None;
        }
        a.pop();
    }
    Some((peer, a))
}

/// `addr` with its trailing `/p2p/…` parts, if any, replaced by exactly one
/// `/p2p/<peer>`. Addresses learnt from identify, Kademlia or mDNS may
/// already end with the peer id; appending blindly doubled it.
pub fn peer_address(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    let mut base = addr.clone();
    while let Some(libp2p::multiaddr::Protocol::P2p(_)) = base.iter().last() {
        base.pop();
    }
    base.with(libp2p::multiaddr::Protocol::P2p(peer))
}

/// The remote IP of an inbound connection, when it counts against
/// [`MAX_INBOUND_PER_IP`]: loopback addresses do not.
fn counted_inbound_ip(endpoint: &libp2p::core::ConnectedPoint) -> Option<std::net::IpAddr> {
    if endpoint.is_dialer() {
        return None;
    }
    let ip = endpoint.get_remote_address().iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::Ip4(a) => Some(std::net::IpAddr::V4(a)),
        libp2p::multiaddr::Protocol::Ip6(a) => Some(std::net::IpAddr::V6(a)),
        _ => None,
    })?;
    (!ip.is_loopback()).then_some(ip)
}

/// `addr` without its trailing `/p2p/…` parts.
fn transport_address(addr: &Multiaddr) -> Multiaddr {
    let mut base = addr.clone();
    while let Some(libp2p::multiaddr::Protocol::P2p(_)) = base.iter().last() {
        base.pop();
    }
    base
}

fn gossip_topics() -> (gossipsub::IdentTopic, gossipsub::IdentTopic) {
    (
        gossipsub::IdentTopic::new(p2p_proto::BLOCK_TOPIC),
        gossipsub::IdentTopic::new(p2p_proto::TX_TOPIC),
    )
}

fn build_swarm(
    cfg: &NetConfig,
    keypair: libp2p::identity::Keypair,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<Swarm<Behaviour>, NetError> {
    let setup = |e: String| NetError::Setup(e);
    let mdns_on = cfg.mdns;
    let agent = cfg.agent.clone();
    let max = cfg.max_connections;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| setup(e.to_string()))?
        // libp2p's in-process transport, for `/memory/<n>` addresses: many
        // hosts in one process (simulations, tests) with the same Noise and
        // Yamux upgrades and the same protocols as over TCP.
        .with_other_transport(|key| {
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                libp2p::Transport::upgrade(
                    libp2p::core::transport::MemoryTransport::default(),
                    libp2p::core::upgrade::Version::V1,
                )
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default()),
            )
        })
        .map_err(|e| setup(e.to_string()))?
        .with_bandwidth_metrics(registry)
        .with_behaviour(|key| {
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
            // `Host::on_swarm_event`); these are the hard limits.
            let limits = connection_limits::ConnectionLimits::default()
                .with_max_established(Some(max + SHORT_LIVED_SLOTS))
                .with_max_established_incoming(Some(inbound_peer_slots(max) + SHORT_LIVED_SLOTS))
                .with_max_established_per_peer(Some(2))
                .with_max_pending_incoming(Some(32))
                .with_max_pending_outgoing(Some(32));
            Ok(Behaviour {
                blocked: Default::default(),
                limits: connection_limits::Behaviour::new(limits),
                identify: identify::Behaviour::new(
                    identify::Config::new("/chain/id/1".into(), key.public())
                        .with_agent_version(agent),
                ),
                ping: ping::Behaviour::new(ping::Config::new()),
                rr: rr_behaviour(),
                gossipsub,
                kad,
                mdns: Toggle::from(mdns),
            })
        })
        .map_err(|e| setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build();
    Ok(swarm)
}

/// Starts the host. Returns the handle, the event stream, and the task running the swarm.
pub async fn start(
    cfg: NetConfig,
) -> Result<
    (
        NetHandle,
        mpsc::Receiver<NetEvent>,
        tokio::task::JoinHandle<()>,
    ),
    NetError,
> {
    let keypair = persist::load_or_create_identity(&cfg.identity_dir.join("identity.key"))
        .map_err(NetError::Setup)?;
    let local = keypair.public().to_peer_id();
    let mut registry = prometheus_client::registry::Registry::default();
    let mut swarm = build_swarm(&cfg, keypair, &mut registry)?;
    let metrics = libp2p::metrics::Metrics::new(&mut registry);
    let (blocks, txs) = gossip_topics();
    for t in [&blocks, &txs] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(t)
            .map_err(|e| NetError::Setup(e.to_string()))?;
    }
    for addr in &cfg.listen {
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Setup(format!("cannot listen on {addr}: {e}")))?;
    }
    let peers = persist::PeerStore::load(&cfg.identity_dir.join("peers.json"));
    let mut to_dial: Vec<(PeerId, Multiaddr)> = peers.known();
    let mut bootstrap = HashSet::new();
    for addr in &cfg.bootstrap {
        let (peer, base) = split_peer(addr).ok_or_else(|| NetError::NoPeerId(addr.clone()))?;
        if peer == local {
            return Err(NetError::Setup(format!("{addr} is this node itself")));
        }
        bootstrap.insert(peer);
        to_dial.push((peer, base));
    }
    let mut redial = HashMap::new();
    for (peer, base) in &to_dial {
        swarm.behaviour_mut().kad.add_address(peer, base.clone());
        if bootstrap.contains(peer) {
            redial.insert(*peer, Redial::new(base.clone()));
        }
        if let Err(e) = swarm.dial(dial_opts(*peer, base)) {
            tracing::debug!(%peer, %base, "dial failed: {e}");
        }
    }
    let (cmd_tx, cmd_rx) = mpsc::channel(CHANNEL);
    let (ev_tx, ev_rx) = mpsc::channel(CHANNEL);
    let host = Host {
        swarm,
        local,
        events: ev_tx,
        pending: HashMap::new(),
        banned: HashMap::new(),
        peers,
        blocks,
        txs,
        connected: HashSet::new(),
        inbound_ips: HashMap::new(),
        rates: HashMap::new(),
        held: std::collections::VecDeque::new(),
        registry,
        metrics,
        inbound_peer_slots: inbound_peer_slots(cfg.max_connections) as usize,
        max_connections: cfg.max_connections as usize,
        inbound_peers: HashSet::new(),
        outbound_peers: HashSet::new(),
        chosen: to_dial.iter().map(|(p, _)| *p).collect(),
        closed_at: HashMap::new(),
        short_lived: HashMap::new(),
        unconfirmed: HashMap::new(),
        bootstrap,
        redial,
        connected_since: HashMap::new(),
        peer_addr: HashMap::new(),
        rtt: HashMap::new(),
    };
    let task = tokio::spawn(host.run(cmd_rx));
    Ok((NetHandle { tx: cmd_tx, local }, ev_rx, task))
}

struct Host {
    swarm: Swarm<Behaviour>,
    local: PeerId,
    events: mpsc::Sender<NetEvent>,
    pending:
        HashMap<request_response::OutboundRequestId, oneshot::Sender<Result<Response, NetError>>>,
    banned: HashMap<PeerId, Instant>,
    peers: persist::PeerStore,
    blocks: gossipsub::IdentTopic,
    txs: gossipsub::IdentTopic,
    connected: HashSet<PeerId>,
    /// Established inbound connections per remote IP (loopback not counted).
    inbound_ips: HashMap<std::net::IpAddr, usize>,
    rates: HashMap<PeerId, Bucket>,
    /// Events that must not be lost (connections, misbehaviour, listening
    /// addresses), held in order while the event channel is full.
    held: std::collections::VecDeque<NetEvent>,
    registry: prometheus_client::registry::Registry,
    metrics: libp2p::metrics::Metrics,
    /// Inbound connections that may be peers.
    inbound_peer_slots: usize,
    /// [`NetConfig::max_connections`].
    max_connections: usize,
    /// Peers whose connection came in and holds a peer slot.
    inbound_peers: HashSet<PeerId>,
    /// Peers this node dialled.
    outbound_peers: HashSet<PeerId>,
    /// Peers this node chose to dial (bootstrap, known, found and asked
    /// for), as opposed to those Kademlia's queries dialled.
    chosen: HashSet<PeerId>,
    /// Peers whose last connection closed, and when.
    closed_at: HashMap<PeerId, Instant>,
    /// Connections served in short-lived slots (not peers), and when they close.
    short_lived: HashMap<PeerId, Instant>,
    /// Connected, not yet peers: each with its address and whether it came
    /// in. One becomes a peer when it makes a sync request.
    unconfirmed: HashMap<PeerId, (Multiaddr, bool, Instant)>,
    /// The bootstrap (`--dest`) peers.
    bootstrap: HashSet<PeerId>,
    /// Peers dialled again while unreachable: the bootstrap peers and
    /// those found on the LAN.
    redial: HashMap<PeerId, Redial>,
    /// When each peer connected.
    connected_since: HashMap<PeerId, Instant>,
    /// Each peer's connection address and whether it came in.
    peer_addr: HashMap<PeerId, (Multiaddr, bool)>,
    /// Each peer's last ping round trip.
    rtt: HashMap<PeerId, Duration>,
}

/// Where and when to dial a bootstrap or LAN peer again.
#[derive(Debug)]
struct Redial {
    addr: Multiaddr,
    at: Instant,
    wait: Duration,
}

impl Redial {
    fn new(addr: Multiaddr) -> Redial {
        Redial {
            addr,
            at: Instant::now() + REDIAL_CHOSEN_FIRST,
            wait: REDIAL_CHOSEN_FIRST,
        }
    }
}

/// Options for a dial this node chooses to make, from a fresh local port.
/// libp2p's default dials from the listening port; two nodes dialling each
/// other at the same moment (as two that find each other on a LAN do) then
/// meet in one TCP connection by simultaneous open, on which both act as
/// the dialer and protocol negotiation fails.
fn dial_opts(peer: PeerId, addr: &Multiaddr) -> DialOpts {
    DialOpts::peer_id(peer)
        .addresses(vec![peer_address(addr, peer)])
        .allocate_new_port()
        .build()
}

/// Inbound connections that may be peers: the rest of the slots are for
/// this node's own dials (eclipse resistance).
fn inbound_peer_slots(max: u32) -> u32 {
    max.saturating_sub(OUTBOUND_RESERVE).max(1)
}

/// Most events held while the event channel is full; connection limits
/// keep the real number far lower.
const HELD_EVENTS: usize = 4096;

impl Host {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        // Redials and the client reserve are timed to the second.
        let mut second = tokio::time::interval(Duration::from_secs(1));
        let events = self.events.clone();
        loop {
            tokio::select! {
                permit = events.reserve(), if !self.held.is_empty() => {
                    if let (Ok(permit), Some(ev)) = (permit, self.held.pop_front()) {
                        permit.send(ev);
                    }
                }
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev),
                cmd = commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(c) => self.on_command(c),
                },
                _ = tick.tick() => self.housekeeping(),
                _ = second.tick() => {
                    let now = Instant::now();
                    self.redial_due(now);
                    self.keep_client_reserve(now);
                }
            }
        }
        if let Err(e) = self.peers.save() {
            tracing::warn!("cannot save the peer store: {e}");
        }
        for (_, reply) in self.pending.drain() {
            let _ = reply.send(Err(NetError::Stopped));
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in expired {
            self.banned.remove(&p);
            self.swarm.behaviour_mut().blocked.unblock_peer(p);
            tracing::info!(peer = %p, "ban lifted");
        }
        // Rate state outlives a connection for the ban period.
        let connected = &self.connected;
        self.rates
            .retain(|p, b| connected.contains(p) || now.duration_since(b.last) < RATE_STATE_KEPT);
        if let Err(e) = self.peers.save() {
            tracing::warn!("cannot save the peer store: {e}");
        }
        self.closed_at
            .retain(|_, t| now.duration_since(*t) < REDIAL_BACKOFF);
        let over: Vec<PeerId> = self
            .short_lived
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in over {
            let _ = self.swarm.disconnect_peer_id(p);
        }
        self.release_bootstrap(now);
        self.trim_unconfirmed(now);
    }

    /// Closes the connections to bootstrap peers held for
    /// [`BOOTSTRAP_RELEASE_AFTER`] once [`BOOTSTRAP_RELEASE_PEERS`] other
    /// peers are connected.
    fn release_bootstrap(&mut self, now: Instant) {
        let others = self
            .connected
            .iter()
            .filter(|p| !self.bootstrap.contains(p))
            .count();
        if others < BOOTSTRAP_RELEASE_PEERS {
            return;
        }
        let due: Vec<PeerId> = self
            .bootstrap
            .iter()
            .filter(|p| {
                self.connected_since
                    .get(p)
                    .is_some_and(|t| now.duration_since(*t) >= BOOTSTRAP_RELEASE_AFTER)
            })
            .copied()
            .collect();
        for p in due {
            tracing::debug!(peer = %p, "closing the connection to a bootstrap peer: other peers are connected");
            let _ = self.swarm.disconnect_peer_id(p);
        }
    }

    fn emit(&mut self, ev: NetEvent) {
        let droppable = matches!(ev, NetEvent::Request { .. } | NetEvent::Announcement { .. });
        // Held events go first, in order.
        if !droppable && !self.held.is_empty() {
            self.hold(ev);
            return;
        }
        match self.events.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => match ev {
                NetEvent::Request { reply, .. } => {
                    let _ = self.swarm.behaviour_mut().rr.send_response(
                        reply.0,
                        Response::Error {
                            reason: "busy, try again".into(),
                        },
                    );
                }
                NetEvent::Announcement { id, .. } => {
                    self.swarm
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

    /// Keeps an event that must not be lost until the channel has room.
    fn hold(&mut self, ev: NetEvent) {
        if self.held.len() >= HELD_EVENTS {
            tracing::warn!("event channel full and {HELD_EVENTS} events held; dropping the oldest");
            self.held.pop_front();
        }
        self.held.push_back(ev);
    }

    fn on_command(&mut self, c: Command) {
        let connected = match &c {
            Command::Request { peer, .. } => self.swarm.is_connected(peer),
            _ => false,
        };
        let b = self.swarm.behaviour_mut();
        match c {
            Command::Request {
                peer,
                request,
                reply,
            } => {
                // Requests go to connected peers only: request-response
                // would otherwise dial a peer that was just disconnected
                // (pruned, banned by the other side, gone), and the node
                // never means to reconnect by asking.
                if !connected {
                    let _ = reply.send(Err(NetError::RequestFailed {
                        peer,
                        reason: "not connected".into(),
                    }));
                    return;
                }
                let id = b.rr.send_request(&peer, codec::Inbound::Valid(request));
                self.pending.insert(id, reply);
            }
            Command::Respond { handle, response } => {
                if b.rr.send_response(handle.0, response).is_err() {
                    tracing::debug!("response not sent: the peer went away");
                }
            }
            Command::Publish {
                announcement,
                reply,
            } => {
                let topic = match announcement {
                    Announcement::Block(_) => self.blocks.clone(),
                    Announcement::Tx(_) => self.txs.clone(),
                };
                let result = match b.gossipsub.publish(topic, announcement.encode()) {
                    Ok(_) | Err(gossipsub::PublishError::Duplicate) => Ok(()),
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                        tracing::debug!("nothing published: no peers yet");
                        Err(NetError::NotPublished("no peers on the topic yet".into()))
                    }
                    Err(e) => {
                        tracing::warn!("publish failed: {e}");
                        Err(NetError::NotPublished(e.to_string()))
                    }
                };
                let _ = reply.send(result);
            }
            Command::Validate { id, verdict } => {
                let acceptance = match verdict {
                    Verdict::Accept => gossipsub::MessageAcceptance::Accept,
                    Verdict::Reject => gossipsub::MessageAcceptance::Reject,
                    Verdict::Ignore => gossipsub::MessageAcceptance::Ignore,
                };
                b.gossipsub
                    .report_message_validation_result(&id.id, &id.source, acceptance);
            }
            Command::Ban { peer, duration } => {
                b.blocked.block_peer(peer);
                self.banned.insert(peer, Instant::now() + duration);
                tracing::warn!(%peer, secs = duration.as_secs(), "peer banned");
            }
            Command::Unban { peer } => {
                b.blocked.unblock_peer(peer);
                self.banned.remove(&peer);
            }
            Command::Dial { addr } => {
                if let Some((peer, base)) = split_peer(&addr) {
                    self.dial_if_new(peer, base);
                }
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.connected.iter().copied().collect());
            }
            Command::Metrics { reply } => {
                let mut text = String::new();
                if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry)
                {
                    tracing::warn!("cannot encode the metrics: {e}");
                }
                let _ = reply.send(text);
            }
            Command::Info { reply } => {
                let now = Instant::now();
                let info = NetInfo {
                    listening: self
                        .swarm
                        .listeners()
                        .map(|a| peer_address(a, self.local))
                        .collect(),
                    peers: self
                        .peer_addr
                        .iter()
                        .map(|(id, (address, inbound))| PeerDetail {
                            id: *id,
                            address: address.clone(),
                            inbound: *inbound,
                            connected_for: self
                                .connected_since
                                .get(id)
                                .map(|t| now.saturating_duration_since(*t))
                                .unwrap_or_default(),
                            ping: self.rtt.get(id).copied(),
                        })
                        .collect(),
                    bans: self
                        .banned
                        .iter()
                        .filter(|(_, until)| **until > now)
                        .map(|(p, until)| (*p, until.saturating_duration_since(now)))
                        .collect(),
                };
                let _ = reply.send(info);
            }
            Command::Shutdown => {}
        }
    }

    fn on_swarm_event(&mut self, ev: SwarmEvent<BehaviourEvent>) {
        use libp2p::metrics::Recorder;
        match &ev {
            SwarmEvent::Behaviour(BehaviourEvent::Identify(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Kad(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.metrics.record(e),
            SwarmEvent::Behaviour(_) => {}
            other => self.metrics.record(other),
        }
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                let full = peer_address(&address, self.local);
                self.emit(NetEvent::Listening(full));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                connection_id,
                ..
            } => {
                if let Some(ip) = counted_inbound_ip(&endpoint) {
                    let n = self.inbound_ips.entry(ip).or_default();
                    *n += 1;
                    if *n > MAX_INBOUND_PER_IP {
                        tracing::debug!(%peer_id, %ip, "too many inbound connections from one address");
                        self.swarm.close_connection(connection_id);
                    }
                }
                if endpoint.is_dialer() {
                    let base = transport_address(endpoint.get_remote_address());
                    self.peers.success(&peer_id, &base);
                    self.learn_address(peer_id, base);
                }
                if self.connected.contains(&peer_id) {
                    return;
                }
                let address = peer_address(endpoint.get_remote_address(), peer_id);
                if endpoint.is_dialer() && self.chosen.contains(&peer_id) {
                    // Also when the peer's own dial got here first (a
                    // simultaneous dial, as two nodes finding each other on
                    // the LAN do): this node chose it.
                    self.unconfirmed.remove(&peer_id);
                    self.make_peer(peer_id, address, false);
                } else if num_established.get() == 1 {
                    // A connection Kademlia's query opened, or one from
                    // outside: a peer only once it speaks the sync protocol.
                    self.unconfirmed
                        .insert(peer_id, (address, !endpoint.is_dialer(), Instant::now()));
                    self.keep_client_reserve(Instant::now());
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                endpoint,
                ..
            } => {
                if let Some(ip) = counted_inbound_ip(&endpoint) {
                    if let Some(n) = self.inbound_ips.get_mut(&ip) {
                        *n -= 1;
                        if *n == 0 {
                            self.inbound_ips.remove(&ip);
                        }
                    }
                }
                if num_established == 0 {
                    self.unconfirmed.remove(&peer_id);
                    self.short_lived.remove(&peer_id);
                }
                // The rate state stays (see housekeeping): a reconnect does
                // not refill the bucket or clear the strikes.
                if num_established == 0 {
                    self.closed_at.insert(peer_id, Instant::now());
                }
                if num_established == 0 {
                    // Not dialled again at once: a node at its limits that
                    // closed the connection is not asked again in the same
                    // second. A peer that stayed a while starts again from
                    // the shortest wait.
                    let stayed = self
                        .connected_since
                        .get(&peer_id)
                        .is_some_and(|t| t.elapsed() >= BOOTSTRAP_RELEASE_AFTER);
                    if let Some(r) = self.redial.get_mut(&peer_id) {
                        if stayed {
                            r.wait = REDIAL_CHOSEN_FIRST;
                        }
                        r.at = Instant::now() + r.wait;
                    }
                }
                if num_established == 0 && self.connected.remove(&peer_id) {
                    self.inbound_peers.remove(&peer_id);
                    self.outbound_peers.remove(&peer_id);
                    self.chosen.remove(&peer_id);
                    self.connected_since.remove(&peer_id);
                    self.peer_addr.remove(&peer_id);
                    self.rtt.remove(&peer_id);
                    self.emit(NetEvent::Disconnected { peer: peer_id });
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                let counters = self.swarm.network_info().connection_counters().clone();
                tracing::debug!(
                    %peer,
                    established_in = counters.num_established_incoming(),
                    established_out = counters.num_established_outgoing(),
                    peers = self.connected.len(),
                    unconfirmed = self.unconfirmed.len(),
                    short_lived = self.short_lived.len(),
                    "dial failed: {error:?}"
                );
                if !self.swarm.is_connected(&peer) {
                    self.chosen.remove(&peer);
                }
                if self.peers.failure(&peer) {
                    tracing::info!(%peer, "forgetting a peer that stayed unreachable");
                }
            }
            SwarmEvent::Behaviour(b) => self.on_behaviour_event(b),
            _ => {}
        }
    }

    /// Gives Kademlia a peer's address when the peer is in its routing
    /// table already or its bucket has room. Into a full bucket, Kademlia
    /// would dial the bucket's oldest disconnected peer to see whether it
    /// is still there, once for every address it is given: with every
    /// connection bringing addresses, that kept a network of a hundred
    /// nodes redialling itself.
    fn learn_address(&mut self, peer: PeerId, addr: Multiaddr) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        let fits = kad.kbucket(peer).is_some_and(|b| {
            b.num_entries() < kad::K_VALUE.get() || b.iter().any(|e| *e.node.key.preimage() == peer)
        });
        if fits {
            kad.add_address(&peer, addr);
        }
    }

    /// Past [`NetConfig::max_connections`] established connections, closes
    /// the oldest of those that did not become a peer's within
    /// [`UNCONFIRMED_FOR`], so that the limit is never reached by them.
    /// Below it they stay: closing each at once only made Kademlia open
    /// new ones.
    fn trim_unconfirmed(&mut self, now: Instant) {
        let established = self
            .swarm
            .network_info()
            .connection_counters()
            .num_established();
        let excess = (established as usize).saturating_sub(self.max_connections);
        if excess == 0 {
            return;
        }
        let mut stale: Vec<(Instant, PeerId)> = self
            .unconfirmed
            .iter()
            .filter(|(_, (_, _, since))| now.duration_since(*since) >= UNCONFIRMED_FOR)
            .map(|(p, (_, _, since))| (*since, *p))
            .collect();
        stale.sort_unstable();
        for (_, p) in stale.into_iter().take(excess) {
            let _ = self.swarm.disconnect_peer_id(p);
        }
    }

    /// Keeps [`CLIENT_RESERVE`] connection slots free, inbound and in all,
    /// by closing the oldest connections that never became a peer's and
    /// are at least [`IDLE_GUEST_AFTER`] old.
    fn keep_client_reserve(&mut self, now: Instant) {
        let info = self.swarm.network_info();
        let counters = info.connection_counters();
        let inbound_limit = self.inbound_peer_slots + SHORT_LIVED_SLOTS as usize;
        let total_limit = self.max_connections + SHORT_LIVED_SLOTS as usize;
        let over_in = (counters.num_established_incoming() as usize + CLIENT_RESERVE)
            .saturating_sub(inbound_limit);
        let over_all =
            (counters.num_established() as usize + CLIENT_RESERVE).saturating_sub(total_limit);
        if over_in == 0 && over_all == 0 {
            return;
        }
        let mut idle: Vec<(Instant, bool, PeerId)> = self
            .unconfirmed
            .iter()
            .filter(|(_, (_, _, since))| now.duration_since(*since) >= IDLE_GUEST_AFTER)
            .map(|(p, (_, inbound, since))| (*since, *inbound, *p))
            .collect();
        idle.sort_unstable();
        let (mut in_left, mut all_left) = (over_in, over_all);
        for (_, inbound, p) in idle {
            if in_left == 0 && all_left == 0 {
                break;
            }
            // An outbound connection frees no inbound slot.
            if all_left == 0 && !inbound {
                continue;
            }
            tracing::debug!(peer = %p, "closing a connection that is not a peer's: keeping slots free for clients");
            let _ = self.swarm.disconnect_peer_id(p);
            all_left = all_left.saturating_sub(1);
            if inbound {
                in_left = in_left.saturating_sub(1);
            }
        }
    }

    /// Reports `peer` connected: from now on the node treats it as a peer.
    fn make_peer(&mut self, peer: PeerId, address: Multiaddr, inbound: bool) {
        if !self.connected.insert(peer) {
            return;
        }
        if inbound {
            self.inbound_peers.insert(peer);
        } else {
            self.outbound_peers.insert(peer);
        }
        self.connected_since.insert(peer, Instant::now());
        self.peer_addr.insert(peer, (address.clone(), inbound));
        self.emit(NetEvent::Connected { peer, address });
    }

    /// A request on the sync protocol from `peer`: a connection not yet a
    /// peer's becomes one, or, with the inbound peer slots full, is served
    /// for [`SHORT_LIVED_FOR`] and closed.
    fn confirm(&mut self, peer: PeerId) {
        if self.short_lived.contains_key(&peer) {
            return;
        }
        let Some((address, inbound, _)) = self.unconfirmed.remove(&peer) else {
            return;
        };
        if inbound && self.inbound_peers.len() >= self.inbound_peer_slots {
            tracing::debug!(%peer, "inbound peer slots full: a short-lived connection");
            self.short_lived
                .insert(peer, Instant::now() + SHORT_LIVED_FOR);
            return;
        }
        self.make_peer(peer, address, inbound);
    }

    fn dial_if_new(&mut self, peer: PeerId, addr: Multiaddr) {
        if let Some((address, _, _)) = self.unconfirmed.remove(&peer) {
            // Connected already, not yet as a peer: chosen now.
            self.chosen.insert(peer);
            self.make_peer(peer, address, false);
            return;
        }
        if peer == self.local || self.swarm.is_connected(&peer) || self.banned.contains_key(&peer) {
            return;
        }
        // A bootstrap peer is not dialled again while the node has others
        // (see `release_bootstrap`).
        if self.bootstrap.contains(&peer) && self.connected.len() >= BOOTSTRAP_RELEASE_PEERS {
            return;
        }
        self.chosen.insert(peer);
        tracing::debug!(%peer, "dialling a peer");
        let _ = self.swarm.dial(dial_opts(peer, &addr));
    }

    /// Dials the bootstrap and LAN peers that are due, each attempt waiting
    /// twice as long as the one before.
    fn redial_due(&mut self, now: Instant) {
        let due: Vec<(PeerId, Multiaddr)> = self
            .redial
            .iter_mut()
            .filter(|(p, r)| r.at <= now && !self.connected.contains(p))
            .map(|(p, r)| {
                r.at = now + r.wait;
                r.wait = (r.wait * 2).min(REDIAL_CHOSEN_MAX);
                (*p, r.addr.clone())
            })
            .collect();
        for (peer, addr) in due {
            tracing::debug!(%peer, "a bootstrap or LAN peer is due to be dialled again");
            self.dial_if_new(peer, addr);
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Rr(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request {
                        request, channel, ..
                    } => {
                        self.confirm(peer);
                        let now = Instant::now();
                        let bucket = self.rates.entry(peer).or_insert_with(|| Bucket::new(now));
                        if !bucket.take(now) {
                            let strikes = bucket.strikes;
                            let _ = self.swarm.behaviour_mut().rr.send_response(
                                channel,
                                Response::Error {
                                    reason: format!(
                                        "rate limited: at most {REQUESTS_PER_SEC} requests per second"
                                    ),
                                },
                            );
                            if strikes == RATE_STRIKES_TO_BAN {
                                self.emit(NetEvent::Misbehaved {
                                    peer,
                                    reason: format!("{strikes} requests over the rate limit"),
                                });
                            }
                            return;
                        }
                        let request = match request {
                            codec::Inbound::Valid(r) => r,
                            codec::Inbound::Malformed(reason) => {
                                // Dropping the channel resets the stream unanswered.
                                drop(channel);
                                self.emit(NetEvent::Misbehaved {
                                    peer,
                                    reason: format!("undecodable request: {reason}"),
                                });
                                return;
                            }
                        };
                        self.emit(NetEvent::Request {
                            peer,
                            request,
                            reply: ReplyHandle(channel),
                        });
                    }
                    request_response::Message::Response {
                        request_id,
                        response,
                    } => {
                        if let Some(tx) = self.pending.remove(&request_id) {
                            let _ = tx.send(Ok(response));
                        }
                    }
                }
            }
            BehaviourEvent::Rr(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                if let Some(tx) = self.pending.remove(&request_id) {
                    let _ = tx.send(Err(NetError::RequestFailed {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            BehaviourEvent::Rr(request_response::Event::InboundFailure { peer, error, .. }) => {
                // Malformed bytes arrive as `Inbound::Malformed`, not here.
                tracing::debug!(%peer, "inbound request failed: {error}");
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let id = GossipId {
                    id: message_id,
                    source: propagation_source,
                };
                let size = message.data.len();
                match Announcement::decode(&message.data) {
                    Ok(announcement) => self.emit(NetEvent::Announcement {
                        peer: propagation_source,
                        id,
                        announcement,
                        size,
                    }),
                    Err(e) => {
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .report_message_validation_result(
                                &id.id,
                                &id.source,
                                gossipsub::MessageAcceptance::Reject,
                            );
                        self.emit(NetEvent::Misbehaved {
                            peer: propagation_source,
                            reason: format!("undecodable announcement: {e}"),
                        });
                    }
                }
            }
            BehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) if self.connected.contains(&peer) => {
                self.rtt.insert(peer, rtt);
            }
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                for a in info.listen_addrs {
                    self.learn_address(peer_id, a);
                }
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer, addresses, ..
            }) if self.outbound_peers.len() < OUTBOUND_TARGET => {
                let backing_off = self
                    .closed_at
                    .get(&peer)
                    .is_some_and(|t| t.elapsed() < REDIAL_BACKOFF);
                if !backing_off {
                    let addr = addresses.first().clone();
                    self.dial_if_new(peer, addr);
                }
            }
            BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result,
                stats,
                step,
                ..
            }) if step.last => {
                let kind = match result {
                    kad::QueryResult::Bootstrap(Err(_)) => "bootstrap (failed)",
                    kad::QueryResult::Bootstrap(_) => "bootstrap",
                    kad::QueryResult::GetClosestPeers(_) => "closest peers",
                    _ => "other",
                };
                // The table's size is counted only when it will be logged.
                if tracing::enabled!(tracing::Level::DEBUG) {
                    let table: usize = self
                        .swarm
                        .behaviour_mut()
                        .kad
                        .kbuckets()
                        .map(|b| b.num_entries())
                        .sum();
                    tracing::debug!(
                        kind,
                        requests = stats.num_requests(),
                        table,
                        "Kademlia query finished"
                    );
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Discovered(list)) => {
                for (peer, addr) in list {
                    tracing::info!(%peer, %addr, "found a peer on the LAN");
                    self.learn_address(peer, addr.clone());
                    self.redial
                        .entry(peer)
                        .or_insert_with(|| Redial::new(addr.clone()));
                    self.dial_if_new(peer, addr);
                }
            }
            BehaviourEvent::Mdns(mdns::Event::Expired(list)) => {
                for (peer, _) in list {
                    if !self.bootstrap.contains(&peer) {
                        self.redial.remove(&peer);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Sends one request to the node at `addr` through a short-lived host and
/// returns its answer. Connecting is bounded by `connect_timeout` and the
/// whole exchange by [`REQUEST_TIMEOUT`].
pub async fn request_once(
    addr: &Multiaddr,
    request: Request,
    connect_timeout: Duration,
) -> Result<Response, NetError> {
    exchange_once(
        addr,
        rr_behaviour(),
        codec::Inbound::Valid(request),
        connect_timeout,
    )
    .await
}

/// A connection closed this soon after it was set up, unanswered, was
/// refused by the node's connection limits.
const REFUSED_WITHIN: Duration = Duration::from_secs(2);

/// One request through a short-lived host speaking `behaviour`'s codec.
async fn exchange_once<C>(
    addr: &Multiaddr,
    behaviour: request_response::Behaviour<C>,
    request: C::Request,
    connect_timeout: Duration,
) -> Result<C::Response, NetError>
where
    C: request_response::Codec + Clone + Send + 'static,
    C::Protocol: Send,
{
    let (peer, _) = split_peer(addr).ok_or_else(|| NetError::NoPeerId(addr.clone()))?;
    let unreachable = |reason: String| NetError::Unreachable {
        addr: addr.to_string(),
        reason,
    };
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Setup(e.to_string()))?
        .with_behaviour(|_| behaviour)
        .map_err(|e| NetError::Setup(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(5)))
        .build();
    swarm
        .dial(addr.clone())
        .map_err(|e| unreachable(e.to_string()))?;
    let connect = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == peer => {
                    return Ok(())
                }
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    return Err(unreachable(error.to_string()))
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(connect_timeout, connect)
        .await
        .map_err(|_| unreachable(format!("no answer within {}s", connect_timeout.as_secs())))??;
    let established = Instant::now();
    let id = swarm.behaviour_mut().send_request(&peer, request);
    let exchange = async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) if request_id == id => return Ok(response),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                }) if request_id == id => {
                    return Err(NetError::RequestFailed {
                        peer,
                        reason: error.to_string(),
                    })
                }
                SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == peer => {
                    // A node at its connection limit closes a connection
                    // as soon as it is set up; one closed later went away
                    // while answering.
                    if established.elapsed() < REFUSED_WITHIN {
                        return Err(NetError::Refused {
                            addr: addr.to_string(),
                        });
                    }
                    return Err(NetError::RequestFailed {
                        peer,
                        reason: "the connection closed".into(),
                    });
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| NetError::RequestFailed {
            peer,
            reason: "timed out".into(),
        })?
}

/// Writes `bytes` as they are on the sync protocol of the node at `addr`,
/// as a misbehaving peer would, and returns what the node answered (raw) or
/// how the exchange failed. For tests of the node's defences.
#[cfg(feature = "test-utils")]
pub async fn send_raw(
    addr: &Multiaddr,
    bytes: Vec<u8>,
    connect_timeout: Duration,
) -> Result<Vec<u8>, NetError> {
    let cfg = request_response::Config::default().with_request_timeout(REQUEST_TIMEOUT);
    let behaviour = request_response::Behaviour::with_codec(
        codec::RawCodec,
        [(
            StreamProtocol::new(p2p_proto::SYNC_PROTOCOL),
            request_response::ProtocolSupport::Outbound,
        )],
        cfg,
    );
    exchange_once(addr, behaviour, bytes, connect_timeout).await
}

/// False for an address on 0.0.0.0 or `::`, which no peer can dial.
pub fn is_dialable(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    !addr.iter().any(|p| match p {
        Protocol::Ip4(a) => a.is_unspecified(),
        Protocol::Ip6(a) => a.is_unspecified(),
        _ => false,
    })
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn a_peer_address_ends_with_one_peer_id() {
        let peer = PeerId::random();
        let base: Multiaddr = "/ip4/127.0.0.1/tcp/48285".parse().expect("valid");
        let once = peer_address(&base, peer);
        assert_eq!(once.to_string(), format!("{base}/p2p/{peer}"));
        // Already ending with the id, once or twice: still exactly once.
        assert_eq!(peer_address(&once, peer), once);
        let twice = once.clone().with(libp2p::multiaddr::Protocol::P2p(peer));
        assert_eq!(peer_address(&twice, peer), once);
        assert_eq!(transport_address(&twice), base);
        assert_eq!(split_peer(&twice), Some((peer, base.clone())));
        // Two different ids do not make one peer's address.
        let other = once.with(libp2p::multiaddr::Protocol::P2p(PeerId::random()));
        assert_eq!(split_peer(&other), None);
        assert_eq!(split_peer(&base), None);
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        let burst = (0..REQUEST_BURST * 2).filter(|_| b.take(t0)).count();
        assert_eq!(burst, REQUEST_BURST as usize);
        assert_eq!(b.strikes, REQUEST_BURST);
        // One second later, the sustained rate is available again.
        let t1 = t0 + Duration::from_secs(1);
        let more = (0..REQUEST_BURST).filter(|_| b.take(t1)).count();
        assert_eq!(more, REQUESTS_PER_SEC as usize);
    }

    #[test]
    fn strikes_decay_so_an_occasional_burst_is_never_banned() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        // Every minute, a burst of twice the bucket: 100 strikes each time.
        let mut t = t0;
        for _ in 0..60 {
            for _ in 0..REQUEST_BURST * 2 {
                b.take(t);
            }
            assert!(b.strikes < RATE_STRIKES_TO_BAN, "{}", b.strikes);
            t += Duration::from_secs(60);
        }
        // A flood within a few seconds still reaches the ban.
        let mut f = Bucket::new(t0);
        for i in 0..(REQUEST_BURST + RATE_STRIKES_TO_BAN + 10) {
            f.take(t0 + Duration::from_micros(u64::from(i)));
        }
        assert!(f.strikes >= RATE_STRIKES_TO_BAN, "{}", f.strikes);
    }
}
