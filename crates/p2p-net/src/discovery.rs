//! Where the peers this node dials come from: a bounded address book fed
//! by identify, Kademlia, mDNS and the peer store, and the schedule of
//! redials to the bootstrap (`--dest`) peers.
//!
//! The book is in the spirit of Bitcoin Core's `addrman`: entries are
//! bucketed by the network group of whoever told this node about them, so
//! one network's many identities fill one bucket, and picks rotate over
//! the buckets. Addresses that peers claim are never dialled straight
//! away; the host picks from the book when it has an outbound place free.

use crate::addr::{is_peer_listen_address, NetGroup};
use crate::config::{MAX_ADDRS_PER_PEER, REDIAL_CHOSEN_FIRST, REDIAL_CHOSEN_MAX};
use libp2p::{Multiaddr, PeerId};
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Peers kept per source group.
pub const BOOK_PER_SOURCE: usize = 64;
/// Source groups kept; with [`BOOK_PER_SOURCE`], at most 4,096 peers
/// (and the [`crate::persist::MAX_PEERS`] of the store), with
/// [`MAX_ADDRS_PER_PEER`] addresses each.
pub const BOOK_SOURCES: usize = 64;
/// Failed dials after which a peer leaves the book.
pub const BOOK_MAX_FAILURES: u32 = 5;
/// The first wait before a peer whose dial failed is tried again; it
/// doubles with each failure.
const RETRY_FIRST: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Candidate {
    addrs: Vec<Multiaddr>,
    source: NetGroup,
    /// Connected to once: tried first.
    tried: bool,
    failures: u32,
    not_before: Option<Instant>,
}

/// Addresses of peers this node may dial, bounded.
#[derive(Debug, Default)]
pub struct AddressBook {
    entries: HashMap<PeerId, Candidate>,
    /// Each source group's peers, oldest first.
    sources: HashMap<NetGroup, VecDeque<PeerId>>,
    /// The order picks go round the source groups.
    turn: VecDeque<NetGroup>,
}

impl AddressBook {
    /// Peers in the book.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds what `source` says of `peer`'s addresses: at most
    /// [`MAX_ADDRS_PER_PEER`] that this node could dial, newest first.
    /// Returns whether anything was taken.
    pub fn add(
        &mut self,
        peer: PeerId,
        addrs: impl IntoIterator<Item = Multiaddr>,
        source: NetGroup,
    ) -> bool {
        let mut fresh: Vec<Multiaddr> = addrs
            .into_iter()
            .map(|a| crate::addr::transport_address(&a))
            .filter(is_peer_listen_address)
            .take(MAX_ADDRS_PER_PEER)
            .collect();
        quic_first(&mut fresh);
        if fresh.is_empty() {
            return false;
        }
        if let Some(c) = self.entries.get_mut(&peer) {
            for a in fresh.into_iter().rev() {
                if !c.addrs.contains(&a) {
                    c.addrs.insert(0, a);
                }
            }
            c.addrs.truncate(MAX_ADDRS_PER_PEER);
            quic_first(&mut c.addrs);
            return true;
        }
        if !self.sources.contains_key(&source) && self.sources.len() >= BOOK_SOURCES {
            // A full book drops its smallest source group, the oldest of
            // those: many sources of one peer each replace one another,
            // and the sources that told of many peers stay.
            let smallest = self
                .turn
                .iter()
                .min_by_key(|g| self.sources.get(*g).map_or(0, VecDeque::len))
                .cloned();
            if let Some(g) = smallest {
                for p in self.sources.get(&g).cloned().unwrap_or_default() {
                    self.remove(&p);
                }
            }
        }
        // This node's own store (peers that served its sync) has its own,
        // larger bound.
        let cap = if source == NetGroup::Stored {
            crate::persist::MAX_PEERS
        } else {
            BOOK_PER_SOURCE
        };
        if self.sources.get(&source).is_some_and(|v| v.len() >= cap) {
            self.drop_oldest(&source);
        }
        if !self.sources.contains_key(&source) {
            self.turn.push_back(source.clone());
        }
        self.sources
            .entry(source.clone())
            .or_default()
            .push_back(peer);
        self.entries.insert(
            peer,
            Candidate {
                addrs: fresh,
                source,
                tried: false,
                failures: 0,
                not_before: None,
            },
        );
        true
    }

