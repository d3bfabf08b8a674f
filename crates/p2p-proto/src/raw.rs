//! A block carried as its consensus bytes, decoded only when wanted.

use chain_core::transaction::DecodeError;
use chain_core::{Block, BlockHash, BlockHeader, ReceivedBlock};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A block's consensus bytes, on the wire exactly as a [`Block`] (a byte
/// string). A node serves stored blocks with it without decoding them, and
/// a receiver reads the header from the first 92 bytes before it decodes
/// the body. Receiving checks nothing beyond the message's own size limit:
/// [`BlockBytes::decode`] refuses more than [`chain_core::MAX_BLOCK_SIZE`] bytes and any
/// malformed block, so the receiver can name the block it refuses.
#[derive(Clone, PartialEq, Eq)]
pub struct BlockBytes(Vec<u8>);

impl BlockBytes {
    /// Wraps stored or received bytes.
    pub fn new(bytes: Vec<u8>) -> BlockBytes {
        BlockBytes(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The number of bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are no bytes (never a valid block).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The header, from the first 92 bytes.
    pub fn header(&self) -> Result<BlockHeader, DecodeError> {
        Block::header_of(&self.0)
    }

    /// The block hash, from the header bytes.
    pub fn hash(&self) -> Result<BlockHash, DecodeError> {
        self.header().map(|h| h.hash())
    }

    /// Decodes the block, refusing more than [`chain_core::MAX_BLOCK_SIZE`] bytes.
    pub fn decode(&self) -> Result<Block, DecodeError> {
        Block::decode(&self.0)
    }

    /// Decodes the block into what the chain checks, keeping these bytes:
    /// the header hashed once, each txid hashed from its slice
    /// ([`chain_core::ReceivedBlock::decode`]).
    pub fn into_received(self) -> Result<ReceivedBlock, DecodeError> {
        ReceivedBlock::decode(self.0)
    }
}

impl From<&Block> for BlockBytes {
    fn from(b: &Block) -> BlockBytes {
        BlockBytes(b.encode())
    }
}

impl std::fmt::Debug for BlockBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.hash() {
            Ok(h) => write!(f, "BlockBytes({h}, {} bytes)", self.0.len()),
            Err(_) => write!(f, "BlockBytes({} bytes)", self.0.len()),
        }
    }
}

impl Serialize for BlockBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for BlockBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = BlockBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a block's consensus bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<BlockBytes, E> {
                Ok(BlockBytes(v.to_vec()))
            }
        }
        d.deserialize_bytes(V)
    }
}
