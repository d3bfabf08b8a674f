//! The HTTP API against a running two-node network: every endpoint with
//! good input and with bad, the event stream, and `/metrics` through
//! `promtool check metrics`.

#![allow(clippy::unwrap_used)]

use chain_core::keys::PrivateKey;
use chain_core::test_utils::{easy_params, genesis, spend};
use chain_core::{Amount, Block, OutPoint, Transaction, TxOut};
use e2e_tests::http::{get, get_bytes, json, post};
use e2e_tests::{eventually, free_id, Env};
use std::io::BufRead;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

/// The coin `tx` pays at `vout`.
fn coin(tx: &Transaction, vout: u32) -> Vec<(OutPoint, TxOut)> {
    vec![(
        OutPoint {
            txid: tx.txid(),
            vout,
        },
        tx.outputs[vout as usize],
    )]
}

/// Error answers are JSON that name what was wrong.
fn error(url: &str, status: u16, needle: &str) {
    let v = json(url, status);
    let e = v["error"].as_str().unwrap_or_default();
    assert!(e.contains(needle), "GET {url}: {e}");
}

#[test]
fn every_endpoint_answers_good_input_and_refuses_bad() {
    let env = Env::new();
    let (a, b) = (free_id(), free_id());
    let key = PrivateKey::generate();
    let g: Block = genesis(&easy_params(), key.public_key().pubkey_hash());
    env.store_chain(&a, std::slice::from_ref(&g));
    env.store_chain(&b, std::slice::from_ref(&g));
    let w1 = env.wallet(&a, "w1");
    let w2 = env.wallet(&b, "w2");
    let node_a = env.start_node(&a, &["-minter", "w1"]);
    let _node_b = env.start_node(&b, &["-dest", &node_a.addr]);
    let api = format!("{}/api", node_a.http.clone().expect("node A serves HTTP"));

    // Status and the tip.
    let s = json(&format!("{api}/status"), 200);
    assert_eq!(s["tip"]["height"], 0);
    assert_eq!(s["tip"]["hash"], g.hash().to_string());
    assert_eq!(s["genesis"], g.hash().to_string());
    assert!(s["peer_id"].as_str().unwrap().starts_with("12D3KooW"));
    assert_eq!(s["sync"]["state"], "synced");
    assert_eq!(get(&format!("{api}/blocks/tip/height")), (200, "0".into()));
    assert_eq!(
        get(&format!("{api}/blocks/tip/hash")),
        (200, g.hash().to_string())
    );
    eventually(WAIT, "node A to count node B as a peer", || {
        (json(&format!("{api}/status"), 200)["peer_count"] == 1).then_some(())
    });

    // Blocks.
    let list = json(&format!("{api}/blocks"), 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], g.hash().to_string());
    error(&format!("{api}/blocks?limit=101"), 400, "limit");
    error(&format!("{api}/blocks?limit=0"), 400, "limit");
    error(&format!("{api}/blocks?start_height=x"), 400, "height");
    let blk = json(&format!("{api}/block/{}", g.hash()), 200);
    assert_eq!(blk["height"], 0);
    assert_eq!(blk["confirmations"], 1);
    assert_eq!(blk["txids"][0], g.transactions[0].txid().to_string());
    error(&format!("{api}/block/zz"), 400, "not a block hash");
    error(&format!("{api}/block/{}", "0".repeat(64)), 404, "not known");
    let (st, raw) = get_bytes(&format!("{api}/block/{}/raw", g.hash()));
    assert_eq!(st, 200);
    assert_eq!(Block::decode(&raw).unwrap(), g);
    assert_eq!(
        get(&format!("{api}/block-height/0")),
        (200, g.hash().to_string())
    );
    error(&format!("{api}/block-height/-1"), 400, "not a block height");
    error(
        &format!("{api}/block-height/9"),
        404,
        "no block at height 9",
    );

    // Transactions: the genesis coinbase, then payments posted raw.
    let cb = g.transactions[0].txid();
    let t = json(&format!("{api}/tx/{cb}"), 200);
    assert_eq!(t["coinbase"], true);
    assert_eq!(t["status"]["confirmed"], true);
    assert_eq!(t["status"]["block_height"], 0);
    let (st, raw) = get_bytes(&format!("{api}/tx/{cb}/raw"));
    assert_eq!(st, 200);
    assert_eq!(Transaction::decode(&raw).unwrap().txid(), cb);
    error(&format!("{api}/tx/{}", "ab".repeat(32)), 404, "neither");
    error(&format!("{api}/tx/xyz"), 400, "not a txid");

    let (st, body) = post(&format!("{api}/tx"), "zz");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("not hex"), "{body}");
    let (st, body) = post(&format!("{api}/tx"), "00ff");
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("not a transaction"), "{body}");
    let (st, body) = post(&format!("{api}/tx"), &"0".repeat(300_000));
    assert_eq!(st, 413, "{body}");

    // A payment the mempool refuses: it spends a coin that does not exist.
    let mut bad = spend(
        &key,
        &coin(&g.transactions[0], 0),
        key.public_key().pubkey_hash(),
        Amount(1),
        Amount(1),
    );
    bad.inputs[0].prevout.vout = 7;
    let (st, body) = post(&format!("{api}/tx"), &hex::encode(bad.encode()));
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("mempool refused"), "{body}");

    // The event stream, opened before the payments.
    let events_url = format!("{api}/events");
    let (events_tx, events) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
        let mut r = agent.get(&events_url).call().unwrap();
        let reader = std::io::BufReader::new(r.body_mut().as_reader());
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if events_tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));

    // Two payments to w2; the second spends the first's change. With two
    // in its mempool, node A mints.
    let w2_pkh = chain_core::Address::parse(&w2).unwrap().pubkey_hash();
    let me = key.public_key().pubkey_hash();
    let p1 = spend(
        &key,
        &coin(&g.transactions[0], 0),
        w2_pkh,
        Amount(5),
        Amount(1),
    );
    let (st, body) = post(&format!("{api}/tx"), &hex::encode(p1.encode()));
    assert_eq!((st, body.as_str()), (200, p1.txid().to_string().as_str()));
    let t = json(&format!("{api}/tx/{}", p1.txid()), 200);
    assert_eq!(t["status"]["in_mempool"], true);
    assert_eq!(t["fee"], 1);
    let m = json(&format!("{api}/mempool"), 200);
    assert_eq!(m["count"], 1);
    assert!(m["bytes"].as_u64().unwrap() > 0);
    assert_eq!(m["fee_histogram"][0]["count"], 1);
    assert_eq!(
        json(&format!("{api}/mempool/txids"), 200),
        serde_json::json!([p1.txid().to_string()])
    );
    // Paged: after the last txid, an empty page; after an unknown one, 404.
    assert_eq!(
        json(
            &format!("{api}/mempool/txids?limit=1&after_txid={}", p1.txid()),
            200
        ),
        serde_json::json!([])
    );
    error(
        &format!("{api}/mempool/txids?after_txid={}", "0".repeat(64)),
        404,
        "no longer in the mempool",
    );
    error(&format!("{api}/mempool/txids?limit=0"), 400, "limit");
    error(&format!("{api}/mempool/txids?limit=10001"), 400, "limit");
    let ad = json(&format!("{api}/address/{w2}"), 200);
    assert_eq!(ad["confirmed_balance"], 0);
    assert_eq!(ad["unconfirmed_balance"], 5);
    assert_eq!(ad["mempool_tx_count"], 1);
    let change = p1.outputs.iter().position(|o| o.pubkey_hash == me).unwrap() as u32;
    let p2 = spend(&key, &coin(&p1, change), w2_pkh, Amount(2), Amount(1));
    let (st, body) = post(&format!("{api}/tx"), &hex::encode(p2.encode()));
    assert_eq!(st, 200, "{body}");

    // The block: announced on the stream, then everything is confirmed.
    let mut seen = Vec::new();
    let tip_line = eventually(WAIT, "a tip event for height 1", || {
        while let Ok(l) = events.recv_timeout(Duration::from_millis(100)) {
            seen.push(l);
        }
        seen.iter()
            .position(|l| l == "event: tip")
            .and_then(|i| seen.get(i + 1))
            .filter(|d| d.contains("\"height\":1"))
            .cloned()
    });
    assert!(tip_line.contains("\"reorg_depth\":0"), "{tip_line}");
    assert!(seen.iter().any(|l| l == "event: tx"), "{seen:?}");
    let t = json(&format!("{api}/tx/{}", p2.txid()), 200);
    assert_eq!(t["status"]["confirmed"], true);
    assert_eq!(t["status"]["block_height"], 1);
    assert_eq!(t["inputs"][0]["value"], p1.outputs[change as usize].value.0);
    let ad = json(&format!("{api}/address/{w2}"), 200);
    assert_eq!(ad["confirmed_balance"], 7);
    assert_eq!(ad["tx_count"], 2);
    assert_eq!(ad["utxo_count"], 2);
    let txs = json(&format!("{api}/address/{w2}/txs"), 200);
    let ids: Vec<&str> = txs
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["txid"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&p1.txid().to_string().as_str()));
    let page2 = json(
        &format!("{api}/address/{w2}/txs?after_txid={}", ids[1]),
        200,
    );
    assert_eq!(page2, serde_json::json!([]));
    error(
        &format!("{api}/address/{w2}/txs?after_txid=00"),
        400,
        "txid",
    );
    let utxo = json(&format!("{api}/address/{w2}/utxo"), 200);
    assert_eq!(utxo.as_array().unwrap().len(), 2);
    assert_eq!(utxo[0]["status"]["confirmed"], true);
    error(
        &format!("{api}/address/notanaddress"),
        400,
        "not an address",
    );
    error(&format!("{api}/address/{w1}x/utxo"), 400, "not an address");
    let list = json(&format!("{api}/blocks?start_height=1&limit=2"), 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[0]["height"], 1);
    assert_eq!(list[1]["height"], 0);

    // Peers, with the height node B reported.
    let peers = eventually(WAIT, "node B's reported height", || {
        let p = json(&format!("{api}/peers"), 200);
        (p["peers"][0]["height"] == 1).then_some(p)
    });
    assert_eq!(peers["peers"][0]["id"], _node_b.peer_id());
    assert!(["inbound", "outbound"].contains(&peers["peers"][0]["direction"].as_str().unwrap()));
    assert_eq!(peers["bans"], serde_json::json!([]));

    // Unknown paths.
    error(&format!("{api}/nothing"), 404, "no such endpoint");

    // A client that never finishes its request's headers is cut off.
    let host = node_a
        .http
        .clone()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let mut slow = std::net::TcpStream::connect(&host).unwrap();
    use std::io::{Read, Write};
    slow.write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "a stalled request held its connection for {:?}",
        started.elapsed()
    );
    assert!(
        !String::from_utf8_lossy(&buf).contains("\"tip\""),
        "it was answered"
    );

    // Metrics: libp2p's, the chain's and the server's, in a form promtool accepts.
    let base = node_a.http.clone().unwrap();
    let (st, text) = get(&format!("{base}/metrics"));
    assert_eq!(st, 200);
    for name in [
        "chain_blocks_connected_total 1",
        "chain_tip_height 1",
        "chain_mempool_transactions 0",
        "chain_block_validation_seconds_count",
        "chain_peer_requests_total{",
        "libp2p_swarm_connections_established_total",
        "http_requests_total{route=\"/api/status\",status=\"200\"}",
    ] {
        assert!(text.contains(name), "no {name} in:\n{text}");
    }
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (from Debian's prometheus package; scripts/setup.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn no_http_serves_nothing_and_a_taken_address_is_a_clear_error() {
    let env = Env::new();
    let a = free_id();
    let key = PrivateKey::generate();
    env.store_chain(
        &a,
        &[genesis(&easy_params(), key.public_key().pubkey_hash())],
    );
    let node = env.start_node(&a, &["--no-http"]);
    assert!(node.http.is_none());
    assert!(!node.proc.log_text().contains("HTTP API"));
    drop(node);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let listen = format!("/ip4/127.0.0.1/tcp/{a}");
    let e = env.fails(
        "node",
        &a,
        &[
            "startp2p",
            "--no-mdns",
            "--listen",
            &listen,
            "--http",
            &addr,
        ],
    );
    assert!(e.contains("cannot serve HTTP") && e.contains(&addr), "{e}");
}

