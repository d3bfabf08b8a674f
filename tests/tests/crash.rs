//! Crashes lose nothing: a node is killed with SIGKILL at random moments
//! while it syncs, reorganises and mints, and restarted each time. After
//! every kill and every restart the stored UTXO set equals the one rebuilt
//! from the blocks, the tip is a fully stored block, and every block the node
//! logged as connected is still on its chain. After a kill during a
//! reorganisation, the node restarted with no peers opens on the most-work
//! branch it holds.
//!
//! `CRASH_CYCLES` sets the number of kill cycles (default 21, a multiple of
//! the three scenarios).

#![allow(clippy::unwrap_used)]

use chain_core::block::{Block, ChainParams};
use chain_core::keys::PrivateKey;
use chain_core::test_utils::{child_with_extra, genesis};
use chain_core::Amount;
use chain_store::ChainStore;
use e2e_tests::{eventually, free_id, Env, Node};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A small xorshift generator; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn branch(p: &ChainParams, from: &Block, n: usize, step: u64, key: &PrivateKey) -> Vec<Block> {
    let pkh = key.public_key().pubkey_hash();
    let mut out: Vec<Block> = Vec::with_capacity(n);
    for _ in 0..n {
        let parent = out.last().map_or(from.header, |b| b.header);
        out.push(child_with_extra(
            p,
            &parent,
            vec![],
            Amount::ZERO,
            pkh,
            step,
        ));
    }
    out
}

