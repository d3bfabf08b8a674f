//! The actor's thread: commands taken in order, blocks connected with
//! their writes overlapped, outcomes released once durable.

use super::*;

pub(super) struct Actor<P> {
    pub(super) metrics: Arc<ChainMetrics>,
    pub(super) reader: Arc<OnceLock<StoreReader>>,
    pub(super) store: Option<ChainStore>,
    pub(super) chain_dir: PathBuf,
    pub(super) mempool: Mempool,
    pub(super) pool_file: Option<PathBuf>,
    pub(super) orphans: OrphanPool<P>,
    /// Peers' header branches, oldest first.
    pub(super) branches: Vec<(P, Option<HeaderBranch>)>,
    pub(super) view: watch::Sender<Option<ChainView>>,
    pub(super) events: broadcast::Sender<ChainEvent>,
    /// Outcomes of blocks whose writes may still be in flight, with their
    /// log lines: given out only once the store's writes have landed, so
    /// nothing is reported connected that a crash could still lose.
    pub(super) held: Vec<(oneshot::Sender<BlockOutcome<P>>, BlockOutcome<P>)>,
    /// Log lines of blocks connected or disconnected, held with them.
    pub(super) held_lines: Vec<Connected>,
    /// A keyed hash of a peer, the mempool's name for it.
    pub(super) sources: std::hash::RandomState,
}

/// A block connected or disconnected, for the log.
pub(super) struct Connected {
    disconnected: bool,
    height: u32,
    hash: BlockHash,
    txs: usize,
    from: String,
}

impl<P: Copy + Eq + Hash + std::fmt::Display> Actor<P> {
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<Command<P>>) {
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
                Command::PoolCoins(pkh, limit, r) => {
                    let _ = r.send(self.pool_coins(&pkh, limit));
                }
                Command::CreateFromGenesis(g, r) => {
                    let _ = r.send(self.create(g));
                }
                Command::Template(to, min, r) => {
                    let _ = r.send(self.template(to, min));
                }
                Command::Compact(cb, r) => {
                    let _ = r.send(self.prepare_compact(&cb));
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
    pub(super) fn load_pool(&mut self) {
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

    pub(super) fn publish_view(&mut self) {
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
        }
        Some(locator)
    }

    /// The block and the orphans it unlocks, in order.
    fn on_block(
        &mut self,
        block: ReceivedBlock,
        from: Option<P>,
        requested: bool,
    ) -> BlockOutcome<P> {
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
            let height = b.header.height;
            let who = src
                .map(|p| p.to_string())
                .unwrap_or_else(|| "this node".into());
            let started = std::time::Instant::now();
            // The pool's signature cache spares the signatures of payments
            // it already took.
            let accepted =
                store.accept_block_with(b, unix_now(), first && requested, &self.mempool);
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
                        // Published from the bytes it was stored from.
                        out.publish =
                            update
                                .connected
                                .iter()
                                .find(|c| c.hash() == h)
                                .map(|c| Minted {
                                    hash: h,
                                    height,
                                    txs: c.transactions.len(),
                                    bytes: c.bytes().to_vec(),
                                });
                    }
                    Verdict::Accept
                }
                Ok(Accepted::SideChain) => {
                    tracing::info!(height, hash = %h.short(), from = %who, "stored a side-chain block");
                    // Not connected, so not fully validated: never forwarded.
                    Verdict::Ignore
                }
                Ok(Accepted::LessWork) => {
                    // Debug only: a flood of these must not fill the log either.
                    tracing::debug!(height, hash = %h.short(), from = %who, "a block on a branch with no more work than the tip; not stored");
                    Verdict::Ignore
                }
                Ok(Accepted::AlreadyHave) => Verdict::Ignore,
                Ok(Accepted::Orphan { parent, block: b }) => {
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
                        .and_then(|()| self.orphans.insert(*b, p))
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

    fn on_tx(&mut self, tx: UnminedTx, from: Option<P>) -> TxOutcome {
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
        let (txs, fees) = self.mempool.block_template_txs();
        store.template_of(to, txs, fees, unix_now()).ok()
    }

    /// The pool's part of a [`ReadRequest::Coins`]: bounded by `limit` in
    /// the address's pool transactions looked at and in outputs returned.
    fn pool_coins(&self, pkh: &PubkeyHash, limit: usize) -> PoolCoins {
        let Some(s) = self.store.as_ref() else {
            return PoolCoins::default();
        };
        let spent = self
            .mempool
            .coins_spent_from(pkh, limit)
            .into_iter()
            .collect();
        let mut unconfirmed: Vec<SpendableCoin> = self
            .mempool
            .unspent_outputs_for_at_most(pkh, s, limit)
            .into_iter()
            .map(|(op, o, change)| SpendableCoin {
                outpoint: op,
                value: o.value,
                confirmed_height: None,
                change,
            })
            .collect();
        unconfirmed.truncate(limit);
        PoolCoins { spent, unconfirmed }
    }
}
