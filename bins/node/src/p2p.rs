//! `startp2p`: wiring. It parses the flags, opens the chain and hands the
//! rest to `node_host::run` (the libp2p host, the node and their loop)
//! until Ctrl-C or SIGTERM, printing the addresses the host listens on.

use crate::chain_cmds::Ctx;
use anyhow::{bail, Context, Result};
use chain_core::BlockHash;
use chain_node::{Minting, NodeConfig, SyncProgress};
use chain_store::ChainStore;
use p2p_net::{Multiaddr, NetConfig, PeerId};
use std::collections::HashSet;
use std::sync::Arc;

/// Arguments of `startp2p`.
#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// A peer to connect to (its full multiaddress, ending in /p2p/<peer id>). Repeatable.
    #[arg(long)]
    pub dest: Vec<String>,
    /// Mint blocks paying this alias or address once the mempool holds --min-txs transactions.
    #[arg(long)]
    pub minter: Option<String>,
    /// Address to listen on (default: /ip4/0.0.0.0/tcp/<NODE_ID> and
    /// /ip4/0.0.0.0/udp/<NODE_ID>/quic-v1). Repeatable.
    #[arg(long)]
    pub listen: Vec<String>,
    /// An address peers can reach this node at (a public address or a
    /// forwarded port), announced without waiting for AutoNAT. Repeatable.
    #[arg(long, value_name = "MULTIADDR")]
    pub external_address: Vec<String>,
    /// Ask the LAN's gateway for a port mapping with UPnP.
    #[arg(long)]
    pub upnp: bool,
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
    /// Most bytes of transactions the mempool holds.
    #[arg(long, value_name = "BYTES", default_value_t = 64 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(100_000..))]
    pub mempool_bytes: u64,
    /// Serve the HTTP API, metrics and explorer on this address (default:
    /// 127.0.0.1:<NODE_ID + 1000>). It can be read by anyone who can reach it.
    #[arg(long, value_name = "ADDR", conflicts_with = "no_http")]
    pub http: Option<std::net::SocketAddr>,
    /// Do not serve the HTTP API.
    #[arg(long)]
    pub no_http: bool,
    /// A host name the HTTP API answers to besides IP addresses and
    /// localhost (its Host header is checked, against DNS rebinding). Repeatable.
    #[arg(long, value_name = "NAME")]
    pub http_host: Vec<String>,
    /// Hours a transaction may wait in the mempool.
    #[arg(long, value_name = "HOURS", default_value_t = 336,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub mempool_expiry: u64,
}

fn agent() -> String {
    format!("chain-node/{}", env!("CARGO_PKG_VERSION"))
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
        vec![
            format!("/ip4/0.0.0.0/tcp/{port}").parse()?,
            format!("/ip4/0.0.0.0/udp/{port}/quic-v1").parse()?,
        ]
    } else {
        parse_addrs(&a.listen, "--listen")?
    };
    let external = parse_addrs(&a.external_address, "--external-address")?;
    for e in &external {
        p2p_net::nat::check_external_address(e)
            .map_err(|m| anyhow::anyhow!("--external-address {m}"))?;
    }
    let http = cli_support::http_address(a.http, a.no_http, &ctx.node_id).unwrap_or_else(|note| {
        eprintln!("note: {note}");
        None
    });
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
        agent: agent(),
        max_connections: 64,
        gossip: p2p_net::GossipParams::default(),
        reach: p2p_net::Reach {
            external,
            upnp: a.upnp,
        },
        link: None,
    };
    let node_cfg = NodeConfig {
        genesis_peers,
        expected_genesis: a.genesis,
        minting: Minting {
            to: minter.map(|m| m.pubkey_hash()),
            min_txs: usize::try_from(a.min_txs).unwrap_or(usize::MAX),
            threads: cli_support::threads(a.threads),
        },
        agent: agent(),
        progress: {
            let display = cli_support::SyncDisplay::default();
            Arc::new(move |p: SyncProgress| {
                display.show(p.height.into(), p.target.into(), p.done);
            })
        },
        compact_blocks: true,
    };
    let pool = chain_node::PoolSettings {
        config: chain_core::MempoolConfig {
            max_bytes: usize::try_from(a.mempool_bytes).unwrap_or(usize::MAX),
            expiry_secs: a.mempool_expiry.saturating_mul(3600),
            ..chain_core::MempoolConfig::default()
        },
        file: Some(ctx.data_dir.join(format!("mempool_{}.dat", ctx.node_id))),
    };
    let setup = node_host::NodeSetup {
        store,
        chain_dir,
        pool,
        node: node_cfg,
        http: http.map(|addr| node_host::ApiSettings {
            host_names: a.http_host.clone(),
            ..node_host::ApiSettings::new(addr)
        }),
    };
    let mut printed_join = false;
    let listening = move |addr: &Multiaddr| {
        if p2p_net::nat::is_relayed(addr) {
            println!("Reachable through a relay at {addr}");
            println!("To join this node from anywhere, run on another node: NODE_ID=<its id> cargo run -p node -- startp2p -dest {addr}");
        } else if p2p_net::is_dialable(addr) {
            println!("Listening on {addr}");
            if !printed_join && addr.to_string().starts_with("/ip4/127.") {
                printed_join = true;
                println!("To join this node, run on another node: NODE_ID=<its id> cargo run -p node -- startp2p -dest {addr}");
            }
        }
    };
    let started = |r: node_host::Running| {
        if let Some(addr) = r.http {
            println!("HTTP API and explorer on http://{addr}/ (metrics: http://{addr}/metrics)");
        }
    };
    rt.block_on(node_host::run_with(
        cfg,
        setup,
        shutdown_signal(),
        listening,
        started,
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
