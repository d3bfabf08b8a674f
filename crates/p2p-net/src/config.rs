//! What the host is started with, and the tunables of its connection policy.

use crate::gossip::GossipParams;
use libp2p::Multiaddr;
use std::path::PathBuf;
use std::time::Duration;

/// How long a connection may take to be set up (transport, Noise, Yamux).
/// Shorter than AutoNAT's 10 s wait for an answer, so that a dial-back to
/// an address behind a NAT that drops it is reported as failed in time
/// rather than left unanswered.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may take before it fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Capacity of the command and event channels.
pub(crate) const CHANNEL: usize = 1024;

/// Connection slots inbound peers cannot take, so this node can always dial
/// out to peers of its own choosing (eclipse resistance).
pub const OUTBOUND_RESERVE: u32 = 8;
/// Outbound peers this node keeps: peers it dialled itself, each from a
/// network group none of the others is in. Inbound peers do not count.
pub const OUTBOUND_TARGET: usize = 8;
/// Dials of this node's own choosing (from the address book) in flight at
/// once: a store of a thousand stale addresses is tried in batches.
pub const DIALS_IN_FLIGHT: usize = 8;
/// How long a dial of this node's choosing may take before it is given up.
pub const DIAL_DEADLINE: Duration = Duration::from_secs(5);
/// How long a connection with nothing to do is kept (a finished client's).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay without becoming a peer's (Kademlia's
/// lookups open such connections) before it may be closed to make room.
pub const UNCONFIRMED_FOR: Duration = Duration::from_secs(10);
/// How often Kademlia refreshes its routing table.
pub const KAD_REFRESH: Duration = Duration::from_secs(300);
/// Inbound connections beyond the peer slots, for clients that come, ask
/// and go (wallets, a node looking for peers): such a connection is not
/// made a peer, and is closed after [`SHORT_LIVED_FOR`].
pub const SHORT_LIVED_SLOTS: u32 = 16;
/// How long a connection in a short-lived slot is kept. It is not evicted
/// for a newcomer meanwhile.
pub const SHORT_LIVED_FOR: Duration = Duration::from_secs(20);
/// How long a new inbound connection is not evicted for another: time for
/// a wallet to ask and be answered, or a node to make its first request.
pub const GRACE: Duration = Duration::from_secs(2);
/// Inbound connections accepted past the slots, each of which at once
/// evicts another (see `peers::Policy::evict_inbound`) or is closed: the
/// newcomer must be let in before it can be compared with the others.
pub const EVICTION_HEADROOM: u32 = 4;
/// Other outbound peers that, once connected for [`BOOTSTRAP_RELEASE_AFTER`],
/// let this node close its connections to the bootstrap (`--dest`) peers:
/// a popular bootstrap node is not held by everyone forever. Inbound peers
/// never count, and at least [`MIN_OUTBOUND`] outbound peers stay.
pub const BOOTSTRAP_RELEASE_PEERS: usize = 6;
/// How long a bootstrap peer is kept once the node has other peers.
pub const BOOTSTRAP_RELEASE_AFTER: Duration = Duration::from_secs(60);
/// Outbound connections never given up by the bootstrap release.
pub const MIN_OUTBOUND: usize = 2;
/// The first wait before a bootstrap (`--dest`) peer that could not be
/// reached is dialled again; each further attempt waits twice as long,
/// up to [`REDIAL_CHOSEN_MAX`]. Nodes may be started in any order.
pub const REDIAL_CHOSEN_FIRST: Duration = Duration::from_secs(2);
/// The longest wait between attempts to reach a bootstrap peer.
pub const REDIAL_CHOSEN_MAX: Duration = Duration::from_secs(60);
/// Inbound connections from one IPv4 address or IPv6 /64 (loopback
/// exempt, so local multi-node set-ups and wallets keep working).
pub const MAX_INBOUND_PER_IP: usize = 4;
/// Listen addresses taken from one peer (identify, mDNS, Kademlia).
pub const MAX_ADDRS_PER_PEER: usize = 8;
/// How often a peer's identify may change what this node knows of its
/// addresses: pushes in between are ignored.
pub const ADDRESS_UPDATE_EVERY: Duration = Duration::from_secs(60);

/// AutoNAT tests that must fail, with none confirmed, before the node
/// counts itself private and reserves a relay slot. AutoNAT tests each
/// address a peer observed once, so behind a NAT one failure is usually
/// all there is; a node found public later keeps its reservation, harmless.
pub const PRIVATE_AFTER_FAILURES: u32 = 1;
/// How long a direct connection to a peer must last before its relayed
/// circuits are closed (a hole punch closes them at once): AutoNAT's
/// dial-backs are direct connections that last a moment.
pub const DIRECT_SETTLES_IN: Duration = Duration::from_secs(5);
/// How often a node that is not reachable asks a relay for a reservation
/// while it holds none.
pub const RESERVE_EVERY: Duration = Duration::from_secs(10);
/// Hole punches tried with one peer before its relayed connection is kept
/// as it is.
pub const PUNCH_TRIES: u32 = 3;
/// Relayed connections to this node through one relay; more are closed.
pub const MAX_CIRCUITS_PER_RELAY: usize = 16;
/// Relay service (on every node; of use on those peers can dial): most
/// reservations held for others, and per peer.
pub const RELAY_MAX_RESERVATIONS: usize = 64;
/// See [`RELAY_MAX_RESERVATIONS`].
pub const RELAY_MAX_RESERVATIONS_PER_PEER: usize = 1;
/// How long a reservation lasts before the node behind the NAT renews it.
pub const RELAY_RESERVATION_FOR: Duration = Duration::from_secs(30 * 60);
/// Circuits relayed at once, and per peer (either end).
pub const RELAY_MAX_CIRCUITS: usize = 64;
/// See [`RELAY_MAX_CIRCUITS`].
pub const RELAY_MAX_CIRCUITS_PER_PEER: usize = 4;
/// One circuit's life: long enough for the handshake, gossip and a hole
/// punch; sync never runs over a circuit.
pub const RELAY_CIRCUIT_FOR: Duration = Duration::from_secs(10 * 60);
/// One circuit's bytes, both ways: a few blocks' gossip.
pub const RELAY_CIRCUIT_BYTES: u64 = 4 << 20;

/// How this node is reached from outside its network.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    /// Addresses this node is known to be reachable at (a public address,
    /// a forwarded port): announced at once, without AutoNAT's test.
    pub external: Vec<Multiaddr>,
    /// Ask the LAN's gateway for a port mapping with UPnP.
    pub upnp: bool,
}

/// What the host is started with.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Directory for the identity key, the peer store and the anchors
    /// (never the chain directory). Created with mode 0700.
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
    /// External addresses and UPnP.
    pub reach: Reach,
    /// For simulations: the link model that delays what this host writes
    /// over `/memory/` addresses (`None`: delivered at once).
    pub link: Option<crate::link::SimLink>,
}

/// Inbound connections that may be peers: the rest of the slots are for
/// this node's own dials (eclipse resistance).
pub(crate) fn inbound_peer_slots(max: u32) -> u32 {
    max.saturating_sub(OUTBOUND_RESERVE).max(1)
}
