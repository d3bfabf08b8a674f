//! `startp2p`: the networked node.
//!
//! One loop owns the decisions: it reads network events, mined blocks, a
//! status-poll timer and shutdown signals. Chain state (the store, the
//! mempool, what is known of peers) sits behind one mutex; downloads and
//! handshakes run as tasks that take it briefly. Mining runs on blocking
//! threads, so the node keeps answering peers while it mines, and a new tip
//! cancels a stale search.

use crate::chain_cmds::{threads, Ctx};
use anyhow::{bail, Context, Result};
use chain_core::miner::{assemble_block, solve};
use chain_core::pow::Work;
use chain_core::{Block, BlockHash, Mempool, MempoolError, PubkeyHash};
use chain_node::orphans::check_orphan_header;
use chain_node::OrphanPool;
use chain_store::{unix_now, Accepted, ChainStore, StoreError};
use p2p_net::{GossipId, Multiaddr, NetConfig, NetEvent, NetHandle, PeerId, Verdict};
use p2p_proto::{Announcement, Request, Response, Status, UtxoEntry};
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

struct PeerInfo {
    status: Option<Status>,
}

struct State {
    store: Option<ChainStore>,
    chain_dir: std::path::PathBuf,
    mempool: Mempool,
    peers: HashMap<PeerId, PeerInfo>,
    orphans: OrphanPool<PeerId>,
    /// The only peers a genesis is taken from: the --dest peers.
    genesis_peers: HashSet<PeerId>,
    /// The genesis hash they must serve, when --genesis is given.
    expected_genesis: Option<BlockHash>,
    mining: Option<Arc<AtomicBool>>,
    syncing: bool,
}

type Shared = Arc<Mutex<State>>;

struct Node {
    state: Shared,
    net: NetHandle,
    minter: Option<PubkeyHash>,
    min_txs: usize,
    threads: usize,
    mined_tx: mpsc::Sender<Option<Block>>,
}

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    // A panic while holding the lock would be a bug; the state is still usable for shutdown.
    s.lock().unwrap_or_else(|p| p.into_inner())
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
    let state = State {
        store,
        chain_dir,
        mempool: Mempool::default(),
        peers: HashMap::new(),
        orphans: OrphanPool::default(),
        genesis_peers,
        expected_genesis: a.genesis,
        mining: None,
        syncing: false,
    };
    rt.block_on(run(
        cfg,
        state,
        minter.map(|m| m.pubkey_hash()),
        a.min_txs as usize,
        threads(a.threads),
    ))
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
    state: State,
    minter: Option<PubkeyHash>,
    min_txs: usize,
    threads: usize,
) -> Result<()> {
    let (net, mut events, net_task) = p2p_net::start(cfg).await?;
    tracing::info!(peer_id = %net.local_peer_id(), "node started");
    if let Some(s) = &state.store {
        let t = s.tip();
        tracing::info!(height = t.height, tip = %t.hash.short(), "chain loaded");
    }
    let (mined_tx, mut mined_rx) = mpsc::channel::<Option<Block>>(4);
    let node = Arc::new(Node {
        state: Arc::new(Mutex::new(state)),
        net: net.clone(),
        minter,
        min_txs,
        threads,
        mined_tx,
    });
    let _ = NODE.set(node.clone());
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
                lock(&node.state).mining = None;
                if let Some(block) = mined.flatten() {
                    let _ = node.on_block(block, None, None).await;
                }
                node.maybe_mine();
            }
            _ = poll.tick() => {
                node.clone().poll_peers().await;
                node.maybe_mine();
            }
        }
    }
    tracing::info!("shutting down");
    if let Some(c) = lock(&node.state).mining.take() {
        c.store(true, Ordering::Relaxed);
    }
    net.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), net_task).await;
    let store = lock(&node.state).store.take();
    drop(store);
    tracing::info!("chain closed cleanly");
    Ok(())
}

