//! A compact block's first look, on the actor's thread: is it new, does
//! its header hold against its parent, and which of its transactions does
//! the mempool have.

use super::actor::Actor;
use chain_core::validation::{check_header, check_header_context, BlockError};
use chain_store::unix_now;
use p2p_proto::compact::{PartialBlock, Rebuild};
use p2p_proto::CompactBlock;

/// What the chain makes of a compact block before any transaction is asked for.
#[derive(Debug)]
pub enum Prepared {
    /// The block is stored already (or there is no chain yet).
    Known,
    /// Its header fails on its own or against its parent.
    BadHeader(BlockError),
    /// Its parent is not stored: fetch the full block, which is handled
    /// as any orphan is.
    Orphan,
    /// Two of its short ids are the same: fetch the full block.
    DuplicateIds,
    /// Its transactions found in the mempool, and the gaps; whether it
    /// extends the best chain's tip (then it is forwarded as soon as it is
    /// rebuilt, before it is connected).
    Partial(PartialBlock, bool),
}

impl<P: Copy + Eq + std::hash::Hash + std::fmt::Display> Actor<P> {
    pub(super) fn prepare_compact(&self, cb: &CompactBlock) -> Prepared {
        let Some(store) = self.store.as_ref() else {
            return Prepared::Known;
        };
        if let Err(e) = check_header(&cb.header) {
            return Prepared::BadHeader(e);
        }
        let hash = cb.hash();
        if !matches!(store.header_entry(&hash), Ok(None)) {
            return Prepared::Known;
        }
        let parent = match store.header_entry(&cb.header.prev) {
            Ok(Some(p)) => p,
            _ => return Prepared::Orphan,
        };
        match store.context_for_child(&cb.header.prev, &parent, unix_now()) {
            Ok(ctx) => {
                if let Err(e) = check_header_context(&cb.header, &ctx) {
                    return Prepared::BadHeader(e);
                }
            }
            Err(_) => return Prepared::Orphan,
        }
        let extends_tip = store.tip().hash == cb.header.prev;
        match cb.rebuild(self.mempool.iter()) {
            Rebuild::DuplicateIds => Prepared::DuplicateIds,
            Rebuild::Partial(p) => Prepared::Partial(p, extends_tip),
        }
    }
}
