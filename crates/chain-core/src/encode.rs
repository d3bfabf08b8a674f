//! The consensus encoding of transactions and blocks, written field by field.
//!
//! Txids and the Merkle root are computed over these bytes, so the layout is
//! part of the consensus rules and does not depend on any serialisation
//! library's choices. Every integer is fixed-width little-endian; counts and
//! byte-string lengths are Bitcoin's CompactSize:
//!
//! | value | bytes |
//! |---|---|
//! | 0 to 252 | the value, 1 byte |
//! | 253 to 0xffff | `0xfd`, then u16 |
//! | 0x10000 to 0xffff_ffff | `0xfe`, then u32 |
//! | above | `0xff`, then u64 |
//!
//! Only the shortest form is accepted, and nothing may follow the object, so
//! each transaction and block has exactly one encoding. `docs/protocol.md`
//! gives the layouts byte by byte.
//!
//! Transactions and blocks also implement serde as their consensus bytes (a
//! byte string), so a message that carries one carries exactly these bytes.
//! Headers serialise as their fixed 92-byte layout.

use crate::transaction::DecodeError;

/// Reads consensus-encoded fields from a byte slice, refusing truncation and
/// non-canonical sizes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, naming `what` in its errors.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            what,
        }
    }

    fn malformed(&self, reason: String) -> DecodeError {
        DecodeError::Malformed {
            what: self.what,
            reason,
        }
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.malformed(format!(
                "ends after {} bytes, {} more needed at offset {}",
                self.bytes.len(),
                n - self.remaining(),
                self.pos
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A CompactSize in its shortest form.
    pub fn compact_size(&mut self) -> Result<u64, DecodeError> {
        let (n, min) = match self.array::<1>()?[0] {
            0xfd => (u64::from(self.u16()?), 0xfd),
            0xfe => (u64::from(self.u32()?), 0x1_0000),
            0xff => (self.u64()?, 0x1_0000_0000),
            b => return Ok(u64::from(b)),
        };
        if n < min {
            return Err(DecodeError::NonCanonical(self.what));
        }
        Ok(n)
    }

    /// A count of elements that each take at least `min_size` bytes: refused
    /// when the bytes left cannot hold that many, so nothing is allocated
    /// for a count a short input claims.
    pub fn count(&mut self, min_size: usize, of: &str) -> Result<usize, DecodeError> {
        let n = self.compact_size()?;
        let fits = usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(min_size) <= self.remaining());
        fits.ok_or_else(|| {
            self.malformed(format!(
                "claims {n} {of}, more than its remaining {} bytes can hold",
                self.remaining()
            ))
        })
    }

    /// A byte string: its CompactSize length, then the bytes.
    pub fn var_bytes(&mut self, of: &str) -> Result<Vec<u8>, DecodeError> {
        let n = self.count(1, of)?;
        Ok(self.take(n)?.to_vec())
    }

    /// Refuses bytes left over.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(DecodeError::Trailing(self.what));
        }
        Ok(())
    }
}

/// Refuses more than `limit` bytes before anything is decoded.
pub fn check_limit(bytes: &[u8], limit: usize, what: &'static str) -> Result<(), DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            what,
            size: bytes.len(),
            limit,
        });
    }
    Ok(())
}

/// Appends `n` as a CompactSize.
pub fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        // Each arm's range makes the narrowing lossless.
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// The length of `n` as a CompactSize.
pub fn compact_size_len(n: u64) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Appends a byte string: its CompactSize length, then the bytes.
pub fn write_var_bytes(out: &mut Vec<u8>, b: &[u8]) {
    write_compact_size(out, b.len() as u64); // usize -> u64 is lossless on every supported target
    out.extend_from_slice(b);
}

/// The encoded length of a byte string of `len` bytes.
pub fn var_bytes_len(len: usize) -> usize {
    compact_size_len(len as u64) + len // lossless, as above
}

/// Implements serde for a type as its consensus bytes: a byte string in
/// binary formats, a hex string in human-readable ones.
macro_rules! serde_as_consensus_bytes {
    ($t:ty, $expecting:literal) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let bytes = self.encode();
                if s.is_human_readable() {
                    s.serialize_str(&hex::encode(bytes))
                } else {
                    s.serialize_bytes(&bytes)
                }
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $t;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<$t, E> {
                        <$t>::decode(v).map_err(E::custom)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$t, E> {
                        let bytes = hex::decode(v).map_err(E::custom)?;
                        <$t>::decode(&bytes).map_err(E::custom)
                    }
                }
                if d.is_human_readable() {
                    d.deserialize_str(V)
                } else {
                    d.deserialize_bytes(V)
                }
            }
        }
    };
}
pub(crate) use serde_as_consensus_bytes;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_size_forms_and_canonical_check() {
        for (n, len) in [
            (0u64, 1),
            (252, 1),
            (253, 3),
            (0xffff, 3),
            (0x1_0000, 5),
            (0xffff_ffff, 5),
            (0x1_0000_0000, 9),
            (u64::MAX, 9),
        ] {
            let mut out = Vec::new();
            write_compact_size(&mut out, n);
            assert_eq!(out.len(), len, "{n}");
            assert_eq!(compact_size_len(n), len);
            let mut r = Reader::new(&out, "test");
            assert_eq!(r.compact_size(), Ok(n));
            assert!(r.finish().is_ok());
        }
        // 0xfd 0x10 0x00 is 16, which fits in one byte: not canonical.
        for overlong in [
            &[0xfd, 0x10, 0x00][..],
            &[0xfe, 0xff, 0xff, 0x00, 0x00][..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0][..],
        ] {
            assert_eq!(
                Reader::new(overlong, "test").compact_size(),
                Err(DecodeError::NonCanonical("test"))
            );
        }
    }

    #[test]
    fn counts_beyond_the_remaining_bytes_are_refused() {
        // Claims 1,000 elements of 28 bytes in 10 bytes.
        let mut b = vec![0xfd, 0xe8, 0x03];
        b.extend_from_slice(&[0; 10]);
        let mut r = Reader::new(&b, "test");
        assert!(matches!(
            r.count(28, "outputs"),
            Err(DecodeError::Malformed { .. })
        ));
        let mut r = Reader::new(&[3, 1, 2], "test");
        assert!(r.var_bytes("bytes").is_err());
        assert!(Reader::new(&[1, 2], "test").finish().is_err());
    }
}
