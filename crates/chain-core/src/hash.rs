//! Hash newtypes and the hash functions the consensus rules use.
//!
//! Every 32-byte hash is shown as the hex of its bytes in order, the same order
//! that proof of work reads them in (the first byte is the most significant), so
//! a block hash that meets a 12-bit target visibly starts with `000`.

use sha2::{Digest, Sha256};

/// SHA-256 applied twice, as Bitcoin does for txids and block hashes.
pub fn sha256d(data: &[u8]) -> [u8; 32] {
    #[cfg(feature = "hash-count")]
    count::add(data.len());
    let first = Sha256::digest(data);
    Sha256::digest(first).into()
}

/// Counts of the double SHA-256 calls made, for benchmarks that show where
/// hashing goes (the `hash-count` feature; off in the node).
#[cfg(feature = "hash-count")]
pub mod count {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    static CALLS: AtomicU64 = AtomicU64::new(0);
    static BYTES: AtomicU64 = AtomicU64::new(0);
    static HEADERS: AtomicU64 = AtomicU64::new(0);

    /// Double SHA-256 calls since the last [`take`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct HashCounts {
        /// Calls of [`super::sha256d`], every kind included.
        pub calls: u64,
        /// Bytes they hashed.
        pub bytes: u64,
        /// Of the calls, block-header hashes.
        pub headers: u64,
    }

    pub(crate) fn add(bytes: usize) {
        CALLS.fetch_add(1, Relaxed);
        BYTES.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn header() {
        HEADERS.fetch_add(1, Relaxed);
    }

    /// The counts since the last call, set back to zero.
    pub fn take() -> HashCounts {
        HashCounts {
            calls: CALLS.swap(0, Relaxed),
            bytes: BYTES.swap(0, Relaxed),
            headers: HEADERS.swap(0, Relaxed),
        }
    }
}

/// RIPEMD-160 of SHA-256: the public-key hash behind an address.
pub fn hash160(data: &[u8]) -> [u8; 20] {
    use ripemd::Ripemd160;
    Ripemd160::digest(Sha256::digest(data)).into()
}

/// Error for a hex string that is not a 32-byte hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashParseError {
    /// The text is not hex.
    #[error("not a hex string: {0}")]
    NotHex(String),
    /// The text decodes to the wrong number of bytes.
    #[error("a hash is 32 bytes (64 hex digits), this one is {0} bytes")]
    WrongLength(usize),
}

macro_rules! hash_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The all-zero hash.
            pub const ZERO: Self = Self([0u8; 32]);
            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            /// The first bytes as short hex, for log lines.
            pub fn short(&self) -> String {
                hex::encode(&self.0[..6])
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($name), hex::encode(self.0))
            }
        }

        impl std::str::FromStr for $name {
            type Err = HashParseError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let bytes = hex::decode(s).map_err(|_| HashParseError::NotHex(s.to_string()))?;
                let arr: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| HashParseError::WrongLength(bytes.len()))?;
                Ok(Self(arr))
            }
        }
    };
}

hash_newtype!(
    /// The hash of a block header: double SHA-256 of its fixed 92-byte layout.
    BlockHash
);
hash_newtype!(
    /// The id of a transaction: double SHA-256 of its canonical encoding.
    Txid
);
hash_newtype!(
    /// A Merkle root over a block's txids.
    MerkleRoot
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let h = BlockHash([0xab; 32]);
        let s = h.to_string();
        assert_eq!(s.len(), 64);
        assert_eq!(s.parse::<BlockHash>().unwrap(), h);
        assert!(matches!(
            "zz".parse::<BlockHash>(),
            Err(HashParseError::NotHex(_))
        ));
        assert_eq!("abcd".parse::<Txid>(), Err(HashParseError::WrongLength(2)));
    }
}