    /// Drops the oldest untried peer of `source`'s group, or its oldest.
    fn drop_oldest(&mut self, source: &NetGroup) {
        let Some(list) = self.sources.get(source) else {
            return;
        };
        let victim = list
            .iter()
            .find(|p| self.entries.get(p).is_some_and(|c| !c.tried))
            .or_else(|| list.front())
            .copied();
        if let Some(p) = victim {
            self.remove(&p);
        }
    }

    /// Forgets `peer` (banned, or failing).
    pub fn remove(&mut self, peer: &PeerId) {
        let Some(c) = self.entries.remove(peer) else {
            return;
        };
        if let Some(list) = self.sources.get_mut(&c.source) {
            list.retain(|p| p != peer);
            if list.is_empty() {
                self.sources.remove(&c.source);
                self.turn.retain(|g| *g != c.source);
            }
        }
    }

    /// A connection to `peer` succeeded.
    pub fn success(&mut self, peer: &PeerId) {
        if let Some(c) = self.entries.get_mut(peer) {
            c.tried = true;
            c.failures = 0;
            c.not_before = None;
        }
    }

    /// A dial to `peer` failed: it waits twice as long each time, and
    /// leaves the book after [`BOOK_MAX_FAILURES`].
    pub fn failure(&mut self, peer: &PeerId, now: Instant) {
        let Some(c) = self.entries.get_mut(peer) else {
            return;
        };
        c.failures += 1;
        if c.failures >= BOOK_MAX_FAILURES {
            self.remove(peer);
            return;
        }
        let wait = RETRY_FIRST * 2u32.saturating_pow(c.failures - 1);
        c.not_before = Some(now + wait.min(REDIAL_CHOSEN_MAX));
    }

    /// A peer to dial, going round the source groups: one that `skip`
    /// does not rule out (connected, banned, of a group already used),
    /// not waiting after a failure, tried ones first within a group. The
    /// peer waits [`REDIAL_CHOSEN_FIRST`] before it can be picked again.
    pub fn pick(
        &mut self,
        now: Instant,
        mut skip: impl FnMut(&PeerId, &Multiaddr) -> bool,
    ) -> Option<(PeerId, Vec<Multiaddr>)> {
        for _ in 0..self.turn.len() {
            let group = self.turn.pop_front()?;
            self.turn.push_back(group.clone());
            let Some(list) = self.sources.get(&group) else {
                continue;
            };
            let ready = |p: &&PeerId| {
                self.entries
                    .get(*p)
                    .is_some_and(|c| c.not_before.is_none_or(|t| t <= now))
            };
            let mut found = None;
            for want_tried in [true, false] {
                found = list.iter().filter(ready).find(|p| {
                    let c = &self.entries[*p];
                    c.tried == want_tried && !skip(p, &c.addrs[0])
                });
                if found.is_some() {
                    break;
                }
            }
            if let Some(p) = found.copied() {
                let c = self.entries.get_mut(&p)?;
                c.not_before = Some(now + REDIAL_CHOSEN_FIRST);
                return Some((p, c.addrs.clone()));
            }
        }
        None
    }
}

/// Orders a peer's addresses QUIC first, keeping the order otherwise: a
/// dial tries them together and QUIC's one-round-trip handshake usually
/// wins; TCP wins where UDP is blocked.
fn quic_first(addrs: &mut [Multiaddr]) {
    addrs.sort_by_key(|a| !crate::addr::is_quic(a));
}

/// Where and when to dial a bootstrap peer again.
#[derive(Debug)]
pub struct Redial {
    /// Its address.
    pub addr: Multiaddr,
    at: Instant,
    wait: Duration,
}

impl Redial {
    /// A bootstrap peer at `addr`, first due after [`REDIAL_CHOSEN_FIRST`].
    pub fn new(addr: Multiaddr, now: Instant) -> Redial {
        Redial {
            addr,
            at: now + REDIAL_CHOSEN_FIRST,
            wait: REDIAL_CHOSEN_FIRST,
        }
    }

