//! `net-sim`: many whole nodes in one process over the memory transport;
//! prints how blocks and payments spread, a heal and a newcomer's sync,
//! and writes every measurement as CSV.

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// Simulates a network of nodes in one process and measures propagation.
#[derive(Parser, Debug)]
#[command(name = "net-sim", version, about)]
struct Args {
    /// Nodes in the network.
    #[arg(long, default_value_t = 25)]
    nodes: usize,
    /// Blocks minted, one at a time, each at a random node.
    #[arg(long, default_value_t = 20)]
    blocks: usize,
    /// Payments submitted, each at a random node.
    #[arg(long, default_value_t = 200)]
    txs: usize,
    /// Payments per second (0: all at once).
    #[arg(long, default_value_t = 0.0)]
    tx_rate: f64,
    /// The random seed (topology, where blocks and payments start).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fewest peers each node dials at start.
    #[arg(long, default_value_t = 3)]
    min_dials: usize,
    /// Most peers each node dials at start.
    #[arg(long, default_value_t = 8)]
    max_dials: usize,
    /// Nodes cut off on the small side of the partition (0: none).
    #[arg(long, default_value_t = 2)]
    partition: usize,
    /// Peers of the newcomer that syncs at the end (0: no newcomer).
    #[arg(long, default_value_t = 8)]
    newcomer_peers: usize,
    /// Gossipsub mesh degree (D); the low and high bounds follow it unless given.
    #[arg(long)]
    mesh_n: Option<usize>,
    /// Gossipsub mesh lower bound (D_low).
    #[arg(long)]
    mesh_n_low: Option<usize>,
    /// Gossipsub mesh upper bound (D_high).
    #[arg(long)]
    mesh_n_high: Option<usize>,
    /// Gossipsub heartbeat, in milliseconds.
    #[arg(long)]
    heartbeat_ms: Option<u64>,
    /// Whether a node floods its own messages to every topic peer.
    #[arg(long)]
    flood_publish: Option<bool>,
    /// Seconds to wait for the nodes to connect, for one block, or for the
    /// payments to reach every node.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    /// Seconds the connected network settles before measuring; then, until
    /// no node has made a connection for 3 s (at most --timeout-secs more).
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// Payments gossiped to every mempool before each block, which the
    /// block then carries.
    #[arg(long, default_value_t = 0)]
    block_txs: usize,
    /// The links between nodes: `loopback` (every byte at once) or
    /// `internet` (8 regions' latencies, 50 Mbit/s or 1 Gbit/s per node).
    #[arg(long, value_enum, default_value_t = Latency::Loopback)]
    latency: Latency,
    /// With `--latency internet`: the share of writes lost and resent
    /// (0 to 1).
    #[arg(long, default_value_t = 0.0, value_parser = share)]
    loss: f64,
    /// How minted blocks are announced: `compact` (header, short ids and
    /// coinbase) or `full`.
    #[arg(long, value_enum, default_value_t = Relay::Compact)]
    relay: Relay,
    /// Run the nodes' chain threads this many `nice` steps below the
    /// process (0 to 19; 0: the same), so that the runtime's workers,
    /// which carry every node's networking, are served first.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    chain_nice: i32,
    /// Where to write the CSV (default: net-sim-<nodes>-nodes-seed-<seed>.csv).
    #[arg(long)]
    csv: Option<PathBuf>,
}

/// How blocks are announced.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Relay {
    Compact,
    Full,
}

/// The links between simulated nodes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Latency {
    Loopback,
    Internet,
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("'{s}' is not a share between 0 and 1")),
    }
}

fn main() -> anyhow::Result<()> {
    // The nodes' own warnings (bans the partition makes, connections it
    // cuts) would drown the table; RUST_LOG shows them.
    cli_support::init_tracing("error");
    let a = Args::parse();
    let mut gossip = p2p_net::GossipParams::default();
    if let Some(d) = a.mesh_n {
        gossip.mesh_n = d;
        gossip.mesh_n_low = a.mesh_n_low.unwrap_or(d * 3 / 4).max(1);
        gossip.mesh_n_high = a.mesh_n_high.unwrap_or(d * 2);
    }
    gossip.mesh_n_low = a.mesh_n_low.unwrap_or(gossip.mesh_n_low);
    gossip.mesh_n_high = a.mesh_n_high.unwrap_or(gossip.mesh_n_high);
    if let Some(ms) = a.heartbeat_ms {
        gossip.heartbeat = Duration::from_millis(ms);
    }
    gossip.flood_publish = a.flood_publish.unwrap_or(gossip.flood_publish);
    let cfg = net_sim::SimConfig {
        nodes: a.nodes,
        blocks: a.blocks,
        txs: a.txs,
        tx_rate: a.tx_rate,
        seed: a.seed,
        dials: (a.min_dials, a.max_dials),
        partition: a.partition,
        newcomer_peers: a.newcomer_peers,
        gossip,
        settle: Duration::from_secs(a.settle_secs),
        timeout: Duration::from_secs(a.timeout_secs),
        block_txs: a.block_txs,
        internet: (a.latency == Latency::Internet).then_some(a.loss),
        compact_blocks: a.relay == Relay::Compact,
        chain_nice: a.chain_nice,
        ..net_sim::SimConfig::default()
    };
    let csv = a.csv.unwrap_or_else(|| net_sim::default_csv(&cfg));
    println!("gossipsub: {gossip:?}");
    let rt = tokio::runtime::Runtime::new().context("the async runtime")?;
    let report = rt.block_on(net_sim::run(cfg))?;
    print!("{}", report.table());
    report
        .write_csv(&csv)
        .with_context(|| format!("cannot write {}", csv.display()))?;
    println!("measurements written to {}", csv.display());
    Ok(())
}
