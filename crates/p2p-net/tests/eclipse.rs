//! Identities that cost nothing, against one host: they cannot take its
//! bootstrap peer away, pass for outbound peers, grow its memory through
//! identify, or lock wallets out; a store of stale peers does not keep it
//! from the honest one. Each test uses the hostile-peer kit
//! (`p2p_net::hostile`).

#![allow(clippy::unwrap_used)]

mod common;

use common::{chainless_status, config, serving_host};
use p2p_net::hostile::Identity;
use p2p_net::{Multiaddr, NetHandle, PeerId, BOOTSTRAP_RELEASE_AFTER};
use std::time::Duration;

/// The peers `host` reports, with whether each came in.
async fn peers(host: &NetHandle) -> Vec<(PeerId, bool)> {
    host.info()
        .await
        .unwrap()
        .peers
        .into_iter()
        .map(|p| (p.id, p.inbound))
        .collect()
}

/// Listen addresses an attacker claims: `n` of them, all dialable-looking.
fn claimed(n: usize, from: usize) -> Vec<Multiaddr> {
    (from..from + n)
        .map(|i| {
            format!(
                "/ip4/127.{}.{}.{}/tcp/{}",
                (i >> 16) & 255,
                (i >> 8) & 255,
                i & 255,
                1000 + i % 60000
            )
            .parse()
            .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_inbound_identities_neither_release_the_bootstrap_peer_nor_pass_for_outbound() {
    let (db, dn) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (b, b_addr) = serving_host(&db, vec![], 64).await;
    let (n, n_addr) = serving_host(&dn, vec![b_addr], 64).await;
    let b_id = b.local_peer_id();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !peers(&n).await.contains(&(b_id, false)) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the node reaches its bootstrap peer");
    let crowd = Identity::many(8).unwrap();
    for (i, id) in crowd.iter().enumerate() {
        id.connect(&n_addr).await.unwrap();
        // Half claim listen addresses first, as a Kademlia server would,
        // and only then speak the sync protocol.
        if i % 2 == 0 {
            id.push_addresses(claimed(4, i * 4)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        id.request(chainless_status()).await.unwrap();
    }
    let ids: Vec<PeerId> = crowd.iter().map(Identity::id).collect();
    let deadline = tokio::time::Instant::now() + BOOTSTRAP_RELEASE_AFTER + Duration::from_secs(8);
    while tokio::time::Instant::now() < deadline {
        let now = peers(&n).await;
        for (p, inbound) in &now {
            assert!(
                *inbound || !ids.contains(p),
                "an inbound connection is called outbound: {now:?}"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let now = peers(&n).await;
    assert!(
        now.contains(&(b_id, false)),
        "the bootstrap peer was let go for inbound identities: {now:?}"
    );
    assert_eq!(
        now.iter().filter(|(p, _)| ids.contains(p)).count(),
        8,
        "the identities are peers: {now:?}"
    );
    drop(crowd);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallets_get_in_past_56_attacker_peers_and_16_cycling_connections() {
    let dn = tempfile::tempdir().unwrap();
    let (_n, n_addr) = serving_host(&dn, vec![], 64).await;
    let holders = Identity::many(56).unwrap();
    for id in &holders {
        id.connect(&n_addr).await.unwrap();
        let _ = id.request(chainless_status()).await;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut cyclers = Vec::new();
    for _ in 0..16 {
        let (addr, stop) = (n_addr.clone(), stop.clone());
        cyclers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let id = Identity::spawn().unwrap();
                if id.connect(&addr).await.is_ok() {
                    let _ = id.request(chainless_status()).await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                drop(id);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut failures = Vec::new();
    for _ in 0..6 {
        if let Err(e) = p2p_net::request_once(
            &n_addr,
            p2p_proto::Request::GetData { hashes: vec![] },
            Duration::from_secs(5),
        )
        .await
        {
            failures.push(e.to_string());
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for c in cyclers {
        let _ = c.await;
    }
    assert!(failures.is_empty(), "wallet requests failed: {failures:?}");
    drop(holders);
}

/// A peer store of 1,000 peers that are gone (closed loopback ports, and
/// addresses nobody answers), each seen `stale_seen + i`, and the honest
/// peer `b` seen at `b_seen` (when given).
fn stale_store(dir: &tempfile::TempDir, stale_seen: u64, b: Option<(PeerId, &Multiaddr, u64)>) {
    let mut store = serde_json::Map::new();
    for i in 0..1000u32 {
        let addr = if i % 2 == 0 {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("/ip4/127.0.0.1/tcp/{}", l.local_addr().unwrap().port())
        } else {
            format!("/ip4/198.51.100.{}/tcp/{}", i % 250 + 1, 4000 + i)
        };
        store.insert(
            PeerId::random().to_string(),
            serde_json::json!({"addrs": [addr], "failures": 0, "last_seen": stale_seen + u64::from(i)}),
        );
    }
    if let Some((id, base, seen)) = b {
        store.insert(
            id.to_string(),
            serde_json::json!({"addrs": [base.to_string()], "failures": 0, "last_seen": seen}),
        );
    }
    std::fs::write(
        dir.path().join("peers.json"),
        serde_json::to_vec(&store).unwrap(),
    )
    .unwrap();
}

/// Starts a host in `dir` dialling `bootstrap`, and waits at most 10 s
/// for it to have `b` as a peer.
async fn reaches_within_10_s(dir: &tempfile::TempDir, bootstrap: Vec<Multiaddr>, b: PeerId) {
    let started = tokio::time::Instant::now();
    let (n, _events, _task) = p2p_net::start(config(dir, &[], bootstrap, 64))
        .await
        .unwrap();
    let reached = tokio::time::timeout(Duration::from_secs(10), async {
        while !peers(&n).await.iter().any(|(p, _)| *p == b) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        reached.is_ok(),
        "the honest peer was not reached within 10 s ({:?})",
        started.elapsed()
    );
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_a_thousand_stale_peers_reaches_the_honest_one() {
    let db = tempfile::tempdir().unwrap();
    let (b, b_addr) = serving_host(&db, vec![], 64).await;
    let b_id = b.local_peer_id();
    let (_, b_base) = p2p_net::split_peer(&b_addr).unwrap();
    // The honest peer is the --dest peer, the stale ones seen later.
    let dn = tempfile::tempdir().unwrap();
    stale_store(&dn, 1_700_000_000, None);
    reaches_within_10_s(&dn, vec![b_addr.clone()], b_id).await;
    // The honest peer is only in the store, seen last (it served the
    // node's sync before the restart).
    let dm = tempfile::tempdir().unwrap();
    stale_store(&dm, 1_600_000_000, Some((b_id, &b_base, 1_700_000_000)));
    reaches_within_10_s(&dm, vec![], b_id).await;
}
