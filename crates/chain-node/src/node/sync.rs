//! Headers-first sync.
//!
//! A sync learns the peer's branch as headers ([`Request::GetHeaders`], up
//! to 2,000 per reply), which the chain actor checks (links, proof of work
//! against the expected difficulty, times) and holds in memory. Only when
//! the header branch has more work than the best chain are its bodies
//! fetched: at most [`WINDOW`] blocks ahead of the next block to connect,
//! at most [`PER_PEER`] in flight per peer, spread over every peer whose
//! status shows at least the branch's work. Blocks are connected in order
//! as they arrive. A peer that misses [`DELIVERY_DEADLINE`] loses its
//! blocks to the others and is marked slow; a block nobody asked for gets
//! its sender banned; a sync that connects nothing for [`NO_PROGRESS`]
//! drops its peer. Every loop is bounded: header rounds by the branch's
//! growth, downloads by the window.

use super::{Local, Node, SyncProgress, DELIVERY_DEADLINE};
use crate::reads::{ReadRequest, ReadResponse};
use crate::Network;
use anyhow::{bail, Result};
use chain_core::pow::Work;
use chain_core::BlockHash;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use p2p_proto::{Announcement, BlockBytes, Request, Response};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// Blocks fetched ahead of the next block to connect.
pub const WINDOW: usize = 1_024;
/// Blocks in flight per peer: one `GetData` at a time.
pub const PER_PEER: usize = p2p_proto::MAX_BLOCKS_PER_REPLY;
/// Downloaded blocks waiting for their parent, in bytes: past it no new
/// request is sent until the queue drains.
pub const BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// How long a peer that answered a `GetData` with an error (busy, rate
/// limited) is left alone before it is asked again. Its blocks go to others
/// meanwhile; it is not held against it.
pub const ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Blocks the connecting task hands to the chain actor before the first of
/// them is answered.
pub const CONNECT_AHEAD: usize = 8;
/// Blocks handed to the connecting task ahead of the one it validates.
pub const PIPELINE: usize = 32;
/// A sync that connects no block for this long drops its peer.
pub const NO_PROGRESS: Duration = Duration::from_secs(30);
/// Most `GetHeaders` rounds in one header phase. A full answer must add at
/// least half its 2,000 headers, and the chain actor holds at most 64,000
/// headers of a branch, so an honest phase needs no more.
pub const HEADER_ROUNDS: usize = 64;
/// Longest a header phase may take, whatever each round's answer time: a
/// peer that answers each round just inside its deadline cannot hold the
/// sync for `HEADER_ROUNDS` deadlines.
pub const HEADER_PHASE: Duration = Duration::from_secs(60);
/// How long the block the window waits for may be in flight, while the
/// download has another source, before it is asked of another peer
/// (Bitcoin Core's block stalling timeout), until answers have been
/// timed: then [`STALL_FACTOR`] times the median of the download's recent
/// answers, at least [`MIN_STALL`] and at most this. Doubles each time it
/// fires in one download, up to [`DELIVERY_DEADLINE`], so slow links with
/// large blocks are not starved.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(2);
/// The stall timeout in multiples of the median answer time.
pub const STALL_FACTOR: u32 = 4;
/// The least stall timeout, however fast the answers.
pub const MIN_STALL: Duration = Duration::from_millis(100);
/// Answer times remembered for the median.
const TIMED_ANSWERS: usize = 32;

/// A header branch as its checked headers show it.
#[derive(Clone, Copy, Debug, Default)]
struct Target {
    /// Its last header's height.
    height: u32,
    /// The work of the chain ending there.
    work: Work,
}

