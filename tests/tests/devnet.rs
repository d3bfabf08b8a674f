//! `scripts/devnet.sh 16`: sixteen real node processes on loopback, a
//! minter, a payment a second submitted to random nodes (the first to the
//! node every other node dialled first); at the end every node is on one
//! tip and reports the same balances, and every process is gone.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use e2e_tests::repo;

#[test]
fn sixteen_processes_converge_on_one_tip_with_the_same_balances() {
    let bins = e2e_tests::bin("node").parent().unwrap().to_path_buf();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(repo().join("scripts/devnet.sh"))
        .arg("16")
        .env("DEVNET_BIN_DIR", &bins)
        .env("DEVNET_DIR", data.path())
        .env("BASE_PORT", e2e_tests::free_node_ports(16).to_string())
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
