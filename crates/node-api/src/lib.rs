//! The node's HTTP face: a REST API in JSON on Esplora's paths, a stream
//! of server-sent events, Prometheus metrics on `/metrics` and a block
//! explorer page at `/`, all read from the node engine ([`chain_node`]).
//!
//! Reads of blocks, transactions and addresses go through the store's
//! read-only reader ([`chain_store::StoreReader`]), so they never queue
//! behind the chain actor's work; the mempool is read on the actor's
//! thread in short, bounded reads. The server runs on its own small tokio
//! runtime at a lower scheduling priority than the node, so a flood of
//! requests takes what the node leaves over rather than the node's time.
//! Nothing it serves can spend coins: `POST /api/tx` relays a transaction
//! already signed, as a peer's `SubmitTx` does.
//!
//! It knows nothing of libp2p: the network's view comes through
//! [`NetView`], which the node host implements.

mod cache;
mod error;
mod explorer;
mod guard;
mod health;
mod json;
mod metrics;
mod routes;
mod server;

pub use json::{BanSummary, NetSummary, PeerSummary};
pub use server::{start, ApiServer, ApiSettings};

use std::future::Future;

/// What the network layer tells the API: its peers and bans, and its own
/// metrics. Implemented over the libp2p host by the node host.
pub trait NetView: Send + Sync + 'static {
    /// The host's id, addresses, peers and bans (`None`: it stopped).
    fn info(&self) -> impl Future<Output = Option<NetSummary>> + Send;
    /// The network's metrics in Prometheus text format, without the
    /// closing `# EOF` line (`None`: it stopped).
    fn metrics(&self) -> impl Future<Output = Option<String>> + Send;
}