fn our_status(store: &ChainStore) -> Status {
    let t = store.tip();
    Status {
        protocol_version: p2p_proto::PROTOCOL_VERSION,
        genesis: store.genesis_hash(),
        best_height: t.height,
        best_hash: t.hash,
        total_work: t.work.to_be_bytes(),
        agent: format!("chain-node/{}", env!("CARGO_PKG_VERSION")),
    }
}

fn work_of(s: &Status) -> Work {
    Work::from_be_bytes(&s.total_work)
}

impl Node {
    async fn on_event(self: Arc<Self>, ev: NetEvent) {
        match ev {
            NetEvent::Connected { peer, address } => {
                tracing::info!(%peer, %address, "peer connected");
                lock(&self.state)
                    .peers
                    .insert(peer, PeerInfo { status: None });
                tokio::spawn(self.clone().handshake(peer));
            }
            NetEvent::Disconnected { peer } => {
                tracing::info!(%peer, "peer disconnected");
                lock(&self.state).peers.remove(&peer);
            }
            NetEvent::Request {
                peer,
                request,
                reply,
            } => {
                let response = self.answer(peer, request).await;
                let _ = self.net.respond(reply, response).await;
            }
            NetEvent::Announcement {
                peer,
                id,
                announcement,
            } => match announcement {
                Announcement::Block(block) => {
                    self.on_block(block, Some(peer), Some(id)).await;
                }
                Announcement::Tx(tx) => {
                    let verdict = self.on_tx(tx, Some(peer));
                    let _ = self.net.validate(id, verdict).await;
                    // Honest peers validate before they relay, so an invalid
                    // transaction is the sender's fault.
                    if verdict == Verdict::Reject {
                        tracing::warn!(%peer, "sent an invalid transaction; banning the peer");
                        let _ = self.net.ban(peer, BAN).await;
                    }
                }
            },
            NetEvent::Misbehaved { peer, reason } => {
                tracing::warn!(%peer, "{reason}; banning the peer");
                let _ = self.net.ban(peer, BAN).await;
            }
            NetEvent::Listening(_) => {}
        }
    }

