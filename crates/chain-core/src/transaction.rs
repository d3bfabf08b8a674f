//! Transactions, their canonical encoding, txids and the signature hash.
//!
//! The consensus encoding is written by hand ([`crate::encode`]). A txid is
//! the double SHA-256 of that encoding; each transaction has exactly one
//! encoding, so a peer's choice of bytes cannot change it.
//!
//! A coinbase has exactly one input whose outpoint is [`OutPoint::NULL`]; its
//! `signature` field carries the coinbase data, which starts with the block
//! height as four little-endian bytes so that no two coinbases share a txid.

use crate::address::PubkeyHash;
use crate::amount::{Amount, MAX_MONEY};
use crate::encode::{
    check_limit, compact_size_len, serde_as_consensus_bytes, var_bytes_len, write_compact_size,
    write_var_bytes, Reader,
};
use crate::hash::{sha256d, Txid};
use crate::keys::PrivateKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Largest encoded transaction accepted, in bytes.
pub const MAX_TX_SIZE: usize = 100_000;
/// Largest coinbase data, in bytes.
pub const MAX_COINBASE_DATA: usize = 100;
/// Longest signature field: the longest strict-DER ECDSA signature over
/// secp256k1 (`30 44 02 21 <r: 33> 02 21 <s: 33>`, 72 bytes). There is no
/// sighash-type byte. A low-S signature is at most 71 bytes; the parser and
/// the low-S rule refuse the rest.
pub const MAX_SIGNATURE_LEN: usize = 72;
/// A compressed SEC1 public key's length.
pub const PUBKEY_LEN: usize = 33;

/// A reference to one output of an earlier transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OutPoint {
    /// The transaction holding the output.
    pub txid: Txid,
    /// The output's index in it.
    pub vout: u32,
}

impl OutPoint {
    /// The outpoint a coinbase input refers to.
    pub const NULL: OutPoint = OutPoint {
        txid: Txid::ZERO,
        vout: u32::MAX,
    };

    /// Fixed 36-byte key: txid then big-endian index, so keys sort by txid then index.
    pub fn to_key(&self) -> [u8; 36] {
        let mut k = [0u8; 36];
        k[..32].copy_from_slice(&self.txid.0);
        k[32..].copy_from_slice(&self.vout.to_be_bytes());
        k
    }

    /// The inverse of [`OutPoint::to_key`].
    pub fn from_key(k: &[u8]) -> Option<OutPoint> {
        if k.len() != 36 {
            return None;
        }
        let mut txid = [0u8; 32];
        txid.copy_from_slice(&k[..32]);
        let mut idx = [0u8; 4];
        idx.copy_from_slice(&k[32..]);
        Some(OutPoint {
            txid: Txid(txid),
            vout: u32::from_be_bytes(idx),
        })
    }
}

impl std::fmt::Display for OutPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.txid, self.vout)
    }
}

/// A transaction input.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TxIn {
    /// The output being spent.
    pub prevout: OutPoint,
    /// Strict-DER ECDSA signature; for a coinbase, the coinbase data.
    pub signature: Vec<u8>,
    /// Compressed SEC1 public key whose hash160 the spent output pays to; empty for a coinbase.
    pub pubkey: Vec<u8>,
}

/// A transaction output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxOut {
    /// The amount.
    pub value: Amount,
    /// Who can spend it.
    pub pubkey_hash: PubkeyHash,
}

/// A transaction. Its serde form is its consensus bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transaction {
    /// Format version, currently 1.
    pub version: u32,
    /// Inputs.
    pub inputs: Vec<TxIn>,
    /// Outputs.
    pub outputs: Vec<TxOut>,
}

serde_as_consensus_bytes!(Transaction, "a transaction's consensus bytes");

