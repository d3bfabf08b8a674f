//! Block templates: the best ancestor-package fee rate first (a
//! transaction with its not yet chosen ancestors, so a child that pays for
//! its parent counts with it), read from the index in that order, so a
//! template costs about the block's transactions, not the pool's (Bitcoin
//! Core's `BlockAssembler::addPackageTxs`).

use super::index::Rate;
use super::{Mempool, MIN_PAYMENT_BYTES};
use crate::amount::Amount;
use crate::block::MAX_BLOCK_SIZE;
use crate::checked::UnminedTx;
use crate::hash::Txid;
use crate::transaction::Transaction;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, HashSet};

/// After this many packages in a row did not fit, with the block within
/// [`NEARLY_FULL`] bytes of full, the template is done.
const MAX_CONSECUTIVE_FAILURES: usize = 1_000;
const NEARLY_FULL: usize = 4_000;

/// A package whose ancestors were partly taken: its new totals.
#[derive(PartialEq, Eq)]
struct Modified {
    rate: Rate,
    seq: Reverse<u64>,
    txid: Txid,
}

impl Ord for Modified {
    fn cmp(&self, o: &Self) -> Ordering {
        self.rate.cmp(&o.rate).then(self.seq.cmp(&o.seq))
    }
}

impl PartialOrd for Modified {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Mempool {
    /// `t` and its ancestors not yet `taken`, with their fee and bytes.
    fn package(&self, t: &Txid, taken: &HashSet<Txid>) -> (Vec<Txid>, Rate) {
        let mut pkg = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![*t];
        let (mut fee, mut size) = (0u64, 0usize);
        while let Some(x) = stack.pop() {
            if taken.contains(&x) || !seen.insert(x) {
                continue;
            }
            if let Some(e) = self.entries.get(&x) {
                pkg.push(x);
                fee = fee.saturating_add(e.fee.0);
                size += e.size;
                stack.extend(e.parents.iter().copied());
            }
        }
        (pkg, Rate { fee, size })
    }

    /// Transactions for a block within `max_bytes`, best ancestor-package
    /// fee rate first, in dependency order, and their total fee.
    pub fn template(&self, max_bytes: usize) -> (Vec<Transaction>, Amount) {
        let (txs, fees) = self.template_txs(max_bytes);
        (txs.into_iter().map(UnminedTx::into_tx).collect(), fees)
    }

    /// [`Mempool::template`], each transaction with the txid and size the
    /// pool holds for it: the miner hashes none of them again.
    pub fn template_txs(&self, max_bytes: usize) -> (Vec<UnminedTx>, Amount) {
        let mut taken: HashSet<Txid> = HashSet::new();
        let mut failed: HashSet<Txid> = HashSet::new();
        // Entries with a taken ancestor: their current totals, and a heap
        // of them (stale heap items are skipped).
        let mut modified: HashMap<Txid, Rate> = HashMap::new();
        let mut heap: BinaryHeap<Modified> = BinaryHeap::new();
        let mut order: Vec<Txid> = Vec::new();
        let mut used = 0usize;
        let mut fees = Amount::ZERO;
        let mut failures = 0usize;
        let mut unmodified = self.index.by_ancestors.iter().peekable();
        loop {
            if used + MIN_PAYMENT_BYTES > max_bytes {
                break;
            }
            // The best unmodified entry still to consider.
            let next_plain = loop {
                match unmodified.peek() {
                    Some((_, seq)) => {
                        let t = self.by_seq.get(seq).copied();
                        match t {
                            Some(t)
                                if !taken.contains(&t)
                                    && !failed.contains(&t)
                                    && !modified.contains_key(&t) =>
                            {
                                break Some(t)
                            }
                            _ => {
                                unmodified.next();
                            }
                        }
                    }
                    None => break None,
                }
            };
            // The best modified entry still current.
            while let Some(top) = heap.peek() {
                let current = modified.get(&top.txid).copied();
                if taken.contains(&top.txid)
                    || failed.contains(&top.txid)
                    || current != Some(top.rate)
                {
                    heap.pop();
                } else {
                    break;
                }
            }
            let plain_rate = next_plain
                .and_then(|t| self.entries.get(&t))
                .map(|e| (e.anc.rate(), Reverse(e.seq)));
            let modified_best = heap.peek().map(|m| (m.rate, m.seq));
            let candidate = match (plain_rate, modified_best) {
                (None, None) => break,
                (Some(p), Some(m)) if m > p => heap.pop().map(|m| m.txid),
                (Some(_), _) => {
                    unmodified.next();
                    next_plain
                }
                (None, Some(_)) => heap.pop().map(|m| m.txid),
            };
            let Some(candidate) = candidate else {
                break;
            };
            let (mut pkg, rate) = self.package(&candidate, &taken);
            if used + rate.size > max_bytes {
                failed.insert(candidate);
                failures += 1;
                if failures > MAX_CONSECUTIVE_FAILURES && used + NEARLY_FULL > max_bytes {
                    break;
                }
                continue;
            }
            let Some(f) = fees.checked_add(Amount(rate.fee)) else {
                failed.insert(candidate);
                continue;
            };
            failures = 0;
            fees = f;
            used += rate.size;
            pkg.sort_by_key(|x| self.entries.get(x).map(|e| e.seq));
            taken.extend(pkg.iter().copied());
            // Every descendant of what was taken has a smaller package now.
            for x in &pkg {
                modified.remove(x);
                for d in self.with_descendants(x) {
                    if taken.contains(&d) {
                        continue;
                    }
                    let (_, r) = self.package(&d, &taken);
                    let seq = self.entries.get(&d).map_or(0, |e| e.seq);
                    modified.insert(d, r);
                    heap.push(Modified {
                        rate: r,
                        seq: Reverse(seq),
                        txid: d,
                    });
                }
            }
            order.extend(pkg);
        }
        let txs = order
            .iter()
            .filter_map(|t| {
                self.entries
                    .get(t)
                    .map(|e| UnminedTx::known(e.tx.clone(), *t, e.size))
            })
            .collect();
        (txs, fees)
    }

    /// A template sized for one block, leaving room for the header and coinbase.
    pub fn block_template(&self) -> (Vec<Transaction>, Amount) {
        self.template(MAX_BLOCK_SIZE - 1_000)
    }

    /// [`Mempool::block_template`] with each transaction's txid and size.
    pub fn block_template_txs(&self) -> (Vec<UnminedTx>, Amount) {
        self.template_txs(MAX_BLOCK_SIZE - 1_000)
    }
}
