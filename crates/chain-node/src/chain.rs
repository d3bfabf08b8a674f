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
use chain_core::block::{Block, BlockHeader};
use chain_core::mempool::Source;
use chain_core::pow::Work;
use chain_core::{
    BlockError, BlockHash, Mempool, MempoolConfig, MempoolError, PubkeyHash, Transaction,
};
use chain_store::StoreReader;
use chain_store::{unix_now, Accepted, ChainStore, HeaderBranch, StoreError, Tip};
use p2p_proto::{Request, Response, UtxoEntry};
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
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
    pub publish: Option<Block>,
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
    Block(Block, Option<P>, bool, oneshot::Sender<BlockOutcome<P>>),
    Headers(
        P,
        Vec<BlockHeader>,
        oneshot::Sender<Result<BranchNews, HeaderFault>>,
    ),
    BranchLocator(P, oneshot::Sender<Option<Vec<BlockHash>>>),
    DropBranch(P),
    Tx(Transaction, Option<P>, oneshot::Sender<TxOutcome>),
    Answer(Request, oneshot::Sender<Response>),
    PoolCoins(PubkeyHash, oneshot::Sender<crate::serve::PoolCoins>),
    CreateFromGenesis(Block, oneshot::Sender<Result<bool, String>>),
    Template(PubkeyHash, usize, oneshot::Sender<Option<Block>>),
    ForgetPeer(P),
    Pool(
        crate::pool_reads::PoolRequest,
        oneshot::Sender<crate::pool_reads::PoolResponse>,
    ),
    Close(oneshot::Sender<()>),
}

/// A cloneable handle to the chain actor.
pub struct ChainHandle<P> {
    tx: mpsc::Sender<Command<P>>,
    view: watch::Receiver<Option<ChainView>>,
    events: broadcast::Sender<ChainEvent>,
    metrics: Arc<ChainMetrics>,
    reader: Arc<OnceLock<StoreReader>>,
}

impl<P> Clone for ChainHandle<P> {
    fn clone(&self) -> Self {
        ChainHandle {
            tx: self.tx.clone(),
            view: self.view.clone(),
            events: self.events.clone(),
            metrics: self.metrics.clone(),
            reader: self.reader.clone(),
        }
    }
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
    }
}

