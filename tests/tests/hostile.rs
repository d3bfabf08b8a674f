//! Peers that lie, stall or flood: choosing a new node's chain, cheap orphans
//! and side blocks, blocks nobody asked for, and invalid side branches.

#![allow(clippy::unwrap_used)]

use chain_core::block::{BlockHeader, ChainParams};
use chain_core::test_utils::{child, easy_params};
use chain_core::{Amount, BlockHash, PubkeyHash};
use e2e_tests::{banned, eventually, free_id, status_of_chain, Env, TestPeer};
use p2p_proto::Announcement;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn a_new_node_takes_its_genesis_only_from_its_dest_peers() {
    let env = Env::new();
    // X: a node with a chain, which will dial the new node (an inbound peer).
    let x = free_id();
    env.wallet(&x, "w");
    let x_genesis = env.json("node", &x, &["createblockchain", "-address", "w"])["hash"]
        .as_str()
        .unwrap()
        .to_string();
    // Y: a peer that exists but is down; the new node is told only about it.
    let y = free_id();
    env.wallet(&y, "w");
    let y_genesis = env.json("node", &y, &["createblockchain", "-address", "w"])["hash"]
        .as_str()
        .unwrap()
        .to_string();
    let mut node_y = env.start_node(&y, &[]);
    let y_addr = node_y.addr.clone();
    assert!(node_y.proc.terminate(Duration::from_secs(10)));

    let n = free_id();
    let node_n = env.start_node(&n, &["-dest", &y_addr]);
    let node_x = env.start_node(&x, &["-dest", &node_n.addr]);
    node_n.proc.wait_for_log(
        "not taking a genesis from a peer that is not a --dest peer",
        WAIT,
    );
    // Several status rounds later, still no chain.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(env.tip(&n), None, "an inbound peer chose the chain");

    // With --genesis, a --dest peer serving another genesis is refused too.
    let m = free_id();
    let node_m = env.start_node(&m, &["-dest", &node_x.addr, "--genesis", &y_genesis]);
    node_m
        .proc
        .wait_for_log("the peer's genesis is not the one --genesis names", WAIT);
    assert_eq!(env.tip(&m), None);

    // The right hash: the chain is downloaded.
    let k = free_id();
    let _node_k = env.start_node(&k, &["-dest", &node_x.addr, "--genesis", &x_genesis]);
    eventually(WAIT, "the new node to take X's chain", || {
        env.tip(&k).filter(|t| t.0 == 0).map(|_| ())
    });
    let blocks = env.blocks(&k);
    assert_eq!(blocks[0]["hash"], x_genesis.as_str());
    drop(node_x);
}

/// A header, as the parent of an orphan, that the node has never seen.
fn unknown_parent(bits: chain_core::pow::CompactTarget) -> BlockHeader {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    BlockHeader {
        version: chain_core::block::BLOCK_VERSION,
        prev: BlockHash([9; 32]),
        merkle_root: chain_core::MerkleRoot([8; 32]),
        time: now - 600,
        bits,
        height: 5,
        nonce: 0,
    }
}

#[test]
fn an_orphan_at_an_easier_difficulty_than_the_chain_allows_gets_its_sender_banned() {
    let env = Env::new();
    let a = free_id();
    env.wallet(&a, "w");
    env.json("node", &a, &["createblockchain", "-address", "w"]);
    let node = env.start_node(&a, &[]);
    let before = env.tip(&a).unwrap();

    // The tutorial's chain: 12 bits. An orphan at the easiest bits costs two
    // hashes and is an offence.
    let params = easy_params();
    let cheap = child(
        &params,
        &unknown_parent(params.initial_bits),
        vec![],
        Amount(0),
        PubkeyHash([1; 20]),
    );
    let liar = TestPeer::connect(&node.addr);
    liar.publish(Announcement::Block((&cheap).into())).unwrap();
    let id = liar.id();
    eventually(WAIT, "the orphan to be refused", || {
        let log = node.proc.log_text();
        (log.contains("rejected orphan block") && log.contains(&cheap.hash().short())).then_some(())
    });
    eventually(WAIT, "its sender to be banned", || {
        (!liar.connected()).then_some(())
    });
    assert!(banned(&node.proc.log_text(), &id));

    // An orphan at the chain's own difficulty is held, and its sender is
    // only asked where its chain stands: no ban.
    let fair_params = ChainParams::default();
    let fair = child(
        &fair_params,
        &unknown_parent(fair_params.initial_bits),
        vec![],
        Amount(0),
        PubkeyHash([2; 20]),
    );
    let honest = TestPeer::connect(&node.addr);
    honest.publish(Announcement::Block((&fair).into())).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    assert!(honest.connected(), "an orphan is not an offence");
    assert_eq!(env.tip(&a), Some(before), "nothing changed");
}

