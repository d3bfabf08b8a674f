//! Reads shared by the store and by [`StoreReader`], the store's read-only
//! view for other threads.

use crate::schema::*;
use crate::StoreError;
use chain_core::block::Block;
use chain_core::validation::{CheckedBlock, Coin};
use chain_core::{BlockHash, OutPoint, PubkeyHash, Transaction, Txid};
use rocksdb::{IteratorMode, DB};
use std::sync::Arc;

/// A point read of one key.
pub(crate) trait Get {
    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
}

impl Get for crate::ChainStore {
    fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        crate::ChainStore::get(self, cf, key)
    }
}

fn cf<'a>(db: &'a DB, name: &str) -> &'a rocksdb::ColumnFamily {
    db.cf_handle(name)
        .expect("every column family is opened with the store")
}

pub(crate) fn block(r: &impl Get, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
    match r.get(BLOCK_BY_HASH, &hash.0)? {
        None => Ok(None),
        Some(b) => Block::decode(&b)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("block {hash}: {e}"))),
    }
}

pub(crate) fn checked_block(
    r: &impl Get,
    hash: &BlockHash,
) -> Result<Option<CheckedBlock>, StoreError> {
    match r.get(BLOCK_BY_HASH, &hash.0)? {
        None => Ok(None),
        Some(b) => CheckedBlock::from_stored_bytes(&b)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("block {hash}: {e}"))),
    }
}

pub(crate) fn header_entry(
    r: &impl Get,
    hash: &BlockHash,
) -> Result<Option<HeaderEntry>, StoreError> {
    match r.get(HEADER_BY_HASH, &hash.0)? {
        None => Ok(None),
        Some(b) => HeaderEntry::decode(&b)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("header entry {hash}"))),
    }
}

pub(crate) fn coin(r: &impl Get, op: &OutPoint) -> Result<Option<Coin>, StoreError> {
    match r.get(UTXO_BY_OUTPOINT, &op.to_key())? {
        None => Ok(None),
        Some(b) => decode_coin(&b)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("coin {op}"))),
    }
}

pub(crate) fn hash_at(r: &impl Get, height: u32) -> Result<Option<BlockHash>, StoreError> {
    match r.get(HASH_BY_HEIGHT, &height_key(height))? {
        None => Ok(None),
        Some(b) => Ok(Some(BlockHash(b.as_slice().try_into().map_err(|_| {
            StoreError::Corrupt(format!("hash at height {height}"))
        })?))),
    }
}

/// A best-chain transaction: its block's hash, height, its position and it.
pub(crate) fn find_transaction(
    r: &impl Get,
    txid: &Txid,
) -> Result<Option<(BlockHash, u32, u32, Transaction)>, StoreError> {
    let Some(v) = r.get(TX_LOC_BY_TXID, &txid.0)? else {
        return Ok(None);
    };
    let (hash, index) =
        decode_tx_loc(&v).ok_or_else(|| StoreError::Corrupt("tx index value".into()))?;
    let block = block(r, &hash)?
        .ok_or_else(|| StoreError::Corrupt(format!("tx index names missing block {hash}")))?;
    let tx = usize::try_from(index)
        .ok()
        .and_then(|i| block.transactions.get(i))
        .cloned();
    let tx = tx.ok_or_else(|| StoreError::Corrupt("tx index position".into()))?;
    Ok(Some((hash, block.header.height, index, tx)))
}

/// The best chain's tip as written: its hash and height.
pub(crate) fn tip(r: &impl Get) -> Result<(BlockHash, u32), StoreError> {
    let b = r
        .get(META, META_TIP)?
        .ok_or_else(|| StoreError::Corrupt("no tip".into()))?;
    let hash = BlockHash(
        b.as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt("tip".into()))?,
    );
    let e = header_entry(r, &hash)?.ok_or_else(|| StoreError::Corrupt("tip header".into()))?;
    Ok((hash, e.header.height))
}

/// Best-chain hashes after the first locator entry found on the best chain
/// (whose tip is at `tip_height`), at most `max`, stopping after `stop`.
/// Costs one read per locator entry tried and one per hash returned.
pub(crate) fn hashes_after(
    r: &impl Get,
    tip_height: u32,
    locator: &[BlockHash],
    stop: Option<BlockHash>,
    max: usize,
) -> Result<Vec<BlockHash>, StoreError> {
    let mut start = 0u32;
    for h in locator {
        if let Some(e) = header_entry(r, h)? {
            if hash_at(r, e.header.height)? == Some(*h) {
                start = e.header.height;
                break;
            }
        }
    }
    let mut out = Vec::new();
    let mut height = start.saturating_add(1);
    while out.len() < max && height <= tip_height {
        let Some(hash) = hash_at(r, height)? else {
            break;
        };
        out.push(hash);
        if Some(hash) == stop {
            break;
        }
        height += 1;
    }
    Ok(out)
}

