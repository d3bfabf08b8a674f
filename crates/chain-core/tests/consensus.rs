//! Consensus rules, each refusal checked by its typed error.

#![allow(clippy::unwrap_used)]

use chain_core::block::{Block, ChainParams};
use chain_core::keys::PrivateKey;
use chain_core::mempool::{Mempool, MempoolError};
use chain_core::test_utils::{child, easy_params, genesis, outputs_of, remine, spend};
use chain_core::validation::{
    check_block, check_header_context, connect_block, BlockError, Coin, HeaderContext, InputError,
};
use chain_core::{Amount, CompactTarget, OutPoint, PubkeyHash, Transaction, TxError, TxOut};
use std::collections::HashMap;

struct Fixture {
    params: ChainParams,
    key: PrivateKey,
    pkh: PubkeyHash,
    genesis: Block,
    utxo: HashMap<OutPoint, Coin>,
}

fn fixture() -> Fixture {
    let params = easy_params();
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    let genesis = genesis(&params, pkh);
    let changes = connect_block(&check_block(&genesis).unwrap(), &params, &HashMap::new()).unwrap();
    let utxo = changes.created.into_iter().collect();
    Fixture {
        params,
        key,
        pkh,
        genesis,
        utxo,
    }
}

fn coinbase_coin(f: &Fixture) -> (OutPoint, TxOut) {
    outputs_of(&f.genesis.transactions[0])[0]
}

fn connect(f: &Fixture, b: &Block) -> Result<(), BlockError> {
    let b = check_block(b)?;
    connect_block(&b, &f.params, &f.utxo).map(|_| ())
}

/// A block after the genesis whose one payment spends the genesis coin,
/// paying 10 and a fee of 3.
fn paying_block(f: &Fixture) -> Block {
    let tx = spend(
        &f.key,
        &[coinbase_coin(f)],
        PubkeyHash([2; 20]),
        Amount(10),
        Amount(3),
    );
    child(&f.params, &f.genesis.header, vec![tx], Amount(3), f.pkh)
}

#[test]
fn a_valid_spend_connects_with_fees() {
    let f = fixture();
    let b = paying_block(&f);
    let ch = connect_block(&check_block(&b).unwrap(), &f.params, &f.utxo).unwrap();
    assert_eq!(ch.fees, Amount(3));
    assert_eq!(ch.spent.len(), 1);
    assert_eq!(ch.created.len(), 3);
}

#[test]
fn coinbase_over_reward_plus_fees() {
    let f = fixture();
    let tx = spend(
        &f.key,
        &[coinbase_coin(&f)],
        PubkeyHash([2; 20]),
        Amount(10),
        Amount(3),
    );
    let b = child(&f.params, &f.genesis.header, vec![tx], Amount(4), f.pkh);
    assert_eq!(
        connect(&f, &b),
        Err(BlockError::CoinbaseTooLarge {
            claimed: Amount(24),
            allowed: Amount(23)
        })
    );
}

#[test]
fn bad_signature_and_signature_for_another_input() {
    let f = fixture();
    let mut tx = spend(
        &f.key,
        &[coinbase_coin(&f)],
        PubkeyHash([2; 20]),
        Amount(10),
        Amount(0),
    );
    // A signature over a different transaction: same key, other outputs.
    let other = spend(
        &f.key,
        &[coinbase_coin(&f)],
        PubkeyHash([3; 20]),
        Amount(10),
        Amount(0),
    );
    tx.inputs[0].signature = other.inputs[0].signature.clone();
    let b = child(&f.params, &f.genesis.header, vec![tx], Amount(0), f.pkh);
    assert!(matches!(
        connect(&f, &b),
        Err(BlockError::Input(InputError::BadSignature { index: 0, .. }))
    ));
}

#[test]
fn pubkey_not_matching_the_output() {
    let f = fixture();
    let thief = PrivateKey::generate();
    let tx = spend(
        &thief,
        &[coinbase_coin(&f)],
        thief.public_key().pubkey_hash(),
        Amount(20),
        Amount(0),
    );
    let b = child(&f.params, &f.genesis.header, vec![tx], Amount(0), f.pkh);
    assert!(matches!(
        connect(&f, &b),
        Err(BlockError::Input(InputError::PubkeyMismatch {
            index: 0,
            ..
        }))
    ));
}

