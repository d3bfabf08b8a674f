//! Several nodes in one process over an in-memory network: no processes,
//! no libp2p. Requests go straight to the other node's `on_event`, gossip is
//! delivered to every connected node, and bans are recorded.

#![allow(clippy::unwrap_used)]

use chain_core::block::{Block, ChainParams};
use chain_core::keys::PrivateKey;
use chain_core::test_utils::{easy_params, genesis, outputs_of, spend};
use chain_core::{Amount, BlockHash};
use chain_node::{ChainEvent, Inbound, Minting, Network, Node, NodeConfig, Verdict};
use chain_store::ChainStore;
use p2p_proto::{Announcement, Request, Response};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// How long a request waits for its answer, as the network's timeout.
const STALLED_FOR: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Hub {
    nodes: Mutex<HashMap<u8, Arc<Node<FakeNet>>>>,
    links: Mutex<HashSet<(u8, u8)>>,
    bans: Mutex<Vec<(u8, u8)>>,
    verdicts: Mutex<Vec<(u8, Verdict)>>,
    /// Requests each node sent, by kind.
    asked: Mutex<Vec<(u8, &'static str)>>,
    /// Nodes that never answer a request (it times out after 10 s).
    stalling: Mutex<HashSet<u8>>,
}

impl Hub {
    fn node(&self, id: u8) -> Option<Arc<Node<FakeNet>>> {
        self.nodes.lock().unwrap().get(&id).cloned()
    }
    fn linked(&self, a: u8, b: u8) -> bool {
        self.links.lock().unwrap().contains(&(a.min(b), a.max(b)))
    }
}

#[derive(Clone)]
struct FakeNet {
    me: u8,
    hub: Arc<Hub>,
}

impl Network for FakeNet {
    type Peer = u8;
    type GossipId = ();
    type Reply = oneshot::Sender<Response>;

    async fn request(&self, peer: u8, request: Request) -> Result<Response, String> {
        if !self.hub.linked(self.me, peer) {
            return Err("not connected".into());
        }
        let node = self.hub.node(peer).ok_or("no such node")?;
        let kind = match &request {
            Request::GetBlockTxn { .. } => "getblocktxn",
            Request::GetData { .. } => "getdata",
            _ => "other",
        };
        self.hub.asked.lock().unwrap().push((self.me, kind));
        if self.hub.stalling.lock().unwrap().contains(&peer) {
            tokio::time::sleep(STALLED_FOR).await;
            return Err("timed out".into());
        }
        let (reply, rx) = oneshot::channel();
        node.on_event(Inbound::Request {
            peer: self.me,
            request,
            reply,
        })
        .await;
        tokio::time::timeout(STALLED_FOR, rx)
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())
    }
    async fn respond(&self, reply: Self::Reply, response: Response) {
        let _ = reply.send(response);
    }
    async fn publish(&self, announcement: Announcement) {
        let others: Vec<u8> = self.hub.nodes.lock().unwrap().keys().copied().collect();
        for peer in others {
            if peer != self.me && self.hub.linked(self.me, peer) {
                if let Some(node) = self.hub.node(peer) {
                    node.on_event(Inbound::Announcement {
                        peer: self.me,
                        id: (),
                        announcement: announcement.clone(),
                        size: announcement.encode().len(),
                    })
                    .await;
                }
            }
        }
    }
    async fn validate(&self, _id: (), verdict: Verdict) {
        self.hub.verdicts.lock().unwrap().push((self.me, verdict));
    }
    async fn ban(&self, peer: u8, _period: Duration) {
        self.hub.bans.lock().unwrap().push((self.me, peer));
        self.hub
            .links
            .lock()
            .unwrap()
            .remove(&(self.me.min(peer), self.me.max(peer)));
    }
}

