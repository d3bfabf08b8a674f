//! A network of whole nodes in one process: each is the node engine
//! ([`chain_node`]) on a real p2p-net host over libp2p's memory transport,
//! with a store of its own in a temporary directory.
//!
//! [`run`] starts the nodes on a copy of one starting chain, has each dial
//! a few random others (Kademlia finds the rest), then measures:
//! - blocks minted at random nodes, one at a time: when each node has it;
//! - payments submitted at random nodes: when each mempool has them;
//! - the bytes each host sent and received, and the duplicate gossip
//!   copies it was sent;
//! - a partition into a small and a large side that both mine, the small
//!   side more: how long after the heal every node is on its branch;
//! - a newcomer with a bare genesis and many peers: how long its sync takes.
//!
//! Times are taken from the chain actors' events ([`chain_node::ChainEvent`]),
//! sent once a block's writes have landed or a payment is in the mempool,
//! and from each node's blocks in hand ([`chain_node::Node::blocks_in_hand`]),
//! each timed as a thread of the simulation's own receives it (not the
//! runtime the nodes share, which may be busy): `observer`.
//! With [`SimConfig::chain_nice`], the nodes' chain threads run at a lower
//! priority than the runtime's workers, which carry every node's
//! networking ([`sched`]).

mod fixture;
pub mod internet;
mod observer;
pub mod report;
pub mod sched;
pub mod stats;

pub use fixture::Fixture;
use observer::{Arrivals, Observer};
pub use report::Report;

use anyhow::{bail, Context as _};
use chain_core::{PubkeyHash, Txid};
use chain_node::{Minting, NodeConfig, PoolSettings};
use chain_store::ChainStore;
use node_host::{NodeSetup, Running};
use p2p_net::{GossipParams, Multiaddr, NetConfig, PeerId};
use rand::seq::index::sample;
use rand::{rngs::StdRng, Rng, SeedableRng};
use stats::Traffic;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Nodes in the network.
    pub nodes: usize,
    /// Blocks minted, one at a time, each at a random node.
    pub blocks: usize,
    /// Payments submitted, each at a random node.
    pub txs: usize,
    /// Payments submitted per second (0: all at once).
    pub tx_rate: f64,
    /// The random seed: the same seed, the same topology and load.
    pub seed: u64,
    /// Fewest and most peers each node dials at start.
    pub dials: (usize, usize),
    /// Nodes on the small side of the partition (0: no partition).
    pub partition: usize,
    /// Peers the newcomer dials (0: no newcomer).
    pub newcomer_peers: usize,
    /// Most established connections per node.
    pub max_connections: u32,
    /// Gossipsub's parameters on every node.
    pub gossip: GossipParams,
    /// How long to wait for one block or for the payments to reach every node.
    pub timeout: Duration,
    /// How long the connected network is left to settle before measuring
    /// (gossip meshes); then, until no node has made a connection for
    /// [`QUIET`] (Kademlia's first lookups), at most the timeout.
    pub settle: Duration,
    /// Payments gossiped to every mempool before each block, which the
    /// block then carries.
    pub block_txs: usize,
    /// The links between nodes: `None`, loopback's (every byte at once);
    /// `Some(loss)`, the internet's latencies and rates ([`internet`]),
    /// each write lost with probability `loss`.
    pub internet: Option<f64>,
    /// Blocks announced compact (`true`) or in full.
    pub compact_blocks: bool,
    /// `nice` steps the nodes' chain threads run below the process (0:
    /// none; see [`sched`]).
    pub chain_nice: i32,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 25,
            blocks: 20,
            txs: 200,
            tx_rate: 0.0,
            seed: 1,
            dials: (3, 8),
            partition: 2,
            newcomer_peers: 8,
            max_connections: 64,
            gossip: GossipParams::default(),
            timeout: Duration::from_secs(30),
            settle: Duration::from_secs(5),
            block_txs: 0,
            internet: None,
            compact_blocks: true,
            chain_nice: 0,
        }
    }
}

