//! Sync benchmark: builds a chain (default 2,000 blocks of 50 transactions),
//! imports it into a store (the local import rate), then starts a node that
//! holds it and a fresh node that syncs it over loopback, and prints both
//! rates and their ratio. It measures; it asserts nothing.
//!
//! It then syncs while CLIENTS threads (default 16) hammer the syncing
//! node's HTTP API with `/api/status` and `/api/block/:hash`, and prints
//! the requests per second, their p99 latency and how much the sync
//! slowed. The client threads run at three priorities in turn: as the
//! nodes' (competing with them for this machine's cores), at nice 19, and
//! in Linux's idle class (taking only CPU time the nodes leave, as clients
//! on other machines would).
//!
//! The plain sync and the syncs under nice-19 and idle clients run REPEAT times each
//! (default 3), and their medians are compared.
//!
//! The chain also pays 100,000 one-unit coins to one watched address (in
//! blocks 2 to 5, beside their payments). One more sync runs REPEAT times
//! while four peers ask the syncing node for that address's coins
//! (`GetUtxos`) as fast as its rate limit lets them, and is compared with
//! the plain sync. The asking peers run in the idle scheduling class, as
//! peers on other machines would take none of the node's CPU.
//!
//! With `--sync-only`, only the local import, the plain sync (REPEAT
//! times) and the signature rate run; when BLOCKS is over 2,000 a fresh
//! node also syncs the chain's first 2,000 blocks from a second source,
//! and both syncs' peak resident memory are printed with their ratio.
//!
//! `cargo run -p e2e-tests --bin sync-bench -- [--sync-only] [BLOCKS] [TXS_PER_BLOCK] [CLIENTS] [REPEAT]`

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

/// Blocks after the genesis that `--sync-only` syncs a second time, to
/// compare the peak memory of a longer sync with.
const PREFIX_BLOCKS: usize = 2000;

/// Coins the watched address holds.
const WATCHED_COINS: usize = 100_000;

/// Transactions that pay `WATCHED_COINS` coins of one unit to a new
/// address from `funding` (worth that many units): the first splits it
/// into 30 coins, each of which the others split into one-unit coins.
/// Returns them, the splitter first, and the address.
fn watched_coins(
    key: &PrivateKey,
    funding: (chain_core::OutPoint, chain_core::TxOut),
) -> (Vec<Transaction>, chain_core::PubkeyHash) {
    let watched = PrivateKey::generate().public_key().pubkey_hash();
    let parts = 30;
    let per_part = WATCHED_COINS.div_ceil(parts);
    let own = key.public_key().pubkey_hash();
    let mut split = spend(key, &[funding], own, Amount(1), Amount(0));
    split.outputs = (0..parts)
        .map(|i| {
            let n = per_part.min(WATCHED_COINS - i * per_part);
            chain_core::TxOut {
                value: Amount(n as u64),
                pubkey_hash: own,
            }
        })
        .collect();
    split.sign_all(&[funding.1], &[key]);
    let mut txs = vec![split.clone()];
    for part in outputs_of(&split) {
        let mut tx = spend(key, &[part], watched, Amount(1), Amount(0));
        tx.outputs = (0..part.1.value.0)
            .map(|_| chain_core::TxOut {
                value: Amount(1),
                pubkey_hash: watched,
            })
            .collect();
        tx.sign_all(&[part.1], &[key]);
        txs.push(tx);
    }
    (txs, watched)
}

fn mine(b: &mut Block) {
    assert!(solve(b, 2, &AtomicBool::new(false), &mut |_| {}));
}