impl<P: Copy + Send + 'static> ChainHandle<P> {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command<P>) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        rx.await.ok()
    }

    /// The chain as last published (`None`: no chain yet).
    pub fn view(&self) -> Option<ChainView> {
        *self.view.borrow()
    }

    /// A receiver of every change of the view.
    pub fn subscribe(&self) -> watch::Receiver<Option<ChainView>> {
        self.view.clone()
    }

    /// The chain's metrics.
    pub fn metrics(&self) -> &ChainMetrics {
        &self.metrics
    }

    /// A reader of the stored chain for other threads, once there is a
    /// chain: blocks, transactions and addresses are read through it
    /// without queueing behind the actor's work.
    pub fn reader(&self) -> Option<StoreReader> {
        self.reader.get().cloned()
    }

    /// A read of the mempool, answered by the chain actor within the
    /// bound each read has ([`crate::pool_reads`]); `None` when the node
    /// is stopping.
    pub async fn pool(
        &self,
        request: crate::pool_reads::PoolRequest,
    ) -> Option<crate::pool_reads::PoolResponse> {
        self.ask(|r| Command::Pool(request, r)).await
    }

    /// A receiver of the chain's events from now on.
    pub fn events(&self) -> broadcast::Receiver<ChainEvent> {
        self.events.subscribe()
    }

    /// Offers a block from `from` (`None`: this node mined it) that nobody
    /// asked for: on a branch with no more work than the tip it is not stored.
    pub async fn accept_block(&self, block: Block, from: Option<P>) -> BlockOutcome<P> {
        self.ask(|r| Command::Block(block, from, false, r))
            .await
            .unwrap_or_else(BlockOutcome::nothing)
    }

    /// Offers a block this node asked `from` for, from a header branch with
    /// more work than the tip: stored even while its own branch has less.
    pub async fn accept_requested_block(&self, block: Block, from: P) -> BlockOutcome<P> {
        self.submit_requested_block(block, from).await.await
    }

    /// Like [`ChainHandle::accept_requested_block`], in two steps: this
    /// hands the block to the chain actor, in order with every block handed
    /// before it, and returns the outcome to wait for. A caller can so hand
    /// the next block over while this one is connected; the actor writes a
    /// block behind while it checks the next one, and answers only once a
    /// block's write has landed.
    pub async fn submit_requested_block(
        &self,
        block: Block,
        from: P,
    ) -> impl std::future::Future<Output = BlockOutcome<P>> + Send + 'static {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .send(Command::Block(block, Some(from), true, reply))
            .await
            .is_ok();
        async move {
            match (sent, rx.await) {
                (true, Ok(out)) => out,
                _ => BlockOutcome::nothing(),
            }
        }
    }

    /// Checks headers `peer` sent and adds them to its branch.
    pub async fn add_headers(
        &self,
        peer: P,
        headers: Vec<BlockHeader>,
    ) -> Result<BranchNews, HeaderFault> {
        self.ask(|r| Command::Headers(peer, headers, r))
            .await
            .unwrap_or_else(|| {
                Err(HeaderFault {
                    sender_fault: false,
                    reason: "the node is stopping".into(),
                })
            })
    }

    /// The locator to ask `peer` for headers with: its branch's last header
    /// (or its fork point) first, when there is a branch, then the best
    /// chain's locator.
    pub async fn branch_locator(&self, peer: P) -> Option<Vec<BlockHash>> {
        self.ask(|r| Command::BranchLocator(peer, r))
            .await
            .flatten()
    }

    /// Forgets `peer`'s header branch.
    pub async fn drop_branch(&self, peer: P) {
        let _ = self.tx.send(Command::DropBranch(peer)).await;
    }

    /// Offers a transaction to the mempool, from `from` (`None`: this
    /// node or its local clients), whose own free allowance it is charged
    /// to when free.
    pub async fn accept_tx(&self, tx: Transaction, from: Option<P>) -> TxOutcome {
        self.ask(|r| Command::Tx(tx, from, r))
            .await
            .unwrap_or(TxOutcome {
                verdict: Verdict::Ignore,
                refused: Some("the node is stopping".into()),
            })
    }

    /// Answers a peer's chain request (blocks, hashes, coins, a payment).
    /// Reads of the store are served from its reader on a blocking thread,
    /// not by the chain actor; only the pool's part of `GetUtxos` (bounded)
    /// and payments go to the actor.
    pub async fn answer(&self, request: Request) -> Response {
        let stopping = || Response::Error {
            reason: "the node is stopping".into(),
        };
        let reader = self.reader.get().cloned();
        match (&request, reader) {
            (Request::SubmitTx(_) | Request::Status(_), _) => {}
            (_, None) => {
                return Response::Error {
                    reason: "this node has no chain yet".into(),
                }
            }
            (Request::GetUtxos { pubkey_hash }, Some(r)) => {
                let pkh = *pubkey_hash;
                let Some(pool) = self.ask(|tx| Command::PoolCoins(pkh, tx)).await else {
                    return stopping();
                };
                return tokio::task::spawn_blocking(move || crate::serve::utxos(&r, &pkh, pool))
                    .await
                    .unwrap_or_else(|_| stopping());
            }
            (_, Some(r)) => {
                return tokio::task::spawn_blocking(move || {
                    crate::serve::answer_read(&r, &request)
                })
                .await
                .ok()
                .flatten()
                .unwrap_or_else(stopping);
            }
        }
        self.ask(|r| Command::Answer(request, r))
            .await
            .unwrap_or_else(stopping)
    }

    /// Creates the chain from a genesis a trusted peer served.
    /// Creates the store from `genesis`; `Ok(false)` when a store was
    /// already there (another peer's handshake created it first).
    pub async fn create_from_genesis(&self, genesis: Block) -> Result<bool, String> {
        self.ask(|r| Command::CreateFromGenesis(genesis, r))
            .await
            .unwrap_or_else(|| Err("the node is stopping".into()))
    }

    /// A block to mine paying `to`, when the mempool holds `min_txs`.
    pub async fn template(&self, to: PubkeyHash, min_txs: usize) -> Option<Block> {
        self.ask(|r| Command::Template(to, min_txs, r))
            .await
            .flatten()
    }

    /// Drops what `peer` left in the orphan pool (it was banned).
    pub async fn forget_peer(&self, peer: P) {
        let _ = self.tx.send(Command::ForgetPeer(peer)).await;
    }

    /// Closes the store cleanly and stops the actor.
    pub async fn close(&self) {
        let _ = self.ask(Command::Close).await;
    }
}

