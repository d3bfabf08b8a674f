//! Proof of work: compact targets, targets, work and retargeting.
//!
//! A hash meets a target when, read as a 256-bit big-endian number, it is not
//! above the target. Work is `2^256 / (target + 1)`, the expected number of
//! hashes to find a block, and fork choice adds it up.

use crate::hash::BlockHash;
use primitive_types::U256;
use serde::{Deserialize, Serialize};

/// The easiest target any block may have (Bitcoin regtest's limit).
pub const POW_LIMIT_BITS: CompactTarget = CompactTarget(0x207f_ffff);

/// The compact ("nBits") form of a target, as in Bitcoin block headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CompactTarget(pub u32);

/// A 256-bit target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target(pub U256);

/// Cumulative proof of work, as a 256-bit number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Work(pub U256);

impl CompactTarget {
    /// The compact form of the target that needs `bits` leading zero bits,
    /// i.e. `2^(256 - bits)`, as the Go project defines difficulty.
    pub fn from_leading_zero_bits(bits: u32) -> Option<CompactTarget> {
        if !(1..=255).contains(&bits) {
            return None;
        }
        Some(Target(U256::one() << (256 - bits)).to_compact())
    }

    /// Expands to a target. `None` for a negative, zero or overflowing encoding.
    pub fn to_target(self) -> Option<Target> {
        let exponent = self.0 >> 24;
        let mantissa = self.0 & 0x007f_ffff;
        if self.0 & 0x0080_0000 != 0 || mantissa == 0 {
            return None;
        }
        let value = if exponent <= 3 {
            U256::from(mantissa >> (8 * (3 - exponent)))
        } else {
            let shift = 8 * (exponent - 3);
            if shift > 255 - 23 + 1 && (U256::from(mantissa).bits() as u32 + shift) > 256 {
                return None;
            }
            U256::from(mantissa) << shift
        };
        if value.is_zero() {
            None
        } else {
            Some(Target(value))
        }
    }
}

impl std::fmt::Display for CompactTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

impl Target {
    /// The easiest target allowed.
    pub fn pow_limit() -> Target {
        POW_LIMIT_BITS
            .to_target()
            .expect("the pow limit is a valid compact target")
    }

    /// Four times this target (four times easier), at most the limit: the
    /// most one retarget can ease the difficulty.
    pub fn times_four_capped(self) -> Target {
        let limit = Target::pow_limit();
        match self.0.checked_mul(U256::from(4u8)) {
            Some(v) if v < limit.0 => Target(v),
            _ => limit,
        }
    }

    /// The compact form (rounding down, as Bitcoin does).
    pub fn to_compact(self) -> CompactTarget {
        // bits() is at most 256, so the byte count fits in u32.
        let mut size = (self.0.bits() as u32).div_ceil(8);
        let mut compact: u32 = if size <= 3 {
            (self.0.low_u64() << (8 * (3 - size))) as u32 // at most 24 significant bits
        } else {
            (self.0 >> (8 * (size - 3))).low_u32()
        };
        if compact & 0x0080_0000 != 0 {
            compact >>= 8;
            size += 1;
        }
        CompactTarget(compact | (size << 24))
    }

    /// True when `hash`, read big-endian, is at or below this target.
    pub fn is_met_by(&self, hash: &BlockHash) -> bool {
        U256::from_big_endian(&hash.0) <= self.0
    }

    /// The work a block with this target represents: `2^256 / (target + 1)`.
    pub fn work(&self) -> Work {
        // 2^256 / (t + 1) == (~t / (t + 1)) + 1, which avoids needing 257 bits.
        Work((!self.0 / (self.0 + U256::one())) + U256::one())
    }
}

impl Work {
    /// Adds, saturating at the maximum (unreachable in practice).
    pub fn saturating_add(self, other: Work) -> Work {
        Work(self.0.saturating_add(other.0))
    }

    /// Big-endian bytes, so byte order is numeric order.
    pub fn to_be_bytes(&self) -> [u8; 32] {
        self.0.to_big_endian()
    }

    /// From big-endian bytes.
    pub fn from_be_bytes(b: &[u8; 32]) -> Work {
        Work(U256::from_big_endian(b))
    }
}

impl std::fmt::Display for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Bitcoin's retarget: scale the old target by actual/expected timespan,
/// clamped to a factor of four either way, and never easier than the limit.
pub fn retarget(old: CompactTarget, actual_timespan: u64, expected_timespan: u64) -> CompactTarget {
    let expected = expected_timespan.max(1);
    let actual = actual_timespan
        .clamp(expected / 4, expected.saturating_mul(4))
        .max(1);
    let Some(old) = old.to_target() else {
        return POW_LIMIT_BITS;
    };
    let limit = Target::pow_limit();
    // old <= 2^255, so multiplying by a u64 may overflow: divide first when needed.
    let new = match old.0.checked_mul(U256::from(actual)) {
        Some(v) => v / U256::from(expected),
        None => (old.0 / U256::from(expected)).saturating_mul(U256::from(actual)),
    };
    let new = if new > limit.0 { limit.0 } else { new };
    Target(new).to_compact()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_default_difficulty() {
        let c = CompactTarget::from_leading_zero_bits(12).unwrap();
        assert_eq!(c, CompactTarget(0x1f10_0000));
        assert_eq!(c.to_target().unwrap().0, U256::one() << 244);
        let mut h = [0xffu8; 32];
        h[0] = 0x00;
        h[1] = 0x0f;
        assert!(c.to_target().unwrap().is_met_by(&BlockHash(h)));
        h[1] = 0x10;
        assert!(!c.to_target().unwrap().is_met_by(&BlockHash(h)));
    }

    #[test]
    fn bitcoin_compact_values() {
        // Bitcoin's genesis bits and its known work (0x100010001).
        let t = CompactTarget(0x1d00_ffff).to_target().unwrap();
        assert_eq!(t.to_compact(), CompactTarget(0x1d00_ffff));
        assert_eq!(t.work().0, U256::from(0x1_0001_0001u64));
        assert!(CompactTarget(0x0180_0000).to_target().is_none(), "negative");
        assert!(CompactTarget(0x2100_0001).to_target().is_some());
        assert!(CompactTarget(0xff12_3456).to_target().is_none(), "overflow");
    }

    #[test]
    fn retarget_clamps() {
        let old = CompactTarget(0x1d00_ffff);
        let t = |c: CompactTarget| c.to_target().unwrap().0;
        assert_eq!(t(retarget(old, 100, 100)), t(old));
        assert_eq!(t(retarget(old, 1, 100)), t(old) / 4);
        let quarter = t(retarget(old, 50, 100));
        assert!(quarter < t(old) && quarter > t(old) / 3);
        assert_eq!(t(retarget(POW_LIMIT_BITS, 1000, 100)), t(POW_LIMIT_BITS));
    }
}
