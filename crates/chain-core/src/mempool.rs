//! The mempool: unconfirmed transactions, validated against the chain's UTXO
//! set, under a fee policy that keeps payments getting through and the pool
//! from being filled for free (after Bitcoin Core's).
//!
//! - **Fee rate** is the fee per 1,000 bytes of a transaction's encoding.
//! - **Bounded.** The pool holds at most [`MempoolConfig::max_bytes`] of
//!   transactions. Past that, the package (a transaction with its
//!   descendants) with the lowest fee rate is evicted, descendants and all;
//!   a newcomer that would itself be the lowest is refused, with the rate
//!   it would need.
//! - **Chains of unconfirmed transactions** are limited to
//!   [`MAX_ANCESTORS`] ancestors and [`MAX_DESCENDANTS`] descendants (each
//!   counting the transaction itself) and [`MAX_PACKAGE_BYTES`] each way.
//! - **Free transactions** (paying under [`MIN_FEE_RATE`]) are admitted up
//!   to [`MempoolConfig::free_bytes_per_minute`], a token bucket: a quiet
//!   network is free to use, a flooded one is not.
//! - **Replacement** (full RBF): a transaction that conflicts with pool
//!   transactions replaces them, and their descendants, when it pays more
//!   in total than all of them and a higher rate than each it conflicts with.
//! - **Expiry**: a transaction leaves after [`MempoolConfig::expiry_secs`].
//! - **Templates** take the best ancestor-package fee rate first (a child
//!   that pays for its parent counts with it: CPFP).
//! - **Signature cache**: signatures verified once are not verified again
//!   for the same transaction spending the same coins
//!   ([`SIGCACHE_ENTRIES`] entries, about 8.5 MB).
//!
//! A new block removes what it confirms and what conflicts with it (with
//! descendants); nothing else is verified again.

use crate::address::PubkeyHash;
use crate::amount::Amount;
use crate::block::MAX_BLOCK_SIZE;
use crate::hash::Txid;
use crate::transaction::{OutPoint, Transaction, TxError, TxOut};
use crate::validation::{check_transaction_inputs_with, CheckedBlock, Coin, InputError, UtxoView};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};

/// The height recorded for a coin that only exists in the mempool.
pub const UNCONFIRMED_HEIGHT: u32 = u32::MAX;
/// Most ancestors of a pool transaction, itself included.
pub const MAX_ANCESTORS: usize = 25;
/// Most descendants of a pool transaction, itself included.
pub const MAX_DESCENDANTS: usize = 25;
/// Most bytes of a transaction with its ancestors, or with its descendants.
pub const MAX_PACKAGE_BYTES: usize = 101_000;
/// The lowest fee rate that is not free: 1 per 1,000 bytes.
pub const MIN_FEE_RATE: FeeRate = FeeRate(1);
/// Most transactions one replacement may evict.
pub const MAX_REPLACED: usize = 100;
/// What a replacement pays for its own relay, on top of the fees of what it
/// replaces (BIP125's rule 4; Bitcoin Core's `incrementalrelayfee`): each
/// replacement costs its sender at least its size at this rate, so a
/// sender cannot make every node verify and relay a large transaction
/// again and again for one unit more each time.
pub const INCREMENTAL_RELAY_FEE: FeeRate = MIN_FEE_RATE;
/// Entries of the signature cache. Counted: a hash set of 131,072 buckets
/// of 32-byte keys and the keys again in eviction order, about 8.5 MB.
pub const SIGCACHE_ENTRIES: usize = 100_000;

/// A fee rate: an amount per 1,000 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FeeRate(pub u64);

impl FeeRate {
    /// The rate of `fee` over `size` bytes, rounded down.
    pub fn of(fee: Amount, size: usize) -> FeeRate {
        let size = u128::try_from(size.max(1)).unwrap_or(u128::MAX);
        let r = u128::from(fee.0).saturating_mul(1000) / size;
        FeeRate(u64::try_from(r).unwrap_or(u64::MAX))
    }

