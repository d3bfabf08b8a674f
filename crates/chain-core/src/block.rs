//! Block headers, blocks, the Merkle root and chain parameters.
//!
//! The header hashes as a fixed 92-byte layout (all integers little-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | version |
//! | 4 | 32 | previous block hash |
//! | 36 | 32 | merkle root |
//! | 68 | 8 | time (unix seconds) |
//! | 76 | 4 | compact difficulty bits |
//! | 80 | 4 | height |
//! | 84 | 8 | nonce |
//!
//! SHA-256 works on 64-byte chunks, so the nonce sits in the second chunk and
//! a miner hashes the first chunk once (the midstate) for every nonce.

use crate::address::PubkeyHash;
use crate::amount::Amount;
use crate::encode::{
    check_limit, compact_size_len, serde_as_consensus_bytes, write_compact_size, Reader,
};
use crate::hash::{sha256d, BlockHash, MerkleRoot, Txid};
use crate::pow::{CompactTarget, Work};
use crate::transaction::{DecodeError, Transaction, MIN_TX_SIZE};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Size of the hashed header layout.
pub const HEADER_SIZE: usize = 92;
/// Largest encoded block, in bytes.
pub const MAX_BLOCK_SIZE: usize = 1_000_000;
/// The header version this code writes and accepts.
pub const BLOCK_VERSION: u32 = 1;

/// A block header. Its serde form is its fixed 92-byte layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockHeader {
    /// Format version.
    pub version: u32,
    /// Hash of the parent block (zero for genesis).
    pub prev: BlockHash,
    /// Merkle root of the txids.
    pub merkle_root: MerkleRoot,
    /// Unix time in seconds.
    pub time: u64,
    /// Compact target.
    pub bits: CompactTarget,
    /// Height: the parent's plus one (zero for genesis).
    pub height: u32,
    /// Proof-of-work nonce.
    pub nonce: u64,
}

impl BlockHeader {
    /// The fixed 92-byte layout that is hashed.
    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&self.version.to_le_bytes());
        b[4..36].copy_from_slice(&self.prev.0);
        b[36..68].copy_from_slice(&self.merkle_root.0);
        b[68..76].copy_from_slice(&self.time.to_le_bytes());
        b[76..80].copy_from_slice(&self.bits.0.to_le_bytes());
        b[80..84].copy_from_slice(&self.height.to_le_bytes());
        b[84..92].copy_from_slice(&self.nonce.to_le_bytes());
        b
    }

    /// The inverse of [`BlockHeader::to_bytes`].
    pub fn from_bytes(b: &[u8; HEADER_SIZE]) -> BlockHeader {
        let arr32 =
            |r: std::ops::Range<usize>| -> [u8; 32] { b[r].try_into().expect("32-byte range") };
        BlockHeader {
            version: u32::from_le_bytes(b[0..4].try_into().expect("4-byte range")),
            prev: BlockHash(arr32(4..36)),
            merkle_root: MerkleRoot(arr32(36..68)),
            time: u64::from_le_bytes(b[68..76].try_into().expect("8-byte range")),
            bits: CompactTarget(u32::from_le_bytes(
                b[76..80].try_into().expect("4-byte range"),
            )),
            height: u32::from_le_bytes(b[80..84].try_into().expect("4-byte range")),
            nonce: u64::from_le_bytes(b[84..92].try_into().expect("8-byte range")),
        }
    }

    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        #[cfg(feature = "hash-count")]
        crate::hash::count::header();
        BlockHash(sha256d(&self.to_bytes()))
    }

    /// The SHA-256 state after the first 64 bytes, which no nonce changes.
    pub fn midstate(&self) -> Sha256 {
        let bytes = self.to_bytes();
        let mut h = Sha256::new();
        h.update(&bytes[..64]);
        h
    }

    /// The work this header's target represents (zero for an invalid target).
    pub fn work(&self) -> Work {
        self.bits.to_target().map(|t| t.work()).unwrap_or_default()
    }
}