struct Actor<P> {
    metrics: Arc<ChainMetrics>,
    reader: Arc<OnceLock<StoreReader>>,
    store: Option<ChainStore>,
    chain_dir: PathBuf,
    mempool: Mempool,
    pool_file: Option<PathBuf>,
    orphans: OrphanPool<P>,
    /// Peers' header branches, oldest first.
    branches: Vec<(P, Option<HeaderBranch>)>,
    view: watch::Sender<Option<ChainView>>,
    events: broadcast::Sender<ChainEvent>,
    /// Outcomes of blocks whose writes may still be in flight, with their
    /// log lines: given out only once the store's writes have landed, so
    /// nothing is reported connected that a crash could still lose.
    held: Vec<(oneshot::Sender<BlockOutcome<P>>, BlockOutcome<P>)>,
    /// Log lines of blocks connected or disconnected, held with them.
    held_lines: Vec<Connected>,
    /// A keyed hash of a peer, the mempool's name for it.
    sources: std::hash::RandomState,
}

/// A block connected or disconnected, for the log.
struct Connected {
    disconnected: bool,
    height: u32,
    hash: BlockHash,
    txs: usize,
    from: String,
}

impl<P: Copy + Eq + Hash + std::fmt::Display> Actor<P> {
    fn run(mut self, mut rx: mpsc::Receiver<Command<P>>) {
        loop {
            // While outcomes are held, another waiting block is taken at
            // once (its checks overlap the last block's write); anything
            // else, or nothing waiting, first releases them.
            let cmd = if self.held.is_empty() {
                rx.blocking_recv()
            } else {
                match rx.try_recv() {
                    Ok(c) => Some(c),
                    Err(mpsc::error::TryRecvError::Empty) => {
                        self.release();
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => None,
                }
            };
            let Some(cmd) = cmd else {
                self.release();
                return;
            };
            if !matches!(cmd, Command::Block(..)) {
                self.release();
            }
            match cmd {
                Command::Block(b, from, requested, r) => {
                    let out = self.on_block(b, from, requested);
                    self.held.push((r, out));
                }
                Command::Headers(peer, headers, r) => {
                    let _ = r.send(self.on_headers(peer, headers));
                }
                Command::BranchLocator(peer, r) => {
                    let _ = r.send(self.branch_locator(peer));
                }
                Command::DropBranch(peer) => {
                    self.branches.retain(|(p, _)| *p != peer);
                }
                Command::Tx(tx, from, r) => {
                    let _ = r.send(self.on_tx(tx, from));
                }
                Command::PoolCoins(pkh, r) => {
                    let _ = r.send(self.pool_coins(&pkh));
                }
                Command::Answer(req, r) => {
                    let _ = r.send(self.answer(req));
                }
                Command::CreateFromGenesis(g, r) => {
                    let _ = r.send(self.create(g));
                }
                Command::Template(to, min, r) => {
                    let _ = r.send(self.template(to, min));
                }
                Command::Pool(req, r) => {
                    let _ = r.send(crate::pool_reads::answer(&self.mempool, req));
                }
                Command::ForgetPeer(p) => {
                    self.orphans.forget_peer(&p);
                    self.branches.retain(|(q, _)| *q != p);
                }
                Command::Close(r) => {
                    self.save_pool();
                    self.store = None;
                    let _ = r.send(());
                    return;
                }
            }
        }
    }

    /// Reads the saved pool and validates each transaction again; a file
    /// that cannot be used is a warning and an empty pool.
    fn load_pool(&mut self) {
        let (Some(store), Some(path)) = (self.store.as_ref(), self.pool_file.as_ref()) else {
            return;
        };
        let saved = match crate::pool_file::load(path, store.genesis_hash()) {
            Ok(Some(txs)) => txs,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!("{e}; starting with an empty mempool");
                return;
            }
        };
        let total = saved.len();
        let mut refused = 0usize;
        for (time, tx) in saved {
            if self.mempool.readmit(tx, store, time).is_err() {
                refused += 1;
            }
        }
        let expired = self.mempool.expire(unix_now()).len();
        tracing::info!(
            kept = self.mempool.len(),
            no_longer_valid = refused,
            expired,
            "mempool loaded: {total} saved transactions"
        );
    }