fn main() -> Result<()> {
    let (flags, positional): (Vec<String>, Vec<String>) =
        std::env::args().skip(1).partition(|a| a.starts_with("--"));
    let mut sync_only = false;
    for f in &flags {
        match f.as_str() {
            "--sync-only" => sync_only = true,
            other => bail!("unknown flag {other}; the only flag is --sync-only"),
        }
    }
    let mut args = positional.into_iter();
    let n_blocks: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000);
    let per_block: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let clients: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(16);
    let repeat: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(3)
        .max(1);
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
    // Block 1 fans the genesis coin out into one coin per transaction slot,
    // and one that funds the watched address's coins.
    let fan = {
        let coin = outputs_of(&genesis.transactions[0]);
        let mut tx = spend(&key, &coin, pkh, Amount(1), Amount(0));
        tx.outputs = (0..per_block)
            .map(|_| chain_core::TxOut {
                value: Amount((1_000_000 - WATCHED_COINS as u64) / per_block as u64),
                pubkey_hash: pkh,
            })
            .chain(std::iter::once(chain_core::TxOut {
                value: Amount(WATCHED_COINS as u64),
                pubkey_hash: pkh,
            }))
            .collect();
        tx.sign_all(&[coin[0].1], &[&key]);
        tx
    };
    let mut coins = outputs_of(&fan);
    let funding = coins.pop().expect("the funding coin");
    let (mut watched_txs, watched) = watched_coins(&key, funding);
    let mut b1 = assemble_block(
        &params,
        &genesis.header,
        params.initial_bits,
        start_time + 2,
        pkh,
        vec![fan, watched_txs.remove(0)],
        Amount(0),
    );
    mine(&mut b1);
    chain.push(b1);
    for h in 2..=n_blocks {
        let mut txs: Vec<Transaction> = coins
            .par_iter()
            .map(|c| spend(&key, &[*c], pkh, c.1.value, Amount(0)))
            .collect();
        coins = txs.iter().map(|t| outputs_of(t)[0]).collect();
        // Up to 9 of the watched address's fan-outs (about 94 kB each) fit
        // beside the payments.
        let n = watched_txs.len().min(9);
        txs.extend(watched_txs.drain(..n));
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
    // The import and the signature rate it is compared with are measured
    // REPEAT times in turn, and their medians taken: on a shared 2-core
    // machine either varies by a tenth from one run to the next. The last
    // import is the store the source node serves.
    let (mut imports, mut sig_rates) = (Vec::new(), Vec::new());
    for i in 0..repeat {
        let into = if i + 1 == repeat {
            a_dir.clone()
        } else {
            dir.path().join(format!("import{i}"))
        };
        let t_import = Instant::now();
        {
            let mut store = ChainStore::create(&into, &chain[0])?;
            for b in &chain[1..] {
                store.accept_block(b, chain_store::unix_now())?;
            }
        }
        imports.push(t_import.elapsed().as_secs_f64());
        if into != a_dir {
            std::fs::remove_dir_all(&into)?;
        }
        sig_rates.push(signature_rate(&chain));
    }

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
                "--http",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("NODE_ID", id)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?)
    };
    // Starts a node and returns it with the address and the HTTP API's
    // address it printed.
    let start = |id: &str, extra: &[&str]| -> Result<(std::process::Child, String, String)> {
        let mut child = spawn(id, extra)?;
        let mut out = std::io::BufReader::new(child.stdout.take().context("stdout")?);
        let mut line = String::new();
        let mut http = String::new();
        use std::io::BufRead;
        while !line.starts_with("Listening on /ip4/127.0.0.1") {
            line.clear();
            if out.read_line(&mut line)? == 0 {
                bail!("node {id} exited");
            }
            if let Some(rest) = line.strip_prefix("HTTP API and explorer on ") {
                http = rest.split('/').take(3).collect::<Vec<_>>().join("/");
            }
        }
        // Keep reading, so the node never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        Ok((
            child,
            line.trim().trim_start_matches("Listening on ").to_string(),
            http,
        ))
    };
    let (mut a, addr, _) = start(&a_id, &["--listen", &format!("/ip4/127.0.0.1/tcp/{port}")])?;
    let want = chain.last().expect("non-empty").hash();
    // One honest sync from nothing; returns its time and the syncing
    // node's peak resident memory in KiB. The tip is watched by asking the
    // node's status over the protocol, which costs the node next to nothing
    // (opening its store read-only would replay its write-ahead log).
    let hashes: Vec<String> = chain.iter().map(|b| b.hash().to_string()).collect();
    let sync_once = |src: &str,
                     want: chain_core::BlockHash,
                     name: &str,
                     clients: usize,
                     nice: Priority,
                     askers: usize|
     -> Result<(f64, u64, Load)> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let t = Instant::now();
        let (mut child, b_addr, http) = start(
            name,
            &[
                "--listen",
                &format!("/ip4/127.0.0.1/tcp/{port}"),
                "--dest",
                src,
            ],
        )?;
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let hammers: Vec<_> = (0..clients)
            .map(|i| {
                let (stop, http, hashes) = (stop.clone(), http.clone(), hashes.clone());
                std::thread::spawn(move || {
                    client_priority(nice);
                    hammer(&http, &hashes, i, &stop)
                })
            })
            .collect();
        // Peers asking for the watched address's coins, each as fast as
        // the node's per-peer rate limit lets it.
        let asking: Vec<_> = (0..askers)
            .map(|_| {
                let (stop, b_addr) = (stop.clone(), b_addr.clone());
                std::thread::spawn(move || {
                    // As peers on other machines would, they take only the
                    // CPU time the nodes leave (their runtime's threads
                    // inherit the class).
                    client_priority(Priority::Idle);
                    ask_coins(&b_addr, watched, &stop)
                })
            })
            .collect();
        let watcher = e2e_tests::TestPeer::connect(&b_addr);
        let deadline = Instant::now() + Duration::from_secs(1800);
        while watcher.status().map(|s| s.best_hash) != Ok(want) {
            if Instant::now() > deadline {
                bail!("sync did not finish");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let took = t.elapsed().as_secs_f64();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut load = Load::default();
        for h in hammers {
            load.merge(
                h.join()
                    .map_err(|_| anyhow::anyhow!("client thread panicked"))?,
            );
        }
        for a in asking {
            load.merge(
                a.join()
                    .map_err(|_| anyhow::anyhow!("asking thread panicked"))?,
            );
        }
        let peak = peak_rss_kib(child.id());
        drop(watcher);
        let _ = child.kill();
        let _ = child.wait();
        Ok((took, peak, load))
    };
    if sync_only {
        let mut plain = Vec::new();
        let mut peak = 0;
        for i in 0..repeat {
            let (took, p, _) =
                sync_once(&addr, want, &format!("{b_id}{i}"), 0, Priority::Normal, 0)?;
            plain.push(took);
            peak = u64::max(peak, p);
        }
        // The first 2,000 blocks from a second source, for the memory
        // that grows with the chain's length.
        let prefix = if chain.len() > PREFIX_BLOCKS + 1 {
            let p_port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let p_id = format!("{a_id}p");
            {
                let mut store =
                    ChainStore::create(&dir.path().join(format!("blocks_{p_id}")), &chain[0])?;
                for b in &chain[1..=PREFIX_BLOCKS] {
                    store.accept_block(b, chain_store::unix_now())?;
                }
            }
            let (mut p_node, p_addr, _) = start(
                &p_id,
                &["--listen", &format!("/ip4/127.0.0.1/tcp/{p_port}")],
            )?;
            let (took, p_peak, _) = sync_once(
                &p_addr,
                chain[PREFIX_BLOCKS].hash(),
                &format!("{port}q"),
                0,
                Priority::Normal,
                0,
            )?;
            let _ = p_node.kill();
            let _ = p_node.wait();
            Some((took, p_peak))
        } else {
            None
        };
        let _ = a.kill();
        let _ = a.wait();
        print_rates(&Rates {
            blocks: chain.len(),
            txs: total_txs,
            per_block,
            imports: &imports,
            syncs: &plain,
            sig_rates: &sig_rates,
        });
        println!(
            "syncing node's peak resident memory: {} MiB ({} blocks)",
            peak / 1024,
            chain.len()
        );
        if let Some((took, p_peak)) = prefix {
            println!(
                "syncing node's peak resident memory: {} MiB ({} blocks, synced in {took:.2} s); ratio {:.2}",
                p_peak / 1024,
                PREFIX_BLOCKS + 1,
                peak as f64 / p_peak.max(1) as f64
            );
        }
        return Ok(());
    }
    // The plain sync and the sync under niced clients are each run REPEAT
    // times, in turn, and their medians compared: one run varies by several
    // per cent on a busy 2-core machine.
    let (mut plain, mut niced, mut idle, mut asked) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut load_asked = Load::default();
    let mut sync_peak = 0;
    let (mut load_niced, mut load_idle) = (Load::default(), Load::default());
    for i in 0..repeat {
        let (took, peak, _) =
            sync_once(&addr, want, &format!("{b_id}{i}"), 0, Priority::Normal, 0)?;
        plain.push(took);
        sync_peak = sync_peak.max(peak);
        let (took, _, load) = sync_once(
            &addr,
            want,
            &format!("{port}n{i}"),
            clients,
            Priority::Nice19,
            0,
        )?;
        niced.push(took);
        load_niced.merge(load);
        let (took, _, load) = sync_once(
            &addr,
            want,
            &format!("{port}i{i}"),
            clients,
            Priority::Idle,
            0,
        )?;
        idle.push(took);
        load_idle.merge(load);
        let (took, _, load) =
            sync_once(&addr, want, &format!("{port}u{i}"), 0, Priority::Normal, 4)?;
        asked.push(took);
        load_asked.merge(load);
    }
    let sync = median(&mut plain);
    let loaded_niced = median(&mut niced);
    let niced_total: f64 = niced.iter().sum();
    let loaded_idle = median(&mut idle);
    let idle_total: f64 = idle.iter().sum();
    let loaded_asked = median(&mut asked);
    let (loaded, _, load) = sync_once(
        &addr,
        want,
        &format!("{port}h"),
        clients,
        Priority::Normal,
        0,
    )?;

    // The same sync while a peer floods the source with junk frames and
    // blocks that fail proof of work, from a new identity each time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let (stop, addr) = (stop.clone(), addr.clone());
        let tip = chain.last().expect("non-empty").clone();
        std::thread::spawn(move || {
            let target = tip.header.bits.to_target().expect("valid bits");
            let mut rounds = 0u64;
            let mut nonce = tip.header.nonce;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = e2e_tests::send_junk(&addr, e2e_tests::garbage_frame(rounds as u8));
                let _ = e2e_tests::send_junk(&addr, e2e_tests::oversized_frame());
                let mut bad = tip.clone();
                loop {
                    nonce = nonce.wrapping_add(1);
                    bad.header.nonce = nonce;
                    if !target.is_met_by(&bad.header.hash()) {
                        break;
                    }
                }
                let peer = e2e_tests::TestPeer::connect(&addr);
                let _ = peer.publish(p2p_proto::Announcement::Block((&bad).into()));
                rounds += 1;
            }
            rounds
        })
    };
    let (flooded, _, _) = sync_once(&addr, want, &format!("{port}c"), 0, Priority::Normal, 0)?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = flood
        .join()
        .map_err(|_| anyhow::anyhow!("flood thread panicked"))?;
    let _ = a.kill();
    let _ = a.wait();
    print_rates(&Rates {
        blocks: chain.len(),
        txs: total_txs,
        per_block,
        imports: &imports,
        syncs: &plain,
        sig_rates: &sig_rates,
    });
    println!(
        "network sync under a flood: {flooded:.2} s ({rounds} flood rounds of 2 junk frames and 1 invalid block); flooded/plain ratio: {:.2}",
        flooded / sync
    );
    for (took, load, busy, how) in [
        (loaded, load, loaded, "at normal priority, once".to_string()),
        (
            loaded_niced,
            load_niced,
            niced_total,
            format!("at nice 19, median of {repeat} (runs: {})", runs(&niced)),
        ),
        (
            loaded_idle,
            load_idle,
            idle_total,
            format!(
                "in the idle scheduling class, median of {repeat} (runs: {})",
                runs(&idle)
            ),
        ),
    ] {
        let mut lat = load.latencies;
        lat.sort_unstable();
        let p99 = lat
            .get((lat.len() * 99 / 100).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default();
        println!(
            "network sync while {clients} clients hammer its HTTP API, the clients {how}: {took:.2} s; loaded/plain ratio: {:.2} ({:+.1}%)",
            took / sync,
            (took / sync - 1.0) * 100.0
        );
        println!(
            "  API during that sync: {} requests ({:.0}/s), p99 latency {:.1} ms, {} errors (half /api/status, half /api/block/:hash)",
            lat.len(),
            lat.len() as f64 / busy,
            p99.as_secs_f64() * 1000.0,
            load.errors
        );
        for (kind, n) in &load.kinds {
            println!("    {n} x {kind}");
        }
    }
    println!(
        "network sync while 4 peers ask for the coins of an address with {WATCHED_COINS} (GetUtxos), median of {repeat} (runs: {}): {loaded_asked:.2} s; asked/plain ratio: {:.2} ({:+.1}%)",
        runs(&asked),
        loaded_asked / sync,
        (loaded_asked / sync - 1.0) * 100.0
    );
    {
        let n = load_asked.latencies.len();
        let mut lat = load_asked.latencies.clone();
        lat.sort_unstable();
        let p99 = lat
            .get((n * 99 / 100).min(n.saturating_sub(1)))
            .copied()
            .unwrap_or_default();
        println!(
            "  GetUtxos during that sync: {n} answers, p99 latency {:.1} ms, {} errors",
            p99.as_secs_f64() * 1000.0,
            load_asked.errors
        );
        for (kind, n) in &load_asked.kinds {
            println!("    {n} x {kind}");
        }
    }
    println!(
        "syncing node's peak resident memory: {} MiB",
        sync_peak / 1024
    );
    Ok(())
}