#[test]
fn missing_input_and_value_creation() {
    let f = fixture();
    let ghost = (
        OutPoint {
            txid: chain_core::Txid([9; 32]),
            vout: 0,
        },
        TxOut {
            value: Amount(5),
            pubkey_hash: f.pkh,
        },
    );
    let tx = spend(&f.key, &[ghost], f.pkh, Amount(5), Amount(0));
    let b = child(&f.params, &f.genesis.header, vec![tx], Amount(0), f.pkh);
    assert!(matches!(
        connect(&f, &b),
        Err(BlockError::Input(InputError::Missing { .. }))
    ));

    let mut tx = spend(&f.key, &[coinbase_coin(&f)], f.pkh, Amount(20), Amount(0));
    tx.outputs[0].value = Amount(21);
    let spent = [coinbase_coin(&f).1];
    tx.sign_all(&spent, &[&f.key]);
    let b = child(&f.params, &f.genesis.header, vec![tx], Amount(0), f.pkh);
    assert!(matches!(
        connect(&f, &b),
        Err(BlockError::Input(InputError::ValueCreated { .. }))
    ));
}

#[test]
fn double_spend_inside_one_block() {
    let f = fixture();
    let a = spend(
        &f.key,
        &[coinbase_coin(&f)],
        PubkeyHash([2; 20]),
        Amount(10),
        Amount(0),
    );
    let b2 = spend(
        &f.key,
        &[coinbase_coin(&f)],
        PubkeyHash([3; 20]),
        Amount(10),
        Amount(0),
    );
    let b = child(&f.params, &f.genesis.header, vec![a, b2], Amount(0), f.pkh);
    assert!(matches!(
        connect(&f, &b),
        Err(BlockError::DoubleSpendInBlock { .. })
    ));
}

#[test]
fn spending_an_output_of_the_same_block_is_allowed() {
    let f = fixture();
    let a = spend(&f.key, &[coinbase_coin(&f)], f.pkh, Amount(10), Amount(0));
    let c = spend(
        &f.key,
        &[outputs_of(&a)[0]],
        PubkeyHash([3; 20]),
        Amount(10),
        Amount(0),
    );
    let b = child(&f.params, &f.genesis.header, vec![a, c], Amount(0), f.pkh);
    assert_eq!(connect(&f, &b), Ok(()));
}

#[test]
fn structure_refusals() {
    let f = fixture();
    let tx = spend(
        &f.key,
        &[coinbase_coin(&f)],
        PubkeyHash([2; 20]),
        Amount(10),
        Amount(0),
    );
    let good = child(
        &f.params,
        &f.genesis.header,
        vec![tx.clone()],
        Amount(0),
        f.pkh,
    );

    let mut b = good.clone();
    b.header.merkle_root = chain_core::MerkleRoot([1; 32]);
    remine_keep_root(&mut b);
    assert!(matches!(
        check_block(&b),
        Err(BlockError::BadMerkleRoot { .. })
    ));

    // CVE-2012-2459: the last transaction repeated keeps the root.
    let mut b = child(
        &f.params,
        &f.genesis.header,
        vec![
            tx.clone(),
            spend(&f.key, &[coinbase_coin(&f)], f.pkh, Amount(1), Amount(0)),
        ],
        Amount(0),
        f.pkh,
    );
    let last = b.transactions.last().unwrap().clone();
    b.transactions.push(last);
    assert_eq!(chain_core::merkle_root(&b.txids()), b.header.merkle_root);
    assert!(matches!(check_block(&b), Err(BlockError::DuplicateTxid(_))));

    let mut b = good.clone();
    b.transactions.remove(0);
    remine(&mut b);
    assert_eq!(check_block(&b), Err(BlockError::FirstNotCoinbase));

    let mut b = good.clone();
    let cb2 = Transaction::coinbase(1, f.pkh, Amount(1), b"x");
    b.transactions.push(cb2);
    remine(&mut b);
    assert_eq!(check_block(&b), Err(BlockError::ExtraCoinbase { index: 2 }));

    let mut b = good.clone();
    b.transactions.clear();
    b.header.merkle_root = chain_core::MerkleRoot::ZERO;
    remine_keep_root(&mut b);
    assert_eq!(check_block(&b), Err(BlockError::NoTransactions));

    let mut b = good.clone();
    b.header.bits = CompactTarget::from_leading_zero_bits(60).unwrap();
    assert!(matches!(
        check_block(&b),
        Err(BlockError::BadProofOfWork { .. })
    ));

    let mut b = good.clone();
    b.transactions[1].outputs[0].value = Amount(0);
    remine(&mut b);
    assert!(matches!(
        check_block(&b),
        Err(BlockError::Tx(TxError::ZeroOutput { .. }))
    ));

    let mut b = good.clone();
    b.transactions[0] = Transaction::coinbase(7, f.pkh, Amount(20), b"");
    remine(&mut b);
    assert_eq!(check_block(&b), Err(BlockError::CoinbaseHeight(1)));

    let mut b = good;
    b.transactions[1].outputs.push(TxOut {
        value: Amount(u64::MAX - 5),
        pubkey_hash: f.pkh,
    });
    remine(&mut b);
    assert!(matches!(
        check_block(&b),
        Err(BlockError::Tx(TxError::OutputOverflow(_)))
    ));
}

