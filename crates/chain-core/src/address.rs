//! Addresses: exactly Bitcoin's mainnet P2PKH form.
//!
//! An address is base58check of the version byte `0x00` followed by the
//! 20-byte hash160 of a compressed SEC1 public key. An [`Address`] can only be
//! built from a string that passes every check, or from a public-key hash, so
//! code that holds one never needs to check it again.

use crate::hash::hash160;
use serde::{Deserialize, Serialize};

/// The version byte of a mainnet P2PKH address.
pub const ADDRESS_VERSION: u8 = 0x00;

/// The 20-byte hash160 of a compressed public key: what an output pays to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct PubkeyHash(pub [u8; 20]);

impl PubkeyHash {
    /// The hash of a SEC1-encoded public key.
    pub fn from_pubkey_bytes(sec1: &[u8]) -> Self {
        PubkeyHash(hash160(sec1))
    }
}

impl std::fmt::Debug for PubkeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PubkeyHash({})", hex::encode(self.0))
    }
}

impl std::fmt::Display for PubkeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// Why a string is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// A character outside the base58 alphabet.
    #[error("'{text}' is not an address: character '{character}' at position {index} is not in the base58 alphabet")]
    InvalidCharacter {
        /// The input.
        text: String,
        /// The offending character.
        character: char,
        /// Its position.
        index: usize,
    },
    /// The last four bytes are not the checksum of the rest.
    #[error("'{0}' is not an address: its checksum is wrong (a typo?)")]
    BadChecksum(String),
    /// The checksum is right but the payload is not 1 + 20 bytes.
    #[error("'{text}' is not an address: it holds {len} bytes, an address holds 21")]
    WrongLength {
        /// The input.
        text: String,
        /// The decoded length (version byte included, checksum excluded).
        len: usize,
    },
    /// The checksum and length are right but it is not a mainnet P2PKH address.
    #[error("'{text}' is not an address: version byte 0x{version:02x}, an address has 0x00 (mainnet P2PKH)")]
    WrongVersion {
        /// The input.
        text: String,
        /// The version byte found.
        version: u8,
    },
}

/// A mainnet P2PKH address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address(PubkeyHash);

impl Address {
    /// The address that pays to this public-key hash.
    pub fn from_pubkey_hash(pkh: PubkeyHash) -> Self {
        Address(pkh)
    }

    /// The public-key hash inside.
    pub fn pubkey_hash(&self) -> PubkeyHash {
        self.0
    }

    /// Parses and checks an address string.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let payload = base58check_decode(text).map_err(|e| match e {
            Base58CheckError::InvalidCharacter { character, index } => {
                AddressError::InvalidCharacter {
                    text: text.to_string(),
                    character,
                    index,
                }
            }
            Base58CheckError::BadChecksum => AddressError::BadChecksum(text.to_string()),
            Base58CheckError::TooShort(len) => AddressError::WrongLength {
                text: text.to_string(),
                len,
            },
        })?;
        if payload.len() != 21 {
            return Err(AddressError::WrongLength {
                text: text.to_string(),
                len: payload.len(),
            });
        }
        if payload[0] != ADDRESS_VERSION {
            return Err(AddressError::WrongVersion {
                text: text.to_string(),
                version: payload[0],
            });
        }
        let mut h = [0u8; 20];
        h.copy_from_slice(&payload[1..]);
        Ok(Address(PubkeyHash(h)))
    }
}

impl std::str::FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut payload = [0u8; 21];
        payload[0] = ADDRESS_VERSION;
        payload[1..].copy_from_slice(&(self.0).0);
        f.write_str(&bs58::encode(payload).with_check().into_string())
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Address({self})")
    }
}

/// Why a base58check string does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Base58CheckError {
    /// A character outside the alphabet.
    #[error("character '{character}' at position {index} is not in the base58 alphabet")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// Its position.
        index: usize,
    },
    /// The checksum does not match.
    #[error("bad base58check checksum")]
    BadChecksum,
    /// Fewer than the four checksum bytes.
    #[error("too short for base58check: {0} bytes")]
    TooShort(usize),
}

/// Decodes base58check, returning the payload (version byte included, checksum removed).
pub fn base58check_decode(text: &str) -> Result<Vec<u8>, Base58CheckError> {
    let raw = bs58::decode(text).into_vec().map_err(|e| match e {
        bs58::decode::Error::InvalidCharacter { character, index } => {
            Base58CheckError::InvalidCharacter { character, index }
        }
        bs58::decode::Error::NonAsciiCharacter { index } => Base58CheckError::InvalidCharacter {
            character: text[index..].chars().next().unwrap_or('?'),
            index,
        },
        // The remaining variants concern fixed-size output buffers and checksums,
        // which this call does not use; map them to a checksum failure.
        _ => Base58CheckError::BadChecksum,
    })?;
    if raw.len() < 4 {
        return Err(Base58CheckError::TooShort(raw.len()));
    }
    let (payload, check) = raw.split_at(raw.len() - 4);
    let digest = crate::hash::sha256d(payload);
    if digest[..4] != *check {
        return Err(Base58CheckError::BadChecksum);
    }
    Ok(payload.to_vec())
}

/// Encodes a payload as base58check.
pub fn base58check_encode(payload: &[u8]) -> String {
    bs58::encode(payload).with_check().into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let a = Address::from_pubkey_hash(PubkeyHash([7; 20]));
        let s = a.to_string();
        assert!(s.starts_with('1'));
        assert_eq!(Address::parse(&s).unwrap(), a);
    }

    #[test]
    fn each_refusal_has_its_own_error() {
        let good = Address::from_pubkey_hash(PubkeyHash([7; 20])).to_string();
        let mut typo = good.clone().into_bytes();
        let last = typo.len() - 1;
        typo[last] = if typo[last] == b'2' { b'3' } else { b'2' };
        let typo = String::from_utf8(typo).unwrap();
        assert!(matches!(
            Address::parse(&typo),
            Err(AddressError::BadChecksum(_))
        ));
        assert!(matches!(
            Address::parse("10OIl"),
            Err(AddressError::InvalidCharacter { .. })
        ));
        let p2sh = base58check_encode(&[&[5u8][..], &[1u8; 20]].concat());
        assert!(matches!(
            Address::parse(&p2sh),
            Err(AddressError::WrongVersion { version: 5, .. })
        ));
        let long = base58check_encode(&[0u8; 22]);
        assert!(matches!(
            Address::parse(&long),
            Err(AddressError::WrongLength { len: 22, .. })
        ));
    }
}
