//! Encryption of the wallet file at rest: Argon2id derives a 256-bit key
//! from the passphrase and a random 16-byte salt; XChaCha20-Poly1305 seals
//! the key list under a fresh random 24-byte nonce at every save. The
//! Argon2 parameters are stored in the file, so they can be raised later
//! without breaking older files.

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};

/// Argon2id memory cost in KiB (the argon2 crate's default, OWASP's minimum).
const M_COST_KIB: u32 = 19 * 1024;
/// Argon2id passes.
const T_COST: u32 = 2;
/// Argon2id lanes.
const P_COST: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Sealed {
    version: u32,
    kdf: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// Seals the file again on each save with the derived key.
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
    salt: [u8; 16],
    params: (u32, u32, u32),
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Why a sealed file did not open.
pub(crate) enum OpenError {
    WrongPassphrase,
    Malformed(String),
}

fn derive(
    pass: &str,
    salt: &[u8],
    (m, t, p): (u32, u32, u32),
) -> Result<XChaCha20Poly1305, String> {
    let params = argon2::Params::new(m, t, p, Some(32)).map_err(|e| e.to_string())?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; 32];
    argon
        .hash_password_into(pass.as_bytes(), salt, &mut key)
        .map_err(|e| e.to_string())?;
    Ok(XChaCha20Poly1305::new(&key.into()))
}

/// Whether `text` is a sealed wallet file.
pub(crate) fn is_sealed(text: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(text)
        .map(|v| v.get("ciphertext").is_some())
        .unwrap_or(false)
}

impl Sealer {
    /// A sealer with a new random salt.
    pub(crate) fn new(pass: &str) -> Result<Sealer, String> {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let params = (M_COST_KIB, T_COST, P_COST);
        Ok(Sealer {
            cipher: derive(pass, &salt, params)?,
            salt,
            params,
        })
    }

    /// The sealed file text for `plain`.
    pub(crate) fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), plain)
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let sealed = Sealed {
            version: 1,
            kdf: "argon2id".into(),
            m_cost_kib: self.params.0,
            t_cost: self.params.1,
            p_cost: self.params.2,
            salt: hex::encode(self.salt),
            cipher: "xchacha20poly1305".into(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        };
        serde_json::to_string_pretty(&sealed).expect("a struct of strings and integers serialises")
    }
}

/// Opens a sealed file; returns the plaintext and a sealer for saving again.
pub(crate) fn open(text: &str, pass: &str) -> Result<(Vec<u8>, Sealer), OpenError> {
    let bad = |what: &str| OpenError::Malformed(format!("encrypted wallet: bad {what}"));
    let s: Sealed = serde_json::from_str(text).map_err(|e| OpenError::Malformed(e.to_string()))?;
    if s.version != 1 || s.kdf != "argon2id" || s.cipher != "xchacha20poly1305" {
        return Err(bad("format (unknown version, KDF or cipher)"));
    }
    // Refuse parameters that would make opening the file exhaust memory.
    if s.m_cost_kib > 4 * 1024 * 1024 || s.t_cost > 100 || s.p_cost > 64 {
        return Err(bad("key-derivation parameters"));
    }
    let salt: [u8; 16] = hex::decode(&s.salt)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| bad("salt"))?;
    let nonce: [u8; 24] = hex::decode(&s.nonce)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| bad("nonce"))?;
    let ciphertext = hex::decode(&s.ciphertext).map_err(|_| bad("ciphertext"))?;
    let params = (s.m_cost_kib, s.t_cost, s.p_cost);
    let cipher = derive(pass, &salt, params).map_err(OpenError::Malformed)?;
    let plain = cipher
        .decrypt(XNonce::from_slice(&nonce), ciphertext.as_slice())
        .map_err(|_| OpenError::WrongPassphrase)?;
    Ok((
        plain,
        Sealer {
            cipher,
            salt,
            params,
        },
    ))
}