/// Why a transaction is invalid on its own, before looking at the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TxError {
    /// No inputs.
    #[error("transaction {0} has no inputs")]
    NoInputs(Txid),
    /// No outputs.
    #[error("transaction {0} has no outputs")]
    NoOutputs(Txid),
    /// An output of zero coins.
    #[error("transaction {txid}: output {index} is zero")]
    ZeroOutput {
        /// The transaction.
        txid: Txid,
        /// The output index.
        index: usize,
    },
    /// Output values above the money supply, or that overflow when added.
    #[error("transaction {0}: output values overflow or exceed the money supply")]
    OutputOverflow(Txid),
    /// Two inputs spend the same outpoint.
    #[error("transaction {txid}: output {outpoint} is spent twice")]
    DuplicateInput {
        /// The transaction.
        txid: Txid,
        /// The repeated outpoint.
        outpoint: OutPoint,
    },
    /// Bigger than [`MAX_TX_SIZE`].
    #[error("transaction {txid} is {size} bytes, the limit is {MAX_TX_SIZE}")]
    Oversized {
        /// The transaction.
        txid: Txid,
        /// Its encoded size.
        size: usize,
    },
    /// A non-coinbase input refers to the null outpoint, or a coinbase is malformed.
    #[error("transaction {0}: malformed coinbase input")]
    BadCoinbase(Txid),
    /// An input's public key or signature has an impossible length.
    #[error("transaction {txid}: input {index} has a malformed public key or signature")]
    MalformedInput {
        /// The transaction.
        txid: Txid,
        /// The input index.
        index: usize,
    },
    /// Unsupported version.
    #[error("transaction {txid}: unsupported version {version}")]
    BadVersion {
        /// The transaction.
        txid: Txid,
        /// The version found.
        version: u32,
    },
}

impl TxError {
    /// The rule's stable name: the variant's name, as `docs/consensus.md`
    /// lists it. A refusal's text on the wire starts with it.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::NoInputs(_) => "NoInputs",
            TxError::NoOutputs(_) => "NoOutputs",
            TxError::ZeroOutput { .. } => "ZeroOutput",
            TxError::OutputOverflow(_) => "OutputOverflow",
            TxError::DuplicateInput { .. } => "DuplicateInput",
            TxError::Oversized { .. } => "Oversized",
            TxError::BadCoinbase(_) => "BadCoinbase",
            TxError::MalformedInput { .. } => "MalformedInput",
            TxError::BadVersion { .. } => "BadVersion",
        }
    }
}