impl<N: Network> Node<N> {
    /// Syncs from `peer`: header rounds, each followed by the download of
    /// the branch it showed, until the peer has no more headers.
    pub(super) async fn sync_from(self: &Arc<Self>, peer: N::Peer) -> Result<()> {
        let started = Instant::now();
        let mut connected = 0u64;
        let result = async {
            loop {
                let (hashes, target, more) = self.learn_branch(peer).await?;
                if hashes.is_empty() {
                    return Ok(());
                }
                connected += self.download(peer, hashes, target, started).await?;
                if !more {
                    return Ok(());
                }
            }
        }
        .await;
        self.chain.drop_branch(peer).await;
        let height = self.chain.view().map(|v| v.tip.height).unwrap_or(0);
        self.report_sync(SyncProgress {
            height,
            target: height,
            done: true,
        });
        if connected > 0 {
            if let Some(v) = self.chain.view() {
                tracing::info!(height = v.tip.height, tip = %v.tip.hash.short(), blocks = connected, secs = format!("{:.1}", started.elapsed().as_secs_f64()), "sync finished");
                self.announce_tip(v.tip.hash).await;
            }
        }
        result
    }

    /// Announces the tip a sync reached, as Bitcoin nodes announce a new
    /// tip after a reorganisation: a peer still on another branch finds
    /// the block's parent unknown, asks this node's status and syncs at
    /// once, instead of at its next status poll. A peer that has the block
    /// drops it as known.
    async fn announce_tip(&self, tip: BlockHash) {
        let read = ReadRequest::Blocks {
            hashes: vec![tip],
            max_count: 1,
            max_bytes: chain_core::MAX_BLOCK_SIZE,
        };
        if let Ok(ReadResponse::Blocks { mut blocks, .. }) = self.chain.read(read).await {
            if let Some(b) = blocks.pop() {
                self.net
                    .publish(Announcement::Block(BlockBytes::new(b)))
                    .await;
            }
        }
    }

    /// Asks `peer` for headers until its branch shows more work than the
    /// best chain, or it has no more. Returns the hashes whose bodies to
    /// fetch, the branch (its height and checked work), and whether the
    /// last reply was full.
    ///
    /// Only headers new to the node count: a reply that adds none, or a
    /// full reply that adds fewer than half its headers (an honest peer's
    /// replies, asked with a locator, hold only headers past what the node
    /// has), disproves the peer's claim and ends the sync.
    async fn learn_branch(
        self: &Arc<Self>,
        peer: N::Peer,
    ) -> Result<(Vec<BlockHash>, Target, bool)> {
        let mut hashes: Vec<BlockHash> = Vec::new();
        let mut last_height = None;
        let phase_ends = Instant::now() + HEADER_PHASE;
        let mut rounds = 0usize;
        loop {
            let left = phase_ends.saturating_duration_since(Instant::now());
            if rounds >= HEADER_ROUNDS || left.is_zero() {
                self.mark_slow(peer);
                bail!(
                    "the header phase took {rounds} rounds without showing more work; a header phase has at most {HEADER_ROUNDS} rounds and {} s",
                    HEADER_PHASE.as_secs()
                );
            }
            rounds += 1;
            let Some(mut locator) = self.chain.branch_locator(peer).await else {
                return Ok((Vec::new(), Target::default(), false));
            };
            locator.truncate(p2p_proto::MAX_LOCATOR);
            let asked = self.net.request(
                peer,
                Request::GetHeaders {
                    locator,
                    stop: None,
                },
            );
            let Ok(answer) = tokio::time::timeout(DELIVERY_DEADLINE.min(left), asked).await else {
                self.mark_slow(peer);
                bail!(
                    "no answer to getheaders within {} s",
                    DELIVERY_DEADLINE.min(left).as_secs_f64()
                );
            };
            let Response::Headers { headers } = answer.map_err(anyhow::Error::msg)? else {
                bail!("unexpected answer to getheaders");
            };
            let full = headers.len() >= p2p_proto::MAX_HEADERS;
            let sent = headers.len();
            let news = match self.chain.add_headers(peer, headers).await {
                Ok(n) => n,
                Err(fault) => {
                    if fault.sender_fault {
                        tracing::warn!(%peer, "sent invalid headers: {}; banning the peer", fault.reason);
                        self.ban(peer, crate::BanReason::InvalidHeaders).await;
                    }
                    bail!("headers refused: {}", fault.reason);
                }
            };
            if news.new > 0 {
                self.sync_progressed();
            }
            if news.restarted {
                hashes = news.added;
            } else {
                hashes.extend(news.added);
            }
            let branch = Target {
                height: news.height,
                work: news.work,
            };
            let tip_work = self.chain.view().map(|v| v.tip.work).unwrap_or_default();
            if news.work > tip_work && news.new > 0 {
                return Ok((hashes, branch, full));
            }
            // Each round must add headers the node did not have, so this
            // loop ends (the chain actor also caps a branch's length), and
            // replayed headers never pass for progress.
            let replayed = full && news.new < sent / 2;
            if !full || news.new == 0 || replayed || last_height.is_some_and(|h| news.height <= h) {
                self.disprove(peer);
                tracing::info!(%peer, new = news.new, sent, "the peer's headers do not show more work than this chain; not syncing from it for {} s", super::DISPROVED_FOR.as_secs());
                return Ok((Vec::new(), branch, false));
            }
            last_height = Some(news.height);
        }
    }

