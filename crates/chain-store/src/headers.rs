//! Header branches: headers a peer showed that the store does not hold yet,
//! checked and kept in memory, so that bodies are fetched only for a branch
//! whose headers prove more work than the best chain.

use crate::{ChainStore, HeaderEntry, Status, StoreError};
use chain_core::block::BlockHeader;
use chain_core::pow::Work;
use chain_core::validation::{self, check_header, check_header_context, BlockError, HeaderContext};
use chain_core::BlockHash;

/// Most headers one branch holds: about 12 MiB. A branch that has not shown
/// more work than the best chain by then is given up.
pub const MAX_BRANCH_HEADERS: usize = 64_000;

/// A checked chain of headers that starts on a stored block (the fork
/// point) and is not stored itself. Each header passed its own proof of
/// work and the checks against its parent (expected difficulty, median
/// time, height), exactly as a block's header is checked before its body.
#[derive(Clone, Debug)]
pub struct HeaderBranch {
    fork: BlockHash,
    fork_entry: HeaderEntry,
    /// Hash, header and the work of the chain ending there, oldest first.
    headers: Vec<(BlockHash, BlockHeader, Work)>,
}

impl HeaderBranch {
    /// The stored block the branch starts after.
    pub fn fork(&self) -> BlockHash {
        self.fork
    }

    /// Headers held.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether no header is held.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// The last header's hash, or the fork point's.
    pub fn tip_hash(&self) -> BlockHash {
        self.headers.last().map(|h| h.0).unwrap_or(self.fork)
    }

    /// The last header's height, or the fork point's.
    pub fn tip_height(&self) -> u32 {
        self.headers
            .last()
            .map(|h| h.1.height)
            .unwrap_or(self.fork_entry.header.height)
    }

    /// Work of the chain ending at the last header.
    pub fn work(&self) -> Work {
        self.headers
            .last()
            .map(|h| h.2)
            .unwrap_or(self.fork_entry.chain_work)
    }

    /// The hashes, oldest first.
    pub fn hashes(&self) -> impl Iterator<Item = BlockHash> + '_ {
        self.headers.iter().map(|h| h.0)
    }

    /// Whether `hash` is one of the branch's headers.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.headers.iter().any(|h| h.0 == *hash)
    }

    /// The header at `height`, when the branch holds it.
    fn at(&self, height: u32) -> Option<&(BlockHash, BlockHeader, Work)> {
        let first = self.fork_entry.header.height.checked_add(1)?;
        let i = usize::try_from(height.checked_sub(first)?).ok()?;
        self.headers.get(i)
    }
}

impl ChainStore {
    /// Checks `headers` (oldest first, each the parent of the next) and adds
    /// them to `branch`. The first header must follow the branch's last one,
    /// or a block the store holds, which starts a new branch; headers the
    /// store already holds at the start are skipped. Returns how many were
    /// added. Headers that fail against their parent are remembered as
    /// failed, like blocks' headers; nothing is written.
    pub fn extend_branch(
        &mut self,
        branch: &mut Option<HeaderBranch>,
        headers: &[BlockHeader],
        now: u64,
    ) -> Result<usize, StoreError> {
        if let Some(b) = branch.as_mut() {
            self.trim_stored(b)?;
        }
        let mut added = 0usize;
        for header in headers {
            let hash = header.hash();
            let invalid = |error| StoreError::InvalidBlock { hash, error };
            if branch.as_ref().is_none_or(HeaderBranch::is_empty) {
                // Still on stored blocks: a stored header moves the fork point.
                if let Some(e) = self.header_entry(&hash)? {
                    if e.status == Status::Invalid {
                        return Err(invalid(BlockError::KnownInvalid(hash)));
                    }
                    *branch = Some(HeaderBranch {
                        fork: hash,
                        fork_entry: e,
                        headers: Vec::new(),
                    });
                    continue;
                }
            }
            if self.failed.contains(&hash) {
                return Err(invalid(BlockError::KnownInvalid(hash)));
            }
            let follows = branch.as_ref().is_some_and(|b| b.tip_hash() == header.prev);
            if !follows {
                // A new branch, from a stored block.
                match self.header_entry(&header.prev)? {
                    Some(e) if e.status != Status::Invalid && added == 0 => {
                        *branch = Some(HeaderBranch {
                            fork: header.prev,
                            fork_entry: e,
                            headers: Vec::new(),
                        });
                    }
                    Some(e) if e.status == Status::Invalid => {
                        self.failed.insert(hash);
                        return Err(invalid(BlockError::InvalidParent(header.prev)));
                    }
                    _ => {
                        return Err(StoreError::Unconnected {
                            hash,
                            prev: header.prev,
                        })
                    }
                }
            }
            let Some(b) = branch.as_mut() else {
                return Err(StoreError::Unconnected {
                    hash,
                    prev: header.prev,
                });
            };
            if b.headers.len() >= MAX_BRANCH_HEADERS {
                return Err(StoreError::BranchTooLong(MAX_BRANCH_HEADERS));
            }
            check_header(header).map_err(invalid)?;
            let ctx = self.branch_context(b, now)?;
            if let Err(error) = check_header_context(header, &ctx) {
                if error.is_final() {
                    self.failed.insert(hash);
                }
                return Err(invalid(error));
            }
            let work = b.work().saturating_add(header.work());
            b.headers.push((hash, *header, work));
            added += 1;
        }
        Ok(added)
    }

    /// Moves the fork point past the branch's headers the store now holds.
    fn trim_stored(&self, b: &mut HeaderBranch) -> Result<(), StoreError> {
        let mut n = 0;
        for (hash, _, _) in &b.headers {
            match self.header_entry(hash)? {
                Some(e) if e.status != Status::Invalid => {
                    b.fork = *hash;
                    b.fork_entry = e;
                    n += 1;
                }
                _ => break,
            }
        }
        b.headers.drain(..n);
        Ok(())
    }

    /// The context a child of the branch's last header is checked against:
    /// ancestors come from the branch, then from the store below the fork.
    fn branch_context(&self, b: &HeaderBranch, now: u64) -> Result<HeaderContext, StoreError> {
        let Some((_, parent, _)) = b.headers.last() else {
            return self.context_for_child(&b.fork, &b.fork_entry, now);
        };
        let mut err = None;
        let mut time_at = |height: u32| -> Option<u64> {
            if let Some(h) = b.at(height) {
                return Some(h.1.time);
            }
            match self.ancestor(&b.fork_entry, height) {
                Ok(e) => e.map(|e| e.header.time),
                Err(e) => {
                    err = Some(e);
                    None
                }
            }
        };
        let expected_bits = validation::next_bits(&self.params, parent, &mut time_at);
        let mut times = Vec::with_capacity(validation::MEDIAN_TIME_SPAN);
        let mut height = parent.height;
        while times.len() < validation::MEDIAN_TIME_SPAN {
            match time_at(height) {
                Some(t) => times.push(t),
                None => break,
            }
            match height.checked_sub(1) {
                Some(h) => height = h,
                None => break,
            }
        }
        if let Some(e) = err {
            return Err(e);
        }
        Ok(HeaderContext {
            parent_height: parent.height,
            median_time_past: validation::median_time(&times),
            expected_bits,
            now,
        })
    }

    /// Best-chain headers after the first locator entry found on the best
    /// chain, at most `max`, stopping after `stop`.
    pub fn headers_after(
        &self,
        locator: &[BlockHash],
        stop: Option<BlockHash>,
        max: usize,
    ) -> Result<Vec<BlockHeader>, StoreError> {
        crate::reads::headers_after(self, self.tip.height, locator, stop, max)
    }
}
