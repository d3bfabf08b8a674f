//! Rebuilding a compact block of 1,000 payments from a mempool of 2,000
//! that holds them all: the rebuild (matching short ids), then finishing
//! the block (the Merkle check), the step every node takes before it
//! forwards the block. They measure; they assert nothing.

// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use chain_core::pow::CompactTarget;
use chain_core::{
    merkle_root, Amount, Block, BlockHash, BlockHeader, OutPoint, PubkeyHash, Transaction, TxIn,
    TxOut, Txid,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use p2p_proto::compact::{PartialBlock, Rebuild};
use p2p_proto::CompactBlock;

const BLOCK_TXS: u32 = 1_000;
const POOL_TXS: u32 = 2_000;

/// A payment of one input and two outputs, the size of a wallet's.
fn payment(i: u32) -> Transaction {
    let mut prev = [0u8; 32];
    prev[..4].copy_from_slice(&i.to_le_bytes());
    Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: OutPoint {
                txid: Txid(prev),
                vout: 0,
            },
            signature: vec![7; 71],
            pubkey: vec![2; 33],
        }],
        outputs: vec![
            TxOut {
                value: Amount(u64::from(i) + 1),
                pubkey_hash: PubkeyHash([1; 20]),
            },
            TxOut {
                value: Amount(1_000),
                pubkey_hash: PubkeyHash([2; 20]),
            },
        ],
    }
}

fn block() -> Block {
    let mut coinbase = payment(u32::MAX);
    coinbase.inputs.clear();
    let transactions: Vec<Transaction> = std::iter::once(coinbase)
        .chain((0..BLOCK_TXS).map(payment))
        .collect();
    let ids: Vec<Txid> = transactions.iter().map(Transaction::txid).collect();
    Block {
        header: BlockHeader {
            version: 1,
            prev: BlockHash([0x11; 32]),
            merkle_root: merkle_root(&ids),
            time: 1_700_000_000,
            bits: CompactTarget(0x1f00_ffff),
            height: 7,
            nonce: 42,
        },
        transactions,
    }
}

fn partial(r: Rebuild) -> PartialBlock {
    match r {
        Rebuild::Partial(p) => p,
        Rebuild::DuplicateIds => panic!("the bench's short ids are distinct"),
    }
}

fn bench(c: &mut Criterion) {
    let block = block();
    let Some(cb) = CompactBlock::of(&block, [3; 8]) else {
        panic!("the block has a coinbase");
    };
    let pool: Vec<(Txid, Transaction)> =
        (0..POOL_TXS).map(payment).map(|t| (t.txid(), t)).collect();
    let mut g = c.benchmark_group("compact block of 1,000 payments");
    g.bench_function("rebuild from a pool of 2,000", |b| {
        b.iter(|| cb.rebuild(pool.iter().map(|(id, t)| (id, t))))
    });
    let p = partial(cb.rebuild(pool.iter().map(|(id, t)| (id, t))));
    assert!(p.missing().is_empty(), "the pool holds the whole block");
    g.bench_function("finish (the Merkle check)", |b| {
        b.iter_batched(|| p.clone(), |p| p.finish(), BatchSize::LargeInput)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
