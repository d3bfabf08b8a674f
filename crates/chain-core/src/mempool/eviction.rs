//! What leaves a full pool: the packages (a transaction with its
//! descendants) with the lowest fee rate, taken from the ordered index, so
//! each costs O(log n); and the rolling minimum fee rate that each
//! eviction raises (Bitcoin Core's `TrimToSize` and `GetMinFee`).

use super::index::Rate;
use super::{FeeRate, Mempool, INCREMENTAL_RELAY_FEE, ROLLING_FEE_HALFLIFE_SECS};
use crate::amount::Amount;
use crate::hash::Txid;
use std::collections::HashSet;

/// The rate a newcomer must pay after evictions: raised to each evicted
/// package's rate plus [`INCREMENTAL_RELAY_FEE`], then halved every
/// half-life once a block has come since the last rise, and back to 0 once
/// under half the incremental rate.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RollingMinFee {
    /// Per 1,000 bytes.
    rate: f64,
    /// When it last decayed.
    at: u64,
    /// Whether a block came since it last rose.
    block_since_rise: bool,
}

impl RollingMinFee {
    /// The minimum at `now` for a pool of `bytes` of `max_bytes`.
    pub fn current(&mut self, now: u64, bytes: usize, max_bytes: usize) -> FeeRate {
        if !self.block_since_rise || self.rate == 0.0 {
            return FeeRate(self.rate.ceil() as u64);
        }
        if now > self.at.saturating_add(10) {
            let mut halflife = ROLLING_FEE_HALFLIFE_SECS as f64;
            if bytes < max_bytes / 4 {
                halflife /= 4.0;
            } else if bytes < max_bytes / 2 {
                halflife /= 2.0;
            }
            self.rate /= 2f64.powf((now - self.at) as f64 / halflife);
            self.at = now;
            if self.rate < INCREMENTAL_RELAY_FEE.0 as f64 / 2.0 {
                self.rate = 0.0;
                return FeeRate(0);
            }
        }
        FeeRate((self.rate.ceil() as u64).max(INCREMENTAL_RELAY_FEE.0))
    }

    /// An evicted package's rate.
    pub fn evicted(&mut self, package: Rate) {
        let r = package.fee as f64 * 1000.0 / package.size.max(1) as f64
            + INCREMENTAL_RELAY_FEE.0 as f64;
        if r > self.rate {
            self.rate = r;
            self.block_since_rise = false;
        }
    }

    /// A block came at `now`.
    pub fn block(&mut self, now: u64) {
        self.at = now;
        self.block_since_rise = true;
    }
}

/// Packages to evict for a newcomer, in the order chosen, each with the
/// rate it had.
pub(super) type Evictions = Vec<(HashSet<Txid>, Rate)>;

/// Why no eviction plan serves the newcomer: it does not pay more than the
/// cheapest package, which has this rate.
pub(super) struct Outbid(pub Rate);

impl Outbid {
    /// The fee `size` bytes must exceed to beat it.
    pub fn needed(&self, size: usize) -> Amount {
        FeeRate::of(Amount(self.0.fee), self.0.size).fee_for(size)
    }
}

impl Mempool {
    /// The packages to evict to free `need` bytes for a newcomer paying
    /// `fee` over `size`, lowest rate first, never one in `keep` (the
    /// newcomer's ancestors) or already `gone` (what it replaces). Every
    /// package must pay a lower rate than the newcomer. Visits only the
    /// packages it takes and the ones it skips.
    pub(super) fn plan_eviction(
        &mut self,
        mut need: usize,
        fee: u64,
        size: usize,
        keep: &HashSet<Txid>,
        gone: &mut HashSet<Txid>,
    ) -> Result<Evictions, Outbid> {
        let mut out = Vec::new();
        let mut visits = 0u64;
        let mut result = Ok(());
        for (rate, seq) in &self.index.by_descendants {
            if need == 0 {
                break;
            }
            visits += 1;
            let Some(txid) = self.by_seq.get(&seq.0) else {
                continue;
            };
            if gone.contains(txid) || keep.contains(txid) {
                continue;
            }
            if !super::higher_rate(fee, size, rate.fee, rate.size) {
                result = Err(Outbid(*rate));
                break;
            }
            let package = self.with_descendants(txid);
            for t in &package {
                if gone.insert(*t) {
                    need = need.saturating_sub(self.entries.get(t).map_or(0, |e| e.size));
                }
            }
            out.push((package, *rate));
        }
        self.work.eviction_visits += visits;
        result.map(|()| out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minimum_rises_with_evictions_and_decays_after_blocks() {
        let mut m = RollingMinFee::default();
        assert_eq!(m.current(0, 100, 100), FeeRate(0));
        m.evicted(Rate {
            fee: 10,
            size: 1_000,
        });
        assert_eq!(m.current(0, 100, 100), FeeRate(11));
        // No block yet: no decay, however long.
        assert_eq!(
            m.current(10 * ROLLING_FEE_HALFLIFE_SECS, 100, 100),
            FeeRate(11)
        );
        m.block(0);
        let h = ROLLING_FEE_HALFLIFE_SECS;
        assert_eq!(m.current(h, 100, 100), FeeRate(6), "11 halved is 5.5");
        // A pool under a quarter full decays four times as fast.
        assert_eq!(
            m.current(h + h / 4, 10, 100),
            FeeRate(3),
            "5.5 halved is 2.75"
        );
        assert_eq!(
            m.current(h + h, 10, 100),
            FeeRate(0),
            "under half the incremental rate"
        );
    }
}
