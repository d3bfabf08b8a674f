//! The chain actor: the one owner of the chain state.
//!
//! The store, the mempool and the orphan pool belong to one thread. The rest
//! of the node sends it commands over a bounded channel (so a flood of work
//! waits instead of piling up) and reads the tip from a watch channel
//! (Zebra's block writer and `ChainTipSender`). Every RocksDB call and every
//! signature check happens on that thread, never on an async worker, and no
//! lock is shared: a caller that needs the chain awaits the actor's answer.
//!
//! It is generic over the network's peer id `P`, so it knows nothing of
//! libp2p; what it decides about a peer (forward, drop, ban, ask for its
//! status) comes back in the outcome for the network layer to carry out.

use crate::metrics::ChainMetrics;
use crate::orphans::{check_orphan, OrphanPool};
use crate::reads::{PoolCoins, ReadError, ReadRequest, ReadResponse, SpendableCoin};
use chain_core::block::{Block, BlockHeader};
use chain_core::mempool::Source;
use chain_core::pow::Work;
use chain_core::{
    BlockError, BlockHash, Mempool, MempoolConfig, MempoolError, PubkeyHash, Transaction,
};
use chain_core::{ReceivedBlock, UnminedTx};
use chain_store::StoreReader;
use chain_store::{unix_now, Accepted, ChainStore, HeaderBranch, StoreError, Tip};
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

mod actor;
mod compact;
mod handle;
#[cfg(test)]
mod tests;

use actor::Actor;
pub use compact::Prepared;
pub use handle::ChainHandle;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

/// Commands waiting for the actor; senders wait when it is full.
pub const COMMAND_QUEUE: usize = 64;
/// Peers whose header branches are held at once; a new one replaces the
/// oldest. Syncs run one at a time, so this is slack, not a working limit.
pub const MAX_BRANCHES: usize = 4;

/// What to do with a gossiped block or transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fully validated (a block connected to the best chain): forward it.
    Accept,
    /// Invalid, and the sender should have known: drop it and punish.
    Reject,
    /// Neither (known, side branch, orphan, race): drop it quietly.
    Ignore,
}

/// The chain as the rest of the node sees it, published on every change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainView {
    /// The genesis hash.
    pub genesis: BlockHash,
    /// The best tip.
    pub tip: Tip,
    /// Transactions in the mempool.
    pub mempool_len: usize,
    /// Their encoded bytes.
    pub mempool_bytes: usize,
}

/// Events kept for a watcher that falls behind; one further behind is
/// told how many it missed ([`broadcast::error::RecvError::Lagged`]).
pub const EVENT_BACKLOG: usize = 4096;

/// Something that happened to the chain, for watchers (an event stream, a
/// simulation). Sent once it is durable: a tip after its blocks' writes
/// have landed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainEvent {
    /// The best tip moved.
    Tip {
        /// The new tip.
        tip: Tip,
        /// Blocks that left the best chain on the way: a reorganisation
        /// of that depth when above zero.
        disconnected: usize,
    },
    /// A transaction, relayed or submitted, entered the mempool
    /// (transactions a reorganisation returns to it are not reported).
    TxAccepted(chain_core::Txid),
}

/// What became of a block.
#[derive(Clone, Debug)]
pub struct BlockOutcome<P> {
    /// For gossip validation.
    pub verdict: Verdict,
    /// False when the block itself was invalid.
    pub valid: bool,
    /// The block's body did not match its header (or was malformed): the
    /// header may still be good, and another peer's copy may be.
    pub body_fault: bool,
    /// The peer to punish, if any.
    pub offender: Option<P>,
    /// A block this node produced that is now connected: announce it.
    pub publish: Option<Minted>,
    /// A peer whose status should be asked (it sent an orphan).
    pub ask_status: Option<P>,
    /// Whether the best tip moved.
    pub tip_changed: bool,
    /// Whether the block is now stored (it was not before).
    pub stored: bool,
}

impl<P> BlockOutcome<P> {
    /// Nothing happened: dropped quietly, no one to punish.
    fn nothing() -> Self {
        BlockOutcome {
            verdict: Verdict::Ignore,
            valid: true,
            body_fault: false,
            offender: None,
            publish: None,
            ask_status: None,
            tip_changed: false,
            stored: false,
        }
    }
}

