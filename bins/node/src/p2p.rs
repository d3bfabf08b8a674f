//! `startp2p`: the networked node.
//!
//! The chain state (store, mempool, orphans) belongs to the chain actor of
//! `chain-node`, on its own thread: every RocksDB call and signature check
//! happens there, and this module only sends it commands. One loop reads
//! network events, mined blocks, a status-poll timer and shutdown signals;
//! downloads and handshakes run as tasks. What is kept here is the network
//! side's small bookkeeping (peers' statuses, whether a sync or a search
//! runs), behind a mutex that is never held across an await or any I/O.
//! Mining runs on blocking threads, and a new tip cancels a stale search.

use crate::chain_cmds::{threads, Ctx};
use anyhow::{bail, Context, Result};
use chain_core::miner::solve;
use chain_core::pow::Work;
use chain_core::{Block, BlockHash, PubkeyHash};
use chain_node::{ChainHandle, Verdict as ChainVerdict};
use chain_store::ChainStore;
use p2p_net::{GossipId, Multiaddr, NetConfig, NetEvent, NetHandle, PeerId, Verdict};
use p2p_proto::{Announcement, Request, Response, Status};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a peer that sent invalid data is refused.
const BAN: Duration = Duration::from_secs(600);
/// Blocks asked for per `GetData`.
const CHUNK: usize = 16;
/// `GetData` requests in flight during a sync.
const IN_FLIGHT: usize = 4;
/// Gossip messages waiting for the gossip task.
const GOSSIP_QUEUE: usize = 256;
/// How long a peer has to answer a sync request before the blocks are asked
/// of another peer and it is marked slow.
const DELIVERY_DEADLINE: Duration = Duration::from_secs(8);
/// How long a slow peer is left out of syncs.
const SLOW_FOR: Duration = Duration::from_secs(60);

/// Arguments of `startp2p`.
#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// A peer to connect to (its full multiaddress, ending in /p2p/<peer id>). Repeatable.
    #[arg(long)]
    pub dest: Vec<String>,
    /// Mint blocks paying this alias or address once the mempool holds --min-txs transactions.
    #[arg(long)]
    pub minter: Option<String>,
    /// Address to listen on (default: /ip4/0.0.0.0/tcp/<NODE_ID>). Repeatable.
    #[arg(long)]
    pub listen: Vec<String>,
    /// Transactions in the mempool that trigger minting.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub min_txs: u64,
    /// Mining threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Do not look for peers on the LAN with mDNS.
    #[arg(long)]
    pub no_mdns: bool,
    /// Accepted for the tutorial's sake: connections always use Noise encryption.
    #[arg(long)]
    pub secio: bool,
    /// With no chain yet: the genesis hash the --dest peers must serve.
    #[arg(long, value_name = "HASH")]
    pub genesis: Option<BlockHash>,
}

/// The network side's bookkeeping. Never held across an await.
struct Local {
    /// Connected peers and their last status.
    peers: HashMap<PeerId, Option<Status>>,
    /// The only peers a genesis is taken from: the --dest peers.
    genesis_peers: HashSet<PeerId>,
    /// The genesis hash they must serve, when --genesis is given.
    expected_genesis: Option<BlockHash>,
    /// The running search's cancel flag.
    mining: Option<Arc<AtomicBool>>,
    syncing: bool,
    /// Peers that missed a delivery deadline, until when they are left out.
    slow: HashMap<PeerId, Instant>,
}

/// What --minter and its options ask for.
struct Minting {
    to: Option<PubkeyHash>,
    min_txs: usize,
    threads: usize,
}

struct Node {
    chain: ChainHandle<PeerId>,
    net: NetHandle,
    gossip: mpsc::Sender<(PeerId, GossipId, Announcement)>,
    local: Mutex<Local>,
    minting: Minting,
    mined_tx: mpsc::Sender<Option<Block>>,
}

fn to_gossip(v: ChainVerdict) -> Verdict {
    match v {
        ChainVerdict::Accept => Verdict::Accept,
        ChainVerdict::Reject => Verdict::Reject,
        ChainVerdict::Ignore => Verdict::Ignore,
    }
}

