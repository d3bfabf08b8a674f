//! Networked end-to-end tests: real node processes on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use e2e_tests::{eventually, free_id, Env};
use std::time::Duration;

const CONVERGE: Duration = Duration::from_secs(30);

/// Waits until every node in `ids` has the same tip at `height` or more; returns it.
fn converge(env: &Env, ids: &[&str], height: u64) -> String {
    eventually(
        CONVERGE,
        &format!("nodes {ids:?} to share a tip at height {height}"),
        || {
            let tips: Vec<_> = ids.iter().map(|id| env.tip(id)).collect();
            let first = tips[0].clone()?;
            (first.0 >= height && tips.iter().all(|t| t.as_ref() == Some(&first)))
                .then_some(first.1)
        },
    )
}

#[test]
fn tutorial_three_nodes_then_join_from_nothing_and_restart() {
    let env = Env::new();
    let (a, b, c, d) = (free_id(), free_id(), free_id(), free_id());
    let w1 = env.wallet(&a, "w1");
    let w2 = env.wallet(&b, "w2");
    let w3 = env.wallet(&c, "w3");
    env.json("node", &a, &["createblockchain", "-address", "w1"]);
    env.copy_chain(&a, &b);
    env.copy_chain(&a, &c);
    env.json(
        "wallet-cli",
        &a,
        &["send", "-from", "w1", "-to", &w2, "-amount", "10", "-mint"],
    );

    let node_a = env.start_node(&a, &[]);
    let node_c = env.start_node(&c, &["-dest", &node_a.addr, "-minter", "w3"]);
    let mut node_b = env.start_node(&b, &["-dest", &node_a.addr]);
    converge(&env, &[&a, &b, &c], 1);
    // Let gossip subscriptions settle before submitting.
    node_c
        .proc
        .wait_for_log("peer connected", Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));

    let s1 = env.json(
        "wallet-cli",
        &b,
        &[
            "send",
            "-from",
            "w2",
            "-to",
            &w1,
            "-amount",
            "1",
            "-peer",
            &node_a.addr,
        ],
    );
    let s2 = env.json(
        "wallet-cli",
        &b,
        &[
            "send",
            "-from",
            "w2",
            "-to",
            &w1,
            "-amount",
            "1",
            "-peer",
            &node_a.addr,
        ],
    );
    assert_eq!(s1["accepted"], true);
    assert_eq!(
        s2["accepted"], true,
        "the second send spends the first one's unconfirmed change"
    );

    let tip = converge(&env, &[&a, &b, &c], 2);
    let blocks = env.blocks(&c);
    assert_eq!(blocks[0]["hash"], tip.as_str());
    assert_eq!(blocks[0]["height"], 2);
    let txids: Vec<_> = blocks[0]["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["txid"].clone())
        .collect();
    assert_eq!(
        txids.len(),
        3,
        "C mints one block holding the coinbase and both transactions"
    );
    assert!(txids.contains(&s1["txid"]) && txids.contains(&s2["txid"]));
    assert_eq!(
        blocks[0]["transactions"][0]["outputs"][0]["address"],
        w3.as_str()
    );
    for id in [&a, &b, &c] {
        assert_eq!(
            (
                env.balance(id, &w1),
                env.balance(id, &w2),
                env.balance(id, &w3)
            ),
            (32, 8, 20),
            "balances on node {id}"
        );
    }
    // The chain is in use by node A: a second writer is refused, nothing is changed.
    let e = env.fails(
        "wallet-cli",
        &a,
        &["send", "-from", "w1", "-to", &w2, "-amount", "1", "-mint"],
    );
    assert!(e.contains("is in use by a running node"), "{e}");
    // B was told only about A; Kademlia lets it find C.
    let c_peer = node_c.addr.rsplit('/').next().unwrap().to_string();
    node_b.proc.wait_for_log(
        &format!("peer connected peer={c_peer}"),
        Duration::from_secs(40),
    );
    let bal = env.json(
        "wallet-cli",
        &b,
        &["getbalance", "-address", "w2", "-peer", &node_a.addr],
    );
    assert_eq!(bal["balance"], 8);

    // A fourth node with no chain directory downloads everything.
    let _node_d = env.start_node(&d, &["-dest", &node_a.addr]);
    converge(&env, &[&a, &d], 2);

    // Restart B without --dest: same peer id, reconnects to its known peers.
    let old_addr = node_b.addr.clone();
    assert!(
        node_b.proc.terminate(Duration::from_secs(10)),
        "clean exit on SIGTERM"
    );
    assert!(node_b.proc.log_text().contains("chain closed cleanly"));
    let node_b2 = env.start_node(&b, &[]);
    assert_eq!(node_b2.addr, old_addr, "the peer id survives a restart");
    node_b2
        .proc
        .wait_for_log("peer connected", Duration::from_secs(15));
    // Every peer address logged names its peer id once, whether it was
    // dialled from --dest, peers.json or Kademlia.
    for log in [
        node_b.proc.log_text(),
        node_b2.proc.log_text(),
        node_c.proc.log_text(),
    ] {
        for line in log.lines().filter(|l| l.contains("peer connected")) {
            assert_eq!(line.matches("/p2p/").count(), 1, "{line}");
        }
    }
    drop(node_c);
}

