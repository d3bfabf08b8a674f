//! Every invalid-block case, one test each, through the chain store: the
//! refusal is the expected typed error, and the tip and the UTXO set are
//! exactly as before.

#![allow(clippy::unwrap_used)]

use chain_core::keys::PrivateKey;
use chain_core::test_utils::cases::{self, BlockCase, CaseBase};
use chain_core::test_utils::{child, easy_params, genesis, outputs_of, spend};
use chain_core::validation::BlockError;
use chain_core::Amount;
use chain_store::{Accepted, ChainStore};

const NOW: u64 = chain_core::test_utils::GENESIS_TIME + 1_000_000;

/// A chain of genesis and one block that spends the genesis coinbase back to
/// the same key, so the key has a spent output and three unspent ones.
fn chain() -> (tempfile::TempDir, ChainStore, CaseBase) {
    let dir = tempfile::tempdir().unwrap();
    let p = easy_params();
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    let g = genesis(&p, pkh);
    let mut store = ChainStore::create(&dir.path().join("blocks"), &g).unwrap();
    let t = spend(
        &key,
        &outputs_of(&g.transactions[0]),
        pkh,
        Amount(5),
        Amount(0),
    );
    let b1 = child(&p, &g.header, vec![t], Amount(0), pkh);
    assert!(matches!(
        store.accept_block(&b1, NOW).unwrap(),
        Accepted::NewTip(_)
    ));
    let base = chain_store::test_utils::case_base(&store, key, NOW).unwrap();
    (dir, store, base)
}

fn run(make: fn(&CaseBase) -> BlockCase) {
    let (_dir, mut store, base) = chain();
    let c = make(&base);
    for b in &c.before {
        store.accept_block(b, NOW).unwrap_err();
    }
    let tip = store.tip();
    let digest = store.utxo_digest().unwrap();
    let err = store.accept_block(&c.block, NOW).unwrap_err();
    let be = err
        .block_error()
        .unwrap_or_else(|| panic!("{}: {err}", c.name));
    assert!(
        (c.expect)(be),
        "{}: refused with the wrong reason: {be}",
        c.name
    );
    assert_eq!(store.tip(), tip, "{}: the tip moved", c.name);
    assert_eq!(
        store.utxo_digest().unwrap(),
        digest,
        "{}: UTXO set changed",
        c.name
    );
    assert!(store.check_db().unwrap().problems.is_empty());
    if c.timing_only {
        // Once the clock has caught up, the same block is fine.
        let later = NOW + 3 * 3600;
        assert!(matches!(
            store.accept_block(&c.block, later).unwrap(),
            Accepted::NewTip(_)
        ));
    } else {
        // Refused again on a second offer: with the same reason, or as a
        // block already found invalid when its header committed to its body.
        let again = store.accept_block(&c.block, NOW).unwrap_err();
        let e = again.block_error().unwrap();
        assert!(
            (c.expect)(e) || matches!(e, BlockError::KnownInvalid(h) if *h == c.block.hash()),
            "{}: {again}",
            c.name
        );
    }
    if let Some(h) = &c.honest_after {
        assert!(matches!(
            store.accept_block(h, NOW).unwrap(),
            Accepted::NewTip(_)
        ));
    }
}

#[test]
fn mempool_refuses_every_invalid_transaction_with_its_reason() {
    use chain_core::mempool::Mempool;
    let (_dir, store, base) = chain();
    let all = cases::tx_cases(&base);
    assert_eq!(all.len(), 12);
    for c in all {
        let mut pool = Mempool::default();
        for t in c.before {
            pool.accept(t, &store, 0).unwrap();
        }
        let n = pool.len();
        let err = pool.accept(c.tx, &store, 0).unwrap_err().to_string();
        println!("{:<34} {err}", c.name);
        assert!(err.contains(c.reason), "{}: refused with {err:?}", c.name);
        assert_eq!(pool.len(), n, "{}: the pool changed", c.name);
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $( #[test] fn $name() { run(cases::$name); } )*

        #[test]
        fn every_listed_case_has_a_test() {
            let tested = [$(stringify!($name)),*];
            assert_eq!(tested.len(), cases::BLOCK_CASES.len());
        }
    };
}

cases!(
    bad_proof_of_work,
    unexpected_bits,
    bad_merkle_root,
    duplicate_txs_same_root,
    no_coinbase,
    second_coinbase,
    coinbase_too_large,
    double_spend_in_block,
    spends_missing_output,
    spends_spent_output,
    outputs_exceed_inputs,
    amount_overflow,
    bad_sig,
    signature_of_another_input,
    signature_of_another_tx,
    high_s,
    pubkey_mismatch,
    time_too_new,
    time_too_old,
    wrong_height,
    oversized,
    invalid_parent,
);
