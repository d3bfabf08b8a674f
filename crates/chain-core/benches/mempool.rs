//! Mempool benchmarks against a pool that already holds 100,000
//! transactions: accepting more, the update for a block of 1,000 of them,
//! and building a block template. They measure; they assert nothing.

#![allow(clippy::unwrap_used)]
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use chain_core::test_utils::{easy_params, genesis, spend};
use chain_core::validation::Coin;
use chain_core::{
    Amount, Block, Mempool, MempoolConfig, OutPoint, PrivateKey, PubkeyHash, Transaction, TxOut,
    Txid,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rayon::prelude::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const POOL: usize = 100_000;
const EXTRA: usize = 20_000;

fn setup() -> (HashMap<OutPoint, Coin>, Vec<Transaction>, Mempool) {
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    let coins: Vec<(OutPoint, TxOut)> = (0..(POOL + EXTRA) as u32)
        .map(|i| {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_le_bytes());
            t[31] = 1;
            (
                OutPoint {
                    txid: Txid(t),
                    vout: 0,
                },
                TxOut {
                    value: Amount(10_000),
                    pubkey_hash: pkh,
                },
            )
        })
        .collect();
    let utxo: HashMap<OutPoint, Coin> = coins
        .iter()
        .map(|(op, out)| {
            (
                *op,
                Coin {
                    output: *out,
                    height: 1,
                    is_coinbase: false,
                },
            )
        })
        .collect();
    // Fees from 1 to 100, so templates have something to sort.
    let txs: Vec<Transaction> = coins
        .par_iter()
        .enumerate()
        .map(|(i, c)| {
            spend(
                &key,
                &[*c],
                PubkeyHash([9; 20]),
                Amount(1),
                Amount(1 + (i % 100) as u64),
            )
        })
        .collect();
    let mut pool = Mempool::new(MempoolConfig {
        max_bytes: 1 << 30,
        ..MempoolConfig::default()
    });
    for tx in &txs[..POOL] {
        pool.accept(tx.clone(), &utxo, 0).unwrap();
    }
    (utxo, txs, pool)
}

fn mempool(c: &mut Criterion) {
    let t = Instant::now();
    let (utxo, txs, pool) = setup();
    eprintln!(
        "built a pool of {} transactions in {:.1} s",
        pool.len(),
        t.elapsed().as_secs_f64()
    );
    let mut g = c.benchmark_group("mempool");
    g.sample_size(10);

    g.bench_function("accept one into a pool of 100,000", |b| {
        b.iter_custom(|iters| {
            let mut p = pool.clone();
            let mut took = Duration::ZERO;
            for i in 0..iters as usize {
                let tx = txs[POOL + i % EXTRA].clone();
                if i > 0 && i % EXTRA == 0 {
                    p = pool.clone();
                }
                let t = Instant::now();
                p.accept(tx, &utxo, 0).unwrap();
                took += t.elapsed();
            }
            took
        })
    });

    let g0 = genesis(&easy_params(), PubkeyHash([1; 20]));
    let block = Block {
        header: g0.header,
        transactions: std::iter::once(g0.transactions[0].clone())
            .chain(txs[..1_000].iter().cloned())
            .collect(),
    };
    let mut after = utxo.clone();
    for tx in &txs[..1_000] {
        after.remove(&tx.inputs[0].prevout);
    }
    let checked = chain_core::test_utils::checked(&block);
    g.bench_function("update for a block of 1,000 pool transactions", |b| {
        b.iter_batched(
            || pool.clone(),
            |mut p| p.update_for_chain(vec![], std::slice::from_ref(&checked), &after, 1),
            BatchSize::LargeInput,
        )
    });

    g.bench_function("block template from a pool of 100,000", |b| {
        b.iter(|| pool.block_template())
    });
    g.finish();
}

criterion_group!(benches, mempool);
criterion_main!(benches);