/// [`hashes_after`]'s headers.
pub(crate) fn headers_after(
    r: &impl Get,
    tip_height: u32,
    locator: &[BlockHash],
    stop: Option<BlockHash>,
    max: usize,
) -> Result<Vec<chain_core::BlockHeader>, StoreError> {
    hashes_after(r, tip_height, locator, stop, max)?
        .into_iter()
        .map(|hash| {
            header_entry(r, &hash)?
                .map(|e| e.header)
                .ok_or_else(|| StoreError::Corrupt(format!("best-chain header {hash} missing")))
        })
        .collect()
}

/// The unspent outputs paying `pkh`, from the address index, leaving out
/// those `skip` names, stopping at `limit`: the read costs what it returns
/// (and what it skips), never the whole address.
pub(crate) fn utxos_for_at_most(
    db: &DB,
    pkh: &PubkeyHash,
    limit: usize,
    skip: impl Fn(&OutPoint) -> bool,
) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let iter = db.iterator_cf(
        cf(db, UTXO_BY_PUBKEY_HASH),
        IteratorMode::From(&pkh.0, rocksdb::Direction::Forward),
    );
    for item in iter {
        let (k, v) = item?;
        if !k.starts_with(&pkh.0) {
            break;
        }
        let op = OutPoint::from_key(&k[20..])
            .ok_or_else(|| StoreError::Corrupt("address index key".into()))?;
        if skip(&op) {
            continue;
        }
        let coin =
            decode_coin(&v).ok_or_else(|| StoreError::Corrupt("address index value".into()))?;
        out.push((op, coin));
        if out.len() >= limit {
            break;
        }
    }
    Ok(out)
}

pub(crate) fn utxos_for(db: &DB, pkh: &PubkeyHash) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
    utxos_for_at_most(db, pkh, usize::MAX, |_| false)
}

pub(crate) fn history(
    db: &DB,
    pkh: &PubkeyHash,
    before: Option<(u32, u32)>,
    limit: usize,
) -> Result<Vec<(u32, u32, Txid)>, StoreError> {
    let start = match before {
        // Reverse iteration starts at the last key at or before this.
        Some((h, p)) => match p.checked_sub(1) {
            Some(p) => history_key(pkh, h, p),
            None if h == 0 => return Ok(Vec::new()),
            None => history_key(pkh, h - 1, u32::MAX),
        },
        None => history_key(pkh, u32::MAX, u32::MAX),
    };
    let iter = db.iterator_cf(
        cf(db, TXID_BY_PUBKEY_HASH),
        IteratorMode::From(&start, rocksdb::Direction::Reverse),
    );
    let mut out = Vec::new();
    for item in iter {
        if out.len() >= limit {
            break;
        }
        let (k, v) = item?;
        if !k.starts_with(&pkh.0) {
            break;
        }
        let (_, height, pos) = decode_history_key(&k)
            .ok_or_else(|| StoreError::Corrupt("address history key".into()))?;
        let txid = Txid(
            v.as_ref()
                .try_into()
                .map_err(|_| StoreError::Corrupt("address history value".into()))?,
        );
        out.push((height, pos, txid));
    }
    Ok(out)
}

pub(crate) fn history_len(db: &DB, pkh: &PubkeyHash) -> Result<usize, StoreError> {
    let mut n = 0;
    let iter = db.iterator_cf(
        cf(db, TXID_BY_PUBKEY_HASH),
        IteratorMode::From(&pkh.0, rocksdb::Direction::Forward),
    );
    for item in iter {
        let (k, _) = item?;
        if !k.starts_with(&pkh.0) {
            break;
        }
        n += 1;
    }
    Ok(n)
}

/// A read-only view of a chain store for other threads, while the store's
/// owner goes on writing: an HTTP API reads blocks, transactions and
/// addresses through it without queueing behind the chain's work (Zebra
/// serves its RPCs the same way, from a read-only state service beside the
/// block writer). It sees what has landed: a block still being written
/// behind shows once its write lands, and a read spanning several keys
/// while a block is connected may see the chain just before or just after
/// it.
///
/// It does not keep the store open: once the store is closed, every read
/// is [`StoreError::Closed`], and the database's lock is free to reopen.
#[derive(Clone)]
pub struct StoreReader {
    db: std::sync::Weak<DB>,
}

