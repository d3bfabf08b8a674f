//! The bookkeeping of one download: which block is asked of whom, what
//! arrived, what the window allows, and when a late source's blocks move
//! to others. No I/O: the sync (`super::sync`) drives it.

use super::sync::{
    BUFFER_BYTES, ERROR_BACKOFF, MIN_STALL, PER_PEER, STALL_FACTOR, STALL_TIMEOUT, TIMED_ANSWERS,
    WINDOW,
};
use super::DELIVERY_DEADLINE;
use chain_core::BlockHash;
use p2p_proto::{BlockBytes, Response};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// What an answer to a `GetData` was.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Blocks, a cut-short reply or a refusal: nothing to hold against it.
    Fine,
    /// No answer within [`DELIVERY_DEADLINE`].
    Late,
    /// It held this many blocks that were not asked of it.
    Unasked(usize),
}

/// The bookkeeping of one download: which block is asked of whom, what
/// arrived, and what the window allows. No I/O: the sync drives it.
pub(crate) struct Download<P> {
    hashes: Vec<BlockHash>,
    index: HashMap<BlockHash, usize>,
    /// Not yet asked of anyone, lowest first.
    queue: BTreeSet<usize>,
    /// Asked, and of whom.
    assigned: HashMap<usize, P>,
    /// Peers with a request out, and since when.
    busy: HashMap<P, Instant>,
    /// Arrived, waiting for their parents, with their senders and sizes.
    ready: HashMap<usize, (BlockBytes, P, usize)>,
    ready_bytes: usize,
    /// Peers that lack blocks, refused or failed: not asked again here.
    lacking: HashSet<P>,
    /// Peers whose blocks were moved for holding up the window.
    stalled: HashSet<P>,
    /// Peers that answered with an error, until when they are left alone.
    backoff: HashMap<P, Instant>,
    stall_after: Duration,
    /// How long recent answers with blocks took, newest last.
    answer_times: std::collections::VecDeque<Duration>,
    /// The next block to connect.
    next: usize,
}

impl<P: Copy + Eq + std::hash::Hash> Download<P> {
    /// The hash of the download's block `i`.
    pub(crate) fn hash_at(&self, i: usize) -> BlockHash {
        self.hashes[i]
    }

    pub(crate) fn new(hashes: Vec<BlockHash>) -> Self {
        Download {
            index: hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect(),
            queue: (0..hashes.len()).collect(),
            hashes,
            assigned: HashMap::new(),
            busy: HashMap::new(),
            ready: HashMap::new(),
            ready_bytes: 0,
            lacking: HashSet::new(),
            stalled: HashSet::new(),
            backoff: HashMap::new(),
            stall_after: STALL_TIMEOUT,
            answer_times: std::collections::VecDeque::new(),
            next: 0,
        }
    }

    /// Whether a peer that answered with an error is only pausing.
    pub(crate) fn pausing(&self, now: Instant) -> bool {
        self.backoff
            .iter()
            .any(|(p, t)| *t > now && !self.lacking.contains(p))
    }

    /// Whether the next block to hand on has arrived.
    pub(crate) fn next_is_ready(&self) -> bool {
        self.ready.contains_key(&self.next)
    }

    pub(crate) fn done(&self) -> bool {
        self.next >= self.hashes.len()
    }

    /// Whether `hash` is one of this download's blocks.
    pub(crate) fn holds(&self, hash: &BlockHash) -> bool {
        self.index.contains_key(hash)
    }

    /// Peers not to ask in this download.
    pub(crate) fn excluded(&self) -> HashSet<P> {
        self.lacking.union(&self.stalled).copied().collect()
    }

    /// Up to [`PER_PEER`] blocks for idle peer `p` inside the window, or
    /// `None` when it is busy, the window is full or nothing is left.
    pub(crate) fn take_work(&mut self, p: P, now: Instant) -> Option<Vec<usize>> {
        if self.busy.contains_key(&p) || self.backoff.get(&p).is_some_and(|t| *t > now) {
            return None;
        }
        // Past the byte budget only the block the window waits for is asked,
        // so the buffer drains and the download never deadlocks.
        let end = if self.ready_bytes >= BUFFER_BYTES {
            self.next + 1
        } else {
            self.next + WINDOW
        };
        let take: Vec<usize> = self
            .queue
            .iter()
            .copied()
            .take_while(|i| *i < end)
            .take(PER_PEER)
            .collect();
        if take.is_empty() {
            return None;
        }
        for i in &take {
            self.queue.remove(i);
            self.assigned.insert(*i, p);
        }
        self.busy.insert(p, now);
        Some(take)
    }

