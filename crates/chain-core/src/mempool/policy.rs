//! Admission: a transaction is checked on its own, then its inputs'
//! existence and values, then every policy rule (the rolling minimum fee,
//! replacement, chain limits, the free allowance, a full pool), and only
//! then its signatures, so a refusal for policy costs no signature check.

use super::free::Spent;
use super::graph::PoolView;
use super::{
    higher_rate, Dropped, FeeRate, Mempool, MempoolError, Source, INCREMENTAL_RELAY_FEE,
    MAX_ANCESTORS, MAX_DESCENDANTS, MAX_PACKAGE_BYTES, MAX_REPLACED, MIN_FEE_RATE,
};
use crate::amount::Amount;
use crate::checked::UnminedTx;
use crate::hash::Txid;
use crate::transaction::{OutPoint, Transaction};
use crate::validation::{check_transaction_inputs_with, UtxoView};
use std::collections::HashSet;

/// How a transaction comes to the pool.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    /// Who sent it (`None`: this node).
    from: Option<Source>,
    /// New to the pool: charged to the free allowance and held to the
    /// rolling minimum. A transaction the pool held before (back from a
    /// reorganisation, or saved at shutdown) is neither.
    new: bool,
}

impl Mempool {
    /// Validates `tx` against the chain and the pool and the policy, and
    /// adds it at time `now` (unix seconds). Returns its txid, and the
    /// transactions it replaced or pushed out. Free transactions are
    /// charged to the allowance all peers share.
    ///
    /// A [`Transaction`] is hashed once here; an [`UnminedTx`] carries its
    /// txid already and is not hashed again.
    pub fn accept(
        &mut self,
        tx: impl Into<UnminedTx>,
        chain: &impl UtxoView,
        now: u64,
    ) -> Result<(Txid, Vec<Dropped>), MempoolError> {
        self.accept_from(tx, chain, now, None)
    }

    /// Like [`Mempool::accept`] for a transaction a peer sent: a free one
    /// is charged to that peer's own allowance too.
    pub fn accept_from(
        &mut self,
        tx: impl Into<UnminedTx>,
        chain: &impl UtxoView,
        now: u64,
        from: Option<Source>,
    ) -> Result<(Txid, Vec<Dropped>), MempoolError> {
        let tx = tx.into();
        let txid = tx.txid();
        self.admit(tx.into_tx(), txid, chain, now, Arrival { from, new: true })
    }

    /// Like [`Mempool::accept`] for a transaction the pool held before (a
    /// reorganisation returned it, or it was saved at shutdown), entered at
    /// `time`: the free allowance is not charged again, and the rolling
    /// minimum does not apply.
    pub fn readmit(
        &mut self,
        tx: impl Into<UnminedTx>,
        chain: &impl UtxoView,
        time: u64,
    ) -> Result<(Txid, Vec<Dropped>), MempoolError> {
        let tx = tx.into();
        let txid = tx.txid();
        self.readmit_known(tx.into_tx(), txid, chain, time)
    }

    /// [`Mempool::readmit`] for a transaction whose txid the pool knows
    /// (a block's, or its own entry's).
    pub(super) fn readmit_known(
        &mut self,
        tx: Transaction,
        txid: Txid,
        chain: &impl UtxoView,
        time: u64,
    ) -> Result<(Txid, Vec<Dropped>), MempoolError> {
        self.admit(
            tx,
            txid,
            chain,
            time,
            Arrival {
                from: None,
                new: false,
            },
        )
    }

