//! Relay: gossip handled in arrival order, and each block handed to the
//! chain actor with its verdict carried out (forward, drop, ban, ask for
//! the sender's status, announce what this node minted).

use super::{Gossip, Node, BAN};
use crate::chain::Verdict;
use crate::Network;
use chain_core::{ReceivedBlock, UnminedTx};
use p2p_proto::{Announcement, BlockBytes, CompactBlock};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

impl<N: Network> Node<N> {
    /// Handles gossip in arrival order, off the event loop.
    pub(super) async fn gossip_worker(self: Arc<Self>, mut rx: mpsc::Receiver<Gossip<N>>) {
        while let Some((peer, id, announcement, _held)) = rx.recv().await {
            match announcement {
                Announcement::Block(bytes) => {
                    // Its header, copied, names it if the rest does not decode.
                    let header = bytes.header();
                    // Decoded once, here: the rest of the path reads its
                    // hash, txids and bytes.
                    match bytes.into_received() {
                        Ok(block) => {
                            self.clone()
                                .on_block(block, Some(peer), Some(id), false)
                                .await;
                        }
                        Err(e) => {
                            let hash = header.map(|h| h.hash().short()).unwrap_or_default();
                            tracing::warn!(%hash, from = %peer, "rejected block: {e}");
                            self.net.validate(id, Verdict::Reject).await;
                            self.ban(peer, crate::BanReason::InvalidBlock).await;
                        }
                    }
                }
                Announcement::CompactBlock(cb) => {
                    self.clone().on_compact(peer, id, cb).await;
                }
                Announcement::Tx(tx) => {
                    // Hashed once, here.
                    let tx = UnminedTx::new(tx);
                    let txid = tx.txid();
                    let out = self.chain.accept_tx(tx, Some(peer)).await;
                    let verdict = out.verdict;
                    self.net.validate(id, verdict).await;
                    if verdict == Verdict::Accept {
                        tracing::info!(%txid, from = %peer, "transaction relayed");
                    }
                    // Honest peers validate before they relay, so an invalid
                    // transaction is the sender's fault.
                    if verdict == Verdict::Reject {
                        tracing::warn!(%peer, "sent an invalid transaction; banning the peer");
                        self.ban(peer, crate::BanReason::InvalidTx).await;
                    }
                    self.clone().maybe_mine().await;
                }
            }
        }
    }

    /// Hands a block from the network (`from`) or from the local miner to
    /// the chain actor, then carries out what it decided.
    /// `requested`: this node asked for it in a sync.
    pub(super) async fn on_block(
        self: Arc<Self>,
        block: ReceivedBlock,
        from: Option<N::Peer>,
        gossip: Option<N::GossipId>,
        requested: bool,
    ) -> crate::BlockOutcome<N::Peer> {
        if gossip.is_some() {
            // No receiver is not an error.
            let _ = self.in_hand.send(block.hash());
        }
        let out = match from {
            Some(p) if requested => self.chain.accept_requested_block(block, p).await,
            _ => self.chain.accept_block(block, from).await,
        };
        self.carry_out(out, gossip).await
    }

    /// Carries out what the chain actor decided about a block.
    pub(super) async fn carry_out(
        self: Arc<Self>,
        mut out: crate::BlockOutcome<N::Peer>,
        gossip: Option<N::GossipId>,
    ) -> crate::BlockOutcome<N::Peer> {
        if let Some(id) = gossip {
            self.net.validate(id, out.verdict).await;
        }
        if let Some(p) = out.offender {
            self.chain.metrics().on_ban(crate::BanReason::InvalidBlock);
            self.net.ban(p, BAN).await;
        }
        if out.tip_changed {
            if let Some(c) = self.local().mining.as_ref() {
                c.store(true, Ordering::Relaxed);
            }
        }
        // Taken out of the outcome: no caller needs it after this.
        if let Some(m) = out.publish.take() {
            tracing::info!(height = m.height, hash = %m.hash.short(), txs = m.txs, "minted block");
            // Announced compact: peers rebuild it from their mempools.
            let b = BlockBytes::new(m.bytes);
            let compact = self
                .compact_blocks
                .then(|| b.decode().ok())
                .flatten()
                .and_then(|block| CompactBlock::of(&block, rand::random()));
            let announcement = match compact {
                Some(cb) => Announcement::CompactBlock(cb),
                None => Announcement::Block(b),
            };
            self.net.publish(announcement).await;
        }
        if let Some(p) = out.ask_status {
            // It sent a block whose header meets the chain's difficulty: its
            // proof of work is shown, so an earlier disproof no longer holds.
            self.local().disproved.remove(&p);
            tokio::spawn(self.clone().handshake(p));
        }
        out
    }
}