struct Net {
    hub: Arc<Hub>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Net {
    fn new() -> Net {
        Net {
            hub: Arc::new(Hub::default()),
            _dirs: Vec::new(),
        }
    }

    /// Starts node `id` holding `blocks` (none: no chain yet).
    fn start(&mut self, id: u8, blocks: &[Block], genesis_peers: &[u8], minting: Minting) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blocks");
        let store = blocks.first().map(|g| {
            let mut s = ChainStore::create(&path, g).unwrap();
            for b in &blocks[1..] {
                s.accept_block(b, u64::MAX / 4).unwrap();
            }
            s
        });
        let chain = chain_node::chain::spawn::<u8>(store, path, Default::default());
        let (node, mut mined) = Node::new(
            chain,
            FakeNet {
                me: id,
                hub: self.hub.clone(),
            },
            NodeConfig {
                genesis_peers: genesis_peers.iter().copied().collect(),
                expected_genesis: None,
                minting,
                agent: format!("fake-{id}"),
                progress: Arc::new(|_| {}),
                compact_blocks: true,
            },
        );
        let n = node.clone();
        tokio::spawn(async move {
            while let Some(found) = mined.recv().await {
                n.clone().on_mined(found).await;
            }
        });
        self.hub.nodes.lock().unwrap().insert(id, node);
        self._dirs.push(dir);
    }

    async fn connect(&self, a: u8, b: u8) {
        self.hub.links.lock().unwrap().insert((a.min(b), a.max(b)));
        for (x, y) in [(a, b), (b, a)] {
            let node = self.hub.node(x).unwrap();
            node.on_event(Inbound::Connected {
                peer: y,
                address: format!("fake/{y}"),
            })
            .await;
        }
    }

    fn tip(&self, id: u8) -> Option<BlockHash> {
        self.hub
            .node(id)
            .unwrap()
            .chain()
            .view()
            .map(|v| v.tip.hash)
    }

