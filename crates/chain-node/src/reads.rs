//! The chain's reads, typed and separate from the wire (Zebra's
//! `ReadRequest` and `ReadStateService`): hashes and headers after a
//! locator, stored blocks within a byte budget, an address's spendable
//! coins. Each names its own bound, and each is served from the store's
//! reader on a low-priority read thread ([`crate::read_pool`]), never on
//! the chain actor's: a flood of reads does not hold up blocks, sync or
//! payments. Only the pool's part of
//! [`ReadRequest::Coins`] goes to the actor, bounded in the pool
//! transactions it looks at.
//!
//! `node::inbound` translates peers' requests into these and back; the
//! wire protocol is not the chain's API.

use chain_core::block::BlockHeader;
use chain_core::{Amount, BlockHash, OutPoint, PubkeyHash};
use chain_store::{StoreError, StoreReader};
use std::collections::HashSet;

/// A read of the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadRequest {
    /// Hashes of the best chain after the first `locator` hash on it (the
    /// genesis when none is), up to and including `stop`, at most `limit`.
    HashesAfter {
        /// Hashes the asker holds, newest first.
        locator: Vec<BlockHash>,
        /// The last hash wanted, if any.
        stop: Option<BlockHash>,
        /// The most hashes answered.
        limit: usize,
    },
    /// Headers, chosen as [`ReadRequest::HashesAfter`] chooses hashes.
    HeadersAfter {
        /// Hashes the asker holds, newest first.
        locator: Vec<BlockHash>,
        /// The last header wanted, if any.
        stop: Option<BlockHash>,
        /// The most headers answered.
        limit: usize,
    },
    /// The stored bytes of fully validated blocks, in the order asked. A
    /// block not validated in full is not read at all. Reading stops after
    /// `max_count` blocks, or once `max_bytes` have been read.
    Blocks {
        /// The blocks wanted.
        hashes: Vec<BlockHash>,
        /// The most blocks answered.
        max_count: usize,
        /// Once this many bytes are read, no further block is.
        max_bytes: usize,
    },
    /// The spendable coins of an address: confirmed coins no pool
    /// transaction spends, then the pool's unspent outputs paying it, at
    /// most `limit` in all. The read of confirmed coins stops at its share.
    Coins {
        /// The address's public-key hash.
        pubkey_hash: PubkeyHash,
        /// The most coins answered, and the most pool transactions of the
        /// address looked at.
        limit: usize,
    },
}

/// The answer to a [`ReadRequest`], of the same kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadResponse {
    /// For [`ReadRequest::HashesAfter`].
    Hashes(Vec<BlockHash>),
    /// For [`ReadRequest::HeadersAfter`].
    Headers(Vec<BlockHeader>),
    /// For [`ReadRequest::Blocks`].
    Blocks {
        /// Stored bytes of the blocks found, in the order asked.
        blocks: Vec<Vec<u8>>,
        /// Hashes asked for, before reading stopped, that are not served.
        not_found: Vec<BlockHash>,
    },
    /// For [`ReadRequest::Coins`].
    Coins {
        /// The best chain's height the coins were read at.
        height: u32,
        /// The coins.
        coins: Vec<SpendableCoin>,
    },
}

impl ReadResponse {
    /// About how many bytes the answer takes on the wire.
    pub fn approx_bytes(&self) -> usize {
        match self {
            ReadResponse::Hashes(h) => h.len() * 32,
            // About 100 bytes per encoded header.
            ReadResponse::Headers(h) => h.len() * 100,
            ReadResponse::Blocks { blocks, not_found } => {
                blocks.iter().map(Vec::len).sum::<usize>() + not_found.len() * 32
            }
            // About 50 bytes per coin.
            ReadResponse::Coins { coins, .. } => coins.len() * 50,
        }
    }
}

/// A coin an address can spend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendableCoin {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
    /// Height of the block holding it; `None` while it is only in the pool.
    pub confirmed_height: Option<u32>,
    /// For a pool output: every input of its transaction spent a coin of
    /// the same address (the payer's own change).
    pub change: bool,
}

/// Why a read was not answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// No genesis yet.
    #[error("this node has no chain yet")]
    NoChain,
    /// The chain actor or the runtime is shutting down.
    #[error("the node is stopping")]
    Stopping,
    /// The read queue is full, or the answer budget is spent: ask again
    /// later.
    #[error("busy: the node's reads are at their limit; ask again later")]
    Busy,
    /// The store failed to read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The pool's part of a [`ReadRequest::Coins`] answer, from the chain actor:
/// the address's coins that pool transactions spend, and the pool's unspent
/// outputs paying it.
#[derive(Clone, Debug, Default)]
pub struct PoolCoins {
    /// Confirmed coins the pool spends: left out of the answer.
    pub spent: HashSet<OutPoint>,
    /// Unconfirmed outputs paying the address.
    pub unconfirmed: Vec<SpendableCoin>,
}

/// Serves a read from the store. `pool` is the pool's part of a
/// [`ReadRequest::Coins`] (ignored by the others).
pub fn serve(
    r: &StoreReader,
    request: ReadRequest,
    pool: PoolCoins,
) -> Result<ReadResponse, ReadError> {
    Ok(match request {
        ReadRequest::HashesAfter {
            locator,
            stop,
            limit,
        } => ReadResponse::Hashes(r.hashes_after(&locator, stop, limit)?),
        ReadRequest::HeadersAfter {
            locator,
            stop,
            limit,
        } => ReadResponse::Headers(r.headers_after(&locator, stop, limit)?),
        ReadRequest::Blocks {
            hashes,
            max_count,
            max_bytes,
        } => {
            let mut blocks = Vec::new();
            let mut not_found = Vec::new();
            let mut bytes = 0usize;
            for h in hashes {
                if blocks.len() >= max_count || bytes >= max_bytes {
                    break;
                }
                // Served as stored: the bytes are what was checked.
                match r.valid_block_bytes(&h)? {
                    Some(b) => {
                        bytes += b.len();
                        blocks.push(b);
                    }
                    None => not_found.push(h),
                }
            }
            ReadResponse::Blocks { blocks, not_found }
        }
        ReadRequest::Coins { pubkey_hash, limit } => coins(r, &pubkey_hash, limit, pool)?,
    })
}

/// Confirmed coins the pool does not spend first, as wallets expect them,
/// then the pool's; the read of confirmed coins stops at its share.
fn coins(
    r: &StoreReader,
    pkh: &PubkeyHash,
    limit: usize,
    pool: PoolCoins,
) -> Result<ReadResponse, ReadError> {
    let (_, height) = r.tip()?;
    let mut unconfirmed = pool.unconfirmed;
    unconfirmed.truncate(limit);
    let room = limit - unconfirmed.len();
    let confirmed = r.utxos_for_at_most(pkh, room, |op| pool.spent.contains(op))?;
    let mut coins: Vec<SpendableCoin> = confirmed
        .into_iter()
        .map(|(op, c)| SpendableCoin {
            outpoint: op,
            value: c.output.value,
            confirmed_height: Some(c.height),
            change: false,
        })
        .collect();
    coins.append(&mut unconfirmed);
    Ok(ReadResponse::Coins { height, coins })
}
