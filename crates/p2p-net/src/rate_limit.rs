//! Per-peer limits on inbound requests.

use std::time::{Duration, Instant};

/// Requests a peer may make in a burst.
pub const REQUEST_BURST: u32 = 100;
/// Requests per second a peer may sustain.
pub const REQUESTS_PER_SEC: u32 = 50;
/// Requests over the rate limit after which the peer is reported as misbehaving.
pub const RATE_STRIKES_TO_BAN: u32 = 200;
/// Strikes forgiven per second: an honest peer that bursts now and then
/// never reaches [`RATE_STRIKES_TO_BAN`], a flooding one does.
pub const STRIKE_DECAY_PER_SEC: u32 = 2;
/// How long a disconnected peer's rate state is kept: the ban period, so a
/// reconnect neither refills its bucket nor clears its strikes.
pub const RATE_STATE_KEPT: Duration = Duration::from_secs(600);

/// A per-peer token bucket for inbound requests.
#[derive(Debug)]
pub(crate) struct Bucket {
    tokens: f64,
    pub(crate) last: Instant,
    pub(crate) strikes: u32,
    /// When strikes were last decayed.
    decayed: Instant,
}

impl Bucket {
    pub(crate) fn new(now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(REQUEST_BURST),
            last: now,
            strikes: 0,
            decayed: now,
        }
    }

    /// Takes a token; false when the peer is over its rate.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let refill = now.duration_since(self.last).as_secs_f64() * f64::from(REQUESTS_PER_SEC);
        self.tokens = (self.tokens + refill).min(f64::from(REQUEST_BURST));
        self.last = now;
        let whole_secs = now.duration_since(self.decayed).as_secs();
        if whole_secs > 0 {
            let forgiven = u32::try_from(whole_secs)
                .unwrap_or(u32::MAX)
                .saturating_mul(STRIKE_DECAY_PER_SEC);
            self.strikes = self.strikes.saturating_sub(forgiven);
            self.decayed += Duration::from_secs(whole_secs);
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.strikes += 1;
            false
        }
    }
}

#[cfg(test)]
mod rate_tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_sustained_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        let burst = (0..REQUEST_BURST * 2).filter(|_| b.take(t0)).count();
        assert_eq!(burst, REQUEST_BURST as usize);
        assert_eq!(b.strikes, REQUEST_BURST);
        // One second later, the sustained rate is available again.
        let t1 = t0 + Duration::from_secs(1);
        let more = (0..REQUEST_BURST).filter(|_| b.take(t1)).count();
        assert_eq!(more, REQUESTS_PER_SEC as usize);
    }

    #[test]
    fn strikes_decay_so_an_occasional_burst_is_never_banned() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        // Every minute, a burst of twice the bucket: 100 strikes each time.
        let mut t = t0;
        for _ in 0..60 {
            for _ in 0..REQUEST_BURST * 2 {
                b.take(t);
            }
            assert!(b.strikes < RATE_STRIKES_TO_BAN, "{}", b.strikes);
            t += Duration::from_secs(60);
        }
        // A flood within a few seconds still reaches the ban.
        let mut f = Bucket::new(t0);
        for i in 0..(REQUEST_BURST + RATE_STRIKES_TO_BAN + 10) {
            f.take(t0 + Duration::from_micros(u64::from(i)));
        }
        assert!(f.strikes >= RATE_STRIKES_TO_BAN, "{}", f.strikes);
    }
}
