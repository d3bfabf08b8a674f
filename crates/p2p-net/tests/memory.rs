//! Two hosts in one process over libp2p's in-memory transport: the same
//! handshake, upgrades and protocols as over TCP, with `/memory/` addresses.

#![allow(clippy::unwrap_used)]

mod common;

use common::{config, listening};
use p2p_net::NetEvent;
use p2p_proto::{Request, Response};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_talk_over_the_memory_transport() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Port 0: the transport picks a free one.
    let (a, mut a_events, _a_task) = p2p_net::start(config(&da, &["/memory/0"], vec![], 8))
        .await
        .unwrap();
    let addr = listening(&mut a_events).await;
    assert!(addr.to_string().starts_with("/memory/"), "{addr}");
    let a_id = a.local_peer_id();
    let (b, _b_events, _b_task) = p2p_net::start(config(&db, &[], vec![addr], 8))
        .await
        .unwrap();
    // A answers every request it is handed with an error that names it.
    let answering = tokio::spawn(async move {
        while let Some(ev) = a_events.recv().await {
            if let NetEvent::Request { request, reply, .. } = ev {
                let reason = format!("memory host got {}", request.encode().len());
                a.respond(reply, Response::Error { reason }).await.unwrap();
            }
        }
    });
    let ask = Request::GetData {
        hashes: vec![chain_core::BlockHash([3; 32])],
    };
    let want = format!("memory host got {}", ask.encode().len());
    let answer = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match b.request(a_id, ask.clone()).await {
                Ok(r) => return r,
                // Not connected yet.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(answer, Response::Error { reason: want });
    b.shutdown().await;
    answering.abort();
}

/// A host that dialled another publishes to it as soon as the connection
/// is up, although neither has asked the other anything (the connection is
/// not yet a peer's for the host that was dialled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialling_host_can_publish_before_any_request() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_a, mut a_events, _a_task) = p2p_net::start(config(&da, &["/memory/0"], vec![], 8))
        .await
        .unwrap();
    let addr = listening(&mut a_events).await;
    let (b, _b_events, _b_task) = p2p_net::start(config(&db, &[], vec![addr], 8))
        .await
        .unwrap();
    let tx = chain_core::Transaction::coinbase(
        1,
        chain_core::PubkeyHash([1; 20]),
        chain_core::Amount(1),
        b"",
    );
    let published = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match b.publish(p2p_proto::Announcement::Tx(tx.clone())).await {
                Ok(()) => return,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await;
    assert!(published.is_ok(), "never published");
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(NetEvent::Announcement { .. }) = a_events.recv().await {
                return;
            }
        }
    })
    .await;
    assert!(got.is_ok(), "the announcement did not arrive");
}

/// Two hosts that dial each other at once (as two nodes finding each other
/// on the LAN do) each count the other as a peer, whichever connection
/// arrived first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_that_dial_each_other_at_once_are_peers() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut addrs = Vec::new();
    let mut hosts = Vec::new();
    for d in [&da, &db] {
        let (h, mut events, _task) = p2p_net::start(config(d, &["/memory/0"], vec![], 8))
            .await
            .unwrap();
        addrs.push(listening(&mut events).await);
        hosts.push((h, events));
    }
    let (a, b) = (hosts[0].0.clone(), hosts[1].0.clone());
    let (ra, rb) = tokio::join!(a.dial(addrs[1].clone()), b.dial(addrs[0].clone()));
    ra.unwrap();
    rb.unwrap();
    let both = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let pa = a.peers().await.unwrap();
            let pb = b.peers().await.unwrap();
            if pa.contains(&b.local_peer_id()) && pb.contains(&a.local_peer_id()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(both.is_ok(), "the hosts did not make each other peers");
}