    /// Writes the pool for the next start.
    fn save_pool(&self) {
        let (Some(store), Some(path)) = (self.store.as_ref(), self.pool_file.as_ref()) else {
            return;
        };
        let txs: Vec<(u64, Transaction)> = self
            .mempool
            .entries_with_time()
            .map(|(tx, t)| (t, tx.clone()))
            .collect();
        match crate::pool_file::save(path, store.genesis_hash(), &txs) {
            Ok(()) => tracing::info!(transactions = txs.len(), "mempool saved"),
            Err(e) => tracing::warn!("cannot save the mempool to {}: {e}", path.display()),
        }
    }

    /// Waits for the store's writes to land, then logs the blocks connected
    /// since the last release and gives out the held outcomes.
    fn release(&mut self) {
        if let Some(store) = self.store.as_ref() {
            if let Err(e) = store.wait_written() {
                tracing::error!("writing to the chain failed: {e}");
                // Nothing held is reported connected.
                self.held_lines.clear();
                for (r, mut out) in self.held.drain(..) {
                    out.publish = None;
                    let _ = r.send(out);
                }
                return;
            }
        }
        let disconnected = self.held_lines.iter().filter(|c| c.disconnected).count();
        self.metrics
            .on_tip(self.held_lines.len() - disconnected, disconnected);
        if let (false, Some(store)) = (self.held_lines.is_empty(), self.store.as_ref()) {
            // No receiver is not an error.
            let _ = self.events.send(ChainEvent::Tip {
                tip: store.tip(),
                disconnected,
            });
        }
        for c in self.held_lines.drain(..) {
            if c.disconnected {
                tracing::info!(height = c.height, hash = %c.hash.short(), "disconnected block (reorganisation)");
            } else {
                tracing::info!(height = c.height, hash = %c.hash.short(), txs = c.txs, from = %c.from, "connected block");
            }
        }
        for (r, out) in self.held.drain(..) {
            let _ = r.send(out);
        }
    }

    fn publish_view(&mut self) {
        let v = self.store.as_ref().map(|s| ChainView {
            genesis: s.genesis_hash(),
            tip: s.tip(),
            mempool_len: self.mempool.len(),
            mempool_bytes: self.mempool.bytes(),
        });
        self.view.send_if_modified(|old| {
            let changed = *old != v;
            *old = v;
            changed
        });
    }

    fn create(&mut self, g: Block) -> Result<bool, String> {
        if self.store.is_some() {
            return Ok(false);
        }
        let s = ChainStore::create(&self.chain_dir, &g).map_err(|e| e.to_string())?;
        let _ = self.reader.set(s.reader());
        self.store = Some(s);
        self.publish_view();
        Ok(true)
    }

    /// Checks `headers` from `peer` and adds them to its branch.
    fn on_headers(
        &mut self,
        peer: P,
        headers: Vec<BlockHeader>,
    ) -> Result<BranchNews, HeaderFault> {
        let Some(store) = self.store.as_mut() else {
            return Err(HeaderFault {
                sender_fault: false,
                reason: "this node has no chain yet".into(),
            });
        };
        let i = match self.branches.iter().position(|(p, _)| *p == peer) {
            Some(i) => i,
            None => {
                if self.branches.len() >= MAX_BRANCHES {
                    self.branches.remove(0);
                }
                self.branches.push((peer, None));
                self.branches.len() - 1
            }
        };
        let branch = &mut self.branches[i].1;
        let before = branch.as_ref().map(HeaderBranch::tip_hash);
        match store.extend_branch(branch, &headers, unix_now()) {
            Ok(n) => {
                let b = branch.as_ref();
                let all: Vec<BlockHash> = b.map(|b| b.hashes().collect()).unwrap_or_default();
                // The branch went on from where it was, or started again.
                let first_new = all.len().saturating_sub(n);
                let prev = match first_new {
                    0 => b.map(HeaderBranch::fork),
                    i => all.get(i - 1).copied(),
                };
                let restarted = n > 0 && before.is_none_or(|tip| prev != Some(tip));
                let added = if restarted {
                    all
                } else {
                    all[first_new..].to_vec()
                };
                Ok(BranchNews {
                    added,
                    restarted,
                    work: b.map(HeaderBranch::work).unwrap_or_default(),
                    height: b.map(HeaderBranch::tip_height).unwrap_or(0),
                    new: n,
                })
            }
            Err(e) => {
                self.branches.remove(i);
                Err(HeaderFault {
                    sender_fault: e.is_sender_fault(),
                    reason: e.to_string(),
                })
            }
        }
    }

