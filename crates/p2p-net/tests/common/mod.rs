//! What the p2p-net integration tests share.

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
    }
}
