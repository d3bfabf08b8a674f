//! Stalling benchmark: a fresh node syncs a chain (default 2,000 blocks)
//! from four peers, once from four honest nodes and once from three honest
//! nodes and a peer that shows the same headers but never delivers a block
//! in time. Prints both sync times and their ratio. It measures; it asserts
//! nothing.
//!
//! `cargo run --release -p e2e-tests --bin stall-bench -- [BLOCKS]`

use anyhow::{bail, Result};
use chain_core::block::ChainParams;
use chain_core::test_utils::genesis;
use chain_core::{Block, PubkeyHash};
use chain_store::ChainStore;
use e2e_tests::{free_id, Env, TestPeer};
use p2p_proto::{Request, Response};
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

    // Three of the honest nodes, and a staller that connects to the fresh
    // node as soon as it listens: it shows the same status and headers and
    // answers every getdata 20 s late.
    let status = e2e_tests::status_of_chain(&chain, "staller");
    let headers: Vec<chain_core::BlockHeader> = chain.iter().map(|b| b.header).collect();
    let staller_answer = move |req: Request| match req {
        Request::Status(_) => Response::Status(status.clone()),
        Request::GetHeaders { locator, .. } => {
            // The headers after the first locator entry it knows.
            let start = locator
                .iter()
                .find_map(|h| headers.iter().position(|x| x.hash() == *h))
                .map(|i| i + 1)
                .unwrap_or(1);
            Response::Headers {
                headers: headers[start..]
                    .iter()
                    .take(p2p_proto::MAX_HEADERS)
                    .copied()
                    .collect(),
            }
        }
        _ => {
            std::thread::sleep(Duration::from_secs(20));
            Response::Error {
                reason: "too late".into(),
            }
        }
    };
    let stalled = sync_from(&env, &addrs[..3], &tip, |addr| {
        TestPeer::serving(addr, staller_answer)
    })?;
    println!("chain: {n} blocks after the genesis");
    println!("sync from 4 honest peers: {plain:.2} s");
    println!("sync from 3 honest peers and 1 staller: {stalled:.2} s");
    println!("stalled/plain ratio: {:.2}", stalled / plain);
    drop(honest);
    Ok(())
}