#[test]
fn a_peer_that_serves_blocks_nobody_asked_for_is_banned_and_sync_goes_on_from_an_honest_one() {
    let env = Env::new();
    let params = ChainParams::default();
    let key = chain_core::PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    let g = chain_core::test_utils::genesis(&params, pkh);
    let chain = chain_core::test_utils::chain_of(&params, &g, 30, pkh);
    // Blocks of another chain, to answer with.
    let other_g = chain_core::test_utils::genesis(&params, PubkeyHash([3; 20]));
    let junk = child(&params, &other_g.header, vec![], Amount(0), pkh);

    // A: the honest node with the whole chain. N: only the genesis.
    let (a, n) = (free_id(), free_id());
    env.store_chain(&a, &chain);
    env.store_chain(&n, &chain[..1]);
    let node_n = env.start_node(&n, &[]);

    // The liar claims far more work on the same genesis, shows A's headers,
    // and answers every getdata with a block of another chain.
    let headers: Vec<BlockHeader> = chain[1..].iter().map(|b| b.header).collect();
    let genesis = g.hash();
    let liar = TestPeer::serving(&node_n.addr, move |req| match req {
        p2p_proto::Request::Status(_) => p2p_proto::Response::Status(p2p_proto::Status {
            protocol_version: p2p_proto::PROTOCOL_VERSION,
            genesis,
            best_height: 1_000,
            best_hash: BlockHash([5; 32]),
            total_work: [0xff; 32],
            agent: "liar".into(),
        }),
        p2p_proto::Request::GetHeaders { .. } => p2p_proto::Response::Headers {
            headers: headers.clone(),
        },
        p2p_proto::Request::GetData { .. } => p2p_proto::Response::Blocks {
            blocks: vec![p2p_proto::BlockBytes::from(&junk)],
            not_found: vec![],
        },
        _ => p2p_proto::Response::Error {
            reason: "liar".into(),
        },
    });
    node_n
        .proc
        .wait_for_log("sent blocks that were not asked for", WAIT);
    eventually(WAIT, "the liar to be cut off", || {
        (!liar.connected()).then_some(())
    });
    // Then an honest peer arrives: N syncs from it.
    let node_a = env.start_node(&a, &["-dest", &node_n.addr]);
    let tip = chain.last().unwrap().hash().to_string();
    eventually(Duration::from_secs(30), "N to reach A's tip", || {
        env.tip(&n).filter(|t| t.1 == tip).map(|_| ())
    });
    let a_id = node_a.peer_id();
    assert!(
        !banned(&node_n.proc.log_text(), &a_id),
        "the honest peer was banned"
    );
}

