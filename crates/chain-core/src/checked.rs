//! Blocks and payments that carry what was computed from their bytes once,
//! at the edge where they arrived (Zebra's `SemanticallyVerifiedBlock` and
//! `UnminedTx`): the hash, the txids and the encoding. A block is decoded
//! from the bytes it came in and its header hashed once; each txid is
//! hashed from its slice of those bytes. The rest of the path (the chain's
//! checks, the store, the mempool, relay) reads these and neither encodes
//! nor hashes again.

use crate::block::{Block, HEADER_SIZE};
use crate::encode::compact_size_len;
use crate::hash::{sha256d, BlockHash, Txid};
use crate::transaction::{DecodeError, Transaction};
use crate::validation::{check_header_hashed, check_received_body, BlockError};

/// A block as it arrived, or as this node made it: decoded, with its hash,
/// its txids and its consensus encoding, computed once. Nothing about its
/// validity is known yet ([`ReceivedBlock::check_body`] makes it a
/// [`CheckedBlock`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedBlock {
    block: Block,
    hash: BlockHash,
    txids: Vec<Txid>,
    bytes: Vec<u8>,
}

impl ReceivedBlock {
    /// Decodes the bytes a block came in (refusing more than
    /// [`crate::MAX_BLOCK_SIZE`], trailing bytes and non-canonical sizes,
    /// so the bytes are the block's encoding), hashing the header once and
    /// each txid from its slice. The bytes are kept for storing and relay.
    pub fn decode(bytes: Vec<u8>) -> Result<ReceivedBlock, DecodeError> {
        let (block, txids) = Block::decode_with_txids(&bytes)?;
        Ok(ReceivedBlock {
            hash: block.header.hash(),
            block,
            txids,
            bytes,
        })
    }

    /// A block built here (a minted one): encoded once, each txid hashed
    /// from its slice of the encoding, the header hashed once.
    pub fn new(block: Block) -> ReceivedBlock {
        let bytes = block.encode();
        let mut txids = Vec::with_capacity(block.transactions.len());
        // usize -> u64 is lossless on every supported target.
        let mut start = HEADER_SIZE + compact_size_len(block.transactions.len() as u64);
        for tx in &block.transactions {
            let end = start + tx.size();
            txids.push(Txid(sha256d(&bytes[start..end])));
            start = end;
        }
        ReceivedBlock {
            hash: block.header.hash(),
            block,
            txids,
            bytes,
        }
    }

    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        self.hash
    }

    /// The txids, in block order.
    pub fn txids(&self) -> &[Txid] {
        &self.txids
    }

    /// The consensus encoding.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded size in bytes.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    /// The block, giving up what was computed.
    pub fn into_block(self) -> Block {
        self.block
    }

    /// The encoding, giving up the rest.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// [`crate::validation::check_header`] with the hash already computed:
    /// version, bits within the limit, and the hash meeting its target.
    pub fn check_header(&self) -> Result<(), BlockError> {
        check_header_hashed(&self.block.header, self.hash)
    }

    /// [`crate::validation::check_body`] on what was computed: size,
    /// coinbase placement, no duplicate txids, the Merkle root, each
    /// transaction's own checks and the coinbase height. Nothing is encoded,
    /// hashed or copied again.
    pub fn check_body(self) -> Result<CheckedBlock, BlockError> {
        self.verify_body()?;
        Ok(CheckedBlock(self))
    }

    /// The checks of [`ReceivedBlock::check_body`], keeping the block as
    /// it is (an orphan is checked before it is held).
    pub fn verify_body(&self) -> Result<(), BlockError> {
        check_received_body(&self.block, &self.bytes, &self.txids)
    }
}

impl From<Block> for ReceivedBlock {
    fn from(block: Block) -> ReceivedBlock {
        ReceivedBlock::new(block)
    }
}

impl std::ops::Deref for ReceivedBlock {
    type Target = Block;
    fn deref(&self) -> &Block {
        &self.block
    }
}

/// A block whose context-free checks passed, with what was computed once:
/// its hash, its txids and its consensus encoding (each txid is hashed from
/// its slice of that encoding). Connecting it, storing it, the mempool's
/// update and relay read these instead of encoding or hashing again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedBlock(ReceivedBlock);

