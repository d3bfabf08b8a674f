//! chain-core benchmarks: mining hash rate on one thread and on all threads,
//! signature verifications per second, and validating a block of 1,000
//! transactions. They measure; they assert nothing.

#![allow(clippy::unwrap_used)]
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use chain_core::keys::{verify_signature, PrivateKey};
use chain_core::miner::search_range;
use chain_core::test_utils::{child, easy_params, genesis, spend};
use chain_core::validation::{check_block, connect_block, Coin};
use chain_core::{
    Amount, BlockHeader, CompactTarget, OutPoint, PubkeyHash, Transaction, TxOut, Txid,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::collections::HashMap;

const PER_THREAD: u64 = 200_000;

fn mining(c: &mut Criterion) {
    // A target no hash meets, so every call tries exactly threads * PER_THREAD nonces.
    let mut h = BlockHeader::from_bytes(&[7u8; 92]);
    h.bits = CompactTarget(0x0300_0001);
    let all = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut g = c.benchmark_group("mining");
    g.sample_size(10);
    for threads in [1, all] {
        g.throughput(Throughput::Elements(PER_THREAD * threads as u64));
        g.bench_function(format!("hashes, {threads} thread(s)"), |b| {
            b.iter(|| assert!(search_range(&h, threads, PER_THREAD).is_none()))
        });
    }
    g.finish();
}

/// The limit mining is measured against: SHA-256 compressions per second on
/// one thread, one 64-byte block per call, each call on the last one's
/// state (a nonce costs two of them).
fn sha256_limit(c: &mut Criterion) {
    use sha2::digest::generic_array::GenericArray;
    const CALLS: u64 = 1_000_000;
    let block = GenericArray::clone_from_slice(&[7u8; 64]);
    let mut g = c.benchmark_group("sha256");
    g.sample_size(10);
    g.throughput(Throughput::Elements(CALLS));
    g.bench_function("compressions, 1 thread", |b| {
        b.iter(|| {
            let mut state = [0x6a09_e667u32; 8];
            for _ in 0..CALLS {
                sha2::compress256(&mut state, std::slice::from_ref(&block));
            }
            state
        })
    });
    g.finish();
}

fn signatures(c: &mut Criterion) {
    let k = PrivateKey::generate();
    let msg = [5u8; 32];
    let sig = k.sign(&msg);
    let pk = k.public_key().to_compressed();
    let mut g = c.benchmark_group("signatures");
    g.throughput(Throughput::Elements(1));
    g.bench_function("verify", |b| {
        b.iter(|| verify_signature(&pk, &msg, &sig).unwrap())
    });
    g.finish();
}

fn block_of_1000(c: &mut Criterion) {
    let params = easy_params();
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    let g = genesis(&params, pkh);
    let mut utxo: HashMap<OutPoint, Coin> = HashMap::new();
    let mut txs: Vec<Transaction> = Vec::with_capacity(1000);
    for i in 0..1000u32 {
        let mut t = [0u8; 32];
        t[..4].copy_from_slice(&i.to_be_bytes());
        let op = OutPoint {
            txid: Txid(t),
            vout: 0,
        };
        let out = TxOut {
            value: Amount(50),
            pubkey_hash: pkh,
        };
        utxo.insert(
            op,
            Coin {
                output: out,
                height: 0,
                is_coinbase: false,
            },
        );
        txs.push(spend(
            &key,
            &[(op, out)],
            PubkeyHash([9; 20]),
            Amount(49),
            Amount(1),
        ));
    }
    let block = child(&params, &g.header, txs, Amount(1000), pkh);
    let mut grp = c.benchmark_group("block-validation");
    grp.sample_size(10);
    grp.throughput(Throughput::Elements(1000));
    grp.bench_function("check + connect, 1000 txs", |b| {
        b.iter(|| {
            let checked = check_block(&block).unwrap();
            connect_block(&checked, &params, &utxo).unwrap()
        })
    });
    grp.finish();
}

criterion_group!(benches, mining, sha256_limit, signatures, block_of_1000);
criterion_main!(benches);
