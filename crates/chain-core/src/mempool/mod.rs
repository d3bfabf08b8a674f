//! The mempool: unconfirmed transactions, validated against the chain's UTXO
//! set, under a fee policy that keeps payments getting through and the pool
//! from being filled for free (after Bitcoin Core's `CTxMemPool`).
//!
//! - **Fee rate** is the fee per 1,000 bytes of a transaction's encoding.
//! - **Bounded.** The pool holds at most [`MempoolConfig::max_bytes`] of
//!   transactions. Past that, the package (a transaction with its
//!   descendants) with the lowest fee rate is evicted, descendants and all;
//!   a newcomer that would itself be the lowest is refused, with the rate
//!   it would need. Packages are kept ordered by that rate, so each
//!   eviction costs O(log n), not a scan.
//! - **A rolling minimum fee rate** rises to each evicted package's rate
//!   plus [`INCREMENTAL_RELAY_FEE`] and halves every
//!   [`ROLLING_FEE_HALFLIFE_SECS`] once blocks come (faster while the pool
//!   is under half full); a newcomer under it is refused before any
//!   signature is checked.
//! - **Chains of unconfirmed transactions** are limited to
//!   [`MAX_ANCESTORS`] ancestors and [`MAX_DESCENDANTS`] descendants (each
//!   counting the transaction itself) and [`MAX_PACKAGE_BYTES`] each way.
//! - **Free transactions** (paying under [`MIN_FEE_RATE`]) are admitted up
//!   to [`MempoolConfig::free_bytes_per_minute`], a token bucket all peers
//!   share, and each peer to [`PEER_FREE_SHARE`] of it, a bucket of its
//!   own: a quiet network is free to use, a flooded one is not, and one
//!   peer cannot spend everyone's allowance.
//! - **Replacement** (full RBF): a transaction that conflicts with pool
//!   transactions replaces them, and their descendants, when it pays more
//!   in total than all of them plus its own size at
//!   [`INCREMENTAL_RELAY_FEE`], and a higher rate than each it conflicts
//!   with.
//! - **Expiry**: a transaction leaves after [`MempoolConfig::expiry_secs`].
//! - **Templates** take the best ancestor-package fee rate first (a child
//!   that pays for its parent counts with it: CPFP), from an index ordered
//!   by that rate, so a template costs the block, not the pool.
//! - **Signature cache**: signatures verified once are not verified again
//!   for the same transaction spending the same coins, in the pool or in a
//!   block ([`Mempool`] is a [`SignatureCache`]). It holds at least as
//!   many entries as the pool can hold transactions.
//!
//! A new block removes what it confirms and what conflicts with it (with
//! descendants); nothing else is verified again. A reorganisation takes
//! out only the pool transactions that spent the disconnected blocks'
//! outputs, and offers them back after the disconnected transactions.
//!
//! The modules, by job: `graph` (entries and their links), `index` (the
//! orders by package rate), `policy` (admission), `eviction` (choosing
//! what leaves, and the rolling minimum), `free` (the free allowance),
//! `template`, `chain_update` (blocks, reorganisations, expiry),
//! `sigcache` and `views` (reads for one address or one page).

mod chain_update;
mod error;
mod eviction;
mod free;
mod graph;
mod index;
mod policy;
mod sigcache;
mod template;
mod views;

pub use error::MempoolError;
pub use sigcache::SigCache;

use crate::address::PubkeyHash;
use crate::amount::Amount;
use crate::hash::Txid;
use crate::transaction::OutPoint;
use crate::validation::{Coin, SignatureCache};
use eviction::RollingMinFee;
use free::FreeRelay;
use graph::Entry;
use index::PackageIndex;
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
/// again and again for one unit more each time. An eviction raises the
/// rolling minimum to the evicted package's rate plus this.
pub const INCREMENTAL_RELAY_FEE: FeeRate = MIN_FEE_RATE;
/// The rolling minimum fee rate's half-life once a block has come since it
/// last rose: 12 hours (a quarter of that while the pool is under a
/// quarter full, half while under half), as Bitcoin Core's.
pub const ROLLING_FEE_HALFLIFE_SECS: u64 = 12 * 60 * 60;
/// The smallest signed payment, in bytes (one input with a 70-byte
/// signature, one output): the pool holds at most `max_bytes` over this.
pub const MIN_PAYMENT_BYTES: usize = 150;
/// The least the signature cache holds, whatever the pool's size.
pub const SIGCACHE_ENTRIES: usize = 100_000;
/// Each peer's own free allowance, as a fraction (1/n) of the one all
/// peers share.
pub const PEER_FREE_SHARE: usize = 3;
/// Most peers with a free allowance of their own remembered at once; past
/// that the least recently used is forgotten (a forgotten peer's bucket is
/// full again, but the shared bucket still bounds them all).
pub const MAX_FREE_PEERS: usize = 1_024;

/// Bands of the pool's fee-rate histogram, in amount per 1,000 bytes: a
/// band holds the transactions paying at least its rate and less than the
/// next band's. The pool keeps the counts as transactions come and go, so
/// reading them costs nothing per transaction.
pub const FEE_BANDS: [u64; 12] = [
    0, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000,
    10_000_000,
];

