//! Why the mempool refused a transaction, or let one go.

use super::{
    FeeRate, MAX_ANCESTORS, MAX_DESCENDANTS, MAX_PACKAGE_BYTES, MAX_REPLACED, MIN_FEE_RATE,
};
use crate::amount::Amount;
use crate::hash::Txid;
use crate::transaction::{OutPoint, TxError};
use crate::validation::InputError;

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
    /// Free (under the minimum rate) and the free allowance is spent: the
    /// one of the peer that sent it, or the one all peers share.
    #[error("free-relay limit reached: transaction {txid} pays {rate}, under the minimum {MIN_FEE_RATE}, and the allowance for free transactions {scope} ({per_minute} bytes a minute) is spent; pay a fee of at least {needed}")]
    FreeRelayLimit {
        /// The refused transaction.
        txid: Txid,
        /// What it pays.
        rate: FeeRate,
        /// Whose allowance: "of the peer that sent it" or "of all peers".
        scope: &'static str,
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
    /// Under the pool's minimum fee rate, which rises while the pool is
    /// full and evicting, and decays once blocks take transactions out.
    #[error("mempool minimum fee not met: transaction {txid} pays {rate}; the mempool evicted transactions lately and takes only {minimum} or more; pay a fee of at least {needed}")]
    MinFeeNotMet {
        /// The refused transaction.
        txid: Txid,
        /// What it pays.
        rate: FeeRate,
        /// The pool's minimum now.
        minimum: FeeRate,
        /// The fee that would be accepted.
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
            MempoolError::MinFeeNotMet { .. } => "MinFeeNotMet",
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
