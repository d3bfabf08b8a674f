//! The mempool's cost with a full pool, as bounds on work rather than
//! times: eviction visits only what it takes, the rolling minimum refuses
//! before signatures, a reorganisation checks only what it changed,
//! blocks reuse the pool's signatures, and each peer has its own free
//! allowance.

#![allow(clippy::unwrap_used)]

use chain_core::mempool::{Source, MIN_PAYMENT_BYTES, PEER_FREE_SHARE};
use chain_core::test_utils::{
    checked, easy_params, genesis, made_up_coins, outputs_of, spend, utxo_of,
};
use chain_core::validation::{connect_block, connect_block_with, Coin};
use chain_core::{
    Amount, Block, Mempool, MempoolConfig, MempoolError, OutPoint, PrivateKey, PubkeyHash,
    Transaction, TxOut, Txid,
};
use std::collections::HashMap;

const PAYEE: PubkeyHash = PubkeyHash([9; 20]);

struct Wallet {
    key: PrivateKey,
    utxo: HashMap<OutPoint, Coin>,
    coins: Vec<(OutPoint, TxOut)>,
}

/// `n` confirmed coins of `value` each, owned by one key.
fn wallet(n: u32, value: u64) -> Wallet {
    let key = PrivateKey::generate();
    let coins = made_up_coins(key.public_key().pubkey_hash(), 0, n, value, 3);
    Wallet {
        utxo: utxo_of(&coins),
        key,
        coins,
    }
}

impl Wallet {
    fn pay(&self, coin: usize, fee: u64) -> Transaction {
        spend(
            &self.key,
            &[self.coins[coin]],
            PAYEE,
            Amount(1),
            Amount(fee),
        )
    }
}

/// A pool of `cap` payments' bytes, filled with payments paying 1 to
/// `cap` (so rates differ), from coins 0 to `cap - 1`.
fn full_pool(w: &Wallet, cap: usize) -> Mempool {
    let txs: Vec<Transaction> = (0..cap).map(|i| w.pay(i, 1 + i as u64)).collect();
    let total: usize = txs.iter().map(Transaction::size).sum();
    let cfg = MempoolConfig {
        max_bytes: total + 50,
        ..MempoolConfig::default()
    };
    let mut pool = Mempool::new(cfg);
    for tx in txs {
        pool.accept(tx, &w.utxo, 0).unwrap();
    }
    assert_eq!(pool.len(), cap);
    pool
}

#[test]
fn an_eviction_visits_only_the_packages_it_takes() {
    let w = wallet(2_100, 1_000_000);
    let mut pool = full_pool(&w, 2_000);
    let before = pool.work();
    let (_, dropped) = pool.accept(w.pay(2_000, 5_000), &w.utxo, 1).unwrap();
    assert_eq!(dropped.len(), 1, "one package makes room");
    assert!(matches!(dropped[0].1, MempoolError::Evicted(_)));
    let visits = pool.work().eviction_visits - before.eviction_visits;
    assert!(
        visits <= 2,
        "one eviction in a pool of 2,000 visited {visits} packages"
    );
    // A large payment evicting many: still only what it takes.
    let big = spend(
        &w.key,
        &w.coins[2_001..2_100],
        PAYEE,
        Amount(1),
        Amount(10_000_000),
    );
    let before = pool.work();
    let (_, dropped) = pool.accept(big, &w.utxo, 1).unwrap();
    let visits = pool.work().eviction_visits - before.eviction_visits;
    assert!(dropped.len() > 40, "{} evicted", dropped.len());
    assert!(
        visits as usize <= dropped.len() + 1,
        "{} evictions visited {visits} packages",
        dropped.len()
    );
}

#[test]
fn after_an_eviction_the_rolling_minimum_refuses_before_any_signature() {
    let w = wallet(2_010, 1_000_000);
    let mut pool = full_pool(&w, 100);
    assert_eq!(pool.min_fee_rate(0).0, 0, "nothing evicted yet");
    pool.accept(w.pay(2_000, 5_000), &w.utxo, 1).unwrap();
    // The cheapest package paid 1 over about 200 bytes: rate 4 or 5, so
    // the minimum is that plus the incremental rate.
    let minimum = pool.min_fee_rate(1);
    assert!(minimum.0 >= 5, "{minimum}");
    // A newcomer under it is refused, unverified, though the pool has
    // room once more.
    let verified = pool.signatures_verified();
    let e = pool.accept(w.pay(2_001, 1), &w.utxo, 2).unwrap_err();
    assert!(matches!(e, MempoolError::MinFeeNotMet { .. }), "{e}");
    assert_eq!(e.code(), "MinFeeNotMet");
    assert!(!e.is_sender_fault());
    assert_eq!(pool.signatures_verified(), verified);
    // No block, no decay, however long.
    assert_eq!(pool.min_fee_rate(1_000_000), minimum);
    // A block, then a day: the minimum halves twice (or faster, the pool
    // being small), and under half the incremental rate it is gone.
    let g = genesis(&easy_params(), PAYEE);
    let block = Block {
        header: g.header,
        transactions: std::iter::once(g.transactions[0].clone())
            .chain(pool.transactions().take(3).cloned())
            .collect(),
    };
    pool.update_for_chain(vec![], &[checked(&block)], &w.utxo, 10);
    assert!(pool.min_fee_rate(10 + 24 * 3600) < minimum);
    let later = 10 + 30 * 24 * 3600;
    assert_eq!(pool.min_fee_rate(later).0, 0);
    pool.accept(w.pay(2_001, 1), &w.utxo, later).unwrap();
}

