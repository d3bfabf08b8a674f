//! Helpers for building chains offline in tests. Only compiled for tests or
//! with the `test-utils` feature.

use crate::address::PubkeyHash;
use crate::amount::Amount;
use crate::block::{Block, BlockHeader, ChainParams};
use crate::keys::PrivateKey;
use crate::miner::{assemble_block, assemble_genesis, solve};
use crate::pow::POW_LIMIT_BITS;
use crate::transaction::{OutPoint, Transaction, TxIn, TxOut};
use std::sync::atomic::AtomicBool;

/// Parameters with the easiest difficulty, so tests mine instantly.
pub fn easy_params() -> ChainParams {
    ChainParams {
        initial_bits: POW_LIMIT_BITS,
        ..ChainParams::default()
    }
}

/// Time of test genesis blocks.
pub const GENESIS_TIME: u64 = 1_700_000_000;

/// A mined genesis paying `to`.
pub fn genesis(params: &ChainParams, to: PubkeyHash) -> Block {
    let mut g = assemble_genesis(params, to, GENESIS_TIME);
    assert!(
        solve(&mut g, 1, &AtomicBool::new(false), &mut |_| {}),
        "easy target"
    );
    g
}

/// A mined child of `parent` holding `txs` (fees assumed zero unless given), paying `to`, 60 s after the parent.
pub fn child(
    params: &ChainParams,
    parent: &BlockHeader,
    txs: Vec<Transaction>,
    fees: Amount,
    to: PubkeyHash,
) -> Block {
    child_with_extra(params, parent, txs, fees, to, 60)
}

/// Like [`child`] with a chosen time step (different steps give different blocks).
pub fn child_with_extra(
    params: &ChainParams,
    parent: &BlockHeader,
    txs: Vec<Transaction>,
    fees: Amount,
    to: PubkeyHash,
    step: u64,
) -> Block {
    let mut b = assemble_block(
        params,
        parent,
        parent.bits,
        parent.time + step,
        to,
        txs,
        fees,
    );
    assert!(
        solve(&mut b, 1, &AtomicBool::new(false), &mut |_| {}),
        "easy target"
    );
    b
}

/// `genesis` followed by `n` empty blocks paying `to`, each 60 s after its parent.
pub fn chain_of(params: &ChainParams, genesis: &Block, n: usize, to: PubkeyHash) -> Vec<Block> {
    let mut chain = Vec::with_capacity(n + 1);
    chain.push(genesis.clone());
    for _ in 0..n {
        let parent = chain[chain.len() - 1].header;
        chain.push(child(params, &parent, vec![], Amount::ZERO, to));
    }
    chain
}

/// Re-mines a block after its contents were changed, fixing the Merkle root first.
pub fn remine(block: &mut Block) {
    block.header.merkle_root = crate::block::merkle_root(&block.txids());
    assert!(
        solve(block, 1, &AtomicBool::new(false), &mut |_| {}),
        "easy target"
    );
}

/// A signed transaction spending `coins` (all owned by `key`), paying
/// `amount` to `to`, `fee` to the miner and the change back to `key`.
pub fn spend(
    key: &PrivateKey,
    coins: &[(OutPoint, TxOut)],
    to: PubkeyHash,
    amount: Amount,
    fee: Amount,
) -> Transaction {
    let total =
        Amount::checked_sum(coins.iter().map(|c| c.1.value)).expect("test amounts are small");
    let change = total
        .checked_sub(amount)
        .and_then(|r| r.checked_sub(fee))
        .expect("enough funds in test");
    let mut outputs = vec![TxOut {
        value: amount,
        pubkey_hash: to,
    }];
    if change > Amount::ZERO {
        outputs.push(TxOut {
            value: change,
            pubkey_hash: key.public_key().pubkey_hash(),
        });
    }
    let mut tx = Transaction {
        version: 1,
        inputs: coins
            .iter()
            .map(|(op, _)| TxIn {
                prevout: *op,
                signature: vec![],
                pubkey: vec![],
            })
            .collect(),
        outputs,
    };
    let spent: Vec<TxOut> = coins.iter().map(|c| c.1).collect();
    let keys: Vec<&PrivateKey> = coins.iter().map(|_| key).collect();
    tx.sign_all(&spent, &keys);
    tx
}

/// `n` coins of `value` each, paying `owner`, at made-up outpoints: the
/// txid holds the number (from `from`) and `tag`, so sets with different
/// tags never meet.
pub fn made_up_coins(
    owner: PubkeyHash,
    from: u32,
    n: u32,
    value: u64,
    tag: u8,
) -> Vec<(OutPoint, TxOut)> {
    (from..from.saturating_add(n))
        .map(|i| {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_le_bytes());
            t[31] = tag;
            (
                OutPoint {
                    txid: crate::hash::Txid(t),
                    vout: 0,
                },
                TxOut {
                    value: Amount(value),
                    pubkey_hash: owner,
                },
            )
        })
        .collect()
}

/// A UTXO set holding `coins`, confirmed at height 1.
pub fn utxo_of(
    coins: &[(OutPoint, TxOut)],
) -> std::collections::HashMap<OutPoint, crate::validation::Coin> {
    coins
        .iter()
        .map(|(op, out)| {
            (
                *op,
                crate::validation::Coin {
                    output: *out,
                    height: 1,
                    is_coinbase: false,
                },
            )
        })
        .collect()
}

/// The outputs of `tx` as (outpoint, output) pairs.
pub fn outputs_of(tx: &Transaction) -> Vec<(OutPoint, TxOut)> {
    let txid = tx.txid();
    tx.outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            (
                OutPoint {
                    txid,
                    vout: i as u32,
                },
                *o,
            )
        })
        .collect()
}

pub mod cases;
pub mod strategies;

/// `block` with its hash, txids and size computed, without the checks: for
/// tests that hand a mempool or connect step a block they made themselves.
pub fn checked(block: &Block) -> crate::validation::CheckedBlock {
    crate::validation::CheckedBlock::from_stored_bytes(&block.encode())
        .expect("a block's own encoding decodes")
}
