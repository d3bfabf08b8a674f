//! Consensus rules.
//!
//! Validation has three stages, cheapest first:
//! 1. [`check_block`]: context-free. It is [`check_header`] (version, bits,
//!    proof of work against the header's own bits: one header hash) then
//!    [`check_body`] (size, Merkle root, duplicate txids, coinbase placement
//!    and every transaction's [`Transaction::check`]: the whole body hashed).
//! 2. [`check_header_context`]: against the parent. Height, time window and
//!    expected difficulty. A store runs it after [`check_header`] and before
//!    [`check_body`], so a header with the wrong difficulty costs one hash.
//! 3. [`connect_block`]: against a [`UtxoView`] of the parent's UTXO set.
//!    Inputs exist and are unspent, keys match, signatures verify (in
//!    parallel, each sighash computed once), no value is created, and the
//!    coinbase claims at most the reward plus fees.

use crate::address::PubkeyHash;
use crate::amount::Amount;
use crate::block::{merkle_root, Block, BlockHeader, ChainParams, BLOCK_VERSION, MAX_BLOCK_SIZE};
use crate::hash::{BlockHash, MerkleRoot, Txid};
use crate::pow::{retarget, CompactTarget, Target};
use crate::transaction::{OutPoint, Transaction, TxError, TxOut};
use serde::{Deserialize, Serialize};
use sig_queue::{verify_during, verify_jobs, SigJob};
use std::collections::{HashMap, HashSet};

mod sig_queue;

/// How far into the future a block's time may be, in seconds.
pub const MAX_FUTURE_BLOCK_TIME: u64 = 2 * 60 * 60;
/// How many previous blocks the median time is taken over.
pub const MEDIAN_TIME_SPAN: usize = 11;

/// An unspent output and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coin {
    /// The output.
    pub output: TxOut,
    /// Height of the block that created it.
    pub height: u32,
    /// Whether a coinbase created it.
    pub is_coinbase: bool,
}

/// Read access to a UTXO set.
pub trait UtxoView {
    /// The unspent output at `outpoint`, if there is one.
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin>;
}

impl UtxoView for HashMap<OutPoint, Coin> {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        self.get(outpoint).copied()
    }
}

/// Signatures already verified: a transaction found here, spending the
/// same coins, is not verified again (the mempool's cache is one).
pub trait SignatureCache {
    /// True when the signatures of `txid` spending `coins` (in input
    /// order) were verified.
    fn verified(&self, txid: &Txid, coins: &[Coin]) -> bool;
}

/// No cache: every signature is verified.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCache;

impl SignatureCache for NoCache {
    fn verified(&self, _: &Txid, _: &[Coin]) -> bool {
        false
    }
}

/// Why a transaction's inputs do not hold up against a UTXO set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The spent output does not exist or is already spent.
    #[error("transaction {txid}: input {index} spends {outpoint}, which does not exist or is already spent")]
    Missing {
        /// The transaction.
        txid: Txid,
        /// The input index.
        index: usize,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// The public key does not hash to the spent output's public-key hash.
    #[error("transaction {txid}: input {index}'s public key does not own the output it spends")]
    PubkeyMismatch {
        /// The transaction.
        txid: Txid,
        /// The input index.
        index: usize,
    },
    /// The signature is malformed, high-S, or does not verify.
    #[error("transaction {txid}: input {index} has an invalid signature ({reason})")]
    BadSignature {
        /// The transaction.
        txid: Txid,
        /// The input index.
        index: usize,
        /// What the verifier said.
        reason: String,
    },
    /// Outputs worth more than inputs.
    #[error("transaction {txid}: outputs ({outputs}) exceed inputs ({inputs})")]
    ValueCreated {
        /// The transaction.
        txid: Txid,
        /// Sum of inputs.
        inputs: Amount,
        /// Sum of outputs.
        outputs: Amount,
    },
    /// Sum of inputs overflows.
    #[error("transaction {0}: input values overflow")]
    InputOverflow(Txid),
}

impl InputError {
    /// The rule's stable name: the variant's name, as `docs/consensus.md`
    /// lists it. A refusal's text on the wire starts with it.
    pub fn code(&self) -> &'static str {
        match self {
            InputError::Missing { .. } => "Missing",
            InputError::PubkeyMismatch { .. } => "PubkeyMismatch",
            InputError::BadSignature { .. } => "BadSignature",
            InputError::ValueCreated { .. } => "ValueCreated",
            InputError::InputOverflow(_) => "InputOverflow",
        }
    }
}

