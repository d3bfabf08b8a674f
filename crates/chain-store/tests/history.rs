//! The address history: every best-chain transaction that paid or spent
//! from an address, newest first and paged; a reorganisation takes the
//! disconnected blocks' entries out; a format 2 store gains it when opened
//! for writing, and is refused read-only.

#![allow(clippy::unwrap_used)]

use chain_core::keys::PrivateKey;
use chain_core::test_utils::{child, easy_params, genesis, outputs_of, spend};
use chain_core::{Amount, PubkeyHash, Txid};
use chain_store::{ChainStore, StoreError};

const NOW: u64 = chain_core::test_utils::GENESIS_TIME + 1_000_000;

fn txids(s: &ChainStore, pkh: &PubkeyHash) -> Vec<Txid> {
    s.history(pkh, None, 100)
        .unwrap()
        .into_iter()
        .map(|e| e.2)
        .collect()
}

#[test]
fn history_pages_newest_first_and_follows_reorganisations() {
    let dir = tempfile::tempdir().unwrap();
    let p = easy_params();
    let alice = PrivateKey::generate();
    let bob = PrivateKey::generate().public_key().pubkey_hash();
    let a = alice.public_key().pubkey_hash();
    let g = genesis(&p, a);
    let mut s = ChainStore::create(&dir.path().join("blocks"), &g).unwrap();
    let pay = spend(
        &alice,
        &outputs_of(&g.transactions[0]),
        bob,
        Amount(5),
        Amount(1),
    );
    let miner = PrivateKey::generate().public_key().pubkey_hash();
    let b1 = child(&p, &g.header, vec![pay.clone()], Amount(1), miner);
    let b2 = child(&p, &b1.header, vec![], Amount(0), a);
    for b in [&b1, &b2] {
        s.accept_block(b, NOW).unwrap();
    }
    // Alice: paid by the genesis, spent from (and paid change) by `pay`,
    // paid by b2's coinbase; newest first.
    let expected = vec![
        b2.transactions[0].txid(),
        pay.txid(),
        g.transactions[0].txid(),
    ];
    assert_eq!(txids(&s, &a), expected);
    assert_eq!(s.history_len(&a).unwrap(), 3);
    assert_eq!(txids(&s, &bob), vec![pay.txid()]);
    // Pages of one, each starting below the last.
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.history(&a, cursor, 1).unwrap();
        let Some(&(h, pos, txid)) = page.first() else {
            break;
        };
        assert_eq!(page.len(), 1);
        paged.push(txid);
        cursor = Some((h, pos));
    }
    assert_eq!(paged, expected);

    // A heavier branch without the payment takes its entries out.
    let x1 = child(&p, &g.header, vec![], Amount(0), miner);
    let x2 = child(&p, &x1.header, vec![], Amount(0), miner);
    let x3 = child(&p, &x2.header, vec![], Amount(0), miner);
    for b in [&x1, &x2, &x3] {
        s.accept_block(b, NOW).unwrap();
    }
    assert_eq!(s.tip().hash, x3.hash());
    assert_eq!(txids(&s, &a), vec![g.transactions[0].txid()]);
    assert!(txids(&s, &bob).is_empty());
    assert_eq!(txids(&s, &miner).len(), 3);
    assert!(s.check_db().unwrap().problems.is_empty());
}

#[test]
fn a_coin_paid_and_spent_in_one_block_is_in_both_histories() {
    let dir = tempfile::tempdir().unwrap();
    let p = easy_params();
    let alice = PrivateKey::generate();
    let bob = PrivateKey::generate();
    let carol = PrivateKey::generate().public_key().pubkey_hash();
    let (a, b) = (
        alice.public_key().pubkey_hash(),
        bob.public_key().pubkey_hash(),
    );
    let g = genesis(&p, a);
    let mut s = ChainStore::create(&dir.path().join("blocks"), &g).unwrap();
    let to_bob = spend(
        &alice,
        &outputs_of(&g.transactions[0]),
        b,
        Amount(5),
        Amount(0),
    );
    let bob_coin: Vec<_> = outputs_of(&to_bob)
        .into_iter()
        .filter(|c| c.1.pubkey_hash == b)
        .collect();
    let to_carol = spend(&bob, &bob_coin, carol, Amount(5), Amount(0));
    let miner = PrivateKey::generate().public_key().pubkey_hash();
    let b1 = child(
        &p,
        &g.header,
        vec![to_bob.clone(), to_carol.clone()],
        Amount(0),
        miner,
    );
    s.accept_block(&b1, NOW).unwrap();
    assert_eq!(s.tip().hash, b1.hash());
    assert_eq!(txids(&s, &b), vec![to_carol.txid(), to_bob.txid()]);
    assert_eq!(txids(&s, &carol), vec![to_carol.txid()]);
    assert!(s.check_db().unwrap().problems.is_empty());
}

#[test]
fn a_format_2_store_is_upgraded_when_opened_for_writing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blocks");
    let p = easy_params();
    let alice = PrivateKey::generate();
    let a = alice.public_key().pubkey_hash();
    let g = genesis(&p, a);
    let bob = PrivateKey::generate().public_key().pubkey_hash();
    let pay = spend(
        &alice,
        &outputs_of(&g.transactions[0]),
        bob,
        Amount(5),
        Amount(1),
    );
    let mut s = ChainStore::create(&path, &g).unwrap();
    s.accept_block(&child(&p, &g.header, vec![pay.clone()], Amount(1), a), NOW)
        .unwrap();
    let before = txids(&s, &a);
    assert_eq!(before.len(), 3);
    s.downgrade_to_format_2_for_tests().unwrap();
    assert!(txids(&s, &a).is_empty());
    drop(s);

    let err = ChainStore::open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::NeedsUpgrade(_)), "{err}");
    assert!(err.to_string().contains("storage format 2"), "{err}");

    let s = ChainStore::open(&path).unwrap();
    assert_eq!(txids(&s, &a), before);
    assert_eq!(txids(&s, &bob), vec![pay.txid()]);
    let problems = s.check_db().unwrap().problems;
    assert!(problems.is_empty(), "{problems:?}");
    drop(s);
    // Upgraded for good: it now opens read-only too.
    let s = ChainStore::open_read_only(&path).unwrap();
    assert_eq!(txids(&s, &a), before);
}