    /// Fetches and connects the blocks `hashes` (a branch, oldest first).
    /// Returns how many were connected or stored. Downloading runs ahead of
    /// validation: blocks go in order to a connecting task through a
    /// channel of [`PIPELINE`] blocks, so the network is never idle while
    /// the chain actor validates, and the chain actor never waits for a
    /// request to be sent.
    async fn download(
        self: &Arc<Self>,
        peer: N::Peer,
        hashes: Vec<BlockHash>,
        branch: Target,
        started: Instant,
    ) -> Result<u64> {
        let target = branch.height;
        let mut dl = Download::new(hashes);
        let mut in_flight = FuturesUnordered::new();
        let (mut to_connect, connect_rx) = mpsc::channel(PIPELINE);
        let (count_tx, mut connected) = watch::channel(0u64);
        let mut connector = AbortOnDrop(tokio::spawn(
            self.clone().connect_in_order(connect_rx, count_tx),
        ));
        // Blocks connected by connecting tasks that ended on a bad copy.
        let mut base = 0u64;
        let mut last_count = 0u64;
        let mut last_progress = Instant::now();
        let mut last_log = Instant::now();
        // Sources are judged by the work the branch's headers showed, never
        // by what the sync peer claims.
        let min_work = branch.work;
        self.report_sync(SyncProgress {
            height: self.chain.view().map(|v| v.tip.height).unwrap_or(0),
            target,
            done: false,
        });
        loop {
            // Hand what is ready, in order, to the connecting task.
            while to_connect.capacity() > 0 {
                let Some(next) = dl.pop_ready() else { break };
                if to_connect.try_send(next).is_err() {
                    break;
                }
            }
            // Everything handed over: the connecting task is let finish (its
            // channel closes), and what it ends with decides, as when it
            // stops early.
            if dl.done() {
                to_connect = mpsc::channel(1).0;
            }
            if dl.done() || connector.0.is_finished() {
                // A copy whose body did not match its header: its sender is
                // banned, the block is asked of others, the branch stays.
                match (&mut connector.0).await {
                    Ok(Err(Failed {
                        from,
                        body_fault: true,
                        connected: n,
                    })) => {
                        tracing::warn!(peer = %from, "sent a block whose body does not match its header; asking another peer for it");
                        base += n;
                        dl.refused(from);
                        dl.rewind(usize::try_from(base).unwrap_or(usize::MAX));
                        let (tx, rx) = mpsc::channel(PIPELINE);
                        let (count_tx, count_rx) = watch::channel(0u64);
                        to_connect = tx;
                        connected = count_rx;
                        last_count = 0;
                        connector =
                            AbortOnDrop(tokio::spawn(self.clone().connect_in_order(rx, count_tx)));
                        continue;
                    }
                    Ok(Err(Failed { from, .. })) => {
                        bail!("peer {from} sent an invalid block; the branch is given up")
                    }
                    Ok(Ok(n)) => {
                        self.log_sync(target, base + n, started);
                        return Ok(base + n);
                    }
                    Err(e) => bail!("the connecting task failed: {e}"),
                }
            }
            // Hand out work: one request per idle source, inside the window.
            let sources = self.sources_for(peer, min_work, &dl.excluded(), |h| dl.holds(h));
            for p in &sources {
                let Some(take) = dl.take_work(*p, Instant::now()) else {
                    continue;
                };
                let ask = Request::GetData {
                    hashes: take.iter().map(|i| dl.hashes[*i]).collect(),
                };
                let (net, p) = (self.net.clone(), *p);
                in_flight.push(async move {
                    let answer = tokio::time::timeout(DELIVERY_DEADLINE, net.request(p, ask))
                        .await
                        .ok();
                    (p, take, answer)
                });
            }
            if in_flight.is_empty() && !dl.next_is_ready() && !dl.pausing(Instant::now()) {
                if dl.forgive_stalled() {
                    continue;
                }
                bail!("no peer can serve the blocks of the branch");
            }
            let delivery = tokio::select! {
                d = in_flight.next(), if !in_flight.is_empty() => d,
                _ = connected.changed() => None,
                () = tokio::time::sleep(Duration::from_millis(250)) => None,
            };
            if let Some((p, asked, answer)) = delivery {
                match dl.take_answer(p, &asked, answer, Instant::now()) {
                    Taken::Fine => {}
                    Taken::Late => self.mark_slow(p),
                    Taken::Unasked(n) => {
                        // Honest peers answer only what was asked.
                        tracing::warn!(peer = %p, unasked = n, "sent blocks that were not asked for; banning the peer");
                        self.ban(p, crate::BanReason::Protocol).await;
                    }
                }
            }
            // The block the window waits for is late while another source
            // exists: it is asked of another peer (at once if one is idle,
            // else by the first to finish).
            if let Some(p) = dl.reassign_stalled(Instant::now(), &sources) {
                tracing::info!(peer = %p, "the peer holds up the download; asking other peers for its blocks");
            }
            let count = *connected.borrow();
            if count != last_count {
                last_count = count;
                last_progress = Instant::now();
                self.sync_progressed();
            }
            if last_log.elapsed() >= Duration::from_secs(1) {
                last_log = Instant::now();
                self.log_sync(target, base + count, started);
            }
            if last_progress.elapsed() >= NO_PROGRESS {
                self.mark_slow(peer);
                bail!(
                    "no block connected for {} s; leaving this peer",
                    NO_PROGRESS.as_secs()
                );
            }
        }
    }

