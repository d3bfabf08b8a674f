//! The mempool at its default cap (64 MiB, about 380,000 one-input
//! payments), against the targets its documentation gives. A bench program
//! that prints figures; it asserts nothing. Run with
//! `cargo bench -p chain-core --bench mempool_full`.
//!
//! Figures printed:
//! - admitting a payment that evicts one package (p50, p99);
//! - a 100 kB payment that evicts about 500 packages;
//! - a one-block reorganisation that returns one transaction;
//! - the update for a block of 1,000 pool transactions;
//! - connecting a block of 1,000 pool transactions, cold and with the
//!   pool's signature cache, with the signatures each verified;
//! - the pool's unspent outputs of an address with 10 pool entries.

#![allow(clippy::unwrap_used)]
#![allow(missing_docs)]

use chain_core::test_utils::{checked, easy_params, genesis, made_up_coins, spend, utxo_of};
use chain_core::validation::{connect_block_with, Coin, NoCache};
use chain_core::{
    Amount, Block, Mempool, MempoolConfig, OutPoint, PrivateKey, PubkeyHash, Transaction, TxOut,
};
use rayon::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Coins of 10,000 each, owned by `key`, with ids from `from`.
fn coins(key: &PrivateKey, from: u32, n: u32) -> Vec<(OutPoint, TxOut)> {
    made_up_coins(key.public_key().pubkey_hash(), from, n, 10_000, 7)
}