    /// Takes in `p`'s answer to the request for `asked`. Blocks still
    /// assigned to `p` that did not come go back to the queue; blocks that
    /// were moved to another peer meanwhile are kept if they came first.
    pub(crate) fn take_answer(
        &mut self,
        p: P,
        asked: &[usize],
        answer: Option<Result<Response, String>>,
        now: Instant,
    ) -> Taken {
        let asked_at = self.busy.remove(&p);
        let mut outcome = Taken::Fine;
        let mut delivered = 0usize;
        match answer {
            None => {
                self.lacking.insert(p);
                outcome = Taken::Late;
            }
            Some(Ok(Response::Blocks { blocks, not_found })) => {
                let mut unasked = 0usize;
                for b in blocks {
                    // The hash comes from the header bytes; the body is
                    // decoded and checked when the block is connected.
                    let found = b.hash().ok().and_then(|h| self.index.get(&h).copied());
                    match found {
                        Some(i) if asked.contains(&i) => {
                            delivered += 1;
                            if i >= self.next && !self.ready.contains_key(&i) {
                                if self.assigned.get(&i) == Some(&p) {
                                    self.assigned.remove(&i);
                                }
                                self.queue.remove(&i);
                                let size = b.len();
                                self.ready_bytes += size;
                                self.ready.insert(i, (b, p, size));
                            }
                        }
                        _ => unasked += 1,
                    }
                }
                if delivered > 0 {
                    if let Some(t) = asked_at {
                        if self.answer_times.len() >= TIMED_ANSWERS {
                            self.answer_times.pop_front();
                        }
                        self.answer_times
                            .push_back(now.saturating_duration_since(t));
                    }
                }
                if unasked > 0 {
                    self.lacking.insert(p);
                    outcome = Taken::Unasked(unasked);
                } else if !not_found.is_empty() || delivered == 0 {
                    // A reply cut short for size is not lacking: the rest
                    // is asked again.
                    self.lacking.insert(p);
                }
            }
            Some(Ok(Response::Error { .. })) => {
                // Busy or rate limited: transient, so only a pause.
                self.backoff.insert(p, Instant::now() + ERROR_BACKOFF);
            }
            Some(_) => {
                self.lacking.insert(p);
            }
        }
        for i in asked {
            if self.assigned.get(i) == Some(&p) {
                self.assigned.remove(i);
                if *i >= self.next && !self.ready.contains_key(i) {
                    self.queue.insert(*i);
                }
            }
        }
        outcome
    }

    /// When the next block to connect has been asked of a peer for longer
    /// than the stall timeout and there is another source, moves every
    /// block asked of that peer back to the queue and leaves the peer out
    /// of this download. Returns the peer.
    pub(crate) fn reassign_stalled(&mut self, now: Instant, sources: &[P]) -> Option<P> {
        let p = *self.assigned.get(&self.next)?;
        if !sources.iter().any(|q| *q != p) {
            return None;
        }
        let since = *self.busy.get(&p)?;
        if now.duration_since(since) < self.stall_limit() {
            return None;
        }
        let moved: Vec<usize> = self
            .assigned
            .iter()
            .filter(|(_, q)| **q == p)
            .map(|(i, _)| *i)
            .collect();
        for i in moved {
            self.assigned.remove(&i);
            self.queue.insert(i);
        }
        self.stalled.insert(p);
        self.stall_after = (self.stall_after * 2).min(DELIVERY_DEADLINE);
        Some(p)
    }

    /// A peer whose copy of a block was bad: not asked again here, and
    /// nothing it delivered is connected (its blocks are asked again).
    pub(crate) fn refused(&mut self, p: P) {
        self.lacking.insert(p);
        let theirs: Vec<usize> = self
            .ready
            .iter()
            .filter(|(_, (_, q, _))| *q == p)
            .map(|(i, _)| *i)
            .collect();
        for i in theirs {
            if let Some((_, _, size)) = self.ready.remove(&i) {
                self.ready_bytes -= size;
                self.queue.insert(i);
            }
        }
    }

    /// Hands blocks from `next` on out again: a connecting task stopped at
    /// `next`, and what it held after that is lost. Blocks still waiting
    /// here, or asked of someone, stay as they are.
    pub(crate) fn rewind(&mut self, next: usize) {
        for i in next..self.next.max(next) {
            if !self.ready.contains_key(&i) && !self.assigned.contains_key(&i) {
                self.queue.insert(i);
            }
        }
        self.next = next.min(self.next);
    }

    /// How long the block the window waits for may be in flight now.
    pub(crate) fn stall_limit(&self) -> Duration {
        if self.answer_times.is_empty() {
            return self.stall_after;
        }
        let mut times: Vec<Duration> = self.answer_times.iter().copied().collect();
        times.sort_unstable();
        let median = times[times.len() / 2];
        (median * STALL_FACTOR).clamp(MIN_STALL, self.stall_after)
    }

