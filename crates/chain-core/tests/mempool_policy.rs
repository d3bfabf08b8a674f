//! The mempool's fee policy: chain limits, a bounded pool with eviction,
//! free-relay allowance, replacement, expiry, CPFP templates and the
//! signature cache.

#![allow(clippy::unwrap_used)]

use chain_core::mempool::{MAX_ANCESTORS, MIN_FEE_RATE};
use chain_core::test_utils::{easy_params, genesis, outputs_of, spend};
use chain_core::validation::Coin;
use chain_core::{
    Amount, Block, Mempool, MempoolConfig, MempoolError, OutPoint, PrivateKey, PubkeyHash,
    Transaction, TxOut, Txid,
};
use std::collections::HashMap;

const PAYEE: PubkeyHash = PubkeyHash([9; 20]);

struct Coins {
    key: PrivateKey,
    utxo: HashMap<OutPoint, Coin>,
}

/// `n` confirmed coins of `value` each, owned by one key.
fn coins(n: u32, value: u64) -> (Coins, Vec<(OutPoint, TxOut)>) {
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    let mut utxo = HashMap::new();
    let mut list = Vec::new();
    for i in 0..n {
        let mut t = [0u8; 32];
        t[..4].copy_from_slice(&i.to_le_bytes());
        t[31] = 1;
        let op = OutPoint {
            txid: Txid(t),
            vout: 0,
        };
        let out = TxOut {
            value: Amount(value),
            pubkey_hash: pkh,
        };
        utxo.insert(
            op,
            Coin {
                output: out,
                height: 1,
                is_coinbase: false,
            },
        );
        list.push((op, out));
    }
    (Coins { key, utxo }, list)
}

fn pay(c: &Coins, coin: (OutPoint, TxOut), fee: u64) -> Transaction {
    spend(&c.key, &[coin], PAYEE, Amount(1), Amount(fee))
}

/// The change output of `tx` (output 1), to chain on.
fn change(tx: &Transaction) -> (OutPoint, TxOut) {
    outputs_of(tx)[1]
}

#[test]
fn a_chain_of_unconfirmed_transactions_stops_at_the_26th_and_payments_go_on() {
    let (c, list) = coins(2, 1_000_000);
    let mut pool = Mempool::default();
    let mut prev = list[0];
    let mut refused_at = None;
    for i in 1..=50_000u32 {
        let tx = pay(&c, prev, 1);
        match pool.accept(tx.clone(), &c.utxo, 0) {
            Ok(_) => prev = change(&tx),
            Err(e) => {
                assert!(
                    matches!(e, MempoolError::TooManyAncestors { count: 26, .. }),
                    "{e}"
                );
                assert!(!e.is_sender_fault(), "policy is never an offence");
                assert!(e.to_string().starts_with("too many ancestors"));
                refused_at = Some(i);
                break;
            }
        }
    }
    assert_eq!(refused_at, Some(MAX_ANCESTORS as u32 + 1));
    assert_eq!(pool.len(), MAX_ANCESTORS);
    // An unrelated honest payment is still accepted.
    pool.accept(pay(&c, list[1], 1), &c.utxo, 0).unwrap();
}