    fn branch_locator(&self, peer: P) -> Option<Vec<BlockHash>> {
        let mut locator = self.store.as_ref()?.locator().ok()?;
        let tip = self
            .branches
            .iter()
            .find(|(p, _)| *p == peer)
            .and_then(|(_, b)| b.as_ref())
            .map(HeaderBranch::tip_hash);
        if let Some(t) = tip {
            locator.insert(0, t);
            locator.truncate(p2p_proto::MAX_LOCATOR);
        }
        Some(locator)
    }

    /// The block and the orphans it unlocks, in order.
    fn on_block(&mut self, block: Block, from: Option<P>, requested: bool) -> BlockOutcome<P> {
        let mut out = BlockOutcome::nothing();
        let Some(store) = self.store.as_mut() else {
            return out;
        };
        let first_hash = block.hash();
        let known_before = matches!(store.header_entry(&first_hash), Ok(Some(_)));
        let mut queue = vec![(block, from)];
        let mut first = true;
        // A block this node asked for that is refused only because an
        // ancestor was found invalid (a sync hands several blocks of a
        // branch over before the first is answered) ends the sync, but its
        // sender is not blamed again: the ancestor's sender was.
        let mut blameless = false;
        while let Some((b, src)) = queue.pop() {
            let h = b.hash();
            let who = src
                .map(|p| p.to_string())
                .unwrap_or_else(|| "this node".into());
            let started = std::time::Instant::now();
            // The pool's signature cache spares the signatures of payments
            // it already took.
            let accepted =
                store.accept_block_with(&b, unix_now(), first && requested, &self.mempool);
            self.metrics.observe_validation(started.elapsed());
            let verdict = match accepted {
                Ok(Accepted::NewTip(update)) => {
                    let lines = update
                        .disconnected
                        .iter()
                        .map(|d| (true, d))
                        .chain(update.connected.iter().map(|c| (false, c)));
                    for (disconnected, b) in lines {
                        self.held_lines.push(Connected {
                            disconnected,
                            height: b.header.height,
                            hash: b.hash(),
                            txs: b.transactions.len(),
                            from: who.clone(),
                        });
                    }
                    let now = unix_now();
                    let mut dropped = self.mempool.update_for_chain(
                        update.returned_transactions(),
                        &update.connected,
                        &*store,
                        now,
                    );
                    dropped.extend(self.mempool.expire(now));
                    for (txid, why) in dropped {
                        tracing::debug!(%txid, "dropped from the mempool: {why}");
                    }
                    out.tip_changed = true;
                    for (o, p) in self.orphans.take_children(&h) {
                        queue.push((o, Some(p)));
                    }
                    if src.is_none() && first {
                        out.publish = Some(b.clone());
                    }
                    Verdict::Accept
                }
                Ok(Accepted::SideChain) => {
                    tracing::info!(height = b.header.height, hash = %h.short(), from = %who, "stored a side-chain block");
                    // Not connected, so not fully validated: never forwarded.
                    Verdict::Ignore
                }
                Ok(Accepted::LessWork) => {
                    // Debug only: a flood of these must not fill the log either.
                    tracing::debug!(height = b.header.height, hash = %h.short(), from = %who, "a block on a branch with no more work than the tip; not stored");
                    Verdict::Ignore
                }
                Ok(Accepted::AlreadyHave) => Verdict::Ignore,
                Ok(Accepted::Orphan { parent }) => {
                    let tip = store.tip();
                    // A block a sync asked for is never held: the sync
                    // hands blocks over in order, so its parent failed.
                    let asked = first && requested;
                    let held = match (src, store.context_for_tip(unix_now())) {
                        (Some(p), Ok(ctx)) if !asked => check_orphan(
                            &b,
                            store.params(),
                            ctx.expected_bits,
                            tip.height.saturating_add(1),
                        )
                        .and_then(|()| {
                            let size = b.encoded_len();
                            self.orphans.insert(b, size, p)
                        })
                        .map(|_| Some(p)),
                        // This node's own blocks are never orphans.
                        _ => Ok(None),
                    };
                    match held {
                        Ok(None) => Verdict::Ignore,
                        Ok(Some(p)) => {
                            tracing::debug!(hash = %h.short(), parent = %parent.short(), pool = self.orphans.len(), "orphan block; asking its sender where its chain stands");
                            out.ask_status = Some(p);
                            Verdict::Ignore
                        }
                        Err(e) if e.is_sender_fault() => {
                            tracing::warn!(hash = %h.short(), from = %who, "rejected orphan block: {e}");
                            if first {
                                out.valid = false;
                            }
                            Verdict::Reject
                        }
                        Err(_) => Verdict::Ignore,
                    }
                }
                Err(StoreError::InvalidBlock { hash: bad, error }) => {
                    tracing::warn!(hash = %bad.short(), from = %who, "rejected block: {error}");
                    let ancestor_only = matches!(
                        error,
                        BlockError::InvalidParent(_) | BlockError::KnownInvalid(_)
                    );
                    if !error.is_sender_fault() {
                        Verdict::Ignore
                    } else if first && requested && ancestor_only {
                        out.valid = false;
                        blameless = true;
                        Verdict::Ignore
                    } else {
                        if first {
                            out.valid = false;
                            out.body_fault = error.is_body_fault();
                        }
                        Verdict::Reject
                    }
                }
                Err(e) => {
                    tracing::error!(hash = %h.short(), "storing block failed: {e}");
                    Verdict::Ignore
                }
            };
            if first {
                out.verdict = verdict;
                first = false;
            }
        }
        if !out.valid && !blameless {
            out.offender = from;
            if let Some(p) = from {
                self.orphans.forget_peer(&p);
            }
        }
        out.stored = !known_before && matches!(store.header_entry(&first_hash), Ok(Some(_)));
        self.metrics.set_orphans(self.orphans.len());
        self.publish_view();
        out
    }

