//! Anchors: at a clean shutdown a node saves the outbound peers that
//! served it blocks, and at the next start it dials them first, even with
//! no `--dest` and no `peers.json`.

mod common;

use common::{config, listening};
use p2p_net::{Multiaddr, NetEvent, NetHandle, PeerId};
use p2p_proto::{BlockBytes, Request, Response};
use std::time::Duration;

/// A host on loopback that answers `GetData` with one block when `serves`,
/// and every request with an error otherwise.
async fn host(dir: &tempfile::TempDir, serves: bool) -> (NetHandle, Multiaddr) {
    let (handle, mut events, _task) =
        p2p_net::start(config(dir, &["/ip4/127.0.0.1/tcp/0"], vec![], 64))
            .await
            .expect("the host starts");
    let addr = listening(&mut events).await;
    let responder = handle.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let NetEvent::Request { request, reply, .. } = ev {
                let response = match request {
                    Request::GetData { .. } if serves => Response::Blocks {
                        blocks: vec![BlockBytes::new(vec![1, 2, 3])],
                        not_found: vec![],
                    },
                    _ => Response::Error {
                        reason: "nothing to serve".into(),
                    },
                };
                let _ = responder.respond(reply, response).await;
            }
        }
    });
    (handle, addr)
}

async fn wait_for(node: &NetHandle, peer: PeerId) -> bool {
    tokio::time::timeout(Duration::from_secs(10), async {
        while !node.peers().await.unwrap_or_default().contains(&peer) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .is_ok()
}

fn saved_anchors(dir: &tempfile::TempDir) -> Vec<(String, String)> {
    let bytes = std::fs::read(dir.path().join("anchors.json")).expect("anchors.json is saved");
    serde_json::from_slice(&bytes).expect("anchors.json is a list of (peer, address)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_served_blocks_are_dialled_first_after_a_restart() {
    let (db, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (b, b_addr) = host(&db, true).await;
    let (c, c_addr) = host(&dc, false).await;
    let (b_id, c_id) = (b.local_peer_id(), c.local_peer_id());

    let da = tempfile::tempdir().unwrap();
    let (a, _events, task) = p2p_net::start(config(&da, &[], vec![b_addr, c_addr], 64))
        .await
        .unwrap();
    assert!(wait_for(&a, b_id).await, "A connects to B");
    assert!(wait_for(&a, c_id).await, "A connects to C");
    let data = Request::GetData { hashes: vec![] };
    let served = a.request(b_id, data.clone()).await.unwrap();
    assert!(matches!(served, Response::Blocks { .. }), "{served:?}");
    let refused = a.request(c_id, data).await.unwrap();
    assert!(matches!(refused, Response::Error { .. }), "{refused:?}");
    a.shutdown().await;
    task.await.unwrap();

    // B served blocks and is an anchor; C served nothing and is not.
    let anchors = saved_anchors(&da);
    let ids: Vec<&str> = anchors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(ids, vec![b_id.to_string().as_str()], "{anchors:?}");

    // Without its peer store and without --dest, A still finds B.
    let _ = std::fs::remove_file(da.path().join("peers.json"));
    let (a, _events, task) = p2p_net::start(config(&da, &[], vec![], 64)).await.unwrap();
    assert!(
        !da.path().join("anchors.json").exists(),
        "anchors are taken at start, dialled once"
    );
    assert!(wait_for(&a, b_id).await, "A dials its anchor B at start");
    assert!(
        !a.peers().await.unwrap().contains(&c_id),
        "C was not an anchor"
    );
    a.shutdown().await;
    task.await.unwrap();
}
