//! Reads of the pool that cost what they return: a page of txids, one
//! address's entries, everything in dependency order.

use super::graph::Entry;
use super::Mempool;
use crate::address::PubkeyHash;
use crate::amount::Amount;
use crate::hash::Txid;
use crate::transaction::{OutPoint, Transaction, TxOut};
use crate::validation::UtxoView;

impl Mempool {
    /// All transactions in dependency order.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.by_seq
            .values()
            .filter_map(|t| self.entries.get(t).map(|e| &e.tx))
    }

    /// Up to `limit` txids in the order they entered, from just after
    /// `after` (from the first when `None`): a page, found in O(log n +
    /// limit). `None` when `after` is no longer in the pool.
    pub fn txids_after(&self, after: Option<&Txid>, limit: usize) -> Option<Vec<Txid>> {
        use std::ops::Bound;
        let start = match after {
            Some(t) => Bound::Excluded(self.entries.get(t)?.seq),
            None => Bound::Unbounded,
        };
        Some(
            self.by_seq
                .range((start, Bound::Unbounded))
                .take(limit)
                .map(|(_, t)| *t)
                .collect(),
        )
    }

    /// All transactions in dependency order, each with its txid, fee and
    /// encoded size. No txid is computed.
    pub fn entries(&self) -> impl Iterator<Item = (&Txid, &Transaction, Amount, usize)> {
        self.by_seq
            .values()
            .filter_map(|t| self.entries.get_key_value(t))
            .map(|(t, e)| (t, &e.tx, e.fee, e.size))
    }

    /// All transactions in dependency order with the time each entered.
    pub fn entries_with_time(&self) -> impl Iterator<Item = (&Transaction, u64)> {
        self.by_seq
            .values()
            .filter_map(|t| self.entries.get(t).map(|e| (&e.tx, e.time)))
    }

    /// Outputs paying `owner` created by pool transactions and not spent in
    /// the pool, each with whether it is change: every input of its
    /// transaction spent a coin of `owner` too. No txid is computed.
    pub fn unspent_outputs_for(
        &self,
        owner: &PubkeyHash,
        chain: &impl UtxoView,
    ) -> Vec<(OutPoint, TxOut, bool)> {
        self.unspent_outputs_for_at_most(owner, chain, usize::MAX)
    }

    /// [`Mempool::unspent_outputs_for`], looking at no more than
    /// `max_entries` of the address's pool transactions (the oldest
    /// first): the work is bounded whatever the pool holds.
    pub fn unspent_outputs_for_at_most(
        &self,
        owner: &PubkeyHash,
        chain: &impl UtxoView,
        max_entries: usize,
    ) -> Vec<(OutPoint, TxOut, bool)> {
        let mut out = Vec::new();
        for (txid, e) in self.address_entries(owner).take(max_entries) {
            let mut change = None;
            for (i, o) in e.tx.outputs.iter().enumerate() {
                // Output counts are bounded by the transaction size limit.
                let op = OutPoint {
                    txid: *txid,
                    vout: i as u32,
                };
                if o.pubkey_hash != *owner || self.spends.contains_key(&op) {
                    continue;
                }
                let is_change = *change.get_or_insert_with(|| {
                    e.tx.inputs.iter().all(|i| {
                        self.entries
                            .get(&i.prevout.txid)
                            .and_then(|p| p.tx.outputs.get(i.prevout.vout as usize).copied())
                            .or_else(|| chain.coin(&i.prevout).map(|c| c.output))
                            .is_some_and(|o| o.pubkey_hash == *owner)
                    })
                });
                out.push((op, *o, is_change));
            }
        }
        out
    }

    /// Outputs paying `owner` created by pool transactions and not spent in
    /// the pool, looking at no more than `max_entries` of the address's
    /// pool transactions (the oldest first).
    pub fn outputs_paying(&self, owner: &PubkeyHash, max_entries: usize) -> Vec<(OutPoint, TxOut)> {
        let mut out = Vec::new();
        for (txid, e) in self.address_entries(owner).take(max_entries) {
            for (i, o) in e.tx.outputs.iter().enumerate() {
                // Output counts are bounded by the transaction size limit.
                let op = OutPoint {
                    txid: *txid,
                    vout: i as u32,
                };
                if o.pubkey_hash == *owner && !self.spends.contains_key(&op) {
                    out.push((op, *o));
                }
            }
        }
        out
    }

    /// The pool's transactions that pay `owner` or spend from it, in the
    /// order they entered; the cost is theirs, not the pool's.
    fn address_entries<'a>(
        &'a self,
        owner: &PubkeyHash,
    ) -> impl Iterator<Item = (&'a Txid, &'a Entry)> + 'a {
        self.by_address
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|seq| self.by_seq.get(seq))
            .filter_map(|t| self.entries.get_key_value(t))
    }

    /// The coins of `owner` that pool transactions spend, looking at no
    /// more than `max_entries` of the address's pool transactions (the
    /// oldest first): the work is bounded whatever the pool holds.
    pub fn coins_spent_from(&self, owner: &PubkeyHash, max_entries: usize) -> Vec<OutPoint> {
        let mut out = Vec::new();
        for (_, e) in self.address_entries(owner).take(max_entries) {
            for i in &e.tx.inputs {
                if !i.pubkey.is_empty() && PubkeyHash::from_pubkey_bytes(&i.pubkey) == *owner {
                    out.push(i.prevout);
                }
            }
        }
        out
    }

    /// The txids of the pool's transactions that pay `owner` or spend from
    /// it, in the order they entered.
    pub fn txids_for(&self, owner: &PubkeyHash) -> Vec<Txid> {
        self.address_entries(owner).map(|(t, _)| *t).collect()
    }
}
