//! The handle the rest of the node holds: each method a typed command to
//! the chain actor, or a read served beside it.

use super::*;
use crate::read_pool::{Charge, NotRun, ReadPool};

/// A cloneable handle to the chain actor.
pub struct ChainHandle<P> {
    pub(super) tx: mpsc::Sender<Command<P>>,
    pub(super) view: watch::Receiver<Option<ChainView>>,
    pub(super) events: broadcast::Sender<ChainEvent>,
    pub(super) metrics: Arc<ChainMetrics>,
    pub(super) reader: Arc<OnceLock<StoreReader>>,
    pub(super) reads: Arc<ReadPool>,
}

impl<P> Clone for ChainHandle<P> {
    fn clone(&self) -> Self {
        ChainHandle {
            tx: self.tx.clone(),
            view: self.view.clone(),
            events: self.events.clone(),
            metrics: self.metrics.clone(),
            reader: self.reader.clone(),
            reads: self.reads.clone(),
        }
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
    /// A [`chain_core::Block`] is encoded and hashed once, in the caller's
    /// task; a [`ReceivedBlock`] decoded where it arrived is not again.
    pub async fn accept_block(
        &self,
        block: impl Into<ReceivedBlock>,
        from: Option<P>,
    ) -> BlockOutcome<P> {
        let block = block.into();
        self.ask(|r| Command::Block(block, from, false, r))
            .await
            .unwrap_or_else(BlockOutcome::nothing)
    }

    /// Offers a block this node asked `from` for, from a header branch with
    /// more work than the tip: stored even while its own branch has less.
    pub async fn accept_requested_block(
        &self,
        block: impl Into<ReceivedBlock>,
        from: P,
    ) -> BlockOutcome<P> {
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
        block: impl Into<ReceivedBlock>,
        from: P,
    ) -> impl std::future::Future<Output = BlockOutcome<P>> + Send + 'static {
        let block = block.into();
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
    pub async fn accept_tx(&self, tx: impl Into<UnminedTx>, from: Option<P>) -> TxOutcome {
        let tx = tx.into();
        self.ask(|r| Command::Tx(tx, from, r))
            .await
            .unwrap_or(TxOutcome {
                verdict: Verdict::Ignore,
                refused: Some("the node is stopping".into()),
            })
    }

    /// A read of the chain ([`crate::reads`]), served from the store's
    /// reader on a low-priority read thread ([`crate::read_pool`]), or
    /// refused as busy when they are all taken; only the pool's part of a
    /// [`ReadRequest::Coins`] (bounded by its limit) goes to the actor.
    pub async fn read(&self, request: ReadRequest) -> Result<ReadResponse, ReadError> {
        let reader = self.reader.get().cloned().ok_or(ReadError::NoChain)?;
        // Wallets' reads wait for the answer budget; other nodes' syncs do not.
        let charge = match &request {
            ReadRequest::Coins { .. } => Charge::WithinBudget,
            _ => Charge::Always,
        };
        let pool = match &request {
            ReadRequest::Coins { pubkey_hash, limit } => {
                // Refused before the pool's part is asked of the actor.
                if !self.reads.has_budget() {
                    return Err(ReadError::Busy);
                }
                let (pkh, limit) = (*pubkey_hash, *limit);
                self.ask(|tx| Command::PoolCoins(pkh, limit, tx))
                    .await
                    .ok_or(ReadError::Stopping)?
            }
            _ => PoolCoins::default(),
        };
        self.reads
            .run(
                move || crate::reads::serve(&reader, request, pool),
                |answer| answer.as_ref().map_or(0, ReadResponse::approx_bytes),
                charge,
            )
            .await
            .map_err(|e| match e {
                NotRun::Busy => ReadError::Busy,
                NotRun::Stopping => ReadError::Stopping,
            })?
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

    /// A compact block's header checked and its transactions looked up in
    /// the mempool (`None`: the node is stopping).
    pub async fn prepare_compact(&self, cb: p2p_proto::CompactBlock) -> Option<Prepared> {
        self.ask(|r| Command::Compact(Box::new(cb), r)).await
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
