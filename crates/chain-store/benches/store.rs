//! chain-store benchmarks: connecting blocks (transactions per second) and
//! `getbalance` latency with 10,000 and 100,000 coins in the UTXO set, which
//! should be about the same because balances read one address-index prefix.
//! A relayed block of 1,000 payments the mempool already holds (the
//! signature cache spares their checks), connected, then the mempool's
//! update for it: what every node does for each block it is relayed.
//! They measure; they assert nothing.

#![allow(clippy::unwrap_used)]
#![allow(missing_docs)]

use chain_core::block::ChainParams;
use chain_core::keys::PrivateKey;
use chain_core::pow::POW_LIMIT_BITS;
use chain_core::test_utils::{child, genesis, outputs_of, spend};
use chain_core::{
    Amount, Block, Mempool, MempoolConfig, PubkeyHash, ReceivedBlock, Transaction, TxOut,
};
use chain_store::ChainStore;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::{Duration, Instant};

const NOW: u64 = u64::MAX / 4;

fn params() -> ChainParams {
    ChainParams {
        initial_bits: POW_LIMIT_BITS,
        reward: Amount(1_000_000_000),
        ..ChainParams::default()
    }
}

/// A genesis and a payment that splits its coin into 1,000 of 1,000,000.
struct Fan {
    key: PrivateKey,
    pkh: PubkeyHash,
    g: Block,
    fan: Transaction,
}

impl Fan {
    fn new(p: &ChainParams) -> Fan {
        let key = PrivateKey::generate();
        let pkh = key.public_key().pubkey_hash();
        let g = genesis(p, pkh);
        let coin = outputs_of(&g.transactions[0]);
        let mut fan = spend(&key, &coin, pkh, Amount(1), Amount(0));
        fan.outputs = (0..1000)
            .map(|_| TxOut {
                value: Amount(1_000_000),
                pubkey_hash: pkh,
            })
            .collect();
        fan.sign_all(&[coin[0].1], &[&key]);
        Fan { key, pkh, g, fan }
    }
}

fn connect(c: &mut Criterion) {
    let p = params();
    let Fan { key, pkh, g, fan } = Fan::new(&p);
    let coins = outputs_of(&fan);
    let b1 = child(&p, &g.header, vec![fan], Amount(0), pkh);
    let mut blocks: Vec<Block> = Vec::new();
    let mut parent = b1.header;
    for chunk in coins.chunks(200) {
        let txs: Vec<Transaction> = chunk
            .iter()
            .map(|c| spend(&key, &[*c], PubkeyHash([3; 20]), c.1.value, Amount(0)))
            .collect();
        let b = child(&p, &parent, txs, Amount(0), pkh);
        parent = b.header;
        blocks.push(b);
    }
    let mut grp = c.benchmark_group("connect");
    grp.sample_size(10);
    grp.throughput(Throughput::Elements(1000));
    grp.bench_function("5 blocks of 200 transactions", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let mut s = ChainStore::create(&dir.path().join("c"), &g).unwrap();
                s.accept_block(&b1, NOW).unwrap();
                let t = Instant::now();
                for blk in &blocks {
                    s.accept_block(blk, NOW).unwrap();
                }
                total += t.elapsed();
            }
            total
        })
    });
    grp.finish();
}

/// A store whose UTXO set holds about `coins` coins, 5 of them paying `target`.
fn store_with(coins: usize, target: PubkeyHash, dir: &std::path::Path) -> ChainStore {
    let p = params();
    let key = PrivateKey::generate();
    let g = genesis(&p, key.public_key().pubkey_hash());
    let mut s = ChainStore::create(&dir.join("c"), &g).unwrap();
    let mut parent = g.header;
    let mut made = 0usize;
    let mut n = 0u64;
    while made < coins {
        let mut b = child(&p, &parent, vec![], Amount(0), target);
        let cb = &mut b.transactions[0];
        cb.outputs.clear();
        if made == 0 {
            cb.outputs.extend((0..5).map(|_| TxOut {
                value: Amount(7),
                pubkey_hash: target,
            }));
        }
        while cb.outputs.len() < 3000 && made + cb.outputs.len() < coins {
            n += 1;
            let mut h = [0u8; 20];
            h[..8].copy_from_slice(&n.to_be_bytes());
            cb.outputs.push(TxOut {
                value: Amount(1),
                pubkey_hash: PubkeyHash(h),
            });
        }
        made += cb.outputs.len();
        chain_core::test_utils::remine(&mut b);
        s.accept_block(&b, NOW).unwrap();
        parent = b.header;
    }
    s
}

fn getbalance(c: &mut Criterion) {
    let target = PubkeyHash([0x42; 20]);
    let mut grp = c.benchmark_group("getbalance");
    for coins in [10_000usize, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let s = store_with(coins, target, dir.path());
        assert_eq!(s.balance(&target).unwrap(), Amount(35));
        grp.bench_function(format!("{coins} coins in the UTXO set"), |b| {
            b.iter(|| s.balance(&target).unwrap())
        });
    }
    grp.finish();
}

/// Connecting a block of 1,000 payments whose signatures the mempool
/// has checked, and the mempool's update for it, on a fresh store each time.
fn relayed(c: &mut Criterion) {
    let p = params();
    let Fan { key, pkh, g, fan } = Fan::new(&p);
    let b1 = child(&p, &g.header, vec![fan.clone()], Amount(0), pkh);
    let fee = Amount(10_000);
    let payments: Vec<Transaction> = outputs_of(&fan)
        .iter()
        .map(|c| {
            spend(
                &key,
                &[*c],
                PubkeyHash([3; 20]),
                Amount(c.1.value.0 - fee.0),
                fee,
            )
        })
        .collect();
    let b2 = child(&p, &b1.header, payments.clone(), Amount(fee.0 * 1000), pkh);
    let fresh = || {
        let dir = tempfile::tempdir().unwrap();
        let mut s = ChainStore::create(&dir.path().join("c"), &g).unwrap();
        s.accept_block(&b1, NOW).unwrap();
        let mut pool = Mempool::new(MempoolConfig::default());
        for tx in &payments {
            pool.accept(tx.clone(), &s, NOW).unwrap();
        }
        (dir, s, pool)
    };
    let mut grp = c.benchmark_group("relayed block");
    grp.sample_size(10);
    grp.throughput(Throughput::Elements(1000));
    grp.bench_function("connect 1,000 payments the mempool holds", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_dir, mut s, pool) = fresh();
                let t = Instant::now();
                s.accept_block_with(ReceivedBlock::new(b2.clone()), NOW, false, &pool)
                    .unwrap();
                s.wait_written().unwrap();
                total += t.elapsed();
            }
            total
        })
    });
    grp.bench_function("the mempool's update for it", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (_dir, mut s, mut pool) = fresh();
                let update = match s
                    .accept_block_with(ReceivedBlock::new(b2.clone()), NOW, false, &pool)
                    .unwrap()
                {
                    chain_store::Accepted::NewTip(u) => u,
                    other => panic!("not connected: {other:?}"),
                };
                let t = Instant::now();
                pool.update_for_chain(update.returned_transactions(), &update.connected, &s, NOW);
                total += t.elapsed();
                assert!(pool.is_empty());
            }
            total
        })
    });
    grp.finish();
}

criterion_group!(benches, connect, getbalance, relayed);
criterion_main!(benches);