    fn on_tx(&mut self, tx: Transaction, from: Option<P>) -> TxOutcome {
        let txid = tx.txid();
        let Some(store) = self.store.as_ref() else {
            return TxOutcome {
                verdict: Verdict::Ignore,
                refused: Some("NoChain: this node has no chain yet".into()),
            };
        };
        let source = from.map(|p| Source(std::hash::BuildHasher::hash_one(&self.sources, p)));
        let out = match self.mempool.accept_from(tx, store, unix_now(), source) {
            Ok((_, dropped)) => {
                for (t, why) in dropped {
                    tracing::info!(txid = %t, "left the mempool: {why}");
                }
                tracing::info!(%txid, pool = self.mempool.len(), "transaction accepted");
                let _ = self.events.send(ChainEvent::TxAccepted(txid));
                TxOutcome {
                    verdict: Verdict::Accept,
                    refused: None,
                }
            }
            Err(e @ MempoolError::AlreadyKnown(_)) => TxOutcome {
                verdict: Verdict::Ignore,
                refused: Some(e.reason()),
            },
            Err(e) => {
                tracing::info!(%txid, "transaction not taken: {e}");
                TxOutcome {
                    verdict: if e.is_sender_fault() {
                        Verdict::Reject
                    } else {
                        Verdict::Ignore
                    },
                    refused: Some(e.reason()),
                }
            }
        };
        self.publish_view();
        out
    }

    fn template(&self, to: PubkeyHash, min_txs: usize) -> Option<Block> {
        let store = self.store.as_ref()?;
        if self.mempool.len() < min_txs {
            return None;
        }
        let (txs, fees) = self.mempool.block_template();
        store.template(to, txs, fees, unix_now()).ok()
    }

