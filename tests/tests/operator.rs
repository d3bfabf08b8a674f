//! What an operator runs the node with: the config file and its layering,
//! the health endpoints, the systemd unit (`systemd-analyze verify`), the
//! Prometheus configuration (`promtool check config`), the Grafana
//! dashboard (every metric it names is served, every expression parses),
//! shell completions (`bash -n`) and manual pages (`man -l`).

#![allow(clippy::unwrap_used)]

use chain_core::keys::PrivateKey;
use chain_core::test_utils::{easy_params, genesis};
use e2e_tests::http::{get, json};
use e2e_tests::{bin, eventually, free_id, repo, Env};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `createwallet --json`'s alias, with `env` set and `args` given.
fn alias_made(env: &Env, id: &str, vars: &[(&str, &str)], args: &[&str]) -> String {
    let mut all = vec!["createwallet", "--json"];
    all.extend_from_slice(args);
    let mut c = env.cmd("wallet-cli", id, &all);
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["alias"].as_str().unwrap_or_default().to_string()
}

#[test]
fn the_command_line_beats_the_environment_which_beats_the_file() {
    let env = Env::new();
    let id = free_id();
    write(
        &env.path().join("chain.toml"),
        "# a comment\n[createwallet]\nalias = \"from-file\"\n",
    );
    assert_eq!(alias_made(&env, &id, &[], &[]), "from-file");
    assert_eq!(
        alias_made(&env, &id, &[("CHAIN_ALIAS", "from-env")], &[]),
        "from-env"
    );
    assert_eq!(
        alias_made(
            &env,
            &id,
            &[("CHAIN_ALIAS", "from-env")],
            &["-alias", "from-cli"]
        ),
        "from-cli"
    );

    // A required flag may come from the file too.
    write(
        &env.path().join("chain.toml"),
        "[createblockchain]\naddress = \"from-file\"\ndifficulty = 3\n",
    );
    let out = env.run("node", &id, &["createblockchain", "--threads", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // `config show`: each setting with the layer it came from.
    write(
        &env.path().join("chain.toml"),
        "[startp2p]\nmin-txs = 5\nmempool-expiry = 10\ndest = [\"/ip4/127.0.0.1/tcp/1/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN\"]\n",
    );
    let mut c = env.cmd("node", &id, &["config", "show", "--json"]);
    c.env("CHAIN_MEMPOOL_EXPIRY", "20");
    let out = c.output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["settings"];
    let file = env.path().join("chain.toml").display().to_string();
    assert_eq!(v["file"], file);
    assert_eq!(s["startp2p"]["min-txs"]["value"], 5);
    assert_eq!(s["startp2p"]["min-txs"]["source"], format!("{file} line 2"));
    assert_eq!(s["startp2p"]["mempool-expiry"]["value"], 20);
    assert_eq!(
        s["startp2p"]["mempool-expiry"]["source"],
        "environment CHAIN_MEMPOOL_EXPIRY"
    );
    assert_eq!(s["startp2p"]["mempool-bytes"]["source"], "default");
    assert_eq!(s["startp2p"]["dest"]["value"].as_array().unwrap().len(), 1);
    assert_eq!(s["top"]["node-id"]["source"], "environment NODE_ID");
    assert_eq!(s["top"]["data-dir"]["source"], "command line", "{}", v);
    // The same as TOML, for a person.
    let out = env.run("node", &id, &["config", "show"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[startp2p]"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("min-txs = 5") && l.contains(&format!("{file} line 2"))),
        "{text}"
    );
}

#[test]
fn a_bad_config_file_is_a_clear_error_that_names_the_key_and_line() {
    let env = Env::new();
    let id = free_id();
    let path = env.path().join("chain.toml");
    let shown = path.display().to_string();
    for (text, needles) in [
        (
            "[startp2p]\nmin-txs = 2\nmin-tx = 2\n",
            vec!["unknown key `min-tx`", "[startp2p]", "line 3", "min-txs"],
        ),
        (
            "[startp2p]\n\nmin-txs = \"two\"\n",
            vec!["`min-txs`", "line 3", "expected an integer, found a string"],
        ),
        (
            "[startp2p]\nno-mdns = \"yes\"\n",
            vec!["`no-mdns`", "line 2", "expected a boolean"],
        ),
        (
            "[startp2p]\nmin-txs = 0\n",
            vec!["`min-txs`", "line 2", "0 is not in 1.."],
        ),
        (
            "[startp2p]\ndest = \"/ip4/1.2.3.4\"\n",
            vec!["`dest`", "line 2", "expected an array of strings"],
        ),
        (
            "[startp2pp]\n",
            vec!["unknown section [startp2pp]", "line 1"],
        ),
        ("min-txs = 3\n", vec!["unknown key `min-txs`", "line 1"]),
        ("[startp2p\n", vec!["not valid TOML"]),
    ] {
        write(&path, text);
        let err = env.fails("node", &id, &["startp2p"]);
        assert!(err.contains(&shown), "{text:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{text:?}: no {n:?} in {err}");
        }
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
    // The wallet's sections are not node's business, and the reverse.
    write(&path, "[send]\nfee-rate = 3\n[startp2p]\nmin-txs = 2\n");
    let out = env.run("wallet-cli", &id, &["createwallet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = env.run("node", &id, &["config", "show"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A named file must exist.
    let err = env.fails(
        "node",
        &id,
        &["printchain", "--config", "/nonexistent/chain.toml"],
    );
    assert!(err.contains("does not exist"), "{err}");
    // Nothing was written by the refused commands but the wallet above.
    assert!(!env.path().join(format!("blocks_{id}")).exists());
}

#[test]
fn health_says_whether_the_node_is_up_and_ready() {
    let env = Env::new();
    let (a, b) = (free_id(), free_id());
    let key = PrivateKey::generate();
    let g = genesis(&easy_params(), key.public_key().pubkey_hash());
    env.store_chain(&a, std::slice::from_ref(&g));
    env.store_chain(&b, std::slice::from_ref(&g));
    let node_a = env.start_node(&a, &[]);
    let base = node_a.http.clone().unwrap();
    assert_eq!(json(&format!("{base}/healthz"), 200)["status"], "ok");
    // Alone: up, but not ready.
    let r = json(&format!("{base}/readyz"), 503);
    assert_eq!(r["status"], "not ready");
    assert!(
        r["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "no peers"),
        "{r}"
    );
    let _node_b = env.start_node(&b, &["-dest", &node_a.addr]);
    eventually(Duration::from_secs(30), "node A to be ready", || {
        let (st, body) = get(&format!("{base}/readyz"));
        (st == 200).then_some(body)
    });
    let r = json(&format!("{base}/readyz"), 200);
    assert_eq!(r["status"], "ready");
    assert_eq!(r["height"], 0);

    // Every metric the dashboard names is served by this node.
    let (st, metrics) = get(&format!("{base}/metrics"));
    assert_eq!(st, 200);
    let names = dashboard_metrics();
    assert!(names.len() >= 10, "{names:?}");
    for name in &names {
        let served = metrics
            .lines()
            .filter(|l| !l.starts_with('#'))
            .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")));
        assert!(
            served,
            "the dashboard's {name} is not in /metrics:\n{metrics}"
        );
    }
}

/// The dashboard's PromQL expressions.
fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("contrib/grafana/chain-node.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let panels = v["panels"].as_array().unwrap();
    assert!(!panels.is_empty());
    panels
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect()
}

/// The metric names the dashboard's expressions read.
fn dashboard_metrics() -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for e in dashboard_exprs() {
        let mut word = String::new();
        for c in e.chars().chain([' ']) {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                word.push(c);
                continue;
            }
            if ["chain_", "node_", "http_", "libp2p_"]
                .iter()
                .any(|p| word.starts_with(p))
            {
                names.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    names
}

#[test]
fn the_dashboards_expressions_and_the_prometheus_config_are_valid() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yml");
    let mut yml = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, e) in dashboard_exprs().iter().enumerate() {
        yml.push_str(&format!(
            "      - record: dashboard:expr{i}\n        expr: {}\n",
            serde_json::to_string(e).unwrap()
        ));
    }
    write(&rules, &yml);
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool (scripts/setup.sh installs Debian's prometheus)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    let out = Command::new("promtool")
        .args(["check", "config"])
        .arg(repo().join("contrib/prometheus/prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
}

#[test]
fn the_systemd_unit_verifies() {
    let unit = std::fs::read_to_string(repo().join("contrib/systemd/chain-node.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/chain-node startp2p"));
    for key in [
        "TimeoutStopSec=600",
        "KillSignal=SIGTERM",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "PrivateTmp=true",
        "NoNewPrivileges=true",
        "MemoryDenyWriteExecute=true",
        "--config /etc/chain-node/chain.toml",
    ] {
        assert!(unit.contains(key), "the unit lacks {key}");
    }
    // systemd-analyze checks that the program exists: point it at the
    // built binary.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("chain-node.service");
    write(
        &copy,
        &unit.replace(
            "/usr/local/bin/chain-node",
            &bin("node").display().to_string(),
        ),
    );
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("systemd-analyze (scripts/setup.sh installs Debian's systemd)");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    // Unknown keys and bad values are only warnings: there must be none.
    assert!(
        !err.contains("chain-node.service"),
        "systemd-analyze warned about the unit:\n{err}"
    );

    // The sample config it reads is one node accepts.
    let env = Env::new();
    let sample = repo().join("contrib/systemd/chain.toml");
    let out = env.run(
        "node",
        &free_id(),
        &["config", "show", "--config", &sample.display().to_string()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("min-txs = 2"));
}

#[test]
fn completions_and_manual_pages_come_from_the_parsers() {
    let dir = tempfile::tempdir().unwrap();
    for binary in ["node", "wallet-cli"] {
        let out = Command::new(bin(binary))
            .args(["completions", "bash"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let script = dir.path().join(format!("{binary}.bash"));
        std::fs::write(&script, &out.stdout).unwrap();
        let check = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(check.status.success(), "bash -n: {}", stderr(&check));
        let text = String::from_utf8_lossy(&out.stdout);
        let word = if binary == "node" { "startp2p" } else { "send" };
        assert!(text.contains(word), "no {word} in the completion");
        for shell in ["zsh", "fish"] {
            let out = Command::new(bin(binary))
                .args(["completions", shell])
                .output()
                .unwrap();
            assert!(out.status.success() && !out.stdout.is_empty());
        }
        let err = Command::new(bin(binary))
            .args(["completions", "tcsh"])
            .output()
            .unwrap();
        assert!(!err.status.success());

        let pages = dir.path().join("man");
        let out = Command::new(bin(binary))
            .arg("manpage")
            .arg(&pages)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert!(listed.len() > 3, "{listed:?}");
        for page in &listed {
            let out = Command::new("man")
                .arg("-l")
                .arg(page)
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "100")
                .output()
                .expect("man (scripts/setup.sh installs Debian's man-db)");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "man -l {page}: {}", stderr(&out));
            assert!(
                text.contains("NAME") && text.contains("SYNOPSIS"),
                "{page}:\n{text}"
            );
        }
        let main_page = std::fs::read_to_string(pages.join(format!("{binary}.1"))).unwrap();
        assert!(main_page.contains(".TH"), "not roff");
    }
}