/// Error decoding bytes into a transaction or block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes than the limit for this kind of object.
    #[error("{what} of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not a valid encoding.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// The codec's reason.
        reason: String,
    },
    /// Bytes left over after the object.
    #[error("malformed {0}: trailing bytes")]
    Trailing(&'static str),
    /// A valid but not canonical encoding (for example an overlong varint).
    #[error("malformed {0}: not the canonical encoding")]
    NonCanonical(&'static str),
}

/// The smallest encoded input: outpoint, two empty byte strings.
const MIN_INPUT_SIZE: usize = 32 + 4 + 1 + 1;
/// An encoded output: value and pubkey hash.
const OUTPUT_SIZE: usize = 8 + 20;
/// The smallest encoded transaction: version and two zero counts.
pub(crate) const MIN_TX_SIZE: usize = 4 + 1 + 1;

impl Transaction {
    /// The consensus encoding (`docs/protocol.md`): version (u32), input
    /// count, each input (txid, vout u32, signature and public key as byte
    /// strings), output count, each output (value u64, pubkey hash).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size());
        self.encode_to(&mut out);
        out
    }

    /// Appends the consensus encoding to `out`.
    pub fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        write_compact_size(out, self.inputs.len() as u64); // usize -> u64 is lossless on every supported target
        for i in &self.inputs {
            out.extend_from_slice(&i.prevout.txid.0);
            out.extend_from_slice(&i.prevout.vout.to_le_bytes());
            write_var_bytes(out, &i.signature);
            write_var_bytes(out, &i.pubkey);
        }
        write_compact_size(out, self.outputs.len() as u64); // lossless, as above
        for o in &self.outputs {
            out.extend_from_slice(&o.value.0.to_le_bytes());
            out.extend_from_slice(&o.pubkey_hash.0);
        }
    }

    /// Decodes a transaction, refusing more than [`MAX_TX_SIZE`] bytes,
    /// trailing bytes and non-canonical sizes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        check_limit(bytes, MAX_TX_SIZE, "transaction")?;
        let mut r = Reader::new(bytes, "transaction");
        let tx = Self::read(&mut r)?;
        r.finish()?;
        Ok(tx)
    }

    /// Reads one transaction from `r`.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u32()?;
        let n = r.count(MIN_INPUT_SIZE, "inputs")?;
        let mut inputs = Vec::with_capacity(n);
        for _ in 0..n {
            inputs.push(TxIn {
                prevout: OutPoint {
                    txid: Txid(r.array()?),
                    vout: r.u32()?,
                },
                signature: r.var_bytes("signature bytes")?,
                pubkey: r.var_bytes("public key bytes")?,
            });
        }
        let n = r.count(OUTPUT_SIZE, "outputs")?;
        let mut outputs = Vec::with_capacity(n);
        for _ in 0..n {
            outputs.push(TxOut {
                value: Amount(r.u64()?),
                pubkey_hash: PubkeyHash(r.array()?),
            });
        }
        Ok(Transaction {
            version,
            inputs,
            outputs,
        })
    }

    /// The txid: the double SHA-256 of the consensus encoding.
    pub fn txid(&self) -> Txid {
        Txid(sha256d(&self.encode()))
    }

    /// Encoded size in bytes, counted without encoding.
    pub fn size(&self) -> usize {
        let counts = compact_size_len(self.inputs.len() as u64) // lossless, as above
            + compact_size_len(self.outputs.len() as u64);
        let inputs: usize = self
            .inputs
            .iter()
            .map(|i| 36 + var_bytes_len(i.signature.len()) + var_bytes_len(i.pubkey.len()))
            .sum();
        4 + counts + inputs + OUTPUT_SIZE * self.outputs.len()
    }

    /// True for a coinbase.
    pub fn is_coinbase(&self) -> bool {
        self.inputs.len() == 1 && self.inputs[0].prevout == OutPoint::NULL
    }

    /// A coinbase for `height` paying `value` to `to`, with optional extra data.
    pub fn coinbase(height: u32, to: PubkeyHash, value: Amount, extra: &[u8]) -> Transaction {
        let mut data = height.to_le_bytes().to_vec();
        data.extend_from_slice(extra);
        Transaction {
            version: 1,
            inputs: vec![TxIn {
                prevout: OutPoint::NULL,
                signature: data,
                pubkey: Vec::new(),
            }],
            outputs: vec![TxOut {
                value,
                pubkey_hash: to,
            }],
        }
    }

    /// For a coinbase, the height its data starts with.
    pub fn coinbase_height(&self) -> Option<u32> {
        if !self.is_coinbase() {
            return None;
        }
        let d = &self.inputs[0].signature;
        let b: [u8; 4] = d.get(..4)?.try_into().ok()?;
        Some(u32::from_le_bytes(b))
    }

    /// Sum of the outputs, `None` on overflow.
    pub fn output_value(&self) -> Option<Amount> {
        Amount::checked_sum(self.outputs.iter().map(|o| o.value))
    }

    /// Context-free checks: structure, sizes, amounts, duplicate inputs.
    pub fn check(&self) -> Result<(), TxError> {
        self.check_with_txid(self.txid())
    }

    /// [`Transaction::check`] for a transaction whose txid is known, so it
    /// is not hashed again.
    pub fn check_with_txid(&self, txid: Txid) -> Result<(), TxError> {
        if self.version != 1 {
            return Err(TxError::BadVersion {
                txid,
                version: self.version,
            });
        }
        if self.inputs.is_empty() {
            return Err(TxError::NoInputs(txid));
        }
        if self.outputs.is_empty() {
            return Err(TxError::NoOutputs(txid));
        }
        let size = self.size();
        if size > MAX_TX_SIZE {
            return Err(TxError::Oversized { txid, size });
        }
        for (index, o) in self.outputs.iter().enumerate() {
            if o.value == Amount::ZERO {
                return Err(TxError::ZeroOutput { txid, index });
            }
            if o.value > MAX_MONEY {
                return Err(TxError::OutputOverflow(txid));
            }
        }
        match self.output_value() {
            Some(total) if total <= MAX_MONEY => {}
            _ => return Err(TxError::OutputOverflow(txid)),
        }
        if self.is_coinbase() {
            let len = self.inputs[0].signature.len();
            if !(4..=MAX_COINBASE_DATA).contains(&len) || !self.inputs[0].pubkey.is_empty() {
                return Err(TxError::BadCoinbase(txid));
            }
            return Ok(());
        }
        let mut seen = std::collections::HashSet::with_capacity(self.inputs.len());
        for (index, input) in self.inputs.iter().enumerate() {
            if input.prevout == OutPoint::NULL {
                return Err(TxError::BadCoinbase(txid));
            }
            if input.pubkey.len() != PUBKEY_LEN
                || input.signature.is_empty()
                || input.signature.len() > MAX_SIGNATURE_LEN
            {
                return Err(TxError::MalformedInput { txid, index });
            }
            if !seen.insert(input.prevout) {
                return Err(TxError::DuplicateInput {
                    txid,
                    outpoint: input.prevout,
                });
            }
        }
        Ok(())
    }

    /// The part of the signature hash shared by all inputs, computed once per transaction.
    pub fn sighash_common(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"chain/sighash/v1");
        h.update(self.version.to_le_bytes());
        h.update((self.inputs.len() as u64).to_le_bytes()); // usize -> u64 is lossless on every supported target
        for i in &self.inputs {
            h.update(i.prevout.txid.0);
            h.update(i.prevout.vout.to_le_bytes());
        }
        h.update((self.outputs.len() as u64).to_le_bytes()); // lossless, as above
        for o in &self.outputs {
            h.update(o.value.0.to_le_bytes());
            h.update(o.pubkey_hash.0);
        }
        h.finalize().into()
    }

    /// The message an input's signature signs: it commits to every input's
    /// outpoint, every output, this input's index, and the value and
    /// public-key hash of the output it spends. ECDSA hashes it once more with
    /// SHA-256, so the digest signed is a double SHA-256, as in Bitcoin.
    pub fn sighash(common: &[u8; 32], index: u32, spent: &TxOut) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(common);
        h.update(index.to_le_bytes());
        h.update(spent.value.0.to_le_bytes());
        h.update(spent.pubkey_hash.0);
        h.finalize().into()
    }

    /// Signs every input; `spent[i]` is the output input `i` spends and `keys[i]` its key.
    pub fn sign_all(&mut self, spent: &[TxOut], keys: &[&PrivateKey]) {
        let common = self.sighash_common();
        for (i, (input, (out, key))) in self
            .inputs
            .iter_mut()
            .zip(spent.iter().zip(keys))
            .enumerate()
        {
            // Input counts are bounded by MAX_TX_SIZE, far below u32::MAX.
            let msg = Self::sighash(&common, i as u32, out);
            input.pubkey = key.public_key().to_compressed().to_vec();
            input.signature = key.sign(&msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transaction {
        Transaction {
            version: 1,
            inputs: vec![TxIn {
                prevout: OutPoint {
                    txid: Txid([1; 32]),
                    vout: 0,
                },
                signature: vec![1; 70],
                pubkey: vec![2; 33],
            }],
            outputs: vec![TxOut {
                value: Amount(5),
                pubkey_hash: PubkeyHash([3; 20]),
            }],
        }
    }

    #[test]
    fn encode_decode_round_trip() {
        let tx = sample();
        let back = Transaction::decode(&tx.encode()).unwrap();
        assert_eq!(back, tx);
        assert_eq!(back.txid(), tx.txid());
        let mut extra = tx.encode();
        extra.push(0);
        assert_eq!(
            Transaction::decode(&extra),
            Err(DecodeError::Trailing("transaction"))
        );
    }

    #[test]
    fn encoding_byte_by_byte() {
        let tx = sample();
        let b = tx.encode();
        let mut want = vec![1, 0, 0, 0, 1];
        want.extend_from_slice(&[1; 32]);
        want.extend_from_slice(&[0, 0, 0, 0, 70]);
        want.extend_from_slice(&[1; 70]);
        want.push(33);
        want.extend_from_slice(&[2; 33]);
        want.push(1);
        want.extend_from_slice(&[5, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[3; 20]);
        assert_eq!(b, want);
        assert_eq!(tx.size(), b.len());
        assert_eq!(tx.txid(), Txid(sha256d(&want)));
    }

    /// The example in `docs/protocol.md`.
    #[test]
    fn coinbase_example_bytes() {
        let cb = Transaction::coinbase(1, PubkeyHash([0x11; 20]), Amount(20), b"");
        let want = concat!(
            "01000000",
            "01",
            "0000000000000000000000000000000000000000000000000000000000000000",
            "ffffffff",
            "0401000000",
            "00",
            "01",
            "1400000000000000",
            "1111111111111111111111111111111111111111",
        );
        assert_eq!(hex::encode(cb.encode()), want);
        assert_eq!(cb.size(), 76);
        assert_eq!(
            cb.txid().to_string(),
            "e0dd622a72e19e56967791c1cd7099201e5e0c8c0e57dc7bc2f96356e0290fc1"
        );
    }

    #[test]
    fn overlong_sizes_and_truncation_are_refused() {
        let tx = sample();
        let bytes = tx.encode();
        assert_eq!(bytes[4], 1, "the input count is one byte");
        // 0xfd 0x01 0x00 is an overlong CompactSize for 1.
        let mut overlong = bytes[..4].to_vec();
        overlong.extend_from_slice(&[0xfd, 0x01, 0x00]);
        overlong.extend_from_slice(&bytes[5..]);
        assert_eq!(
            Transaction::decode(&overlong),
            Err(DecodeError::NonCanonical("transaction"))
        );
        for cut in 0..bytes.len() {
            assert!(Transaction::decode(&bytes[..cut]).is_err(), "{cut}");
        }
    }

    #[test]
    fn coinbase_height_changes_txid() {
        let a = Transaction::coinbase(1, PubkeyHash([0; 20]), Amount(20), b"");
        let b = Transaction::coinbase(2, PubkeyHash([0; 20]), Amount(20), b"");
        assert_ne!(a.txid(), b.txid());
        assert_eq!(a.coinbase_height(), Some(1));
        assert!(a.check().is_ok());
    }

    #[test]
    fn context_free_refusals() {
        let mut t = sample();
        t.inputs.push(t.inputs[0].clone());
        assert!(matches!(t.check(), Err(TxError::DuplicateInput { .. })));
        let mut t = sample();
        t.outputs[0].value = Amount(0);
        assert!(matches!(t.check(), Err(TxError::ZeroOutput { .. })));
        let mut t = sample();
        t.outputs.push(TxOut {
            value: Amount(u64::MAX),
            pubkey_hash: PubkeyHash([0; 20]),
        });
        assert!(matches!(t.check(), Err(TxError::OutputOverflow(_))));
        let mut t = sample();
        t.inputs.clear();
        assert!(matches!(t.check(), Err(TxError::NoInputs(_))));
        let mut t = sample();
        t.outputs.clear();
        assert!(matches!(t.check(), Err(TxError::NoOutputs(_))));
    }

    #[test]
    fn sighash_commits_to_index_and_spent_output() {
        let t = sample();
        let c = t.sighash_common();
        let out = TxOut {
            value: Amount(9),
            pubkey_hash: PubkeyHash([4; 20]),
        };
        let base = Transaction::sighash(&c, 0, &out);
        assert_ne!(base, Transaction::sighash(&c, 1, &out));
        assert_ne!(
            base,
            Transaction::sighash(
                &c,
                0,
                &TxOut {
                    value: Amount(8),
                    ..out
                }
            )
        );
        assert_ne!(
            base,
            Transaction::sighash(
                &c,
                0,
                &TxOut {
                    pubkey_hash: PubkeyHash([5; 20]),
                    ..out
                }
            )
        );
        let mut t2 = t.clone();
        t2.outputs[0].value = Amount(6);
        assert_ne!(c, t2.sighash_common());
    }
}