    /// When no peer is left, gives the stalled ones another chance.
    pub(crate) fn forgive_stalled(&mut self) -> bool {
        let any = !self.stalled.is_empty();
        self.stalled.clear();
        any && !self.queue.is_empty()
    }

    /// The next block to connect, once it arrived.
    pub(crate) fn pop_ready(&mut self) -> Option<(BlockBytes, P)> {
        let (b, p, size) = self.ready.remove(&self.next)?;
        self.ready_bytes -= size;
        self.next += 1;
        Some((b, p))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chain_core::test_utils::{chain_of, easy_params, genesis};
    use chain_core::{Block, PubkeyHash};

    fn blocks(n: usize) -> Vec<Block> {
        let p = easy_params();
        let g = genesis(&p, PubkeyHash([1; 20]));
        chain_of(&p, &g, n, PubkeyHash([1; 20])).split_off(1)
    }

    /// A time for an answer: now, so it is after every request.
    fn at() -> Instant {
        Instant::now()
    }

    fn answer(bs: &[Block], which: &[usize]) -> Option<Result<Response, String>> {
        Some(Ok(Response::Blocks {
            blocks: which.iter().map(|i| BlockBytes::from(&bs[*i])).collect(),
            not_found: vec![],
        }))
    }

    #[test]
    fn work_is_handed_out_inside_the_window_one_request_per_peer() {
        let bs = blocks(40);
        let mut dl: Download<u8> = Download::new(bs.iter().map(Block::hash).collect());
        let t = Instant::now();
        let a = dl.take_work(1, t).unwrap();
        assert_eq!(a, (0..PER_PEER).collect::<Vec<_>>());
        assert_eq!(dl.take_work(1, t), None, "one request per peer");
        let b = dl.take_work(2, t).unwrap();
        assert_eq!(b[0], PER_PEER);
        // Peer 2 answers first: nothing connects until block 0 is in.
        assert_eq!(dl.take_answer(2, &b, answer(&bs, &b), at()), Taken::Fine);
        assert!(dl.pop_ready().is_none());
        // Peer 1 sends only half (a reply cut short): the rest is queued again.
        let half: Vec<usize> = a[..8].to_vec();
        assert_eq!(dl.take_answer(1, &a, answer(&bs, &half), at()), Taken::Fine);
        let mut connected = 0;
        while dl.pop_ready().is_some() {
            connected += 1;
        }
        assert_eq!(connected, 8, "in order, up to the first gap");
        assert_eq!(dl.take_work(1, t).unwrap()[0], 8);
    }

    #[test]
    fn blocks_nobody_asked_for_and_missing_blocks_are_told_apart() {
        let bs = blocks(20);
        let mut dl: Download<u8> = Download::new(bs[..10].iter().map(Block::hash).collect());
        let t = Instant::now();
        let a = dl.take_work(1, t).unwrap();
        // Block 15 is not in the download at all.
        let reply = Some(Ok(Response::Blocks {
            blocks: vec![BlockBytes::from(&bs[0]), BlockBytes::from(&bs[15])],
            not_found: vec![],
        }));
        assert_eq!(dl.take_answer(1, &a, reply, at()), Taken::Unasked(1));
        assert!(dl.excluded().contains(&1));
        // Another peer lacks them: left out too, the blocks go back.
        let b = dl.take_work(2, t).unwrap();
        let reply = Some(Ok(Response::Blocks {
            blocks: vec![],
            not_found: b.iter().map(|i| bs[*i].hash()).collect(),
        }));
        assert_eq!(dl.take_answer(2, &b, reply, at()), Taken::Fine);
        assert!(dl.excluded().contains(&2));
        assert_eq!(dl.take_work(3, t).unwrap(), b);
        // No answer in time.
        assert_eq!(dl.take_answer(3, &b, None, at()), Taken::Late);
    }

    #[test]
    fn a_busy_answer_pauses_the_peer_instead_of_dropping_it() {
        let bs = blocks(20);
        let mut dl: Download<u8> = Download::new(bs.iter().map(Block::hash).collect());
        let t = Instant::now();
        let a = dl.take_work(1, t).unwrap();
        let busy = Some(Ok(Response::Error {
            reason: "rate limited".into(),
        }));
        assert_eq!(dl.take_answer(1, &a, busy, at()), Taken::Fine);
        assert!(!dl.excluded().contains(&1), "not held against it");
        assert_eq!(dl.take_work(1, Instant::now()), None, "paused");
        assert!(dl.pausing(Instant::now()));
        let later = Instant::now() + ERROR_BACKOFF;
        assert_eq!(
            dl.take_work(1, later).unwrap(),
            a,
            "asked again after the pause"
        );
    }

    #[test]
    fn a_bad_copy_sends_its_block_and_its_senders_others_to_other_peers() {
        let bs = blocks(40);
        let mut dl: Download<u8> = Download::new(bs.iter().map(Block::hash).collect());
        let t = Instant::now();
        let a = dl.take_work(1, t).unwrap();
        let b = dl.take_work(2, t).unwrap();
        assert_eq!(dl.take_answer(1, &a, answer(&bs, &a), at()), Taken::Fine);
        assert_eq!(dl.take_answer(2, &b, answer(&bs, &b), at()), Taken::Fine);
        // Blocks 0..5 go to the connecting task; block 3 (from peer 1)
        // turns out a bad copy after 3 were connected.
        for _ in 0..5 {
            dl.pop_ready().unwrap();
        }
        dl.refused(1);
        dl.rewind(3);
        assert!(dl.excluded().contains(&1));
        // Everything of peer 1 not connected is asked again, of peer 2
        // (whose own blocks 16 to 31 wait).
        let again = dl.take_work(2, t).unwrap();
        let want: Vec<usize> = (3..PER_PEER)
            .chain(2 * PER_PEER..2 * PER_PEER + 3)
            .collect();
        assert_eq!(again, want);
        assert_eq!(
            dl.take_answer(2, &again, answer(&bs, &again), at()),
            Taken::Fine
        );
        let mut next = 3;
        while let Some((_, from)) = dl.pop_ready() {
            assert_eq!(from, 2, "no block of the refused peer is handed on");
            next += 1;
        }
        assert_eq!(next, 2 * PER_PEER + 3);
    }

    #[test]
    fn the_stall_timeout_follows_the_answers_the_download_gets() {
        let bs = blocks(60);
        let mut dl: Download<u8> = Download::new(bs.iter().map(Block::hash).collect());
        assert_eq!(dl.stall_limit(), STALL_TIMEOUT, "no answer timed yet");
        let t0 = Instant::now();
        let a = dl.take_work(1, t0).unwrap();
        let b = dl.take_work(2, t0).unwrap();
        // Peer 2 answers at once: the limit drops to the least.
        assert_eq!(dl.take_answer(2, &b, answer(&bs, &b), t0), Taken::Fine);
        assert_eq!(dl.stall_limit(), MIN_STALL);
        let late = t0 + MIN_STALL + Duration::from_millis(1);
        assert_eq!(dl.reassign_stalled(late, &[1, 2]), Some(1));
        assert!(dl.take_work(2, late).unwrap().starts_with(&a[..1]));
    }

    #[test]
    fn a_peer_holding_up_the_window_loses_its_blocks_to_an_idle_one() {
        let bs = blocks(40);
        let mut dl: Download<u8> = Download::new(bs.iter().map(Block::hash).collect());
        let t0 = Instant::now();
        let a = dl.take_work(1, t0).unwrap();
        let b = dl.take_work(2, t0).unwrap();
        // Peer 2 took 100 ms: the limit is 400 ms.
        let answered = t0 + Duration::from_millis(100);
        assert_eq!(
            dl.take_answer(2, &b, answer(&bs, &b), answered),
            Taken::Fine
        );
        assert_eq!(dl.stall_limit(), Duration::from_millis(400));
        // Not yet: within the stall timeout, or with no other source.
        assert_eq!(
            dl.reassign_stalled(t0 + Duration::from_millis(300), &[1, 2]),
            None
        );
        assert_eq!(
            dl.reassign_stalled(t0 + STALL_TIMEOUT, &[1]),
            None,
            "no other source"
        );
        assert_eq!(dl.reassign_stalled(t0 + STALL_TIMEOUT, &[1, 2]), Some(1));
        assert!(dl.excluded().contains(&1));
        // Peer 2 takes peer 1's blocks.
        let again = dl.take_work(2, t0 + STALL_TIMEOUT).unwrap();
        assert_eq!(again, a);
        // The staller answers late after all: its blocks are kept once,
        // and peer 2's copies of them change nothing.
        assert_eq!(dl.take_answer(1, &a, answer(&bs, &a), at()), Taken::Fine);
        assert_eq!(
            dl.take_answer(2, &again, answer(&bs, &again), at()),
            Taken::Fine
        );
        let mut n = 0;
        while dl.pop_ready().is_some() {
            n += 1;
        }
        assert_eq!(n, 2 * PER_PEER);
        // The timeout doubled for the next stall.
        assert_eq!(dl.stall_after, STALL_TIMEOUT * 2);
    }
}