impl Serialize for BlockHeader {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let bytes = self.to_bytes();
        let mut t = s.serialize_tuple(HEADER_SIZE)?;
        for b in &bytes {
            t.serialize_element(b)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for BlockHeader {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = BlockHeader;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a {HEADER_SIZE}-byte block header")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<BlockHeader, A::Error> {
                let mut b = [0u8; HEADER_SIZE];
                for (i, slot) in b.iter_mut().enumerate() {
                    *slot = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                Ok(BlockHeader::from_bytes(&b))
            }
        }
        d.deserialize_tuple(HEADER_SIZE, V)
    }
}

/// A block: a header and its transactions, the coinbase first. Its serde
/// form is its consensus bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions.
    pub transactions: Vec<Transaction>,
}

serde_as_consensus_bytes!(Block, "a block's consensus bytes");

impl Block {
    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// The consensus encoding: the 92-byte header layout, the transaction
    /// count (CompactSize), then each transaction's encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&self.header.to_bytes());
        write_compact_size(&mut out, self.transactions.len() as u64); // usize -> u64 is lossless on every supported target
        for tx in &self.transactions {
            tx.encode_to(&mut out);
        }
        out
    }

    /// The length of the consensus encoding, counted without encoding.
    pub fn encoded_len(&self) -> usize {
        HEADER_SIZE
            + compact_size_len(self.transactions.len() as u64) // lossless, as above
            + self.transactions.iter().map(Transaction::size).sum::<usize>()
    }

    /// Decodes a block, refusing more than [`MAX_BLOCK_SIZE`] bytes,
    /// trailing bytes and non-canonical sizes.
    pub fn decode(bytes: &[u8]) -> Result<Block, DecodeError> {
        Self::read(bytes, |_| {})
    }

    /// Decodes a block and computes its txids from the bytes each
    /// transaction was read from, so nothing is encoded again.
    pub fn decode_with_txids(bytes: &[u8]) -> Result<(Block, Vec<Txid>), DecodeError> {
        let mut txids = Vec::new();
        let block = Self::read(bytes, |tx| txids.push(Txid(sha256d(tx))))?;
        Ok((block, txids))
    }

    /// Decodes a block, handing `each_tx` the bytes of each transaction.
    fn read(bytes: &[u8], mut each_tx: impl FnMut(&[u8])) -> Result<Block, DecodeError> {
        check_limit(bytes, MAX_BLOCK_SIZE, "block")?;
        let mut r = Reader::new(bytes, "block");
        let header = BlockHeader::from_bytes(&r.array()?);
        let n = r.count(MIN_TX_SIZE, "transactions")?;
        let mut transactions = Vec::with_capacity(n);
        for _ in 0..n {
            let start = r.position();
            transactions.push(Transaction::read(&mut r)?);
            each_tx(&bytes[start..r.position()]);
        }
        r.finish()?;
        Ok(Block {
            header,
            transactions,
        })
    }

    /// The header of a block's consensus bytes, read without decoding the
    /// rest: the encoding starts with the 92-byte layout.
    pub fn header_of(bytes: &[u8]) -> Result<BlockHeader, DecodeError> {
        Ok(BlockHeader::from_bytes(
            &Reader::new(bytes, "block").array()?,
        ))
    }

    /// The txids in order.
    pub fn txids(&self) -> Vec<Txid> {
        self.transactions.iter().map(Transaction::txid).collect()
    }
}

/// The Merkle root over txids, Bitcoin's way: pair up, hash with double
/// SHA-256, and repeat the last node of an odd level. Repeating the last node
/// is what lets two different lists share a root (CVE-2012-2459), which is why
/// validation separately refuses a block with duplicate txids.
pub fn merkle_root(txids: &[Txid]) -> MerkleRoot {
    if txids.is_empty() {
        return MerkleRoot::ZERO;
    }
    let mut level: Vec<[u8; 32]> = txids.iter().map(|t| t.0).collect();
    let mut buf = [0u8; 64];
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        for pair in level.chunks(2) {
            buf[..32].copy_from_slice(&pair[0]);
            buf[32..].copy_from_slice(pair.get(1).unwrap_or(&pair[0]));
            next.push(sha256d(&buf));
        }
        level = next;
    }
    MerkleRoot(level[0])
}