/// Sends `request` as it is and returns what the server answered before it
/// closed the connection or went quiet for a second.
fn raw(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn event_streams_are_capped_and_a_foreign_host_is_refused() {
    use std::io::{Read, Write};
    let env = Env::new();
    let a = free_id();
    let key = PrivateKey::generate();
    let g: Block = genesis(&easy_params(), key.public_key().pubkey_hash());
    env.store_chain(&a, std::slice::from_ref(&g));
    let node = env.start_node(&a, &[]);
    let base = node.http.clone().unwrap();
    let addr = base.trim_start_matches("http://").to_string();

    // 300 event streams from one address: 4 are served and stay open, the
    // rest are refused at once and their connections closed.
    let mut open = Vec::new();
    let (mut served, mut refused) = (0, 0);
    for _ in 0..300 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        match &head[9..12] {
            b"200" => {
                served += 1;
                open.push(s);
            }
            b"503" => refused += 1,
            other => panic!("{}", String::from_utf8_lossy(other)),
        }
    }
    assert_eq!((served, refused), (4, 296));
    // The API still answers at once.
    let started = std::time::Instant::now();
    let s = json(&format!("{base}/api/status"), 200);
    assert_eq!(s["tip"]["height"], 0);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "status took {:?} with 300 streams asked for",
        started.elapsed()
    );
    // A closed stream frees its slot.
    drop(open.pop());
    eventually(WAIT, "a freed stream slot", || {
        let head = raw(&addr, "GET /api/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
        head.starts_with("HTTP/1.1 200").then_some(())
    });

    // A page reached through a name it controls (DNS rebinding) is refused;
    // addresses and localhost are not.
    let answer = raw(
        &addr,
        "GET /api/status HTTP/1.1\r\nHost: attacker.example:4000\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("does not name this node"), "{answer}");
    assert!(!answer
        .to_ascii_lowercase()
        .contains("access-control-allow-origin"));
    for host in ["localhost:4000", "127.0.0.1", "[::1]:4000"] {
        let answer = raw(
            &addr,
            &format!("GET /api/status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    // A name given with --http-host is served.
    let b = free_id();
    env.store_chain(&b, std::slice::from_ref(&g));
    let named = env.start_node(&b, &["--http-host", "node.example"]);
    let named_addr = named
        .http
        .clone()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let answer = raw(
        &named_addr,
        "GET /api/status HTTP/1.1\r\nHost: node.example:4000\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
