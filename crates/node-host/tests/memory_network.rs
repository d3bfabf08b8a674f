//! Whole nodes in one process: the node engine on real p2p-net hosts over
//! the memory transport. A node with a chain and a node with none: the
//! second takes the genesis from the first and syncs its chain.

#![allow(clippy::unwrap_used)]

use chain_core::test_utils::{chain_of, easy_params, genesis};
use chain_core::PubkeyHash;
use chain_node::{Minting, NodeConfig, PoolSettings};
use chain_store::ChainStore;
use node_host::NodeSetup;
use p2p_net::{Multiaddr, NetConfig};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

fn net_config(dir: &std::path::Path, bootstrap: Vec<Multiaddr>) -> NetConfig {
    NetConfig {
        identity_dir: dir.join("p2p"),
        listen: vec!["/memory/0".parse().unwrap()],
        bootstrap,
        mdns: false,
        agent: "memory-node".into(),
        max_connections: 16,
        gossip: p2p_net::GossipParams::default(),
        reach: Default::default(),
        link: None,
    }
}

fn setup(store: Option<ChainStore>, dir: &std::path::Path, dest: &[Multiaddr]) -> NodeSetup {
    NodeSetup {
        store,
        chain_dir: dir.join("blocks"),
        pool: PoolSettings::default(),
        node: NodeConfig {
            genesis_peers: dest
                .iter()
                .filter_map(|d| p2p_net::split_peer(d).map(|(p, _)| p))
                .collect::<HashSet<_>>(),
            expected_genesis: None,
            minting: Minting {
                to: None,
                min_txs: 2,
                threads: 1,
            },
            agent: "memory-node".into(),
            progress: Arc::new(|_| {}),
            compact_blocks: true,
        },
        http: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_with_no_chain_syncs_from_another_in_the_same_process() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p = easy_params();
    let g = genesis(&p, PubkeyHash([1; 20]));
    let blocks = chain_of(&p, &g, 30, PubkeyHash([1; 20]));
    let tip = blocks.last().unwrap().hash();
    let mut store = ChainStore::create(&da.path().join("blocks"), &g).unwrap();
    for b in &blocks[1..] {
        store.accept_block(b, chain_store::unix_now()).unwrap();
    }

    let (a_addr_tx, a_addr) = oneshot::channel();
    let mut a_addr_tx = Some(a_addr_tx);
    let (stop_a, a_stopped) = oneshot::channel::<()>();
    let a = tokio::spawn(node_host::run(
        net_config(da.path(), vec![]),
        setup(Some(store), da.path(), &[]),
        async move {
            let _ = a_stopped.await;
        },
        move |addr: &Multiaddr| {
            if let Some(tx) = a_addr_tx.take() {
                let _ = tx.send(addr.clone());
            }
        },
    ));
    let a_addr = tokio::time::timeout(Duration::from_secs(10), a_addr)
        .await
        .unwrap()
        .unwrap();
    assert!(a_addr.to_string().starts_with("/memory/"), "{a_addr}");

    let dest = vec![a_addr];
    let (stop_b, b_stopped) = oneshot::channel::<()>();
    let b = tokio::spawn(node_host::run(
        net_config(db.path(), dest.clone()),
        setup(None, db.path(), &dest),
        async move {
            let _ = b_stopped.await;
        },
        |_: &Multiaddr| {},
    ));
    let b_chain = db.path().join("blocks");
    let start = Instant::now();
    loop {
        let synced = ChainStore::open_read_only(&b_chain)
            .map(|s| s.tip().hash == tip)
            .unwrap_or(false);
        if synced {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the second node did not sync"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_b.send(());
    let _ = stop_a.send(());
    b.await.unwrap().unwrap();
    a.await.unwrap().unwrap();
    // Closed cleanly: the chain opens for writing, at the same tip.
    assert_eq!(ChainStore::open(&b_chain).unwrap().tip().hash, tip);
}
