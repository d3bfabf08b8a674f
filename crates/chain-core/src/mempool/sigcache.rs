//! Signatures already verified: a set of keys, each the SHA-256 of a txid
//! and the coins its inputs spend, forgetting the oldest first. A
//! transaction seen again with the same coins (back from a
//! reorganisation, or in a block after the pool took it) is not verified
//! again (Bitcoin Core's signature and script execution caches).

use crate::hash::Txid;
use crate::validation::{Coin, SignatureCache};
use sha2::{Digest, Sha256};
use std::collections::{HashSet, VecDeque};

/// The cache. Memory: about 70 bytes an entry (the key in a hash set, and
/// again in the order of arrival), so about 31 MB for the 447,392 entries
/// a 64 MiB pool asks for.
#[derive(Clone, Debug)]
pub struct SigCache {
    keys: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
    capacity: usize,
}

impl SigCache {
    /// An empty cache holding at most `capacity` entries.
    pub fn new(capacity: usize) -> SigCache {
        SigCache {
            keys: HashSet::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// How many entries it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key of `txid` spending `coins`.
    pub fn key(txid: &Txid, coins: &[Coin]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(txid.0);
        for c in coins {
            h.update(c.output.value.0.to_le_bytes());
            h.update(c.output.pubkey_hash.0);
        }
        h.finalize().into()
    }

    /// True when `key` was remembered.
    pub fn contains_key(&self, key: &[u8; 32]) -> bool {
        self.keys.contains(key)
    }

    /// True when the signatures of `txid` spending `coins` were verified.
    pub fn contains(&self, txid: &Txid, coins: &[Coin]) -> bool {
        self.contains_key(&Self::key(txid, coins))
    }

    /// Remembers a verified key, forgetting the oldest past the capacity.
    pub fn insert_key(&mut self, key: [u8; 32]) {
        if self.keys.insert(key) {
            self.order.push_back(key);
            while self.order.len() > self.capacity {
                if let Some(old) = self.order.pop_front() {
                    self.keys.remove(&old);
                }
            }
        }
    }

    /// Remembers that the signatures of `txid` spending `coins` hold.
    pub fn insert(&mut self, txid: &Txid, coins: &[Coin]) {
        self.insert_key(Self::key(txid, coins));
    }
}

impl SignatureCache for SigCache {
    fn verified(&self, txid: &Txid, coins: &[Coin]) -> bool {
        self.contains(txid, coins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_key_goes_first_past_the_capacity() {
        let mut c = SigCache::new(2);
        let t = |b| Txid([b; 32]);
        c.insert(&t(1), &[]);
        c.insert(&t(2), &[]);
        c.insert(&t(1), &[]);
        assert_eq!(c.len(), 2);
        c.insert(&t(3), &[]);
        assert!(!c.contains(&t(1), &[]));
        assert!(c.contains(&t(2), &[]) && c.contains(&t(3), &[]));
    }
}