#[test]
fn a_full_pool_takes_a_paying_transaction_by_evicting_the_cheapest_package() {
    let (c, list) = coins(40, 1_000_000);
    let one = pay(&c, list[0], 1);
    let cfg = MempoolConfig {
        max_bytes: 20 * one.size(),
        free_bytes_per_minute: 1_000_000,
        ..MempoolConfig::default()
    };
    let mut pool = Mempool::new(cfg);
    // The cheapest package: a free parent with a child paying the
    // minimum (the package's rate is half the child's).
    let parent = pay(&c, list[0], 0);
    let child = pay(&c, change(&parent), 1);
    pool.accept(parent.clone(), &c.utxo, 0).unwrap();
    pool.accept(child.clone(), &c.utxo, 0).unwrap();
    // Fill the rest with transactions paying the minimum.
    let mut i = 1;
    while pool.bytes() + one.size() <= cfg.max_bytes {
        pool.accept(pay(&c, list[i], 1), &c.utxo, 0).unwrap();
        i += 1;
    }
    let before = pool.len();
    // Another free one would be the first evicted: refused, with the fee to
    // pay, and before any signature of it is verified.
    let verified = pool.signatures_verified();
    let free = pay(&c, list[i], 0);
    let e = pool.accept(free, &c.utxo, 0).unwrap_err();
    assert!(matches!(e, MempoolError::PoolFull { .. }), "{e}");
    assert!(e.to_string().contains("pay a fee above"), "{e}");
    assert_eq!(pool.signatures_verified(), verified, "policy first");
    // A paying one gets in; the free parent goes, and its child with it.
    let rich = pay(&c, list[i + 1], 50);
    let (_, dropped) = pool.accept(rich.clone(), &c.utxo, 0).unwrap();
    let gone: Vec<Txid> = dropped.iter().map(|d| d.0).collect();
    assert!(gone.contains(&parent.txid()) && gone.contains(&child.txid()));
    assert!(!pool.contains(&child.txid()));
    assert!(pool.contains(&rich.txid()));
    assert!(pool.bytes() <= cfg.max_bytes);
    assert_eq!(pool.len(), before - 2 + 1);
}

