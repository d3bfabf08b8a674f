//! The node: handshakes, sync, relay, inbound requests and minting, over
//! any network that implements [`Network`].
//!
//! The chain state is the chain actor's ([`crate::chain`]); this module
//! decides what to ask of peers and what to do with what they send, and
//! carries out the actor's verdicts. It knows nothing of libp2p: the
//! network layer turns its events into [`Inbound`] and implements
//! [`Network`] for its handle. What it keeps itself is small bookkeeping
//! (peers' statuses, whether a sync or a search runs, slow peers) under a
//! mutex that is never held across an await or any I/O.
//!
//! One job per module: `peers` (handshake, status poll, genesis, what is
//! remembered of each peer), `sync` (headers-first sync and the download
//! window), `relay` (gossip in arrival order and the actor's verdicts),
//! `inbound` (answers to requests) and `mining`.

mod compact;
mod download;
mod inbound;
mod mining;
mod peers;
mod relay;
mod sync;

pub use inbound::Submitted;
pub use sync::{BUFFER_BYTES, NO_PROGRESS, PER_PEER, STALL_TIMEOUT, WINDOW};

use crate::chain::{ChainHandle, Verdict};
use chain_core::{Block, BlockHash, PubkeyHash};
use p2p_proto::{Announcement, Request, Response, Status};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a peer that sent invalid data is refused.
pub const BAN: Duration = Duration::from_secs(600);
/// Hashes [`Node::blocks_in_hand`] keeps for a receiver that falls behind.
pub const IN_HAND_QUEUE: usize = 64;
/// Gossip messages waiting for the gossip task.
const GOSSIP_QUEUE: usize = 256;
/// Encoded bytes of gossip waiting for the gossip task: with the count
/// above, what a flood can make the node hold before the loop waits.
pub const GOSSIP_BYTES: usize = 32 * 1024 * 1024;
/// Bytes that answers to peers' requests may hold at once (each request
/// holds the most its answer can take). A request that finds the budget
/// spent is answered at once with an error: a flood of requests costs the
/// node a bounded amount of memory and never holds up the network loop.
pub const INBOUND_BYTES: usize = 64 * 1024 * 1024;
/// How long a peer has to answer a sync request before the blocks are asked
/// of another peer and it is marked slow.
pub const DELIVERY_DEADLINE: Duration = Duration::from_secs(8);
/// How long a slow peer is left out of syncs.
pub const SLOW_FOR: Duration = Duration::from_secs(60);
/// How often every peer's status is asked.
pub const STATUS_POLL: Duration = Duration::from_secs(3);
/// How long a peer whose headers did not show the work its status claimed
/// is not synced from, whatever it claims meanwhile.
pub const DISPROVED_FOR: Duration = Duration::from_secs(10 * 60);
/// Most peers remembered as disproved (the one whose time ends first is
/// forgotten first).
pub const MAX_DISPROVED: usize = 1_024;
/// A minter waits for a running sync only while the sync progressed (a
/// header round that added headers, or a block connected) within this
/// long; a sync that does not progress never holds up minting.
pub const MINT_PATIENCE: Duration = Duration::from_secs(5);

/// What the node needs of the network.
pub trait Network: Clone + Send + Sync + 'static {
    /// A peer's identity.
    type Peer: Copy + Eq + Hash + std::fmt::Display + std::fmt::Debug + Send + Sync + 'static;
    /// Names a gossip message awaiting its verdict.
    type GossipId: Send + 'static;
    /// Where the answer to an inbound request goes.
    type Reply: Send + 'static;
    /// Sends a request and waits for its answer.
    fn request(
        &self,
        peer: Self::Peer,
        request: Request,
    ) -> impl Future<Output = Result<Response, String>> + Send;
    /// Answers an inbound request.
    fn respond(&self, reply: Self::Reply, response: Response) -> impl Future<Output = ()> + Send;
    /// Publishes on gossip.
    fn publish(&self, announcement: Announcement) -> impl Future<Output = ()> + Send;
    /// Reports a gossip message's verdict (forward, drop, punish).
    fn validate(&self, id: Self::GossipId, verdict: Verdict) -> impl Future<Output = ()> + Send;
    /// Disconnects and refuses `peer` for `period`.
    fn ban(&self, peer: Self::Peer, period: Duration) -> impl Future<Output = ()> + Send;
}