impl std::fmt::Debug for StoreReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreReader")
            .field("open", &(self.db.strong_count() > 0))
            .finish()
    }
}

impl Get for StoreReader {
    fn get(&self, name: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let db = self.db()?;
        Ok(db.get_cf(cf(&db, name), key)?)
    }
}

impl StoreReader {
    pub(crate) fn new(db: &Arc<DB>) -> Self {
        StoreReader {
            db: Arc::downgrade(db),
        }
    }

    fn db(&self) -> Result<Arc<DB>, StoreError> {
        self.db.upgrade().ok_or(StoreError::Closed)
    }

    /// The best chain's tip as last written: its hash and height.
    pub fn tip(&self) -> Result<(BlockHash, u32), StoreError> {
        tip(self)
    }

    /// Best-chain hashes after the first locator entry found on the best
    /// chain, at most `max`, stopping after `stop`.
    pub fn hashes_after(
        &self,
        locator: &[BlockHash],
        stop: Option<BlockHash>,
        max: usize,
    ) -> Result<Vec<BlockHash>, StoreError> {
        let (_, height) = self.tip()?;
        hashes_after(self, height, locator, stop, max)
    }

    /// Best-chain headers after the first locator entry found on the best
    /// chain, at most `max`, stopping after `stop`.
    pub fn headers_after(
        &self,
        locator: &[BlockHash],
        stop: Option<BlockHash>,
        max: usize,
    ) -> Result<Vec<chain_core::BlockHeader>, StoreError> {
        let (_, height) = self.tip()?;
        headers_after(self, height, locator, stop, max)
    }

    /// The stored bytes of a block this node validated in full (connected
    /// at some point); `None` for any other block, whose bytes are not read.
    pub fn valid_block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        match header_entry(self, hash)? {
            Some(e) if e.status == Status::Valid => self.block_bytes(hash),
            _ => Ok(None),
        }
    }

    /// Up to `limit` unspent outputs paying `pkh`, leaving out those `skip`
    /// names; the read stops at the limit.
    pub fn utxos_for_at_most(
        &self,
        pkh: &PubkeyHash,
        limit: usize,
        skip: impl Fn(&OutPoint) -> bool,
    ) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        utxos_for_at_most(&*self.db()?, pkh, limit, skip)
    }

    /// A stored block with its hash, txids and encoding.
    pub fn checked_block(&self, hash: &BlockHash) -> Result<Option<CheckedBlock>, StoreError> {
        checked_block(self, hash)
    }

    /// A stored block's encoding.
    pub fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(BLOCK_BY_HASH, &hash.0)
    }

    /// A header-index entry (header, chain work, status).
    pub fn header_entry(&self, hash: &BlockHash) -> Result<Option<HeaderEntry>, StoreError> {
        header_entry(self, hash)
    }

    /// The best-chain block hash at `height`.
    pub fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        hash_at(self, height)
    }

    /// A best-chain transaction: its block's hash and height, its position
    /// in the block, and it.
    pub fn find_transaction(
        &self,
        txid: &Txid,
    ) -> Result<Option<(BlockHash, u32, u32, Transaction)>, StoreError> {
        find_transaction(self, txid)
    }

    /// The coins a best-chain block's inputs spent, in input order (its
    /// undo data; `None` for a block not connected).
    pub fn spent_coins(
        &self,
        hash: &BlockHash,
    ) -> Result<Option<Vec<(OutPoint, Coin)>>, StoreError> {
        match self.get(UNDO_BY_HASH, &hash.0)? {
            None => Ok(None),
            Some(u) => decode_undo(&u)
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt(format!("undo data of {hash}"))),
        }
    }

    /// An unspent output.
    pub fn coin(&self, op: &OutPoint) -> Result<Option<Coin>, StoreError> {
        coin(self, op)
    }

    /// The unspent outputs paying `pkh`.
    pub fn utxos_for(&self, pkh: &PubkeyHash) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        let db = self.db()?;
        utxos_for(&db, pkh)
    }

    /// See [`crate::ChainStore::history`].
    pub fn history(
        &self,
        pkh: &PubkeyHash,
        before: Option<(u32, u32)>,
        limit: usize,
    ) -> Result<Vec<(u32, u32, Txid)>, StoreError> {
        let db = self.db()?;
        history(&db, pkh, before, limit)
    }

    /// See [`crate::ChainStore::history_len`].
    pub fn history_len(&self, pkh: &PubkeyHash) -> Result<usize, StoreError> {
        let db = self.db()?;
        history_len(&db, pkh)
    }
}
