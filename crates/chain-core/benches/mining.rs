//! Benchmarks of the hot paths: header hashing with and without the midstate,
//! and full validation of a block of 50 signed transactions.

#![allow(clippy::unwrap_used)]
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use chain_core::address::PubkeyHash;
use chain_core::amount::Amount;
use chain_core::block::BlockHeader;
use chain_core::keys::PrivateKey;
use chain_core::test_utils::{child, easy_params, genesis, outputs_of, spend};
use chain_core::validation::{check_block, connect_block, Coin};
use chain_core::{OutPoint, Transaction};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

fn hashing(c: &mut Criterion) {
    let h = BlockHeader::from_bytes(&[7u8; 92]);
    let mut g = c.benchmark_group("header-hash");
    g.throughput(Throughput::Elements(1));
    g.bench_function("full sha256d", |b| {
        let mut n = 0u64;
        b.iter(|| {
            let mut x = h;
            x.nonce = n;
            n += 1;
            x.hash()
        })
    });
    g.bench_function("midstate", |b| {
        let mid = h.midstate();
        let mut tail: [u8; 28] = h.to_bytes()[64..].try_into().unwrap();
        let mut n = 0u64;
        b.iter(|| {
            tail[20..].copy_from_slice(&n.to_le_bytes());
            n += 1;
            let mut s = mid.clone();
            s.update(tail);
            Sha256::digest(s.finalize())
        })
    });
    g.finish();
}

fn validation(c: &mut Criterion) {
    let params = easy_params();
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    // Fund 50 coins, then a block with 50 independent spends.
    let g = genesis(&params, pkh);
    let mut utxo: HashMap<OutPoint, Coin> = HashMap::new();
    let fund = spend(
        &key,
        &outputs_of(&g.transactions[0]),
        pkh,
        Amount(1),
        Amount(0),
    );
    let mut tip = child(&params, &g.header, vec![], Amount(0), pkh);
    let mut fan: Vec<Transaction> = vec![];
    let mut coins = outputs_of(&fund);
    let funding = child(&params, &tip.header, vec![fund.clone()], Amount(0), pkh);
    tip = funding;
    // Split the 20-coin output into many 1-coin outputs over a few steps.
    let mut pool = coins.split_off(0);
    while pool.len() < 50 {
        let c = pool.pop().unwrap();
        if c.1.value.0 < 2 {
            pool.insert(0, c);
            continue;
        }
        let t = spend(&key, &[c], pkh, Amount(1), Amount(0));
        pool.extend(outputs_of(&t));
        fan.push(t);
    }
    let setup = child(&params, &tip.header, fan.clone(), Amount(0), pkh);
    for tx in std::iter::once(&g.transactions[0]).chain(&fan) {
        for (op, o) in outputs_of(tx) {
            utxo.insert(
                op,
                Coin {
                    output: o,
                    height: 1,
                    is_coinbase: false,
                },
            );
        }
        for i in &tx.inputs {
            utxo.remove(&i.prevout);
        }
    }
    for (op, o) in outputs_of(&fund) {
        utxo.insert(
            op,
            Coin {
                output: o,
                height: 1,
                is_coinbase: false,
            },
        );
    }
    utxo.retain(|op, _| pool.iter().any(|p| p.0 == *op));
    let txs: Vec<Transaction> = pool
        .iter()
        .take(50)
        .map(|c| spend(&key, &[*c], PubkeyHash([1; 20]), c.1.value, Amount(0)))
        .collect();
    let block = child(&params, &setup.header, txs, Amount(0), pkh);
    let mut grp = c.benchmark_group("block-validation");
    grp.throughput(Throughput::Elements(50));
    grp.bench_function("check+connect 50 txs", |b| {
        b.iter(|| {
            check_block(&block).unwrap();
            connect_block(&block, &params, &utxo).unwrap()
        })
    });
    grp.finish();
}

criterion_group!(benches, hashing, validation);
criterion_main!(benches);