#[test]
fn free_transactions_get_in_up_to_the_allowance_then_must_pay() {
    let (c, list) = coins(200, 1_000);
    let mut pool = Mempool::default();
    let mut n = 0usize;
    let err = loop {
        match pool.accept(pay(&c, list[n], 0), &c.utxo, 1_000) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    let size = pay(&c, list[0], 0).size();
    assert_eq!(n, 15_000 / size, "15 kB of free transactions a minute");
    assert!(matches!(err, MempoolError::FreeRelayLimit { .. }));
    assert!(
        err.to_string().starts_with("free-relay limit reached"),
        "{err}"
    );
    // Paying the minimum gets in at once; a minute later free ones do again.
    pool.accept(
        pay(&c, list[n], MIN_FEE_RATE.fee_for(size).0.max(1)),
        &c.utxo,
        1_000,
    )
    .unwrap();
    pool.accept(pay(&c, list[n + 1], 0), &c.utxo, 1_060)
        .unwrap();
}

#[test]
fn a_template_takes_a_child_paying_for_its_parent_before_a_medium_single() {
    let (c, list) = coins(3, 1_000_000);
    let mut pool = Mempool::default();
    let parent = pay(&c, list[0], 0);
    let child = pay(&c, change(&parent), 100);
    let single = pay(&c, list[1], 10);
    for tx in [&single, &parent, &child] {
        pool.accept(tx.clone(), &c.utxo, 0).unwrap();
    }
    let (txs, fees) = pool.block_template();
    let ids: Vec<Txid> = txs.iter().map(Transaction::txid).collect();
    assert_eq!(ids, vec![parent.txid(), child.txid(), single.txid()]);
    assert_eq!(fees, Amount(110));
    // Room for two: the package wins over the single.
    let (txs, _) = pool.template(parent.size() + child.size());
    let ids: Vec<Txid> = txs.iter().map(Transaction::txid).collect();
    assert_eq!(ids, vec![parent.txid(), child.txid()]);
}

#[test]
fn a_replacement_must_pay_more_and_takes_the_descendants_with_it() {
    let (c, list) = coins(1, 1_000_000);
    let mut pool = Mempool::default();
    let a = pay(&c, list[0], 3);
    let a_child = pay(&c, change(&a), 3);
    pool.accept(a.clone(), &c.utxo, 0).unwrap();
    pool.accept(a_child.clone(), &c.utxo, 0).unwrap();
    // Pays 5, less than the 6 it would replace: refused, saying what is needed.
    let cheap = spend(
        &c.key,
        &[list[0]],
        PubkeyHash([8; 20]),
        Amount(2),
        Amount(5),
    );
    match pool.accept(cheap, &c.utxo, 0) {
        Err(e @ MempoolError::ReplacementTooCheap { needed, .. }) => {
            assert_eq!(needed, Amount(6));
            assert!(e.to_string().contains("pay a fee above 6"), "{e}");
            assert!(!e.is_sender_fault());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pool.len(), 2);
    // Pays 20: replaces both.
    let rich = spend(
        &c.key,
        &[list[0]],
        PubkeyHash([8; 20]),
        Amount(2),
        Amount(20),
    );
    let (_, dropped) = pool.accept(rich.clone(), &c.utxo, 0).unwrap();
    let mut gone: Vec<Txid> = dropped.iter().map(|d| d.0).collect();
    gone.sort();
    let mut want = vec![a.txid(), a_child.txid()];
    want.sort();
    assert_eq!(gone, want);
    assert_eq!(pool.len(), 1);
    assert!(pool.contains(&rich.txid()));
}

#[test]
fn transactions_expire_after_the_expiry_with_their_descendants() {
    let (c, list) = coins(2, 1_000_000);
    let mut pool = Mempool::default();
    let old = pay(&c, list[0], 1);
    let old_child = pay(&c, change(&old), 1);
    pool.accept(old.clone(), &c.utxo, 100).unwrap();
    pool.accept(old_child.clone(), &c.utxo, 100 + 14 * 24 * 3600)
        .unwrap();
    let young = pay(&c, list[1], 1);
    pool.accept(young.clone(), &c.utxo, 100 + 14 * 24 * 3600)
        .unwrap();
    let gone = pool.expire(101 + 14 * 24 * 3600);
    assert_eq!(gone.len(), 2);
    assert_eq!(pool.len(), 1);
    assert!(pool.contains(&young.txid()));
}

#[test]
fn a_new_block_verifies_no_signature_again() {
    let (c, list) = coins(10_000, 1_000);
    let mut pool = Mempool::default();
    let txs: Vec<Transaction> = list.iter().map(|coin| pay(&c, *coin, 1)).collect();
    for tx in &txs {
        pool.accept(tx.clone(), &c.utxo, 0).unwrap();
    }
    assert_eq!(pool.signatures_verified(), 10_000);
    // A block confirming one of them (and a conflicting spend of another).
    let g = genesis(&easy_params(), PAYEE);
    let rival = spend(
        &c.key,
        &[list[1]],
        PubkeyHash([7; 20]),
        Amount(5),
        Amount(0),
    );
    let block = Block {
        header: g.header,
        transactions: vec![g.transactions[0].clone(), txs[0].clone(), rival],
    };
    let mut utxo = c.utxo.clone();
    utxo.remove(&list[0].0);
    utxo.remove(&list[1].0);
    let dropped = pool.update_for_chain(
        vec![],
        &[chain_core::test_utils::checked(&block)],
        &utxo,
        10,
    );
    assert_eq!(dropped.len(), 1, "the conflicting transaction leaves");
    assert_eq!(pool.len(), 9_998);
    assert_eq!(pool.signatures_verified(), 10_000, "nothing verified again");
    // A reorganisation returning the block's transactions re-checks them
    // against the chain, but the cache spares every signature it has seen.
    let _ = pool.update_for_chain(block.transactions.clone(), &[], &c.utxo, 20);
    assert!(pool.contains(&txs[0].txid()));
    assert_eq!(
        pool.signatures_verified(),
        10_000 + 1,
        "only the rival is new"
    );
}

#[test]
fn txids_come_in_pages_in_arrival_order() {
    let (c, list) = coins(7, 1_000_000);
    let mut pool = Mempool::default();
    let mut order = Vec::new();
    for coin in list {
        let tx = pay(&c, coin, 1);
        order.push(tx.txid());
        pool.accept(tx, &c.utxo, 0).unwrap();
    }
    let first = pool.txids_after(None, 3).unwrap();
    assert_eq!(first, order[..3]);
    let second = pool.txids_after(Some(&first[2]), 3).unwrap();
    assert_eq!(second, order[3..6]);
    let last = pool.txids_after(Some(&second[2]), 3).unwrap();
    assert_eq!(last, order[6..]);
    assert!(pool.txids_after(Some(&last[0]), 3).unwrap().is_empty());
    assert_eq!(pool.txids_after(Some(&Txid([7; 32])), 3), None);
}

#[test]
fn a_replacement_pays_for_its_own_relay() {
    // A large payment: 100 inputs, about 14 kB.
    let (c, list) = coins(100, 1_000);
    let mut pool = Mempool::default();
    let pay_all = |fee: u64| spend(&c.key, &list, PAYEE, Amount(1_000), Amount(fee));
    let first = pay_all(1_000);
    let size = first.size();
    assert!(size > 10_000, "{size}");
    pool.accept(first, &c.utxo, 0).unwrap();
    let extra = (size as u64).div_ceil(1000);
    // One unit more in total than it replaces: refused, naming the fee.
    match pool.accept(pay_all(1_001), &c.utxo, 0) {
        Err(e @ MempoolError::ReplacementTooCheap { needed, .. }) => {
            assert_eq!(needed, Amount(1_000 + extra - 1));
            assert!(
                e.to_string()
                    .contains(&format!("pay a fee above {}", 1_000 + extra - 1)),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A refused replacement costs no signature verification.
    let verified = pool.signatures_verified();
    assert!(pool.accept(pay_all(999), &c.utxo, 0).is_err());
    assert_eq!(pool.signatures_verified(), verified);
    // One short of its relay: refused; exactly its relay: accepted.
    assert!(pool.accept(pay_all(1_000 + extra - 1), &c.utxo, 0).is_err());
    pool.accept(pay_all(1_000 + extra), &c.utxo, 0).unwrap();
    assert_eq!(pool.len(), 1);
}

#[test]
fn an_address_finds_its_pool_transactions_without_a_scan() {
    let (c, list) = coins(4, 1_000_000);
    let payer = c.key.public_key().pubkey_hash();
    let mut pool = Mempool::default();
    let a = pay(&c, list[0], 1);
    let b = pay(&c, list[1], 1);
    let a_child = pay(&c, change(&a), 1);
    for t in [&a, &b, &a_child] {
        pool.accept(t.clone(), &c.utxo, 0).unwrap();
    }
    // The payee is paid by all three, in arrival order; the payer spends
    // in all three; a stranger has none.
    assert_eq!(
        pool.txids_for(&PAYEE),
        vec![a.txid(), b.txid(), a_child.txid()]
    );
    assert_eq!(pool.txids_for(&payer).len(), 3);
    assert!(pool.txids_for(&PubkeyHash([3; 20])).is_empty());
    // The payee's unspent outputs: one per transaction, none of them change.
    let coins_of_payee = pool.unspent_outputs_for(&PAYEE, &c.utxo);
    assert_eq!(coins_of_payee.len(), 3);
    assert!(coins_of_payee
        .iter()
        .all(|(_, o, change)| o.pubkey_hash == PAYEE && !change));
    // The payer's: the change of b and of a_child (a's is spent in the pool).
    let mine = pool.unspent_outputs_for(&payer, &c.utxo);
    assert_eq!(mine.len(), 2);
    assert!(mine.iter().all(|(_, _, change)| *change));
    // A replacement of `b` takes it out of the index, and its own goes in.
    let (_, dropped) = pool
        .accept(
            spend(
                &c.key,
                &[list[1]],
                PubkeyHash([3; 20]),
                Amount(1),
                Amount(50),
            ),
            &c.utxo,
            0,
        )
        .unwrap();
    assert_eq!(dropped.len(), 1, "b replaced");
    assert_eq!(pool.txids_for(&PAYEE), vec![a.txid(), a_child.txid()]);
    assert_eq!(pool.txids_for(&PubkeyHash([3; 20])).len(), 1);
    pool.drain();
    assert!(pool.txids_for(&PAYEE).is_empty());
}