#[test]
fn no_chain_and_no_dest_is_a_clear_error_and_bad_peers_too() {
    let env = Env::new();
    let id = free_id();
    let e = env.fails("node", &id, &["startp2p", "--no-mdns"]);
    assert!(e.contains("no chain") && e.contains("--dest"), "{e}");
    for bad in [
        "/ip4/0.0.0.0/tcp/3000",
        "/ip4/203.0.113.7/udp/3000",
        "nonsense",
    ] {
        let e = env.fails(
            "node",
            &id,
            &["startp2p", "--no-mdns", "--external-address", bad],
        );
        assert!(e.contains("--external-address"), "{bad}: {e}");
    }
    env.wallet(&id, "w");
    let e = env.fails(
        "wallet-cli",
        &id,
        &[
            "send",
            "-from",
            "w",
            "-to",
            "w",
            "-amount",
            "1",
            "-peer",
            "/ip4/127.0.0.1/tcp/1",
        ],
    );
    assert!(e.contains("/p2p/"), "{e}");
    // An unreachable peer is a clear error within a few seconds.
    let dead = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5",
        e2e_tests::free_port()
    );
    let start = std::time::Instant::now();
    let e = env.fails(
        "wallet-cli",
        &id,
        &["getbalance", "-address", "w", "-peer", &dead],
    );
    assert!(e.contains("cannot reach"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "took {:?}",
        start.elapsed()
    );
}

#[test]
fn competing_branches_converge_on_most_work_and_return_transactions() {
    let env = Env::new();
    let (x, y, wallets) = (free_id(), free_id(), free_id());
    let w1 = env.wallet(&wallets, "w1");
    let w2 = env.wallet(&wallets, "w2");
    let w3 = env.wallet(&wallets, "w3");
    env.json("node", &wallets, &["createblockchain", "-address", &w1]);
    env.json(
        "wallet-cli",
        &wallets,
        &["send", "-from", "w1", "-to", &w2, "-amount", "10", "-mint"],
    );
    env.copy_chain(&wallets, &x);
    env.copy_chain(&wallets, &y);

    // Apart: X confirms w2 -> w3 (one block); Y confirms two payments from w1 (two blocks).
    let mut node_x = env.start_node(&x, &["-minter", &w3, "-min-txs", "1"]);
    let node_y = env.start_node(&y, &["-minter", &w3, "-min-txs", "1"]);
    let losing = env.json(
        "wallet-cli",
        &wallets,
        &[
            "send",
            "-from",
            "w2",
            "-to",
            &w3,
            "-amount",
            "5",
            "-peer",
            &node_x.addr,
        ],
    );
    eventually(CONVERGE, "X to mint", || {
        (env.tip(&x)?.0 == 2).then_some(())
    });
    env.json(
        "wallet-cli",
        &wallets,
        &[
            "send",
            "-from",
            "w1",
            "-to",
            &w3,
            "-amount",
            "1",
            "-peer",
            &node_y.addr,
        ],
    );
    eventually(CONVERGE, "Y to mint", || {
        (env.tip(&y)?.0 == 2).then_some(())
    });
    env.json(
        "wallet-cli",
        &wallets,
        &[
            "send",
            "-from",
            "w1",
            "-to",
            &w3,
            "-amount",
            "1",
            "-peer",
            &node_y.addr,
        ],
    );
    eventually(CONVERGE, "Y to mint again", || {
        (env.tip(&y)?.0 == 3).then_some(())
    });
    let y_blocks: Vec<String> = env
        .blocks(&y)
        .iter()
        .map(|b| b["hash"].as_str().unwrap().to_string())
        .collect();

    // Connect them: X restarts with Y as its peer.
    assert!(node_x.proc.terminate(Duration::from_secs(10)));
    let _node_x = env.start_node(
        &x,
        &["-dest", &node_y.addr, "-minter", &w3, "-min-txs", "1"],
    );
    // X reorganises onto Y's branch, takes its losing transaction back, and it gets confirmed.
    let confirmed = eventually(
        CONVERGE,
        "the losing branch's transaction to be confirmed on the winning branch",
        || {
            let tx = losing["txid"].as_str().unwrap();
            let (hx, tx_tip) = env.tip(&x)?;
            let (_, ty_tip) = env.tip(&y)?;
            if tx_tip != ty_tip || hx < 4 {
                return None;
            }
            let blocks = env.blocks(&x);
            blocks
                .iter()
                .any(|b| {
                    b["transactions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|t| t["txid"] == tx)
                })
                .then_some(blocks)
        },
    );
    let hashes: Vec<String> = confirmed
        .iter()
        .map(|b| b["hash"].as_str().unwrap().to_string())
        .collect();
    for h in &y_blocks {
        assert!(
            hashes.contains(h),
            "the winning branch's block {h} is on the final chain"
        );
    }
    assert!(
        node_y.proc.log_text().contains("connected block")
            || _node_x.proc.log_text().contains("disconnected block")
    );
    assert!(
        _node_x
            .proc
            .log_text()
            .contains("disconnected block (reorganisation)"),
        "X reorganised"
    );
}
