//! The README's scripts: the libclang check that `scripts/setup.sh` relies
//! on, and the demo that runs the tutorial's network from start to end.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e_tests::repo;

/// Runs `scripts/find-libclang.sh` against a fake file system rooted at `root`.
fn find_libclang(root: &Path, libclang_path: Option<&Path>) -> (bool, String) {
    let mut c = Command::new(repo().join("scripts/find-libclang.sh"));
    c.arg(root).env_remove("LIBCLANG_PATH");
    if let Some(p) = libclang_path {
        c.env("LIBCLANG_PATH", p);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn touch(root: &Path, rel: &str) -> PathBuf {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, b"").unwrap();
    p
}

#[test]
fn libclang_cpp_alone_is_not_libclang() {
    // A fresh Debian image: Clang's C++ library only (package libclang-cpp14).
    let root = tempfile::tempdir().unwrap();
    touch(root.path(), "usr/lib/llvm-14/lib/libclang-cpp.so.14");
    touch(root.path(), "usr/lib/x86_64-linux-gnu/libclang-cpp.so.14");
    touch(root.path(), "usr/lib/llvm-14/lib/libLLVM-14.so");
    assert_eq!(find_libclang(root.path(), None), (false, String::new()));

    // A versioned runtime name that the linker cannot use is not enough either.
    touch(root.path(), "usr/lib/x86_64-linux-gnu/libclang-14.so.1");
    assert!(!find_libclang(root.path(), None).0);

    // What libclang-dev installs is found.
    let lib = touch(root.path(), "usr/lib/llvm-14/lib/libclang.so");
    assert_eq!(
        find_libclang(root.path(), None),
        (true, lib.display().to_string())
    );
}

#[test]
fn a_versioned_libclang_is_found_and_libclang_path_is_honoured() {
    let root = tempfile::tempdir().unwrap();
    let lib = touch(root.path(), "usr/lib/x86_64-linux-gnu/libclang-14.so");
    assert_eq!(
        find_libclang(root.path(), None),
        (true, lib.display().to_string())
    );

    // LIBCLANG_PATH is the only place searched when set, as clang-sys does.
    let empty = tempfile::tempdir().unwrap();
    touch(empty.path(), "libclang-cpp.so");
    assert!(!find_libclang(root.path(), Some(empty.path())).0);
    assert_eq!(
        find_libclang(root.path(), Some(lib.parent().unwrap())),
        (true, lib.display().to_string())
    );
    assert_eq!(
        find_libclang(root.path(), Some(&lib)),
        (true, lib.display().to_string())
    );
}

#[test]
fn the_demo_runs_the_tutorial_network_to_the_end_and_leaves_nothing() {
    let bins = e2e_tests::bin("node").parent().unwrap().to_path_buf();
    // The demo's own temporary directory goes here, so leftovers would show.
    let tmp = tempfile::tempdir().unwrap();
    let base = e2e_tests::free_node_ports(3).to_string();
    let project_tmp = repo().join("tmp").exists();
    let out = Command::new(repo().join("scripts/demo.sh"))
        .env("DEMO_BIN_DIR", &bins)
        .env("BASE_PORT", &base)
        .env("TMPDIR", tmp.path())
        .env_remove("NODE_ID")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    // Commands are shown as the tutorial writes them.
    for shown in [
        "cargo run -p wallet-cli -- createwallet -alias w1",
        "cargo run -p node -- createblockchain -address w1",
        "cargo run -p wallet-cli -- send -from w1 -to w2 -amount 10 -mint",
        "cargo run -p node -- startp2p -listen /ip4/127.0.0.1/tcp/",
        "-minter w3",
        "cargo run -p wallet-cli -- send -from w2 -to ",
    ] {
        assert!(
            stdout.contains(shown),
            "the demo shows `{shown}`:\n{stdout}"
        );
    }
    // Every node reports the tutorial's balances at height 2.
    let balances: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("node ") && l.contains("(height "))
        .collect();
    assert_eq!(balances.len(), 3, "one balance line per node:\n{stdout}");
    for line in balances {
        assert!(
            line.ends_with("(height 2): w1 32, w2 8, w3 20"),
            "balances: {line}"
        );
    }

    // Every node it started was stopped and reaped.
    let pids: Vec<u32> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("stopped node "))
        .filter_map(|l| l.split("(pid ").nth(1)?.trim_end_matches(')').parse().ok())
        .collect();
    assert_eq!(pids.len(), 3, "three nodes stopped:\n{stdout}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "node process {pid} is still there"
        );
    }
    // Nothing is left behind: not in the temporary directory, not in the project.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    assert_eq!(repo().join("tmp").exists(), project_tmp);
}
