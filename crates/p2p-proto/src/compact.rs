//! Compact blocks, after Bitcoin's BIP152: a block announced as its header,
//! a 6-byte short id per transaction and its coinbase in full. The
//! receiver rebuilds the block from its mempool, asks the announcer for
//! what it lacks in one `GetBlockTxn`, and falls back to the full block
//! when short ids collide or the rebuilt block's Merkle root does not
//! match its header.
//!
//! Short ids: SHA-256 of the header's 92 bytes followed by the 8-byte
//! nonce gives two SipHash-2-4 keys, `k0` (its bytes 0..8) and `k1`
//! (8..16), each read little-endian; a transaction's short id is the low
//! 6 bytes, little-endian, of SipHash-2-4 of its 32-byte txid.

use crate::bounded;
use chain_core::{merkle_root, Block, BlockHash, BlockHeader, Transaction, Txid, MAX_BLOCK_SIZE};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use siphasher::sip::SipHasher24;
use std::collections::HashMap;
use std::hash::Hasher;

/// Bytes of a short id.
pub const SHORT_ID_LEN: usize = 6;
/// Most transactions a block can hold: every transaction but the coinbase
/// spends an input (a 32-byte txid and more), so encodes to over 50 bytes.
pub const MAX_BLOCK_TXS: usize = MAX_BLOCK_SIZE / 50;

/// A transaction's short id in one compact block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ShortId(pub [u8; SHORT_ID_LEN]);

/// The SipHash keys of one compact block's short ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortIdKey {
    /// The first key: bytes 0..8 of the SHA-256, little-endian.
    pub k0: u64,
    /// The second key: bytes 8..16, little-endian.
    pub k1: u64,
}

impl ShortIdKey {
    /// The keys for a block with `header` announced with `nonce`.
    pub fn new(header: &BlockHeader, nonce: [u8; 8]) -> ShortIdKey {
        let mut h = Sha256::new();
        h.update(header.to_bytes());
        h.update(nonce);
        let d = h.finalize();
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&d[at..at + 8]);
            u64::from_le_bytes(w)
        };
        ShortIdKey {
            k0: word(0),
            k1: word(8),
        }
    }

    /// The short id of `txid`.
    pub fn short_id(&self, txid: &Txid) -> ShortId {
        let mut h = SipHasher24::new_with_keys(self.k0, self.k1);
        h.write(&txid.0);
        let v = h.finish().to_le_bytes();
        let mut id = [0u8; SHORT_ID_LEN];
        id.copy_from_slice(&v[..SHORT_ID_LEN]);
        ShortId(id)
    }
}

/// A block as its header, its coinbase and a short id per other transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactBlock {
    /// The block's header (its 92 bytes).
    pub header: BlockHeader,
    /// Chosen by the announcer; keys the short ids with the header.
    pub nonce: [u8; 8],
    /// The short ids of the transactions after the coinbase, in block order.
    #[serde(deserialize_with = "bounded::vec::<_, _, MAX_BLOCK_TXS>")]
    pub short_ids: Vec<ShortId>,
    /// The block's first transaction, in full.
    pub coinbase: Transaction,
}

impl CompactBlock {
    /// The compact form of `block` with `nonce`; `None` for a block with
    /// no transaction (never a valid one).
    pub fn of(block: &Block, nonce: [u8; 8]) -> Option<CompactBlock> {
        let (coinbase, rest) = block.transactions.split_first()?;
        let key = ShortIdKey::new(&block.header, nonce);
        Some(CompactBlock {
            header: block.header,
            nonce,
            short_ids: rest.iter().map(|tx| key.short_id(&tx.txid())).collect(),
            coinbase: coinbase.clone(),
        })
    }

    /// The block's hash.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// Its short ids' keys.
    pub fn key(&self) -> ShortIdKey {
        ShortIdKey::new(&self.header, self.nonce)
    }