/// Why a block is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlockError {
    /// Over [`MAX_BLOCK_SIZE`].
    #[error("block is {0} bytes, the limit is {MAX_BLOCK_SIZE}")]
    Oversized(usize),
    /// No transactions at all.
    #[error("block has no transactions")]
    NoTransactions,
    /// The first transaction is not a coinbase.
    #[error("the first transaction is not a coinbase")]
    FirstNotCoinbase,
    /// A coinbase other than the first transaction.
    #[error("transaction {index} is a second coinbase")]
    ExtraCoinbase {
        /// Its index in the block.
        index: usize,
    },
    /// The header's Merkle root does not match the transactions.
    #[error("merkle root {found} does not match the transactions ({computed})")]
    BadMerkleRoot {
        /// In the header.
        found: MerkleRoot,
        /// Computed.
        computed: MerkleRoot,
    },
    /// The same txid twice (CVE-2012-2459).
    #[error("transaction {0} appears twice in the block")]
    DuplicateTxid(Txid),
    /// The header's bits do not encode a usable target.
    #[error("difficulty bits {0} are not a valid target")]
    InvalidBits(CompactTarget),
    /// The hash does not meet the header's target.
    #[error("block hash {hash} does not meet its target {bits}")]
    BadProofOfWork {
        /// The hash.
        hash: BlockHash,
        /// The claimed bits.
        bits: CompactTarget,
    },
    /// Bits differ from what the chain expects here.
    #[error("difficulty bits {found} differ from the expected {expected}")]
    UnexpectedBits {
        /// In the header.
        found: CompactTarget,
        /// Expected.
        expected: CompactTarget,
    },
    /// Unsupported header version.
    #[error("unsupported block version {0}")]
    BadVersion(u32),
    /// Height is not the parent's plus one.
    #[error("height {found} is wrong, the parent's height plus one is {expected}")]
    BadHeight {
        /// In the header.
        found: u32,
        /// Expected.
        expected: u32,
    },
    /// The coinbase does not start with the block's height.
    #[error("the coinbase does not carry the block height {0}")]
    CoinbaseHeight(u32),
    /// Too far in the future.
    #[error("block time {time} is more than two hours ahead of the local clock ({now})")]
    TimeTooNew {
        /// In the header.
        time: u64,
        /// The local clock.
        now: u64,
    },
    /// Not above the median time of the last 11 blocks.
    #[error("block time {time} is not above the median time of the last 11 blocks ({median})")]
    TimeTooOld {
        /// In the header.
        time: u64,
        /// The median.
        median: u64,
    },
    /// A transaction is invalid on its own.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// A transaction's inputs do not hold up.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Two transactions in the block spend the same output.
    #[error(
        "transaction {txid} spends {outpoint}, which another transaction in this block spends too"
    )]
    DoubleSpendInBlock {
        /// The second spender.
        txid: Txid,
        /// The outpoint.
        outpoint: OutPoint,
    },
    /// The coinbase pays more than reward plus fees.
    #[error("the coinbase claims {claimed}, more than the reward plus fees ({allowed})")]
    CoinbaseTooLarge {
        /// Claimed.
        claimed: Amount,
        /// Allowed.
        allowed: Amount,
    },
    /// Fees or the coinbase allowance overflow.
    #[error("block fees overflow")]
    FeeOverflow,
    /// The parent was found invalid.
    #[error("the parent block {0} is invalid")]
    InvalidParent(BlockHash),
    /// This very block was already found invalid.
    #[error("block {0} was already found invalid")]
    KnownInvalid(BlockHash),
}

impl BlockError {
    /// Whether the block can never become valid. Only a time too far ahead
    /// of the local clock may pass later, once the clock catches up.
    pub fn is_final(&self) -> bool {
        !matches!(self, BlockError::TimeTooNew { .. })
    }

    /// Whether the failure is one [`check_body`] finds: the body does not
    /// match its header, or is malformed. It says nothing about the header,
    /// so a sync that checked the header asks another peer for the block.
    pub fn is_body_fault(&self) -> bool {
        matches!(
            self,
            BlockError::Oversized(_)
                | BlockError::NoTransactions
                | BlockError::FirstNotCoinbase
                | BlockError::ExtraCoinbase { .. }
                | BlockError::BadMerkleRoot { .. }
                | BlockError::DuplicateTxid(_)
                | BlockError::Tx(_)
                | BlockError::CoinbaseHeight(_)
        )
    }

    /// Whether a peer that sent the block is to blame. Honest peers validate
    /// before they relay, so every final failure is an offence; a time ahead
    /// of this node's clock may be a difference of clocks.
    pub fn is_sender_fault(&self) -> bool {
        self.is_final()
    }
}

pub use crate::checked::{CheckedBlock, ReceivedBlock};

