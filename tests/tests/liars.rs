//! Peers that lie about their chain during a sync: a header replayer that
//! claims endless work, a trickler that answers just in time with one
//! block, and a peer that serves real headers with corrupt bodies. Each
//! runs against a real node with an honest peer connected; the node must
//! reach the honest tip as if the liar were not there.

#![allow(clippy::unwrap_used)]

use chain_core::block::ChainParams;
use chain_core::{Block, BlockHash, PubkeyHash};
use e2e_tests::{banned, eventually, free_id, status_of_chain, Env, TestPeer};
use p2p_proto::{BlockBytes, Request, Response, Status};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn chain(n: usize) -> Vec<Block> {
    let params = ChainParams::default();
    let pkh = PubkeyHash([6; 20]);
    let g = chain_core::test_utils::genesis(&params, pkh);
    chain_core::test_utils::chain_of(&params, &g, n, pkh)
}

/// A status on `chain`'s genesis claiming all the work there is, with a
/// tip that changes every time it is asked.
fn boastful(chain: &[Block], asked: &AtomicU32) -> Status {
    let n = asked.fetch_add(1, Ordering::Relaxed);
    let mut tip = [7u8; 32];
    tip[..4].copy_from_slice(&n.to_le_bytes());
    Status {
        protocol_version: p2p_proto::PROTOCOL_VERSION,
        genesis: chain[0].hash(),
        best_height: 1_000_000,
        best_hash: BlockHash(tip),
        total_work: [0xff; 32],
        agent: "liar".into(),
    }
}

/// A peer claiming endless work that answers each `GetHeaders` after
/// `delay` with 2,000 headers of `chain` the node already has, one height
/// further each round; `rounds` counts the rounds.
fn replayer(addr: &str, chain: &[Block], rounds: Arc<AtomicU32>, delay: Duration) -> TestPeer {
    let asked = AtomicU32::new(0);
    let replay = chain.to_vec();
    TestPeer::serving(addr, move |req| match req {
        Request::Status(_) => Response::Status(boastful(&replay, &asked)),
        Request::GetHeaders { .. } => {
            let k = 1 + rounds.fetch_add(1, Ordering::Relaxed) as usize;
            std::thread::sleep(delay);
            Response::Headers {
                headers: replay[k..k + p2p_proto::MAX_HEADERS]
                    .iter()
                    .map(|b| b.header)
                    .collect(),
            }
        }
        _ => Response::Error {
            reason: "liar".into(),
        },
    })
}

fn wait_for_tip(env: &Env, id: &str, chain: &[Block], within: Duration) -> Duration {
    let started = Instant::now();
    let tip = chain.last().unwrap().hash().to_string();
    eventually(within, "the node to reach the honest tip", || {
        env.tip(id).filter(|t| t.1 == tip).map(|_| ())
    });
    started.elapsed()
}

/// Finding: a peer claiming endless work answered each `GetHeaders`, just
/// before the deadline, with 2,000 headers the node already had, one
/// height further each round, and held the sync (and minting) for minutes.
#[test]
fn a_header_replayer_claiming_endless_work_holds_nothing_up() {
    let env = Env::new();
    let blocks = chain(2_130);
    let (a, n) = (free_id(), free_id());
    env.store_chain(&a, &blocks);
    env.store_chain(&n, &blocks[..=2_100]);
    let node_n = env.start_node(&n, &[]);

    let rounds = Arc::new(AtomicU32::new(0));
    let liar = replayer(
        &node_n.addr,
        &blocks,
        rounds.clone(),
        Duration::from_secs(6),
    );
    eventually(
        Duration::from_secs(20),
        "the liar to be asked for headers",
        || (rounds.load(Ordering::Relaxed) > 0).then_some(()),
    );
    let _node_a = env.start_node(&a, &["-dest", &node_n.addr]);
    let took = wait_for_tip(&env, &n, &blocks, Duration::from_secs(30));
    println!(
        "reached the honest tip {:.1} s after the honest peer started; the replayer was asked for headers {} times",
        took.as_secs_f64(),
        rounds.load(Ordering::Relaxed)
    );
    assert!(liar.connected(), "replaying headers is not an offence");
    let log = node_n.proc.log_text();
    assert!(
        log.contains("do not show more work than this chain"),
        "the replayer's claim was disproved"
    );
    assert!(
        rounds.load(Ordering::Relaxed) <= 2,
        "no second sync from a disproved peer"
    );
}