    /// Connects blocks in the order they come, until the channel closes or
    /// one is invalid (its sender, and whether only its body was bad, are
    /// returned). Publishes the count. Up to
    /// [`CONNECT_AHEAD`] blocks are handed to the chain actor before the
    /// first of them is answered, so the actor checks the next block while
    /// the last one is written.
    async fn connect_in_order(
        self: Arc<Self>,
        mut blocks: mpsc::Receiver<(BlockBytes, N::Peer)>,
        count: watch::Sender<u64>,
    ) -> std::result::Result<u64, Failed<N::Peer>> {
        let mut n = 0u64;
        let mut waiting = futures::stream::FuturesOrdered::new();
        let mut open = true;
        loop {
            let next = if open && waiting.len() < CONNECT_AHEAD {
                tokio::select! {
                    biased;
                    Some(done) = waiting.next(), if !waiting.is_empty() => Some(done),
                    got = blocks.recv() => {
                        match got {
                            Some((bytes, from)) => {
                                // Decoded here, off the download loop.
                                let block = match bytes.into_received() {
                                    Ok(b) => b,
                                    Err(e) => {
                                        tracing::warn!(peer = %from, "sent a block that does not decode ({e}); banning the peer");
                                        self.ban(from, crate::BanReason::InvalidBlock).await;
                                        return Err(Failed {
                                            from,
                                            body_fault: true,
                                            connected: n,
                                        });
                                    }
                                };
                                let answer = self.chain.submit_requested_block(block, from).await;
                                waiting.push_back(async move { (answer.await, from) });
                            }
                            None => open = false,
                        }
                        None
                    }
                }
            } else {
                match waiting.next().await {
                    Some(done) => Some(done),
                    None => break,
                }
            };
            let Some((out, from)) = next else { continue };
            let out = self.clone().carry_out(out, None).await;
            if !out.valid {
                return Err(Failed {
                    from,
                    body_fault: out.body_fault,
                    connected: n,
                });
            }
            n += 1;
            let _ = count.send(n);
        }
        Ok(n)
    }

