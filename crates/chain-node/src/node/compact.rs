//! Compact blocks: a gossiped compact block rebuilt from the mempool, the
//! missing transactions asked of the peer that relayed it in one
//! `GetBlockTxn`, and the full block asked for when the rebuild cannot
//! finish: of the relaying peer if it answered, then of a few other
//! peers, each ask within [`COMPACT_DEADLINE`], so a relayer that stalls
//! holds the block up for seconds, not for the request timeout. A rebuilt
//! block that extends the tip is forwarded at once, before it is connected
//! (as BIP152's high-bandwidth relay): its header has shown its proof of
//! work and fits the tip, and its transactions are the header's. Any other
//! block takes the path of a gossiped full block.

use super::{Node, BAN};
use crate::chain::{Prepared, Verdict};
use crate::Network;
use chain_core::{Block, BlockHash, ReceivedBlock};
use p2p_proto::compact::PartialBlock;
use p2p_proto::{CompactBlock, Request, Response};
use std::sync::Arc;
use std::time::Duration;

/// Compact blocks being finished over the network at once; more are
/// ignored (each came with valid proof of work, so this is rarely reached).
pub const COMPACT_FETCHES: usize = 8;
/// Rebuilt blocks kept to answer `GetBlockTxn` before they are stored.
pub const REBUILT_KEPT: usize = 4;
/// How long each ask for a compact block's missing transactions or for the
/// full block may take before the next peer is asked.
pub const COMPACT_DEADLINE: Duration = Duration::from_secs(2);
/// Peers besides the relaying one asked for the full block, one after
/// another, when the relaying peer did not finish it.
pub const FULL_BLOCK_PEERS: usize = 3;

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
        let (partial, extends_tip) = match prepared {
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
            Prepared::Orphan | Prepared::DuplicateIds => (None, false),
            Prepared::Partial(p, extends_tip) => (Some(p), extends_tip),
        };
        // Complete from the mempool: finished here, or, when the Merkle
        // root disagrees, taken in full from the network.
        let partial = match partial {
            Some(p) if p.missing().is_empty() => match p.finish() {
                Ok(block) => {
                    self.chain.metrics().on_compact(true);
                    self.take_rebuilt(block, peer, id, extends_tip).await;
                    return;
                }
                Err(_) => None,
            },
            other => other,
        };
        // The rest needs the network: in a task, so gossip keeps flowing.
        let Ok(permit) = self.compact_fetches.clone().try_acquire_owned() else {
            tracing::debug!(hash = %hash.short(), "too many compact blocks being finished; ignoring one");
            self.net.validate(id, Verdict::Ignore).await;
            return;
        };
        self.chain.metrics().on_compact(false);
        tokio::spawn(async move {
            // Whether the relaying peer is worth asking for the full block:
            // not when it let the ask for the missing transactions lapse.
            let (rebuilt, relayer_answers) = match partial {
                Some(p) if !p.missing().is_empty() => self.missing_from(peer, hash, p).await,
                _ => (None, true),
            };
            if let Some(b) = rebuilt {
                self.take_rebuilt(b, peer, id, extends_tip).await;
            } else if let Some((b, from)) =
                self.full_block_from_any(peer, relayer_answers, hash).await
            {
                self.clone().on_block(b, Some(from), Some(id), false).await;
            } else {
                self.net.validate(id, Verdict::Ignore).await;
            }
            drop(permit);
        });
    }

    /// The full block `hash`, from the relaying peer first when
    /// `ask_relayer`, then from up to [`FULL_BLOCK_PEERS`] others, each
    /// given [`COMPACT_DEADLINE`]; with the peer that sent it.
    async fn full_block_from_any(
        &self,
        relayer: N::Peer,
        ask_relayer: bool,
        hash: BlockHash,
    ) -> Option<(ReceivedBlock, N::Peer)> {
        self.chain.metrics().on_compact_fallback();
        // Collected first: `is_slow` takes the same lock.
        let others: Vec<N::Peer> = self
            .local()
            .peers
            .keys()
            .copied()
            .filter(|p| *p != relayer)
            .collect();
        let others = others.into_iter().filter(|p| !self.is_slow(p));
        let asked = ask_relayer
            .then_some(relayer)
            .into_iter()
            .chain(others.take(FULL_BLOCK_PEERS));
        for p in asked {
            match tokio::time::timeout(COMPACT_DEADLINE, self.full_block_from(p, hash)).await {
                Ok(Some(b)) => return Some((b, p)),
                Ok(None) => {
                    tracing::debug!(peer = %p, hash = %hash.short(), "no full block for a compact block")
                }
                Err(_) => {
                    tracing::debug!(peer = %p, hash = %hash.short(), "no full block for a compact block within {} s", COMPACT_DEADLINE.as_secs())
                }
            }
        }
        None
    }

    /// Takes a rebuilt block: one that extends the tip is forwarded first
    /// and connected after; its sender, which may have forwarded it before
    /// connecting it too, is not banned if its body fails. Any other goes
    /// the way of a gossiped full block.
    async fn take_rebuilt(
        self: &Arc<Self>,
        block: Block,
        peer: N::Peer,
        id: N::GossipId,
        extends_tip: bool,
    ) {
        if !extends_tip {
            self.clone()
                .on_block(ReceivedBlock::new(block), Some(peer), Some(id), false)
                .await;
            return;
        }
        // Kept to answer `GetBlockTxn` before it is forwarded; the copy
        // connected is made after.
        let block = Arc::new(block);
        self.remember_rebuilt(block.clone());
        let _ = self.in_hand.send(block.hash());
        self.net.validate(id, Verdict::Accept).await;
        let block = ReceivedBlock::new(Arc::unwrap_or_clone(block));
        let mut out = self.chain.accept_block(block, Some(peer)).await;
        out.offender = None;
        self.clone().carry_out(out, None).await;
    }

    /// Keeps the last few rebuilt blocks, to answer `GetBlockTxn` for a
    /// block forwarded before it is stored.
    fn remember_rebuilt(&self, block: Arc<Block>) {
        let mut recent = self.rebuilt.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= REBUILT_KEPT {
            recent.pop_front();
        }
        recent.push_back(block);
    }

    /// A block rebuilt here lately, by hash.
    pub(super) fn rebuilt(&self, hash: &BlockHash) -> Option<Arc<Block>> {
        let recent = self.rebuilt.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().find(|b| b.hash() == *hash).cloned()
    }

    /// Asks `peer` for the transactions `p` lacks, within
    /// [`COMPACT_DEADLINE`], and finishes the block; `None` when the answer
    /// does not make the announced block. The flag: whether `peer`
    /// answered in time.
    async fn missing_from(
        &self,
        peer: N::Peer,
        hash: BlockHash,
        mut p: PartialBlock,
    ) -> (Option<Block>, bool) {
        let indexes = p.missing();
        let asked = indexes.len();
        let request = self
            .net
            .request(peer, Request::GetBlockTxn { hash, indexes });
        let answer = match tokio::time::timeout(COMPACT_DEADLINE, request).await {
            Ok(a) => a,
            Err(_) => {
                tracing::debug!(%peer, hash = %hash.short(), "no transactions for a compact block within {} s; asking other peers", COMPACT_DEADLINE.as_secs());
                return (None, false);
            }
        };
        let txs = match answer {
            Ok(Response::BlockTxn { hash: h, txs }) if h == hash => txs,
            Ok(other) => {
                tracing::debug!(%peer, hash = %hash.short(), "no transactions for a compact block: {}", kind(&other));
                return (None, true);
            }
            Err(e) => {
                tracing::debug!(%peer, hash = %hash.short(), "no transactions for a compact block: {e}");
                return (None, false);
            }
        };
        let finished = p.fill(txs).and_then(|()| p.finish());
        match finished {
            Ok(block) => {
                tracing::debug!(hash = %hash.short(), asked, "compact block finished");
                (Some(block), true)
            }
            Err(e) => {
                tracing::debug!(%peer, hash = %hash.short(), "compact block not rebuilt: {e}; asking for the full block");
                (None, true)
            }
        }
    }

    /// Asks `peer` for the whole block `hash`. A reply holding another
    /// block is misbehaviour.
    async fn full_block_from(&self, peer: N::Peer, hash: BlockHash) -> Option<ReceivedBlock> {
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
