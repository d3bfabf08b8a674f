//! Dialling again: a bootstrap peer that is down at start is reached once
//! it is up (over TCP, as nodes run).

#![allow(clippy::unwrap_used)]

mod common;

use common::{config, listening};
use p2p_net::NetEvent;
use std::time::Duration;

/// A bootstrap peer that is down when a host starts is dialled again, so
/// nodes may be started in any order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_peer_that_starts_later_is_reached() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // A's identity is made and kept in `da`; A stops at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let listen = listen.as_str();
    let (a, mut a_events, a_task) = p2p_net::start(config(&da, &[listen], vec![], 8))
        .await
        .unwrap();
    let addr = listening(&mut a_events).await;
    let a_id = a.local_peer_id();
    a.shutdown().await;
    a_task.await.unwrap();
    drop(a_events);

    let (b, mut b_events, _b_task) = p2p_net::start(config(&db, &[], vec![addr], 8))
        .await
        .unwrap();
    // B's first dial fails: nothing listens there yet.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (a, _a_events, _a_task) = p2p_net::start(config(&da, &[listen], vec![], 8))
        .await
        .unwrap();
    assert_eq!(a.local_peer_id(), a_id);
    let connected = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match b_events.recv().await {
                Some(NetEvent::Connected { peer, .. }) if peer == a_id => return,
                Some(_) => {}
                None => panic!("B stopped"),
            }
        }
    })
    .await;
    assert!(connected.is_ok(), "B never reached A once A was up");
    a.shutdown().await;
    b.shutdown().await;
}
