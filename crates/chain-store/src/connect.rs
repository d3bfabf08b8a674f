//! Connecting a block to the tip and disconnecting the tip: one batch
//! each, the connect's staged while the block's signatures are checked.

use crate::behind::Staged;
use crate::schema::*;
use crate::{ChainStore, ChainUpdate, StoreError, Tip, WAL_SYNC_INTERVAL};
use chain_core::block::Block;
use chain_core::validation::{
    self, connect_block_and, BlockError, CheckedBlock, Coin, SignatureCache,
};
use chain_core::{OutPoint, Txid};
use rocksdb::{WriteBatch, DB};
use std::collections::HashMap;

impl ChainStore {
    /// Stores and connects a block whose parent is the tip, in one batch.
    /// A block that fails is remembered by its header, marked invalid (its
    /// body is not kept), so its descendants are refused without being
    /// checked again.
    pub(crate) fn extend_tip(
        &mut self,
        block: CheckedBlock,
        entry: HeaderEntry,
        cache: &dyn SignatureCache,
    ) -> Result<ChainUpdate, StoreError> {
        let hash = block.hash();
        let view = self.prefetch_inputs(&block)?;
        let db = std::sync::Arc::clone(&self.db);
        match self.connect_and_stage(&db, true, &block, entry, &view, cache) {
            Ok(staged) => {
                self.commit_connect(staged?, &block, entry)?;
                Ok(ChainUpdate {
                    disconnected: Vec::new(),
                    connected: vec![block],
                })
            }
            Err(error) => {
                let invalid = HeaderEntry {
                    status: Status::Invalid,
                    ..entry
                };
                // Remembered by its header alone: its body is worth nothing.
                let mut batch = WriteBatch::default();
                batch.put_cf(self.cf(HEADER_BY_HASH), hash.0, invalid.encode());
                self.write(batch)?;
                Err(StoreError::InvalidBlock { hash, error })
            }
        }
    }

    /// Connects a stored `block`, whose header entry is `entry`, on top of
    /// the tip in one batch.
    pub(crate) fn connect(
        &mut self,
        block: &CheckedBlock,
        entry: HeaderEntry,
        cache: &dyn SignatureCache,
    ) -> Result<(), StoreError> {
        let view = self.prefetch_inputs(block)?;
        let db = std::sync::Arc::clone(&self.db);
        let staged = self
            .connect_and_stage(&db, false, block, entry, &view, cache)
            .map_err(|error| StoreError::InvalidBlock {
                hash: block.hash(),
                error,
            })?;
        self.commit_connect(staged?, block, entry)
    }

    /// Checks `block` against `view` and, while its signatures are checked
    /// on the other cores, stages what connecting it writes (and the block
    /// itself when `store_block`) and waits for the previous block's write:
    /// the bookkeeping of one block overlaps its signatures instead of
    /// following them. The staged write is returned once they all verify.
    fn connect_and_stage<'d>(
        &self,
        db: &'d DB,
        store_block: bool,
        block: &CheckedBlock,
        entry: HeaderEntry,
        view: &HashMap<OutPoint, Coin>,
        cache: &dyn SignatureCache,
    ) -> Result<Result<Staged<'d>, StoreError>, BlockError> {
        connect_block_and(block, &self.params, view, cache, |changes| {
            let mut staged = Staged::new(db);
            if store_block {
                staged.put(BLOCK_BY_HASH, &block.hash().0, block.bytes());
            }
            stage_connect(&mut staged, block, changes);
            let valid = HeaderEntry {
                status: Status::Valid,
                ..entry
            };
            staged.put(HEADER_BY_HASH, &block.hash().0, &valid.encode());
            self.writer.settle().map(|()| staged)
        })
        .map(|(_, staged)| staged)
    }

    /// Hands the write [`ChainStore::connect_and_stage`] staged for `block`
    /// to the writer ([`behind`]) and moves the tip to it.
    fn commit_connect(
        &mut self,
        staged: Staged<'_>,
        block: &CheckedBlock,
        entry: HeaderEntry,
    ) -> Result<(), StoreError> {
        let hash = block.hash();
        let sync = self.synced_at.elapsed() >= WAL_SYNC_INTERVAL;
        self.writer.write_behind(&self.db, staged, sync)?;
        if sync {
            self.synced_at = std::time::Instant::now();
        }
        self.tip = Tip {
            hash,
            height: block.header.height,
            work: entry.chain_work,
            header: block.header,
        };
        Ok(())
    }

    /// Reads every coin the block's inputs name, in one multi-get.
    fn prefetch_inputs(&self, block: &Block) -> Result<HashMap<OutPoint, Coin>, StoreError> {
        let ops: Vec<OutPoint> = block
            .transactions
            .iter()
            .skip(1)
            .flat_map(|t| t.inputs.iter().map(|i| i.prevout))
            .collect();
        let keys: Vec<[u8; 36]> = ops.iter().map(OutPoint::to_key).collect();
        let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
        let mut view = HashMap::with_capacity(ops.len());
        for (op, r) in ops
            .iter()
            .zip(self.writer.get_many(&self.db, UTXO_BY_OUTPOINT, &refs)?)
        {
            if let Some(b) = r {
                view.insert(
                    *op,
                    decode_coin(&b).ok_or_else(|| StoreError::Corrupt(format!("coin {op}")))?,
                );
            }
        }
        Ok(view)
    }

    /// Disconnects the tip in one batch and returns its block.
    pub(crate) fn disconnect_tip(&mut self) -> Result<CheckedBlock, StoreError> {
        let hash = self.tip.hash;
        if hash == self.genesis {
            return Err(StoreError::Corrupt(
                "asked to disconnect the genesis block".into(),
            ));
        }
        let block = self.stored_block(&hash)?;
        let undo = self
            .get(UNDO_BY_HASH, &hash.0)?
            .ok_or_else(|| StoreError::Corrupt(format!("undo data of {hash} missing")))?;
        let undo = decode_undo(&undo)
            .ok_or_else(|| StoreError::Corrupt(format!("undo data of {hash}")))?;
        let mut batch = WriteBatch::default();
        for (tx, &txid) in block.transactions.iter().zip(block.txids()) {
            for (i, o) in tx.outputs.iter().enumerate() {
                // Output counts are bounded by the block size limit.
                let op = OutPoint {
                    txid,
                    vout: i as u32,
                };
                batch.delete_cf(self.cf(UTXO_BY_OUTPOINT), op.to_key());
                batch.delete_cf(self.cf(UTXO_BY_PUBKEY_HASH), addr_key(&o.pubkey_hash, &op));
            }
            batch.delete_cf(self.cf(TX_LOC_BY_TXID), txid.0);
        }
        for (k, _) in history_entries(&block, block.txids(), &undo) {
            batch.delete_cf(self.cf(TXID_BY_PUBKEY_HASH), k);
        }
        for (op, coin) in &undo {
            batch.put_cf(self.cf(UTXO_BY_OUTPOINT), op.to_key(), encode_coin(coin));
            batch.put_cf(
                self.cf(UTXO_BY_PUBKEY_HASH),
                addr_key(&coin.output.pubkey_hash, op),
                encode_coin(coin),
            );
        }
        batch.delete_cf(self.cf(UNDO_BY_HASH), hash.0);
        batch.delete_cf(self.cf(HASH_BY_HEIGHT), height_key(block.header.height));
        let prev = block.header.prev;
        batch.put_cf(self.cf(META), META_TIP, prev.0);
        let pe = self
            .header_entry(&prev)?
            .ok_or_else(|| StoreError::Corrupt("parent of tip missing".into()))?;
        self.write(batch)?;
        self.tip = Tip {
            hash: prev,
            height: pe.header.height,
            work: pe.chain_work,
            header: pe.header,
        };
        Ok(block)
    }
}

