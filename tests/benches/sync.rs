//! Sync benchmark: builds a chain (default 2,000 blocks of 50 transactions),
//! imports it into a store (the local import rate), then starts a node that
//! holds it and a fresh node that syncs it over loopback, and prints both
//! rates and their ratio. It measures; it asserts nothing.
//!
//! `cargo run -p e2e-tests --bin sync-bench -- [BLOCKS] [TXS_PER_BLOCK]`

use anyhow::{bail, Context, Result};
use chain_core::block::ChainParams;
use chain_core::keys::PrivateKey;
use chain_core::miner::{assemble_block, assemble_genesis, solve};
use chain_core::test_utils::{outputs_of, spend};
use chain_core::{Amount, Block, Transaction};
use chain_store::ChainStore;
use rayon::prelude::*;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

fn mine(b: &mut Block) {
    assert!(solve(b, 2, &AtomicBool::new(false), &mut |_| {}));
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let n_blocks: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let per_block: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let params = ChainParams {
        reward: Amount(1_000_000),
        ..ChainParams::default()
    };
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();

    let t0 = Instant::now();
    let start_time = chain_store::unix_now() - u64::from(n_blocks) * 2 - 60;
    let mut genesis = assemble_genesis(&params, pkh, start_time);
    mine(&mut genesis);
    let mut chain = vec![genesis.clone()];
    // Block 1 fans the genesis coin out into one coin per transaction slot.
    let fan = {
        let coin = outputs_of(&genesis.transactions[0]);
        let mut tx = spend(&key, &coin, pkh, Amount(1), Amount(0));
        tx.outputs = (0..per_block)
            .map(|_| chain_core::TxOut {
                value: Amount(1_000_000 / per_block as u64),
                pubkey_hash: pkh,
            })
            .collect();
        tx.sign_all(&[coin[0].1], &[&key]);
        tx
    };
    let mut coins = outputs_of(&fan);
    let mut b1 = assemble_block(
        &params,
        &genesis.header,
        params.initial_bits,
        start_time + 2,
        pkh,
        vec![fan],
        Amount(0),
    );
    mine(&mut b1);
    chain.push(b1);
    for h in 2..=n_blocks {
        let txs: Vec<Transaction> = coins
            .par_iter()
            .map(|c| spend(&key, &[*c], pkh, c.1.value, Amount(0)))
            .collect();
        coins = txs.iter().map(|t| outputs_of(t)[0]).collect();
        let parent = chain.last().expect("non-empty").header;
        let mut b = assemble_block(
            &params,
            &parent,
            params.initial_bits,
            start_time + 2 * u64::from(h),
            pkh,
            txs,
            Amount(0),
        );
        mine(&mut b);
        chain.push(b);
    }
    let total_txs: usize = chain.iter().map(|b| b.transactions.len()).sum();
    eprintln!(
        "built {} blocks, {total_txs} transactions in {:.1}s",
        chain.len(),
        t0.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let a_id = port.to_string();
    let b_id = format!("{port}b");
    let a_dir = dir.path().join(format!("blocks_{a_id}"));
    let t_import = Instant::now();
    {
        let mut store = ChainStore::create(&a_dir, &chain[0])?;
        for b in &chain[1..] {
            store.accept_block(b, chain_store::unix_now())?;
        }
    }
    let import = t_import.elapsed().as_secs_f64();

    let exe = std::env::current_exe()?;
    let node = exe.parent().context("target dir")?.join("node");
    if !node.exists() {
        bail!("build the node first: cargo build --bins");
    }
    let spawn = |id: &str, extra: &[&str]| -> Result<std::process::Child> {
        Ok(Command::new(&node)
            .args([
                "--data-dir",
                dir.path().to_str().context("utf-8 path")?,
                "startp2p",
                "--no-mdns",
            ])
            .args(extra)
            .env("NODE_ID", id)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?)
    };
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut a = spawn(&a_id, &["--listen", &listen])?;
    let mut line = String::new();
    let mut out = std::io::BufReader::new(a.stdout.take().context("stdout")?);
    use std::io::BufRead;
    while !line.starts_with("Listening on /ip4/127.0.0.1") {
        line.clear();
        if out.read_line(&mut line)? == 0 {
            bail!("node A exited");
        }
    }
    let addr = line.trim().trim_start_matches("Listening on ").to_string();
    let b_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let t_sync = Instant::now();
    let mut b = spawn(
        &b_id,
        &[
            "--listen",
            &format!("/ip4/127.0.0.1/tcp/{b_port}"),
            "--dest",
            &addr,
        ],
    )?;
    let b_dir = dir.path().join(format!("blocks_{b_id}"));
    let want = chain.last().expect("non-empty").hash();
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        if let Ok(s) = ChainStore::open_read_only(&b_dir) {
            if s.tip().hash == want {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!("sync did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sync = t_sync.elapsed().as_secs_f64();
    let _ = a.kill();
    let _ = b.kill();
    let _ = a.wait();
    let _ = b.wait();
    let blocks = chain.len() as f64;
    let txs = total_txs as f64;
    println!(
        "chain: {} blocks, {total_txs} transactions ({per_block} per block)",
        chain.len()
    );
    println!(
        "local import: {import:.2} s, {:.0} blocks/s, {:.0} tx/s",
        blocks / import,
        txs / import
    );
    println!(
        "network sync: {sync:.2} s, {:.0} blocks/s, {:.0} tx/s (fresh node, from process start)",
        blocks / sync,
        txs / sync
    );
    println!("sync/import time ratio: {:.2}", sync / import);
    Ok(())
}