fn remine_keep_root(b: &mut Block) {
    let cancel = std::sync::atomic::AtomicBool::new(false);
    assert!(chain_core::miner::solve(b, 1, &cancel, &mut |_| {}));
}

#[test]
fn header_context_refusals() {
    let f = fixture();
    let b = child(&f.params, &f.genesis.header, vec![], Amount(0), f.pkh);
    let ctx = HeaderContext {
        parent_height: 0,
        median_time_past: f.genesis.header.time,
        expected_bits: f.params.initial_bits,
        now: b.header.time,
    };
    assert_eq!(check_header_context(&b.header, &ctx), Ok(()));
    let mut h = b.header;
    h.height = 5;
    assert_eq!(
        check_header_context(&h, &ctx),
        Err(BlockError::BadHeight {
            found: 5,
            expected: 1
        })
    );
    let mut h = b.header;
    h.time = f.genesis.header.time;
    assert!(matches!(
        check_header_context(&h, &ctx),
        Err(BlockError::TimeTooOld { .. })
    ));
    let mut h = b.header;
    h.time = ctx.now + 2 * 3600 + 1;
    assert!(matches!(
        check_header_context(&h, &ctx),
        Err(BlockError::TimeTooNew { .. })
    ));
    let ctx2 = HeaderContext {
        expected_bits: CompactTarget(0x1f10_0000),
        ..ctx
    };
    assert!(matches!(
        check_header_context(&b.header, &ctx2),
        Err(BlockError::UnexpectedBits { .. })
    ));
}

#[test]
fn mempool_chains_double_spends_and_templates() {
    let f = fixture();
    let mut pool = Mempool::default();
    let a = spend(
        &f.key,
        &[coinbase_coin(&f)],
        PubkeyHash([2; 20]),
        Amount(5),
        Amount(1),
    );
    let change = outputs_of(&a)[1];
    let b = spend(&f.key, &[change], PubkeyHash([3; 20]), Amount(4), Amount(1));
    // Child first is refused (missing input), parent then child accepted.
    assert!(matches!(
        pool.accept(b.clone(), &f.utxo, 0),
        Err(MempoolError::Input(InputError::Missing { .. }))
    ));
    pool.accept(a.clone(), &f.utxo, 0).unwrap();
    pool.accept(b.clone(), &f.utxo, 0).unwrap();
    let conflict = spend(
        &f.key,
        &[coinbase_coin(&f)],
        PubkeyHash([4; 20]),
        Amount(5),
        Amount(0),
    );
    // A conflict paying less than what it would replace is refused.
    match pool.accept(conflict, &f.utxo, 0) {
        Err(MempoolError::ReplacementTooCheap { conflict, .. }) => assert_eq!(conflict, a.txid()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        pool.accept(f.genesis.transactions[0].clone(), &f.utxo, 0),
        Err(MempoolError::Coinbase(_))
    ));
    let (txs, fees) = pool.block_template();
    assert_eq!(
        txs.iter().map(Transaction::txid).collect::<Vec<_>>(),
        vec![a.txid(), b.txid()]
    );
    assert_eq!(fees, Amount(2));

    // The block confirms both; the pool empties.
    let block = child(&f.params, &f.genesis.header, txs, fees, f.pkh);
    let ch = connect_block(&check_block(&block).unwrap(), &f.params, &f.utxo).unwrap();
    let mut utxo = f.utxo.clone();
    for (op, _) in &ch.spent {
        utxo.remove(op);
    }
    utxo.extend(ch.created);
    let dropped =
        pool.update_for_chain(vec![], &[chain_core::test_utils::checked(&block)], &utxo, 0);
    assert!(pool.is_empty() && dropped.is_empty());

    // Disconnecting it gives both back, in order.
    let dropped = pool.update_for_chain(block.transactions.clone(), &[], &f.utxo, 0);
    assert!(dropped.is_empty());
    assert_eq!(
        pool.transactions()
            .map(Transaction::txid)
            .collect::<Vec<_>>(),
        vec![a.txid(), b.txid()]
    );
}

#[test]
fn a_checked_block_carries_its_hash_txids_and_encoding() {
    let f = fixture();
    let b = paying_block(&f);
    let checked = check_block(&b).unwrap();
    assert_eq!(checked.hash(), b.hash());
    assert_eq!(checked.txids(), &b.txids()[..]);
    assert_eq!(checked.bytes(), &b.encode()[..]);
    assert_eq!(checked.size(), b.encoded_len());
    assert_eq!(*checked.block(), b);
    let stored = chain_core::CheckedBlock::from_stored_bytes(checked.bytes()).unwrap();
    assert_eq!(stored, checked);
}