fn parse_addrs(list: &[String], what: &str) -> Result<Vec<Multiaddr>> {
    list.iter().map(|s| s.parse::<Multiaddr>().with_context(|| format!("{what} '{s}' is not a multiaddress (for example /ip4/127.0.0.1/tcp/3000/p2p/12D3KooW...)"))).collect()
}

pub fn startp2p(ctx: &Ctx, a: StartArgs) -> Result<()> {
    if a.secio {
        eprintln!("note: -secio is obsolete; connections are always encrypted with Noise");
    }
    let dest = parse_addrs(&a.dest, "--dest")?;
    for d in &dest {
        if p2p_net::split_peer(d).is_none() {
            bail!("--dest {d} does not end with /p2p/<peer id>; copy the full address the other node printed");
        }
    }
    let listen = if a.listen.is_empty() {
        let port: u16 = ctx.node_id.parse().with_context(|| {
            format!(
                "node id '{}' is not a TCP port; pass --listen /ip4/0.0.0.0/tcp/PORT",
                ctx.node_id
            )
        })?;
        vec![format!("/ip4/0.0.0.0/tcp/{port}").parse()?]
    } else {
        parse_addrs(&a.listen, "--listen")?
    };
    let minter = match &a.minter {
        Some(m) => Some(wallet::resolve_name(&ctx.wallet_file(), m)?),
        None => None,
    };
    let chain_dir = ctx.chain_dir();
    let store = if ChainStore::exists(&chain_dir) {
        Some(ChainStore::open(&chain_dir)?)
    } else if dest.is_empty() {
        bail!("no chain in {}: create one with `node createblockchain --address ADDR`, or pass --dest MULTIADDR to download it from a peer", chain_dir.display());
    } else {
        None
    };
    cli_support::init_tracing("info,libp2p=warn");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let genesis_peers: HashSet<PeerId> = dest
        .iter()
        .filter_map(|d| p2p_net::split_peer(d).map(|(p, _)| p))
        .collect();
    let cfg = NetConfig {
        identity_dir: ctx.data_dir.join(format!("p2p_{}", ctx.node_id)),
        listen,
        bootstrap: dest,
        mdns: !a.no_mdns,
        agent: format!("chain-node/{}", env!("CARGO_PKG_VERSION")),
        max_connections: 64,
    };
    let local = Local {
        peers: HashMap::new(),
        genesis_peers,
        expected_genesis: a.genesis,
        mining: None,
        syncing: false,
        slow: HashMap::new(),
    };
    let minting = Minting {
        to: minter.map(|m| m.pubkey_hash()),
        min_txs: a.min_txs as usize,
        threads: threads(a.threads),
    };
    rt.block_on(run(cfg, store, chain_dir, local, minting))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

async fn run(
    cfg: NetConfig,
    store: Option<ChainStore>,
    chain_dir: std::path::PathBuf,
    local: Local,
    minting: Minting,
) -> Result<()> {
    let (net, mut events, net_task) = p2p_net::start(cfg).await?;
    tracing::info!(peer_id = %net.local_peer_id(), "node started");
    if let Some(s) = &store {
        let t = s.tip();
        tracing::info!(height = t.height, tip = %t.hash.short(), "chain loaded");
    }
    let chain = chain_node::chain::spawn::<PeerId>(store, chain_dir);
    let (mined_tx, mut mined_rx) = mpsc::channel::<Option<Block>>(4);
    let (gossip, gossip_rx) = mpsc::channel(GOSSIP_QUEUE);
    let node = Arc::new(Node {
        chain,
        net: net.clone(),
        gossip,
        local: Mutex::new(local),
        minting,
        mined_tx,
    });
    tokio::spawn(node.clone().gossip_worker(gossip_rx));
    let mut poll = tokio::time::interval(Duration::from_secs(3));
    let mut printed_join = false;
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            ev = events.recv() => match ev {
                None => break,
                Some(NetEvent::Listening(addr)) => {
                    if p2p_net::is_dialable(&addr) {
                        println!("Listening on {addr}");
                        if !printed_join && addr.to_string().starts_with("/ip4/127.") {
                            printed_join = true;
                            println!("To join this node, run on another node: NODE_ID=<its id> cargo run -p node -- startp2p -dest {addr}");
                        }
                    }
                }
                Some(ev) => node.clone().on_event(ev).await,
            },
            mined = mined_rx.recv() => {
                node.local().mining = None;
                if let Some(block) = mined.flatten() {
                    let _ = node.clone().on_block(block, None, None).await;
                }
                node.clone().maybe_mine().await;
            }
            _ = poll.tick() => {
                node.clone().poll_peers();
                node.clone().maybe_mine().await;
            }
        }
    }
    tracing::info!("shutting down");
    if let Some(c) = node.local().mining.take() {
        c.store(true, Ordering::Relaxed);
    }
    net.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), net_task).await;
    node.chain.close().await;
    tracing::info!("chain closed cleanly");
    Ok(())
}