impl CheckedBlock {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.0.block
    }

    /// The block hash.
    pub fn hash(&self) -> BlockHash {
        self.0.hash
    }

    /// The txids, in block order.
    pub fn txids(&self) -> &[Txid] {
        &self.0.txids
    }

    /// The encoded size in bytes.
    pub fn size(&self) -> usize {
        self.0.bytes.len()
    }

    /// The consensus encoding.
    pub fn bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// The block, giving up what was computed.
    pub fn into_block(self) -> Block {
        self.0.block
    }

    /// A block read back from storage that holds only blocks which passed
    /// [`crate::validation::check_body`]: decoded, its txids hashed from the
    /// bytes, and not checked again.
    pub fn from_stored_bytes(bytes: &[u8]) -> Result<CheckedBlock, DecodeError> {
        ReceivedBlock::decode(bytes.to_vec()).map(CheckedBlock)
    }
}

impl PartialEq<Block> for CheckedBlock {
    fn eq(&self, other: &Block) -> bool {
        self.0.block == *other
    }
}

impl std::ops::Deref for CheckedBlock {
    type Target = Block;
    fn deref(&self) -> &Block {
        &self.0.block
    }
}

/// A payment that carries its txid and encoded size from the moment it was
/// decoded or built, so no layer it passes through hashes or measures it
/// again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnminedTx {
    tx: Transaction,
    txid: Txid,
    size: usize,
}

impl UnminedTx {
    /// Encodes `tx` once for its txid and size.
    pub fn new(tx: Transaction) -> UnminedTx {
        let bytes = tx.encode();
        UnminedTx {
            txid: Txid(sha256d(&bytes)),
            size: bytes.len(),
            tx,
        }
    }

    /// A transaction whose txid and size this crate already holds (the
    /// mempool's entries).
    pub(crate) fn known(tx: Transaction, txid: Txid, size: usize) -> UnminedTx {
        UnminedTx { tx, txid, size }
    }

    /// The transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }

    /// Its txid.
    pub fn txid(&self) -> Txid {
        self.txid
    }

    /// Its encoded size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The transaction, giving up what was computed.
    pub fn into_tx(self) -> Transaction {
        self.tx
    }
}

impl From<Transaction> for UnminedTx {
    fn from(tx: Transaction) -> UnminedTx {
        UnminedTx::new(tx)
    }
}

impl std::ops::Deref for UnminedTx {
    type Target = Transaction;
    fn deref(&self) -> &Transaction {
        &self.tx
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::keys::PrivateKey;
    use crate::test_utils::{child, easy_params, genesis, outputs_of, spend};
    use crate::Amount;

    fn block_with_payment() -> Block {
        let p = easy_params();
        let key = PrivateKey::generate();
        let pkh = key.public_key().pubkey_hash();
        let g = genesis(&p, pkh);
        let pay = spend(
            &key,
            &outputs_of(&g.transactions[0]),
            pkh,
            Amount(5),
            Amount(0),
        );
        child(&p, &g.header, vec![pay], Amount(0), pkh)
    }

    #[test]
    fn decoded_and_built_blocks_compute_the_same_hash_txids_and_bytes() {
        let b = block_with_payment();
        let built = ReceivedBlock::new(b.clone());
        let decoded = ReceivedBlock::decode(b.encode()).unwrap();
        assert_eq!(built, decoded);
        assert_eq!(built.hash(), b.hash());
        assert_eq!(built.txids(), b.txids().as_slice());
        assert_eq!(built.bytes(), b.encode().as_slice());
        let checked = decoded.check_body().unwrap();
        assert_eq!(checked.hash(), b.hash());
        assert_eq!(checked.size(), b.encoded_len());
        assert_eq!(
            CheckedBlock::from_stored_bytes(checked.bytes()).unwrap(),
            checked
        );
    }

    #[test]
    fn trailing_bytes_are_refused_so_the_kept_bytes_are_the_encoding() {
        let mut bytes = block_with_payment().encode();
        bytes.push(0);
        assert!(ReceivedBlock::decode(bytes).is_err());
    }

    #[test]
    fn a_body_that_does_not_match_its_header_fails_its_check() {
        let mut b = block_with_payment();
        b.transactions.pop();
        let err = ReceivedBlock::new(b).check_body().unwrap_err();
        assert!(matches!(err, BlockError::BadMerkleRoot { .. }), "{err:?}");
        assert!(err.is_body_fault());
    }

    #[test]
    fn an_unmined_tx_carries_the_txid_and_size_of_its_encoding() {
        let b = block_with_payment();
        let tx = b.transactions[1].clone();
        let u = UnminedTx::new(tx.clone());
        assert_eq!(u.txid(), tx.txid());
        assert_eq!(u.size(), tx.encode().len());
        assert_eq!(u.into_tx(), tx);
    }
}