    async fn until(&self, what: &str, f: impl Fn() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out: {what}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn no_minting() -> Minting {
    Minting {
        to: None,
        min_txs: 2,
        threads: 1,
    }
}

fn chain_of(params: &ChainParams, g: &Block, n: usize) -> Vec<Block> {
    chain_core::test_utils::chain_of(params, g, n, chain_core::PubkeyHash([7; 20]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_sync_join_from_nothing_and_mint_over_a_fake_network() {
    let params = easy_params();
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    let g = genesis(&params, pkh);
    let chain = chain_of(&params, &g, 40);
    let tip = chain.last().unwrap().hash();

    let mut net = Net::new();
    net.start(1, &chain, &[], no_minting());
    net.start(
        2,
        &chain[..1],
        &[],
        Minting {
            to: Some(pkh),
            min_txs: 1,
            threads: 1,
        },
    );
    // Node 3 has no chain and may take a genesis only from node 1.
    net.start(3, &[], &[1], no_minting());

    net.connect(1, 2).await;
    net.until("node 2 to sync from node 1", || net.tip(2) == Some(tip))
        .await;

    // Node 2 (which has the chain) dials node 3 first: not a genesis source.
    net.connect(2, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        net.tip(3),
        None,
        "a peer that is not a --dest peer chose the chain"
    );
    net.connect(1, 3).await;
    net.until("node 3 to join from nothing", || net.tip(3) == Some(tip))
        .await;

    // A payment submitted at node 1 reaches node 2, which mints it; the
    // block reaches everyone.
    let pay = spend(
        &key,
        &outputs_of(&g.transactions[0]),
        pkh,
        Amount(3),
        Amount(0),
    );
    let node1 = net.hub.node(1).unwrap();
    let (reply, rx) = oneshot::channel();
    node1
        .clone()
        .on_event(Inbound::Request {
            peer: 9,
            request: Request::SubmitTx(pay),
            reply,
        })
        .await;
    assert!(matches!(rx.await.unwrap(), Response::TxAccepted { .. }));
    net.until("every node at height 41", || {
        (1..=3).all(|id| {
            net.hub
                .node(id)
                .unwrap()
                .chain()
                .view()
                .is_some_and(|v| v.tip.height == 41)
        })
    })
    .await;
    assert!(
        net.hub.bans.lock().unwrap().is_empty(),
        "no honest node banned another"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heavier_branch_is_learnt_as_headers_then_fetched_and_reorganised_to() {
    let params = easy_params();
    let g = genesis(&params, chain_core::PubkeyHash([1; 20]));
    // Node 1: g..a10. Node 2: g..a4 then its own branch b5..b12 (heavier).
    // Node 3: g..a10, like node 1, and connected to both.
    let a = chain_of(&params, &g, 10);
    let mut b = a[..5].to_vec();
    for _ in 0..8 {
        let parent = b.last().unwrap().header;
        b.push(chain_core::test_utils::child_with_extra(
            &params,
            &parent,
            vec![],
            Amount(0),
            chain_core::PubkeyHash([2; 20]),
            61,
        ));
    }
    let mut net = Net::new();
    net.start(1, &a, &[], no_minting());
    net.start(2, &b, &[], no_minting());
    net.start(3, &a, &[], no_minting());
    net.connect(1, 3).await;
    net.connect(1, 2).await;
    net.connect(2, 3).await;
    let heavier = b.last().unwrap().hash();
    net.until("every node on the heavier branch", || {
        (1..=3).all(|id| net.tip(id) == Some(heavier))
    })
    .await;
    // Nobody was punished for serving a side branch.
    let view = net.hub.node(1).unwrap().chain().view().unwrap();
    assert_eq!(view.tip.height, 12);
    assert!(net.hub.bans.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_of_another_protocol_version_is_refused() {
    let params = easy_params();
    let g = genesis(&params, chain_core::PubkeyHash([1; 20]));
    let mut net = Net::new();
    net.start(1, std::slice::from_ref(&g), &[], no_minting());
    net.hub.links.lock().unwrap().insert((1, 9));
    let node = net.hub.node(1).unwrap();
    for (peer, version) in [(8u8, p2p_proto::PROTOCOL_VERSION), (9, 1)] {
        let (reply, _rx) = oneshot::channel();
        let status = p2p_proto::Status {
            protocol_version: version,
            genesis: g.hash(),
            best_height: 0,
            best_hash: g.hash(),
            total_work: [0; 32],
            agent: "old".into(),
        };
        node.clone()
            .on_event(Inbound::Request {
                peer,
                request: Request::Status(status),
                reply,
            })
            .await;
    }
    let hub = net.hub.clone();
    net.until("the version-1 peer to be banned", || {
        hub.bans.lock().unwrap().contains(&(1, 9))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !net.hub.bans.lock().unwrap().contains(&(1, 8)),
        "a peer of the same version and chain is kept"
    );
}

/// A chain whose genesis coin is mature, a block `b` of four chained
/// payments on it, and the payments.
fn chain_and_block_of_payments() -> (Vec<Block>, Block, Vec<chain_core::Transaction>) {
    let params = easy_params();
    let key = PrivateKey::from_bytes(&[5; 32]).unwrap();
    let pkh = key.public_key().pubkey_hash();
    let g = genesis(&params, pkh);
    let chain = chain_of(&params, &g, 40);
    let mut coins = outputs_of(&g.transactions[0]);
    let mut txs = Vec::new();
    for _ in 0..4 {
        let tx = spend(
            &key,
            &coins,
            chain_core::PubkeyHash([3; 20]),
            Amount(1),
            Amount(1),
        );
        coins = outputs_of(&tx)[1..].to_vec();
        txs.push(tx);
    }
    let tip = chain.last().unwrap().header;
    let b = chain_core::test_utils::child(&params, &tip, txs.clone(), Amount(4), pkh);
    (chain, b, txs)
}

/// Node 1 holds `b`; node 2 holds the chain before it and the first two
/// of its payments in its mempool; they are connected.
async fn two_nodes_one_block_apart() -> (Net, Block) {
    nodes_one_block_apart(&[1]).await
}

/// As [`two_nodes_one_block_apart`], with the nodes `holding` (node 1
/// among them) holding `b`; only nodes 1 and 2 are linked.
async fn nodes_one_block_apart(holding: &[u8]) -> (Net, Block) {
    let (chain, b, txs) = chain_and_block_of_payments();
    let mut with_b = chain.clone();
    with_b.push(b.clone());
    let mut net = Net::new();
    for id in holding {
        net.start(*id, &with_b, &[], no_minting());
    }
    net.start(2, &chain, &[], no_minting());
    submit_all(&net, 2, &txs[..2]).await;
    // Linked, without the handshake that would have node 2 sync the
    // block: the announcement is what is tested.
    net.hub.links.lock().unwrap().insert((1, 2));
    (net, b)
}

/// Submits `txs` to node `to`, as a wallet would, each accepted.
async fn submit_all(net: &Net, to: u8, txs: &[chain_core::Transaction]) {
    let node = net.hub.node(to).unwrap();
    for tx in txs {
        let (reply, rx) = oneshot::channel();
        node.clone()
            .on_event(Inbound::Request {
                peer: 9,
                request: Request::SubmitTx(tx.clone()),
                reply,
            })
            .await;
        assert!(matches!(rx.await.unwrap(), Response::TxAccepted { .. }));
    }
}

async fn announce(net: &Net, from: u8, to: u8, cb: p2p_proto::CompactBlock) {
    let a = Announcement::CompactBlock(cb);
    net.hub
        .node(to)
        .unwrap()
        .on_event(Inbound::Announcement {
            peer: from,
            id: (),
            size: a.encode().len(),
            announcement: a,
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_block_is_finished_with_the_transactions_the_mempool_lacked() {
    let (net, b) = two_nodes_one_block_apart().await;
    net.hub.asked.lock().unwrap().clear();
    let cb = p2p_proto::CompactBlock::of(&b, [1; 8]).unwrap();
    announce(&net, 1, 2, cb).await;
    net.until("node 2 to take the block", || net.tip(2) == Some(b.hash()))
        .await;
    let asked = net.hub.asked.lock().unwrap().clone();
    assert!(asked.contains(&(2, "getblocktxn")), "{asked:?}");
    assert!(
        !asked.contains(&(2, "getdata")),
        "no full block needed: {asked:?}"
    );
    assert!(net
        .hub
        .verdicts
        .lock()
        .unwrap()
        .contains(&(2, Verdict::Accept)));
    assert!(net.hub.bans.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gossiped_block_is_reported_in_hand_once_whole_and_a_bad_header_never() {
    // Rebuilt with the transactions asked for, and fetched in full after a
    // short-id collision: both are reported once whole, before the tip.
    for collide in [false, true] {
        let (net, b) = two_nodes_one_block_apart().await;
        let node = net.hub.node(2).unwrap();
        let mut in_hand = node.blocks_in_hand();
        let mut events = node.chain().events();
        let mut cb = p2p_proto::CompactBlock::of(&b, [4; 8]).unwrap();
        if collide {
            cb.short_ids[3] = cb.short_ids[0];
        }
        announce(&net, 1, 2, cb).await;
        net.until("node 2 to take the block", || net.tip(2) == Some(b.hash()))
            .await;
        assert_eq!(
            in_hand.try_recv().ok(),
            Some(b.hash()),
            "collide: {collide}"
        );
        // The tip moved after: its event is still queued for a receiver
        // that subscribed before the block came.
        assert!(matches!(
            events.try_recv(),
            Ok(ChainEvent::Tip { tip, .. }) if tip.hash == b.hash()
        ));
    }
    let (net, b) = two_nodes_one_block_apart().await;
    let mut in_hand = net.hub.node(2).unwrap().blocks_in_hand();
    let mut bad = b.clone();
    bad.header.height += 1;
    chain_core::test_utils::remine(&mut bad);
    announce(
        &net,
        1,
        2,
        p2p_proto::CompactBlock::of(&bad, [3; 8]).unwrap(),
    )
    .await;
    net.until("node 1 banned", || {
        net.hub.bans.lock().unwrap().contains(&(2, 1))
    })
    .await;
    assert!(
        in_hand.try_recv().is_err(),
        "a block whose header fails is never in hand"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_block_with_repeated_short_ids_is_fetched_in_full() {
    let (net, b) = two_nodes_one_block_apart().await;
    net.hub.asked.lock().unwrap().clear();
    let mut cb = p2p_proto::CompactBlock::of(&b, [2; 8]).unwrap();
    cb.short_ids[3] = cb.short_ids[0];
    announce(&net, 1, 2, cb).await;
    net.until("node 2 to take the block", || net.tip(2) == Some(b.hash()))
        .await;
    let asked = net.hub.asked.lock().unwrap().clone();
    assert!(asked.contains(&(2, "getdata")), "{asked:?}");
    assert!(
        net.hub.bans.lock().unwrap().is_empty(),
        "an honest collision is no offence"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_block_whose_header_fails_its_context_is_rejected_and_its_sender_banned() {
    let (net, b) = two_nodes_one_block_apart().await;
    let mut bad = b.clone();
    bad.header.height += 1;
    chain_core::test_utils::remine(&mut bad);
    let cb = p2p_proto::CompactBlock::of(&bad, [3; 8]).unwrap();
    announce(&net, 1, 2, cb).await;
    net.until("node 1 banned", || {
        net.hub.bans.lock().unwrap().contains(&(2, 1))
    })
    .await;
    assert!(net
        .hub
        .verdicts
        .lock()
        .unwrap()
        .contains(&(2, Verdict::Reject)));
    assert!(
        !net.hub.asked.lock().unwrap().contains(&(2, "getblocktxn")),
        "nothing asked for a block whose header fails"
    );
    assert_ne!(net.tip(2), Some(b.hash()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_block_with_a_bad_body_is_forwarded_dropped_and_its_relayer_not_banned() {
    let (chain, _, txs) = chain_and_block_of_payments();
    // The same payments, but a coinbase that claims more fees than they pay.
    let params = easy_params();
    let tip = chain.last().unwrap().header;
    let greedy = chain_core::test_utils::child(
        &params,
        &tip,
        txs.clone(),
        Amount(1_000),
        chain_core::PubkeyHash([8; 20]),
    );
    let mut net = Net::new();
    net.start(2, &chain, &[], no_minting());
    submit_all(&net, 2, &txs).await;
    let before = net.tip(2);
    announce(
        &net,
        1,
        2,
        p2p_proto::CompactBlock::of(&greedy, [4; 8]).unwrap(),
    )
    .await;
    // Forwarded as soon as rebuilt (every payment was in the pool)...
    net.until("node 2 to forward it", || {
        net.hub
            .verdicts
            .lock()
            .unwrap()
            .contains(&(2, Verdict::Accept))
    })
    .await;
    // ...then refused when connected, without a ban of the relayer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(net.tip(2), before, "the block was refused");
    assert!(
        net.hub.bans.lock().unwrap().is_empty(),
        "the relayer may have forwarded it unchecked"
    );
    assert!(
        net.hub.asked.lock().unwrap().is_empty(),
        "nothing was missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compact_block_whose_relayer_stalls_is_taken_in_full_from_another_peer() {
    // Node 1 relays the block and then answers nothing; node 3 has it.
    let (net, b) = nodes_one_block_apart(&[1, 3]).await;
    net.hub.stalling.lock().unwrap().insert(1);
    let mut in_hand = net.hub.node(2).unwrap().blocks_in_hand();
    let start = Instant::now();
    announce(&net, 1, 2, p2p_proto::CompactBlock::of(&b, [6; 8]).unwrap()).await;
    net.connect(2, 3).await;
    // The announcement is finished, not dropped: the block is in hand
    // through it (a sync from node 3 would not report it), well before
    // the staller's request would time out.
    let got = tokio::time::timeout(STALLED_FOR * 2, in_hand.recv())
        .await
        .expect("the gossiped block in hand");
    assert_eq!(got.unwrap(), b.hash());
    assert!(
        start.elapsed() < STALLED_FOR,
        "waited {:?} for the staller",
        start.elapsed()
    );
    net.until("node 2 to take the block", || net.tip(2) == Some(b.hash()))
        .await;
    let asked = net.hub.asked.lock().unwrap().clone();
    assert!(asked.contains(&(2, "getblocktxn")), "{asked:?}");
    assert!(asked.contains(&(2, "getdata")), "{asked:?}");
    assert!(
        !net.hub.bans.lock().unwrap().contains(&(2, 1)),
        "a slow peer is not banned"
    );
}