fn status_of(view: Option<chain_node::ChainView>) -> Status {
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
        agent: format!("chain-node/{}", env!("CARGO_PKG_VERSION")),
    }
}

fn work_of(s: &Status) -> Work {
    Work::from_be_bytes(&s.total_work)
}

impl Node {
    fn local(&self) -> std::sync::MutexGuard<'_, Local> {
        // A panic while holding the lock would be a bug; the state is still usable for shutdown.
        self.local.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ban(&self, peer: PeerId) {
        self.chain.forget_peer(peer).await;
        let _ = self.net.ban(peer, BAN).await;
    }

    async fn on_event(self: Arc<Self>, ev: NetEvent) {
        match ev {
            NetEvent::Connected { peer, address } => {
                tracing::info!(%peer, %address, "peer connected");
                self.local().peers.insert(peer, None);
                tokio::spawn(self.clone().handshake(peer));
            }
            NetEvent::Disconnected { peer } => {
                tracing::info!(%peer, "peer disconnected");
                self.local().peers.remove(&peer);
            }
            NetEvent::Request {
                peer,
                request,
                reply,
            } => {
                // Answered in a task: a slow chain answer never holds up the loop.
                let me = self.clone();
                tokio::spawn(async move {
                    let response = me.answer(peer, request).await;
                    let _ = me.net.respond(reply, response).await;
                });
            }
            NetEvent::Announcement {
                peer,
                id,
                announcement,
            } => {
                // In arrival order (a payment's child must not overtake it),
                // on the gossip task; the loop waits only when it is full.
                let _ = self.gossip.send((peer, id, announcement)).await;
            }
            NetEvent::Misbehaved { peer, reason } => {
                tracing::warn!(%peer, "{reason}; banning the peer");
                self.ban(peer).await;
            }
            NetEvent::Listening(_) => {}
        }
    }

    /// Handles gossip in arrival order, off the event loop.
    async fn gossip_worker(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<(PeerId, GossipId, Announcement)>,
    ) {
        while let Some((peer, id, announcement)) = rx.recv().await {
            match announcement {
                Announcement::Block(block) => {
                    self.clone().on_block(block, Some(peer), Some(id)).await;
                }
                Announcement::Tx(tx) => {
                    let txid = tx.txid();
                    let out = self.chain.accept_tx(tx).await;
                    let verdict = to_gossip(out.verdict);
                    let _ = self.net.validate(id, verdict).await;
                    if verdict == Verdict::Accept {
                        tracing::info!(%txid, from = %peer, "transaction relayed");
                    }
                    // Honest peers validate before they relay, so an invalid
                    // transaction is the sender's fault.
                    if verdict == Verdict::Reject {
                        tracing::warn!(%peer, "sent an invalid transaction; banning the peer");
                        self.ban(peer).await;
                    }
                    self.clone().maybe_mine().await;
                }
            }
        }
    }

    /// Exchanges status with a peer, fetching the genesis when this node has no chain yet.
    async fn handshake(self: Arc<Self>, peer: PeerId) {
        let request = Request::Status(status_of(self.chain.view()));
        match self.net.request(peer, request).await {
            Ok(Response::Status(theirs)) => self.on_status(peer, theirs).await,
            Ok(other) => tracing::debug!(%peer, "unexpected answer to status: {other:?}"),
            Err(e) => tracing::debug!(%peer, "status request failed: {e}"),
        }
    }