    /// The block's transactions found among `pool`'s (each with its txid);
    /// [`Rebuild::DuplicateIds`] when two of the block's short ids are the
    /// same (it cannot be rebuilt from them). A short id two pool
    /// transactions share is left missing, to be asked for. The pool's
    /// txids are taken as its transactions' own: [`PartialBlock::finish`]
    /// checks the Merkle root with them instead of hashing the
    /// transactions again, so `pool` must pair each transaction with the
    /// txid it has (as a mempool keyed by txid does).
    pub fn rebuild<'a>(
        &self,
        pool: impl IntoIterator<Item = (&'a Txid, &'a Transaction)>,
    ) -> Rebuild {
        let mut at: HashMap<ShortId, usize> = HashMap::with_capacity(self.short_ids.len());
        for (i, id) in self.short_ids.iter().enumerate() {
            if at.insert(*id, i + 1).is_some() {
                return Rebuild::DuplicateIds;
            }
        }
        let mut txs: Vec<Option<Transaction>> = vec![None; self.short_ids.len() + 1];
        txs[0] = Some(self.coinbase.clone());
        let mut matched: Vec<Option<Txid>> = vec![None; txs.len()];
        let mut collided = Vec::new();
        let key = self.key();
        for (txid, tx) in pool {
            let Some(&i) = at.get(&key.short_id(txid)) else {
                continue;
            };
            match matched[i] {
                None => {
                    matched[i] = Some(*txid);
                    txs[i] = Some(tx.clone());
                }
                Some(other) if other != *txid => collided.push(i),
                Some(_) => {}
            }
        }
        for i in collided {
            txs[i] = None;
            matched[i] = None;
        }
        Rebuild::Partial(PartialBlock {
            header: self.header,
            txs,
            pool_ids: matched,
        })
    }
}

/// What a compact block's rebuild gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rebuild {
    /// Two of the block's transactions share a short id.
    DuplicateIds,
    /// The transactions found, with gaps for those to ask for.
    Partial(PartialBlock),
}

/// A block being rebuilt: its header and the transactions found so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialBlock {
    header: BlockHeader,
    txs: Vec<Option<Transaction>>,
    /// The txids of the transactions taken from the pool, by position
    /// (none for the coinbase and for those filled in).
    pool_ids: Vec<Option<Txid>>,
}

/// Why a rebuilt block is not the announced one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    /// `BlockTxn` held another number of transactions than asked for.
    #[error("{got} transactions sent for {asked} asked")]
    WrongCount {
        /// Asked for.
        asked: usize,
        /// Sent.
        got: usize,
    },
    /// Transactions are still missing.
    #[error("{0} transactions still missing")]
    Incomplete(usize),
    /// The transactions do not hash to the header's Merkle root: a short
    /// id matched another transaction, or the sender sent others.
    #[error("the rebuilt transactions do not match the header's Merkle root")]
    MerkleMismatch,
}

impl PartialBlock {
    /// Block positions of the transactions still missing, ascending.
    pub fn missing(&self) -> Vec<u32> {
        self.txs
            .iter()
            .enumerate()
            .filter(|(_, t)| t.is_none())
            .filter_map(|(i, _)| u32::try_from(i).ok())
            .collect()
    }

    /// Puts `txs`, the answer to a `GetBlockTxn` for [`Self::missing`], in
    /// their places.
    pub fn fill(&mut self, txs: Vec<Transaction>) -> Result<(), RebuildError> {
        let gaps = self.missing();
        if gaps.len() != txs.len() {
            return Err(RebuildError::WrongCount {
                asked: gaps.len(),
                got: txs.len(),
            });
        }
        for (i, tx) in gaps.into_iter().zip(txs) {
            self.txs[i as usize] = Some(tx);
        }
        Ok(())
    }

    /// The block, once every transaction is in place and their Merkle root
    /// is the header's. Only the transactions not taken from the pool (the
    /// coinbase, those filled in) are hashed; the rest are moved, not
    /// copied.
    pub fn finish(self) -> Result<Block, RebuildError> {
        let missing = self.txs.iter().filter(|t| t.is_none()).count();
        if missing > 0 {
            return Err(RebuildError::Incomplete(missing));
        }
        let mut transactions = Vec::with_capacity(self.txs.len());
        let mut ids = Vec::with_capacity(self.txs.len());
        for (tx, pool_id) in self.txs.into_iter().zip(self.pool_ids) {
            let Some(tx) = tx else {
                return Err(RebuildError::Incomplete(missing));
            };
            ids.push(pool_id.unwrap_or_else(|| tx.txid()));
            transactions.push(tx);
        }
        if merkle_root(&ids) != self.header.merkle_root {
            return Err(RebuildError::MerkleMismatch);
        }
        Ok(Block {
            header: self.header,
            transactions,
        })
    }
}

#[cfg(test)]
mod tests;