/// A UTXO set of `n` coins of 10 owned by `f.key`, and a block after the
/// genesis with one payment spending each (in that order).
fn many_payments(f: &Fixture, n: usize) -> (HashMap<OutPoint, Coin>, Vec<Transaction>) {
    let mut utxo = f.utxo.clone();
    let txs = (0..n)
        .map(|i| {
            let op = OutPoint {
                txid: chain_core::Txid([i as u8 + 1; 32]),
                vout: 0,
            };
            let out = TxOut {
                value: Amount(10),
                pubkey_hash: f.pkh,
            };
            utxo.insert(
                op,
                Coin {
                    output: out,
                    height: 0,
                    is_coinbase: false,
                },
            );
            spend(
                &f.key,
                &[(op, out)],
                PubkeyHash([2; 20]),
                Amount(9),
                Amount(1),
            )
        })
        .collect();
    (utxo, txs)
}

/// A signature over other bytes, with the same key.
fn forged(f: &Fixture) -> Vec<u8> {
    spend(
        &f.key,
        &[coinbase_coin(f)],
        PubkeyHash([7; 20]),
        Amount(1),
        Amount(0),
    )
    .inputs[0]
        .signature
        .clone()
}

#[test]
fn of_several_bad_signatures_the_first_in_block_order_is_reported() {
    let f = fixture();
    let (utxo, mut txs) = many_payments(&f, 60);
    // Bad signatures late, then early: the workers may check the late one
    // first.
    for i in [59, 41, 23] {
        txs[i].inputs[0].signature = forged(&f);
    }
    let first = txs[23].txid();
    let b = child(&f.params, &f.genesis.header, txs, Amount(60), f.pkh);
    let b = check_block(&b).unwrap();
    for _ in 0..20 {
        match connect_block(&b, &f.params, &utxo) {
            Err(BlockError::Input(InputError::BadSignature { txid, index: 0, .. })) => {
                assert_eq!(txid, first)
            }
            other => panic!("expected the bad signature of payment 23, got {other:?}"),
        }
    }
}

#[test]
fn an_input_error_after_a_bad_signature_is_reported_first() {
    let f = fixture();
    let (mut utxo, mut txs) = many_payments(&f, 40);
    txs[3].inputs[0].signature = forged(&f);
    // Payment 35's coin is gone: the walk fails after payment 3's check
    // was queued, and its error is the one reported, as if every
    // signature were checked after the walk.
    let gone = txs[35].inputs[0].prevout;
    utxo.remove(&gone);
    let b = child(&f.params, &f.genesis.header, txs, Amount(40), f.pkh);
    assert!(matches!(
        connect_block(&check_block(&b).unwrap(), &f.params, &utxo),
        Err(BlockError::Input(InputError::Missing { outpoint, .. })) if outpoint == gone
    ));
}

#[test]
fn every_signature_of_a_valid_block_is_counted_once_and_a_cache_skips_its_own() {
    struct Seen(std::collections::HashSet<chain_core::Txid>);
    impl chain_core::validation::SignatureCache for Seen {
        fn verified(&self, txid: &chain_core::Txid, _: &[Coin]) -> bool {
            self.0.contains(txid)
        }
    }
    let f = fixture();
    let (utxo, txs) = many_payments(&f, 50);
    let cached = Seen(txs.iter().step_by(5).map(Transaction::txid).collect());
    let b = child(&f.params, &f.genesis.header, txs, Amount(50), f.pkh);
    let b = check_block(&b).unwrap();
    let changes = connect_block(&b, &f.params, &utxo).unwrap();
    assert_eq!(changes.signatures_verified, 50);
    assert_eq!(changes.fees, Amount(50));
    assert_eq!(changes.spent.len(), 50);
    let changes =
        chain_core::validation::connect_block_with(&b, &f.params, &utxo, &cached).unwrap();
    assert_eq!(changes.signatures_verified, 40);
}

#[test]
fn a_bad_signature_in_a_cached_transaction_is_not_checked_and_one_outside_is() {
    struct Only(chain_core::Txid);
    impl chain_core::validation::SignatureCache for Only {
        fn verified(&self, txid: &chain_core::Txid, _: &[Coin]) -> bool {
            *txid == self.0
        }
    }
    let f = fixture();
    let (utxo, mut txs) = many_payments(&f, 12);
    txs[4].inputs[0].signature = forged(&f);
    let bad = txs[4].txid();
    let b = child(&f.params, &f.genesis.header, txs, Amount(12), f.pkh);
    let b = check_block(&b).unwrap();
    // The cache vouches for it: nothing to check (the cache's own tests
    // say when it may).
    assert!(chain_core::validation::connect_block_with(&b, &f.params, &utxo, &Only(bad)).is_ok());
    assert!(matches!(
        connect_block(&b, &f.params, &utxo),
        Err(BlockError::Input(InputError::BadSignature { txid, .. })) if txid == bad
    ));
}
