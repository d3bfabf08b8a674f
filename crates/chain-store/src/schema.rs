//! Column families and the byte layout of their keys and values.
//! `docs/storage.md` describes each one.

use chain_core::block::{BlockHeader, HEADER_SIZE};
use chain_core::pow::Work;
use chain_core::validation::Coin;
use chain_core::{BlockHash, OutPoint, PubkeyHash};

/// Whole blocks, by hash.
pub const BLOCK_BY_HASH: &str = "block_by_hash";
/// Header index: header, cumulative work and status, by hash.
pub const HEADER_BY_HASH: &str = "header_by_hash";
/// The best chain: block hash by big-endian height.
pub const HASH_BY_HEIGHT: &str = "hash_by_height";
/// The UTXO set.
pub const UTXO_BY_OUTPOINT: &str = "utxo_by_outpoint";
/// Address index: pubkey hash ++ outpoint, valued with the coin.
pub const UTXO_BY_PUBKEY_HASH: &str = "utxo_by_pubkey_hash";
/// Transaction index for the best chain: txid to block and position.
pub const TX_LOC_BY_TXID: &str = "tx_loc_by_txid";
/// Address history for the best chain: pubkey hash ++ height ++ position,
/// valued with the txid, for every transaction that paid or spent from it.
pub const TXID_BY_PUBKEY_HASH: &str = "txid_by_pubkey_hash";
/// Undo data: the coins each connected block spent.
pub const UNDO_BY_HASH: &str = "undo_by_hash";
/// Metadata: format version, genesis, tip.
pub const META: &str = "meta";

/// Every column family, in creation order.
pub const ALL_CFS: [&str; 9] = [
    BLOCK_BY_HASH,
    HEADER_BY_HASH,
    HASH_BY_HEIGHT,
    UTXO_BY_OUTPOINT,
    UTXO_BY_PUBKEY_HASH,
    TX_LOC_BY_TXID,
    UNDO_BY_HASH,
    META,
    TXID_BY_PUBKEY_HASH,
];

/// The storage format this code reads and writes.
pub const FORMAT_VERSION: u32 = 3;
/// The older format this code upgrades in place when it opens a store for
/// writing: format 3 only adds [`TXID_BY_PUBKEY_HASH`].
pub const UPGRADABLE_FORMAT: u32 = 2;

/// Meta key of the format version (u32 big-endian).
pub const META_FORMAT: &[u8] = b"format_version";
/// Meta key of the genesis hash.
pub const META_GENESIS: &[u8] = b"genesis";
/// Meta key of the tip hash.
pub const META_TIP: &[u8] = b"tip";

/// Validation status of a stored header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Stored; header checked, body not yet connected.
    Stored = 0,
    /// Connected at least once: fully valid.
    Valid = 1,
    /// Failed validation, or descends from a block that did.
    Invalid = 2,
}

/// One entry of the header index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderEntry {
    /// The header.
    pub header: BlockHeader,
    /// Work of the chain ending at this block.
    pub chain_work: Work,
    /// Validation status.
    pub status: Status,
}

/// Size of an encoded [`HeaderEntry`].
pub const HEADER_ENTRY_SIZE: usize = HEADER_SIZE + 32 + 1;

impl HeaderEntry {
    /// Fixed layout: 92-byte header, 32-byte big-endian work, status byte.
    pub fn encode(&self) -> [u8; HEADER_ENTRY_SIZE] {
        let mut b = [0u8; HEADER_ENTRY_SIZE];
        b[..HEADER_SIZE].copy_from_slice(&self.header.to_bytes());
        b[HEADER_SIZE..HEADER_SIZE + 32].copy_from_slice(&self.chain_work.to_be_bytes());
        b[HEADER_SIZE + 32] = self.status as u8;
        b
    }

    /// The inverse of [`HeaderEntry::encode`].
    pub fn decode(b: &[u8]) -> Option<HeaderEntry> {
        if b.len() != HEADER_ENTRY_SIZE {
            return None;
        }
        let header = BlockHeader::from_bytes(b[..HEADER_SIZE].try_into().ok()?);
        let chain_work = Work::from_be_bytes(b[HEADER_SIZE..HEADER_SIZE + 32].try_into().ok()?);
        let status = match b[HEADER_SIZE + 32] {
            0 => Status::Stored,
            1 => Status::Valid,
            2 => Status::Invalid,
            _ => return None,
        };
        Some(HeaderEntry {
            header,
            chain_work,
            status,
        })
    }
}

/// Key of [`HASH_BY_HEIGHT`].
pub fn height_key(h: u32) -> [u8; 4] {
    h.to_be_bytes()
}

/// Key of [`UTXO_BY_PUBKEY_HASH`].
pub fn addr_key(pkh: &PubkeyHash, op: &OutPoint) -> [u8; 56] {
    let mut k = [0u8; 56];
    k[..20].copy_from_slice(&pkh.0);
    k[20..].copy_from_slice(&op.to_key());
    k
}

/// Key of [`TXID_BY_PUBKEY_HASH`]: pubkey hash, then the block's height and
/// the transaction's position in it (both u32 BE), so an address's history
/// is one prefix scan in chain order.
pub fn history_key(pkh: &PubkeyHash, height: u32, position: u32) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..20].copy_from_slice(&pkh.0);
    k[20..24].copy_from_slice(&height.to_be_bytes());
    k[24..].copy_from_slice(&position.to_be_bytes());
    k
}

/// The inverse of [`history_key`]: pubkey hash, height, position.
pub fn decode_history_key(k: &[u8]) -> Option<(PubkeyHash, u32, u32)> {
    if k.len() != 28 {
        return None;
    }
    Some((
        PubkeyHash(k[..20].try_into().ok()?),
        u32::from_be_bytes(k[20..24].try_into().ok()?),
        u32::from_be_bytes(k[24..].try_into().ok()?),
    ))
}