    /// The fee this rate asks of `size` bytes, rounded up.
    pub fn fee_for(self, size: usize) -> Amount {
        let size = u128::try_from(size).unwrap_or(u128::MAX);
        let f = (u128::from(self.0).saturating_mul(size)).div_ceil(1000);
        Amount(u64::try_from(f).unwrap_or(u64::MAX))
    }
}

impl std::fmt::Display for FeeRate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} per 1,000 bytes", self.0)
    }
}

/// Whether `a` over `sa` bytes is a strictly higher rate than `b` over `sb`.
fn higher_rate(a: u64, sa: usize, b: u64, sb: usize) -> bool {
    let (sa, sb) = (sa.max(1) as u128, sb.max(1) as u128);
    u128::from(a) * sb > u128::from(b) * sa
}

/// How a pool is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most bytes of transactions held.
    pub max_bytes: usize,
    /// How long a transaction may wait, in seconds.
    pub expiry_secs: u64,
    /// Bytes of free transactions admitted per minute (burst: one minute's).
    pub free_bytes_per_minute: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_bytes: 64 * 1024 * 1024,
            expiry_secs: 14 * 24 * 3600,
            free_bytes_per_minute: 15_000,
        }
    }
}

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
    /// Spends an output a pool transaction spends, and does not pay enough to replace it.
    #[error("replacement pays too little: transaction {txid} spends a coin mempool transaction {conflict} already spends; to replace it and {replaced} more, pay a fee above {needed} (it pays {offered}) at a rate above {rate}")]
    ReplacementTooCheap {
        /// The refused transaction.
        txid: Txid,
        /// The transaction already spending one of its coins.
        conflict: Txid,
        /// Transactions it would replace, besides `conflict`.
        replaced: usize,
        /// The fee it would have to exceed.
        needed: Amount,
        /// The fee it pays.
        offered: Amount,
        /// The rate it would have to exceed.
        rate: FeeRate,
    },
    /// It would replace too many transactions.
    #[error("transaction {txid} would replace {count} transactions, the limit is {MAX_REPLACED}")]
    TooManyReplaced {
        /// The refused transaction.
        txid: Txid,
        /// How many.
        count: usize,
    },
    /// It spends an output of a transaction it would replace.
    #[error("transaction {0} spends an output of a transaction it conflicts with")]
    SpendsConflict(Txid),
    /// Too long a chain of unconfirmed ancestors.
    #[error("too many ancestors: transaction {txid} would have {count} unconfirmed ancestors with itself, the limit is {MAX_ANCESTORS}")]
    TooManyAncestors {
        /// The refused transaction.
        txid: Txid,
        /// With itself.
        count: usize,
    },
    /// Unconfirmed ancestors too large.
    #[error("ancestors too large: transaction {txid} with its unconfirmed ancestors would be {bytes} bytes, the limit is {MAX_PACKAGE_BYTES}")]
    AncestorsTooLarge {
        /// The refused transaction.
        txid: Txid,
        /// With its ancestors.
        bytes: usize,
    },
    /// An ancestor would have too many descendants.
    #[error("too many descendants: unconfirmed transaction {ancestor} would have {count} descendants with itself, the limit is {MAX_DESCENDANTS}")]
    TooManyDescendants {
        /// The ancestor at the limit.
        ancestor: Txid,
        /// With itself.
        count: usize,
    },
    /// An ancestor's descendants would be too large.
    #[error("descendants too large: unconfirmed transaction {ancestor} with its descendants would be {bytes} bytes, the limit is {MAX_PACKAGE_BYTES}")]
    DescendantsTooLarge {
        /// The ancestor at the limit.
        ancestor: Txid,
        /// With its descendants.
        bytes: usize,
    },
    /// Free (under the minimum rate) and the free allowance is spent.
    #[error("free-relay limit reached: transaction {txid} pays {rate}, under the minimum {MIN_FEE_RATE}, and this node's allowance for free transactions ({per_minute} bytes a minute) is spent; pay a fee of at least {needed}")]
    FreeRelayLimit {
        /// The refused transaction.
        txid: Txid,
        /// What it pays.
        rate: FeeRate,
        /// The allowance.
        per_minute: usize,
        /// The fee that would be accepted.
        needed: Amount,
    },
    /// The pool is full of transactions paying at least as much.
    #[error("pool full and fee too low: transaction {txid} pays {rate}; the pool is full ({max_bytes} bytes) and it would be the first evicted; pay a fee above {needed}")]
    PoolFull {
        /// The refused transaction.
        txid: Txid,
        /// What it pays.
        rate: FeeRate,
        /// The pool's size limit.
        max_bytes: usize,
        /// The fee that would have got in.
        needed: Amount,
    },
    /// Left the pool: replaced by a transaction paying more.
    #[error("transaction {txid} was replaced by {by}, which pays more")]
    Replaced {
        /// The transaction that left.
        txid: Txid,
        /// The replacement.
        by: Txid,
    },
    /// Left the pool: evicted for transactions paying a higher rate.
    #[error(
        "transaction {0} was evicted from the full mempool by transactions paying a higher rate"
    )]
    Evicted(Txid),
    /// Left the pool: waited too long.
    #[error("transaction {0} expired from the mempool")]
    Expired(Txid),
    /// Left the pool: a block spent the same coin (or one of its parents left).
    #[error("transaction {txid} conflicts with a block: {outpoint} is spent there")]
    ConflictsWithBlock {
        /// The transaction that left.
        txid: Txid,
        /// The coin the block spent.
        outpoint: OutPoint,
    },
    /// Larger than the whole pool.
    #[error("transaction {txid} is {size} bytes, more than the whole mempool ({max_bytes})")]
    TooLarge {
        /// The refused transaction.
        txid: Txid,
        /// Its size.
        size: usize,
        /// The pool's size limit.
        max_bytes: usize,
    },
}