/// Context-free checks on a block: [`check_header`] then [`check_body`].
pub fn check_block(block: &Block) -> Result<CheckedBlock, BlockError> {
    check_header(&block.header)?;
    check_body(block)
}

/// The header alone, without context: version, bits within the limit, and
/// its hash meeting its own target. Costs one header hash.
pub fn check_header(h: &BlockHeader) -> Result<(), BlockError> {
    check_header_hashed(h, h.hash())
}

/// [`check_header`] for a header whose hash is known (a
/// [`ReceivedBlock`]'s), so it is not hashed again.
pub(crate) fn check_header_hashed(h: &BlockHeader, hash: BlockHash) -> Result<(), BlockError> {
    if h.version != BLOCK_VERSION {
        return Err(BlockError::BadVersion(h.version));
    }
    let target = h
        .bits
        .to_target()
        .filter(|t| *t <= Target::pow_limit())
        .ok_or(BlockError::InvalidBits(h.bits))?;
    if !target.is_met_by(&hash) {
        return Err(BlockError::BadProofOfWork { hash, bits: h.bits });
    }
    Ok(())
}

/// The body against its header: size, coinbase placement, no duplicate
/// txids, the Merkle root, each transaction's own checks and the coinbase
/// height. A failure here says nothing about the header: another body may
/// match it (CVE-2012-2459), so a store must not remember the header as bad.
pub fn check_body(block: &Block) -> Result<CheckedBlock, BlockError> {
    ReceivedBlock::new(block.clone()).check_body()
}

/// The body checks of [`check_body`] on what a [`ReceivedBlock`] computed
/// once: its bytes (for the size), its txids and its hash.
pub(crate) fn check_received_body(
    block: &Block,
    bytes: &[u8],
    txids: &[Txid],
) -> Result<(), BlockError> {
    let h = &block.header;
    if bytes.len() > MAX_BLOCK_SIZE {
        return Err(BlockError::Oversized(bytes.len()));
    }
    let first = block
        .transactions
        .first()
        .ok_or(BlockError::NoTransactions)?;
    if !first.is_coinbase() {
        return Err(BlockError::FirstNotCoinbase);
    }
    if let Some(index) = block
        .transactions
        .iter()
        .skip(1)
        .position(Transaction::is_coinbase)
    {
        return Err(BlockError::ExtraCoinbase { index: index + 1 });
    }
    let mut seen = HashSet::with_capacity(txids.len());
    for t in txids {
        if !seen.insert(*t) {
            return Err(BlockError::DuplicateTxid(*t));
        }
    }
    let computed = merkle_root(txids);
    if computed != h.merkle_root {
        return Err(BlockError::BadMerkleRoot {
            found: h.merkle_root,
            computed,
        });
    }
    for (tx, txid) in block.transactions.iter().zip(txids) {
        tx.check_with_txid(*txid)?;
    }
    if first.coinbase_height() != Some(h.height) {
        return Err(BlockError::CoinbaseHeight(h.height));
    }
    Ok(())
}

/// What a header is checked against: facts about its parent's chain.
#[derive(Clone, Copy, Debug)]
pub struct HeaderContext {
    /// The parent's height.
    pub parent_height: u32,
    /// Median time of the last 11 blocks ending at the parent.
    pub median_time_past: u64,
    /// The bits this block must carry.
    pub expected_bits: CompactTarget,
    /// The local clock, unix seconds.
    pub now: u64,
}

/// Checks a header against its parent's chain.
pub fn check_header_context(header: &BlockHeader, ctx: &HeaderContext) -> Result<(), BlockError> {
    let expected = ctx
        .parent_height
        .checked_add(1)
        .ok_or(BlockError::BadHeight {
            found: header.height,
            expected: u32::MAX,
        })?;
    if header.height != expected {
        return Err(BlockError::BadHeight {
            found: header.height,
            expected,
        });
    }
    if header.bits != ctx.expected_bits {
        return Err(BlockError::UnexpectedBits {
            found: header.bits,
            expected: ctx.expected_bits,
        });
    }
    if header.time <= ctx.median_time_past {
        return Err(BlockError::TimeTooOld {
            time: header.time,
            median: ctx.median_time_past,
        });
    }
    if header.time > ctx.now.saturating_add(MAX_FUTURE_BLOCK_TIME) {
        return Err(BlockError::TimeTooNew {
            time: header.time,
            now: ctx.now,
        });
    }
    Ok(())
}