    async fn on_status(self: &Arc<Self>, peer: PeerId, theirs: Status) {
        if theirs.genesis == BlockHash::ZERO {
            return; // a peer that has no chain yet
        }
        match self.chain.view().map(|v| v.genesis) {
            Some(g) if g != theirs.genesis => {
                tracing::warn!(%peer, ours = %g.short(), theirs = %theirs.genesis.short(), "refusing a peer on a different chain (its genesis differs)");
                let _ = self.net.ban(peer, BAN).await;
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
        if better && !self.is_slow(&peer) {
            self.clone().start_sync(peer);
        }
    }

    async fn fetch_genesis(&self, peer: PeerId, hash: BlockHash) -> Result<()> {
        let resp = self
            .net
            .request(peer, Request::GetData { hashes: vec![hash] })
            .await?;
        let Response::Blocks { blocks, .. } = resp else {
            bail!("unexpected answer")
        };
        let g = blocks
            .into_iter()
            .find(|b| b.hash() == hash)
            .context("the peer did not send its genesis")?;
        self.chain
            .create_from_genesis(g)
            .await
            .map_err(anyhow::Error::msg)?;
        tracing::info!(genesis = %hash.short(), %peer, "created the chain from the peer's genesis");
        Ok(())
    }

    fn start_sync(self: Arc<Self>, peer: PeerId) {
        {
            let mut l = self.local();
            if l.syncing {
                return;
            }
            l.syncing = true;
        }
        tokio::spawn(async move {
            if let Err(e) = self.sync_from(peer).await {
                tracing::warn!(%peer, "sync stopped: {e:#}");
            }
            self.local().syncing = false;
            // Minting waits while a sync runs; the mempool may be ready now.
            self.maybe_mine().await;
        });
    }

    /// Locator-based, batched sync: ask `peer` for the hashes after our
    /// locator, then fetch them in chunks from every peer that is at least as
    /// far along, several chunks in flight, connecting blocks in order.
    async fn sync_from(self: &Arc<Self>, peer: PeerId) -> Result<()> {
        let started = Instant::now();
        let mut fetched = 0u64;
        let target = self
            .local()
            .peers
            .get(&peer)
            .and_then(|p| p.as_ref().map(|s| s.best_height))
            .unwrap_or(0);
        let bar = cli_support::sync_bar(u64::from(target));
        loop {
            let Some(locator) = self.chain.locator().await else {
                return Ok(());
            };
            let asked = self.net.request(
                peer,
                Request::GetBlocks {
                    locator,
                    stop: None,
                },
            );
            let Ok(answer) = tokio::time::timeout(DELIVERY_DEADLINE, asked).await else {
                self.mark_slow(peer);
                bail!(
                    "no answer to getblocks within {} s",
                    DELIVERY_DEADLINE.as_secs()
                );
            };
            let Response::Inv { hashes } = answer? else {
                bail!("unexpected answer to getblocks");
            };
            let full_batch = hashes.len() >= p2p_proto::MAX_INV;
            let wanted = self.chain.unknown(hashes).await;
            if wanted.is_empty() {
                break;
            }
            let sources = self.sources_for(peer);
            let chunks: Vec<Vec<BlockHash>> =
                wanted.chunks(CHUNK).map(<[BlockHash]>::to_vec).collect();
            // Chunks are spread over the sources; each chunk's other sources
            // follow as fallbacks, and a source found slow is skipped from
            // then on (the futures are made as the window moves).
            let mut results =
                futures::stream::iter(chunks.into_iter().enumerate().map(|(i, chunk)| {
                    let me = self.clone();
                    let mut order: Vec<PeerId> = sources
                        .iter()
                        .cycle()
                        .skip(i % sources.len())
                        .take(sources.len())
                        .copied()
                        .collect();
                    order.sort_by_key(|p| self.is_slow(p));
                    async move { fetch_chunk(&me, order, chunk).await }
                }))
                .buffered(IN_FLIGHT);
            use futures::StreamExt;
            // A round in which nothing new is stored (only orphans or known
            // blocks) ends the sync: a peer cannot keep the node "syncing"
            // with hashes that lead nowhere.
            let mut stored = 0usize;
            while let Some(r) = results.next().await {
                let blocks = r?;
                for (block, from) in blocks {
                    fetched += 1;
                    let out = self.clone().on_block(block, Some(from), None).await;
                    if !out.valid {
                        bail!("peer {from} sent an invalid block");
                    }
                    if out.stored {
                        stored += 1;
                    }
                }
                let height = self.chain.view().map(|v| v.tip.height).unwrap_or(0);
                if let Some(b) = &bar {
                    b.set_position(u64::from(height));
                }
                let rate = fetched as f64 / started.elapsed().as_secs_f64().max(1e-3);
                tracing::info!(
                    height,
                    target,
                    rate = format!("{rate:.0} blocks/s"),
                    "syncing"
                );
            }
            if stored == 0 {
                bail!("peer {peer} offered blocks that do not connect to this chain");
            }
            if !full_batch {
                break;
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if fetched > 0 {
            if let Some(v) = self.chain.view() {
                tracing::info!(height = v.tip.height, tip = %v.tip.hash.short(), blocks = fetched, secs = format!("{:.1}", started.elapsed().as_secs_f64()), "sync finished");
            }
        }
        Ok(())
    }

    /// Whether `peer` missed a delivery deadline lately.
    fn is_slow(&self, peer: &PeerId) -> bool {
        let mut l = self.local();
        let now = Instant::now();
        l.slow.retain(|_, until| *until > now);
        l.slow.contains_key(peer)
    }

    /// Leaves `peer` out of syncs for a while.
    fn mark_slow(&self, peer: PeerId) {
        tracing::info!(%peer, "the peer did not deliver within {} s; asking other peers", DELIVERY_DEADLINE.as_secs());
        self.local().slow.insert(peer, Instant::now() + SLOW_FOR);
    }

    /// Peers to download from: the sync peer and every peer whose chain has
    /// at least as much work, slow ones left out.
    fn sources_for(&self, peer: PeerId) -> Vec<PeerId> {
        let now = Instant::now();
        let l = self.local();
        let min = l
            .peers
            .get(&peer)
            .and_then(|p| p.as_ref())
            .map(work_of)
            .unwrap_or_default();
        let mut v = vec![peer];
        for (p, status) in &l.peers {
            let slow = l.slow.get(p).is_some_and(|until| *until > now);
            if *p != peer && !slow && status.as_ref().is_some_and(|s| work_of(s) >= min) {
                v.push(*p);
            }
        }
        v
    }

    /// Hands a block from the network (`from`) or from the local miner to
    /// the chain actor, then carries out what it decided.
    async fn on_block(
        self: Arc<Self>,
        block: Block,
        from: Option<PeerId>,
        gossip: Option<GossipId>,
    ) -> chain_node::BlockOutcome<PeerId> {
        let hash = block.hash();
        let out = self.chain.accept_block(block, from).await;
        if let Some(id) = gossip {
            let _ = self.net.validate(id, to_gossip(out.verdict)).await;
        }
        if let Some(p) = out.offender {
            let _ = self.net.ban(p, BAN).await;
        }
        if out.tip_changed {
            if let Some(c) = self.local().mining.as_ref() {
                c.store(true, Ordering::Relaxed);
            }
        }
        if let Some(b) = &out.publish {
            tracing::info!(height = b.header.height, hash = %hash.short(), txs = b.transactions.len(), "minted block");
            let _ = self.net.publish(Announcement::Block(b.clone())).await;
        }
        if let Some(p) = out.ask_status {
            tokio::spawn(self.clone().handshake(p));
        }
        out
    }

    /// Answers a peer's request.
    async fn answer(self: &Arc<Self>, peer: PeerId, request: Request) -> Response {
        match request {
            Request::Status(theirs) => {
                let ours = self.chain.view().map(|v| status_of(Some(v)));
                let me = self.clone();
                tokio::spawn(async move { me.on_status(peer, theirs).await });
                ours.map(Response::Status)
                    .unwrap_or_else(|| Response::Error {
                        reason: "this node has no chain yet".into(),
                    })
            }
            Request::SubmitTx(tx) => {
                let txid = tx.txid();
                let relay = tx.clone();
                let response = self.chain.answer(Request::SubmitTx(tx)).await;
                match &response {
                    Response::TxAccepted { .. } => {
                        let pool = self.chain.view().map(|v| v.mempool_len).unwrap_or(0);
                        tracing::info!(%txid, %peer, pool, "transaction submitted");
                        let _ = self.net.publish(Announcement::Tx(relay)).await;
                        self.clone().maybe_mine().await;
                    }
                    Response::TxRejected { reason, .. } => {
                        tracing::info!(%txid, %peer, "refused a submitted transaction: {reason}");
                    }
                    _ => {}
                }
                response
            }
            other => self.chain.answer(other).await,
        }
    }

    /// Polls every peer's status; a peer with more work starts a sync.
    fn poll_peers(self: Arc<Self>) {
        let peers: Vec<PeerId> = self.local().peers.keys().copied().collect();
        for p in peers {
            tokio::spawn(self.clone().handshake(p));
        }
    }

    /// Starts mining when this node mints and the mempool holds enough transactions.
    async fn maybe_mine(self: Arc<Self>) {
        let Some(to) = self.minting.to else { return };
        {
            let l = self.local();
            if l.mining.is_some() || l.syncing {
                return;
            }
        }
        if self.chain.view().map(|v| v.mempool_len).unwrap_or(0) < self.minting.min_txs {
            return;
        }
        let Some(mut block) = self.chain.template(to, self.minting.min_txs).await else {
            return;
        };
        let cancel = Arc::new(AtomicBool::new(false));
        {
            let mut l = self.local();
            // Another task may have started a search meanwhile.
            if l.mining.is_some() || l.syncing {
                return;
            }
            l.mining = Some(cancel.clone());
        }
        tracing::info!(
            height = block.header.height,
            txs = block.transactions.len() - 1,
            "minting"
        );
        let tx = self.mined_tx.clone();
        let threads = self.minting.threads;
        tokio::task::spawn_blocking(move || {
            let found = solve(&mut block, threads, &cancel, &mut |p| {
                tracing::debug!(
                    hashes = p.hashes,
                    rate = format!("{:.0}/s", p.rate()),
                    "mining"
                );
            });
            let _ = tx.blocking_send(found.then_some(block));
        });
    }
}

/// Fetches one chunk of blocks, asking the peers in `order` in turn for what
/// is still missing. A peer that does not answer within [`DELIVERY_DEADLINE`]
/// is marked slow and the next one is asked. Returns the blocks in the order
/// asked.
async fn fetch_chunk(
    node: &Node,
    order: Vec<PeerId>,
    chunk: Vec<BlockHash>,
) -> Result<Vec<(Block, PeerId)>> {
    let net = &node.net;
    let mut got: HashMap<BlockHash, (Block, PeerId)> = HashMap::new();
    let mut tried: HashSet<PeerId> = HashSet::new();
    for peer in order {
        if !tried.insert(peer) {
            continue;
        }
        let missing: Vec<BlockHash> = chunk
            .iter()
            .filter(|h| !got.contains_key(h))
            .copied()
            .collect();
        if missing.is_empty() {
            break;
        }
        // A reply may stop early for size; ask again for the rest.
        let mut rest = missing;
        while !rest.is_empty() {
            let asked = net.request(
                peer,
                Request::GetData {
                    hashes: rest.clone(),
                },
            );
            let Ok(answer) = tokio::time::timeout(DELIVERY_DEADLINE, asked).await else {
                node.mark_slow(peer);
                break;
            };
            match answer {
                Ok(Response::Blocks { blocks, .. }) if !blocks.is_empty() => {
                    let before = rest.len();
                    let mut unasked = 0usize;
                    for b in blocks {
                        let h = b.hash();
                        if rest.contains(&h) {
                            got.insert(h, (b, peer));
                        } else {
                            unasked += 1;
                        }
                    }
                    rest.retain(|h| !got.contains_key(h));
                    if unasked > 0 {
                        // Honest peers answer only what was asked.
                        tracing::warn!(%peer, unasked, "sent blocks that were not asked for; banning the peer");
                        node.ban(peer).await;
                        break;
                    }
                    // Each round must deliver something, so this loop ends.
                    if rest.len() == before {
                        break;
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::debug!(%peer, "getdata failed: {e}");
                    break;
                }
            }
        }
    }
    chunk
        .iter()
        .map(|h| {
            got.remove(h)
                .with_context(|| format!("no peer sent block {}", h.short()))
        })
        .collect()
}
