//! Reading the whole store back: the UTXO set and its digest, a replay of
//! the best chain from its blocks, the consistency check and the rebuild
//! of every index from the blocks (`check_db`, `reindex`).

use crate::schema::*;
use crate::{ChainStore, CheckReport, StoreError};
use chain_core::validation::{connect_block, Coin};
use chain_core::{BlockHash, OutPoint, Txid};
use rocksdb::{IteratorMode, WriteBatch, DB};
use std::collections::HashMap;

/// What replaying the best chain gives: the UTXO set, every (txid, block,
/// position), and each block's undo data.
type Replay = (
    HashMap<OutPoint, Coin>,
    Vec<(Txid, BlockHash, u32)>,
    Vec<(BlockHash, Vec<(OutPoint, Coin)>)>,
    Vec<([u8; 28], Txid)>,
);

impl ChainStore {
    /// Every coin of the stored UTXO set, in key order.
    pub fn all_utxos(&self) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        self.writer.settle()?;
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(UTXO_BY_OUTPOINT), IteratorMode::Start)
        {
            let (k, v) = item?;
            let op =
                OutPoint::from_key(&k).ok_or_else(|| StoreError::Corrupt("utxo key".into()))?;
            out.push((
                op,
                decode_coin(&v).ok_or_else(|| StoreError::Corrupt(format!("coin {op}")))?,
            ));
        }
        Ok(out)
    }

    /// A SHA-256 digest of the raw UTXO column family (keys and values), for
    /// byte-for-byte comparisons.
    pub fn utxo_digest(&self) -> Result<[u8; 32], StoreError> {
        use sha2::Digest;
        self.writer.settle()?;
        let mut h = sha2::Sha256::new();
        for item in self
            .db
            .iterator_cf(self.cf(UTXO_BY_OUTPOINT), IteratorMode::Start)
        {
            let (k, v) = item?;
            h.update(&k);
            h.update(&v);
        }
        for item in self
            .db
            .iterator_cf(self.cf(UTXO_BY_PUBKEY_HASH), IteratorMode::Start)
        {
            let (k, v) = item?;
            h.update(&k);
            h.update(&v);
        }
        Ok(h.finalize().into())
    }

    /// Replays the best chain's blocks and returns the UTXO set and tx index they give.
    fn replay(&self) -> Result<Replay, StoreError> {
        let mut utxo: HashMap<OutPoint, Coin> = HashMap::new();
        let mut txs = Vec::new();
        let mut undos = Vec::new();
        let mut history = Vec::new();
        for height in 0..=self.tip.height {
            let hash = self.hash_at(height)?.ok_or_else(|| {
                StoreError::Corrupt(format!("no best-chain block at height {height}"))
            })?;
            let block = self.stored_block(&hash)?;
            let changes = connect_block(&block, &self.params, &utxo)
                .map_err(|error| StoreError::InvalidBlock { hash, error })?;
            for (op, _) in &changes.spent {
                utxo.remove(op);
            }
            for (op, c) in &changes.created {
                utxo.insert(*op, *c);
            }
            for (i, txid) in block.txids().iter().enumerate() {
                // Positions are bounded by the block size limit.
                txs.push((*txid, hash, i as u32));
            }
            history.extend(history_entries(&block, block.txids(), &changes.spent));
            undos.push((hash, changes.spent));
        }
        Ok((utxo, txs, undos, history))
    }

    /// Recomputes the UTXO set from the blocks and compares it with the stored one.
    pub fn check_db(&self) -> Result<CheckReport, StoreError> {
        self.writer.settle()?;
        let (expected, txs, _, mut history) = self.replay()?;
        history.sort_unstable();
        let stored = self.all_utxos()?;
        let mut report = CheckReport {
            blocks: self.tip.height + 1,
            expected_utxos: expected.len(),
            stored_utxos: stored.len(),
            problems: vec![],
        };
        let stored_map: HashMap<OutPoint, Coin> = stored.iter().copied().collect();
        for (op, c) in &expected {
            match stored_map.get(op) {
                None => report
                    .problems
                    .push(format!("coin {op} is missing from the stored UTXO set")),
                Some(s) if s != c => report
                    .problems
                    .push(format!("coin {op} differs: stored {s:?}, expected {c:?}")),
                _ => {}
            }
        }
        for op in stored_map.keys() {
            if !expected.contains_key(op) {
                report
                    .problems
                    .push(format!("stored coin {op} should not exist"));
            }
        }
        let mut indexed = 0usize;
        for item in self
            .db
            .iterator_cf(self.cf(UTXO_BY_PUBKEY_HASH), IteratorMode::Start)
        {
            let (k, _) = item?;
            indexed += 1;
            let op = OutPoint::from_key(&k[20..])
                .ok_or_else(|| StoreError::Corrupt("address index key".into()))?;
            if !expected.contains_key(&op) {
                report
                    .problems
                    .push(format!("address index names spent or unknown coin {op}"));
            }
        }
        if indexed != expected.len() {
            report.problems.push(format!(
                "address index has {indexed} entries, the UTXO set {}",
                expected.len()
            ));
        }
        let mut stored_history = 0usize;
        for item in self
            .db
            .iterator_cf(self.cf(TXID_BY_PUBKEY_HASH), IteratorMode::Start)
        {
            let (k, v) = item?;
            stored_history += 1;
            if history
                .binary_search_by(|(hk, t)| (&hk[..], &t.0[..]).cmp(&(&k[..], &v[..])))
                .is_err()
            {
                report.problems.push(format!(
                    "address history entry {} is not from the best chain",
                    describe_history_key(&k)
                ));
            }
        }
        if stored_history != history.len() {
            report.problems.push(format!(
                "address history has {stored_history} entries, the best chain gives {}",
                history.len()
            ));
        }
        for (txid, hash, _) in &txs {
            if self.get(TX_LOC_BY_TXID, &txid.0)?.is_none() {
                report.problems.push(format!(
                    "transaction {txid} of block {hash} is not in the transaction index"
                ));
            }
        }
        Ok(report)
    }

    /// Rebuilds the UTXO set, the address index, the transaction index and the
    /// undo data from the best chain's blocks, in one pass and one batch.
    pub fn reindex(&mut self) -> Result<usize, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        self.writer.settle()?;
        let (utxo, txs, undos, history) = self.replay()?;
        let mut batch = WriteBatch::default();
        for cf in [
            UTXO_BY_OUTPOINT,
            UTXO_BY_PUBKEY_HASH,
            TX_LOC_BY_TXID,
            UNDO_BY_HASH,
            TXID_BY_PUBKEY_HASH,
        ] {
            clear_cf(&self.db, &mut batch, cf)?;
        }
        for (op, c) in &utxo {
            batch.put_cf(self.cf(UTXO_BY_OUTPOINT), op.to_key(), encode_coin(c));
            batch.put_cf(
                self.cf(UTXO_BY_PUBKEY_HASH),
                addr_key(&c.output.pubkey_hash, op),
                encode_coin(c),
            );
        }
        for (txid, hash, i) in &txs {
            batch.put_cf(self.cf(TX_LOC_BY_TXID), txid.0, encode_tx_loc(hash, *i));
        }
        for (hash, spent) in &undos {
            batch.put_cf(self.cf(UNDO_BY_HASH), hash.0, encode_undo(spent));
        }
        for (k, txid) in &history {
            batch.put_cf(self.cf(TXID_BY_PUBKEY_HASH), k, txid.0);
        }
        self.write(batch)?;
        self.sync()?;
        Ok(utxo.len())
    }
}

pub(crate) fn clear_cf(db: &DB, batch: &mut WriteBatch, name: &str) -> Result<(), StoreError> {
    let cf = db
        .cf_handle(name)
        .expect("every column family is opened with the store");
    for item in db.iterator_cf(cf, IteratorMode::Start) {
        let (k, _) = item?;
        batch.delete_cf(cf, k);
    }
    Ok(())
}