/// The median of up to the last 11 block times (pass them in any order).
pub fn median_time(times: &[u64]) -> u64 {
    let mut v: Vec<u64> = times.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// The bits the child of `parent` must carry. `time_at(h)` gives the time of
/// the ancestor at height `h` on the parent's chain.
pub fn next_bits(
    params: &ChainParams,
    parent: &BlockHeader,
    mut time_at: impl FnMut(u32) -> Option<u64>,
) -> CompactTarget {
    let interval = params.retarget_interval;
    let height = parent.height.saturating_add(1);
    if interval == 0 || !height.is_multiple_of(interval) {
        return parent.bits;
    }
    let first_height = height.saturating_sub(interval);
    let Some(first_time) = time_at(first_height) else {
        return parent.bits;
    };
    let actual = parent.time.saturating_sub(first_time);
    let expected = u64::from(interval).saturating_mul(params.target_spacing);
    retarget(parent.bits, actual, expected)
}

/// Checks a non-coinbase transaction's inputs, returning its fee and its
/// signature jobs. `lookup` finds the coin each input spends.
fn check_inputs<'a>(
    tx: &'a Transaction,
    txid: Txid,
    mut lookup: impl FnMut(usize, &OutPoint) -> Result<Coin, InputError>,
    jobs: &mut Vec<SigJob<'a>>,
) -> Result<Amount, InputError> {
    let common = tx.sighash_common();
    let mut total = Amount::ZERO;
    for (index, input) in tx.inputs.iter().enumerate() {
        let coin = lookup(index, &input.prevout)?;
        if PubkeyHash::from_pubkey_bytes(&input.pubkey) != coin.output.pubkey_hash {
            return Err(InputError::PubkeyMismatch { txid, index });
        }
        total = total
            .checked_add(coin.output.value)
            .ok_or(InputError::InputOverflow(txid))?;
        // Inputs are bounded by the transaction size limit, far below u32::MAX.
        let msg = Transaction::sighash(&common, index as u32, &coin.output);
        jobs.push(SigJob {
            txid,
            index,
            pubkey: &input.pubkey,
            msg,
            sig: &input.signature,
        });
    }
    // check() already bounded the output sum; an overflow here is impossible but still refused.
    let outputs = tx.output_value().ok_or(InputError::InputOverflow(txid))?;
    total.checked_sub(outputs).ok_or(InputError::ValueCreated {
        txid,
        inputs: total,
        outputs,
    })
}

/// Checks a single transaction against a UTXO view: the mempool's path.
/// Returns the fee.
pub fn check_transaction_inputs(
    tx: &Transaction,
    view: &impl UtxoView,
) -> Result<Amount, InputError> {
    let txid = tx.txid();
    let mut jobs = Vec::with_capacity(tx.inputs.len());
    let fee = check_inputs(
        tx,
        txid,
        |index, op| {
            view.coin(op).ok_or(InputError::Missing {
                txid,
                index,
                outpoint: *op,
            })
        },
        &mut jobs,
    )?;
    verify_jobs(&jobs)?;
    Ok(fee)
}

/// Like [`check_transaction_inputs`], letting the caller skip the
/// signature checks: `verify` is given the coins the inputs spend and the
/// number of signatures, and says whether to check them (a cache of
/// verified signatures says no). Returns the fee.
pub fn check_transaction_inputs_with(
    tx: &Transaction,
    view: &impl UtxoView,
    verify: impl FnOnce(&[Coin], usize) -> bool,
) -> Result<Amount, InputError> {
    let txid = tx.txid();
    let mut jobs = Vec::with_capacity(tx.inputs.len());
    let mut coins = Vec::with_capacity(tx.inputs.len());
    let fee = check_inputs(
        tx,
        txid,
        |index, op| {
            let c = view.coin(op).ok_or(InputError::Missing {
                txid,
                index,
                outpoint: *op,
            })?;
            coins.push(c);
            Ok(c)
        },
        &mut jobs,
    )?;
    if verify(&coins, jobs.len()) {
        verify_jobs(&jobs)?;
    }
    Ok(fee)
}

/// What connecting a block changes in the UTXO set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockChanges {
    /// Coins the block spends, with their full data: the undo record.
    pub spent: Vec<(OutPoint, Coin)>,
    /// Coins the block creates that survive it.
    pub created: Vec<(OutPoint, Coin)>,
    /// Total fees.
    pub fees: Amount,
    /// Signatures verified (those the cache held are not).
    pub signatures_verified: usize,
}

/// Full contextual validation of a block's transactions against the UTXO set
/// of its parent; [`check_block`] made it a [`CheckedBlock`].
pub fn connect_block(
    block: &CheckedBlock,
    params: &ChainParams,
    view: &impl UtxoView,
) -> Result<BlockChanges, BlockError> {
    connect_block_with(block, params, view, &NoCache)
}

