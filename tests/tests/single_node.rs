//! The Go tutorial's single-node flow with the real binaries, and the
//! refusals a user meets on the way.

#![allow(clippy::unwrap_used)]

use e2e_tests::Env;

#[test]
fn tutorial_single_node_flow() {
    let env = Env::new();
    let id = "3000";
    let w1 = env.json("wallet-cli", id, &["createwallet", "-alias", "w1"]);
    let w2 = env.json("wallet-cli", id, &["createwallet", "--alias", "w2"]);
    let w2_addr = w2["address"].as_str().unwrap().to_string();
    assert!(w1["address"].as_str().unwrap().starts_with('1'));

    let g = env.json("node", id, &["createblockchain", "-address", "w1"]);
    assert_eq!(g["height"], 0);
    assert!(
        g["hash"].as_str().unwrap().starts_with("000"),
        "12 leading zero bits"
    );

    let s = env.json(
        "wallet-cli",
        id,
        &[
            "send", "-from", "w1", "-to", &w2_addr, "-amount", "10", "-mint",
        ],
    );
    assert_eq!(s["height"], 1);
    assert_eq!(s["txid"].as_str().unwrap().len(), 64);

    assert_eq!(
        env.json("wallet-cli", id, &["getbalance", "-address", "w1"])["balance"],
        30
    );
    assert_eq!(
        env.json("wallet-cli", id, &["getbalance", "-address", &w2_addr])["balance"],
        10
    );

    let chain = env.json("node", id, &["printchain"]);
    let blocks = chain["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0]["height"], 1);
    assert_eq!(blocks[0]["transactions"].as_array().unwrap().len(), 2);
    assert_eq!(blocks[0]["transactions"][1]["txid"], s["txid"]);

    assert_eq!(env.json("node", id, &["checkdb"])["ok"], true);
    assert_eq!(env.json("node", id, &["reindexutxo"])["utxos"], 3);
    let listed = env.json("wallet-cli", id, &["listaddresses"]);
    assert_eq!(listed["addresses"].as_array().unwrap().len(), 2);
}

#[test]
fn bad_input_is_one_clear_line_and_nothing_is_written() {
    let env = Env::new();
    let id = "4000";
    env.json("wallet-cli", id, &["createwallet", "-alias", "w1"]);
    env.json("wallet-cli", id, &["createwallet", "-alias", "w2"]);

    let e = env.fails("wallet-cli", id, &["getbalance", "-address", "w1"]);
    assert!(e.contains("no chain in"), "{e}");
    assert!(e.contains("create one with `node createblockchain"), "{e}");
    let e = env.fails("node", id, &["createblockchain", "-address", "nobody"]);
    assert!(e.contains("'nobody' is not an alias"), "{e}");
    env.json("node", id, &["createblockchain", "-address", "w1"]);
    let e = env.fails("node", id, &["createblockchain", "-address", "w1"]);
    assert!(e.contains("already exists"), "{e}");

    let before = env.json("node", id, &["printchain"]);
    for (args, needle) in [
        (
            vec!["send", "-from", "w1", "-to", "w2", "-amount", "0", "-mint"],
            "above zero",
        ),
        (
            vec![
                "send", "-from", "w1", "-to", "w2", "-amount", "999", "-mint",
            ],
            "insufficient funds",
        ),
        (
            vec![
                "send",
                "-from",
                "w1",
                "-to",
                "w2",
                "-amount",
                "99999999999999999",
                "-mint",
            ],
            "larger than the money supply",
        ),
        (
            vec![
                "send",
                "-from",
                "w1",
                "-to",
                "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",
                "-amount",
                "1",
                "-mint",
            ],
            "checksum",
        ),
        (
            vec![
                "send", "-from", "ghost", "-to", "w2", "-amount", "1", "-mint",
            ],
            "'ghost' is not an alias",
        ),
        (
            vec!["send", "-from", "w1", "-to", "w2", "-amount", "1"],
            "--mint",
        ),
    ] {
        let e = env.fails("wallet-cli", id, &args);
        assert!(e.contains(needle), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    }
    assert_eq!(
        env.json("node", id, &["printchain"]),
        before,
        "failed sends wrote nothing"
    );

    let e = env.fails("wallet-cli", id, &["createwallet", "-alias", "w1"]);
    assert!(e.contains("already used"), "{e}");
    assert_eq!(
        env.json("wallet-cli", id, &["listaddresses"])["addresses"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let e = env.fails("wallet-cli", id, &["importkey", "-wif", "5notakey"]);
    assert!(e.contains("WIF"), "{e}");
    let no_id = std::process::Command::new(e2e_tests::bin("node"))
        .arg("printchain")
        .env_remove("NODE_ID")
        .output()
        .unwrap();
    assert!(!no_id.status.success());
    assert!(String::from_utf8_lossy(&no_id.stderr).contains("NODE_ID"));
}

#[test]
fn keys_round_trip_through_wif_between_nodes() {
    let env = Env::new();
    let a = env.json("wallet-cli", "1", &["createwallet", "-alias", "k"]);
    let wif = env.json("wallet-cli", "1", &["exportkey", "-address", "k"])["wif"]
        .as_str()
        .unwrap()
        .to_string();
    let b = env.json(
        "wallet-cli",
        "2",
        &["importkey", "-wif", &wif, "-alias", "moved"],
    );
    assert_eq!(a["address"], b["address"]);
    let e = env.fails("wallet-cli", "2", &["importkey", "-wif", &wif]);
    assert!(e.contains("already in this wallet"), "{e}");
}

#[test]
fn wallet_passphrase_encrypts_at_rest_and_a_wrong_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let id = e2e_tests::free_id();
    let file = env.path().join(format!("wallets_{id}.json"));
    let with = |pass: Option<&str>, args: &[&str]| {
        let mut c = env.cmd("wallet-cli", &id, args);
        c.arg("--json");
        match pass {
            Some(p) => c.env("WALLET_PASSPHRASE", p),
            None => c.env_remove("WALLET_PASSPHRASE"),
        };
        c.output().unwrap()
    };
    let out = with(Some("correct horse"), &["createwallet", "--alias", "a"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("ciphertext") && text.contains("argon2id"));
    assert!(!text.contains("\"wif\""), "no key in the clear");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let none = with(None, &["listaddresses"]);
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("is encrypted: set WALLET_PASSPHRASE"));
    let wrong = with(Some("battery staple"), &["listaddresses"]);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
    // A refused attempt to add a key changes nothing.
    assert!(!with(Some("battery staple"), &["createwallet"])
        .status
        .success());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    let out = with(Some("correct horse"), &["createwallet", "--alias", "b"]);
    assert!(out.status.success());
    let list = with(Some("correct horse"), &["listaddresses"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v["addresses"].as_array().unwrap().len(), 2);
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("ciphertext"));

    // A plain wallet is encrypted in place by encryptwallet.
    let plain_id = e2e_tests::free_id();
    env.wallet(&plain_id, "p");
    let plain_file = env.path().join(format!("wallets_{plain_id}.json"));
    assert!(std::fs::read_to_string(&plain_file)
        .unwrap()
        .contains("\"wif\""));
    let mut c = env.cmd("wallet-cli", &plain_id, &["encryptwallet"]);
    assert!(c.env("WALLET_PASSPHRASE", "pw").status().unwrap().success());
    assert!(!std::fs::read_to_string(&plain_file)
        .unwrap()
        .contains("\"wif\""));
    let mut c = env.cmd("wallet-cli", &plain_id, &["listaddresses", "--json"]);
    let out = c.env("WALLET_PASSPHRASE", "pw").output().unwrap();
    assert!(out.status.success());
}

/// Runs `cmd` under a pseudo-terminal (util-linux `script`); returns what the terminal showed.
fn on_a_terminal(cmd: &std::process::Command) -> String {
    // `env -u K... K=V... program args`: unsets first, as env(1) wants them.
    let (mut unset, mut set) = (String::new(), String::new());
    for (k, v) in cmd.get_envs() {
        let k = k.to_string_lossy();
        match v {
            Some(v) => set.push_str(&format!("{k}='{}' ", v.to_string_lossy())),
            None => unset.push_str(&format!("-u {k} ")),
        }
    }
    let mut line = format!("env {unset}{set}");
    line.push_str(&format!("'{}'", cmd.get_program().to_string_lossy()));
    for a in cmd.get_args() {
        line.push_str(&format!(" '{}'", a.to_string_lossy()));
    }
    let out = std::process::Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .output()
        .expect("util-linux script");
    assert!(out.status.success(), "{line} failed");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn mining_shows_progress_on_a_terminal_and_nothing_but_json_on_stdout() {
    let env = Env::new();
    let id = "3000";
    env.json("wallet-cli", id, &["createwallet", "-alias", "w1"]);
    env.json("wallet-cli", id, &["createwallet", "-alias", "w2"]);

    // On a terminal: the totals of the search, after the result.
    let mut create = env.cmd(
        "node",
        id,
        &["createblockchain", "-address", "w1", "-difficulty", "16"],
    );
    create.env_remove("RUST_LOG");
    let shown = on_a_terminal(&create);
    assert!(
        shown.contains("mining the genesis block: done, ") && shown.contains(" hashes/s, "),
        "progress on the terminal: {shown}"
    );
    assert!(shown.contains("Genesis "), "{shown}");

    // Not a terminal, with --json: stdout is the result alone, stderr is quiet.
    let out = env
        .cmd(
            "wallet-cli",
            id,
            &[
                "send", "-from", "w1", "-to", "w2", "-amount", "1", "-mint", "--json",
            ],
        )
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("only JSON on stdout");
    assert_eq!(v["height"], 1);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // On a terminal, send -mint shows its search too.
    let mut send = env.cmd(
        "wallet-cli",
        id,
        &["send", "-from", "w1", "-to", "w2", "-amount", "1", "-mint"],
    );
    send.env_remove("RUST_LOG");
    let shown = on_a_terminal(&send);
    assert!(
        shown.contains("minting block 2 with the payment: done, "),
        "{shown}"
    );
}