/// A block this node produced, connected, as stored: what announcing and
/// logging it need, with nothing encoded or hashed again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Minted {
    /// Its hash.
    pub hash: BlockHash,
    /// Its height.
    pub height: u32,
    /// Its transactions, the coinbase included.
    pub txs: usize,
    /// The bytes it was stored from.
    pub bytes: Vec<u8>,
}

/// What a batch of headers added to a peer's branch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchNews {
    /// Hashes of the headers added, oldest first: bodies to fetch.
    pub added: Vec<BlockHash>,
    /// Whether the branch started again from another stored block; `added`
    /// then holds all of it.
    pub restarted: bool,
    /// Work of the chain ending at the branch's last header.
    pub work: Work,
    /// Height of the branch's last header.
    pub height: u32,
    /// Headers of this batch new to the node (not already in the branch
    /// or the store): what counts as progress.
    pub new: usize,
}

/// Why a batch of headers was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderFault {
    /// Whether the peer that sent them is to blame.
    pub sender_fault: bool,
    /// What was wrong, for the log.
    pub reason: String,
}

/// What became of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// For gossip validation.
    pub verdict: Verdict,
    /// The refusal, if it was refused.
    pub refused: Option<String>,
}

enum Command<P> {
    Block(
        ReceivedBlock,
        Option<P>,
        bool,
        oneshot::Sender<BlockOutcome<P>>,
    ),
    Headers(
        P,
        Vec<BlockHeader>,
        oneshot::Sender<Result<BranchNews, HeaderFault>>,
    ),
    BranchLocator(P, oneshot::Sender<Option<Vec<BlockHash>>>),
    DropBranch(P),
    Tx(UnminedTx, Option<P>, oneshot::Sender<TxOutcome>),
    PoolCoins(PubkeyHash, usize, oneshot::Sender<PoolCoins>),
    CreateFromGenesis(Block, oneshot::Sender<Result<bool, String>>),
    Template(PubkeyHash, usize, oneshot::Sender<Option<Block>>),
    Compact(Box<p2p_proto::CompactBlock>, oneshot::Sender<Prepared>),
    ForgetPeer(P),
    Pool(
        crate::pool_reads::PoolRequest,
        oneshot::Sender<crate::pool_reads::PoolResponse>,
    ),
    Close(oneshot::Sender<()>),
}

/// How the chain actor keeps its mempool.
#[derive(Clone, Debug, Default)]
pub struct PoolSettings {
    /// The policy's limits.
    pub config: MempoolConfig,
    /// Where the pool is saved at a clean shutdown and read at start
    /// (`None`: it is not kept).
    pub file: Option<PathBuf>,
}

/// Starts the actor on its own thread. `store` is the chain, or `None` until
/// a genesis is taken from a peer into `chain_dir`.
pub fn spawn<P>(store: Option<ChainStore>, chain_dir: PathBuf, pool: PoolSettings) -> ChainHandle<P>
where
    P: Copy + Eq + Hash + std::fmt::Display + Send + 'static,
{
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    let (view_tx, view) = watch::channel(None);
    let (events, _) = broadcast::channel(EVENT_BACKLOG);
    let metrics = Arc::new(ChainMetrics::default());
    let reader = Arc::new(OnceLock::new());
    if let Some(s) = &store {
        let _ = reader.set(s.reader());
    }
    let mut actor = Actor {
        metrics: metrics.clone(),
        reader: reader.clone(),
        events: events.clone(),
        store,
        chain_dir,
        mempool: Mempool::new(pool.config),
        pool_file: pool.file,
        orphans: OrphanPool::default(),
        branches: Vec::new(),
        view: view_tx,
        held: Vec::new(),
        held_lines: Vec::new(),
        sources: std::hash::RandomState::new(),
    };
    actor.load_pool();
    actor.publish_view();
    std::thread::Builder::new()
        .name("chain".into())
        .spawn(move || actor.run(rx))
        .expect("the chain thread starts");
    ChainHandle {
        tx,
        view,
        events,
        metrics,
        reader,
        reads: Arc::new(
            crate::read_pool::ReadPool::start(
                crate::read_pool::READ_THREADS,
                crate::read_pool::READ_QUEUE,
                crate::read_pool::READ_BYTES_PER_SEC,
            )
            .expect("the read threads start"),
        ),
    }
}
