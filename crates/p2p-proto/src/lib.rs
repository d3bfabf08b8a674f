//! The node's wire messages and their codec. No async runtime, no libp2p.
//!
//! Every message is postcard-encoded. Request/response messages travel in
//! frames of a 4-byte big-endian length and the body; announcements are
//! gossipsub payloads. Decoding refuses a body over its size limit before
//! reading it, and every vector is capped while it is decoded, before its
//! elements are allocated. `docs/protocol.md` is the specification.

use chain_core::transaction::DecodeError;
use chain_core::{
    Amount, BlockHash, BlockHeader, OutPoint, PubkeyHash, Transaction, Txid, MAX_BLOCK_SIZE,
};
use serde::{Deserialize, Serialize};

pub mod bounded;
pub mod compact;
mod raw;

pub use compact::{CompactBlock, ShortId};

pub use raw::BlockBytes;

/// Decodes exactly one postcard value of `T` from `bytes`, refusing more
/// than `limit` bytes, trailing bytes and any encoding other than the
/// canonical one, so that each message has exactly one byte form.
pub fn decode_exact<T: serde::de::DeserializeOwned + Serialize>(
    bytes: &[u8],
    limit: usize,
    what: &'static str,
) -> Result<T, DecodeError> {
    chain_core::encode::check_limit(bytes, limit, what)?;
    let (v, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| DecodeError::Malformed {
        what,
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(DecodeError::Trailing(what));
    }
    // postcard accepts overlong varints; re-encoding catches them.
    if encode(&v) != bytes {
        return Err(DecodeError::NonCanonical(what));
    }
    Ok(v)
}

/// Encodes a message with postcard.
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising plain structs of integers, arrays and vectors into a Vec
    // cannot fail: postcard only errors on unsupported types or full buffers.
    postcard::to_stdvec(v).expect("postcard encoding of a plain struct into a Vec cannot fail")
}

/// The protocol version spoken. Version 2 carried transactions and blocks
/// in their hand-written consensus encoding (version 1 used postcard's);
/// version 3 gossips them unsigned, on topics of their own; version 4
/// announces blocks as compact blocks, on a topic of its own. A peer that
/// speaks another version is refused.
pub const PROTOCOL_VERSION: u32 = 4;
/// Request/response protocol id.
pub const SYNC_PROTOCOL: &str = "/chain/sync/1";
/// Gossipsub topic of block announcements.
pub const BLOCK_TOPIC: &str = "chain/blocks/3";
/// Gossipsub topic of transaction announcements.
pub const TX_TOPIC: &str = "chain/txs/2";
/// Most block hashes in one `Inv`.
pub const MAX_INV: usize = 500;
/// Most headers in one `Headers` reply.
pub const MAX_HEADERS: usize = 2_000;
/// Most locator entries.
pub const MAX_LOCATOR: usize = 64;
/// Most hashes asked for in one `GetData`.
pub const MAX_GETDATA: usize = 128;
/// Most blocks in one `Blocks` reply.
pub const MAX_BLOCKS_PER_REPLY: usize = 16;
/// Soft byte budget of one `Blocks` reply: the responder stops adding blocks past it.
pub const BLOCKS_REPLY_BUDGET: usize = 2_000_000;
/// Most coins in one `Utxos` reply.
pub const MAX_UTXOS: usize = 20_000;
/// Longest agent string.
pub const MAX_AGENT: usize = 128;
/// Longest rejection reason.
pub const MAX_REASON: usize = 1_024;
/// Largest request body.
pub const MAX_REQUEST_SIZE: usize = 128 * 1024;
/// Largest response body: a full budget plus one maximal block.
pub const MAX_RESPONSE_SIZE: usize = BLOCKS_REPLY_BUDGET + MAX_BLOCK_SIZE + 64 * 1024;
/// Largest gossip announcement.
pub const MAX_ANNOUNCEMENT_SIZE: usize = MAX_BLOCK_SIZE + 1024;

/// A node's view of its chain, exchanged as the handshake and on polls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// [`PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// The genesis hash: peers on another chain are refused.
    pub genesis: BlockHash,
    /// Height of the best block.
    pub best_height: u32,
    /// Hash of the best block.
    pub best_hash: BlockHash,
    /// Cumulative work of the best chain, 256-bit big-endian.
    pub total_work: [u8; 32],
    /// Free-form software name, at most [`MAX_AGENT`] bytes.
    pub agent: String,
}

/// A coin reported to a wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UtxoEntry {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
    /// Height of the block holding it; `None` while it is only in the mempool.
    pub confirmed_height: Option<u32>,
    /// For an unconfirmed coin: every input of the transaction that made it
    /// spent a coin of the same public-key hash (the payer's own change).
    pub change: bool,
}

