//! The mempool on disk (Bitcoin Core's `mempool.dat`): written at a clean
//! shutdown, read at start and every transaction validated again.
//!
//! Layout: the 8 bytes `CMPOOL02`, the genesis hash (32 bytes), the
//! postcard encoding of `Vec<(u64, Transaction)>` (each transaction, a byte
//! string of its consensus encoding, with the unix time it entered the
//! pool, in dependency order), then the SHA-256 of
//! everything before it (32 bytes). The file is written to a temporary name,
//! synced and renamed, so a crash leaves the old file or the new one.

use chain_core::{BlockHash, Transaction};
use p2p_proto::{decode_exact, encode};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 8] = b"CMPOOL02";
/// Largest file read: a full default pool with room for its framing.
const MAX_FILE: usize = 256 * 1024 * 1024;

/// Why a mempool file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoolFileError {
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not a mempool file, or damaged.
    #[error("{0} is not a mempool file or is damaged ({1})")]
    Corrupt(String, &'static str),
    /// Saved by a node of another chain.
    #[error("{path} holds the mempool of another chain (genesis {found})")]
    OtherChain {
        /// The file.
        path: String,
        /// Its genesis.
        found: BlockHash,
    },
}

/// Writes `txs` for the chain `genesis` to `path`.
pub fn save(path: &Path, genesis: BlockHash, txs: &[(u64, Transaction)]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(8 + 32 + 64);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&genesis.0);
    bytes.extend_from_slice(&encode(&txs.to_vec()));
    let sum: [u8; 32] = Sha256::digest(&bytes).into();
    bytes.extend_from_slice(&sum);
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Reads the transactions saved for the chain `genesis`; `Ok(None)` when
/// there is no file.
pub fn load(
    path: &Path,
    genesis: BlockHash,
) -> Result<Option<Vec<(u64, Transaction)>>, PoolFileError> {
    let shown = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PoolFileError::Io {
                path: shown,
                source,
            })
        }
    };
    if bytes.len() > MAX_FILE {
        return Err(PoolFileError::Corrupt(shown, "too large"));
    }
    if bytes.len() < 8 + 32 + 32 || &bytes[..8] != MAGIC {
        return Err(PoolFileError::Corrupt(shown, "no mempool header"));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if Sha256::digest(body).as_slice() != sum {
        return Err(PoolFileError::Corrupt(shown, "checksum mismatch"));
    }
    let found = BlockHash(
        body[8..40]
            .try_into()
            .map_err(|_| PoolFileError::Corrupt(shown.clone(), "short"))?,
    );
    if found != genesis {
        return Err(PoolFileError::OtherChain { path: shown, found });
    }
    let txs: Vec<(u64, Transaction)> = decode_exact(&body[40..], MAX_FILE, "mempool file")
        .map_err(|_| PoolFileError::Corrupt(shown, "undecodable transactions"))?;
    Ok(Some(txs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chain_core::test_utils::{easy_params, genesis};
    use chain_core::PubkeyHash;

    #[test]
    fn round_trip_and_every_damage_is_an_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mempool.dat");
        let g = genesis(&easy_params(), PubkeyHash([1; 20]));
        let txs = vec![(7u64, g.transactions[0].clone())];
        assert!(load(&path, g.hash()).unwrap().is_none());
        save(&path, g.hash(), &txs).unwrap();
        assert_eq!(load(&path, g.hash()).unwrap().unwrap(), txs);
        assert!(matches!(
            load(&path, BlockHash([2; 32])),
            Err(PoolFileError::OtherChain { .. })
        ));
        let full = std::fs::read(&path).unwrap();
        for cut in [0, 5, 40, full.len() - 1] {
            std::fs::write(&path, &full[..cut]).unwrap();
            assert!(
                matches!(load(&path, g.hash()), Err(PoolFileError::Corrupt(..))),
                "cut at {cut}"
            );
        }
        let mut flipped = full.clone();
        flipped[45] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            load(&path, g.hash()),
            Err(PoolFileError::Corrupt(..))
        ));
    }
}