/// [`connect_block`], verifying no signature of a transaction `cache`
/// holds for the same coins: a block whose payments the mempool already
/// took checks none of their signatures again.
pub fn connect_block_with(
    block: &CheckedBlock,
    params: &ChainParams,
    view: &impl UtxoView,
    cache: &(impl SignatureCache + ?Sized),
) -> Result<BlockChanges, BlockError> {
    connect_block_and(block, params, view, cache, |_| ()).map(|(changes, ())| changes)
}

/// [`connect_block_with`], running `meanwhile` on the calling thread while
/// the block's signatures are being checked on the other cores: it is
/// given what the block changes (every rule but the signatures has passed)
/// and its result is returned beside the changes once every signature has
/// verified. A store stages the block's write there, so the staging
/// overlaps the signature checks instead of following them.
///
/// The signature checks start while the inputs are still being looked up:
/// each transaction's are queued as soon as its coins are found. The error
/// reported is the one a lookup of every input followed by a check of
/// every signature would give: a lookup's, else the coinbase's, else the
/// first bad signature in block order.
pub fn connect_block_and<U>(
    block: &CheckedBlock,
    params: &ChainParams,
    view: &impl UtxoView,
    cache: &(impl SignatureCache + ?Sized),
    meanwhile: impl FnOnce(&BlockChanges) -> U,
) -> Result<(BlockChanges, U), BlockError> {
    let height = block.header.height;
    let mut created: HashMap<OutPoint, Coin> = HashMap::new();
    let mut spent_here: HashSet<OutPoint> = HashSet::new();
    let mut order: Vec<OutPoint> = Vec::new();
    let mut coins: Vec<Coin> = Vec::new();
    let mut tx_jobs = Vec::new();
    // The walk hands each transaction's signature checks to the pool as
    // soon as its inputs are found (and the cache has not seen them).
    verify_during(
        |queue| {
            let mut changes = BlockChanges::default();
            for (i, (tx, &txid)) in block.transactions.iter().zip(block.txids()).enumerate() {
                if i > 0 {
                    coins.clear();
                    tx_jobs.clear();
                    let fee = check_inputs(
                        tx,
                        txid,
                        |index, op| {
                            if !spent_here.insert(*op) {
                                return Err(InputError::Missing {
                                    txid,
                                    index,
                                    outpoint: *op,
                                });
                            }
                            if let Some(c) = created.remove(op) {
                                coins.push(c);
                                return Ok(c);
                            }
                            let c = view.coin(op).ok_or(InputError::Missing {
                                txid,
                                index,
                                outpoint: *op,
                            })?;
                            changes.spent.push((*op, c));
                            coins.push(c);
                            Ok(c)
                        },
                        &mut tx_jobs,
                    )
                    .map_err(|e| match e {
                        InputError::Missing { outpoint, .. }
                            if was_spent_earlier(block, i, &outpoint) =>
                        {
                            BlockError::DoubleSpendInBlock { txid, outpoint }
                        }
                        e => BlockError::Input(e),
                    })?;
                    if !cache.verified(&txid, &coins) {
                        queue.extend(tx_jobs.drain(..));
                    }
                    changes.fees = changes
                        .fees
                        .checked_add(fee)
                        .ok_or(BlockError::FeeOverflow)?;
                }
                for (vout, out) in tx.outputs.iter().enumerate() {
                    // Outputs are bounded by the transaction size limit, far below u32::MAX.
                    let op = OutPoint {
                        txid,
                        vout: vout as u32,
                    };
                    created.insert(
                        op,
                        Coin {
                            output: *out,
                            height,
                            is_coinbase: i == 0,
                        },
                    );
                    order.push(op);
                }
            }
            let allowed = params
                .reward
                .checked_add(changes.fees)
                .ok_or(BlockError::FeeOverflow)?;
            let claimed = block.transactions[0]
                .output_value()
                .ok_or(BlockError::FeeOverflow)?;
            if claimed > allowed {
                return Err(BlockError::CoinbaseTooLarge { claimed, allowed });
            }
            changes.signatures_verified = queue.queued();
            changes.created = order
                .into_iter()
                .filter_map(|op| created.get(&op).map(|c| (op, *c)))
                .collect();
            Ok(changes)
        },
        meanwhile,
    )
}

/// True when a transaction before index `before` in the block spends `outpoint`.
fn was_spent_earlier(block: &Block, before: usize, outpoint: &OutPoint) -> bool {
    block.transactions[..before]
        .iter()
        .any(|t| t.inputs.iter().any(|i| i.prevout == *outpoint))
}
