//! Orphan blocks: blocks whose parent is not known yet, held while the
//! parent is fetched.
//!
//! An orphan cannot be validated against its parent, so what it may cost is
//! bounded up front:
//! - its header must meet its own target, and that target may be no easier
//!   than the chain allows at its height ([`easiest_target_at`]): an orphan
//!   costs its sender real work, never the two hashes of the easiest
//!   encodable target;
//! - the pool is bounded in bytes ([`OrphanPool::new`]), and each peer may
//!   hold only a share of it; a peer over its share loses one of its own
//!   orphans, and a full pool evicts at random, so no sender can predict
//!   which orphans survive or push out another's by ordering;
//! - an orphan is a reason to ask its sender for the missing blocks, never a
//!   reason to trust the sender's chain.

use chain_core::block::ChainParams;
use chain_core::pow::{CompactTarget, Target};
use chain_core::validation::BlockError;
use chain_core::{BlockHash, ReceivedBlock};
use rand::Rng;
use std::collections::HashMap;
use std::hash::Hash;

/// The default byte budget of the pool.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// The default number of orphans one peer may hold.
pub const DEFAULT_MAX_PER_PEER: usize = 64;

/// Why an orphan was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OrphanError {
    /// The block fails on its own: its header (version, bits, proof of
    /// work) or its body against the header.
    #[error(transparent)]
    Header(#[from] BlockError),
    /// The header's target is easier than the chain allows at its height.
    #[error("orphan block {hash} at height {height} claims difficulty bits {bits}, easier than this chain allows there")]
    TooEasy {
        /// The orphan.
        hash: BlockHash,
        /// Its claimed height.
        height: u32,
        /// Its bits.
        bits: CompactTarget,
    },
    /// Bigger than the whole pool.
    #[error("orphan block {hash} is {size} bytes, more than the orphan pool holds ({max})")]
    TooBig {
        /// The orphan.
        hash: BlockHash,
        /// Its encoded size.
        size: usize,
        /// The pool's budget.
        max: usize,
    },
}

impl OrphanError {
    /// Whether the sender is to blame: an honest node never relays a block
    /// whose header fails or whose difficulty the chain cannot have. A block
    /// too big for this node's pool is this node's limit, not an offence.
    pub fn is_sender_fault(&self) -> bool {
        match self {
            OrphanError::Header(e) => e.is_sender_fault(),
            OrphanError::TooEasy { .. } => true,
            OrphanError::TooBig { .. } => false,
        }
    }
}

/// The easiest target a block at `height` can carry, given that the next
/// block on the best chain (at `next_height`) must carry `next_bits`.
/// Without retargeting every block carries the genesis bits. With it, each
/// retarget boundary between the two heights may make the target at most
/// four times easier (the retarget clamp), never past the limit.
pub fn easiest_target_at(
    params: &ChainParams,
    next_bits: CompactTarget,
    next_height: u32,
    height: u32,
) -> Target {
    let limit = Target::pow_limit();
    if params.retarget_interval == 0 {
        return params.initial_bits.to_target().unwrap_or(limit);
    }
    let Some(mut target) = next_bits.to_target() else {
        return limit;
    };
    let (low, high) = (next_height.min(height), next_height.max(height));
    let interval = params.retarget_interval;
    let boundaries = high / interval - low / interval;
    for _ in 0..boundaries {
        target = target.times_four_capped();
        if target == limit {
            break;
        }
    }
    target
}

/// Checks an orphan before it takes any room: its header's own proof of
/// work, a target no easier than the chain allows at its height, and its
/// body against its header, so a corrupt copy is never held (and never
/// shuts out an honest copy with the same hash).
pub fn check_orphan(
    block: &ReceivedBlock,
    params: &ChainParams,
    next_bits: CompactTarget,
    next_height: u32,
) -> Result<(), OrphanError> {
    let h = &block.header;
    block.check_header()?;
    let easiest = easiest_target_at(params, next_bits, next_height, h.height);
    match h.bits.to_target() {
        Some(t) if t <= easiest => {}
        _ => {
            return Err(OrphanError::TooEasy {
                hash: block.hash(),
                height: h.height,
                bits: h.bits,
            })
        }
    }
    block.verify_body()?;
    Ok(())
}

struct Orphan<P> {
    block: ReceivedBlock,
    from: P,
}

