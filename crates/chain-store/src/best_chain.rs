//! Choosing the best chain: the stored branch with the most work that is
//! not known to be invalid, and the reorganisation onto it (disconnecting
//! back to the fork point, connecting the branch, restoring the old chain
//! when a block of the branch is invalid).

use crate::schema::*;
use crate::{ChainStore, ChainUpdate, StoreError};
use chain_core::validation::{BlockError, CheckedBlock, NoCache, SignatureCache};
use chain_core::BlockHash;
use rocksdb::{IteratorMode, WriteBatch};

impl ChainStore {
    /// The stored block with the most cumulative work that is not known to
    /// be invalid. Reads every header entry once.
    pub fn most_work_candidate(&self) -> Result<Option<(BlockHash, HeaderEntry)>, StoreError> {
        self.writer.settle()?;
        let mut best: Option<(BlockHash, HeaderEntry)> = None;
        for item in self
            .db
            .iterator_cf(self.cf(HEADER_BY_HASH), IteratorMode::Start)
        {
            let (k, v) = item?;
            let hash = BlockHash(
                k.as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("bad header key".into()))?,
            );
            let e = HeaderEntry::decode(&v)
                .ok_or_else(|| StoreError::Corrupt(format!("header entry of {hash}")))?;
            if e.status == Status::Invalid {
                continue;
            }
            if best
                .as_ref()
                .is_none_or(|(_, b)| e.chain_work > b.chain_work)
            {
                best = Some((hash, e));
            }
        }
        Ok(best)
    }

    /// Makes the stored branch with the most work that is not known to be
    /// invalid the best chain, trying the next best when one turns out to be
    /// invalid. Run when the store is opened for writing and after a
    /// reorganisation fails. Returns what changed, if anything.
    pub fn activate_best_chain(&mut self) -> Result<Option<ChainUpdate>, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        let mut changed: Option<ChainUpdate> = None;
        // Each failed attempt marks at least one block invalid, so this ends.
        while let Some((hash, entry)) = self.most_work_candidate()? {
            if entry.chain_work <= self.tip.work {
                break;
            }
            tracing::info!(%hash, height = entry.header.height, "activating the stored branch with the most work");
            match self.reorganize_to(hash, entry, None, &NoCache) {
                Ok(update) => {
                    let all = changed.get_or_insert_with(ChainUpdate::default);
                    all.disconnected.extend(update.disconnected);
                    all.connected.extend(update.connected);
                }
                Err(StoreError::InvalidBlock { hash: bad, error }) => {
                    tracing::warn!(%bad, "the branch holds an invalid block: {error}");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }

    /// Marks `hashes` invalid on disk, in one batch.
    pub(crate) fn mark_invalid(
        &mut self,
        hashes: &[(BlockHash, HeaderEntry)],
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for (h, e) in hashes {
            // None of them was ever connected: their bodies go.
            batch.delete_cf(self.cf(BLOCK_BY_HASH), h.0);
            batch.put_cf(
                self.cf(HEADER_BY_HASH),
                h.0,
                HeaderEntry {
                    status: Status::Invalid,
                    ..*e
                }
                .encode(),
            );
        }
        self.write(batch)?;
        Ok(())
    }

    /// Moves the best chain to `target`. Each block connected or
    /// disconnected is its own atomic batch. If a block of the new branch is
    /// invalid, it is marked so and the previous best chain is restored.
    /// `target_block` is the target's block when the caller holds it, so it
    /// is not read back.
    pub(crate) fn reorganize_to(
        &mut self,
        target: BlockHash,
        target_entry: HeaderEntry,
        mut target_block: Option<CheckedBlock>,
        cache: &dyn SignatureCache,
    ) -> Result<ChainUpdate, StoreError> {
        // Walk the new branch back to a best-chain block: the fork point.
        let mut branch = vec![(target, target_entry)];
        loop {
            let (_, e) = branch.last().copied().expect("branch starts non-empty");
            let prev = e.header.prev;
            if self.is_on_best_chain(&prev)? {
                break;
            }
            let pe = self
                .header_entry(&prev)?
                .ok_or_else(|| StoreError::Corrupt(format!("missing ancestor {prev}")))?;
            if pe.status == Status::Invalid {
                // Everything walked so far descends from an invalid block.
                self.mark_invalid(&branch)?;
                let (child, _) = branch.last().copied().expect("branch starts non-empty");
                return Err(StoreError::InvalidBlock {
                    hash: child,
                    error: BlockError::InvalidParent(prev),
                });
            }
            branch.push((prev, pe));
        }
        branch.reverse();
        let fork = branch[0].1.header.prev;
        let fork_height = self
            .header_entry(&fork)?
            .map(|e| e.header.height)
            .ok_or_else(|| StoreError::Corrupt("fork point missing".into()))?;
        let mut update = ChainUpdate::default();
        while self.tip.height > fork_height {
            update.disconnected.push(self.disconnect_tip()?);
        }
        for (i, (hash, entry)) in branch.iter().enumerate() {
            let block = match target_block.take_if(|b| b.hash() == *hash) {
                Some(b) => b,
                None => self.stored_block(hash)?,
            };
            match self.connect(&block, *entry, cache) {
                Ok(()) => update.connected.push(block),
                Err(StoreError::InvalidBlock { hash: bad, error }) => {
                    // The failed block and every block after it on this branch.
                    self.mark_invalid(&branch[i..])?;
                    // Restore the previous chain: it was valid.
                    for _ in 0..update.connected.len() {
                        self.disconnect_tip()?;
                    }
                    for old in update.disconnected.iter().rev() {
                        let entry = self.header_entry(&old.hash())?.ok_or_else(|| {
                            StoreError::Corrupt("a disconnected block's header is missing".into())
                        })?;
                        self.connect(old, entry, &NoCache)?;
                    }
                    return Err(StoreError::InvalidBlock { hash: bad, error });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(update)
    }
}