fn store_with(dir: &Path, g: &Block, blocks: &[Block]) {
    let mut s = ChainStore::create(dir, g).unwrap();
    for b in blocks {
        s.accept_block(b, u64::MAX / 4).unwrap();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

/// The tip a store holding part of the source's chain (`source`, hashes
/// from height 1 up) and all of `light` must have: the highest source block
/// stored with all its ancestors if that branch has more work (every block
/// has the same work), else light's tip.
fn most_work_stored(dir: &Path, source: &[String], light: &[Block]) -> String {
    let store = ChainStore::open_read_only(dir).unwrap();
    let stored = source
        .iter()
        .take_while(|h| {
            let hash = h.parse().unwrap();
            store.header_entry(&hash).unwrap().is_some()
        })
        .count();
    if stored > light.len() {
        source[stored - 1].clone()
    } else {
        // Equal work keeps what the node had: light, copied in first.
        light.last().unwrap().hash().to_string()
    }
}

/// Checks the store of node `id` against what its log says was connected.
fn check_after_crash(env: &Env, id: &str, logs: &[String], what: &str) -> u64 {
    if !ChainStore::exists(&env.path().join(format!("blocks_{id}"))) {
        // Killed before the genesis was taken: nothing was stored, so
        // nothing can be lost, unless the node said it had created the chain.
        assert!(
            !logs
                .iter()
                .any(|l| l.contains("created the chain from the peer's genesis")),
            "{what}: the node created its chain, and it is gone"
        );
        return 0;
    }
    let v = env.json("node", id, &["checkdb"]);
    assert_eq!(v["ok"], true, "{what}: checkdb found problems: {v}");
    let store = ChainStore::open_read_only(&env.path().join(format!("blocks_{id}"))).unwrap();
    let tip = store.tip();
    assert!(
        store.block(&tip.hash).unwrap().is_some(),
        "{what}: the tip's block is stored"
    );
    for log in logs {
        for line in log
            .lines()
            .filter(|l| l.contains("connected block") && !l.contains("disconnected"))
        {
            let field = |k: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .unwrap()
                    .to_string()
            };
            let height: u32 = field("height=").parse().unwrap();
            let short = field("hash=");
            let on_chain = store.hash_at(height).unwrap().map(|h| h.short());
            assert_eq!(
                on_chain.as_deref(),
                Some(short.as_str()),
                "{what}: block {short} at height {height} was reported connected but is missing"
            );
        }
    }
    u64::from(tip.height)
}

#[test]
fn sigkill_during_sync_reorg_and_minting_loses_nothing() {
    let cycles: usize = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(21);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64 // the low bits vary run to run; truncation is intended
        | 1;
    println!("crash test seed {seed}, {cycles} cycles");
    let mut rng = Rng(seed);

    let env = Env::new();
    let p = ChainParams::default();
    let key = PrivateKey::generate();
    let g = genesis(&p, key.public_key().pubkey_hash());
    // The heavy branch the source node serves, and a light one for reorgs.
    let heavy = branch(&p, &g, 400, 60, &key);
    let light = branch(&p, &g, 40, 61, &key);
    let protos = tempfile::tempdir().unwrap();
    store_with(&protos.path().join("heavy"), &g, &heavy);
    store_with(&protos.path().join("light"), &g, &light);

    let a = free_id();
    copy_dir(
        &protos.path().join("heavy"),
        &env.path().join(format!("blocks_{a}")),
    );
    let source = env.start_node(&a, &[]);

    let v = free_id();
    let wif = key.to_wif();
    let addr = key.public_key().address().to_string();
    env.json(
        "wallet-cli",
        &v,
        &["importkey", "-wif", &wif, "-alias", "k"],
    );
    let chain_dir = env.path().join(format!("blocks_{v}"));
    let mut outcomes = Vec::new();
    for i in 0..cycles {
        let scenario = ["sync", "reorg", "minting"][i % 3];
        match scenario {
            "sync" => {
                let _ = std::fs::remove_dir_all(&chain_dir);
            }
            "reorg" => copy_dir(&protos.path().join("light"), &chain_dir),
            // Minting goes on from the chain the previous cycle left.
            _ => {}
        }
        let args: Vec<&str> = match scenario {
            "minting" => vec!["-minter", "k", "--min-txs", "1", "--threads", "1"],
            _ => vec!["-dest", &source.addr],
        };
        let mut node: Node = env.start_node(&v, &args);
        let sender = (scenario == "minting").then(|| {
            let (env_path, v, addr, peer) = (
                env.path().to_path_buf(),
                v.clone(),
                addr.clone(),
                node.addr.clone(),
            );
            std::thread::spawn(move || {
                for _ in 0..30 {
                    let st = std::process::Command::new(e2e_tests::bin("wallet-cli"))
                        .env("NODE_ID", &v)
                        .args([
                            "send", "-from", &addr, "-to", &addr, "-amount", "1", "-peer", &peer,
                        ])
                        .arg("--data-dir")
                        .arg(&env_path)
                        .output();
                    if !st.is_ok_and(|o| o.status.success()) {
                        break;
                    }
                }
            })
        });
        // Sync and reorganisation take a few hundred milliseconds here.
        let delay = match scenario {
            "minting" => 100 + rng.below(1_500),
            _ => 20 + rng.below(400),
        };
        std::thread::sleep(Duration::from_millis(delay));
        node.proc.child.kill().unwrap();
        node.proc.child.wait().unwrap();
        if let Some(s) = sender {
            s.join().unwrap();
        }
        let mut logs = vec![node.proc.log_text()];
        let at_kill = check_after_crash(
            &env,
            &v,
            &logs,
            &format!("cycle {i} ({scenario}) after the kill"),
        );
        if scenario == "reorg" {
            // Alone, with no peer to bring a new block, the restarted node
            // must still be on the most-work valid branch it holds.
            // The source's best chain, from height 1 (minting cycles extend it).
            let mut source_chain: Vec<String> = env
                .blocks(&a)
                .iter()
                .map(|b| b["hash"].as_str().unwrap().to_string())
                .collect();
            source_chain.reverse();
            source_chain.remove(0);
            let expected = most_work_stored(&chain_dir, &source_chain, &light);
            // Known peers would be redialled: forget them for this start.
            let _ = std::fs::remove_file(env.path().join(format!("p2p_{v}/peers.json")));
            let mut alone = env.start_node(&v, &[]);
            // The tip as the store opened, before any peer (the source may
            // dial in) can bring a block: the "chain loaded" line.
            let loaded = alone
                .proc
                .wait_for_log("chain loaded", Duration::from_secs(20));
            let tip = loaded
                .lines()
                .find(|l| l.contains("chain loaded"))
                .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("tip=")))
                .unwrap()
                .to_string();
            assert!(alone.proc.terminate(Duration::from_secs(20)));
            logs.push(alone.proc.log_text());
            assert!(
                expected.starts_with(&tip),
                "cycle {i}: after a kill during a reorganisation, the tip is the most-work branch: {tip} is not {expected}"
            );
        }
        // Restart; a synced node must reach the source's tip.
        let mut again = env.start_node(&v, &["-dest", &source.addr]);
        if scenario != "minting" {
            eventually(
                Duration::from_secs(60),
                "the restarted node to finish syncing",
                || (env.tip(&v) == env.tip(&a)).then_some(()),
            );
        }
        assert!(
            again.proc.terminate(Duration::from_secs(20)),
            "clean shutdown"
        );
        logs.push(again.proc.log_text());
        let after = check_after_crash(
            &env,
            &v,
            &logs,
            &format!("cycle {i} ({scenario}) after the restart"),
        );
        println!("cycle {i}: {scenario}, killed after {delay} ms at height {at_kill}, restarted to {after}");
        outcomes.push((scenario, at_kill, after));
    }
    assert_eq!(outcomes.len(), cycles);
    // The kills landed at different points of the work.
    let distinct: std::collections::HashSet<u64> = outcomes.iter().map(|o| o.1).collect();
    assert!(cycles < 6 || distinct.len() > 1, "{outcomes:?}");
}

#[test]
fn killing_createwallet_and_importkey_never_leaves_an_unreadable_wallet() {
    let env = Env::new();
    let id = free_id();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    println!("wallet kill seed {seed}");
    let mut rng = Rng(u64::from(seed) | 1);
    let count = |env: &Env| -> usize {
        env.json("wallet-cli", &id, &["listaddresses"])["addresses"]
            .as_array()
            .map_or(0, Vec::len)
    };
    env.wallet(&id, "first");
    let mut known = count(&env);
    let mut finished = 0;
    for i in 0..40 {
        let args: Vec<String> = if i % 2 == 0 {
            vec!["createwallet".into(), "--alias".into(), format!("c{i}")]
        } else {
            let wif = PrivateKey::generate().to_wif();
            vec![
                "importkey".into(),
                "-wif".into(),
                wif,
                "-alias".into(),
                format!("i{i}"),
            ]
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = env
            .cmd("wallet-cli", &id, &args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(12)));
        let _ = child.kill();
        if child.wait().unwrap().success() {
            finished += 1;
        }
        // The file is readable after every kill, and no key is ever lost.
        let now = count(&env);
        assert!(now >= known, "a kill lost keys: {known} -> {now}");
        assert!(now <= known + 1);
        known = now;
    }
    println!("{finished} of 40 wallet writes finished before the kill");
    let meta = std::fs::metadata(env.path().join(format!("wallets_{id}.json"))).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}
