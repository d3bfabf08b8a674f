//! The mempool: unconfirmed transactions, validated against the chain's UTXO set.
//!
//! It accepts chains of unconfirmed transactions (a child may spend a parent
//! that is itself in the pool), refuses double spends, and hands out block
//! templates in dependency order. Insertion order is a dependency order,
//! because a child can only be accepted after its parent; every operation
//! that removes or re-adds transactions keeps that true.

use crate::amount::Amount;
use crate::block::{Block, MAX_BLOCK_SIZE};
use crate::hash::Txid;
use crate::transaction::{OutPoint, Transaction, TxError, TxOut};
use crate::validation::{check_transaction_inputs, Coin, InputError, UtxoView};
use std::collections::{BTreeMap, HashMap};

/// The height recorded for a coin that only exists in the mempool.
pub const UNCONFIRMED_HEIGHT: u32 = u32::MAX;
/// Default cap on the number of transactions held.
pub const DEFAULT_MAX_TXS: usize = 50_000;

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MempoolError {
    /// Already in the pool.
    #[error("transaction {0} is already in the mempool")]
    AlreadyKnown(Txid),
    /// A coinbase outside a block.
    #[error("transaction {0} is a coinbase, which is only valid inside a block")]
    Coinbase(Txid),
    /// Invalid on its own.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// Inputs do not hold up.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Spends an output another pool transaction already spends.
    #[error("transaction {txid} double-spends {outpoint}, already spent by mempool transaction {conflict}")]
    DoubleSpend {
        /// The refused transaction.
        txid: Txid,
        /// The contested output.
        outpoint: OutPoint,
        /// The transaction already spending it.
        conflict: Txid,
    },
    /// The pool is full.
    #[error("the mempool is full ({0} transactions)")]
    Full(usize),
}

impl MempoolError {
    /// Whether a peer that relayed the transaction is to blame. Honest
    /// peers check before they relay, so an invalid transaction is an
    /// offence; a known one, one whose parents this node has not seen (or
    /// has seen confirmed), a race between two payments and a full pool are
    /// not.
    pub fn is_sender_fault(&self) -> bool {
        match self {
            MempoolError::AlreadyKnown(_)
            | MempoolError::DoubleSpend { .. }
            | MempoolError::Full(_)
            | MempoolError::Input(InputError::Missing { .. }) => false,
            MempoolError::Coinbase(_) | MempoolError::Tx(_) | MempoolError::Input(_) => true,
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    tx: Transaction,
    fee: Amount,
    size: usize,
}

/// The pool.
#[derive(Debug)]
pub struct Mempool {
    entries: HashMap<Txid, Entry>,
    by_seq: BTreeMap<u64, Txid>,
    spends: HashMap<OutPoint, Txid>,
    next_seq: u64,
    max_txs: usize,
}

impl Default for Mempool {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_TXS)
    }
}

/// The chain's UTXO set seen through the pool: outputs of pool transactions
/// exist (unconfirmed), outputs spent by pool transactions do not.
struct PoolView<'a, V: UtxoView> {
    chain: &'a V,
    pool: &'a Mempool,
}

