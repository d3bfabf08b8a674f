//! A node's Kademlia answers lookups but stores no one's records or
//! provider entries: it never uses them, and stored they would be memory
//! any stranger could fill.

mod common;

use common::serving_host;
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{kad, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use std::time::Duration;

type Kad = kad::Behaviour<kad::store::MemoryStore>;

fn kad_client() -> Swarm<Kad> {
    libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("a TCP transport")
        .with_behaviour(|key| {
            let id = key.public().to_peer_id();
            let cfg = kad::Config::new(StreamProtocol::new("/chain/kad/1"));
            kad::Behaviour::with_config(id, kad::store::MemoryStore::new(id), cfg)
        })
        .expect("a Kademlia behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(30)))
        .build()
}

/// Drives `swarm` until the query `id` finishes; the result of every step
/// (a lookup reports what it found at one step and finishes at a later one).
async fn finish(swarm: &mut Swarm<Kad>, id: kad::QueryId) -> Vec<kad::QueryResult> {
    let mut results = Vec::new();
    let run = async {
        loop {
            if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
                id: q,
                result,
                step,
                ..
            }) = swarm.select_next_some().await
            {
                if q == id {
                    results.push(result);
                    if step.last {
                        return std::mem::take(&mut results);
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the query finishes within 20 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_providers_put_to_a_node_are_not_stored() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (node, addr) = serving_host(&dir, vec![], 64).await;
    let node_id: PeerId = node.local_peer_id();
    let (_, base): (PeerId, Multiaddr) =
        p2p_net::split_peer(&addr).expect("the address ends in /p2p");

    let mut put = kad_client();
    put.behaviour_mut().add_address(&node_id, base.clone());
    let key = kad::RecordKey::new(&b"a stranger's record");
    let record = kad::Record::new(key.clone(), vec![7; 1024]);
    let q = put
        .behaviour_mut()
        .put_record_to(record, std::iter::once(node_id), kad::Quorum::One);
    let put_result = finish(&mut put, q).await.pop().expect("a put result");
    let q = put
        .behaviour_mut()
        .start_providing(key.clone())
        .expect("the local store takes a provider");
    let provide_result = finish(&mut put, q).await.pop().expect("a provide result");
    assert!(
        matches!(put_result, kad::QueryResult::PutRecord(Ok(_))),
        "the node took the record: {put_result:?}"
    );
    assert!(
        matches!(provide_result, kad::QueryResult::StartProviding(Ok(_))),
        "the node was told of the provider: {provide_result:?}"
    );

    // A second client, whose own store is empty, asks the node for both.
    let mut get = kad_client();
    get.behaviour_mut().add_address(&node_id, base);
    let q = get.behaviour_mut().get_record(key.clone());
    for result in finish(&mut get, q).await {
        match result {
            kad::QueryResult::GetRecord(Ok(kad::GetRecordOk::FoundRecord(r))) => {
                panic!(
                    "the node stored a stranger's record under {:?}",
                    r.record.key
                )
            }
            kad::QueryResult::GetRecord(_) => {}
            other => panic!("unexpected result {other:?}"),
        }
    }
    let q = get.behaviour_mut().get_providers(key);
    for result in finish(&mut get, q).await {
        match result {
            kad::QueryResult::GetProviders(Ok(kad::GetProvidersOk::FoundProviders {
                providers,
                ..
            })) if !providers.is_empty() => {
                panic!("the node stored a stranger's provider entry: {providers:?}")
            }
            kad::QueryResult::GetProviders(_) => {}
            other => panic!("unexpected result {other:?}"),
        }
    }
    node.shutdown().await;
}