/// Verifications per second of the chain's own signatures, on every core
/// (rayon), as the limit for importing them. Blocks after the first spend
/// one coin of the paying key each, for its whole value, so the spent
/// output of each input is its transaction's first output.
fn signature_rate(chain: &[Block]) -> f64 {
    let jobs: Vec<([u8; 32], &[u8], &[u8])> = chain
        .iter()
        .skip(2)
        .flat_map(|b| b.transactions.iter().skip(1))
        // The payments; the watched address's fan-outs spend other coins.
        .filter(|tx| tx.outputs.len() == 1)
        .map(|tx| {
            let msg = Transaction::sighash(&tx.sighash_common(), 0, &tx.outputs[0]);
            let input = &tx.inputs[0];
            (msg, input.pubkey.as_slice(), input.signature.as_slice())
        })
        .take(50_000)
        .collect();
    let t = Instant::now();
    let verified = jobs
        .par_iter()
        .filter(|(m, k, s)| chain_core::keys::verify_signature(k, m, s).is_ok())
        .count();
    assert_eq!(
        verified,
        jobs.len(),
        "every signature of the chain verifies"
    );
    verified as f64 / t.elapsed().as_secs_f64()
}

/// Asks the node at `addr` for `watched`'s coins until `stop`, from one
/// new peer, as fast as the node's rate limit lets it.
fn ask_coins(addr: &str, watched: chain_core::PubkeyHash, stop: &AtomicBool) -> Load {
    let peer = e2e_tests::TestPeer::connect(addr);
    let mut load = Load::default();
    let pace = Duration::from_secs_f64(1.0 / p2p_net::REQUESTS_PER_SEC as f64);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let t = Instant::now();
        let kind = match peer.request(p2p_proto::Request::GetUtxos {
            pubkey_hash: watched,
        }) {
            Ok(p2p_proto::Response::Utxos { utxos, .. }) => {
                load.latencies.push(t.elapsed());
                if utxos.len() >= p2p_proto::MAX_UTXOS {
                    "answers holding the cap of coins"
                } else {
                    "answers holding fewer coins (before the sync reached them)"
                }
            }
            Ok(p2p_proto::Response::Error { reason }) if reason.contains("rate limited") => {
                "refused by the rate limit"
            }
            Ok(p2p_proto::Response::Error { reason }) => {
                load.errors += 1;
                *load.kinds.entry(format!("error: {reason}")).or_default() += 1;
                continue;
            }
            other => {
                load.errors += 1;
                let what = match other {
                    Err(e) => format!("failed: {e}"),
                    Ok(r) => format!("unexpected answer: {r:?}"),
                };
                *load.kinds.entry(what).or_default() += 1;
                continue;
            }
        };
        *load.kinds.entry(kind.to_string()).or_default() += 1;
        std::thread::sleep(pace.saturating_sub(t.elapsed()));
    }
    load
}

