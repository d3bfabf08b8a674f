//! QUIC beside TCP, and a relayed connection upgraded to a direct one by
//! hole punching (DCUtR), on loopback.

#![allow(clippy::unwrap_used)]

mod common;

use common::{config, listening};
use p2p_net::{Multiaddr, NetEvent, NetHandle};
use p2p_proto::{Request, Response};
use std::time::Duration;
use tokio::sync::mpsc;

/// Answers every request `host` is handed with an error naming `name`.
fn answer(host: NetHandle, mut events: mpsc::Receiver<NetEvent>, name: &'static str) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let NetEvent::Request { reply, .. } = ev {
                let reason = name.to_string();
                let _ = host.respond(reply, Response::Error { reason }).await;
            }
        }
    });
}

fn ask() -> Request {
    Request::GetData {
        hashes: vec![chain_core::BlockHash([3; 32])],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_listening_on_quic_alone_is_reached_over_quic() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, mut a_events, _a) =
        p2p_net::start(config(&da, &["/ip4/127.0.0.1/udp/0/quic-v1"], vec![], 8))
            .await
            .unwrap();
    let addr = listening(&mut a_events).await;
    assert!(addr.to_string().contains("/udp/"), "{addr}");
    let a_id = a.local_peer_id();
    answer(a, a_events, "quic");
    let (b, _b_events, _b) = p2p_net::start(config(&db, &[], vec![addr], 8))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match b.request(a_id, ask()).await {
                Ok(r) => return r,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .expect("a request over QUIC is answered within 20 s");
    assert_eq!(
        got,
        Response::Error {
            reason: "quic".into()
        }
    );
    let info = b.info().await.unwrap();
    let peer = info.peers.iter().find(|p| p.id == a_id).unwrap();
    assert!(
        peer.address.to_string().contains("/quic-v1"),
        "the connection is QUIC: {}",
        peer.address
    );
    b.shutdown().await;
}

/// Waits for a `Listening` event on a relayed address.
async fn relayed_listen_address(events: &mut mpsc::Receiver<NetEvent>) -> Multiaddr {
    let wait = async {
        loop {
            match events.recv().await {
                Some(NetEvent::Listening(a)) if p2p_net::nat::is_relayed(&a) => return a,
                Some(_) => {}
                None => panic!("the host stopped"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("a relay reservation within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_dialled_through_a_relay_ends_up_connected_directly() {
    // TEST_LOG=p2p_net=debug,libp2p_dcutr=debug shows the hole punch.
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // A relay serves only with an address confirmed reachable: here given,
    // as `--external-address` gives it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut relay_cfg = config(&dirs[0], &[&listen], vec![], 16);
    relay_cfg.reach.external = vec![listen.parse().unwrap()];
    let (relay, mut relay_events, _r) = p2p_net::start(relay_cfg).await.unwrap();
    let relay_addr = listening(&mut relay_events).await;
    answer(relay.clone(), relay_events, "relay");
    // B listens on loopback and through the relay.
    let circuit = format!("{relay_addr}/p2p-circuit");
    let (b, mut b_events, _b) = p2p_net::start(config(
        &dirs[1],
        &["/ip4/127.0.0.1/tcp/0", &circuit],
        vec![],
        16,
    ))
    .await
    .unwrap();
    let b_relayed = relayed_listen_address(&mut b_events).await;
    let b_id = b.local_peer_id();
    assert!(
        b_relayed
            .to_string()
            .ends_with(&format!("/p2p-circuit/p2p/{b_id}")),
        "{b_relayed}"
    );
    answer(b.clone(), b_events, "b");
    // C knows B only by its relayed address, as a user given it with -dest.
    let (c, _c_events, _c) = p2p_net::start(config(
        &dirs[2],
        &["/ip4/127.0.0.1/tcp/0"],
        vec![b_relayed],
        16,
    ))
    .await
    .unwrap();
    // Requests run only over a direct connection. Eventually B answers one
    // and C lists B at a direct address: a hole punch, retried when it
    // fails, or a direct dial, replaces the circuit. (A direct connection
    // can also pass by: AutoNAT's dial-back.)
    let settled = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(r) = c.request(b_id, ask()).await {
                assert_eq!(r, Response::Error { reason: "b".into() });
                let info = c.info().await.unwrap();
                if let Some(p) = info.peers.iter().find(|p| p.id == b_id) {
                    if !p2p_net::nat::is_relayed(&p.address) {
                        return p.address.clone();
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let direct = match settled {
        Ok(d) => d,
        Err(_) => panic!(
            "B did not answer at a direct address within 60 s: C's peers {:?}, C's metrics:\n{}",
            c.info().await.unwrap().peers,
            c.metrics()
                .await
                .unwrap()
                .lines()
                .filter(|l| l.starts_with("nat_"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    assert!(
        direct.to_string().starts_with("/ip4/127.0.0.1/"),
        "{direct}"
    );
    // The relayed-connection gauge is updated every second.
    let gauge = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let metrics = c.metrics().await.unwrap();
            if metrics.lines().any(|l| l == "nat_relayed_connections 0") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(gauge.is_ok(), "a relayed connection is left open");
    c.shutdown().await;
    b.shutdown().await;
    relay.shutdown().await;
}