/// What the network reports to the node.
pub enum Inbound<N: Network> {
    /// A peer connected (first connection).
    Connected {
        /// Who.
        peer: N::Peer,
        /// Its address, for the log.
        address: String,
    },
    /// A peer's last connection closed.
    Disconnected {
        /// Who.
        peer: N::Peer,
    },
    /// A peer asks something.
    Request {
        /// Who.
        peer: N::Peer,
        /// What.
        request: Request,
        /// Where the answer goes.
        reply: N::Reply,
    },
    /// A gossip message, awaiting its verdict.
    Announcement {
        /// The peer that relayed it.
        peer: N::Peer,
        /// Its id for the verdict.
        id: N::GossipId,
        /// The block or transaction.
        announcement: Announcement,
        /// Its encoded size, for the gossip byte budget.
        size: usize,
    },
    /// The network caught a peer misbehaving (bad frames, rate abuse).
    Misbehaved {
        /// Who.
        peer: N::Peer,
        /// What it did.
        reason: String,
    },
}

/// Where a sync stands, for a progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncProgress {
    /// The local tip's height.
    pub height: u32,
    /// The sync peer's claimed height.
    pub target: u32,
    /// Whether the sync ended.
    pub done: bool,
}

/// A gossip message waiting for the gossip task, with the byte budget it holds.
type Gossip<N> = (
    <N as Network>::Peer,
    <N as Network>::GossipId,
    Announcement,
    tokio::sync::OwnedSemaphorePermit,
);

/// A sync progress callback.
pub type SyncProgressFn = Arc<dyn Fn(SyncProgress) + Send + Sync>;

/// How a node is set up.
pub struct NodeConfig<P> {
    /// The only peers a genesis is taken from (the --dest peers).
    pub genesis_peers: HashSet<P>,
    /// The genesis they must serve, if named.
    pub expected_genesis: Option<BlockHash>,
    /// Minting.
    pub minting: Minting,
    /// The agent string sent in `Status`.
    pub agent: String,
    /// Called as a sync moves.
    pub progress: SyncProgressFn,
    /// Announce minted blocks compact (`true`, the default) or in full.
    pub compact_blocks: bool,
}

impl<N: Network> Node<N> {
    /// A node over `net` and the chain actor `chain`. Returns it, and the
    /// receiver of finished searches (`Some(block)` found, `None` cancelled)
    /// that the caller hands back through [`Node::on_mined`].
    pub fn new(
        chain: ChainHandle<N::Peer>,
        net: N,
        cfg: NodeConfig<N::Peer>,
    ) -> (Arc<Self>, mpsc::Receiver<Option<Block>>) {
        let (mined_tx, mined_rx) = mpsc::channel(4);
        let (gossip, gossip_rx) = mpsc::channel(GOSSIP_QUEUE);
        let gossip_bytes = Arc::new(tokio::sync::Semaphore::new(GOSSIP_BYTES));
        let inbound_bytes = Arc::new(tokio::sync::Semaphore::new(INBOUND_BYTES));
        let node = Arc::new(Node {
            chain,
            net,
            gossip,
            gossip_bytes,
            compact_fetches: Arc::new(tokio::sync::Semaphore::new(compact::COMPACT_FETCHES)),
            rebuilt: Mutex::new(std::collections::VecDeque::new()),
            in_hand: tokio::sync::broadcast::channel(IN_HAND_QUEUE).0,
            inbound_bytes,
            local: Mutex::new(Local {
                peers: HashMap::new(),
                genesis_peers: cfg.genesis_peers,
                expected_genesis: cfg.expected_genesis,
                mining: None,
                syncing: false,
                sync_progress_at: None,
                slow: HashMap::new(),
                disproved: HashMap::new(),
                last_sync: None,
            }),
            minting: cfg.minting,
            mined_tx,
            agent: cfg.agent,
            progress: cfg.progress,
            compact_blocks: cfg.compact_blocks,
        });
        tokio::spawn(node.clone().gossip_worker(gossip_rx));
        (node, mined_rx)
    }

