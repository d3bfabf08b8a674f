//! Peers: the status handshake and poll, taking a genesis from a --dest
//! peer, starting a sync from a peer with more work, and what the node
//! remembers of each peer (slow, claims its headers did not show).

use super::{Node, BAN, DELIVERY_DEADLINE, DISPROVED_FOR, MAX_DISPROVED, SLOW_FOR};
use crate::Network;
use anyhow::{bail, Context, Result};
use chain_core::pow::Work;
use chain_core::BlockHash;
use p2p_proto::{Request, Response, Status};
use std::sync::Arc;
use std::time::Instant;

impl<N: Network> Node<N> {
    /// Exchanges status with a peer, fetching the genesis when this node has no chain yet.
    pub(super) async fn handshake(self: Arc<Self>, peer: N::Peer) {
        let request = Request::Status(status_of(self.chain.view(), &self.agent));
        match self.net.request(peer, request).await {
            Ok(Response::Status(theirs)) => self.on_status(peer, theirs).await,
            Ok(other) => tracing::debug!(%peer, "unexpected answer to status: {other:?}"),
            Err(e) => tracing::debug!(%peer, "status request failed: {e}"),
        }
    }

    pub(super) async fn on_status(self: &Arc<Self>, peer: N::Peer, theirs: Status) {
        if theirs.protocol_version != p2p_proto::PROTOCOL_VERSION {
            tracing::warn!(%peer, theirs = theirs.protocol_version, ours = p2p_proto::PROTOCOL_VERSION, "refusing a peer that speaks another protocol version");
            self.chain.metrics().on_ban(crate::BanReason::Incompatible);
            self.net.ban(peer, BAN).await;
            return;
        }
        if theirs.genesis == BlockHash::ZERO {
            return; // a peer that has no chain yet
        }
        match self.chain.view().map(|v| v.genesis) {
            Some(g) if g != theirs.genesis => {
                tracing::warn!(%peer, ours = %g.short(), theirs = %theirs.genesis.short(), "refusing a peer on a different chain (its genesis differs)");
                self.chain.metrics().on_ban(crate::BanReason::Incompatible);
                self.net.ban(peer, BAN).await;
                return;
            }
            None => {
                let (allowed, expected) = {
                    let l = self.local();
                    (l.genesis_peers.contains(&peer), l.expected_genesis)
                };
                if !allowed {
                    tracing::info!(%peer, "not taking a genesis from a peer that is not a --dest peer");
                    return;
                }
                if let Some(want) = expected.filter(|w| *w != theirs.genesis) {
                    tracing::warn!(%peer, theirs = %theirs.genesis, wanted = %want, "the peer's genesis is not the one --genesis names; not taking it");
                    return;
                }
                if let Err(e) = self.fetch_genesis(peer, theirs.genesis).await {
                    tracing::warn!(%peer, "cannot get the genesis from this peer: {e:#}");
                    return;
                }
            }
            _ => {}
        }
        if let Some(p) = self.local().peers.get_mut(&peer) {
            *p = Some(theirs.clone());
        }
        let better = self
            .chain
            .view()
            .is_some_and(|v| work_of(&theirs) > v.tip.work);
        let disproved = self
            .local()
            .disproved
            .get(&peer)
            .is_some_and(|until| *until > Instant::now());
        if better && !disproved && !self.is_slow(&peer) {
            self.clone().start_sync(peer);
        }
    }

    pub(super) async fn fetch_genesis(&self, peer: N::Peer, hash: BlockHash) -> Result<()> {
        let resp = self
            .net
            .request(peer, Request::GetData { hashes: vec![hash] })
            .await
            .map_err(anyhow::Error::msg)?;
        let Response::Blocks { blocks, .. } = resp else {
            bail!("unexpected answer")
        };
        let g = blocks
            .into_iter()
            .find(|b| b.hash().ok() == Some(hash))
            .context("the peer did not send its genesis")?
            .decode()
            .context("the peer's genesis does not decode")?;
        let created = self
            .chain
            .create_from_genesis(g)
            .await
            .map_err(anyhow::Error::msg)?;
        if created {
            tracing::info!(genesis = %hash.short(), %peer, "created the chain from the peer's genesis");
        }
        Ok(())
    }

    pub(super) fn start_sync(self: Arc<Self>, peer: N::Peer) {
        {
            let mut l = self.local();
            if l.syncing {
                return;
            }
            l.syncing = true;
            l.sync_progress_at = Some(Instant::now());
        }
        tokio::spawn(async move {
            if let Err(e) = self.sync_from(peer).await {
                tracing::warn!(%peer, "sync stopped: {e:#}");
            }
            {
                let mut l = self.local();
                l.syncing = false;
                l.sync_progress_at = None;
            }
            // Minting waits while a sync runs; the mempool may be ready now.
            self.maybe_mine().await;
        });
    }

    /// Polls every peer's status; a peer with more work starts a sync.
    pub(super) fn poll_peers(self: Arc<Self>) {
        let peers: Vec<N::Peer> = self.local().peers.keys().copied().collect();
        for p in peers {
            tokio::spawn(self.clone().handshake(p));
        }
    }

    /// Remembers that `peer`'s headers did not show the work its status
    /// claims: no sync is started from it for [`DISPROVED_FOR`], whatever
    /// tip it names meanwhile (a liar can name a new one each time).
    pub(super) fn disprove(&self, peer: N::Peer) {
        let mut l = self.local();
        let now = Instant::now();
        l.disproved.retain(|_, until| *until > now);
        if l.disproved.len() >= MAX_DISPROVED && !l.disproved.contains_key(&peer) {
            if let Some(first) = l.disproved.iter().min_by_key(|(_, u)| **u).map(|(p, _)| *p) {
                l.disproved.remove(&first);
            }
        }
        l.disproved.insert(peer, now + DISPROVED_FOR);
    }

    /// Notes that the running sync progressed, for the minter's patience.
    pub(super) fn sync_progressed(&self) {
        self.local().sync_progress_at = Some(Instant::now());
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
        self.local().slow.insert(peer, Instant::now() + SLOW_FOR);
    }
}

pub(super) fn status_of(view: Option<crate::ChainView>, agent: &str) -> Status {
    let (genesis, best_height, best_hash, total_work) = match view {
        Some(v) => (
            v.genesis,
            v.tip.height,
            v.tip.hash,
            v.tip.work.to_be_bytes(),
        ),
        None => (BlockHash::ZERO, 0, BlockHash::ZERO, [0; 32]),
    };
    Status {
        protocol_version: p2p_proto::PROTOCOL_VERSION,
        genesis,
        best_height,
        best_hash,
        total_work,
        agent: agent.to_string(),
    }
}

pub(super) fn work_of(s: &Status) -> Work {
    Work::from_be_bytes(&s.total_work)
}