/// The parameters of a chain, fixed at creation and committed to by its genesis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainParams {
    /// The difficulty of the genesis block and, without retargeting, of every block.
    pub initial_bits: CompactTarget,
    /// The coinbase reward.
    pub reward: Amount,
    /// Blocks between difficulty adjustments; 0 turns retargeting off.
    pub retarget_interval: u32,
    /// The intended seconds between blocks, used by retargeting.
    pub target_spacing: u64,
}

impl Default for ChainParams {
    /// The Go project's chain: 12 leading zero bits, a reward of 20, no retargeting.
    fn default() -> Self {
        ChainParams {
            initial_bits: CompactTarget::from_leading_zero_bits(12)
                .expect("12 is a valid difficulty"),
            reward: Amount(20),
            retarget_interval: 0,
            target_spacing: 60,
        }
    }
}

/// The marker in the genesis coinbase data before the encoded parameters.
const PARAMS_TAG: &[u8] = b"params:";

/// Why a genesis block does not describe a chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenesisError {
    /// Not a height-0 block with a coinbase that carries the parameters.
    #[error(
        "block {0} is not a genesis block of this software (no chain parameters in its coinbase)"
    )]
    NoParams(BlockHash),
    /// The parameters are not usable.
    #[error("genesis {0} has unusable chain parameters: {1}")]
    BadParams(BlockHash, String),
}

impl ChainParams {
    /// Reads the parameters from a genesis block.
    pub fn from_genesis(genesis: &Block) -> Result<ChainParams, GenesisError> {
        let hash = genesis.hash();
        let cb = genesis
            .transactions
            .first()
            .filter(|t| t.is_coinbase() && genesis.header.height == 0);
        let data = cb
            .map(|t| &t.inputs[0].signature[..])
            .ok_or(GenesisError::NoParams(hash))?;
        let rest = data
            .get(4..)
            .filter(|r| r.starts_with(PARAMS_TAG))
            .ok_or(GenesisError::NoParams(hash))?;
        let params = ChainParams::decode(&rest[PARAMS_TAG.len()..])
            .map_err(|e| GenesisError::BadParams(hash, e.to_string()))?;
        params
            .validate()
            .map_err(|e| GenesisError::BadParams(hash, e))?;
        if genesis.header.bits != params.initial_bits {
            return Err(GenesisError::BadParams(
                hash,
                "header bits differ from the parameters".into(),
            ));
        }
        // `cb` is Some: `data` came from it.
        let paid = cb.and_then(|t| t.output_value());
        if paid != Some(params.reward) {
            return Err(GenesisError::BadParams(
                hash,
                format!(
                    "the coinbase pays {}, not the reward {}",
                    paid.map_or_else(
                        || "more than the money supply".to_string(),
                        |a| a.0.to_string()
                    ),
                    params.reward.0
                ),
            ));
        }
        Ok(params)
    }

    /// Size of the encoded parameters.
    pub const ENCODED_SIZE: usize = 4 + 8 + 4 + 8;

    /// The encoding carried in the genesis coinbase: initial bits (u32),
    /// reward (u64), retarget interval (u32), target spacing (u64), each
    /// little-endian.
    pub fn encode(&self) -> [u8; Self::ENCODED_SIZE] {
        let mut b = [0u8; Self::ENCODED_SIZE];
        b[0..4].copy_from_slice(&self.initial_bits.0.to_le_bytes());
        b[4..12].copy_from_slice(&self.reward.0.to_le_bytes());
        b[12..16].copy_from_slice(&self.retarget_interval.to_le_bytes());
        b[16..24].copy_from_slice(&self.target_spacing.to_le_bytes());
        b
    }

