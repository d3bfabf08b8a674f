//! The pool after the chain moved: what blocks confirm or conflict with
//! leaves; after a reorganisation only what spent the disconnected blocks'
//! outputs is checked again; and what waited too long expires.

use super::{Dropped, FeeBand, Mempool, MempoolError};
use crate::hash::Txid;
use crate::transaction::{OutPoint, Transaction};
use crate::validation::{CheckedBlock, UtxoView};
use std::collections::HashSet;

impl Mempool {
    /// After the chain changed at time `now`: blocks `connected` (oldest
    /// first) and, in a reorganisation, `returned` (the transactions of
    /// the disconnected blocks, oldest first, coinbases included).
    ///
    /// What the blocks confirm leaves the pool, and what spends the same
    /// coins leaves with its descendants. After a reorganisation the pool
    /// transactions that spend an output of a disconnected block (the only
    /// ones whose coins changed) are taken out with their descendants;
    /// then the returned transactions not confirmed again, and those taken
    /// out, are offered back in dependency order, within the limits (the
    /// signature cache spares the signatures already checked). Nothing
    /// else in the pool is checked again. Returns what was dropped, and
    /// why.
    pub fn update_for_chain(
        &mut self,
        returned: Vec<Transaction>,
        connected: &[CheckedBlock],
        chain: &impl UtxoView,
        now: u64,
    ) -> Vec<Dropped> {
        let mut dropped = Vec::new();
        // Pool transactions spending what the disconnected blocks created.
        let mut taken_out: Vec<(u64, Txid, Transaction, u64)> = Vec::new();
        let returned: Vec<(Txid, Transaction)> =
            returned.into_iter().map(|t| (t.txid(), t)).collect();
        for (txid, tx) in &returned {
            for vout in 0..tx.outputs.len() {
                // Output counts are bounded by the transaction size limit.
                let op = OutPoint {
                    txid: *txid,
                    vout: vout as u32,
                };
                if let Some(spender) = self.spends.get(&op).copied() {
                    taken_out.extend(
                        self.take_with_descendants(&spender)
                            .into_iter()
                            .map(|(txid, e)| (e.seq, txid, e.tx, e.time)),
                    );
                }
            }
        }
        for block in connected {
            self.remove_for_block(block, &mut dropped);
        }
        if !connected.is_empty() {
            self.min_fee.block(now);
        }
        let confirmed: HashSet<Txid> = connected
            .iter()
            .flat_map(|b| b.txids().iter().copied())
            .collect();
        taken_out.sort_unstable_by_key(|(seq, _, _, _)| *seq);
        let offers = returned
            .into_iter()
            .filter(|(_, t)| !t.is_coinbase())
            .map(|(txid, t)| (txid, t, now))
            .chain(
                taken_out
                    .into_iter()
                    .map(|(_, txid, t, time)| (txid, t, time)),
            );
        for (txid, tx, time) in offers {
            if confirmed.contains(&txid) || self.entries.contains_key(&txid) {
                continue;
            }
            match self.readmit_known(tx, txid, chain, time) {
                Ok((_, out)) => dropped.extend(out),
                Err(e) => dropped.push((txid, e)),
            }
        }
        dropped
    }

    /// Takes out what `block` confirms, and what spends a coin it spends
    /// (with descendants, into `dropped`).
    fn remove_for_block(&mut self, block: &CheckedBlock, dropped: &mut Vec<Dropped>) {
        for (tx, &txid) in block.transactions.iter().zip(block.txids()) {
            if self.entries.contains_key(&txid) {
                self.remove_one(&txid);
                continue;
            }
            for input in &tx.inputs {
                if let Some(c) = self.spends.get(&input.prevout).copied() {
                    for t in self.remove_with_descendants(&c) {
                        dropped.push((
                            t,
                            MempoolError::ConflictsWithBlock {
                                txid: t,
                                outpoint: input.prevout,
                            },
                        ));
                    }
                }
            }
        }
    }

    /// Removes what waited longer than the expiry, with descendants; costs
    /// what leaves, from an index by entry time.
    pub fn expire(&mut self, now: u64) -> Vec<Dropped> {
        let cutoff = now.saturating_sub(self.cfg.expiry_secs);
        let old: Vec<Txid> = self
            .by_time
            .range(..(cutoff, 0))
            .filter_map(|(_, seq)| self.by_seq.get(seq).copied())
            .collect();
        let mut out = Vec::new();
        for t in old {
            if self.entries.contains_key(&t) {
                out.extend(
                    self.remove_with_descendants(&t)
                        .into_iter()
                        .map(|d| (d, MempoolError::Expired(d))),
                );
            }
        }
        out
    }

    /// Removes everything and returns the transactions in dependency order,
    /// each with the time it entered.
    pub fn drain(&mut self) -> Vec<(Transaction, u64)> {
        let order: Vec<Txid> = self.by_seq.values().copied().collect();
        let mut entries = std::mem::take(&mut self.entries);
        self.by_seq.clear();
        self.by_time.clear();
        self.index.clear();
        self.by_address.clear();
        self.spends.clear();
        self.bytes = 0;
        self.total_fee = 0;
        for b in &mut self.bands {
            *b = FeeBand {
                min_rate: b.min_rate,
                ..FeeBand::default()
            };
        }
        order
            .into_iter()
            .filter_map(|t| entries.remove(&t).map(|e| (e.tx, e.time)))
            .collect()
    }
}