/// Orphan blocks by hash, bounded in bytes and per peer.
pub struct OrphanPool<P> {
    orphans: HashMap<BlockHash, Orphan<P>>,
    per_peer: HashMap<P, usize>,
    bytes: usize,
    max_bytes: usize,
    max_per_peer: usize,
}

impl<P: Copy + Eq + Hash> Default for OrphanPool<P> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BYTES, DEFAULT_MAX_PER_PEER)
    }
}

impl<P: Copy + Eq + Hash> OrphanPool<P> {
    /// A pool of at most `max_bytes` of encoded blocks, `max_per_peer` of
    /// them from any one peer.
    pub fn new(max_bytes: usize, max_per_peer: usize) -> Self {
        OrphanPool {
            orphans: HashMap::new(),
            per_peer: HashMap::new(),
            bytes: 0,
            max_bytes,
            max_per_peer: max_per_peer.max(1),
        }
    }

    /// Orphans held.
    pub fn len(&self) -> usize {
        self.orphans.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.orphans.is_empty()
    }

    /// Encoded bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Orphans held from `peer`.
    pub fn count_from(&self, peer: &P) -> usize {
        self.per_peer.get(peer).copied().unwrap_or(0)
    }

    /// Whether `hash` is held.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.orphans.contains_key(hash)
    }

    /// Holds `block` (which the caller has checked with [`check_orphan`])
    /// from `from`. Makes
    /// room first: one of the sender's own orphans when it is at its share,
    /// then random orphans until the block fits. Returns how many were
    /// evicted.
    pub fn insert(&mut self, block: ReceivedBlock, from: P) -> Result<usize, OrphanError> {
        let hash = block.hash();
        let size = block.size();
        if self.orphans.contains_key(&hash) {
            return Ok(0);
        }
        if size > self.max_bytes {
            return Err(OrphanError::TooBig {
                hash,
                size,
                max: self.max_bytes,
            });
        }
        let mut rng = rand::thread_rng();
        let mut evicted = 0;
        if self.count_from(&from) >= self.max_per_peer {
            let own: Vec<BlockHash> = self
                .orphans
                .iter()
                .filter(|(_, o)| o.from == from)
                .map(|(h, _)| *h)
                .collect();
            if !own.is_empty() {
                let victim = own[rng.gen_range(0..own.len())];
                self.remove(&victim);
                evicted += 1;
            }
        }
        while self.bytes + size > self.max_bytes && !self.orphans.is_empty() {
            let i = rng.gen_range(0..self.orphans.len());
            if let Some(victim) = self.orphans.keys().nth(i).copied() {
                self.remove(&victim);
                evicted += 1;
            }
        }
        self.bytes += size;
        *self.per_peer.entry(from).or_default() += 1;
        self.orphans.insert(hash, Orphan { block, from });
        Ok(evicted)
    }

    fn remove(&mut self, hash: &BlockHash) -> Option<Orphan<P>> {
        let o = self.orphans.remove(hash)?;
        self.bytes -= o.block.size();
        if let Some(n) = self.per_peer.get_mut(&o.from) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&o.from);
            }
        }
        Some(o)
    }

    /// Takes out every orphan whose parent is `parent`, with its sender.
    pub fn take_children(&mut self, parent: &BlockHash) -> Vec<(ReceivedBlock, P)> {
        let kids: Vec<BlockHash> = self
            .orphans
            .iter()
            .filter(|(_, o)| o.block.header.prev == *parent)
            .map(|(h, _)| *h)
            .collect();
        kids.iter()
            .filter_map(|h| self.remove(h))
            .map(|o| (o.block, o.from))
            .collect()
    }

    /// Drops every orphan `peer` sent (when it is banned).
    pub fn forget_peer(&mut self, peer: &P) -> usize {
        let theirs: Vec<BlockHash> = self
            .orphans
            .iter()
            .filter(|(_, o)| o.from == *peer)
            .map(|(h, _)| *h)
            .collect();
        for h in &theirs {
            self.remove(h);
        }
        theirs.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chain_core::test_utils::genesis;
    use chain_core::PubkeyHash;

    fn chain_of(n: usize, params: &ChainParams) -> Vec<ReceivedBlock> {
        let g = genesis(params, PubkeyHash([1; 20]));
        chain_core::test_utils::chain_of(params, &g, n, PubkeyHash([2; 20]))
            .into_iter()
            .map(ReceivedBlock::new)
            .collect()
    }

    #[test]
    fn the_pool_stays_within_its_bytes_and_each_peers_share() {
        let params = chain_core::test_utils::easy_params();
        let blocks = chain_of(40, &params);
        let size = blocks[1].size();
        // Room for ten blocks, at most four from one peer.
        let mut pool: OrphanPool<u8> = OrphanPool::new(size * 10, 4);
        for b in &blocks[1..21] {
            pool.insert(b.clone(), 1).unwrap();
            assert!(pool.count_from(&1) <= 4);
        }
        assert_eq!(pool.count_from(&1), 4, "one peer keeps only its share");
        for (i, b) in blocks[21..].iter().enumerate() {
            pool.insert(b.clone(), 2 + (i % 5) as u8).unwrap();
            assert!(pool.bytes() <= size * 10);
        }
        assert_eq!(pool.len(), 10);
        assert_eq!(pool.bytes(), size * 10);
        for p in 1..=6u8 {
            assert!(pool.count_from(&p) <= 4);
        }
        // Too big for the whole pool: refused, not an offence.
        let mut small: OrphanPool<u8> = OrphanPool::new(size - 1, 4);
        let err = small.insert(blocks[1].clone(), 9).unwrap_err();
        assert!(!err.is_sender_fault());
        assert!(small.is_empty());
        // A banned peer's orphans go.
        let before = pool.len();
        let gone = pool.forget_peer(&2);
        assert_eq!(pool.len(), before - gone);
        assert_eq!(pool.count_from(&2), 0);
    }

    #[test]
    fn children_come_out_with_their_sender() {
        let params = chain_core::test_utils::easy_params();
        let blocks = chain_of(3, &params);
        let mut pool: OrphanPool<u8> = OrphanPool::default();
        pool.insert(blocks[2].clone(), 7).unwrap();
        pool.insert(blocks[3].clone(), 8).unwrap();
        let kids = pool.take_children(&blocks[1].hash());
        assert_eq!(kids.len(), 1);
        assert_eq!(kids[0].0.hash(), blocks[2].hash());
        assert_eq!(kids[0].1, 7);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.bytes(), blocks[3].size());
    }

    #[test]
    fn an_orphan_must_carry_a_difficulty_the_chain_allows() {
        // The tutorial's chain: 12 bits, no retargeting.
        let params = ChainParams::default();
        let mut easy = chain_of(1, &chain_core::test_utils::easy_params())[1]
            .clone()
            .into_block();
        // Easy bits meet their own target in a couple of hashes, but this
        // chain never allows them.
        let err = check_orphan(
            &ReceivedBlock::new(easy.clone()),
            &params,
            params.initial_bits,
            5,
        )
        .unwrap_err();
        assert!(matches!(err, OrphanError::TooEasy { .. }), "{err}");
        assert!(err.is_sender_fault());
        // The chain's own bits pass.
        easy.header.bits = params.initial_bits;
        chain_core::test_utils::remine(&mut easy);
        check_orphan(
            &ReceivedBlock::new(easy.clone()),
            &params,
            params.initial_bits,
            5,
        )
        .unwrap();
        // A header that misses its own target fails as such.
        easy.header.nonce = easy.header.nonce.wrapping_add(1);
        while easy
            .header
            .bits
            .to_target()
            .unwrap()
            .is_met_by(&easy.header.hash())
        {
            easy.header.nonce = easy.header.nonce.wrapping_add(1);
        }
        let err = check_orphan(
            &ReceivedBlock::new(easy.clone()),
            &params,
            params.initial_bits,
            5,
        )
        .unwrap_err();
        assert!(
            matches!(err, OrphanError::Header(BlockError::BadProofOfWork { .. })),
            "{err}"
        );
    }

    #[test]
    fn with_retargeting_each_boundary_allows_four_times_easier() {
        let params = ChainParams {
            retarget_interval: 10,
            ..ChainParams::default()
        };
        let next = params.initial_bits;
        let t0 = next.to_target().unwrap();
        // Same retarget period: no easier than the next block's bits.
        assert_eq!(easiest_target_at(&params, next, 12, 19), t0);
        // One boundary (height 20) between: four times easier.
        assert_eq!(
            easiest_target_at(&params, next, 12, 25),
            t0.times_four_capped()
        );
        // Far away: capped at the limit.
        assert_eq!(
            easiest_target_at(&params, next, 12, 100_000),
            Target::pow_limit()
        );
    }
}