    /// The chain actor's handle.
    pub fn chain(&self) -> &ChainHandle<N::Peer> {
        &self.chain
    }

    /// The hash of each gossiped block once this node has it whole, before
    /// it is checked against the chain and connected: a compact block
    /// rebuilt (from the mempool, with its missing transactions, or asked
    /// for in full), or a full block decoded. What the network took to
    /// deliver a block, apart from what connecting it took here. A receiver
    /// that falls more than [`IN_HAND_QUEUE`] behind misses some.
    pub fn blocks_in_hand(&self) -> tokio::sync::broadcast::Receiver<BlockHash> {
        self.in_hand.subscribe()
    }

    /// The agent string this node sends in `Status`.
    pub fn agent(&self) -> &str {
        &self.agent
    }

    /// Where the last sync stands (`None`: none has run).
    pub fn sync_progress(&self) -> Option<SyncProgress> {
        self.local().last_sync
    }

    /// Connected peers, each with the chain its last status claimed
    /// (height, tip, agent), if any yet.
    pub fn peer_chains(&self) -> Vec<(N::Peer, Option<PeerChain>)> {
        self.local()
            .peers
            .iter()
            .map(|(p, s)| {
                let chain = s.as_ref().map(|s| PeerChain {
                    height: s.best_height,
                    tip: s.best_hash,
                    agent: s.agent.clone(),
                });
                (*p, chain)
            })
            .collect()
    }

    /// Tells the progress callback, the metrics and the API where a sync stands.
    fn report_sync(&self, p: SyncProgress) {
        self.local().last_sync = Some(p);
        self.chain.metrics().on_sync(p.height, p.target);
        (self.progress)(p);
    }

    /// The periodic tick: asks every peer's status, and mines if ready.
    pub async fn tick(self: Arc<Self>) {
        self.clone().poll_peers();
        self.maybe_mine().await;
    }

    /// Stops a running search and closes the chain.
    pub async fn shutdown(&self) {
        if let Some(c) = self.local().mining.take() {
            c.store(true, Ordering::Relaxed);
        }
        self.chain.close().await;
    }
}

/// The network side's bookkeeping. Never held across an await.
struct Local<P> {
    /// Connected peers and their last status.
    peers: HashMap<P, Option<Status>>,
    /// The only peers a genesis is taken from: the --dest peers.
    genesis_peers: HashSet<P>,
    /// The genesis hash they must serve, when --genesis is given.
    expected_genesis: Option<BlockHash>,
    /// The running search's cancel flag.
    mining: Option<Arc<AtomicBool>>,
    syncing: bool,
    /// When the running sync last progressed.
    sync_progress_at: Option<Instant>,
    /// Peers that missed a delivery deadline, until when they are left out.
    slow: HashMap<P, Instant>,
    /// Peers whose headers did not show the work their status claimed,
    /// until when they are not synced from (a new claimed tip changes
    /// nothing; a reconnection neither).
    disproved: HashMap<P, Instant>,
    /// The last sync's progress, for the API.
    last_sync: Option<SyncProgress>,
}

impl<P> Local<P> {
    /// Whether a running sync holds up minting: only while it progressed
    /// within [`MINT_PATIENCE`].
    fn sync_holds_minting(&self) -> bool {
        self.syncing
            && self
                .sync_progress_at
                .is_some_and(|t| t.elapsed() < MINT_PATIENCE)
    }
}

