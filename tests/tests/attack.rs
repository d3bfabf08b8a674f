//! A misbehaving peer over the network: every invalid block arrives by
//! gossip from a peer the test plays; the node refuses it with the reason,
//! bans the sender (unless the fault is only timing), keeps its chain and
//! UTXO set as they were, and keeps serving honest peers.

#![allow(clippy::unwrap_used)]

use chain_core::test_utils::cases::BLOCK_CASES;
use chain_core::PrivateKey;
use chain_store::ChainStore;
use e2e_tests::{eventually, free_id, Env, TestPeer};
use p2p_proto::Announcement;
use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(20);

/// The reason the node logged for refusing `hash`, once it has.
fn refusal(log: &dyn Fn() -> String, hash_short: &str) -> String {
    eventually(WAIT, &format!("the node to refuse {hash_short}"), || {
        log().lines().find_map(|l| {
            (l.contains("rejected block") && l.contains(hash_short)).then(|| {
                let r = l.split("rejected block: ").nth(1).unwrap_or(l);
                // Leave out the log line's trailing fields.
                r.split(" hash=").next().unwrap_or(r).to_string()
            })
        })
    })
}

#[test]
fn every_invalid_block_from_a_peer_is_refused_and_the_peer_banned() {
    let env = Env::new();
    let a = free_id();
    let w1 = env.wallet(&a, "w1");
    env.json("node", &a, &["createblockchain", "-address", "w1"]);
    env.json(
        "wallet-cli",
        &a,
        &["send", "-from", "w1", "-to", &w1, "-amount", "5", "-mint"],
    );
    let wif = env.json("wallet-cli", &a, &["exportkey", "-address", "w1"])["wif"]
        .as_str()
        .unwrap()
        .to_string();
    let node = env.start_node(&a, &[]);
    let before = env.json("node", &a, &["checkdb"]);
    assert_eq!(before["ok"], true);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let base = {
        let store = ChainStore::open_read_only(&env.path().join(format!("blocks_{a}"))).unwrap();
        chain_store::test_utils::case_base(&store, PrivateKey::from_wif(&wif).unwrap(), now)
            .unwrap()
    };
    let log = || node.proc.log_text();
    let mut sent = HashSet::new();
    let mut table = Vec::new();
    let mut honest = None;
    for (name, make) in BLOCK_CASES {
        let c = make(&base);
        for b in &c.before {
            if sent.insert(b.hash()) {
                let p = TestPeer::connect(&node.addr);
                p.publish(Announcement::Block(b.into())).unwrap();
                refusal(&log, &b.hash().short());
            }
        }
        let peer = TestPeer::connect(&node.addr);
        peer.publish(Announcement::Block((&c.block).into()))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        sent.insert(c.block.hash());
        let reason = refusal(&log, &c.block.hash().short());
        if c.timing_only {
            std::thread::sleep(Duration::from_secs(1));
            assert!(peer.connected(), "{name}: a timing fault is not punished");
        } else {
            let id = peer.id();
            eventually(WAIT, &format!("{name}: the sender to be banned"), || {
                log()
                    .lines()
                    .any(|l| l.contains("peer banned") && l.contains(&id))
                    .then_some(())
            });
            eventually(WAIT, &format!("{name}: the sender to be cut off"), || {
                (!peer.connected()).then_some(())
            });
        }
        table.push((*name, reason));
        if c.honest_after.is_some() {
            honest = c.honest_after;
        }
    }
    println!("case | refusal logged by the node");
    for (name, reason) in &table {
        println!("{name} | {reason}");
    }
    assert_eq!(table.len(), BLOCK_CASES.len());
    let after = env.json("node", &a, &["checkdb"]);
    assert_eq!(after["ok"], true);
    assert_eq!(after["tip"], before["tip"], "the tip did not move");
    assert_eq!(
        after["utxo_digest"], before["utxo_digest"],
        "the UTXO set is unchanged"
    );

    // The honest block behind the CVE-2012-2459 mutation is still accepted.
    let honest = honest.expect("the duplicate-transactions case has an honest twin");
    let p = TestPeer::connect(&node.addr);
    p.publish(Announcement::Block((&honest).into())).unwrap();
    eventually(WAIT, "the honest block to be connected", || {
        env.tip(&a)
            .filter(|t| t.1 == honest.hash().to_string())
            .map(|_| ())
    });

    // And an honest node still syncs the whole chain from it.
    let b = free_id();
    let _node_b = env.start_node(&b, &["-dest", &node.addr]);
    eventually(WAIT, "the honest node to sync", || {
        (env.tip(&b) == env.tip(&a)).then_some(())
    });
}

/// Blocks that fail proof of work, each different: the tip block with its nonce changed.
fn bad_pow_blocks(env: &Env, id: &str) -> impl Iterator<Item = chain_core::Block> {
    let store = ChainStore::open_read_only(&env.path().join(format!("blocks_{id}"))).unwrap();
    let tip = store.block(&store.tip().hash).unwrap().unwrap();
    let target = tip.header.bits.to_target().unwrap();
    (1u64..).filter_map(move |n| {
        let mut b = tip.clone();
        b.header.nonce = b.header.nonce.wrapping_add(n);
        (!target.is_met_by(&b.header.hash())).then_some(b)
    })
}

#[test]
fn junk_rate_abuse_and_a_flood_do_not_stop_honest_sync() {
    use e2e_tests::{garbage_frame, oversized_frame, send_junk};
    let env = Env::new();
    let a = free_id();
    let w1 = env.wallet(&a, "w1");
    env.json("node", &a, &["createblockchain", "-address", "w1"]);
    for _ in 0..5 {
        env.json(
            "wallet-cli",
            &a,
            &["send", "-from", "w1", "-to", &w1, "-amount", "1", "-mint"],
        );
    }
    let node = env.start_node(&a, &[]);

    // Garbage and an oversized frame: the stream is reset and the peer banned.
    assert!(send_junk(&node.addr, garbage_frame(1)).is_err());
    assert!(send_junk(&node.addr, oversized_frame()).is_err());
    eventually(WAIT, "both junk senders to be banned", || {
        let log = node.proc.log_text();
        let n = log
            .lines()
            .filter(|l| l.contains("undecodable request") && l.contains("banning the peer"))
            .count();
        (n >= 2).then_some(())
    });

    // Requests beyond the rate limit are answered with an error, not served.
    let p = TestPeer::connect(&node.addr);
    eventually(WAIT, "the test peer to connect", || {
        p.connected().then_some(())
    });
    let limited = p.rate_limited_count(300);
    assert!(limited > 0, "300 requests at once must hit the rate limit");

    // A flood of junk and invalid blocks while an honest node syncs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        let addr = node.addr.clone();
        let mut bad = bad_pow_blocks(&env, &a);
        std::thread::spawn(move || {
            let mut sent = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = send_junk(&addr, garbage_frame(sent as u8));
                let peer = TestPeer::connect(&addr);
                let _ = peer.publish(Announcement::Block((&bad.next().unwrap()).into()));
                sent += 1;
            }
            sent
        })
    };
    let b = free_id();
    let _node_b = env.start_node(&b, &["-dest", &node.addr]);
    eventually(
        Duration::from_secs(60),
        "the honest node to sync during the flood",
        || (env.tip(&b).is_some() && env.tip(&b) == env.tip(&a)).then_some(()),
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = flood.join().unwrap();
    assert!(rounds > 0);
    let mut node = node;
    assert!(
        node.proc.child.try_wait().unwrap().is_none(),
        "the node kept running"
    );
    assert_eq!(env.json("node", &a, &["checkdb"])["ok"], true);
}