/// The sequence that used to make honest nodes ban each other: B learns that
/// side block X is invalid (its branch failed to connect), then A is sent X
/// and its child Z. A must neither store X nor forward either, or B, which
/// knows X is invalid, would ban A.
#[test]
fn a_side_block_one_node_found_invalid_never_makes_honest_nodes_ban_each_other() {
    let env = Env::new();
    let (a, b) = (free_id(), free_id());
    let w1 = env.wallet(&a, "w1");
    env.json("node", &a, &["createblockchain", "-address", "w1"]);
    env.json(
        "wallet-cli",
        &a,
        &["send", "-from", "w1", "-to", &w1, "-amount", "5", "-mint"],
    );
    env.copy_chain(&a, &b);
    let g = {
        let s = chain_store::ChainStore::open_read_only(&env.path().join(format!("blocks_{a}")))
            .unwrap();
        s.block(&s.genesis_hash()).unwrap().unwrap()
    };
    // X: a rival to block 1 whose payment spends the genesis coin with the
    // wrong key; well formed, and invalid only when connected.
    // Z: X's child, which makes X's branch the heavier one.
    let params = ChainParams::default();
    let thief = chain_core::PrivateKey::generate();
    let theft = chain_core::test_utils::spend(
        &thief,
        &chain_core::test_utils::outputs_of(&g.transactions[0]),
        PubkeyHash([4; 20]),
        Amount(20),
        Amount(0),
    );
    let x = chain_core::test_utils::child_with_extra(
        &params,
        &g.header,
        vec![theft],
        Amount(0),
        PubkeyHash([4; 20]),
        61,
    );
    let z = child(&params, &x.header, vec![], Amount(0), PubkeyHash([4; 20]));

    let node_b = env.start_node(&b, &[]);
    let tip = env.tip(&b).unwrap();

    // B syncs X's branch from a peer that shows its headers (more work than
    // B's chain): X fails to connect, X and Z are invalid there.
    let branch = [x.clone(), z.clone()];
    let status = status_of_chain(&[g.clone(), x.clone(), z.clone()], "attacker");
    let attacker = TestPeer::serving(&node_b.addr, move |req| match req {
        p2p_proto::Request::Status(_) => p2p_proto::Response::Status(status.clone()),
        p2p_proto::Request::GetHeaders { .. } => p2p_proto::Response::Headers {
            headers: branch.iter().map(|b| b.header).collect(),
        },
        p2p_proto::Request::GetData { hashes } => p2p_proto::Response::Blocks {
            blocks: branch
                .iter()
                .filter(|b| hashes.contains(&b.hash()))
                .map(p2p_proto::BlockBytes::from)
                .collect(),
            not_found: vec![],
        },
        _ => p2p_proto::Response::Error {
            reason: "attacker".into(),
        },
    });
    let x_short = x.hash().short();
    eventually(WAIT, "B to find X invalid", || {
        node_b
            .proc
            .log_text()
            .lines()
            .any(|l| l.contains("rejected block") && l.contains(&format!("hash={x_short}")))
            .then_some(())
    });
    let attacker_id = attacker.id();
    eventually(WAIT, "B to ban the peer that served X", || {
        banned(&node_b.proc.log_text(), &attacker_id).then_some(())
    });

    drop(attacker);

    // A joins B; then A is sent X, then Z: X is on a branch with no more work, not stored;
    // Z is an orphan. Neither is forwarded.
    let node_a = env.start_node(&a, &["-dest", &node_b.addr]);
    let b_id = node_b.peer_id();
    let a_id = node_a.peer_id();
    node_a
        .proc
        .wait_for_log(&format!("peer connected peer={b_id}"), WAIT);
    let to_a = TestPeer::connect(&node_a.addr);
    to_a.publish(Announcement::Block((&x).into())).unwrap();
    to_a.publish(Announcement::Block((&z).into())).unwrap();
    // Gossip is handled in order: once a payment of coins nobody has is
    // turned away, X and Z were handled.
    let marker = chain_core::test_utils::spend(
        &thief,
        &[(
            chain_core::OutPoint {
                txid: chain_core::Txid([9; 32]),
                vout: 0,
            },
            chain_core::TxOut {
                value: Amount(1),
                pubkey_hash: PubkeyHash([4; 20]),
            },
        )],
        PubkeyHash([4; 20]),
        Amount(1),
        Amount(0),
    );
    let marker_id = marker.txid().to_string();
    to_a.publish(Announcement::Tx(marker)).unwrap();
    eventually(WAIT, "A to handle X, Z and the marker", || {
        node_a
            .proc
            .log_text()
            .lines()
            .any(|l| l.contains("transaction not taken") && l.contains(&marker_id))
            .then_some(())
    });
    // Give gossip time to carry X or Z to B, had A forwarded them.
    std::thread::sleep(Duration::from_secs(3));

    for (log, other) in [
        (node_a.proc.log_text(), &b_id),
        (node_b.proc.log_text(), &a_id),
    ] {
        assert!(
            !banned(&log, other),
            "an honest node banned the other:\n{log}"
        );
    }
    assert_eq!(env.tip(&a).unwrap(), tip);
    assert_eq!(env.tip(&b).unwrap(), tip);
    let a_store =
        chain_store::ChainStore::open_read_only(&env.path().join(format!("blocks_{a}"))).unwrap();
    assert!(
        a_store.header_entry(&x.hash()).unwrap().is_none(),
        "A stored a side block nobody asked for"
    );
}