    /// `txid` is `tx`'s: every caller has it from an [`UnminedTx`], a
    /// checked block or the pool's own entries.
    fn admit(
        &mut self,
        tx: Transaction,
        txid: Txid,
        chain: &impl UtxoView,
        now: u64,
        arrival: Arrival,
    ) -> Result<(Txid, Vec<Dropped>), MempoolError> {
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyKnown(txid));
        }
        if tx.is_coinbase() {
            return Err(MempoolError::Coinbase(txid));
        }
        tx.check_with_txid(txid)?;
        let size = tx.size();
        if size > self.cfg.max_bytes {
            return Err(MempoolError::TooLarge {
                txid,
                size,
                max_bytes: self.cfg.max_bytes,
            });
        }
        // Conflicts: what it would replace, descendants included.
        let mut direct: Vec<(OutPoint, Txid)> = Vec::new();
        for input in &tx.inputs {
            if let Some(c) = self.spends.get(&input.prevout) {
                if !direct.iter().any(|(_, d)| d == c) {
                    direct.push((input.prevout, *c));
                }
            }
        }
        let mut replaced: HashSet<Txid> = HashSet::new();
        for (_, c) in &direct {
            replaced.extend(self.with_descendants(c));
        }
        if replaced.len() > MAX_REPLACED {
            return Err(MempoolError::TooManyReplaced {
                txid,
                count: replaced.len(),
            });
        }
        if tx.inputs.iter().any(|i| replaced.contains(&i.prevout.txid)) {
            return Err(MempoolError::SpendsConflict(txid));
        }
        // Inputs first, signatures last.
        let view = PoolView {
            chain,
            pool: self,
            without: &replaced,
        };
        let fee = check_transaction_inputs_with(&tx, &view, |_, _| false)?;
        let rate = FeeRate::of(fee, size);
        if arrival.new {
            let minimum = self.min_fee_rate(now);
            if minimum > FeeRate(0) && fee < minimum.fee_for(size) {
                return Err(MempoolError::MinFeeNotMet {
                    txid,
                    rate,
                    minimum,
                    needed: minimum.fee_for(size),
                });
            }
        }
        if let Some((_, conflict)) = direct.first().copied() {
            self.check_replacement(txid, conflict, &direct, &replaced, fee, size)?;
        }
        let parents: HashSet<Txid> = tx
            .inputs
            .iter()
            .map(|i| i.prevout.txid)
            .filter(|t| self.entries.contains_key(t))
            .collect();
        let ancestors = self.check_chain_limits(txid, &parents, size)?;
        let free = rate < MIN_FEE_RATE && arrival.new;
        if free {
            if let Err(spent) = self.free.check(arrival.from, size, now) {
                let (scope, per_minute) = match spent {
                    Spent::Peer(n) => ("of the peer that sent it", n),
                    Spent::Shared(n) => ("of all peers", n),
                };
                return Err(MempoolError::FreeRelayLimit {
                    txid,
                    rate,
                    scope,
                    per_minute,
                    needed: MIN_FEE_RATE.fee_for(size).max(Amount(1)),
                });
            }
        }
        // A full pool: the newcomer must not be the cheapest package.
        let freed: usize = replaced
            .iter()
            .filter_map(|t| self.entries.get(t))
            .map(|e| e.size)
            .sum();
        let need = (self.bytes - freed + size).saturating_sub(self.cfg.max_bytes);
        let mut gone = replaced.clone();
        let evict = self
            .plan_eviction(need, fee.0, size, &ancestors, &mut gone)
            .map_err(|outbid| MempoolError::PoolFull {
                txid,
                rate,
                max_bytes: self.cfg.max_bytes,
                needed: outbid.needed(size),
            })?;
        // Signatures (cached), the one costly check, once policy would take it.
        let view = PoolView {
            chain,
            pool: self,
            without: &replaced,
        };
        let cache = &self.sigcache;
        let mut key = None;
        let mut checked = 0usize;
        check_transaction_inputs_with(&tx, &view, |coins, jobs| {
            let k = super::SigCache::key(&txid, coins);
            key = Some(k);
            if cache.contains_key(&k) {
                return false;
            }
            checked = jobs;
            true
        })?;
        self.work.signatures_verified += checked as u64;
        if let Some(k) = key {
            self.sigcache.insert_key(k);
        }
        // Every check passed: change the pool.
        let mut dropped = Vec::new();
        for (_, c) in &direct {
            for t in self.remove_with_descendants(c) {
                dropped.push((t, MempoolError::Replaced { txid: t, by: txid }));
            }
        }
        for (package, rate) in evict {
            self.min_fee.evicted(rate);
            for t in package {
                if self.entries.contains_key(&t) {
                    for d in self.remove_with_descendants(&t) {
                        dropped.push((d, MempoolError::Evicted(d)));
                    }
                }
            }
        }
        if free {
            self.free.charge(arrival.from, size, now);
        }
        self.insert(tx, txid, fee, now, parents);
        Ok((txid, dropped))
    }

    /// Replacement: more in total than everything replaced plus its own
    /// relay at the incremental rate, and a higher rate than each
    /// transaction it conflicts with directly.
    fn check_replacement(
        &self,
        txid: Txid,
        conflict: Txid,
        direct: &[(OutPoint, Txid)],
        replaced: &HashSet<Txid>,
        fee: Amount,
        size: usize,
    ) -> Result<(), MempoolError> {
        let old_fees: u64 = replaced
            .iter()
            .filter_map(|t| self.entries.get(t))
            .map(|e| e.fee.0)
            .sum();
        let mut best_rate = FeeRate(0);
        let mut beats_each = true;
        for (_, c) in direct {
            if let Some(e) = self.entries.get(c) {
                best_rate = best_rate.max(FeeRate::of(e.fee, e.size));
                beats_each &= higher_rate(fee.0, size, e.fee.0, e.size);
            }
        }
        let floor = old_fees.saturating_add(INCREMENTAL_RELAY_FEE.fee_for(size).0);
        if fee.0 < floor || !beats_each {
            return Err(MempoolError::ReplacementTooCheap {
                txid,
                conflict,
                replaced: replaced.len() - 1,
                needed: Amount((floor - 1).max(best_rate.fee_for(size).0)),
                offered: fee,
                rate: best_rate,
            });
        }
        Ok(())
    }

    /// The unconfirmed chain limits for a newcomer of `size` bytes with
    /// these in-pool `parents`; returns its in-pool ancestors.
    fn check_chain_limits(
        &self,
        txid: Txid,
        parents: &HashSet<Txid>,
        size: usize,
    ) -> Result<HashSet<Txid>, MempoolError> {
        let ancestors = self.ancestors_of(parents);
        if ancestors.len() + 1 > MAX_ANCESTORS {
            return Err(MempoolError::TooManyAncestors {
                txid,
                count: ancestors.len() + 1,
            });
        }
        let anc_bytes: usize = size
            + ancestors
                .iter()
                .filter_map(|a| self.entries.get(a))
                .map(|e| e.size)
                .sum::<usize>();
        if anc_bytes > MAX_PACKAGE_BYTES {
            return Err(MempoolError::AncestorsTooLarge {
                txid,
                bytes: anc_bytes,
            });
        }
        for a in &ancestors {
            let Some(e) = self.entries.get(a) else {
                continue;
            };
            if e.desc.count + 1 > MAX_DESCENDANTS {
                return Err(MempoolError::TooManyDescendants {
                    ancestor: *a,
                    count: e.desc.count + 1,
                });
            }
            if e.desc.size + size > MAX_PACKAGE_BYTES {
                return Err(MempoolError::DescendantsTooLarge {
                    ancestor: *a,
                    bytes: e.desc.size + size,
                });
            }
        }
        Ok(ancestors)
    }
}