/// One band of [`Mempool::fee_histogram`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeeBand {
    /// The band's lowest rate.
    pub min_rate: u64,
    /// Transactions in it.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
}

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
    /// Bytes of free transactions admitted per minute from all peers
    /// together (burst: one minute's); each peer gets
    /// 1/[`PEER_FREE_SHARE`] of it.
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

impl MempoolConfig {
    /// Entries of the signature cache for this pool: at least as many as
    /// the pool can hold transactions, and at least [`SIGCACHE_ENTRIES`].
    pub fn sigcache_entries(&self) -> usize {
        (self.max_bytes / MIN_PAYMENT_BYTES).max(SIGCACHE_ENTRIES)
    }
}

/// A transaction leaving the pool, and why.
pub type Dropped = (Txid, MempoolError);

/// Who offered a transaction, for the per-peer free allowance: any number
/// the caller keeps stable for one peer (a keyed hash of its identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Source(pub u64);

/// Work the pool did, for measurements and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolWork {
    /// Signatures verified (cache hits are not counted).
    pub signatures_verified: u64,
    /// Packages examined in the eviction order, skipped ones included.
    pub eviction_visits: u64,
}

/// The pool.
#[derive(Clone, Debug)]
pub struct Mempool {
    cfg: MempoolConfig,
    entries: HashMap<Txid, Entry>,
    by_seq: BTreeMap<u64, Txid>,
    /// Entry times, for expiry: (time, seq).
    by_time: BTreeSet<(u64, u64)>,
    /// Packages ordered by fee rate, for eviction and templates.
    index: PackageIndex,
    /// For each address, the transactions that pay it or spend from it
    /// (by arrival), so one address's view costs its own entries.
    by_address: HashMap<PubkeyHash, BTreeSet<u64>>,
    spends: HashMap<OutPoint, Txid>,
    next_seq: u64,
    bytes: usize,
    /// Fees of all entries, and the fee-rate histogram.
    total_fee: u64,
    bands: [FeeBand; FEE_BANDS.len()],
    free: FreeRelay,
    min_fee: RollingMinFee,
    sigcache: SigCache,
    work: PoolWork,
}

impl Default for Mempool {
    fn default() -> Self {
        Self::new(MempoolConfig::default())
    }
}

impl SignatureCache for Mempool {
    fn verified(&self, txid: &Txid, coins: &[Coin]) -> bool {
        self.sigcache.contains(txid, coins)
    }
}

impl Mempool {
    /// An empty pool.
    pub fn new(cfg: MempoolConfig) -> Self {
        Mempool {
            cfg,
            entries: HashMap::new(),
            by_seq: BTreeMap::new(),
            by_time: BTreeSet::new(),
            index: PackageIndex::default(),
            by_address: HashMap::new(),
            spends: HashMap::new(),
            next_seq: 0,
            bytes: 0,
            total_fee: 0,
            bands: FEE_BANDS.map(|min_rate| FeeBand {
                min_rate,
                ..FeeBand::default()
            }),
            free: FreeRelay::new(cfg.free_bytes_per_minute),
            min_fee: RollingMinFee::default(),
            sigcache: SigCache::new(cfg.sigcache_entries()),
            work: PoolWork::default(),
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

    /// The fees of every transaction held.
    pub fn total_fee(&self) -> Amount {
        Amount(self.total_fee)
    }

    /// How many transactions, and bytes, pay each band's rate
    /// ([`FEE_BANDS`]), lowest band first.
    pub fn fee_histogram(&self) -> &[FeeBand] {
        &self.bands
    }

    /// Counts an entry into the totals, or out of them.
    fn count(&mut self, fee: Amount, size: usize, entering: bool) {
        let rate = FeeRate::of(fee, size).0;
        let i = FEE_BANDS.partition_point(|b| *b <= rate).saturating_sub(1);
        let band = &mut self.bands[i];
        if entering {
            self.total_fee = self.total_fee.saturating_add(fee.0);
            band.count += 1;
            band.bytes += size;
        } else {
            self.total_fee = self.total_fee.saturating_sub(fee.0);
            band.count -= 1;
            band.bytes -= size;
        }
    }

    /// Signatures this pool has verified (cache hits are not counted).
    pub fn signatures_verified(&self) -> u64 {
        self.work.signatures_verified
    }

    /// The work this pool has done so far.
    pub fn work(&self) -> PoolWork {
        self.work
    }

    /// The signature cache.
    pub fn signature_cache(&self) -> &SigCache {
        &self.sigcache
    }

    /// The signature cache, to record signatures verified elsewhere (a
    /// block's, say).
    pub fn signature_cache_mut(&mut self) -> &mut SigCache {
        &mut self.sigcache
    }

    /// The lowest fee rate a newcomer must pay now (the rolling minimum, or
    /// 0 when the pool has not evicted lately).
    pub fn min_fee_rate(&mut self, now: u64) -> FeeRate {
        self.min_fee.current(now, self.bytes, self.cfg.max_bytes)
    }

    /// True when the pool holds `txid`.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// Every transaction with its id, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Txid, &crate::Transaction)> {
        self.entries.iter().map(|(id, e)| (id, &e.tx))
    }

    /// The transaction with this id.
    pub fn get(&self, txid: &Txid) -> Option<&crate::Transaction> {
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
}
