//! What the p2p-net integration tests share.

#![allow(dead_code)]

use p2p_net::{Multiaddr, NetConfig, NetEvent};
use std::time::Duration;
use tokio::sync::mpsc;

/// The first address a host reports listening on (within 10 s).
pub async fn listening(events: &mut mpsc::Receiver<NetEvent>) -> Multiaddr {
    let wait = async {
        loop {
            match events.recv().await {
                Some(NetEvent::Listening(addr)) => return addr,
                Some(_) => {}
                None => panic!("the host stopped before it listened"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the host listens within 10 s")
}

/// A host's configuration: its identity in `dir`, listening on `listen`,
/// dialling `bootstrap`, with at most `max` peers.
pub fn config(
    dir: &tempfile::TempDir,
    listen: &[&str],
    bootstrap: Vec<p2p_net::Multiaddr>,
    max: u32,
) -> NetConfig {
    NetConfig {
        identity_dir: dir.path().to_path_buf(),
        listen: listen
            .iter()
            .map(|a| a.parse().expect("a multiaddress"))
            .collect(),
        bootstrap,
        mdns: false,
        agent: "p2p-net-test".into(),
        max_connections: max,
        gossip: p2p_net::GossipParams::default(),
        reach: Default::default(),
        link: None,
    }
}

/// A host that answers every request with an error saying "served",
/// listening on loopback: its handle and address.
pub async fn serving_host(
    dir: &tempfile::TempDir,
    bootstrap: Vec<Multiaddr>,
    max: u32,
) -> (p2p_net::NetHandle, Multiaddr) {
    let (host, mut events, _task) =
        p2p_net::start(config(dir, &["/ip4/127.0.0.1/tcp/0"], bootstrap, max))
            .await
            .expect("the host starts");
    let addr = listening(&mut events).await;
    let responder = host.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let NetEvent::Request { reply, .. } = ev {
                let reason = "served".to_string();
                let _ = responder
                    .respond(reply, p2p_proto::Response::Error { reason })
                    .await;
            }
        }
    });
    (host, addr)
}

/// A chainless `Status`, as an attacker sends it.
pub fn chainless_status() -> p2p_proto::Request {
    p2p_proto::Request::Status(p2p_proto::Status {
        protocol_version: p2p_proto::PROTOCOL_VERSION,
        genesis: chain_core::BlockHash([0; 32]),
        best_height: 0,
        best_hash: chain_core::BlockHash([0; 32]),
        total_work: [0; 32],
        agent: "hostile".into(),
    })
}