    /// Whether it is due; if so, the next attempt waits twice as long, up
    /// to [`REDIAL_CHOSEN_MAX`].
    pub fn due(&mut self, now: Instant) -> bool {
        if self.at > now {
            return false;
        }
        self.at = now + self.wait;
        self.wait = (self.wait * 2).min(REDIAL_CHOSEN_MAX);
        true
    }

    /// The peer's connection closed after `stayed`: not dialled again in
    /// the same second, and from the shortest wait if it had stayed a while.
    pub fn closed(&mut self, stayed: Option<Duration>, now: Instant) {
        if stayed.is_some_and(|s| s >= crate::config::BOOTSTRAP_RELEASE_AFTER) {
            self.wait = REDIAL_CHOSEN_FIRST;
        }
        self.at = now + self.wait;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(i: u16) -> Multiaddr {
        format!("/ip4/198.51.100.{}/tcp/{}", i % 250 + 1, 4000 + i)
            .parse()
            .expect("an address")
    }

    #[test]
    fn one_source_fills_only_its_own_bucket_and_picks_go_round_the_sources() {
        let mut book = AddressBook::default();
        let attacker = NetGroup::V4([203, 0]);
        let honest = NetGroup::V4([192, 0]);
        for i in 0..10_000u16 {
            book.add(PeerId::random(), [addr(i)], attacker.clone());
        }
        assert_eq!(book.len(), BOOK_PER_SOURCE);
        let good = PeerId::random();
        book.add(good, [addr(1)], honest);
        let now = Instant::now();
        let picks: Vec<PeerId> = (0..2)
            .filter_map(|_| book.pick(now, |_, _| false).map(|(p, _)| p))
            .collect();
        assert!(picks.contains(&good), "the honest source gets its turn");
    }

    #[test]
    fn the_book_is_bounded_in_sources_and_addresses() {
        let mut book = AddressBook::default();
        for s in 0..(BOOK_SOURCES as u8 * 2) {
            for i in 0..(BOOK_PER_SOURCE as u16 * 2) {
                let many: Vec<Multiaddr> = (0..50).map(|k| addr(i * 50 + k)).collect();
                book.add(PeerId::random(), many, NetGroup::V4([s, 1]));
            }
        }
        assert!(book.len() <= BOOK_SOURCES * BOOK_PER_SOURCE);
        assert!(book.sources.len() <= BOOK_SOURCES);
        assert!(book
            .entries
            .values()
            .all(|c| c.addrs.len() <= MAX_ADDRS_PER_PEER));
        // Undialable addresses are not taken at all.
        let p = PeerId::random();
        let junk: Multiaddr = "/ip4/0.0.0.0/tcp/1".parse().expect("an address");
        assert!(!book.add(p, [junk], NetGroup::Lan));
    }

    #[test]
    fn failing_peers_wait_longer_each_time_and_then_leave() {
        let mut book = AddressBook::default();
        let p = PeerId::random();
        book.add(p, [addr(3)], NetGroup::Stored);
        let t0 = Instant::now();
        assert_eq!(book.pick(t0, |_, _| false).map(|x| x.0), Some(p));
        // Not picked again at once.
        assert_eq!(book.pick(t0, |_, _| false), None);
        book.failure(&p, t0);
        assert_eq!(book.pick(t0 + Duration::from_secs(1), |_, _| false), None);
        assert!(book
            .pick(t0 + Duration::from_secs(3), |_, _| false)
            .is_some());
        for _ in 1..BOOK_MAX_FAILURES {
            book.failure(&p, t0);
        }
        assert!(book.is_empty());
    }

    #[test]
    fn a_bootstrap_redial_backs_off_and_starts_over_after_a_long_stay() {
        let t0 = Instant::now();
        let mut r = Redial::new(addr(1), t0);
        let s = |n: u32| t0 + REDIAL_CHOSEN_FIRST * n;
        assert!(!r.due(t0));
        assert!(r.due(s(1)));
        // The next attempt waits as long, the one after twice as long.
        assert!(!r.due(s(1) + REDIAL_CHOSEN_FIRST / 2));
        assert!(r.due(s(2)));
        assert!(!r.due(s(3)));
        assert!(r.due(s(4)));
        r.closed(Some(Duration::from_secs(600)), t0);
        assert!(r.due(t0 + REDIAL_CHOSEN_FIRST));
    }
}