/// A request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Handshake: the sender's status; the reply is the receiver's.
    Status(Status),
    /// Best-chain hashes after the first locator hash the receiver knows, up to `stop`.
    GetBlocks {
        /// Hashes from the sender's tip back to genesis, sparser with depth.
        #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LOCATOR>")]
        locator: Vec<BlockHash>,
        /// Where to stop, if anywhere.
        stop: Option<BlockHash>,
    },
    /// Blocks by hash.
    GetData {
        /// The hashes.
        #[serde(deserialize_with = "bounded::vec::<_, _, MAX_GETDATA>")]
        hashes: Vec<BlockHash>,
    },
    /// Submit a transaction to the receiver's mempool.
    SubmitTx(Transaction),
    /// The spendable coins of a public-key hash, mempool-aware.
    GetUtxos {
        /// Whose coins.
        pubkey_hash: PubkeyHash,
    },
    /// Best-chain headers after the first locator hash the receiver has on
    /// its best chain, up to `stop`: at most [`MAX_HEADERS`].
    GetHeaders {
        /// Hashes from the sender's tip back to genesis, sparser with depth.
        #[serde(deserialize_with = "bounded::vec::<_, _, MAX_LOCATOR>")]
        locator: Vec<BlockHash>,
        /// Where to stop, if anywhere.
        stop: Option<BlockHash>,
    },
    /// Transactions of a block, by position, to finish a compact block.
    GetBlockTxn {
        /// The block.
        hash: BlockHash,
        /// Positions in the block, strictly ascending.
        #[serde(deserialize_with = "bounded::vec::<_, _, { compact::MAX_BLOCK_TXS }>")]
        indexes: Vec<u32>,
    },
}

/// A response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The receiver's status.
    Status(Status),
    /// Block hashes, oldest first.
    Inv {
        /// At most [`MAX_INV`].
        #[serde(deserialize_with = "bounded::vec::<_, _, MAX_INV>")]
        hashes: Vec<BlockHash>,
    },
    /// Blocks in the order asked; hashes left out for size are neither here nor in `not_found`.
    Blocks {
        /// The blocks.
        #[serde(deserialize_with = "bounded::vec::<_, _, MAX_BLOCKS_PER_REPLY>")]
        blocks: Vec<BlockBytes>,
        /// Hashes the receiver does not have.
        #[serde(deserialize_with = "bounded::vec::<_, _, MAX_GETDATA>")]
        not_found: Vec<BlockHash>,
    },
    /// The transaction entered the mempool.
    TxAccepted {
        /// Its id.
        txid: Txid,
    },
    /// The transaction was refused.
    TxRejected {
        /// Its id.
        txid: Txid,
        /// Why, for a person to read.
        reason: String,
    },
    /// Coins of a public-key hash.
    Utxos {
        /// The receiver's best height.
        height: u32,
        /// The coins: confirmed ones not spent in the mempool, then unconfirmed ones.
        #[serde(deserialize_with = "bounded::vec::<_, _, MAX_UTXOS>")]
        utxos: Vec<UtxoEntry>,
    },
    /// The request could not be served.
    Error {
        /// Why.
        reason: String,
    },
    /// Headers, oldest first, each the parent of the next.
    Headers {
        /// At most [`MAX_HEADERS`].
        #[serde(deserialize_with = "bounded::vec::<_, _, MAX_HEADERS>")]
        headers: Vec<BlockHeader>,
    },
    /// The transactions a `GetBlockTxn` asked for, in its order.
    BlockTxn {
        /// The block.
        hash: BlockHash,
        /// The transactions.
        #[serde(deserialize_with = "bounded::vec::<_, _, { compact::MAX_BLOCK_TXS }>")]
        txs: Vec<Transaction>,
    },
}

/// A gossip announcement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Announcement {
    /// A new block, as its consensus bytes (decoded by the receiver's
    /// node, not its network layer).
    Block(BlockBytes),
    /// A new transaction.
    Tx(Transaction),
    /// A new block as its header, coinbase and short ids (version 4).
    CompactBlock(CompactBlock),
}

/// Why bytes are not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// Decoding failed or a limit was exceeded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A string field is over its limit.
    #[error("{field} is {len} bytes, the limit is {limit}")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
}

fn check_len(field: &'static str, len: usize, limit: usize) -> Result<(), ProtoError> {
    if len > limit {
        return Err(ProtoError::FieldTooLong { field, len, limit });
    }
    Ok(())
}