/// One simulated node.
struct SimNode {
    running: Running,
    addr: Multiaddr,
    peer: PeerId,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// How long no node may have made a connection before the network counts
/// as settled.
pub const QUIET: Duration = Duration::from_secs(3);

/// The simulation's running state.
struct Sim {
    cfg: SimConfig,
    rng: StdRng,
    root: tempfile::TempDir,
    nodes: Vec<SimNode>,
    obs: Observer,
    fixture: Fixture,
    /// Who dialled whom at start.
    edges: Vec<(usize, usize)>,
    /// The simulated links, and the draw of each node's (its own random
    /// stream, so that the topology is the same with or without them).
    links: Option<(Arc<p2p_net::link::LinkNetwork>, StdRng)>,
    /// Fixture coins spent so far.
    spent: usize,
}

/// Runs the simulation `cfg` describes and reports what it measured.
pub async fn run(cfg: SimConfig) -> anyhow::Result<Report> {
    if cfg.nodes < 2 {
        bail!("a network needs at least 2 nodes, not {}", cfg.nodes);
    }
    if cfg.dials.0 == 0 || cfg.dials.0 > cfg.dials.1 {
        bail!("dials must be a range like 3..8, not {:?}", cfg.dials);
    }
    if cfg.partition >= cfg.nodes {
        bail!(
            "the partition's small side ({}) must be smaller than the network ({})",
            cfg.partition,
            cfg.nodes
        );
    }
    let started = Instant::now();
    let fixture = Fixture::new(cfg.txs + cfg.blocks * cfg.block_txs);
    let links = cfg.internet.map(|loss| {
        (
            internet::network(loss, cfg.seed),
            StdRng::seed_from_u64(cfg.seed ^ 0x6c69_6e6b),
        )
    });
    let root = tempfile::tempdir().context("a temporary directory for the nodes")?;
    make_template(root.path(), &fixture)?;
    let mut sim = Sim {
        rng: StdRng::seed_from_u64(cfg.seed),
        cfg,
        root,
        nodes: Vec::new(),
        obs: Observer::new(),
        fixture,
        edges: Vec::new(),
        links,
        spent: 0,
    };
    let mut report = Report::new(&sim.cfg);
    let result = sim.measure(&mut report, started).await;
    report.lost_events = sim.obs.lost.load(std::sync::atomic::Ordering::Relaxed);
    sim.stop().await;
    result.map(|()| report)
}

/// The starting chain's store, once, to be copied for each node; and a
/// store with only its genesis, for the newcomer.
fn make_template(root: &Path, fixture: &Fixture) -> anyhow::Result<()> {
    let mut s = ChainStore::create(&root.join("template"), &fixture.genesis)?;
    for b in &fixture.blocks {
        s.accept_block(b, chain_store::unix_now())?;
    }
    drop(s);
    drop(ChainStore::create(&root.join("bare"), &fixture.genesis)?);
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

impl Sim {
    async fn measure(&mut self, report: &mut Report, started: Instant) -> anyhow::Result<()> {
        for i in 0..self.cfg.nodes {
            self.start_node(i, "template").await?;
        }
        self.connect().await?;
        report.startup = started.elapsed();
        let mut block_traffic = vec![Traffic::default(); self.nodes.len()];
        for _ in 0..self.cfg.blocks {
            if self.cfg.block_txs > 0 {
                self.spread_payments(self.cfg.block_txs).await?;
                // Copies still on their way (gossip's duplicates, and the
                // IHAVEs of the last three heartbeats) land before the
                // block's bytes are counted.
                tokio::time::sleep(self.cfg.gossip.heartbeat * 4).await;
            }
            let m = self.rng.gen_range(0..self.nodes.len());
            let everyone: Vec<usize> = (0..self.nodes.len()).collect();
            let before = self.traffic().await;
            let arrivals = self.mint_at(m, &everyone).await?;
            let after = self.traffic().await;
            for (sum, d) in block_traffic.iter_mut().zip(diff(&after, &before)) {
                *sum = sum.plus(&d);
            }
            report.blocks.push(arrivals.connected);
            report.blocks_in_hand.push(arrivals.in_hand);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let after_blocks = self.traffic().await;
        for node in &self.nodes {
            report.peers.push(node.running.net.peers().await?.len());
        }
        report.block_traffic = block_traffic;
        self.payments(report).await?;
        report.tx_traffic = diff(&self.traffic().await, &after_blocks);
        if self.cfg.partition > 0 {
            self.partition(report).await?;
        }
        if self.cfg.newcomer_peers > 0 {
            self.newcomer(report).await?;
        }
        Ok(())
    }

    /// Starts node `i` on a copy of the store `template`.
    async fn start_node(&mut self, i: usize, template: &str) -> anyhow::Result<()> {
        let dir = self.root.path().join(format!("node-{i}"));
        let chain_dir = dir.join("blocks");
        copy_dir(&self.root.path().join(template), &chain_dir)?;
        let store = ChainStore::open(&chain_dir)?;
        let tip = store.tip().hash;
        let cfg = NetConfig {
            identity_dir: dir.join("p2p"),
            listen: vec!["/memory/0".parse()?],
            bootstrap: vec![],
            mdns: false,
            agent: format!("net-sim/{i}"),
            max_connections: self.cfg.max_connections,
            gossip: self.cfg.gossip,
            reach: Default::default(),
            link: self
                .links
                .as_mut()
                .map(|(net, rng)| net.attach(internet::draw(rng))),
        };
        let setup = NodeSetup {
            store: Some(store),
            chain_dir,
            pool: PoolSettings::default(),
            node: node_config(self.cfg.compact_blocks),
            http: None,
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let (addr_tx, addr_rx) = oneshot::channel();
        let (run_tx, run_rx) = oneshot::channel();
        let mut addr_tx = Some(addr_tx);
        let task = tokio::spawn(node_host::run_with(
            cfg,
            setup,
            async move {
                let _ = stopped.await;
            },
            move |a: &Multiaddr| {
                if let Some(tx) = addr_tx.take() {
                    let _ = tx.send(a.clone());
                }
            },
            move |r: Running| {
                let _ = run_tx.send(r);
            },
        ));
        let running = run_rx.await.context("a node did not start")?;
        if self.cfg.chain_nice > 0 {
            sched::lower_chain_threads(self.cfg.chain_nice)
                .context("lowering the chain threads' priority")?;
        }
        let addr = addr_rx.await.context("a node did not listen")?;
        self.obs.watch(
            i,
            running.node.chain().events(),
            running.node.blocks_in_hand(),
            tip,
        );
        let peer = running.net.local_peer_id();
        self.nodes.push(SimNode {
            running,
            addr,
            peer,
            stop,
            task,
        });
        Ok(())
    }

    /// Each node dials a few random others, then waits until every node
    /// has peers and the gossip meshes have had a few heartbeats to form.
    async fn connect(&mut self) -> anyhow::Result<()> {
        let n = self.nodes.len();
        for i in 0..n {
            let (lo, hi) = self.cfg.dials;
            let d = self.rng.gen_range(lo..=hi).min(n - 1);
            for j in sample(&mut self.rng, n - 1, d) {
                let j = if j >= i { j + 1 } else { j };
                self.edges.push((i, j));
                self.nodes[i]
                    .running
                    .net
                    .dial(self.nodes[j].addr.clone())
                    .await?;
            }
        }
        // A dial can fail while many nodes start at once (a node at its
        // connection limit refuses it): a node short of peers dials its
        // chosen ones again, as a node retries its --dest peers.
        let want = self.cfg.dials.0.min(n - 1);
        let deadline = Instant::now() + self.cfg.timeout;
        loop {
            let mut short = Vec::new();
            for (i, node) in self.nodes.iter().enumerate() {
                let peers = node.running.net.peers().await?.len();
                if peers < want {
                    short.push((i, peers));
                }
            }
            let Some(&(_, fewest)) = short.iter().min_by_key(|s| s.1) else {
                break;
            };
            if Instant::now() > deadline {
                bail!("some node has {fewest} peers after {:?}", self.cfg.timeout);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            for (i, _) in short {
                for &(a, b) in self.edges.iter().filter(|(a, _)| *a == i) {
                    self.nodes[a]
                        .running
                        .net
                        .dial(self.nodes[b].addr.clone())
                        .await?;
                }
            }
        }
        tokio::time::sleep(self.cfg.settle.max(self.cfg.gossip.heartbeat * 4)).await;
        self.quiet().await
    }

    /// Waits until no node has made a connection for [`QUIET`]: the
    /// Kademlia lookups each node starts with (tens of connections each at
    /// a hundred nodes, slower the more nodes share this machine's cores)
    /// are over, and what is measured next is the settled network's. Gives
    /// up after the timeout, saying so.
    async fn quiet(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        let made = |t: &[Traffic]| t.iter().map(|t| t.connections).sum::<f64>();
        let mut last = made(&self.traffic().await);
        let mut since = Instant::now();
        while since.elapsed() < QUIET {
            if start.elapsed() > self.cfg.timeout {
                eprintln!(
                    "the nodes still made connections after {:?} of settling; measuring anyway",
                    self.cfg.timeout
                );
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let now = made(&self.traffic().await);
            if now != last {
                last = now;
                since = Instant::now();
            }
        }
        eprintln!(
            "quiet (no connection made for {QUIET:?}) after {:.1} s more",
            start.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Mints a block on node `m`'s tip and waits until every node of `side`
    /// has it as its tip.
    async fn mint_at(&mut self, m: usize, side: &[usize]) -> anyhow::Result<Arrivals> {
        let to = PubkeyHash(self.rng.gen());
        let node = self.nodes[m].running.node.clone();
        let mut block = node
            .chain()
            .template(to, 0)
            .await
            .context("no block template")?;
        let block = tokio::task::spawn_blocking(move || {
            chain_core::miner::solve(&mut block, 1, &AtomicBool::new(false), &mut |_| {});
            block
        })
        .await?;
        let hash = block.hash();
        let t0 = Instant::now();
        node.on_mined(Some(block)).await;
        let reached = self
            .obs
            .until(t0 + self.cfg.timeout, |o| o.all_at(side, hash))
            .await;
        if !reached {
            tracing::warn!(block = %hash.short(), "a block did not reach every node in time");
        }
        Ok(Arrivals {
            hash,
            connected: Observer::delays(&self.obs.blocks, &hash, side, t0),
            in_hand: Observer::delays(&self.obs.in_hand, &hash, side, t0),
        })
    }

    /// Submits `n` payments at random nodes and waits until every mempool
    /// holds them (a block then carries them).
    async fn spread_payments(&mut self, n: usize) -> anyhow::Result<()> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let tx = self.fixture.payment(self.spent, PubkeyHash(self.rng.gen()));
            self.spent += 1;
            let at = self.rng.gen_range(0..self.nodes.len());
            ids.push(tx.txid());
            let answer = self.nodes[at].running.node.submit_tx(tx, None).await;
            if !matches!(answer, chain_node::Submitted::Accepted(_)) {
                bail!("node {at} refused a simulated payment: {answer:?}");
            }
        }
        let n = self.nodes.len();
        let everywhere = |o: &Observer| {
            ids.iter().all(|t| {
                o.txs
                    .get(t)
                    .is_some_and(|v| v.len() == n && v.iter().all(Option::is_some))
            })
        };
        if !self
            .obs
            .until(Instant::now() + self.cfg.timeout, everywhere)
            .await
        {
            bail!(
                "the payments of a block did not reach every mempool in {:?}",
                self.cfg.timeout
            );
        }
        Ok(())
    }

    /// Payments at random nodes, at the configured rate.
    async fn payments(&mut self, report: &mut Report) -> anyhow::Result<()> {
        let n = self.nodes.len();
        let mut sent: Vec<(Txid, Instant)> = Vec::with_capacity(self.cfg.txs);
        let t0 = Instant::now();
        for k in 0..self.cfg.txs {
            if self.cfg.tx_rate > 0.0 {
                let due = t0 + Duration::from_secs_f64(k as f64 / self.cfg.tx_rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let tx = self
                .fixture
                .payment(self.spent + k, PubkeyHash(self.rng.gen()));
            let at = self.rng.gen_range(0..n);
            let txid = tx.txid();
            let sent_at = Instant::now();
            let answer = self.nodes[at].running.node.submit_tx(tx, None).await;
            if !matches!(answer, chain_node::Submitted::Accepted(_)) {
                bail!("node {at} refused a simulated payment: {answer:?}");
            }
            sent.push((txid, sent_at));
        }
        let ids: Vec<Txid> = sent.iter().map(|s| s.0).collect();
        let everywhere = |o: &Observer| {
            ids.iter().all(|t| {
                o.txs
                    .get(t)
                    .is_some_and(|v| v.len() == n && v.iter().all(Option::is_some))
            })
        };
        let done = self
            .obs
            .until(Instant::now() + self.cfg.timeout, everywhere)
            .await;
        let mut last = t0;
        for (txid, at) in &sent {
            let seen = self.obs.txs.get(txid).cloned().unwrap_or_default();
            let arrivals: Vec<Option<Duration>> = (0..n)
                .map(|i| {
                    seen.get(i)
                        .copied()
                        .flatten()
                        .map(|t| t.saturating_duration_since(*at))
                })
                .collect();
            for t in seen.iter().flatten() {
                last = last.max(*t);
            }
            report.txs.push(arrivals);
        }
        report.txs_everywhere = done.then(|| last.duration_since(t0));
        Ok(())
    }

    /// Splits the network in two; both sides mine, the small side one block
    /// more; then heals it and times the convergence on the small side's
    /// branch (the larger part of the network reorganises).
    async fn partition(&mut self, report: &mut Report) -> anyhow::Result<()> {
        let n = self.nodes.len();
        let small: Vec<usize> = sample(&mut self.rng, n, self.cfg.partition).into_vec();
        let in_small: HashSet<usize> = small.iter().copied().collect();
        let large: Vec<usize> = (0..n).filter(|i| !in_small.contains(i)).collect();
        let hour = Duration::from_secs(3600);
        for &i in &small {
            for &j in &large {
                self.nodes[i]
                    .running
                    .net
                    .ban(self.nodes[j].peer, hour)
                    .await?;
                self.nodes[j]
                    .running
                    .net
                    .ban(self.nodes[i].peer, hour)
                    .await?;
            }
            for &j in &small {
                if i != j {
                    self.nodes[i]
                        .running
                        .net
                        .dial(self.nodes[j].addr.clone())
                        .await?;
                }
            }
        }
        // Let the small side's meshes form among themselves.
        tokio::time::sleep(self.cfg.gossip.heartbeat * 4).await;
        let rounds = 2;
        let mut small_tip = None;
        for _ in 0..=rounds {
            let m = small[self.rng.gen_range(0..small.len())];
            small_tip = Some(self.mint_at(m, &small).await?.hash);
        }
        for _ in 0..rounds {
            let m = large[self.rng.gen_range(0..large.len())];
            self.mint_at(m, &large).await?;
        }
        let winner = small_tip.context("the small side minted")?;
        let t0 = Instant::now();
        for &i in &small {
            for &j in &large {
                self.nodes[i].running.net.unban(self.nodes[j].peer).await?;
                self.nodes[j].running.net.unban(self.nodes[i].peer).await?;
            }
        }
        let crossing: Vec<(usize, usize)> = self
            .edges
            .iter()
            .filter(|(i, j)| in_small.contains(i) != in_small.contains(j))
            .copied()
            .collect();
        for (i, j) in crossing {
            self.nodes[i]
                .running
                .net
                .dial(self.nodes[j].addr.clone())
                .await?;
        }
        let everyone: Vec<usize> = (0..n).collect();
        let healed = self
            .obs
            .until(t0 + self.cfg.timeout, |o| o.all_at(&everyone, winner))
            .await;
        report.partition = Some((small.len(), large.len()));
        report.heal = healed.then(|| t0.elapsed());
        Ok(())
    }

    /// A node with only the genesis joins, dialling several nodes, and
    /// syncs the chain.
    async fn newcomer(&mut self, report: &mut Report) -> anyhow::Result<()> {
        let n = self.nodes.len();
        let target = self.obs.tips[0];
        let t0 = Instant::now();
        self.start_node(n, "bare").await?;
        let peers = self.cfg.newcomer_peers.min(n);
        for j in sample(&mut self.rng, n, peers) {
            let addr = self.nodes[j].addr.clone();
            self.nodes[n].running.net.dial(addr).await?;
        }
        let synced = self
            .obs
            .until(t0 + self.cfg.timeout, |o| o.tips[n] == target)
            .await;
        let height = self.nodes[n]
            .running
            .node
            .chain()
            .view()
            .map(|v| v.tip.height)
            .unwrap_or(0);
        report.newcomer = Some((peers, height, synced.then(|| t0.elapsed())));
        Ok(())
    }

    async fn traffic(&self) -> Vec<Traffic> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let text = node.running.net.metrics().await.unwrap_or_default();
            out.push(Traffic::parse(&text));
        }
        out
    }

    /// Stops every node and waits for each to close its store.
    async fn stop(&mut self) {
        let nodes = std::mem::take(&mut self.nodes);
        let mut tasks = Vec::with_capacity(nodes.len());
        for node in nodes {
            let _ = node.stop.send(());
            tasks.push(node.task);
        }
        for t in tasks {
            match t.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("a node stopped with an error: {e:#}"),
                Err(e) => tracing::warn!("a node's task failed: {e}"),
            }
        }
    }
}

fn diff(after: &[Traffic], before: &[Traffic]) -> Vec<Traffic> {
    after.iter().zip(before).map(|(a, b)| a.since(b)).collect()
}

/// A node that relays and never mines (the simulation mints its blocks).
fn node_config(compact_blocks: bool) -> NodeConfig<PeerId> {
    NodeConfig {
        genesis_peers: HashSet::new(),
        expected_genesis: None,
        minting: Minting {
            to: None,
            min_txs: 2,
            threads: 1,
        },
        agent: "net-sim".into(),
        progress: Arc::new(|_| {}),
        compact_blocks,
    }
}

/// Where [`Report::write_csv`] writes by default.
pub fn default_csv(cfg: &SimConfig) -> PathBuf {
    PathBuf::from(format!("net-sim-{}-nodes-seed-{}.csv", cfg.nodes, cfg.seed))
}