/// Stages everything connecting `block` changes: UTXOs, address index, tx
/// index, undo data, the best-chain height entry and the tip.
pub(crate) fn stage_connect(
    staged: &mut Staged<'_>,
    block: &CheckedBlock,
    changes: &validation::BlockChanges,
) {
    let hash = block.hash();
    // Each column family's entries go in key order: RocksDB's memtable
    // inserts then reuse the position of the previous key instead of
    // searching the whole skip list for each one. The sorts are stable, so a
    // key deleted and written in one block keeps that order.
    let mut utxo: Vec<([u8; 36], Option<[u8; 33]>)> = changes
        .spent
        .iter()
        .map(|(op, _)| (op.to_key(), None))
        .chain(
            changes
                .created
                .iter()
                .map(|(op, c)| (op.to_key(), Some(encode_coin(c)))),
        )
        .collect();
    utxo.sort_by_key(|e| e.0);
    let mut addr: Vec<([u8; 56], Option<[u8; 33]>)> = changes
        .spent
        .iter()
        .map(|(op, c)| (addr_key(&c.output.pubkey_hash, op), None))
        .chain(
            changes
                .created
                .iter()
                .map(|(op, c)| (addr_key(&c.output.pubkey_hash, op), Some(encode_coin(c)))),
        )
        .collect();
    addr.sort_by_key(|e| e.0);
    for (family, entries) in [
        (
            UTXO_BY_OUTPOINT,
            utxo.iter().map(|(k, v)| (&k[..], v)).collect::<Vec<_>>(),
        ),
        (
            UTXO_BY_PUBKEY_HASH,
            addr.iter().map(|(k, v)| (&k[..], v)).collect(),
        ),
    ] {
        for (k, v) in entries {
            match v {
                Some(v) => staged.put(family, k, v),
                None => staged.delete(family, k),
            }
        }
    }
    let mut locs: Vec<(Txid, u32)> = block
        .txids()
        .iter()
        .enumerate()
        // Positions are bounded by the block size limit.
        .map(|(i, t)| (*t, i as u32))
        .collect();
    locs.sort_unstable();
    for (txid, i) in locs {
        staged.put(TX_LOC_BY_TXID, &txid.0, &encode_tx_loc(&hash, i));
    }
    for (k, txid) in history_entries(block, block.txids(), &changes.spent) {
        staged.put(TXID_BY_PUBKEY_HASH, &k, &txid.0);
    }
    staged.put(UNDO_BY_HASH, &hash.0, &encode_undo(&changes.spent));
    staged.put(HASH_BY_HEIGHT, &height_key(block.header.height), &hash.0);
    staged.put(META, META_TIP, &hash.0);
}