    /// Exchanges status with a new peer, fetching the genesis when this node has no chain yet.
    async fn handshake(self: Arc<Self>, peer: PeerId) {
        let ours = lock(&self.state).store.as_ref().map(our_status);
        let request = Request::Status(ours.clone().unwrap_or(Status {
            protocol_version: p2p_proto::PROTOCOL_VERSION,
            genesis: BlockHash::ZERO,
            best_height: 0,
            best_hash: BlockHash::ZERO,
            total_work: [0; 32],
            agent: format!("chain-node/{}", env!("CARGO_PKG_VERSION")),
        }));
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
        let genesis = lock(&self.state).store.as_ref().map(|s| s.genesis_hash());
        match genesis {
            Some(g) if g != theirs.genesis => {
                tracing::warn!(%peer, ours = %g.short(), theirs = %theirs.genesis.short(), "refusing a peer on a different chain (its genesis differs)");
                let _ = self.net.ban(peer, BAN).await;
                return;
            }
            None => {
                let (allowed, expected) = {
                    let st = lock(&self.state);
                    (st.genesis_peers.contains(&peer), st.expected_genesis)
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
        let better = {
            let mut st = lock(&self.state);
            if let Some(p) = st.peers.get_mut(&peer) {
                p.status = Some(theirs.clone());
            }
            st.store
                .as_ref()
                .is_some_and(|s| work_of(&theirs) > s.tip().work)
        };
        if better {
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
        let mut st = lock(&self.state);
        if st.store.is_some() {
            return Ok(());
        }
        let store = ChainStore::create(&st.chain_dir, &g)?;
        tracing::info!(genesis = %hash.short(), %peer, "created the chain from the peer's genesis");
        st.store = Some(store);
        Ok(())
    }

    fn start_sync(self: Arc<Self>, peer: PeerId) {
        {
            let mut st = lock(&self.state);
            if st.syncing {
                return;
            }
            st.syncing = true;
        }
        tokio::spawn(async move {
            if let Err(e) = self.sync_from(peer).await {
                tracing::warn!(%peer, "sync stopped: {e:#}");
            }
            lock(&self.state).syncing = false;
            // Minting waits while a sync runs; the mempool may be ready now.
            self.maybe_mine();
        });
    }

    /// Locator-based, batched sync: ask `peer` for the hashes after our
    /// locator, then fetch them in chunks from every peer that is at least as
    /// far along, several chunks in flight, connecting blocks in order.
    async fn sync_from(self: &Arc<Self>, peer: PeerId) -> Result<()> {
        let started = Instant::now();
        let mut fetched = 0u64;
        let target = lock(&self.state)
            .peers
            .get(&peer)
            .and_then(|p| p.status.as_ref().map(|s| s.best_height))
            .unwrap_or(0);
        let bar = cli_support::sync_bar(u64::from(target));
        loop {
            let locator = match lock(&self.state).store.as_ref() {
                Some(s) => s.locator()?,
                None => return Ok(()),
            };
            let Response::Inv { hashes } = self
                .net
                .request(
                    peer,
                    Request::GetBlocks {
                        locator,
                        stop: None,
                    },
                )
                .await?
            else {
                bail!("unexpected answer to getblocks");
            };
            let full_batch = hashes.len() >= p2p_proto::MAX_INV;
            let wanted: Vec<BlockHash> = {
                let st = lock(&self.state);
                let Some(store) = st.store.as_ref() else {
                    return Ok(());
                };
                hashes
                    .into_iter()
                    .filter(|h| !matches!(store.header_entry(h), Ok(Some(_))))
                    .collect()
            };
            if wanted.is_empty() {
                break;
            }
            let sources = self.sources_for(peer);
            let chunks: Vec<Vec<BlockHash>> =
                wanted.chunks(CHUNK).map(<[BlockHash]>::to_vec).collect();
            let mut results =
                futures::stream::iter(chunks.into_iter().enumerate().map(|(i, chunk)| {
                    let net = self.net.clone();
                    let source = sources[i % sources.len()];
                    async move { fetch_chunk(&net, source, peer, chunk).await }
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
                    let hash = block.hash();
                    let known_before = self.has_block(&hash);
                    if !self.on_block(block, Some(from), None).await {
                        bail!("peer {from} sent an invalid block");
                    }
                    if !known_before && self.has_block(&hash) {
                        stored += 1;
                    }
                }
                let height = lock(&self.state)
                    .store
                    .as_ref()
                    .map(|s| s.tip().height)
                    .unwrap_or(0);
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
            let t = lock(&self.state).store.as_ref().map(|s| s.tip());
            if let Some(t) = t {
                tracing::info!(height = t.height, tip = %t.hash.short(), blocks = fetched, secs = format!("{:.1}", started.elapsed().as_secs_f64()), "sync finished");
            }
        }
        Ok(())
    }

    /// Whether the store holds `hash` (on any branch).
    fn has_block(&self, hash: &BlockHash) -> bool {
        lock(&self.state)
            .store
            .as_ref()
            .is_some_and(|s| matches!(s.header_entry(hash), Ok(Some(_))))
    }

    /// Peers to download from: the sync peer and every peer whose chain has at least as much work.
    fn sources_for(&self, peer: PeerId) -> Vec<PeerId> {
        let st = lock(&self.state);
        let min = st
            .peers
            .get(&peer)
            .and_then(|p| p.status.as_ref())
            .map(work_of)
            .unwrap_or_default();
        let mut v = vec![peer];
        for (p, info) in &st.peers {
            if *p != peer && info.status.as_ref().is_some_and(|s| work_of(s) >= min) {
                v.push(*p);
            }
        }
        v
    }

    /// Handles a block from the network (`from`) or from the local miner.
    /// Returns false when the block was invalid.
    async fn on_block(&self, block: Block, from: Option<PeerId>, gossip: Option<GossipId>) -> bool {
        let hash = block.hash();
        let (verdict, ok, publish, ask_status) = {
            let mut st = lock(&self.state);
            let State {
                store,
                mempool,
                orphans,
                mining,
                ..
            } = &mut *st;
            let Some(store) = store.as_mut() else {
                return true;
            };
            let mut queue = vec![(block, from)];
            let mut verdict = Verdict::Ignore;
            let mut ok = true;
            let mut publish = None;
            let mut ask_status = None;
            let mut first = true;
            while let Some((b, src)) = queue.pop() {
                let h = b.hash();
                let who = src
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "this node".into());
                let res = store.accept_block(&b, unix_now());
                let this_verdict = match res {
                    Ok(Accepted::NewTip(update)) => {
                        for d in &update.disconnected {
                            tracing::info!(height = d.header.height, hash = %d.hash().short(), "disconnected block (reorganisation)");
                        }
                        for c in &update.connected {
                            tracing::info!(height = c.header.height, hash = %c.hash().short(), txs = c.transactions.len(), from = %who, "connected block");
                        }
                        let dropped = mempool.update_for_chain(
                            update.returned_transactions(),
                            &update.connected,
                            &*store,
                        );
                        for (txid, why) in dropped {
                            tracing::debug!(%txid, "dropped from the mempool: {why}");
                        }
                        if let Some(c) = mining.as_ref() {
                            c.store(true, Ordering::Relaxed);
                        }
                        for (o, from) in orphans.take_children(&h) {
                            queue.push((o, Some(from)));
                        }
                        if src.is_none() && first {
                            publish = Some(b.clone());
                        }
                        Verdict::Accept
                    }
                    Ok(Accepted::SideChain) => {
                        tracing::info!(height = b.header.height, hash = %h.short(), from = %who, "stored a side-chain block");
                        // Not connected, so not fully validated: never forwarded.
                        Verdict::Ignore
                    }
                    Ok(Accepted::AlreadyHave) => Verdict::Ignore,
                    Ok(Accepted::Orphan { parent }) => {
                        // Checked before it takes room: its own proof of work
                        // at a difficulty the chain allows at its height.
                        let tip = store.tip();
                        let held = match (src, store.context_for_tip(unix_now())) {
                            (Some(p), Ok(ctx)) => check_orphan_header(
                                &b,
                                store.params(),
                                ctx.expected_bits,
                                tip.height.saturating_add(1),
                            )
                            .and_then(|()| {
                                let size = b.encode().len();
                                orphans.insert(b, size, p)
                            })
                            .map(|_| Some(p)),
                            // This node's own blocks are never orphans.
                            (None, _) | (_, Err(_)) => Ok(None),
                        };
                        match held {
                            Ok(None) => Verdict::Ignore,
                            Ok(Some(p)) => {
                                tracing::debug!(hash = %h.short(), parent = %parent.short(), pool = orphans.len(), "orphan block; asking its sender where its chain stands");
                                // Only the sender's status, checked against
                                // this node's work, can start a sync.
                                ask_status = Some(p);
                                Verdict::Ignore
                            }
                            Err(e) if e.is_sender_fault() => {
                                tracing::warn!(hash = %h.short(), from = %who, "rejected orphan block: {e}");
                                if first {
                                    ok = false;
                                }
                                Verdict::Reject
                            }
                            Err(_) => Verdict::Ignore,
                        }
                    }
                    Err(StoreError::InvalidBlock { hash: bad, error }) => {
                        tracing::warn!(hash = %bad.short(), from = %who, "rejected block: {error}");
                        if !error.is_sender_fault() {
                            Verdict::Ignore
                        } else {
                            if first {
                                ok = false;
                            }
                            Verdict::Reject
                        }
                    }
                    Err(e) => {
                        tracing::error!(hash = %h.short(), "storing block failed: {e}");
                        Verdict::Ignore
                    }
                };
                if first {
                    verdict = this_verdict;
                    first = false;
                }
            }
            (verdict, ok, publish, ask_status)
        };
        if let Some(id) = gossip {
            let _ = self.net.validate(id, verdict).await;
        }
        if !ok {
            if let Some(p) = from {
                lock(&self.state).orphans.forget_peer(&p);
                let _ = self.net.ban(p, BAN).await;
            }
        }
        if let Some(b) = publish {
            tracing::info!(height = b.header.height, hash = %hash.short(), txs = b.transactions.len(), "minted block");
            let _ = self.net.publish(Announcement::Block(b)).await;
        }
        if let (Some(p), Some(me)) = (ask_status, self.self_arc()) {
            tokio::spawn(me.handshake(p));
        }
        self.maybe_mine();
        ok
    }

    fn self_arc(&self) -> Option<Arc<Node>> {
        NODE.get().cloned()
    }

    /// Offers a transaction to the mempool.
    fn on_tx(&self, tx: chain_core::Transaction, from: Option<PeerId>) -> Verdict {
        let txid = tx.txid();
        let verdict = {
            let mut st = lock(&self.state);
            let State { store, mempool, .. } = &mut *st;
            let Some(store) = store.as_ref() else {
                return Verdict::Ignore;
            };
            match mempool.accept(tx, store) {
                Ok(_) => {
                    tracing::info!(%txid, from = %from.map(|p| p.to_string()).unwrap_or_else(|| "a wallet".into()), pool = mempool.len(), "transaction accepted");
                    Verdict::Accept
                }
                Err(MempoolError::AlreadyKnown(_)) => Verdict::Ignore,
                Err(e) if !e.is_sender_fault() => {
                    tracing::info!(%txid, "transaction not taken: {e}");
                    Verdict::Ignore
                }
                Err(e) => {
                    tracing::info!(%txid, "rejected transaction: {e}");
                    Verdict::Reject
                }
            }
        };
        self.maybe_mine();
        verdict
    }

    /// Answers a peer's request.
    async fn answer(self: &Arc<Self>, peer: PeerId, request: Request) -> Response {
        let no_chain = || Response::Error {
            reason: "this node has no chain yet".into(),
        };
        match request {
            Request::Status(theirs) => {
                let ours = lock(&self.state).store.as_ref().map(our_status);
                let me = self.clone();
                tokio::spawn(async move { me.on_status(peer, theirs).await });
                ours.map(Response::Status).unwrap_or_else(no_chain)
            }
            Request::GetBlocks { locator, stop } => {
                let st = lock(&self.state);
                let Some(s) = st.store.as_ref() else {
                    return no_chain();
                };
                match s.hashes_after(&locator, stop, p2p_proto::MAX_INV) {
                    Ok(hashes) => Response::Inv { hashes },
                    Err(e) => Response::Error {
                        reason: p2p_proto::clip_reason(e.to_string()),
                    },
                }
            }
            Request::GetData { hashes } => {
                let st = lock(&self.state);
                let Some(s) = st.store.as_ref() else {
                    return no_chain();
                };
                let mut blocks = Vec::new();
                let mut not_found = Vec::new();
                let mut bytes = 0usize;
                for h in hashes {
                    if blocks.len() >= p2p_proto::MAX_BLOCKS_PER_REPLY
                        || bytes >= p2p_proto::BLOCKS_REPLY_BUDGET
                    {
                        break;
                    }
                    match s.block(&h) {
                        Ok(Some(b)) => {
                            bytes += b.encode().len();
                            blocks.push(b);
                        }
                        _ => not_found.push(h),
                    }
                }
                Response::Blocks { blocks, not_found }
            }
            Request::SubmitTx(tx) => {
                let txid = tx.txid();
                let result = {
                    let mut st = lock(&self.state);
                    let State { store, mempool, .. } = &mut *st;
                    match store.as_ref() {
                        None => Err("this node has no chain yet".to_string()),
                        Some(store) => mempool.accept(tx.clone(), store).map_err(|e| e.to_string()),
                    }
                };
                match result {
                    Ok(_) => {
                        tracing::info!(%txid, %peer, pool = lock(&self.state).mempool.len(), "transaction submitted");
                        let _ = self.net.publish(Announcement::Tx(tx)).await;
                        self.maybe_mine();
                        Response::TxAccepted { txid }
                    }
                    Err(reason) => {
                        tracing::info!(%txid, %peer, "refused a submitted transaction: {reason}");
                        Response::TxRejected {
                            txid,
                            reason: p2p_proto::clip_reason(reason),
                        }
                    }
                }
            }
            Request::GetUtxos { pubkey_hash } => {
                let st = lock(&self.state);
                let Some(s) = st.store.as_ref() else {
                    return no_chain();
                };
                let confirmed = match s.utxos_for(&pubkey_hash) {
                    Ok(c) => c,
                    Err(e) => {
                        return Response::Error {
                            reason: p2p_proto::clip_reason(e.to_string()),
                        }
                    }
                };
                let mut utxos: Vec<UtxoEntry> = confirmed
                    .into_iter()
                    .filter(|(op, _)| st.mempool.spender_of(op).is_none())
                    .map(|(op, c)| UtxoEntry {
                        outpoint: op,
                        value: c.output.value,
                        confirmed_height: Some(c.height),
                    })
                    .collect();
                utxos.extend(
                    st.mempool
                        .unspent_outputs()
                        .filter(|(_, o)| o.pubkey_hash == pubkey_hash)
                        .map(|(op, o)| UtxoEntry {
                            outpoint: op,
                            value: o.value,
                            confirmed_height: None,
                        }),
                );
                utxos.truncate(p2p_proto::MAX_UTXOS);
                Response::Utxos {
                    height: s.tip().height,
                    utxos,
                }
            }
        }
    }

    /// Polls every peer's status; a peer with more work starts a sync.
    async fn poll_peers(self: Arc<Self>) {
        let peers: Vec<PeerId> = lock(&self.state).peers.keys().copied().collect();
        for p in peers {
            tokio::spawn(self.clone().handshake(p));
        }
    }

    /// Starts mining when this node mints and the mempool holds enough transactions.
    fn maybe_mine(&self) {
        let Some(to) = self.minter else { return };
        let mut st = lock(&self.state);
        if st.mining.is_some() || st.syncing || st.mempool.len() < self.min_txs {
            return;
        }
        let Some(store) = st.store.as_ref() else {
            return;
        };
        let now = unix_now();
        let Ok(ctx) = store.context_for_tip(now) else {
            return;
        };
        let (txs, fees) = st.mempool.block_template();
        let tip = store.tip();
        let mut block = assemble_block(
            store.params(),
            &tip.header,
            ctx.expected_bits,
            now.max(ctx.median_time_past + 1),
            to,
            txs,
            fees,
        );
        let cancel = Arc::new(AtomicBool::new(false));
        st.mining = Some(cancel.clone());
        drop(st);
        tracing::info!(
            height = block.header.height,
            txs = block.transactions.len() - 1,
            "minting"
        );
        let tx = self.mined_tx.clone();
        let threads = self.threads;
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

/// The node, for tasks that need an owning handle.
static NODE: std::sync::OnceLock<Arc<Node>> = std::sync::OnceLock::new();

/// Fetches one chunk of blocks from `source`, falling back to `origin` for
/// anything missing. Returns the blocks in the order asked.
async fn fetch_chunk(
    net: &NetHandle,
    source: PeerId,
    origin: PeerId,
    chunk: Vec<BlockHash>,
) -> Result<Vec<(Block, PeerId)>> {
    let mut got: HashMap<BlockHash, (Block, PeerId)> = HashMap::new();
    let mut tried: HashSet<PeerId> = HashSet::new();
    for peer in [source, origin] {
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
            match net
                .request(
                    peer,
                    Request::GetData {
                        hashes: rest.clone(),
                    },
                )
                .await
            {
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
                        let _ = net.ban(peer, BAN).await;
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