/// Finding: a liar claiming 2^255 work and serving real headers became the
/// only download source, then answered each request with one block just
/// before the deadline.
#[test]
fn a_trickling_sync_peer_loses_its_blocks_to_the_honest_one() {
    let env = Env::new();
    let blocks = chain(150);
    let (a, n) = (free_id(), free_id());
    env.store_chain(&a, &blocks);
    env.store_chain(&n, &blocks[..1]);
    let node_n = env.start_node(&n, &[]);

    let by_hash: HashMap<BlockHash, Block> = blocks.iter().map(|b| (b.hash(), b.clone())).collect();
    let headers: Vec<_> = blocks[1..].iter().map(|b| b.header).collect();
    let asked = Arc::new(AtomicU32::new(0));
    let (statuses, blocks_of) = (asked.clone(), blocks.clone());
    let served = Arc::new(AtomicU32::new(0));
    let trickled = served.clone();
    let _liar = TestPeer::serving(&node_n.addr, move |req| match req {
        Request::Status(_) => Response::Status(boastful(&blocks_of, &statuses)),
        Request::GetHeaders { .. } => Response::Headers {
            headers: headers.clone(),
        },
        Request::GetData { hashes } => {
            std::thread::sleep(Duration::from_secs(7));
            trickled.fetch_add(1, Ordering::Relaxed);
            Response::Blocks {
                blocks: hashes
                    .first()
                    .and_then(|h| by_hash.get(h))
                    .map(BlockBytes::from)
                    .into_iter()
                    .collect(),
                not_found: vec![],
            }
        }
        _ => Response::Error {
            reason: "liar".into(),
        },
    });
    let _node_a = env.start_node(&a, &["-dest", &node_n.addr]);
    let took = wait_for_tip(&env, &n, &blocks, Duration::from_secs(30));
    println!(
        "synced {} blocks in {:.1} s with the trickler connected (it answered {} requests)",
        blocks.len() - 1,
        took.as_secs_f64(),
        served.load(Ordering::Relaxed)
    );
}

/// Finding: one corrupt body (a real header) ended the whole sync and gave
/// the branch up.
#[test]
fn a_corrupt_body_costs_its_sender_and_the_block_comes_from_another() {
    let env = Env::new();
    let blocks = chain(60);
    let (a, n) = (free_id(), free_id());
    env.store_chain(&a, &blocks);
    env.store_chain(&n, &blocks[..1]);
    let node_n = env.start_node(&n, &[]);

    // Each block with its header intact and its coinbase changed: the
    // hash is right, the body does not match the Merkle root.
    let corrupt: HashMap<BlockHash, Block> = blocks
        .iter()
        .map(|b| {
            let mut c = b.clone();
            c.transactions[0].outputs[0].value.0 += 1;
            (b.hash(), c)
        })
        .collect();
    let status = status_of_chain(&blocks, "corrupt");
    let headers: Vec<_> = blocks[1..].iter().map(|b| b.header).collect();
    let liar = TestPeer::serving(&node_n.addr, move |req| match req {
        Request::Status(_) => Response::Status(status.clone()),
        Request::GetHeaders { .. } => Response::Headers {
            headers: headers.clone(),
        },
        // At once, so its copies are the ones the node gets first.
        Request::GetData { hashes } => Response::Blocks {
            blocks: hashes
                .iter()
                .filter_map(|h| corrupt.get(h))
                .map(BlockBytes::from)
                .collect(),
            not_found: vec![],
        },
        _ => Response::Error {
            reason: "liar".into(),
        },
    });
    let liar_id = liar.id();
    let node_a = env.start_node(&a, &["-dest", &node_n.addr]);
    let took = wait_for_tip(&env, &n, &blocks, Duration::from_secs(30));
    let log = node_n.proc.log_text();
    println!(
        "synced {:.1} s after the honest peer listened; the bad copy was asked of another peer in the same sync: {}",
        took.as_secs_f64(),
        log.contains("asking another peer for it")
    );
    assert!(banned(&log, &liar_id), "the corrupt sender is banned");
    assert!(!banned(&log, &node_a.peer_id()), "the honest peer is not");
    assert!(
        !log.contains("the branch is given up"),
        "a bad copy never gives the branch up"
    );
}

/// Finding: while the header replayer held the sync, a minter with a
/// pending payment did not mint for 82 s.
#[test]
fn a_minter_mints_while_a_replayer_holds_a_sync_that_goes_nowhere() {
    let env = Env::new();
    let v = free_id();
    let w1 = env.wallet(&v, "w1");
    let w2 = env.wallet(&v, "w2");
    let params = ChainParams::default();
    let pkh = chain_core::Address::parse(&w1).unwrap().pubkey_hash();
    let g = chain_core::test_utils::genesis(&params, pkh);
    let blocks = chain_core::test_utils::chain_of(&params, &g, 2_100, pkh);
    env.store_chain(&v, &blocks);
    let node_v = env.start_node(&v, &["-minter", "w2", "-min-txs", "1"]);

    let rounds = Arc::new(AtomicU32::new(0));
    let _liar = replayer(
        &node_v.addr,
        &blocks,
        rounds.clone(),
        Duration::from_secs(7),
    );
    eventually(
        Duration::from_secs(20),
        "the liar to be asked for headers",
        || (rounds.load(Ordering::Relaxed) > 0).then_some(()),
    );
    let started = Instant::now();
    env.json(
        "wallet-cli",
        &v,
        &[
            "send",
            "-from",
            "w1",
            "-to",
            &w2,
            "-amount",
            "5",
            "-peer",
            &node_v.addr,
        ],
    );
    let minted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        eventually(
            Duration::from_secs(10),
            "the minter to mint the payment",
            || (env.tip(&v)?.0 == 2_101).then_some(()),
        )
    }));
    if minted.is_err() {
        panic!(
            "no block minted; the node's log:\n{}",
            node_v.proc.log_text()
        );
    }
    println!(
        "minted {:.1} s after the payment, with the replayer connected",
        started.elapsed().as_secs_f64()
    );
}
