//! The libp2p host: TCP with Noise and Yamux, and QUIC; relay circuits,
//! hole punching (DCUtR), AutoNAT and optionally UPnP for peers behind NATs; identify and ping;
//! request-response for sync, submission and wallet queries; gossipsub for
//! announcements; Kademlia and mDNS for discovery; a peer table with the
//! connection policy of a node among strangers; a ban list; a persistent
//! identity, peer store and anchors.
//!
//! One task owns the `Swarm` ([`host`]). The rest of the program talks to
//! it through a cloneable [`NetHandle`] (bounded command channel, answers
//! on oneshot channels) and reads [`NetEvent`]s from a bounded channel; see
//! [`events`] for what happens when that channel is full. This crate knows
//! nothing of chain rules.
//!
//! The files, one job each:
//! - [`config`]: [`NetConfig`] and the tunables;
//! - [`handle`]: [`NetHandle`], its commands, events and errors;
//! - `behaviour`: the composed libp2p behaviour and the swarm;
//! - [`host`]: the event loop, which dispatches;
//! - [`peers`]: the peer table and the connection policy (pure);
//! - [`discovery`]: the address book and the bootstrap redials;
//! - [`nat`]: reachability, the relay reservation, relayed connections;
//!   `autonat_probe`: AutoNAT tests only addresses on a listening port;
//!   `relay_service`: no commands to relayed connections' handlers; both
//!   are filters over libp2p's behaviours (`filtered`);
//! - [`rate_limit`], [`addr`], [`persist`], [`gossip`];
//! - [`client`]: the one-shot client and its session.

pub mod addr;
mod autonat_probe;
mod behaviour;
pub mod client;
mod codec;
pub mod config;
pub mod discovery;
mod events;
mod filtered;
pub mod gossip;
pub mod handle;
pub mod host;
#[cfg(feature = "test-utils")]
pub mod hostile;
pub mod link;
pub mod nat;
pub mod peers;
pub mod persist;
pub mod rate_limit;
mod relay_service;

pub use addr::{is_dialable, peer_address, split_peer};
#[cfg(feature = "test-utils")]
pub use client::send_raw;
pub use client::{request_once, Session};
pub use config::*;
pub use gossip::GossipParams;
pub use handle::{
    GossipId, NetError, NetEvent, NetHandle, NetInfo, PeerDetail, ReplyHandle, Verdict,
};
pub use host::start;
pub use libp2p::{Multiaddr, PeerId};
pub use p2p_proto::{Announcement, Request, Response};
pub use rate_limit::{
    RATE_STATE_KEPT, RATE_STRIKES_TO_BAN, REQUESTS_PER_SEC, REQUEST_BURST, STRIKE_DECAY_PER_SEC,
};
