//! The node's behaviour, written against chain-core and kept free of any
//! network library: only p2p-net knows libp2p. Peers are named by whatever
//! identifier type the network layer uses (`P`), so these parts are tested
//! without a network.

pub mod chain;
pub mod metrics;
pub mod node;
pub mod orphans;
pub mod pool_file;
pub mod pool_reads;
pub mod priority;
pub mod read_pool;
pub mod reads;

pub use chain::{
    BlockOutcome, ChainEvent, ChainHandle, ChainView, Minted, PoolSettings, TxOutcome, Verdict,
};
pub use metrics::{BanReason, ChainMetrics};
pub use node::{Inbound, Minting, Network, Node, NodeConfig, PeerChain, Submitted, SyncProgress};
pub use orphans::{OrphanError, OrphanPool};
