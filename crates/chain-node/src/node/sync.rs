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

use super::download::{Download, Taken};
use super::{Local, Node, SyncProgress, DELIVERY_DEADLINE};
use crate::reads::{ReadRequest, ReadResponse};
use crate::Network;
use anyhow::{bail, Result};
use chain_core::pow::Work;
use chain_core::BlockHash;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use p2p_proto::{Announcement, BlockBytes, Request, Response};
use std::collections::HashSet;
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
pub(super) const TIMED_ANSWERS: usize = 32;

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
                    hashes: take.iter().map(|i| dl.hash_at(*i)).collect(),
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