#[test]
fn a_reorganisation_checks_only_what_it_changed() {
    let w = wallet(2_000, 1_000_000);
    let mut pool = Mempool::default();
    // The disconnected block held `confirmed`; the pool holds a child of
    // it, a grandchild, and 1,995 unrelated payments.
    let confirmed = w.pay(0, 10);
    let child = spend(
        &w.key,
        &[outputs_of(&confirmed)[1]],
        PAYEE,
        Amount(1),
        Amount(10),
    );
    let grandchild = spend(
        &w.key,
        &[outputs_of(&child)[1]],
        PAYEE,
        Amount(1),
        Amount(10),
    );
    let mut utxo = w.utxo.clone();
    utxo.remove(&w.coins[0].0);
    for (op, out) in outputs_of(&confirmed) {
        utxo.insert(
            op,
            Coin {
                output: out,
                height: 2,
                is_coinbase: false,
            },
        );
    }
    pool.accept(child.clone(), &utxo, 0).unwrap();
    pool.accept(grandchild.clone(), &utxo, 0).unwrap();
    for i in 5..2_000 {
        pool.accept(w.pay(i, 3), &utxo, 0).unwrap();
    }
    let len = pool.len();
    let verified = pool.signatures_verified();
    // The new chain's block has only its coinbase: `confirmed` comes back,
    // and the chain's coins are the parent's again.
    let g = genesis(&easy_params(), PAYEE);
    let old_coinbase = Transaction {
        outputs: vec![TxOut {
            value: Amount(50),
            pubkey_hash: PubkeyHash([5; 20]),
        }],
        ..g.transactions[0].clone()
    };
    let dropped = pool.update_for_chain(
        vec![old_coinbase, confirmed.clone()],
        &[checked(&g)],
        &w.utxo,
        5,
    );
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(pool.len(), len + 1);
    assert!(pool.contains(&confirmed.txid()));
    assert_eq!(
        pool.signatures_verified() - verified,
        1,
        "only the returned transaction's signature, never the pool's"
    );
    // The child is linked to its returned parent again: replacing the
    // parent takes the child and grandchild with it.
    let rival = w.pay(0, 1_000);
    let (_, dropped) = pool.accept(rival, &w.utxo, 6).unwrap();
    let gone: Vec<Txid> = dropped.iter().map(|d| d.0).collect();
    assert_eq!(gone.len(), 3, "{gone:?}");
    assert!(gone.contains(&child.txid()) && gone.contains(&grandchild.txid()));
}

#[test]
fn a_block_of_pool_transactions_connects_with_no_signature_check() {
    let w = wallet(200, 1_000);
    let mut pool = Mempool::default();
    let txs: Vec<Transaction> = (0..200).map(|i| w.pay(i, 1)).collect();
    for tx in &txs {
        pool.accept(tx.clone(), &w.utxo, 0).unwrap();
    }
    let g = genesis(&easy_params(), PAYEE);
    let block = checked(&Block {
        header: g.header,
        transactions: std::iter::once(g.transactions[0].clone())
            .chain(txs[..150].iter().cloned())
            .collect(),
    });
    let params = easy_params();
    let cold = connect_block(&block, &params, &w.utxo).unwrap();
    assert_eq!(cold.signatures_verified, 150);
    let warm = connect_block_with(&block, &params, &w.utxo, &pool).unwrap();
    assert_eq!(warm.signatures_verified, 0);
    assert_eq!(warm.spent, cold.spent);
    assert_eq!(warm.created, cold.created);
    // A transaction the pool never saw is verified; a pool one with a
    // broken signature cannot pass for a cached one (its txid differs).
    let fresh = w.pay(199, 2);
    assert_ne!(fresh.txid(), txs[199].txid());
    let mut forged = txs[0].clone();
    forged.inputs[0].signature[10] ^= 1;
    let block = checked(&Block {
        header: g.header,
        transactions: vec![g.transactions[0].clone(), fresh, forged],
    });
    let e = connect_block_with(&block, &params, &w.utxo, &pool);
    assert!(e.is_err(), "a forged signature is caught");
}

