//! Dialling again: a bootstrap peer that is down at start is reached once
//! it is up (over TCP, as nodes run).

#![allow(clippy::unwrap_used)]

mod common;

use common::{config, listening};
use p2p_net::{Multiaddr, NetEvent, PeerId};
use std::time::Duration;
use tokio::sync::mpsc;

/// Makes a host's identity in `dir`, listening on `listen`, and stops the
/// host: its id and the address it listened at.
async fn identity(dir: &tempfile::TempDir, listen: &str) -> (PeerId, Multiaddr) {
    let (h, mut events, task) = p2p_net::start(config(dir, &[listen], vec![], 8))
        .await
        .unwrap();
    let addr = listening(&mut events).await;
    let id = h.local_peer_id();
    h.shutdown().await;
    task.await.unwrap();
    (id, addr)
}

/// Whether `events` report `peer` connected as a peer within 30 s.
async fn made_a_peer(events: &mut mpsc::Receiver<NetEvent>, peer: PeerId) -> bool {
    let wait = async {
        loop {
            match events.recv().await {
                Some(NetEvent::Connected { peer: p, .. }) if p == peer => return,
                Some(_) => {}
                None => panic!("the host stopped"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .is_ok()
}

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
    let (a_id, addr) = identity(&da, listen).await;

    let (b, mut b_events, _b_task) = p2p_net::start(config(&db, &[], vec![addr], 8))
        .await
        .unwrap();
    // B's first dial fails: nothing listens there yet.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (a, _a_events, _a_task) = p2p_net::start(config(&da, &[listen], vec![], 8))
        .await
        .unwrap();
    assert_eq!(a.local_peer_id(), a_id);
    assert!(
        made_a_peer(&mut b_events, a_id).await,
        "B never reached A once A was up"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// A bootstrap peer that reaches this host first, by dialling it, is made
/// a peer when its redial falls due, though its bootstrap address no
/// longer answers: the connection it opened is the peer's, and the host
/// never waits on an inbound connection that makes no request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_peer_that_dials_in_first_is_made_a_peer() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a_id, old_addr) = identity(&da, "/ip4/127.0.0.1/tcp/0").await;

    // B's bootstrap address for A answers nothing now.
    let (b, mut b_events, _b_task) =
        p2p_net::start(config(&db, &["/ip4/127.0.0.1/tcp/0"], vec![old_addr], 8))
            .await
            .unwrap();
    let b_addr = listening(&mut b_events).await;
    // A is back at another port and dials B; it makes no request, so B
    // has an inbound connection from A that is not a peer's.
    let (a, _a_events, _a_task) = p2p_net::start(config(&da, &["/ip4/127.0.0.1/tcp/0"], vec![], 8))
        .await
        .unwrap();
    assert_eq!(a.local_peer_id(), a_id);
    a.dial(b_addr).await.unwrap();
    assert!(
        made_a_peer(&mut b_events, a_id).await,
        "B never made its bootstrap peer A a peer over A's connection"
    );
    let info = b.info().await.unwrap();
    let listed = info.peers.iter().find(|p| p.id == a_id).unwrap();
    assert!(listed.inbound, "A's connection is the one A opened");
    a.shutdown().await;
    b.shutdown().await;
}
