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
use crate::Network;
use anyhow::{bail, Result};
use chain_core::pow::Work;
use chain_core::{Block, BlockHash};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use p2p_proto::{Request, Response};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Blocks fetched ahead of the next block to connect.
pub const WINDOW: usize = 1_024;
/// Blocks in flight per peer: one `GetData` at a time.
pub const PER_PEER: usize = p2p_proto::MAX_BLOCKS_PER_REPLY;
/// Downloaded blocks waiting for their parent, in bytes: past it no new
/// request is sent until the queue drains.
pub const BUFFER_BYTES: usize = 64 * 1024 * 1024;
/// A sync that connects no block for this long drops its peer.
pub const NO_PROGRESS: Duration = Duration::from_secs(30);

/// One answered (or timed-out) `GetData`.
struct Delivery<P> {
    peer: P,
    asked: Vec<usize>,
    answer: Option<Result<Response, String>>,
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
        (self.progress)(SyncProgress {
            height,
            target: height,
            done: true,
        });
        if connected > 0 {
            if let Some(v) = self.chain.view() {
                tracing::info!(height = v.tip.height, tip = %v.tip.hash.short(), blocks = connected, secs = format!("{:.1}", started.elapsed().as_secs_f64()), "sync finished");
            }
        }
        result
    }

    /// Asks `peer` for headers until its branch shows more work than the
    /// best chain, or it has no more. Returns the hashes whose bodies to
    /// fetch, the branch's height, and whether the last reply was full.
    async fn learn_branch(self: &Arc<Self>, peer: N::Peer) -> Result<(Vec<BlockHash>, u32, bool)> {
        let mut hashes: Vec<BlockHash> = Vec::new();
        let mut last_height = None;
        loop {
            let Some(locator) = self.chain.branch_locator(peer).await else {
                return Ok((Vec::new(), 0, false));
            };
            let asked = self.net.request(
                peer,
                Request::GetHeaders {
                    locator,
                    stop: None,
                },
            );
            let Ok(answer) = tokio::time::timeout(DELIVERY_DEADLINE, asked).await else {
                self.mark_slow(peer);
                bail!(
                    "no answer to getheaders within {} s",
                    DELIVERY_DEADLINE.as_secs()
                );
            };
            let Response::Headers { headers } = answer.map_err(anyhow::Error::msg)? else {
                bail!("unexpected answer to getheaders");
            };
            let full = headers.len() >= p2p_proto::MAX_HEADERS;
            let news = match self.chain.add_headers(peer, headers).await {
                Ok(n) => n,
                Err(fault) => {
                    if fault.sender_fault {
                        tracing::warn!(%peer, "sent invalid headers: {}; banning the peer", fault.reason);
                        self.ban(peer).await;
                    }
                    bail!("headers refused: {}", fault.reason);
                }
            };
            if news.restarted {
                hashes = news.added;
            } else {
                hashes.extend(news.added);
            }
            let tip_work = self.chain.view().map(|v| v.tip.work).unwrap_or_default();
            if news.work > tip_work {
                return Ok((hashes, news.height, full));
            }
            // Each round must take the branch further, so this loop ends
            // (the chain actor also caps a branch's length).
            if !full || last_height.is_some_and(|h| news.height <= h) {
                self.disprove(peer);
                tracing::info!(%peer, "the peer's headers do not show more work than this chain");
                return Ok((Vec::new(), news.height, false));
            }
            last_height = Some(news.height);
        }
    }

    /// Fetches and connects the blocks `hashes` (a branch, oldest first).
    /// Returns how many were connected or stored.
    async fn download(
        self: &Arc<Self>,
        peer: N::Peer,
        hashes: Vec<BlockHash>,
        target: u32,
        started: Instant,
    ) -> Result<u64> {
        let index: HashMap<BlockHash, usize> =
            hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        let mut queue: BTreeSet<usize> = (0..hashes.len()).collect();
        let mut ready: HashMap<usize, (Block, N::Peer, usize)> = HashMap::new();
        let mut ready_bytes = 0usize;
        let mut busy: HashSet<N::Peer> = HashSet::new();
        let mut lacking: HashSet<N::Peer> = HashSet::new();
        let mut in_flight = FuturesUnordered::new();
        let mut next = 0usize;
        let mut last_progress = Instant::now();
        let mut last_log = Instant::now();
        let min_work = self.status_work(peer);
        (self.progress)(SyncProgress {
            height: self.chain.view().map(|v| v.tip.height).unwrap_or(0),
            target,
            done: false,
        });
        while next < hashes.len() {
            // Hand out work: one request per idle source, inside the window.
            if ready_bytes < BUFFER_BYTES {
                for p in self.sources_for(peer, min_work, &lacking) {
                    if busy.contains(&p) {
                        continue;
                    }
                    let take: Vec<usize> = queue
                        .iter()
                        .copied()
                        .take_while(|i| *i < next + WINDOW)
                        .take(PER_PEER)
                        .collect();
                    if take.is_empty() {
                        break;
                    }
                    for i in &take {
                        queue.remove(i);
                    }
                    busy.insert(p);
                    let ask = Request::GetData {
                        hashes: take.iter().map(|i| hashes[*i]).collect(),
                    };
                    let net = self.net.clone();
                    in_flight.push(async move {
                        let answer = tokio::time::timeout(DELIVERY_DEADLINE, net.request(p, ask))
                            .await
                            .ok();
                        Delivery {
                            peer: p,
                            asked: take,
                            answer,
                        }
                    });
                }
            }
            if in_flight.is_empty() {
                bail!("no peer can serve the blocks of the branch");
            }
            let delivery = tokio::select! {
                d = in_flight.next() => d,
                () = tokio::time::sleep(Duration::from_secs(1)) => None,
            };
            if let Some(d) = delivery {
                busy.remove(&d.peer);
                let missed = self
                    .take_delivery(d, &index, &mut ready, &mut ready_bytes, &mut lacking)
                    .await;
                queue.extend(missed);
            }
            // Connect what is ready, in order.
            while let Some((block, from, size)) = ready.remove(&next) {
                ready_bytes -= size;
                let out = self.clone().on_block(block, Some(from), None, true).await;
                if !out.valid {
                    bail!("peer {from} sent an invalid block; the branch is given up");
                }
                next += 1;
                last_progress = Instant::now();
            }
            if last_log.elapsed() >= Duration::from_secs(1) || next == hashes.len() {
                last_log = Instant::now();
                let height = self.chain.view().map(|v| v.tip.height).unwrap_or(0);
                (self.progress)(SyncProgress {
                    height,
                    target,
                    done: false,
                });
                let rate = next as f64 / started.elapsed().as_secs_f64().max(1e-3);
                tracing::info!(
                    height,
                    target,
                    rate = format!("{rate:.0} blocks/s"),
                    "syncing"
                );
            }
            if last_progress.elapsed() >= NO_PROGRESS {
                self.mark_slow(peer);
                bail!(
                    "no block connected for {} s; leaving this peer",
                    NO_PROGRESS.as_secs()
                );
            }
        }
        Ok(next as u64)
    }

    /// Takes in one `GetData` answer: keeps the blocks that were asked for,
    /// and returns the indices still missing. A peer that stalls is marked
    /// slow; one that lacks blocks is asked no more in this sync; one that
    /// sends a block nobody asked for is banned.
    async fn take_delivery(
        &self,
        d: Delivery<N::Peer>,
        index: &HashMap<BlockHash, usize>,
        ready: &mut HashMap<usize, (Block, N::Peer, usize)>,
        ready_bytes: &mut usize,
        lacking: &mut HashSet<N::Peer>,
    ) -> Vec<usize> {
        let peer = d.peer;
        let mut asked: HashSet<usize> = d.asked.into_iter().collect();
        match d.answer {
            None => {
                self.mark_slow(peer);
                lacking.insert(peer);
            }
            Some(Ok(Response::Blocks { blocks, not_found })) => {
                let mut unasked = 0usize;
                let mut delivered = 0usize;
                for b in blocks {
                    match index.get(&b.hash()) {
                        Some(i) if asked.remove(i) => {
                            let size = b.encoded_len();
                            *ready_bytes += size;
                            ready.insert(*i, (b, peer, size));
                            delivered += 1;
                        }
                        _ => unasked += 1,
                    }
                }
                if unasked > 0 {
                    // Honest peers answer only what was asked.
                    tracing::warn!(%peer, unasked, "sent blocks that were not asked for; banning the peer");
                    self.ban(peer).await;
                    lacking.insert(peer);
                } else if !not_found.is_empty() || delivered == 0 {
                    // A reply cut short for size is not lacking: the rest is asked again.
                    lacking.insert(peer);
                }
            }
            Some(Ok(other)) => {
                tracing::debug!(%peer, "unexpected answer to getdata: {other:?}");
                lacking.insert(peer);
            }
            Some(Err(e)) => {
                tracing::debug!(%peer, "getdata failed: {e}");
                lacking.insert(peer);
            }
        }
        asked.into_iter().collect()
    }

    /// The work `peer`'s last status claimed.
    fn status_work(&self, peer: N::Peer) -> Work {
        self.local()
            .peers
            .get(&peer)
            .and_then(|p| p.as_ref())
            .map(super::work_of)
            .unwrap_or_default()
    }

    /// Remembers that `peer`'s headers did not show the work its status
    /// claims: no sync is started from it again until its tip changes.
    fn disprove(&self, peer: N::Peer) {
        let mut l = self.local();
        if let Some(best) = l
            .peers
            .get(&peer)
            .and_then(|s| s.as_ref())
            .map(|s| s.best_hash)
        {
            l.disproved.insert(peer, best);
        }
    }

    /// Whether `peer` missed a delivery deadline lately.
    pub(super) fn is_slow(&self, peer: &N::Peer) -> bool {
        let mut l = self.local();
        let now = Instant::now();
        l.slow.retain(|_, until| *until > now);
        l.slow.contains_key(peer)
    }

    /// Leaves `peer` out of syncs for a while.
    pub(super) fn mark_slow(&self, peer: N::Peer) {
        tracing::info!(%peer, "the peer did not deliver within {} s; asking other peers", DELIVERY_DEADLINE.as_secs());
        self.local()
            .slow
            .insert(peer, Instant::now() + super::SLOW_FOR);
    }

    /// Peers to download from: the sync peer and every peer whose status
    /// claims at least `min_work`, slow ones and ones found lacking left out.
    fn sources_for(
        &self,
        peer: N::Peer,
        min_work: Work,
        lacking: &HashSet<N::Peer>,
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
                    .is_some_and(|s| super::work_of(s) >= min_work)
            {
                v.push(*p);
            }
        }
        v
    }
}
