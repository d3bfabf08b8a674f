//! The pool's entries and their links: which pool transactions each one
//! spends and is spent by, with the totals of its ancestor and descendant
//! packages kept current (and the indexes with them) as entries come and
//! go.

use super::index::Package;
use super::{Mempool, UNCONFIRMED_HEIGHT};
use crate::address::PubkeyHash;
use crate::amount::Amount;
use crate::hash::Txid;
use crate::transaction::{OutPoint, Transaction};
use crate::validation::{Coin, UtxoView};
use std::collections::HashSet;

#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub tx: Transaction,
    pub fee: Amount,
    pub size: usize,
    /// When it entered, unix seconds.
    pub time: u64,
    /// Arrival order: a dependency order.
    pub seq: u64,
    /// In-pool transactions it spends.
    pub parents: HashSet<Txid>,
    /// In-pool transactions that spend it.
    pub children: HashSet<Txid>,
    /// With all its descendants (itself included).
    pub desc: Package,
    /// With all its ancestors (itself included).
    pub anc: Package,
}

/// The chain's UTXO set seen through the pool: outputs of pool transactions
/// exist (unconfirmed), outputs spent by pool transactions do not. The
/// transactions in `without` are as if gone.
pub(super) struct PoolView<'a, V: UtxoView> {
    pub chain: &'a V,
    pub pool: &'a Mempool,
    pub without: &'a HashSet<Txid>,
}

impl<V: UtxoView> UtxoView for PoolView<'_, V> {
    fn coin(&self, op: &OutPoint) -> Option<Coin> {
        if let Some(s) = self.pool.spends.get(op) {
            if !self.without.contains(s) {
                return None;
            }
        }
        if let Some(e) = self.pool.entries.get(&op.txid) {
            if self.without.contains(&op.txid) {
                return None;
            }
            return e
                .tx
                .outputs
                .get(usize::try_from(op.vout).ok()?)
                .map(|o| Coin {
                    output: *o,
                    height: UNCONFIRMED_HEIGHT,
                    is_coinbase: false,
                });
        }
        self.chain.coin(op)
    }
}

impl Mempool {
    /// The addresses a transaction touches: its outputs' and its inputs'.
    pub(super) fn addresses_of(tx: &Transaction) -> HashSet<PubkeyHash> {
        tx.outputs
            .iter()
            .map(|o| o.pubkey_hash)
            .chain(
                tx.inputs
                    .iter()
                    .filter(|i| !i.pubkey.is_empty())
                    .map(|i| PubkeyHash::from_pubkey_bytes(&i.pubkey)),
            )
            .collect()
    }

    /// In-pool ancestors of a transaction with these parents (not itself).
    pub(super) fn ancestors_of(&self, parents: &HashSet<Txid>) -> HashSet<Txid> {
        self.walk(parents.iter().copied(), |e| &e.parents)
    }

    /// `txid` and all its in-pool descendants.
    pub(super) fn with_descendants(&self, txid: &Txid) -> HashSet<Txid> {
        self.walk(std::iter::once(*txid), |e| &e.children)
    }

    /// Everything reachable from `start` along `next`, `start` included
    /// when it is in the pool.
    fn walk(
        &self,
        start: impl Iterator<Item = Txid>,
        next: impl Fn(&Entry) -> &HashSet<Txid>,
    ) -> HashSet<Txid> {
        let mut seen = HashSet::new();
        let mut stack: Vec<Txid> = start.collect();
        while let Some(t) = stack.pop() {
            if let Some(e) = self.entries.get(&t) {
                if seen.insert(t) {
                    stack.extend(next(e).iter().copied());
                }
            }
        }
        seen
    }

    /// Changes the descendant or ancestor totals of `txid`, keeping the
    /// indexes in step.
    fn retotal(&mut self, txid: &Txid, f: impl FnOnce(&mut Package, &mut Package)) {
        if let Some(e) = self.entries.get_mut(txid) {
            self.index.remove(e.seq, e.desc, e.anc);
            f(&mut e.desc, &mut e.anc);
            self.index.insert(e.seq, e.desc, e.anc);
        }
    }