#[test]
fn one_peer_spending_its_free_allowance_leaves_the_others_theirs() {
    let w = wallet(200, 1_000_000);
    let mut pool = Mempool::default();
    let per_peer = pool.config().free_bytes_per_minute / PEER_FREE_SHARE;
    let (a, b) = (Some(Source(1)), Some(Source(2)));
    let mut next = 0;
    let mut sent = 0;
    let refused = loop {
        let tx = w.pay(next, 0);
        next += 1;
        match pool.accept_from(tx.clone(), &w.utxo, 0, a) {
            Ok(_) => sent += tx.size(),
            Err(e) => break e,
        }
    };
    assert!(
        sent <= per_peer && sent + 300 > per_peer,
        "{sent} of {per_peer}"
    );
    assert!(
        matches!(refused, MempoolError::FreeRelayLimit { .. }),
        "{refused}"
    );
    assert!(refused.to_string().contains("of the peer that sent it"));
    // Another peer still relays free payments.
    pool.accept_from(w.pay(next, 0), &w.utxo, 0, b).unwrap();
    // A minute later the first peer may again.
    pool.accept_from(w.pay(next + 1, 0), &w.utxo, 60, a)
        .unwrap();
}

#[test]
fn the_signature_cache_holds_at_least_a_full_pool() {
    let w = wallet(20, 1_000_000);
    // The smallest payment: one input, one output.
    for i in 0..20 {
        let tx = spend(&w.key, &[w.coins[i]], PAYEE, Amount(999_000), Amount(1_000));
        assert_eq!(tx.outputs.len(), 1);
        assert!(tx.size() >= MIN_PAYMENT_BYTES, "{} bytes", tx.size());
    }
    let cfg = MempoolConfig::default();
    let pool = Mempool::new(cfg);
    assert!(pool.signature_cache().capacity() >= cfg.max_bytes / MIN_PAYMENT_BYTES);
}

#[test]
fn a_template_from_the_index_keeps_dependency_order_and_the_size() {
    let w = wallet(60, 1_000_000);
    let mut pool = Mempool::default();
    // Twenty chains of three, fees chosen so children often pay for
    // their parents.
    let mut chains: Vec<Vec<Transaction>> = Vec::new();
    for c in 0..20 {
        let mut coin = w.coins[c];
        let mut chain = Vec::new();
        for depth in 0..3u64 {
            let fee = (c as u64 * 7 + depth * 13) % 40;
            let tx = spend(&w.key, &[coin], PAYEE, Amount(1), Amount(fee));
            pool.accept(tx.clone(), &w.utxo, 0).unwrap();
            coin = outputs_of(&tx)[1];
            chain.push(tx);
        }
        chains.push(chain);
    }
    let all: usize = pool.entries().map(|(_, _, _, size)| size).sum();
    for max in [all + 1_000, all / 2, all / 5, 600] {
        let (txs, fees) = pool.template(max);
        let size: usize = txs.iter().map(Transaction::size).sum();
        assert!(size <= max);
        let mut seen = std::collections::HashSet::new();
        for tx in &txs {
            for i in &tx.inputs {
                assert!(
                    !pool.contains(&i.prevout.txid) || seen.contains(&i.prevout.txid),
                    "a parent comes first"
                );
            }
            seen.insert(tx.txid());
        }
        let sum: u64 = txs.iter().map(|t| pool.fee_of(&t.txid()).unwrap().0).sum();
        assert_eq!(fees.0, sum);
        if max > all {
            assert_eq!(txs.len(), 60, "everything fits");
        }
    }
    // The best package leads: a chain's prefix with the highest rate.
    let (txs, _) = pool.template(all + 1_000);
    let rate = |p: &[Transaction]| {
        let fee: u64 = p.iter().map(|t| pool.fee_of(&t.txid()).unwrap().0).sum();
        let size: usize = p.iter().map(Transaction::size).sum();
        (fee, size)
    };
    let prefixes: Vec<&[Transaction]> = chains
        .iter()
        .flat_map(|c| (1..=c.len()).map(move |d| &c[..d]))
        .collect();
    let best = prefixes
        .iter()
        .map(|p| rate(p))
        .max_by(|a, b| (u128::from(a.0) * b.1 as u128).cmp(&(u128::from(b.0) * a.1 as u128)))
        .unwrap();
    let leads = prefixes.iter().any(|p| {
        let r = rate(p);
        u128::from(r.0) * best.1 as u128 == u128::from(best.0) * r.1 as u128
            && txs[..p.len()] == **p
    });
    assert!(leads, "the template starts with a best-rate package");
}