#[test]
fn a_peer_that_stalls_is_marked_slow_and_the_node_syncs_from_another() {
    let env = Env::new();
    let params = ChainParams::default();
    let pkh = PubkeyHash([6; 20]);
    let g = chain_core::test_utils::genesis(&params, pkh);
    let chain = chain_core::test_utils::chain_of(&params, &g, 40, pkh);
    let (a, n) = (free_id(), free_id());
    env.store_chain(&a, &chain);
    let status = status_of_chain(&chain, "staller");
    env.store_chain(&n, &chain[..1]);
    let node_n = env.start_node(&n, &[]);

    // The staller has the same chain, says so, and never delivers in time.
    let staller = TestPeer::serving(&node_n.addr, move |req| match req {
        p2p_proto::Request::Status(_) => p2p_proto::Response::Status(status.clone()),
        _ => {
            std::thread::sleep(Duration::from_secs(15));
            p2p_proto::Response::Error {
                reason: "too late".into(),
            }
        }
    });
    let staller_id = staller.id();
    node_n.proc.wait_for_log("did not deliver within", WAIT);

    // An honest peer with the same chain arrives: N syncs from it at once.
    let started = std::time::Instant::now();
    let node_a = env.start_node(&a, &["-dest", &node_n.addr]);
    let tip = chain.last().unwrap().hash().to_string();
    eventually(Duration::from_secs(20), "N to reach the tip", || {
        env.tip(&n).filter(|t| t.1 == tip).map(|_| ())
    });
    println!(
        "synced {} blocks {:.1} s after the honest peer started, with a staller connected",
        chain.len() - 1,
        started.elapsed().as_secs_f64()
    );
    let log = node_n.proc.log_text();
    assert!(log
        .lines()
        .any(|l| l.contains("did not deliver") && l.contains(&staller_id)));
    let a_id = node_a.peer_id();
    assert!(!banned(&log, &a_id));
}

/// Peak and current resident memory of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Ten thousand cheap blocks at height 1, each a rival of the node's own
/// block 1: none is stored or forwarded, memory stays within the documented
/// bounds, and the node still syncs the honest chain from an honest peer.
#[test]
fn ten_thousand_cheap_side_blocks_at_height_one_store_nothing_and_stop_nothing() {
    const FLOOD: usize = 10_000;
    let env = Env::new();
    // The easiest difficulty: each block costs about two hashes to make.
    let params = easy_params();
    let pkh = PubkeyHash([6; 20]);
    let g = chain_core::test_utils::genesis(&params, pkh);
    let chain = chain_core::test_utils::chain_of(&params, &g, 30, pkh);
    let flood: Vec<chain_core::Block> = (0..FLOOD)
        .map(|i| {
            chain_core::test_utils::child_with_extra(
                &params,
                &g.header,
                vec![],
                Amount(0),
                PubkeyHash([7; 20]),
                100 + i as u64,
            )
        })
        .collect();
    // A: the honest node with the whole chain. N: blocks up to height 2.
    let (a, n) = (free_id(), free_id());
    env.store_chain(&a, &chain);
    env.store_chain(&n, &chain[..3]);
    let mut node_n = env.start_node(&n, &[]);
    let pid = node_n.proc.child.id();
    let (_, rss_before) = memory_kib(pid);

    let flooder = TestPeer::connect(&node_n.addr);
    let started = std::time::Instant::now();
    for b in &flood {
        flooder.publish(Announcement::Block(b.into())).unwrap();
    }
    let flood_secs = started.elapsed().as_secs_f64();
    // The honest peer arrives while the flood is being handled.
    let started = std::time::Instant::now();
    let node_a = env.start_node(&a, &["-dest", &node_n.addr]);
    let tip = chain.last().unwrap().hash().to_string();
    eventually(Duration::from_secs(30), "N to reach the honest tip", || {
        env.tip(&n).filter(|t| t.1 == tip).map(|_| ())
    });
    let synced_secs = started.elapsed().as_secs_f64();
    // What the node could not queue was dropped (gossip Ignore); let what
    // it queued drain.
    std::thread::sleep(Duration::from_secs(2));
    let (peak, _) = memory_kib(pid);
    println!(
        "published {FLOOD} side blocks in {flood_secs:.1} s; synced {} blocks {:.1} s after the honest peer started; resident memory {} MiB before, peak {} MiB",
        chain.len() - 3,
        synced_secs,
        rss_before / 1024,
        peak / 1024
    );
    // docs/security.md: a flood of gossip holds at most 32 MiB waiting, the
    // orphan pool 16 MiB; with the process's own growth, well under 256 MiB.
    assert!(
        peak.saturating_sub(rss_before) < 256 * 1024,
        "memory grew by {} KiB",
        peak.saturating_sub(rss_before)
    );
    let log = node_n.proc.log_text();
    let a_id = node_a.peer_id();
    assert!(!banned(&log, &a_id));
    assert!(node_n.proc.terminate(Duration::from_secs(10)));
    // Not one of them was written.
    let s =
        chain_store::ChainStore::open_read_only(&env.path().join(format!("blocks_{n}"))).unwrap();
    let stored = flood
        .iter()
        .filter(|b| s.header_entry(&b.hash()).unwrap().is_some())
        .count();
    assert_eq!(stored, 0, "side blocks nobody asked for were stored");
}
