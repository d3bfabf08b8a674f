//! Errors of the store.

use chain_core::{BlockError, BlockHash, GenesisError};
use std::path::PathBuf;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another process holds the chain open for writing.
    #[error("the chain in {0} is in use by a running node")]
    InUse(PathBuf),
    /// No chain at the path.
    #[error("no chain in {0}")]
    NotFound(PathBuf),
    /// A chain already exists at the path.
    #[error("a chain already exists in {0}; nothing was changed")]
    AlreadyExists(PathBuf),
    /// The store is in the older format this program upgrades, and was
    /// opened read-only, so it cannot be upgraded.
    #[error("the chain in {0} is in storage format 2; this program upgrades it to format 3 the first time a command that writes opens it (for example `node startp2p` or `node reindexutxo`); run one, then this again")]
    NeedsUpgrade(PathBuf),
    /// A [`crate::StoreReader`] was used after its store was closed.
    #[error("the chain is closed (the node is stopping)")]
    Closed,
    /// The stored format is not one this program understands.
    #[error("the chain in {path} has storage format {found}, this program reads format {expected}; use a matching version of the program, or move the directory aside and sync the chain again (format 1 chains used an older transaction encoding and cannot be converted; wallets are not affected)")]
    UnknownFormat {
        /// The path.
        path: PathBuf,
        /// What the store says (None: no format recorded).
        found: String,
        /// What this program reads.
        expected: u32,
    },
    /// A block's batch, written behind, failed to land; nothing after it
    /// was written. Reopening the store reads what did land.
    #[error(
        "writing to the chain failed ({0}); restart the node to reopen the chain as it is on disk"
    )]
    WriteFailed(String),
    /// The block failed validation.
    #[error("block {hash} is invalid: {error}")]
    InvalidBlock {
        /// The block.
        hash: BlockHash,
        /// Why.
        error: BlockError,
    },
    /// A header follows neither the previous header nor a stored block.
    #[error("header {hash} does not connect: its parent {prev} is neither the previous header nor a stored block")]
    Unconnected {
        /// The header.
        hash: BlockHash,
        /// Its parent.
        prev: BlockHash,
    },
    /// A header branch reached its size limit without being resolved.
    #[error("the header branch holds {0} headers, the most this node keeps")]
    BranchTooLong(usize),
    /// The genesis is unusable.
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    /// The store was opened read-only.
    #[error("the chain was opened read-only")]
    ReadOnly,
    /// Stored data does not decode: the store is damaged.
    #[error("the chain store is damaged: {0}")]
    Corrupt(String),
    /// RocksDB failed.
    #[error("database error: {0}")]
    Db(#[from] rocksdb::Error),
}

impl StoreError {
    /// Whether the peer that sent what failed is to blame: an invalid block
    /// or header (as [`BlockError::is_sender_fault`] says), or headers that
    /// do not connect to what was asked.
    pub fn is_sender_fault(&self) -> bool {
        match self {
            StoreError::InvalidBlock { error, .. } => error.is_sender_fault(),
            StoreError::Unconnected { .. } => true,
            _ => false,
        }
    }

    /// The validation error, when this is a refusal of an invalid block.
    pub fn block_error(&self) -> Option<&BlockError> {
        match self {
            StoreError::InvalidBlock { error, .. } => Some(error),
            _ => None,
        }
    }
}