impl MempoolError {
    /// The rule's stable name, as `docs/consensus.md` lists it: the
    /// variant's name, or the inner rule's for [`MempoolError::Tx`] and
    /// [`MempoolError::Input`]. Names never change meaning; a client may
    /// match on them.
    pub fn code(&self) -> &'static str {
        match self {
            MempoolError::AlreadyKnown(_) => "AlreadyKnown",
            MempoolError::Coinbase(_) => "Coinbase",
            MempoolError::Tx(e) => e.code(),
            MempoolError::Input(e) => e.code(),
            MempoolError::ReplacementTooCheap { .. } => "ReplacementTooCheap",
            MempoolError::TooManyReplaced { .. } => "TooManyReplaced",
            MempoolError::SpendsConflict(_) => "SpendsConflict",
            MempoolError::TooManyAncestors { .. } => "TooManyAncestors",
            MempoolError::AncestorsTooLarge { .. } => "AncestorsTooLarge",
            MempoolError::TooManyDescendants { .. } => "TooManyDescendants",
            MempoolError::DescendantsTooLarge { .. } => "DescendantsTooLarge",
            MempoolError::FreeRelayLimit { .. } => "FreeRelayLimit",
            MempoolError::PoolFull { .. } => "PoolFull",
            MempoolError::Replaced { .. } => "Replaced",
            MempoolError::Evicted(_) => "Evicted",
            MempoolError::Expired(_) => "Expired",
            MempoolError::ConflictsWithBlock { .. } => "ConflictsWithBlock",
            MempoolError::TooLarge { .. } => "TooLarge",
        }
    }

    /// The refusal as `TxRejected` carries it: the rule's name, a colon
    /// and a space, then the description.
    pub fn reason(&self) -> String {
        format!("{}: {self}", self.code())
    }

    /// Whether a peer that relayed the transaction is to blame. Honest
    /// peers check before they relay, so an invalid transaction is an
    /// offence. Policy (fees, limits, a full pool, a losing replacement) is
    /// never one, nor is a known transaction or one whose parents this node
    /// has not seen.
    pub fn is_sender_fault(&self) -> bool {
        match self {
            MempoolError::Coinbase(_) | MempoolError::Tx(_) | MempoolError::SpendsConflict(_) => {
                true
            }
            MempoolError::Input(InputError::Missing { .. }) => false,
            MempoolError::Input(_) => true,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
struct Entry {
    tx: Transaction,
    fee: Amount,
    size: usize,
    /// When it entered, unix seconds.
    time: u64,
    /// Arrival order: a dependency order.
    seq: u64,
    /// In-pool transactions it spends.
    parents: HashSet<Txid>,
    /// In-pool transactions that spend it.
    children: HashSet<Txid>,
    /// With all its descendants (itself included): count, fees, bytes.
    desc_count: usize,
    desc_fee: u64,
    desc_size: usize,
}

/// A transaction leaving the pool, and why.
pub type Dropped = (Txid, MempoolError);

/// The pool.
#[derive(Clone, Debug)]
pub struct Mempool {
    cfg: MempoolConfig,
    entries: HashMap<Txid, Entry>,
    by_seq: BTreeMap<u64, Txid>,
    /// For each address, the transactions that pay it or spend from it
    /// (by arrival), so one address's view costs its own entries.
    by_address: HashMap<PubkeyHash, BTreeSet<u64>>,
    spends: HashMap<OutPoint, Txid>,
    next_seq: u64,
    bytes: usize,
    /// Free-relay bucket: bytes available, and when it was last filled.
    free_tokens: f64,
    free_at: u64,
    sigcache: HashSet<[u8; 32]>,
    sigcache_order: VecDeque<[u8; 32]>,
    /// Signatures verified, for measurements and tests.
    signatures_verified: u64,
}

impl Default for Mempool {
    fn default() -> Self {
        Self::new(MempoolConfig::default())
    }
}

/// The chain's UTXO set seen through the pool: outputs of pool transactions
/// exist (unconfirmed), outputs spent by pool transactions do not. The
/// transactions in `without` are as if gone.
struct PoolView<'a, V: UtxoView> {
    chain: &'a V,
    pool: &'a Mempool,
    without: &'a HashSet<Txid>,
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
    /// An empty pool.
    pub fn new(cfg: MempoolConfig) -> Self {
        Mempool {
            cfg,
            entries: HashMap::new(),
            by_seq: BTreeMap::new(),
            by_address: HashMap::new(),
            spends: HashMap::new(),
            next_seq: 0,
            bytes: 0,
            free_tokens: cfg.free_bytes_per_minute as f64,
            free_at: 0,
            sigcache: HashSet::new(),
            sigcache_order: VecDeque::new(),
            signatures_verified: 0,
        }
    }

    /// Its settings.
    pub fn config(&self) -> &MempoolConfig {
        &self.cfg
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of transactions held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Signatures this pool has verified (cache hits are not counted).
    pub fn signatures_verified(&self) -> u64 {
        self.signatures_verified
    }

    /// True when the pool holds `txid`.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// The transaction with this id.
    pub fn get(&self, txid: &Txid) -> Option<&Transaction> {
        self.entries.get(txid).map(|e| &e.tx)
    }

    /// The fee `txid` pays, when it is in the pool.
    pub fn fee_of(&self, txid: &Txid) -> Option<Amount> {
        self.entries.get(txid).map(|e| e.fee)
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
        let mut out = Vec::new();
        for (txid, e) in self.address_entries(owner) {
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

    /// The txids of the pool's transactions that pay `owner` or spend from
    /// it, in the order they entered.
    pub fn txids_for(&self, owner: &PubkeyHash) -> Vec<Txid> {
        self.address_entries(owner).map(|(t, _)| *t).collect()
    }

    /// The addresses a transaction touches: its outputs' and its inputs'.
    fn addresses_of(tx: &Transaction) -> HashSet<PubkeyHash> {
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
    fn ancestors_of(&self, parents: &HashSet<Txid>) -> HashSet<Txid> {
        let mut seen: HashSet<Txid> = HashSet::new();
        let mut stack: Vec<Txid> = parents.iter().copied().collect();
        while let Some(t) = stack.pop() {
            if seen.insert(t) {
                if let Some(e) = self.entries.get(&t) {
                    stack.extend(e.parents.iter().copied());
                }
            }
        }
        seen
    }

    /// `txid` and all its in-pool descendants.
    fn with_descendants(&self, txid: &Txid) -> HashSet<Txid> {
        let mut seen = HashSet::new();
        let mut stack = vec![*txid];
        while let Some(t) = stack.pop() {
            if seen.insert(t) {
                if let Some(e) = self.entries.get(&t) {
                    stack.extend(e.children.iter().copied());
                }
            }
        }
        seen
    }

    fn sig_key(txid: &Txid, coins: &[Coin]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(txid.0);
        for c in coins {
            h.update(c.output.value.0.to_le_bytes());
            h.update(c.output.pubkey_hash.0);
        }
        h.finalize().into()
    }

    fn remember_signatures(&mut self, key: [u8; 32]) {
        if self.sigcache.insert(key) {
            self.sigcache_order.push_back(key);
            while self.sigcache_order.len() > SIGCACHE_ENTRIES {
                if let Some(old) = self.sigcache_order.pop_front() {
                    self.sigcache.remove(&old);
                }
            }
        }
    }

    /// Refills the free-relay bucket up to `now`.
    fn refill_free(&mut self, now: u64) {
        let per_sec = self.cfg.free_bytes_per_minute as f64 / 60.0;
        let elapsed = now.saturating_sub(self.free_at) as f64;
        self.free_tokens =
            (self.free_tokens + elapsed * per_sec).min(self.cfg.free_bytes_per_minute as f64);
        self.free_at = self.free_at.max(now);
    }

    /// Validates `tx` against the chain and the pool and the policy, and
    /// adds it at time `now` (unix seconds). Returns its txid, and the
    /// transactions it replaced or pushed out.
    pub fn accept(
        &mut self,
        tx: Transaction,
        chain: &impl UtxoView,
        now: u64,
    ) -> Result<(Txid, Vec<Dropped>), MempoolError> {
        self.admit(tx, chain, now, true)
    }

    /// Like [`Mempool::accept`] for a transaction the pool held before (a
    /// reorganisation returned it, or it was saved at shutdown), entered at
    /// `time`: the free allowance is not charged again.
    pub fn readmit(
        &mut self,
        tx: Transaction,
        chain: &impl UtxoView,
        time: u64,
    ) -> Result<(Txid, Vec<Dropped>), MempoolError> {
        self.admit(tx, chain, time, false)
    }

    fn admit(
        &mut self,
        tx: Transaction,
        chain: &impl UtxoView,
        now: u64,
        charge_free: bool,
    ) -> Result<(Txid, Vec<Dropped>), MempoolError> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyKnown(txid));
        }
        if tx.is_coinbase() {
            return Err(MempoolError::Coinbase(txid));
        }
        tx.check()?;
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
        // Inputs first, signatures last: every policy check below needs
        // only the inputs' values and the pool, so a transaction refused for
        // policy costs no signature verification.
        let view = PoolView {
            chain,
            pool: self,
            without: &replaced,
        };
        let fee = check_transaction_inputs_with(&tx, &view, |_, _| false)?;
        let rate = FeeRate::of(fee, size);
        // Replacement: more in total, and a higher rate than each conflict.
        if let Some((_, conflict)) = direct.first().copied() {
            let old_fees: u64 = replaced
                .iter()
                .filter_map(|t| self.entries.get(t))
                .map(|e| e.fee.0)
                .sum();
            let mut best_rate = FeeRate(0);
            let mut beats_each = true;
            for (_, c) in &direct {
                if let Some(e) = self.entries.get(c) {
                    best_rate = best_rate.max(FeeRate::of(e.fee, e.size));
                    beats_each &= higher_rate(fee.0, size, e.fee.0, e.size);
                }
            }
            // At least the old fees plus its own relay at the incremental rate.
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
        }
        // Unconfirmed chain limits.
        let parents: HashSet<Txid> = tx
            .inputs
            .iter()
            .map(|i| i.prevout.txid)
            .filter(|t| self.entries.contains_key(t))
            .collect();
        let ancestors = self.ancestors_of(&parents);
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
            if e.desc_count + 1 > MAX_DESCENDANTS {
                return Err(MempoolError::TooManyDescendants {
                    ancestor: *a,
                    count: e.desc_count + 1,
                });
            }
            if e.desc_size + size > MAX_PACKAGE_BYTES {
                return Err(MempoolError::DescendantsTooLarge {
                    ancestor: *a,
                    bytes: e.desc_size + size,
                });
            }
        }
        // Free transactions, within the allowance.
        let free = rate < MIN_FEE_RATE && charge_free;
        if free {
            self.refill_free(now);
            if self.free_tokens < size as f64 {
                return Err(MempoolError::FreeRelayLimit {
                    txid,
                    rate,
                    per_minute: self.cfg.free_bytes_per_minute,
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
        let mut evict: Vec<HashSet<Txid>> = Vec::new();
        let mut need = (self.bytes - freed + size).saturating_sub(self.cfg.max_bytes);
        let mut gone: HashSet<Txid> = replaced.clone();
        while need > 0 {
            let lowest = self
                .entries
                .iter()
                .filter(|(t, _)| !gone.contains(*t) && !ancestors.contains(*t))
                .min_by(|(_, a), (_, b)| {
                    (u128::from(a.desc_fee) * b.desc_size as u128)
                        .cmp(&(u128::from(b.desc_fee) * a.desc_size as u128))
                })
                .map(|(t, e)| (*t, e.desc_fee, e.desc_size));
            let Some((low, low_fee, low_size)) = lowest else {
                break;
            };
            if !higher_rate(fee.0, size, low_fee, low_size) {
                return Err(MempoolError::PoolFull {
                    txid,
                    rate,
                    max_bytes: self.cfg.max_bytes,
                    needed: FeeRate::of(Amount(low_fee), low_size).fee_for(size),
                });
            }
            let package = self.with_descendants(&low);
            for t in &package {
                if gone.insert(*t) {
                    need = need.saturating_sub(self.entries.get(t).map(|e| e.size).unwrap_or(0));
                }
            }
            evict.push(package);
        }
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
            let k = Self::sig_key(&txid, coins);
            key = Some(k);
            if cache.contains(&k) {
                return false;
            }
            checked = jobs;
            true
        })?;
        self.signatures_verified += checked as u64;
        if let Some(k) = key {
            self.remember_signatures(k);
        }
        // Every check passed: change the pool.
        let mut dropped = Vec::new();
        for (_, c) in &direct {
            for t in self.remove_with_descendants(c) {
                dropped.push((t, MempoolError::Replaced { txid: t, by: txid }));
            }
        }
        for package in evict {
            for t in package {
                if self.entries.contains_key(&t) {
                    for d in self.remove_with_descendants(&t) {
                        dropped.push((d, MempoolError::Evicted(d)));
                    }
                }
            }
        }
        if free {
            self.free_tokens -= size as f64;
        }
        self.insert(tx, txid, fee, now, parents);
        Ok((txid, dropped))
    }

    /// Adds a checked transaction with its in-pool `parents`.
    fn insert(
        &mut self,
        tx: Transaction,
        txid: Txid,
        fee: Amount,
        now: u64,
        parents: HashSet<Txid>,
    ) {
        let size = tx.size();
        let ancestors = self.ancestors_of(&parents);
        for input in &tx.inputs {
            self.spends.insert(input.prevout, txid);
        }
        for p in &parents {
            if let Some(e) = self.entries.get_mut(p) {
                e.children.insert(txid);
            }
        }
        for a in &ancestors {
            if let Some(e) = self.entries.get_mut(a) {
                e.desc_count += 1;
                e.desc_fee = e.desc_fee.saturating_add(fee.0);
                e.desc_size += size;
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, txid);
        for a in Self::addresses_of(&tx) {
            self.by_address.entry(a).or_default().insert(seq);
        }
        self.bytes += size;
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
                desc_count: 1,
                desc_fee: fee.0,
                desc_size: size,
            },
        );
    }

    /// Removes one transaction, unlinking it; its remaining ancestors lose
    /// it from their descendant totals.
    fn remove_one(&mut self, txid: &Txid) -> Option<Entry> {
        let parents = self.entries.get(txid)?.parents.clone();
        let ancestors = self.ancestors_of(&parents);
        let e = self.entries.remove(txid)?;
        for a in &ancestors {
            if let Some(ae) = self.entries.get_mut(a) {
                ae.desc_count = ae.desc_count.saturating_sub(1);
                ae.desc_fee = ae.desc_fee.saturating_sub(e.fee.0);
                ae.desc_size = ae.desc_size.saturating_sub(e.size);
            }
        }
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
        for a in Self::addresses_of(&e.tx) {
            if let Some(set) = self.by_address.get_mut(&a) {
                set.remove(&e.seq);
                if set.is_empty() {
                    self.by_address.remove(&a);
                }
            }
        }
        self.bytes -= e.size;
        Some(e)
    }

    /// Removes `txid` and its descendants, children first; returns them.
    fn remove_with_descendants(&mut self, txid: &Txid) -> Vec<Txid> {
        let mut all: Vec<(u64, Txid)> = self
            .with_descendants(txid)
            .into_iter()
            .filter_map(|t| self.entries.get(&t).map(|e| (e.seq, t)))
            .collect();
        all.sort_unstable_by(|a, b| b.cmp(a));
        all.into_iter()
            .filter_map(|(_, t)| self.remove_one(&t).map(|_| t))
            .collect()
    }

    /// Removes what waited longer than the expiry, with descendants.
    pub fn expire(&mut self, now: u64) -> Vec<Dropped> {
        let old: Vec<Txid> = self
            .entries
            .iter()
            .filter(|(_, e)| now.saturating_sub(e.time) > self.cfg.expiry_secs)
            .map(|(t, _)| *t)
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

    /// Transactions for a block within `max_bytes`, best ancestor-package
    /// fee rate first (a child paying for its parent counts with it), in
    /// dependency order, and their total fee.
    pub fn template(&self, max_bytes: usize) -> (Vec<Transaction>, Amount) {
        let mut taken: HashSet<Txid> = HashSet::new();
        let mut order: Vec<Txid> = Vec::new();
        let mut used = 0usize;
        let mut fees = Amount::ZERO;
        // The package of `t`: it and its ancestors not yet taken, with fee and bytes.
        let package = |t: &Txid, taken: &HashSet<Txid>| -> (Vec<Txid>, u64, usize) {
            let mut pkg: Vec<Txid> = Vec::new();
            let mut seen = HashSet::new();
            let mut stack = vec![*t];
            while let Some(x) = stack.pop() {
                if taken.contains(&x) || !seen.insert(x) {
                    continue;
                }
                if let Some(e) = self.entries.get(&x) {
                    pkg.push(x);
                    stack.extend(e.parents.iter().copied());
                }
            }
            let fee = pkg
                .iter()
                .filter_map(|x| self.entries.get(x))
                .map(|e| e.fee.0)
                .sum();
            let size = pkg
                .iter()
                .filter_map(|x| self.entries.get(x))
                .map(|e| e.size)
                .sum();
            (pkg, fee, size)
        };
        #[derive(PartialEq, Eq)]
        struct Scored {
            fee: u64,
            size: usize,
            seq: std::cmp::Reverse<u64>,
            txid: Txid,
        }
        impl Ord for Scored {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                (u128::from(self.fee) * o.size.max(1) as u128)
                    .cmp(&(u128::from(o.fee) * self.size.max(1) as u128))
                    .then(self.seq.cmp(&o.seq))
            }
        }
        impl PartialOrd for Scored {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        let mut heap: BinaryHeap<Scored> = self
            .entries
            .iter()
            .map(|(t, e)| {
                let (_, fee, size) = package(t, &taken);
                Scored {
                    fee,
                    size,
                    seq: std::cmp::Reverse(e.seq),
                    txid: *t,
                }
            })
            .collect();
        let mut failed: HashSet<Txid> = HashSet::new();
        while let Some(top) = heap.pop() {
            if taken.contains(&top.txid) || failed.contains(&top.txid) {
                continue;
            }
            let (mut pkg, fee, size) = package(&top.txid, &taken);
            if fee != top.fee || size != top.size {
                // Stale: an ancestor was taken meanwhile.
                heap.push(Scored { fee, size, ..top });
                continue;
            }
            if used + size > max_bytes {
                failed.insert(top.txid);
                continue;
            }
            let Some(f) = fees.checked_add(Amount(fee)) else {
                failed.insert(top.txid);
                continue;
            };
            fees = f;
            used += size;
            pkg.sort_by_key(|x| self.entries.get(x).map(|e| e.seq));
            for x in &pkg {
                taken.insert(*x);
            }
            // Descendants of what was taken have new packages.
            for x in &pkg {
                if let Some(e) = self.entries.get(x) {
                    for c in &e.children {
                        if !taken.contains(c) {
                            let (_, fee, size) = package(c, &taken);
                            let seq = self.entries.get(c).map(|e| e.seq).unwrap_or(0);
                            heap.push(Scored {
                                fee,
                                size,
                                seq: std::cmp::Reverse(seq),
                                txid: *c,
                            });
                        }
                    }
                }
            }
            order.extend(pkg);
        }
        let txs = order
            .iter()
            .filter_map(|t| self.entries.get(t).map(|e| e.tx.clone()))
            .collect();
        (txs, fees)
    }

    /// A template sized for one block, leaving room for the header and coinbase.
    pub fn block_template(&self) -> (Vec<Transaction>, Amount) {
        self.template(MAX_BLOCK_SIZE - 1_000)
    }

    /// Removes everything and returns the transactions in dependency order,
    /// each with the time it entered.
    pub fn drain(&mut self) -> Vec<(Transaction, u64)> {
        let order: Vec<Txid> = self.by_seq.values().copied().collect();
        let mut entries = std::mem::take(&mut self.entries);
        self.by_seq.clear();
        self.by_address.clear();
        self.spends.clear();
        self.bytes = 0;
        order
            .into_iter()
            .filter_map(|t| entries.remove(&t).map(|e| (e.tx, e.time)))
            .collect()
    }

    /// After the chain changed at time `now`: blocks `connected` (oldest
    /// first) and, in a reorganisation, `returned` (the transactions of
    /// disconnected blocks, oldest first).
    ///
    /// With nothing returned, what the blocks confirm leaves the pool and
    /// what conflicts with them leaves with its descendants; nothing else
    /// is verified again. After a reorganisation the returned transactions
    /// and the pool are offered again in dependency order, within the
    /// limits (the signature cache spares the signatures already checked).
    /// Returns what was dropped, and why.
    pub fn update_for_chain(
        &mut self,
        returned: Vec<Transaction>,
        connected: &[CheckedBlock],
        chain: &impl UtxoView,
        now: u64,
    ) -> Vec<Dropped> {
        let mut dropped = Vec::new();
        if returned.is_empty() {
            for block in connected {
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
            return dropped;
        }
        let confirmed: HashSet<Txid> = connected
            .iter()
            .flat_map(|b| b.txids().iter().copied())
            .collect();
        let previous = self.drain();
        for (tx, time) in returned
            .into_iter()
            .filter(|t| !t.is_coinbase())
            .map(|t| (t, now))
            .chain(previous)
        {
            let txid = tx.txid();
            if confirmed.contains(&txid) || self.entries.contains_key(&txid) {
                continue;
            }
            match self.readmit(tx, chain, time) {
                Ok((_, out)) => dropped.extend(out),
                Err(e) => dropped.push((txid, e)),
            }
        }
        dropped
    }
}
