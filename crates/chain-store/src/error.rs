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
    /// The stored format is not one this program understands.
    #[error("the chain in {path} has storage format {found}, this program reads format {expected}; use a matching version of the program")]
    UnknownFormat {
        /// The path.
        path: PathBuf,
        /// What the store says (None: no format recorded).
        found: String,
        /// What this program reads.
        expected: u32,
    },
    /// The block failed validation.
    #[error("block {hash} is invalid: {error}")]
    InvalidBlock {
        /// The block.
        hash: BlockHash,
        /// Why.
        error: BlockError,
    },
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
    /// The validation error, when this is a refusal of an invalid block.
    pub fn block_error(&self) -> Option<&BlockError> {
        match self {
            StoreError::InvalidBlock { error, .. } => Some(error),
            _ => None,
        }
    }
}