/// The chain a peer's last status claimed: claims, not proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerChain {
    /// Its best height.
    pub height: u32,
    /// Its best tip.
    pub tip: BlockHash,
    /// Its agent string.
    pub agent: String,
}

/// What --minter and its options ask for.
#[derive(Clone, Copy, Debug)]
pub struct Minting {
    /// Who the coinbase pays; `None`: this node does not mint.
    pub to: Option<PubkeyHash>,
    /// Mempool size that starts a search.
    pub min_txs: usize,
    /// Search threads.
    pub threads: usize,
}

/// The node: what it does with peers, blocks, transactions and requests.
pub struct Node<N: Network> {
    chain: ChainHandle<N::Peer>,
    net: N,
    gossip: mpsc::Sender<Gossip<N>>,
    gossip_bytes: Arc<tokio::sync::Semaphore>,
    compact_fetches: Arc<tokio::sync::Semaphore>,
    /// The last blocks rebuilt from compact blocks (`node::compact`).
    rebuilt: Mutex<std::collections::VecDeque<Arc<Block>>>,
    /// Gossiped blocks this node has whole, before they are connected.
    in_hand: tokio::sync::broadcast::Sender<BlockHash>,
    inbound_bytes: Arc<tokio::sync::Semaphore>,
    local: Mutex<Local<N::Peer>>,
    minting: Minting,
    mined_tx: mpsc::Sender<Option<Block>>,
    agent: String,
    progress: SyncProgressFn,
    compact_blocks: bool,
}

impl<N: Network> Node<N> {
    fn local(&self) -> std::sync::MutexGuard<'_, Local<N::Peer>> {
        // A panic while holding the lock would be a bug; the state is still usable for shutdown.
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ban(&self, peer: N::Peer, reason: crate::BanReason) {
        self.chain.metrics().on_ban(reason);
        self.chain.forget_peer(peer).await;
        self.net.ban(peer, BAN).await;
    }

    /// Handles what the network reports. Slow work (answers, gossip) goes
    /// to tasks, so the caller's loop never waits on the chain.
    pub async fn on_event(self: Arc<Self>, ev: Inbound<N>) {
        match ev {
            Inbound::Connected { peer, address } => {
                tracing::info!(%peer, %address, "peer connected");
                self.local().peers.insert(peer, None);
                tokio::spawn(self.clone().handshake(peer));
            }
            Inbound::Disconnected { peer } => {
                tracing::info!(%peer, "peer disconnected");
                self.local().peers.remove(&peer);
            }
            Inbound::Request {
                peer,
                request,
                reply,
            } => {
                // Answered in a task: a slow chain answer never holds up the
                // loop. The task holds the most its answer can take.
                let cost = u32::try_from(inbound::answer_cost(&request)).unwrap_or(u32::MAX);
                let Ok(held) = self.inbound_bytes.clone().try_acquire_many_owned(cost) else {
                    tracing::debug!(%peer, "busy: refusing a request");
                    let busy = Response::Error {
                        reason: "busy; ask again later".into(),
                    };
                    self.net.respond(reply, busy).await;
                    return;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    let response = me.answer(peer, request).await;
                    me.net.respond(reply, response).await;
                    drop(held);
                });
            }
            Inbound::Announcement {
                peer,
                id,
                announcement,
                size,
            } => {
                // In arrival order (a payment's child must not overtake it),
                // on the gossip task; the loop waits only when it is full.
                // Its bytes are held until it is handled: the queue is bounded
                // in bytes as well as in count.
                let permits = u32::try_from(size.clamp(1, GOSSIP_BYTES)).unwrap_or(u32::MAX);
                let Ok(held) = self.gossip_bytes.clone().acquire_many_owned(permits).await else {
                    return;
                };
                let _ = self.gossip.send((peer, id, announcement, held)).await;
            }
            Inbound::Misbehaved { peer, reason } => {
                tracing::warn!(%peer, "{reason}; banning the peer");
                self.ban(peer, crate::BanReason::Protocol).await;
            }
        }
    }
}
