//! The consensus core of the chain: blocks, transactions, addresses, keys,
//! proof of work, validation rules, the mempool and the miner.
//!
//! This crate does no I/O. Other programs can depend on it alone to parse
//! addresses, build and sign transactions, or check blocks.

pub mod address;
pub mod amount;
pub mod block;
pub mod checked;
pub mod encode;
pub mod hash;
pub mod keys;
pub mod mempool;
pub mod miner;
pub mod pow;
pub mod transaction;
pub mod validation;

#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

pub use address::{Address, AddressError, PubkeyHash};
pub use amount::{Amount, MAX_MONEY};
pub use block::{merkle_root, Block, BlockHeader, ChainParams, GenesisError, MAX_BLOCK_SIZE};
pub use checked::{CheckedBlock, ReceivedBlock, UnminedTx};
pub use hash::{BlockHash, MerkleRoot, Txid};
pub use keys::{KeyError, PrivateKey, PublicKey};
pub use mempool::{FeeRate, Mempool, MempoolConfig, MempoolError};
pub use pow::{CompactTarget, Target, Work};
pub use transaction::{DecodeError, OutPoint, Transaction, TxError, TxIn, TxOut};
pub use validation::{BlockChanges, BlockError, Coin, HeaderContext, InputError, UtxoView};