/// Peak resident memory of process `pid` in KiB (0 when unknown).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The client threads' scheduling priority.
#[derive(Clone, Copy)]
enum Priority {
    /// As the nodes': the clients compete with them for the cores.
    Normal,
    /// Nice 19: the clients take little of what the nodes want.
    Nice19,
    /// Linux's SCHED_IDLE: the clients run only on CPU time the nodes leave,
    /// as clients on other machines would.
    Idle,
}

fn client_priority(p: Priority) {
    use thread_priority::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadPriority, ThreadSchedulePolicy,
    };
    match p {
        Priority::Normal => {}
        // Linux: the calling thread's own priority.
        Priority::Nice19 => {
            let _ = rustix::process::nice(19);
        }
        Priority::Idle => {
            let _ = set_thread_priority_and_policy(
                thread_native_id(),
                ThreadPriority::Min,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
            );
        }
    }
}

/// What the import, the plain sync and the signature checks measured.
struct Rates<'a> {
    blocks: usize,
    txs: usize,
    per_block: usize,
    /// Seconds of each import, each sync, and signatures a second of each
    /// check, in the order they ran.
    imports: &'a [f64],
    syncs: &'a [f64],
    sig_rates: &'a [f64],
}

/// Prints the chain, the import and sync rates (medians) and their ratios
/// to each other and to the signature rate.
fn print_rates(r: &Rates<'_>) {
    let import = median(&mut r.imports.to_vec());
    let sync = median(&mut r.syncs.to_vec());
    let sig_rate = median(&mut r.sig_rates.to_vec());
    let (blocks, txs) = (r.blocks as f64, r.txs as f64);
    println!(
        "chain: {} blocks, {} transactions ({} per block)",
        r.blocks, r.txs, r.per_block
    );
    println!(
        "local import: {import:.2} s, {:.0} blocks/s, {:.0} tx/s (median of {} runs: {})",
        blocks / import,
        txs / import,
        r.imports.len(),
        runs(r.imports)
    );
    println!(
        "network sync: {sync:.2} s, {:.0} blocks/s, {:.0} tx/s (fresh node, from process start; median of {} runs: {})",
        blocks / sync,
        txs / sync,
        r.syncs.len(),
        runs(r.syncs)
    );
    println!(
        "sync/import time ratio: {:.2}; network sync/local import rate ratio: {:.2}",
        sync / import,
        import / sync
    );
    println!(
        "parallel signature verification: {sig_rate:.0} signatures/s on all cores (median of {} runs, each after an import: {}); local import/verification ratio: {:.2}",
        r.sig_rates.len(),
        r.sig_rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        (txs / import) / sig_rate
    );
}