    /// The inverse of [`ChainParams::encode`]; nothing may follow.
    pub fn decode(bytes: &[u8]) -> Result<ChainParams, DecodeError> {
        let mut r = Reader::new(bytes, "chain parameters");
        let p = ChainParams {
            initial_bits: CompactTarget(r.u32()?),
            reward: Amount(r.u64()?),
            retarget_interval: r.u32()?,
            target_spacing: r.u64()?,
        };
        r.finish()?;
        Ok(p)
    }

    /// Checks the parameters make sense.
    pub fn validate(&self) -> Result<(), String> {
        let t = self
            .initial_bits
            .to_target()
            .ok_or("the initial difficulty is not a valid target")?;
        if t > crate::pow::Target::pow_limit() {
            return Err("the initial difficulty is easier than the limit".into());
        }
        if self.reward == Amount::ZERO || self.reward > crate::amount::MAX_MONEY {
            return Err("the reward must be between 1 and the money supply".into());
        }
        if self.retarget_interval > 0 && self.target_spacing == 0 {
            return Err("retargeting needs a target spacing above zero".into());
        }
        Ok(())
    }

    /// The coinbase of a genesis block paying the reward to `to` and carrying these parameters.
    pub fn genesis_coinbase(&self, to: PubkeyHash) -> Transaction {
        let mut extra = PARAMS_TAG.to_vec();
        extra.extend_from_slice(&self.encode());
        Transaction::coinbase(0, to, self.reward, &extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_layout_round_trip_and_nonce_in_second_chunk() {
        let h = BlockHeader {
            version: 1,
            prev: BlockHash([1; 32]),
            merkle_root: MerkleRoot([2; 32]),
            time: 3,
            bits: CompactTarget(0x1f10_0000),
            height: 4,
            nonce: 0x0102_0304_0506_0708,
        };
        let b = h.to_bytes();
        assert_eq!(BlockHeader::from_bytes(&b), h);
        assert_eq!(&b[84..92], &0x0102_0304_0506_0708u64.to_le_bytes());
        let mut h2 = h;
        h2.nonce = 9;
        assert_eq!(h.to_bytes()[..64], h2.to_bytes()[..64]);
        // The midstate plus the tail gives the same hash.
        let mut m = h.midstate();
        m.update(&b[64..]);
        let first = m.finalize();
        assert_eq!(BlockHash(Sha256::digest(first).into()), h.hash());
    }

    #[test]
    fn merkle_duplicate_last_shares_root() {
        let a = Txid([1; 32]);
        let b = Txid([2; 32]);
        let c = Txid([3; 32]);
        assert_eq!(merkle_root(&[a]), MerkleRoot(a.0));
        assert_eq!(merkle_root(&[a, b, c]), merkle_root(&[a, b, c, c]));
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
    }

    #[test]
    fn params_round_trip_through_genesis_coinbase() {
        let p = ChainParams {
            retarget_interval: 10,
            ..ChainParams::default()
        };
        let cb = p.genesis_coinbase(PubkeyHash([0; 20]));
        assert!(cb.check().is_ok());
        let block = Block {
            header: BlockHeader {
                version: 1,
                prev: BlockHash::ZERO,
                merkle_root: merkle_root(&[cb.txid()]),
                time: 0,
                bits: p.initial_bits,
                height: 0,
                nonce: 0,
            },
            transactions: vec![cb],
        };
        assert_eq!(ChainParams::from_genesis(&block).unwrap(), p);

        // A genesis coinbase paying other than the reward is refused.
        let mut more = block.clone();
        more.transactions[0].outputs[0].value = Amount(p.reward.0 + 1);
        let err = ChainParams::from_genesis(&more).unwrap_err();
        assert!(err.to_string().contains("not the reward"), "{err}");
        let mut less = block;
        less.transactions[0].outputs[0].value = Amount(p.reward.0 - 1);
        assert!(ChainParams::from_genesis(&less).is_err());
    }
}