    /// The progress line and callback.
    fn log_sync(&self, target: u32, connected: u64, started: Instant) {
        let height = self.chain.view().map(|v| v.tip.height).unwrap_or(0);
        self.report_sync(SyncProgress {
            height,
            target,
            done: false,
        });
        let rate = connected as f64 / started.elapsed().as_secs_f64().max(1e-3);
        tracing::info!(
            height,
            target,
            rate = format!("{rate:.0} blocks/s"),
            "syncing"
        );
    }

    /// Peers to download from: the sync peer, every peer whose status tip
    /// is a header of this download (it showed it has the blocks up to
    /// there), and every peer whose status claims at least `min_work`, the
    /// work the branch's checked headers show (a peer claiming that much
    /// either has the branch or answers `not_found` and is left out); slow
    /// ones and ones found lacking left out.
    fn sources_for(
        &self,
        peer: N::Peer,
        min_work: Work,
        lacking: &HashSet<N::Peer>,
        shown: impl Fn(&BlockHash) -> bool,
    ) -> Vec<N::Peer> {
        let now = Instant::now();
        let l: std::sync::MutexGuard<'_, Local<N::Peer>> = self.local();
        let usable =
            |p: &N::Peer| !lacking.contains(p) && l.slow.get(p).is_none_or(|until| *until <= now);
        let mut v = Vec::new();
        if usable(&peer) && l.peers.contains_key(&peer) {
            v.push(peer);
        }
        for (p, status) in &l.peers {
            if *p != peer
                && usable(p)
                && status
                    .as_ref()
                    .is_some_and(|s| shown(&s.best_hash) || super::peers::work_of(s) >= min_work)
            {
                v.push(*p);
            }
        }
        v
    }
}

/// Why a connecting task stopped early.
struct Failed<P> {
    /// Who sent the block that failed.
    from: P,
    /// Only the copy was bad (its body, or its bytes): the block is to be
    /// asked of another peer.
    body_fault: bool,
    /// Blocks it connected before.
    connected: u64,
}

/// Aborts a task when dropped, so a sync that stops leaves nothing behind.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

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
    fn pausing(&self, now: Instant) -> bool {
        self.backoff
            .iter()
            .any(|(p, t)| *t > now && !self.lacking.contains(p))
    }

    /// Whether the next block to hand on has arrived.
    fn next_is_ready(&self) -> bool {
        self.ready.contains_key(&self.next)
    }

    pub(crate) fn done(&self) -> bool {
        self.next >= self.hashes.len()
    }

    /// Whether `hash` is one of this download's blocks.
    fn holds(&self, hash: &BlockHash) -> bool {
        self.index.contains_key(hash)
    }

    /// Peers not to ask in this download.
    fn excluded(&self) -> HashSet<P> {
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
    fn stall_limit(&self) -> Duration {
        if self.answer_times.is_empty() {
            return self.stall_after;
        }
        let mut times: Vec<Duration> = self.answer_times.iter().copied().collect();
        times.sort_unstable();
        let median = times[times.len() / 2];
        (median * STALL_FACTOR).clamp(MIN_STALL, self.stall_after)
    }

    /// When no peer is left, gives the stalled ones another chance.
    fn forgive_stalled(&mut self) -> bool {
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