    /// The pool's part of a `GetUtxos` answer: bounded by the reply's cap
    /// in pool transactions looked at and in outputs returned.
    fn pool_coins(&self, pkh: &PubkeyHash) -> crate::serve::PoolCoins {
        let Some(s) = self.store.as_ref() else {
            return crate::serve::PoolCoins::default();
        };
        let spent = self
            .mempool
            .coins_spent_from(pkh, p2p_proto::MAX_UTXOS)
            .into_iter()
            .collect();
        let mut unconfirmed: Vec<UtxoEntry> = self
            .mempool
            .unspent_outputs_for(pkh, s)
            .into_iter()
            .map(|(op, o, change)| UtxoEntry {
                outpoint: op,
                value: o.value,
                confirmed_height: None,
                change,
            })
            .collect();
        unconfirmed.truncate(p2p_proto::MAX_UTXOS);
        crate::serve::PoolCoins { spent, unconfirmed }
    }

    /// Requests the chain actor itself answers: payments. Reads are served
    /// from the store's reader ([`ChainHandle::answer`]).
    fn answer(&mut self, request: Request) -> Response {
        match request {
            Request::SubmitTx(tx) => {
                let txid = tx.txid();
                match self.on_tx(tx, None).refused {
                    None => Response::TxAccepted { txid },
                    Some(reason) => Response::TxRejected {
                        txid,
                        reason: p2p_proto::clip_reason(reason),
                    },
                }
            }
            Request::Status(_) => Response::Error {
                reason: "status is answered by the network layer".into(),
            },
            _ => Response::Error {
                reason: "reads are served from the store's reader".into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chain_core::keys::PrivateKey;
    use chain_core::test_utils::{child, easy_params, genesis, outputs_of, spend};
    use chain_core::Amount;
    use p2p_proto::BlockBytes;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    /// A chain actor over a new store holding a genesis that pays `key`.
    struct Actor {
        dir: tempfile::TempDir,
        key: PrivateKey,
        p: chain_core::ChainParams,
        g: Block,
        chain: ChainHandle<u8>,
    }

    fn actor() -> Actor {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate();
        let p = easy_params();
        let g = genesis(&p, key.public_key().pubkey_hash());
        let store = ChainStore::create(&dir.path().join("blocks"), &g).unwrap();
        let chain = spawn(
            Some(store),
            dir.path().join("blocks"),
            PoolSettings::default(),
        );
        Actor {
            dir,
            key,
            p,
            g,
            chain,
        }
    }

    /// A block on `parent` whose payment spends the genesis coin under
    /// another key's signature: invalid.
    fn theft(p: &chain_core::ChainParams, g: &Block, parent: &BlockHeader) -> Block {
        let to = g.transactions[0].outputs[0].pubkey_hash;
        let thief = PrivateKey::generate();
        let tx = spend(
            &thief,
            &outputs_of(&g.transactions[0]),
            to,
            Amount(20),
            Amount(0),
        );
        child(p, parent, vec![tx], Amount(0), to)
    }

    #[test]
    fn blocks_handed_over_ahead_connect_in_order_and_only_the_first_bad_sender_is_blamed() {
        let Actor {
            dir: _dir,
            key,
            p,
            g,
            chain,
        } = actor();
        let pkh = key.public_key().pubkey_hash();
        let rt = runtime();
        rt.block_on(async {
            // Three good blocks handed over before any is answered.
            let b1 = child(&p, &g.header, vec![], Amount(0), pkh);
            let b2 = child(&p, &b1.header, vec![], Amount(0), pkh);
            let b3 = child(&p, &b2.header, vec![], Amount(0), pkh);
            let mut answers = Vec::new();
            for b in [&b1, &b2, &b3] {
                answers.push(chain.submit_requested_block(b.clone(), 1).await);
            }
            for a in answers {
                let out = a.await;
                assert!(out.valid && out.stored && out.tip_changed);
            }
            assert_eq!(chain.view().unwrap().tip.hash, b3.hash());

            // A block that steals a coin, then its child, handed over
            // together from two peers: the thief is blamed, the child's
            // sender is not (only its parent was invalid), and both end a sync.
            let bad = theft(&p, &g, &b3.header);
            let after = child(&p, &bad.header, vec![], Amount(0), pkh);
            let first = chain.submit_requested_block(bad, 7).await;
            let second = chain.submit_requested_block(after, 8).await;
            let (first, second) = (first.await, second.await);
            assert!(!first.valid);
            assert_eq!(first.offender, Some(7));
            assert_eq!(first.verdict, Verdict::Reject);
            assert!(!second.valid);
            assert_eq!(second.offender, None);
            assert_eq!(second.verdict, Verdict::Ignore);
            assert_eq!(chain.view().unwrap().tip.hash, b3.hash());
            chain.close().await;
        });
    }

    #[test]
    fn the_actor_owns_the_chain_and_says_what_to_do_with_each_peer() {
        let Actor {
            dir,
            key,
            p,
            g,
            chain,
        } = actor();
        let pkh = key.public_key().pubkey_hash();
        let rt = runtime();
        rt.block_on(async {
            assert_eq!(chain.view().unwrap().tip.hash, g.hash());
            let mut tips = chain.subscribe();

            // A valid block from peer 1: connected, forwarded, the view moves.
            let b1 = child(&p, &g.header, vec![], Amount(0), pkh);
            let out = chain.accept_block(b1.clone(), Some(1)).await;
            assert_eq!(out.verdict, Verdict::Accept);
            assert!(out.valid && out.stored && out.tip_changed);
            assert_eq!(
                out.publish, None,
                "only this node's own blocks are announced"
            );
            tips.changed().await.unwrap();
            assert_eq!(chain.view().unwrap().tip.hash, b1.hash());

            // A block stealing the genesis coin from peer 2: rejected, peer 2 to punish.
            let bad = theft(&p, &g, &b1.header);
            let out = chain.accept_block(bad, Some(2)).await;
            assert_eq!(out.verdict, Verdict::Reject);
            assert_eq!(out.offender, Some(2));
            assert_eq!(chain.view().unwrap().tip.hash, b1.hash());

            // A side-branch block nobody asked for is neither stored nor
            // forwarded; asked for (in a sync), it is stored, not forwarded.
            let side =
                chain_core::test_utils::child_with_extra(&p, &g.header, vec![], Amount(0), pkh, 61);
            let out = chain.accept_block(side.clone(), Some(3)).await;
            assert_eq!(out.verdict, Verdict::Ignore);
            assert!(out.valid && !out.stored && !out.tip_changed);
            let out = chain.accept_requested_block(side, 3).await;
            assert_eq!(out.verdict, Verdict::Ignore);
            assert!(out.valid && out.stored && !out.tip_changed);

            // An orphan: held, and its sender is to be asked for its status.
            let b2 = child(&p, &b1.header, vec![], Amount(0), pkh);
            let b3 = child(&p, &b2.header, vec![], Amount(0), pkh);
            let out = chain.accept_block(b3.clone(), Some(4)).await;
            assert_eq!(out.ask_status, Some(4));
            assert!(!out.stored);
            // Its parent connects both.
            let out = chain.accept_block(b2, Some(5)).await;
            assert!(out.tip_changed);
            assert_eq!(chain.view().unwrap().tip.hash, b3.hash());

            // Payments: into the mempool, then into a template of this node's.
            let pay = spend(
                &key,
                &outputs_of(&g.transactions[0]),
                pkh,
                Amount(5),
                Amount(0),
            );
            let out = chain.accept_tx(pay.clone(), None).await;
            assert_eq!(
                out,
                TxOutcome {
                    verdict: Verdict::Accept,
                    refused: None
                }
            );
            assert_eq!(chain.view().unwrap().mempool_len, 1);
            assert!(chain.template(pkh, 2).await.is_none(), "below --min-txs");
            let t = chain.template(pkh, 1).await.unwrap();
            assert_eq!(t.transactions.len(), 2);
            assert_eq!(t.header.prev, b3.hash());

            // Requests are answered from the actor's store.
            let r = chain
                .answer(Request::GetData {
                    hashes: vec![b1.hash(), BlockHash([1; 32])],
                })
                .await;
            match r {
                Response::Blocks { blocks, not_found } => {
                    assert_eq!(blocks, vec![BlockBytes::from(&b1)]);
                    assert_eq!(not_found, vec![BlockHash([1; 32])]);
                }
                other => panic!("{other:?}"),
            }
            chain.close().await;
        });
        // Closed: the store is released and can be opened again.
        drop(chain);
        let reopened = ChainStore::open(&dir.path().join("blocks")).unwrap();
        assert_eq!(reopened.tip().height, 3);
    }
}