/// The median of `v` (sorted in place).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn runs(v: &[f64]) -> String {
    v.iter()
        .map(|t| format!("{t:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a client thread measured.
#[derive(Default)]
struct Load {
    latencies: Vec<Duration>,
    errors: usize,
    /// Requests by kind of answer (for the HTTP clients, errors by kind: an
    /// HTTP status, or the client's error).
    kinds: std::collections::BTreeMap<String, usize>,
}

impl Load {
    fn merge(&mut self, other: Load) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        for (k, n) in other.kinds {
            *self.kinds.entry(k).or_default() += n;
        }
    }
}

/// Asks `http` (a node's API) for its status and for blocks of the chain,
/// in turn, as fast as it answers, until `stop`.
fn hammer(http: &str, hashes: &[String], seed: usize, stop: &AtomicBool) -> Load {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut load = Load::default();
    let mut i = seed;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let url = if i.is_multiple_of(2) {
            format!("{http}/api/status")
        } else {
            format!("{http}/api/block/{}", hashes[(i >> 33) % hashes.len()])
        };
        let t = Instant::now();
        match agent.get(&url).call() {
            // A block the syncing node does not have yet is a fine 404.
            Ok(mut r) if r.status().as_u16() < 500 => {
                let _ = r.body_mut().read_to_vec();
                load.latencies.push(t.elapsed());
            }
            Ok(mut r) => {
                load.errors += 1;
                let body = r.body_mut().read_to_string().unwrap_or_default();
                let kind = format!("{} {}", r.status(), body.trim());
                *load.kinds.entry(kind).or_default() += 1;
            }
            Err(e) => {
                load.errors += 1;
                *load.kinds.entry(e.to_string()).or_default() += 1;
            }
        }
    }
    load
}