fn add(utxo: &mut HashMap<OutPoint, Coin>, coins: &[(OutPoint, TxOut)]) {
    utxo.extend(utxo_of(coins));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let cfg = MempoolConfig::default();
    let key = PrivateKey::generate();
    let one = spend(
        &key,
        &coins(&key, 0, 1),
        PubkeyHash([9; 20]),
        Amount(1),
        Amount(1),
    );
    let n = (cfg.max_bytes / one.size() * 101 / 100) as u32;
    let t = Instant::now();
    let filler = coins(&key, 0, n);
    let mut utxo = HashMap::new();
    add(&mut utxo, &filler);
    // Fees 1 to 100 per payment; ten of them pay one watched address.
    let watched = PubkeyHash([42; 20]);
    let txs: Vec<Transaction> = filler
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            let to = if i % (n as usize / 10) == 5 {
                watched
            } else {
                let mut to = [0xee; 20];
                to[0] = (i % 251) as u8;
                PubkeyHash(to)
            };
            spend(&key, &[*c], to, Amount(1), Amount(1 + (i % 100) as u64))
        })
        .collect();
    let mut pool = Mempool::new(cfg);
    for tx in &txs {
        if pool.bytes() + 2 * one.size() > cfg.max_bytes {
            break;
        }
        pool.accept(tx.clone(), &utxo, 0).unwrap();
    }
    println!(
        "pool: {} transactions, {} bytes of {} ({:.1} s to build)",
        pool.len(),
        pool.bytes(),
        cfg.max_bytes,
        t.elapsed().as_secs_f64()
    );

    // 1. Newcomers that each evict one package: half with their signature
    // to verify, half with it already in the cache.
    let extra = coins(&key, n, 2_000);
    add(&mut utxo, &extra);
    let newcomers: Vec<Transaction> = extra[..1_000]
        .par_iter()
        .map(|c| spend(&key, &[*c], PubkeyHash([8; 20]), Amount(1), Amount(500)))
        .collect();
    let mut p = pool.clone();
    for (tx, c) in newcomers[500..].iter().zip(&extra[500..1_000]) {
        let coin = utxo[&c.0];
        p.signature_cache_mut().insert(&tx.txid(), &[coin]);
    }
    let before = p.work();
    let mut took: Vec<Duration> = newcomers
        .iter()
        .map(|tx| {
            let t = Instant::now();
            p.accept(tx.clone(), &utxo, 1).unwrap();
            t.elapsed()
        })
        .collect();
    let work = p.work();
    let mut warm = took.split_off(500);
    println!(
        "admit one payment evicting one package, signature verified: p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&mut took, 0.5)),
        ms(percentile(&mut took, 0.99)),
    );
    println!(
        "admit one payment evicting one package, signature excluded (cached): p50 {:.3} ms, p99 {:.3} ms ({} signatures verified and {} packages visited in 1,000 admissions)",
        ms(percentile(&mut warm, 0.5)),
        ms(percentile(&mut warm, 0.99)),
        work.signatures_verified - before.signatures_verified,
        work.eviction_visits - before.eviction_visits,
    );

    // 2. A 100 kB payment that evicts hundreds of packages.
    let big_coins = &extra[1_000..];
    let inputs = big_coins
        .iter()
        .take_while({
            let mut k = 0;
            move |_| {
                k += 1;
                k <= 700
            }
        })
        .copied()
        .collect::<Vec<_>>();
    let big = spend(
        &key,
        &inputs,
        PubkeyHash([8; 20]),
        Amount(1),
        Amount(1_000_000),
    );
    for cached in [false, true] {
        let mut p = pool.clone();
        if cached {
            let spent: Vec<Coin> = inputs.iter().map(|c| utxo[&c.0]).collect();
            p.signature_cache_mut().insert(&big.txid(), &spent);
        }
        let before = p.work();
        let t = Instant::now();
        let (_, dropped) = p.accept(big.clone(), &utxo, 1).unwrap();
        let d = t.elapsed();
        println!(
            "a {} byte payment evicting {} transactions{}: {:.1} ms ({} signatures verified, {} packages visited)",
            big.size(),
            dropped.len(),
            if cached { ", signatures cached" } else { "" },
            ms(d),
            p.work().signatures_verified - before.signatures_verified,
            p.work().eviction_visits - before.eviction_visits,
        );
    }

    // 3. A one-block reorganisation returning one transaction.
    let g = genesis(&easy_params(), PubkeyHash([1; 20]));
    let returned = newcomers[999].clone();
    let empty = checked(&Block {
        header: g.header,
        transactions: vec![g.transactions[0].clone()],
    });
    let mut p = pool.clone();
    let before = p.signatures_verified();
    let t = Instant::now();
    let dropped = p.update_for_chain(
        vec![g.transactions[0].clone(), returned],
        std::slice::from_ref(&empty),
        &utxo,
        2,
    );
    let d = t.elapsed();
    println!(
        "one-block reorganisation returning one transaction: {:.1} ms ({} signatures verified, {} dropped, pool {})",
        ms(d),
        p.signatures_verified() - before,
        dropped.len(),
        p.len()
    );

    // 4. The update for a block of 1,000 pool transactions.
    let in_pool: Vec<Transaction> = pool.transactions().take(1_000).cloned().collect();
    let block = checked(&Block {
        header: g.header,
        transactions: std::iter::once(g.transactions[0].clone())
            .chain(in_pool.iter().cloned())
            .collect(),
    });
    let mut after = utxo.clone();
    for tx in &in_pool {
        after.remove(&tx.inputs[0].prevout);
    }
    let mut took: Vec<Duration> = (0..5)
        .map(|_| {
            let mut p = pool.clone();
            let t = Instant::now();
            p.update_for_chain(vec![], std::slice::from_ref(&block), &after, 2);
            t.elapsed()
        })
        .collect();
    println!(
        "update for a block of 1,000 pool transactions: median {:.1} ms of 5",
        ms(percentile(&mut took, 0.5))
    );

    // 5. Connecting that block, cold and with the pool's cache.
    let params = easy_params();
    for (label, cached) in [("cold", false), ("with the pool's signature cache", true)] {
        let mut sigs = 0;
        let mut took: Vec<Duration> = (0..5)
            .map(|_| {
                let t = Instant::now();
                let changes = if cached {
                    connect_block_with(&block, &params, &utxo, &pool).unwrap()
                } else {
                    connect_block_with(&block, &params, &utxo, &NoCache).unwrap()
                };
                sigs = changes.signatures_verified;
                t.elapsed()
            })
            .collect();
        println!(
            "connect a block of 1,000 pool transactions, {label}: median {:.1} ms of 5 ({sigs} signatures verified)",
            ms(percentile(&mut took, 0.5))
        );
    }

    // 6. One address's pool outputs.
    let entries = pool.txids_for(&watched).len();
    let mut took: Vec<Duration> = (0..1_000)
        .map(|_| {
            let t = Instant::now();
            let out = pool.unspent_outputs_for(&watched, &utxo);
            let d = t.elapsed();
            assert_eq!(out.len(), entries);
            d
        })
        .collect();
    println!(
        "unspent outputs of an address with {entries} pool entries: p50 {:.4} ms, p99 {:.4} ms",
        ms(percentile(&mut took, 0.5)),
        ms(percentile(&mut took, 0.99))
    );

    // 7. A block template.
    let t = Instant::now();
    let (tpl, _) = pool.block_template();
    println!(
        "block template ({} transactions): {:.1} ms",
        tpl.len(),
        ms(t.elapsed())
    );
}
