//! The free-relay allowance: token buckets of bytes a minute, one all
//! peers share and one for each peer at 1/[`PEER_FREE_SHARE`] of it, so
//! one peer cannot spend everyone's.

use super::{MAX_FREE_PEERS, PEER_FREE_SHARE};
use std::collections::HashMap;

use super::Source;

/// A bucket of bytes, full at `per_minute`, refilled continuously.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: u64,
}

impl Bucket {
    fn full(per_minute: usize, now: u64) -> Bucket {
        Bucket {
            tokens: per_minute as f64,
            at: now,
        }
    }

    /// Its tokens at `now`.
    fn refill(&mut self, per_minute: usize, now: u64) {
        let elapsed = now.saturating_sub(self.at) as f64;
        self.tokens = (self.tokens + elapsed * per_minute as f64 / 60.0).min(per_minute as f64);
        self.at = self.at.max(now);
    }
}

/// Whose allowance ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Spent {
    /// The peer's own.
    Peer(usize),
    /// The one all share.
    Shared(usize),
}

#[derive(Clone, Debug)]
pub(super) struct FreeRelay {
    per_minute: usize,
    shared: Bucket,
    peers: HashMap<Source, Bucket>,
}

impl FreeRelay {
    pub fn new(per_minute: usize) -> FreeRelay {
        FreeRelay {
            per_minute,
            shared: Bucket::full(per_minute, 0),
            peers: HashMap::new(),
        }
    }

    fn per_peer(&self) -> usize {
        self.per_minute / PEER_FREE_SHARE
    }

    /// Whether `size` free bytes from `from` (`None`: this node itself) fit
    /// at `now`; the buckets are refilled, not charged.
    pub fn check(&mut self, from: Option<Source>, size: usize, now: u64) -> Result<(), Spent> {
        self.shared.refill(self.per_minute, now);
        if let Some(p) = from {
            let per_peer = self.per_peer();
            if let Some(b) = self.peers.get_mut(&p) {
                b.refill(per_peer, now);
                if b.tokens < size as f64 {
                    return Err(Spent::Peer(per_peer));
                }
            } else if per_peer < size {
                return Err(Spent::Peer(per_peer));
            }
        }
        if self.shared.tokens < size as f64 {
            return Err(Spent::Shared(self.per_minute));
        }
        Ok(())
    }

    /// Charges `size` bytes to the shared bucket and `from`'s.
    pub fn charge(&mut self, from: Option<Source>, size: usize, now: u64) {
        self.shared.tokens -= size as f64;
        let Some(p) = from else {
            return;
        };
        let per_peer = self.per_peer();
        if !self.peers.contains_key(&p) && self.peers.len() >= MAX_FREE_PEERS {
            self.forget_one(now);
        }
        let b = self
            .peers
            .entry(p)
            .or_insert_with(|| Bucket::full(per_peer, now));
        b.refill(per_peer, now);
        b.tokens -= size as f64;
    }

    /// Makes room in the peer table: every bucket full again goes (it is
    /// the same as none), or else the least recently charged.
    fn forget_one(&mut self, now: u64) {
        let per_peer = self.per_peer();
        self.peers.retain(|_, b| {
            let mut b = *b;
            b.refill(per_peer, now);
            b.tokens < per_peer as f64
        });
        if self.peers.len() >= MAX_FREE_PEERS {
            if let Some(oldest) = self.peers.iter().min_by_key(|(_, b)| b.at).map(|(p, _)| *p) {
                self.peers.remove(&oldest);
            }
        }
    }

    /// Peers with a bucket of their own remembered.
    #[cfg(test)]
    pub fn peers(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_peer_has_its_own_bucket_under_the_shared_one() {
        let mut f = FreeRelay::new(3_000);
        let (a, b) = (Some(Source(1)), Some(Source(2)));
        assert_eq!(f.check(a, 1_000, 0), Ok(()));
        f.charge(a, 1_000, 0);
        assert_eq!(f.check(a, 1, 0), Err(Spent::Peer(1_000)));
        assert_eq!(f.check(b, 1_000, 0), Ok(()));
        f.charge(b, 1_000, 0);
        f.charge(None, 1_000, 0);
        assert_eq!(f.check(Some(Source(3)), 1, 0), Err(Spent::Shared(3_000)));
        // Twenty seconds refill a third of each.
        assert_eq!(f.check(a, 333, 20), Ok(()));
    }

    #[test]
    fn the_peer_table_is_bounded() {
        let mut f = FreeRelay::new(1_000_000_000);
        for i in 0..(MAX_FREE_PEERS as u64 + 10) {
            f.charge(Some(Source(i)), 10, 0);
        }
        assert!(f.peers() <= MAX_FREE_PEERS);
    }
}