impl<V: UtxoView> UtxoView for PoolView<'_, V> {
    fn coin(&self, op: &OutPoint) -> Option<Coin> {
        if self.pool.spends.contains_key(op) {
            return None;
        }
        if let Some(e) = self.pool.entries.get(&op.txid) {
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
    /// An empty pool holding at most `max_txs` transactions.
    pub fn new(max_txs: usize) -> Self {
        Mempool {
            entries: HashMap::new(),
            by_seq: BTreeMap::new(),
            spends: HashMap::new(),
            next_seq: 0,
            max_txs,
        }
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when the pool holds `txid`.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// The transaction with this id.
    pub fn get(&self, txid: &Txid) -> Option<&Transaction> {
        self.entries.get(txid).map(|e| &e.tx)
    }

    /// The pool transaction spending `op`, if any.
    pub fn spender_of(&self, op: &OutPoint) -> Option<Txid> {
        self.spends.get(op).copied()
    }

    /// All transactions in dependency order.
    pub fn transactions(&self) -> impl Iterator<Item = &Transaction> {
        self.by_seq
            .values()
            .filter_map(|t| self.entries.get(t).map(|e| &e.tx))
    }

    /// Outputs created by pool transactions and not spent in the pool.
    pub fn unspent_outputs(&self) -> impl Iterator<Item = (OutPoint, TxOut)> + '_ {
        self.transactions().flat_map(move |tx| {
            let txid = tx.txid();
            tx.outputs.iter().enumerate().filter_map(move |(i, o)| {
                // Output counts are bounded by the transaction size limit.
                let op = OutPoint {
                    txid,
                    vout: i as u32,
                };
                (!self.spends.contains_key(&op)).then_some((op, *o))
            })
        })
    }

    /// Validates `tx` against the chain and the pool, and adds it. Returns its txid.
    pub fn accept(&mut self, tx: Transaction, chain: &impl UtxoView) -> Result<Txid, MempoolError> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyKnown(txid));
        }
        if tx.is_coinbase() {
            return Err(MempoolError::Coinbase(txid));
        }
        tx.check()?;
        for input in &tx.inputs {
            if let Some(conflict) = self.spends.get(&input.prevout) {
                return Err(MempoolError::DoubleSpend {
                    txid,
                    outpoint: input.prevout,
                    conflict: *conflict,
                });
            }
        }
        if self.entries.len() >= self.max_txs {
            return Err(MempoolError::Full(self.entries.len()));
        }
        let fee = check_transaction_inputs(&tx, &PoolView { chain, pool: self })?;
        for input in &tx.inputs {
            self.spends.insert(input.prevout, txid);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, txid);
        let size = tx.size();
        self.entries.insert(txid, Entry { tx, fee, size });
        Ok(txid)
    }

    /// Transactions for a block, in dependency order, within `max_bytes`, and their total fee.
    /// A transaction whose parent did not fit is left out too.
    pub fn template(&self, max_bytes: usize) -> (Vec<Transaction>, Amount) {
        let mut out = Vec::new();
        let mut taken = std::collections::HashSet::new();
        let mut used = 0usize;
        let mut fees = Amount::ZERO;
        for txid in self.by_seq.values() {
            let Some(e) = self.entries.get(txid) else {
                continue;
            };
            let parents_ok = e.tx.inputs.iter().all(|i| {
                !self.entries.contains_key(&i.prevout.txid) || taken.contains(&i.prevout.txid)
            });
            if !parents_ok || used + e.size > max_bytes {
                continue;
            }
            let Some(f) = fees.checked_add(e.fee) else {
                continue;
            };
            fees = f;
            used += e.size;
            taken.insert(*txid);
            out.push(e.tx.clone());
        }
        (out, fees)
    }

    /// A template sized for one block, leaving room for the header and coinbase.
    pub fn block_template(&self) -> (Vec<Transaction>, Amount) {
        self.template(MAX_BLOCK_SIZE - 1_000)
    }

    /// Removes everything and returns the transactions in dependency order.
    pub fn drain(&mut self) -> Vec<Transaction> {
        let order: Vec<Txid> = self.by_seq.values().copied().collect();
        let mut entries = std::mem::take(&mut self.entries);
        self.by_seq.clear();
        self.spends.clear();
        order
            .into_iter()
            .filter_map(|t| entries.remove(&t).map(|e| e.tx))
            .collect()
    }

    /// After the chain changed (blocks connected or disconnected): drops what
    /// the chain now confirms or contradicts, then offers `returned` (the
    /// transactions of disconnected blocks, oldest first) and the remaining
    /// pool back in dependency order. Returns the txids that were dropped as
    /// no longer valid.
    pub fn update_for_chain(
        &mut self,
        returned: Vec<Transaction>,
        connected: &[Block],
        chain: &impl UtxoView,
    ) -> Vec<(Txid, MempoolError)> {
        let confirmed: std::collections::HashSet<Txid> = connected
            .iter()
            .flat_map(|b| b.transactions.iter().map(Transaction::txid))
            .collect();
        let previous = self.drain();
        let mut dropped = Vec::new();
        for tx in returned
            .into_iter()
            .filter(|t| !t.is_coinbase())
            .chain(previous)
        {
            let txid = tx.txid();
            if confirmed.contains(&txid) || self.entries.contains_key(&txid) {
                continue;
            }
            if let Err(e) = self.accept(tx, chain) {
                dropped.push((txid, e));
            }
        }
        dropped
    }
}
