//! Compact blocks: a gossiped compact block rebuilt from the mempool, the
//! missing transactions asked of the peer that relayed it in one
//! `GetBlockTxn`, and the full block asked for when the rebuild cannot
//! finish. The block then takes the path of any gossiped block (checks,
//! verdict, forwarding).

use super::{Node, BAN};
use crate::chain::{Prepared, Verdict};
use crate::Network;
use chain_core::{BlockHash, ReceivedBlock};
use p2p_proto::compact::PartialBlock;
use p2p_proto::{CompactBlock, Request, Response};
use std::sync::Arc;

/// Compact blocks being finished over the network at once; more are
/// ignored (each came with valid proof of work, so this is rarely reached).
pub const COMPACT_FETCHES: usize = 8;

impl<N: Network> Node<N> {
    /// Handles a gossiped compact block from `peer`.
    pub(super) async fn on_compact(
        self: Arc<Self>,
        peer: N::Peer,
        id: N::GossipId,
        cb: CompactBlock,
    ) {
        let hash = cb.hash();
        let Some(prepared) = self.chain.prepare_compact(cb).await else {
            return;
        };
        let partial = match prepared {
            Prepared::Known => {
                self.net.validate(id, Verdict::Ignore).await;
                return;
            }
            Prepared::BadHeader(e) => {
                tracing::warn!(hash = %hash.short(), from = %peer, "rejected block: {e}");
                self.net.validate(id, Verdict::Reject).await;
                if e.is_sender_fault() {
                    self.ban(peer, crate::BanReason::InvalidBlock).await;
                }
                return;
            }
            Prepared::Orphan | Prepared::DuplicateIds => None,
            Prepared::Partial(p) => Some(p),
        };
        if let Some(p) = &partial {
            if p.missing().is_empty() {
                if let Ok(block) = p.finish() {
                    self.chain.metrics().on_compact(true);
                    self.on_block(ReceivedBlock::new(block), Some(peer), Some(id), false)
                        .await;
                    return;
                }
            }
        }
        // The rest needs the network: in a task, so gossip keeps flowing.
        let Ok(permit) = self.compact_fetches.clone().try_acquire_owned() else {
            tracing::debug!(hash = %hash.short(), "too many compact blocks being finished; ignoring one");
            self.net.validate(id, Verdict::Ignore).await;
            return;
        };
        self.chain.metrics().on_compact(false);
        tokio::spawn(async move {
            let block = match partial {
                Some(p) if !p.missing().is_empty() => self.missing_from(peer, hash, p).await,
                _ => None,
            };
            let block = match block {
                Some(b) => Some(b),
                None => self.full_block_from(peer, hash).await,
            };
            match block {
                Some(b) => {
                    self.on_block(b, Some(peer), Some(id), false).await;
                }
                None => self.net.validate(id, Verdict::Ignore).await,
            }
            drop(permit);
        });
    }

    /// Asks `peer` for the transactions `p` lacks and finishes the block;
    /// `None` when the answer does not make the announced block.
    async fn missing_from(
        &self,
        peer: N::Peer,
        hash: BlockHash,
        mut p: PartialBlock,
    ) -> Option<ReceivedBlock> {
        let indexes = p.missing();
        let asked = indexes.len();
        let answer = self
            .net
            .request(peer, Request::GetBlockTxn { hash, indexes })
            .await;
        let txs = match answer {
            Ok(Response::BlockTxn { hash: h, txs }) if h == hash => txs,
            Ok(other) => {
                tracing::debug!(%peer, hash = %hash.short(), "no transactions for a compact block: {}", kind(&other));
                return None;
            }
            Err(e) => {
                tracing::debug!(%peer, hash = %hash.short(), "no transactions for a compact block: {e}");
                return None;
            }
        };
        let finished = p.fill(txs).and_then(|()| p.finish());
        match finished {
            Ok(block) => {
                tracing::debug!(hash = %hash.short(), asked, "compact block finished");
                Some(ReceivedBlock::new(block))
            }
            Err(e) => {
                tracing::debug!(%peer, hash = %hash.short(), "compact block not rebuilt: {e}; asking for the full block");
                None
            }
        }
    }

    /// Asks `peer` for the whole block `hash`. A reply holding another
    /// block is misbehaviour.
    async fn full_block_from(&self, peer: N::Peer, hash: BlockHash) -> Option<ReceivedBlock> {
        self.chain.metrics().on_compact_fallback();
        let answer = self
            .net
            .request(peer, Request::GetData { hashes: vec![hash] })
            .await;
        let Ok(Response::Blocks { mut blocks, .. }) = answer else {
            return None;
        };
        let bytes = blocks.pop()?;
        if !blocks.is_empty() || bytes.hash().ok() != Some(hash) {
            tracing::warn!(%peer, "answered with a block that was not asked for; banning the peer");
            self.chain.metrics().on_ban(crate::BanReason::Protocol);
            self.net.ban(peer, BAN).await;
            return None;
        }
        match bytes.into_received() {
            Ok(b) => Some(b),
            Err(e) => {
                tracing::warn!(hash = %hash.short(), from = %peer, "rejected block: {e}");
                self.ban(peer, crate::BanReason::InvalidBlock).await;
                None
            }
        }
    }
}

fn kind(r: &Response) -> &'static str {
    match r {
        Response::Error { .. } => "an error",
        _ => "another answer",
    }
}
