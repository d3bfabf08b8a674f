//! Stalling benchmark: a fresh node syncs a chain (default 2,000 blocks)
//! from four peers: once from four honest nodes, then from three honest
//! nodes and one liar, for each kind of liar:
//! - a staller: shows the same headers, never delivers a block in time;
//! - a header replayer: claims endless work with a new tip each time, and
//!   answers each `GetHeaders` after 7 s with 2,000 headers ending at the
//!   node's own tip;
//! - a trickler: claims endless work, serves the real headers, and
//!   answers each `GetData` after 7 s with one block;
//! - a slow peer: honest status and headers, one block per answer every
//!   5 s.
//!
//! Prints each sync time and its ratio to the honest one. It measures; it
//! asserts nothing.
//!
//! `cargo run --release -p e2e-tests --bin stall-bench -- [BLOCKS]`

use anyhow::{bail, Result};
use chain_core::block::BlockHeader;
use chain_core::block::ChainParams;
use chain_core::test_utils::genesis;
use chain_core::{Block, BlockHash, PubkeyHash};
use chain_store::ChainStore;
use e2e_tests::{free_id, Env, TestPeer};
use p2p_proto::{BlockBytes, Request, Response};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Syncs a fresh node from `dests`, calling `joined` with its address once
/// it listens; returns the seconds from its start until it holds `tip`.
fn sync_from<T>(
    env: &Env,
    dests: &[String],
    tip: &Block,
    joined: impl FnOnce(&str) -> T,
) -> Result<f64> {
    let id = free_id();
    let mut args: Vec<&str> = Vec::new();
    for d in dests {
        args.extend(["-dest", d.as_str()]);
    }
    let t = Instant::now();
    let node = env.start_node(&id, &args);
    let _guard = joined(&node.addr);
    let dir = env.path().join(format!("blocks_{id}"));
    let deadline = Instant::now() + Duration::from_secs(600);
    while ChainStore::open_read_only(&dir)
        .map(|s| s.tip().hash != tip.hash())
        .unwrap_or(true)
    {
        if Instant::now() > deadline {
            bail!("sync did not finish; log: {}", node.proc.log.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(t.elapsed().as_secs_f64())
}

#[derive(Clone, Copy)]
enum Liar {
    Staller,
    Replayer,
    Trickler,
    Slow,
}

impl Liar {
    fn name(self) -> &'static str {
        match self {
            Liar::Staller => "staller",
            Liar::Replayer => "header replayer",
            Liar::Trickler => "trickler",
            Liar::Slow => "slow peer",
        }
    }
}

/// The index of the first locator entry among `headers`.
fn known(headers: &[BlockHeader], locator: &[BlockHash]) -> Option<usize> {
    locator
        .iter()
        .find_map(|h| headers.iter().position(|x| x.hash() == *h))
}

/// How a liar of `kind` answers, holding `chain`.
fn liar(kind: Liar, chain: &[Block]) -> impl Fn(Request) -> Response + Send + Sync + 'static {
    let honest = e2e_tests::status_of_chain(chain, kind.name());
    let headers: Vec<BlockHeader> = chain.iter().map(|b| b.header).collect();
    let blocks: HashMap<BlockHash, Block> = chain.iter().map(|b| (b.hash(), b.clone())).collect();
    let asked = AtomicU32::new(0);
    move |req: Request| {
        let boast = || {
            let mut s = honest.clone();
            let mut tip = [7u8; 32];
            tip[..4].copy_from_slice(&asked.fetch_add(1, Ordering::Relaxed).to_le_bytes());
            s.best_hash = BlockHash(tip);
            s.total_work = [0xff; 32];
            s
        };
        match (kind, req) {
            (Liar::Replayer | Liar::Trickler, Request::Status(_)) => Response::Status(boast()),
            (_, Request::Status(_)) => Response::Status(honest.clone()),
            (Liar::Replayer, Request::GetHeaders { locator, .. }) => {
                // Headers the node already has, ending at its own tip.
                std::thread::sleep(Duration::from_secs(7));
                let end = known(&headers, &locator).unwrap_or(0) + 1;
                let start = end.saturating_sub(p2p_proto::MAX_HEADERS).max(1);
                Response::Headers {
                    headers: headers[start..end].to_vec(),
                }
            }
            (_, Request::GetHeaders { locator, .. }) => {
                let start = known(&headers, &locator).map_or(1, |i| i + 1);
                Response::Headers {
                    headers: headers[start.min(headers.len())..]
                        .iter()
                        .take(p2p_proto::MAX_HEADERS)
                        .copied()
                        .collect(),
                }
            }
            (Liar::Trickler | Liar::Slow, Request::GetData { hashes }) => {
                let wait = if matches!(kind, Liar::Trickler) { 7 } else { 5 };
                std::thread::sleep(Duration::from_secs(wait));
                Response::Blocks {
                    blocks: hashes
                        .first()
                        .and_then(|h| blocks.get(h))
                        .map(BlockBytes::from)
                        .into_iter()
                        .collect(),
                    not_found: vec![],
                }
            }
            _ => {
                std::thread::sleep(Duration::from_secs(20));
                Response::Error {
                    reason: "too late".into(),
                }
            }
        }
    }
}

fn main() -> Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2000);
    let params = ChainParams::default();
    let pkh = PubkeyHash([5; 20]);
    let g = genesis(&params, pkh);
    let chain = chain_core::test_utils::chain_of(&params, &g, n, pkh);
    let tip = chain.last().expect("non-empty").clone();
    let env = Env::new();
    // Four honest nodes holding the chain.
    let ids: Vec<String> = (0..4).map(|_| free_id()).collect();
    env.store_chain(&ids[0], &chain);
    for id in &ids[1..] {
        env.copy_chain(&ids[0], id);
    }
    let honest: Vec<e2e_tests::Node> = ids.iter().map(|id| env.start_node(id, &[])).collect();
    let addrs: Vec<String> = honest.iter().map(|h| h.addr.clone()).collect();
    let plain = sync_from(&env, &addrs, &tip, |_| ())?;

    println!("chain: {n} blocks after the genesis");
    println!("sync from 4 honest peers: {plain:.2} s");
    // Three of the honest nodes, and a liar that connects to the fresh node
    // as soon as it listens.
    for kind in [Liar::Staller, Liar::Replayer, Liar::Trickler, Liar::Slow] {
        let answer = liar(kind, &chain);
        let t = sync_from(&env, &addrs[..3], &tip, |addr| {
            TestPeer::serving(addr, answer)
        })?;
        println!(
            "sync from 3 honest peers and 1 {}: {t:.2} s (ratio {:.2})",
            kind.name(),
            t / plain
        );
    }
    drop(honest);
    Ok(())
}
