//! secp256k1 keys, WIF, and the one ECDSA verify path the node uses.
//!
//! Signatures are strict DER with low S. k256 refuses a high-S signature when
//! it verifies; the S value is deliberately not normalised first, because
//! normalising would accept malleated signatures.

use crate::address::{
    base58check_decode, base58check_encode, Address, Base58CheckError, PubkeyHash,
};
use k256::ecdsa::signature::{Signer, Verifier};
use k256::ecdsa::{Signature, SigningKey, VerifyingKey};

/// The version byte of a mainnet WIF private key.
pub const WIF_VERSION: u8 = 0x80;

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The WIF string does not decode.
    #[error("not a WIF key: {0}")]
    WifEncoding(#[from] Base58CheckError),
    /// The WIF string is not a compressed mainnet key.
    #[error("not a compressed mainnet WIF key (version 0x{version:02x}, {len} bytes); export keys as compressed WIF")]
    WifForm {
        /// Version byte found.
        version: u8,
        /// Payload length found.
        len: usize,
    },
    /// The secret is zero or not below the curve order.
    #[error("the private key is out of range for secp256k1")]
    SecretOutOfRange,
    /// The public key is not a valid SEC1 point.
    #[error("the public key is not a valid secp256k1 point")]
    BadPublicKey,
    /// The signature is not strict DER.
    #[error("the signature is not strict DER")]
    BadSignatureEncoding,
    /// The signature has a high S value; only the low-S form of a signature
    /// is valid, so a third party cannot change a txid by flipping S.
    #[error("the signature has a high S value (only low-S signatures are valid)")]
    HighS,
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

/// A secp256k1 private key.
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Self {
        PrivateKey(SigningKey::random(
            &mut k256::elliptic_curve::rand_core::OsRng,
        ))
    }

    /// A key from its 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        SigningKey::from_bytes(bytes.into())
            .map(PrivateKey)
            .map_err(|_| KeyError::SecretOutOfRange)
    }

    /// The 32 secret bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes().into()
    }

    /// Parses a compressed mainnet WIF key.
    pub fn from_wif(wif: &str) -> Result<Self, KeyError> {
        let payload = base58check_decode(wif.trim())?;
        if payload.len() != 34 || payload[0] != WIF_VERSION || payload[33] != 0x01 {
            return Err(KeyError::WifForm {
                version: payload.first().copied().unwrap_or(0),
                len: payload.len(),
            });
        }
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&payload[1..33]);
        Self::from_bytes(&secret)
    }

    /// The compressed mainnet WIF form.
    pub fn to_wif(&self) -> String {
        let mut payload = Vec::with_capacity(34);
        payload.push(WIF_VERSION);
        payload.extend_from_slice(&self.to_bytes());
        payload.push(0x01);
        base58check_encode(&payload)
    }

    /// The public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(*self.0.verifying_key())
    }

    /// Signs `msg` (hashed with SHA-256 by ECDSA) and returns strict DER with low S.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let sig: Signature = self.0.sign(msg);
        // k256 produces low-S signatures already; normalising is a no-op kept as a guarantee.
        let sig = sig.normalize_s().unwrap_or(sig);
        sig.to_der().as_bytes().to_vec()
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey(..)")
    }
}

/// A secp256k1 public key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses a SEC1 point, compressed or not.
    pub fn from_sec1(bytes: &[u8]) -> Result<Self, KeyError> {
        VerifyingKey::from_sec1_bytes(bytes)
            .map(PublicKey)
            .map_err(|_| KeyError::BadPublicKey)
    }

    /// The compressed SEC1 form (33 bytes), the one transactions carry.
    pub fn to_compressed(&self) -> [u8; 33] {
        let point = self.0.to_encoded_point(true);
        let mut out = [0u8; 33];
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// The hash an output pays to.
    pub fn pubkey_hash(&self) -> PubkeyHash {
        PubkeyHash::from_pubkey_bytes(&self.to_compressed())
    }

    /// The address of this key.
    pub fn address(&self) -> Address {
        Address::from_pubkey_hash(self.pubkey_hash())
    }

    /// Verifies a strict-DER, low-S ECDSA signature over `msg`: the node's one verify path.
    pub fn verify(&self, msg: &[u8], der_sig: &[u8]) -> Result<(), KeyError> {
        let sig = Signature::from_der(der_sig).map_err(|_| KeyError::BadSignatureEncoding)?;
        if sig.normalize_s().is_some() {
            return Err(KeyError::HighS);
        }
        self.0.verify(msg, &sig).map_err(|_| KeyError::BadSignature)
    }
}

/// Verifies `der_sig` over `msg` by the SEC1 public key `pubkey`.
pub fn verify_signature(pubkey: &[u8], msg: &[u8], der_sig: &[u8]) -> Result<(), KeyError> {
    PublicKey::from_sec1(pubkey)?.verify(msg, der_sig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_wif() {
        let k = PrivateKey::generate();
        let sig = k.sign(b"hello");
        let pk = k.public_key();
        assert!(pk.verify(b"hello", &sig).is_ok());
        assert_eq!(pk.verify(b"hellp", &sig), Err(KeyError::BadSignature));
        let back = PrivateKey::from_wif(&k.to_wif()).unwrap();
        assert_eq!(back.to_bytes(), k.to_bytes());
    }

    #[test]
    fn high_s_is_refused() {
        let k = PrivateKey::generate();
        let der = k.sign(b"m");
        let sig = Signature::from_der(&der).unwrap();
        // Negate s: (r, n - s) is the malleated twin.
        let (r, s) = (sig.r(), sig.s());
        let high = Signature::from_scalars(r.to_bytes(), (-*s.as_ref()).to_bytes()).unwrap();
        assert!(high.normalize_s().is_some(), "the twin is high-S");
        let der_high = high.to_der().as_bytes().to_vec();
        assert_eq!(k.public_key().verify(b"m", &der_high), Err(KeyError::HighS));
    }
}