/// A history key for a message: "height H, position P".
pub fn describe_history_key(k: &[u8]) -> String {
    match decode_history_key(k) {
        Some((_, h, p)) => format!("at height {h}, position {p}"),
        None => format!("of {} bytes", k.len()),
    }
}

/// The address-history entries of a connected block: for each transaction,
/// one per address it pays or spends from (`spent` is the block's undo
/// data, the coins its inputs spent from before the block; a coin created
/// and spent within the block is found among the block's own outputs).
/// Sorted, without duplicates.
pub fn history_entries(
    block: &chain_core::block::Block,
    txids: &[chain_core::Txid],
    spent: &[(OutPoint, Coin)],
) -> Vec<([u8; 28], chain_core::Txid)> {
    let mut owners: std::collections::HashMap<OutPoint, PubkeyHash> = spent
        .iter()
        .map(|(op, c)| (*op, c.output.pubkey_hash))
        .collect();
    for (tx, txid) in block.transactions.iter().zip(txids) {
        for (i, o) in tx.outputs.iter().enumerate() {
            // Output counts are bounded by the block size limit.
            let op = OutPoint {
                txid: *txid,
                vout: i as u32,
            };
            owners.entry(op).or_insert(o.pubkey_hash);
        }
    }
    let height = block.header.height;
    let mut out = Vec::new();
    for (i, (tx, txid)) in block.transactions.iter().zip(txids).enumerate() {
        // Positions are bounded by the block size limit.
        let pos = i as u32;
        for o in &tx.outputs {
            out.push((history_key(&o.pubkey_hash, height, pos), *txid));
        }
        for input in &tx.inputs {
            if let Some(pkh) = owners.get(&input.prevout) {
                out.push((history_key(pkh, height, pos), *txid));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Value of [`UTXO_BY_OUTPOINT`] and [`UTXO_BY_PUBKEY_HASH`]: height (u32 BE),
/// coinbase flag, value (u64 BE), pubkey hash. Fixed 33 bytes.
pub fn encode_coin(c: &Coin) -> [u8; 33] {
    let mut b = [0u8; 33];
    b[..4].copy_from_slice(&c.height.to_be_bytes());
    b[4] = u8::from(c.is_coinbase);
    b[5..13].copy_from_slice(&c.output.value.0.to_be_bytes());
    b[13..].copy_from_slice(&c.output.pubkey_hash.0);
    b
}

/// The inverse of [`encode_coin`].
pub fn decode_coin(b: &[u8]) -> Option<Coin> {
    if b.len() != 33 || b[4] > 1 {
        return None;
    }
    Some(Coin {
        height: u32::from_be_bytes(b[..4].try_into().ok()?),
        is_coinbase: b[4] == 1,
        output: chain_core::TxOut {
            value: chain_core::Amount(u64::from_be_bytes(b[5..13].try_into().ok()?)),
            pubkey_hash: PubkeyHash(b[13..].try_into().ok()?),
        },
    })
}

/// Value of [`TX_LOC_BY_TXID`]: block hash then position (u32 BE).
pub fn encode_tx_loc(block: &BlockHash, index: u32) -> [u8; 36] {
    let mut b = [0u8; 36];
    b[..32].copy_from_slice(&block.0);
    b[32..].copy_from_slice(&index.to_be_bytes());
    b
}

/// The inverse of [`encode_tx_loc`].
pub fn decode_tx_loc(b: &[u8]) -> Option<(BlockHash, u32)> {
    if b.len() != 36 {
        return None;
    }
    Some((
        BlockHash(b[..32].try_into().ok()?),
        u32::from_be_bytes(b[32..].try_into().ok()?),
    ))
}

/// Value of [`UNDO_BY_HASH`]: count (u32 BE) then 36-byte outpoint key and 33-byte coin per spent coin.
pub fn encode_undo(spent: &[(OutPoint, Coin)]) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + spent.len() * 69);
    // A block's inputs are bounded by its size limit, far below u32::MAX.
    b.extend_from_slice(&(spent.len() as u32).to_be_bytes());
    for (op, c) in spent {
        b.extend_from_slice(&op.to_key());
        b.extend_from_slice(&encode_coin(c));
    }
    b
}

/// The inverse of [`encode_undo`].
pub fn decode_undo(b: &[u8]) -> Option<Vec<(OutPoint, Coin)>> {
    let n = usize::try_from(u32::from_be_bytes(b.get(..4)?.try_into().ok()?)).ok()?;
    let body = &b[4..];
    if body.len() != n.checked_mul(69)? {
        return None;
    }
    body.chunks_exact(69)
        .map(|c| Some((OutPoint::from_key(&c[..36])?, decode_coin(&c[36..])?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_round_trip() {
        let c = Coin {
            output: chain_core::TxOut {
                value: chain_core::Amount(77),
                pubkey_hash: PubkeyHash([9; 20]),
            },
            height: 5,
            is_coinbase: true,
        };
        assert_eq!(decode_coin(&encode_coin(&c)), Some(c));
        let op = OutPoint {
            txid: chain_core::Txid([3; 32]),
            vout: 2,
        };
        assert_eq!(decode_undo(&encode_undo(&[(op, c)])), Some(vec![(op, c)]));
        assert_eq!(decode_undo(&[0, 0, 0, 2]), None);
        let e = HeaderEntry {
            header: BlockHeader::from_bytes(&[1; 92]),
            chain_work: Work::default(),
            status: Status::Valid,
        };
        assert_eq!(HeaderEntry::decode(&e.encode()), Some(e));
    }
}
