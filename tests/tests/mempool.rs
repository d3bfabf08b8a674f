//! The mempool across a restart, and what a wallet sees of it: unconfirmed
//! balances apart, its own change spendable, a damaged pool file a warning.

#![allow(clippy::unwrap_used)]

use e2e_tests::{free_id, Env};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn pending_payments_survive_a_clean_restart_and_a_damaged_file_is_only_a_warning() {
    let env = Env::new();
    let a = free_id();
    env.wallet(&a, "w1");
    let w2 = env.wallet(&a, "w2");
    env.json("node", &a, &["createblockchain", "-address", "w1"]);
    let mut node = env.start_node(&a, &[]);
    let addr = node.addr.clone();

    // Two payments, the second spending the first one's change.
    for amount in ["3", "4"] {
        let out = env.json(
            "wallet-cli",
            &a,
            &[
                "send", "-from", "w1", "-to", &w2, "-amount", amount, "-peer", &addr,
            ],
        );
        assert_eq!(out["accepted"], true, "{out}");
    }
    let w1 = env.json(
        "wallet-cli",
        &a,
        &["getbalance", "-address", "w1", "-peer", &addr],
    );
    assert_eq!(
        (w1["balance"].as_u64(), w1["unconfirmed"].as_u64()),
        (Some(0), Some(13))
    );
    let b = env.json(
        "wallet-cli",
        &a,
        &["getbalance", "-address", "w2", "-peer", &addr],
    );
    assert_eq!(
        (b["balance"].as_u64(), b["unconfirmed"].as_u64()),
        (Some(0), Some(7))
    );
    // Coins paid by others while unconfirmed are not spent: w2 has none yet.
    let e = env.fails(
        "wallet-cli",
        &a,
        &[
            "send", "-from", "w2", "-to", "w1", "-amount", "1", "-peer", &addr,
        ],
    );
    assert!(
        e.contains("insufficient") || e.contains("not enough"),
        "{e}"
    );
    assert!(
        e.contains("7 more is on its way") && e.contains("once a block includes it"),
        "{e}"
    );

    // A clean restart keeps both.
    assert!(node.proc.terminate(WAIT));
    assert!(node
        .proc
        .log_text()
        .contains("mempool saved transactions=2"));
    let node = env.start_node(&a, &[]);
    node.proc.wait_for_log("mempool loaded", WAIT);
    let b = env.json(
        "wallet-cli",
        &a,
        &["getbalance", "-address", "w2", "-peer", &node.addr],
    );
    assert_eq!(b["unconfirmed"].as_u64(), Some(7));
    let mut node = node;
    assert!(node.proc.terminate(WAIT));

    // A truncated file: a warning, an empty pool, a running node.
    let file = env.path().join(format!("mempool_{a}.dat"));
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let node = env.start_node(&a, &[]);
    node.proc
        .wait_for_log("starting with an empty mempool", WAIT);
    let w1 = env.json(
        "wallet-cli",
        &a,
        &["getbalance", "-address", "w1", "-peer", &node.addr],
    );
    assert_eq!(
        (w1["balance"].as_u64(), w1["unconfirmed"].as_u64()),
        (Some(20), Some(0))
    );
}
