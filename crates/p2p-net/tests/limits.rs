//! Connection limits as a wallet meets them: a node whose slots are taken
//! refuses a new connection, and the wallet's one-shot request says so in
//! plain words instead of "the connection closed".

#![allow(clippy::unwrap_used)]

mod common;

use common::config;
use p2p_net::{NetEvent, SHORT_LIVED_SLOTS};
use p2p_proto::{Request, Response};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_its_connection_limit_is_reported_as_such_to_a_wallet() {
    let da = tempfile::tempdir().unwrap();
    // One inbound peer slot (9 less the 8 kept for its own dials), and the
    // short-lived slots beyond it.
    let (_a, mut a_events, _a_task) =
        p2p_net::start(config(&da, &["/ip4/127.0.0.1/tcp/0"], vec![], 9))
            .await
            .unwrap();
    let addr = loop {
        if let Some(NetEvent::Listening(addr)) = a_events.recv().await {
            break addr;
        }
    };
    let a = _a.clone();
    tokio::spawn(async move {
        while let Some(ev) = a_events.recv().await {
            if let NetEvent::Request { reply, .. } = ev {
                let _ = a
                    .respond(
                        reply,
                        Response::Error {
                            reason: "served".into(),
                        },
                    )
                    .await;
            }
        }
    });
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

    // Hosts that dial it take every slot it has: the peer slot and the
    // short-lived ones.
    let mut dirs = Vec::new();
    let mut hosts = Vec::new();
    for _ in 0..=SHORT_LIVED_SLOTS {
        let d = tempfile::tempdir().unwrap();
        let (h, _events, _task) = p2p_net::start(config(&d, &[], vec![addr.clone()], 9))
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