impl Request {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a body of at most [`MAX_REQUEST_SIZE`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Request, ProtoError> {
        let r: Request = decode_exact(bytes, MAX_REQUEST_SIZE, "request")?;
        if let Request::Status(s) = &r {
            check_len("agent", s.agent.len(), MAX_AGENT)?;
        }
        Ok(r)
    }
}

impl Response {
    /// Encodes the body.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a body of at most [`MAX_RESPONSE_SIZE`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Response, ProtoError> {
        let r: Response = decode_exact(bytes, MAX_RESPONSE_SIZE, "response")?;
        match &r {
            Response::Status(s) => check_len("agent", s.agent.len(), MAX_AGENT)?,
            Response::TxRejected { reason, .. } | Response::Error { reason } => {
                check_len("reason", reason.len(), MAX_REASON)?
            }
            _ => {}
        }
        Ok(r)
    }
}

impl Announcement {
    /// Encodes the payload.
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a payload of at most [`MAX_ANNOUNCEMENT_SIZE`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Announcement, ProtoError> {
        Ok(decode_exact(bytes, MAX_ANNOUNCEMENT_SIZE, "announcement")?)
    }
}

/// Cuts a reason to [`MAX_REASON`] bytes on a character boundary.
pub fn clip_reason(mut s: String) -> String {
    if s.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Frame header: the body length, 4 bytes big-endian.
pub fn frame_header(body_len: usize) -> [u8; 4] {
    // Bodies are capped far below 4 GiB by the limits above.
    u32::try_from(body_len).unwrap_or(u32::MAX).to_be_bytes()
}

/// Reads a frame header and checks the length against `limit` before any body is read.
pub fn frame_len(header: [u8; 4], limit: usize) -> Result<usize, ProtoError> {
    let len = usize::try_from(u32::from_be_bytes(header)).unwrap_or(usize::MAX);
    if len > limit {
        return Err(DecodeError::TooLarge {
            what: "frame",
            size: len,
            limit,
        }
        .into());
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_frames_and_vectors_are_refused_before_allocation() {
        assert!(frame_len(frame_header(MAX_REQUEST_SIZE + 1), MAX_REQUEST_SIZE).is_err());
        assert_eq!(frame_len(frame_header(10), MAX_REQUEST_SIZE), Ok(10));
        // A GetData claiming 2^32 - 1 hashes: postcard varint tag 2, then the length.
        let bytes = [2u8, 0xff, 0xff, 0xff, 0xff, 0x0f];
        assert!(Request::decode(&bytes).is_err());
        let too_many = Request::GetData {
            hashes: vec![BlockHash::ZERO; MAX_GETDATA + 1],
        };
        assert!(Request::decode(&too_many.encode()).is_err());
        let ok = Request::GetData {
            hashes: vec![BlockHash::ZERO; MAX_GETDATA],
        };
        assert_eq!(Request::decode(&ok.encode()).unwrap(), ok);
    }

    #[test]
    fn headers_replies_are_capped_and_round_trip() {
        let h = BlockHeader {
            version: 1,
            prev: BlockHash([1; 32]),
            merkle_root: chain_core::MerkleRoot([2; 32]),
            time: u64::MAX,
            bits: chain_core::pow::CompactTarget(u32::MAX),
            height: u32::MAX,
            nonce: u64::MAX,
        };
        // A full reply of the largest headers fits the response limit.
        let full = Response::Headers {
            headers: vec![h; MAX_HEADERS],
        };
        let bytes = full.encode();
        assert!(bytes.len() <= MAX_RESPONSE_SIZE);
        assert_eq!(Response::decode(&bytes).unwrap(), full);
        let over = Response::Headers {
            headers: vec![h; MAX_HEADERS + 1],
        };
        assert!(Response::decode(&over.encode()).is_err());
        // GetHeaders is request variant 5, Headers response variant 7.
        let ask = Request::GetHeaders {
            locator: vec![BlockHash([3; 32])],
            stop: None,
        };
        let b = ask.encode();
        assert_eq!(&b[..2], &[5, 1]);
        assert_eq!(b.len(), 2 + 32 + 1);
        assert_eq!(Request::decode(&b).unwrap(), ask);
        assert_eq!(bytes[0], 7);
    }

    #[test]
    fn long_agent_is_refused() {
        let s = Status {
            protocol_version: 1,
            genesis: BlockHash::ZERO,
            best_height: 0,
            best_hash: BlockHash::ZERO,
            total_work: [0; 32],
            agent: "x".repeat(MAX_AGENT + 1),
        };
        assert!(matches!(
            Request::decode(&Request::Status(s).encode()),
            Err(ProtoError::FieldTooLong { .. })
        ));
    }
}