    /// Adds a checked transaction with its in-pool `parents`.
    pub(super) fn insert(
        &mut self,
        tx: Transaction,
        txid: Txid,
        fee: Amount,
        now: u64,
        parents: HashSet<Txid>,
    ) {
        let size = tx.size();
        let me = Package::single(fee.0, size);
        let ancestors = self.ancestors_of(&parents);
        for input in &tx.inputs {
            self.spends.insert(input.prevout, txid);
        }
        for p in &parents {
            if let Some(e) = self.entries.get_mut(p) {
                e.children.insert(txid);
            }
        }
        let mut anc = me;
        for a in &ancestors {
            if let Some(e) = self.entries.get(a) {
                anc = anc.plus(Package::single(e.fee.0, e.size));
            }
            self.retotal(a, |desc, _| *desc = desc.plus(me));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, txid);
        self.by_time.insert((now, seq));
        for a in Self::addresses_of(&tx) {
            self.by_address.entry(a).or_default().insert(seq);
        }
        self.index.insert(seq, me, anc);
        self.bytes += size;
        self.count(fee, size, true);
        self.entries.insert(
            txid,
            Entry {
                tx,
                fee,
                size,
                time: now,
                seq,
                parents,
                children: HashSet::new(),
                desc: me,
                anc,
            },
        );
    }

    /// Removes one transaction, unlinking it; its remaining ancestors lose
    /// it from their descendant totals, its descendants from their
    /// ancestor totals.
    pub(super) fn remove_one(&mut self, txid: &Txid) -> Option<Entry> {
        let e = self.entries.get(txid)?;
        let me = Package::single(e.fee.0, e.size);
        let ancestors = self.ancestors_of(&e.parents);
        let mut descendants = self.with_descendants(txid);
        descendants.remove(txid);
        for a in &ancestors {
            self.retotal(a, |desc, _| *desc = desc.minus(me));
        }
        for d in &descendants {
            self.retotal(d, |_, anc| *anc = anc.minus(me));
        }
        let e = self.entries.remove(txid)?;
        self.index.remove(e.seq, e.desc, e.anc);
        for p in &e.parents {
            if let Some(pe) = self.entries.get_mut(p) {
                pe.children.remove(txid);
            }
        }
        for c in &e.children {
            if let Some(ce) = self.entries.get_mut(c) {
                ce.parents.remove(txid);
            }
        }
        for input in &e.tx.inputs {
            if self.spends.get(&input.prevout) == Some(txid) {
                self.spends.remove(&input.prevout);
            }
        }
        self.by_seq.remove(&e.seq);
        self.by_time.remove(&(e.time, e.seq));
        for a in Self::addresses_of(&e.tx) {
            if let Some(set) = self.by_address.get_mut(&a) {
                set.remove(&e.seq);
                if set.is_empty() {
                    self.by_address.remove(&a);
                }
            }
        }
        self.bytes -= e.size;
        self.count(e.fee, e.size, false);
        Some(e)
    }

    /// Removes `txid` and its descendants, children first; returns them.
    pub(super) fn remove_with_descendants(&mut self, txid: &Txid) -> Vec<Txid> {
        self.take_with_descendants(txid)
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    }

    /// Removes `txid` and its descendants, children first; returns their
    /// entries, children first.
    pub(super) fn take_with_descendants(&mut self, txid: &Txid) -> Vec<(Txid, Entry)> {
        let mut all: Vec<(u64, Txid)> = self
            .with_descendants(txid)
            .into_iter()
            .filter_map(|t| self.entries.get(&t).map(|e| (e.seq, t)))
            .collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.into_iter()
            .filter_map(|(_, t)| self.remove_one(&t).map(|e| (t, e)))
            .collect()
    }
}
