//! Connection limits as a wallet meets them: a node whose slots are taken
//! by peers and clients refuses a new connection, and the wallet's one-shot
//! request says so in plain words instead of "the connection closed"; a
//! node whose slots are taken by connections that never became a peer's
//! (other nodes' lookups) makes room for the wallet.

#![allow(clippy::unwrap_used)]

mod common;

use common::config;
use p2p_net::{SHORT_LIVED_SLOTS, UNCONFIRMED_FOR};
use p2p_proto::{Request, Response};
use std::time::Duration;

/// A host with one inbound peer slot (9 less the 8 kept for its own
/// dials) and the short-lived slots beyond it, that answers every request
/// with an error saying "served".
async fn serving_host(dir: &tempfile::TempDir) -> (p2p_net::NetHandle, p2p_net::Multiaddr) {
    common::serving_host(dir, vec![], 9).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_its_connection_limit_is_reported_as_such_to_a_wallet() {
    let da = tempfile::tempdir().unwrap();
    // One inbound peer slot (9 less the 8 kept for its own dials), and the
    // short-lived slots beyond it.
    let (a, addr) = serving_host(&da).await;
    let ask = || Request::GetData { hashes: vec![] };
    // With room, a wallet's request is answered.
    let answer = p2p_net::request_once(&addr, ask(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        answer,
        Response::Error {
            reason: "served".into()
        }
    );

    // Hosts that dial it and ask it something take every slot it has: the
    // peer slot and the short-lived ones.
    let a_id = a.local_peer_id();
    let mut dirs = Vec::new();
    let mut hosts = Vec::new();
    for _ in 0..=SHORT_LIVED_SLOTS {
        let d = tempfile::tempdir().unwrap();
        let (h, _events, _task) = p2p_net::start(config(&d, &[], vec![addr.clone()], 9))
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while h.request(a_id, ask()).await.is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .unwrap();
        hosts.push((h, _events));
        dirs.push(d);
    }
    // Once they are in, a wallet's connection is refused, and it says so.
    let mut last = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        match p2p_net::request_once(&addr, ask(), Duration::from_secs(5)).await {
            Err(e) if e.to_string().contains("refused") => {
                last = e.to_string();
                break;
            }
            other => last = format!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = last;
    assert!(
        err.contains("refused the connection: it is at its connection limit"),
        "{err}"
    );
    assert!(err.contains(&addr.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_became_peers_make_room_for_a_wallet() {
    let da = tempfile::tempdir().unwrap();
    let (_a, addr) = serving_host(&da).await;
    // Hosts that dial it and never ask anything, as a lookup's connection
    // does: every inbound slot, the peer slot and the short-lived ones.
    let mut dirs = Vec::new();
    let mut hosts = Vec::new();
    for _ in 0..=SHORT_LIVED_SLOTS {
        let d = tempfile::tempdir().unwrap();
        let (h, events, _task) = p2p_net::start(config(&d, &[], vec![addr.clone()], 9))
            .await
            .unwrap();
        hosts.push((h, events));
        dirs.push(d);
    }
    let all_in = tokio::time::Instant::now();
    // The wallet gets in before such connections would be closed merely
    // for being past the peer limit (UNCONFIRMED_FOR).
    let mut last = String::new();
    while all_in.elapsed() < UNCONFIRMED_FOR {
        match p2p_net::request_once(
            &addr,
            Request::GetData { hashes: vec![] },
            Duration::from_secs(5),
        )
        .await
        {
            Ok(Response::Error { reason }) if reason == "served" => return,
            other => last = format!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the wallet was not let in: {last}");
}
