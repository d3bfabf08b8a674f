//! `scripts/devnet.sh 16`: sixteen real node processes on loopback, a
//! minter, a payment a second submitted to random nodes (the first to the
//! node every other node dialled first); at the end every node is on one
//! tip and reports the same balances, and every process is gone.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use e2e_tests::repo;

/// A base port with the `n - 1` after it free, and the HTTP ports the
/// nodes take (`NODE_ID + 1000`) free too, all below Linux's ephemeral
/// range (32768 and up): there the nodes' own outbound connections took
/// one of them between this check and the node's bind.
fn free_range(n: u16) -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ std::process::id();
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    for k in 0..200u32 {
        // 20,000 to 29,999: with its HTTP ports, below 31,100.
        let base = 20_000 + (seed.wrapping_add(k.wrapping_mul(7_919)) % 10_000) as u16;
        if (base..base + n).all(free) && (base + 1_000..base + 1_000 + n).all(free) {
            return base;
        }
    }
    panic!("no {n} free ports in a row below the ephemeral range");
}

#[test]
fn sixteen_processes_converge_on_one_tip_with_the_same_balances() {
    let bins = e2e_tests::bin("node").parent().unwrap().to_path_buf();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(repo().join("scripts/devnet.sh"))
        .arg("16")
        .env("DEVNET_BIN_DIR", &bins)
        .env("DEVNET_DIR", data.path())
        .env("BASE_PORT", free_range(16).to_string())
        .env("DURATION", "20")
        .env("PREMINE", "12")
        .env_remove("NODE_ID")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "devnet failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("DEVNET OK: all 16 nodes on one tip"),
        "{stdout}"
    );
    // Payments went through, the first one to node 1, and none failed.
    let payments = std::fs::read_to_string(data.path().join("payments.log")).unwrap();
    assert!(
        payments
            .lines()
            .next()
            .unwrap()
            .starts_with("ok via node 1"),
        "{payments}"
    );
    assert!(
        payments.lines().filter(|l| l.starts_with("ok")).count() >= 8,
        "{payments}"
    );
    assert!(!payments.contains("failed"), "{payments}");
    // Blocks were minted and reached every node.
    let reached = stdout
        .lines()
        .find_map(|l| l.split("reached every node: ").nth(1))
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap();
    assert!(reached >= 2, "{stdout}");
    // Every node process is gone.
    let pids: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("cmdline")).ok())
        .filter(|c| c.contains(&*data.path().to_string_lossy()))
        .collect();
    assert!(pids.is_empty(), "node processes left: {pids:?}");
}
