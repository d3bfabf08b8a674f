//! Chain store behaviour: atomic connects, fork choice, reorganisations,
//! locking, format checks and maintenance.

#![allow(clippy::unwrap_used)]

use chain_core::block::Block;
use chain_core::keys::PrivateKey;
use chain_core::test_utils::{child, child_with_extra, easy_params, genesis, outputs_of, spend};
use chain_core::validation::BlockError;
use chain_core::{Amount, PubkeyHash};
use chain_store::{Accepted, ChainStore, StoreError};

const NOW: u64 = chain_core::test_utils::GENESIS_TIME + 1_000_000;

struct Setup {
    _dir: tempfile::TempDir,
    store: ChainStore,
    key: PrivateKey,
    g: Block,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate();
    let g = genesis(&easy_params(), key.public_key().pubkey_hash());
    let store = ChainStore::create(&dir.path().join("blocks_1"), &g).unwrap();
    Setup {
        _dir: dir,
        store,
        key,
        g,
    }
}

fn accept(s: &mut ChainStore, b: &Block) -> Accepted {
    s.accept_block(b, NOW).unwrap()
}

#[test]
fn create_refuses_an_existing_chain_and_reopens() {
    let s = setup();
    let path = s.store.path().to_path_buf();
    assert!(matches!(
        ChainStore::create(&path, &s.g),
        Err(StoreError::AlreadyExists(_))
    ));
    // A second writer is refused with a clear reason while the first is open.
    match ChainStore::open(&path) {
        Err(StoreError::InUse(p)) => assert_eq!(p, path),
        other => panic!("expected InUse, got {other:?}"),
    }
    assert!(StoreError::InUse(path.clone())
        .to_string()
        .contains("is in use by a running node"));
    // A reader works alongside the writer.
    let ro = ChainStore::open_read_only(&path).unwrap();
    assert_eq!(ro.tip().hash, s.g.hash());
    assert_eq!(
        ro.balance(&s.key.public_key().pubkey_hash()).unwrap(),
        Amount(20)
    );
}

#[test]
fn unknown_format_is_refused() {
    let s = setup();
    let path = s.store.path().to_path_buf();
    drop(s.store);
    {
        let db = rocksdb::DB::open_cf(
            &rocksdb::Options::default(),
            &path,
            chain_store::schema::ALL_CFS,
        )
        .unwrap();
        db.put_cf(
            db.cf_handle("meta").unwrap(),
            b"format_version",
            99u32.to_be_bytes(),
        )
        .unwrap();
    }
    let e = ChainStore::open(&path).unwrap_err();
    assert!(matches!(e, StoreError::UnknownFormat { .. }), "{e}");
    assert!(e.to_string().contains("format 99"), "{e}");
}

#[test]
fn missing_chain_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = ChainStore::open(&dir.path().join("nothing")).unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)));
    // The library names what is missing; the binaries add which command to run.
    assert!(e.to_string().contains("nothing"), "{e}");
    assert!(!e.to_string().contains("createblockchain"), "{e}");
}

#[test]
fn connect_updates_utxos_indexes_and_balance() {
    let mut s = setup();
    let p = easy_params();
    let to = PrivateKey::generate().public_key().pubkey_hash();
    let tx = spend(
        &s.key,
        &outputs_of(&s.g.transactions[0]),
        to,
        Amount(10),
        Amount(0),
    );
    let b1 = child(
        &p,
        &s.g.header,
        vec![tx.clone()],
        Amount(0),
        s.key.public_key().pubkey_hash(),
    );
    assert!(matches!(accept(&mut s.store, &b1), Accepted::NewTip(_)));
    assert_eq!(s.store.tip().height, 1);
    assert_eq!(s.store.balance(&to).unwrap(), Amount(10));
    assert_eq!(
        s.store.balance(&s.key.public_key().pubkey_hash()).unwrap(),
        Amount(30)
    );
    let (bh, h, found) = s.store.find_transaction(&tx.txid()).unwrap().unwrap();
    assert_eq!((bh, h, found), (b1.hash(), 1, tx));
    assert_eq!(accept(&mut s.store, &b1), Accepted::AlreadyHave);
    let report = s.store.check_db().unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
}

#[test]
fn orphan_is_not_stored() {
    let mut s = setup();
    let p = easy_params();
    let pkh = s.key.public_key().pubkey_hash();
    let b1 = child(&p, &s.g.header, vec![], Amount(0), pkh);
    let b2 = child(&p, &b1.header, vec![], Amount(0), pkh);
    assert!(matches!(
        accept(&mut s.store, &b2),
        Accepted::Orphan { parent, block } if parent == b1.hash() && block.hash() == b2.hash()
    ));
    assert!(s.store.block(&b2.hash()).unwrap().is_none());
    accept(&mut s.store, &b1);
    assert!(matches!(accept(&mut s.store, &b2), Accepted::NewTip(_)));
}

#[test]
fn reorg_and_back_leave_the_utxo_set_byte_for_byte() {
    let mut s = setup();
    let p = easy_params();
    let pkh = s.key.public_key().pubkey_hash();
    let other = PubkeyHash([5; 20]);
    let before = s.store.utxo_digest().unwrap();

    // Branch A: one block spending the genesis coinbase.
    let ta = spend(
        &s.key,
        &outputs_of(&s.g.transactions[0]),
        other,
        Amount(7),
        Amount(0),
    );
    let a1 = child(&p, &s.g.header, vec![ta.clone()], Amount(0), pkh);
    accept(&mut s.store, &a1);
    let digest_a = s.store.utxo_digest().unwrap();
    assert_ne!(digest_a, before);

    // Branch B: two blocks, a different spend; more work, so it wins.
    let tb = spend(
        &s.key,
        &outputs_of(&s.g.transactions[0]),
        other,
        Amount(3),
        Amount(0),
    );
    let b1 = child_with_extra(&p, &s.g.header, vec![tb], Amount(0), pkh, 61);
    assert_eq!(accept(&mut s.store, &b1), Accepted::SideChain);
    assert_eq!(
        s.store.utxo_digest().unwrap(),
        digest_a,
        "a side block changes nothing"
    );
    let b2 = child(&p, &b1.header, vec![], Amount(0), pkh);
    match accept(&mut s.store, &b2) {
        Accepted::NewTip(u) => {
            assert_eq!(u.disconnected, vec![a1.clone()]);
            assert_eq!(u.connected, vec![b1.clone(), b2.clone()]);
            assert_eq!(u.returned_transactions(), vec![ta.clone()]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.store.tip().hash, b2.hash());
    assert!(s.store.find_transaction(&ta.txid()).unwrap().is_none());
    assert!(s.store.check_db().unwrap().problems.is_empty());
    let digest_b = s.store.utxo_digest().unwrap();

    // And back: branch A grows to three blocks.
    let a2 = child(&p, &a1.header, vec![], Amount(0), pkh);
    let a3 = child(&p, &a2.header, vec![], Amount(0), pkh);
    assert_eq!(accept(&mut s.store, &a2), Accepted::SideChain);
    assert!(matches!(accept(&mut s.store, &a3), Accepted::NewTip(_)));
    assert!(s.store.check_db().unwrap().problems.is_empty());
    // Disconnect A's extra blocks by hand via a longer B, then compare B's digest.
    let b3 = child(&p, &b2.header, vec![], Amount(0), pkh);
    let b4 = child(&p, &b3.header, vec![], Amount(0), pkh);
    accept(&mut s.store, &b3);
    accept(&mut s.store, &b4);
    assert_eq!(s.store.tip().hash, b4.hash());
    // B plus two empty blocks: B's digest plus two coinbases. Compare against a fresh store
    // that only ever saw branch B.
    let dir = tempfile::tempdir().unwrap();
    let mut fresh = ChainStore::create(&dir.path().join("b"), &s.g).unwrap();
    for b in [&b1, &b2, &b3, &b4] {
        accept(&mut fresh, b);
    }
    assert_eq!(fresh.utxo_digest().unwrap(), s.store.utxo_digest().unwrap());
    let _ = digest_b;
}

#[test]
fn invalid_block_changes_nothing_and_its_children_are_refused() {
    let mut s = setup();
    let p = easy_params();
    let pkh = s.key.public_key().pubkey_hash();
    let before = s.store.utxo_digest().unwrap();
    let thief = PrivateKey::generate();
    let bad_tx = spend(
        &thief,
        &outputs_of(&s.g.transactions[0]),
        pkh,
        Amount(20),
        Amount(0),
    );
    let bad = child(&p, &s.g.header, vec![bad_tx], Amount(0), pkh);
    let err = s.store.accept_block(&bad, NOW).unwrap_err();
    assert!(
        matches!(err.block_error(), Some(BlockError::Input(_))),
        "{err}"
    );
    assert_eq!(s.store.utxo_digest().unwrap(), before);
    assert_eq!(s.store.tip().hash, s.g.hash());
    // Remembered by its header alone: no body on disk.
    let entry = s.store.header_entry(&bad.hash()).unwrap().unwrap();
    assert_eq!(entry.status, chain_store::Status::Invalid);
    assert!(s.store.block(&bad.hash()).unwrap().is_none());
    let kid = child(&p, &bad.header, vec![], Amount(0), pkh);
    let err = s.store.accept_block(&kid, NOW).unwrap_err();
    assert!(
        matches!(err.block_error(), Some(BlockError::InvalidParent(_))),
        "{err}"
    );
    assert!(s.store.check_db().unwrap().problems.is_empty());
}

#[test]
fn mutated_duplicate_block_then_honest_block_is_accepted() {
    let mut s = setup();
    let p = easy_params();
    let pkh = s.key.public_key().pubkey_hash();
    let t1 = spend(
        &s.key,
        &outputs_of(&s.g.transactions[0]),
        pkh,
        Amount(5),
        Amount(0),
    );
    let t2 = spend(&s.key, &[outputs_of(&t1)[0]], pkh, Amount(5), Amount(0));
    let honest = child(&p, &s.g.header, vec![t1, t2], Amount(0), pkh);
    let mut mutated = honest.clone();
    let last = mutated.transactions.last().unwrap().clone();
    mutated.transactions.push(last);
    assert_eq!(mutated.hash(), honest.hash());
    let err = s.store.accept_block(&mutated, NOW).unwrap_err();
    assert!(matches!(
        err.block_error(),
        Some(BlockError::DuplicateTxid(_))
    ));
    assert!(matches!(accept(&mut s.store, &honest), Accepted::NewTip(_)));
}

#[test]
fn wrong_height_time_and_bits_are_refused() {
    let mut s = setup();
    let p = easy_params();
    let pkh = s.key.public_key().pubkey_hash();
    let mut b = child(&p, &s.g.header, vec![], Amount(0), pkh);
    b.header.time = NOW + 3 * 3600;
    chain_core::miner::solve(&mut b, 1, &Default::default(), &mut |_| {});
    let e = s.store.accept_block(&b, NOW).unwrap_err();
    assert!(matches!(
        e.block_error(),
        Some(BlockError::TimeTooNew { .. })
    ));
    // Too far ahead is a timing fault: accepted later when the clock catches up.
    assert!(matches!(
        s.store.accept_block(&b, NOW + 3 * 3600).unwrap(),
        Accepted::NewTip(_)
    ));
}

#[test]
fn reindex_rebuilds_the_same_state() {
    let mut s = setup();
    let p = easy_params();
    let pkh = s.key.public_key().pubkey_hash();
    let tx = spend(
        &s.key,
        &outputs_of(&s.g.transactions[0]),
        PubkeyHash([1; 20]),
        Amount(4),
        Amount(1),
    );
    let b1 = child(&p, &s.g.header, vec![tx], Amount(1), pkh);
    accept(&mut s.store, &b1);
    let before = s.store.utxo_digest().unwrap();
    let n = s.store.reindex().unwrap();
    assert_eq!(n, 3);
    assert_eq!(s.store.utxo_digest().unwrap(), before);
    assert!(s.store.check_db().unwrap().problems.is_empty());
    let hashes = s.store.hashes_after(&[s.g.hash()], None, 500).unwrap();
    assert_eq!(hashes, vec![b1.hash()]);
    assert_eq!(s.store.locator().unwrap(), vec![b1.hash(), s.g.hash()]);
}

#[test]
fn retargeting_follows_bitcoins_rule() {
    use chain_core::miner::{assemble_block, solve};
    use chain_core::pow::{retarget, POW_LIMIT_BITS};
    let p = chain_core::block::ChainParams {
        retarget_interval: 4,
        target_spacing: 60,
        ..easy_params()
    };
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    let g = genesis(&p, pkh);
    let mut s = ChainStore::create(&dir.path().join("r"), &g).unwrap();
    // Three blocks 10 s apart: far faster than 60 s.
    let mut parent = g.header;
    for _ in 0..3 {
        let b = child_with_extra(&p, &parent, vec![], Amount(0), pkh, 10);
        accept(&mut s, &b);
        parent = b.header;
    }
    // Block 4 must carry the retargeted bits: 30 s for 240 s expected, clamped to a quarter.
    let expected = retarget(POW_LIMIT_BITS, 30, 240);
    assert_ne!(expected, POW_LIMIT_BITS);
    let t = |c: chain_core::CompactTarget| c.to_target().unwrap().0;
    // A quarter of the old target, rounded down by the compact encoding.
    assert!(t(expected) <= t(POW_LIMIT_BITS) / 4 && t(expected) > t(POW_LIMIT_BITS) / 5);
    let mut stale = assemble_block(
        &p,
        &parent,
        POW_LIMIT_BITS,
        parent.time + 10,
        pkh,
        vec![],
        Amount(0),
    );
    assert!(solve(&mut stale, 1, &Default::default(), &mut |_| {}));
    let e = s.accept_block(&stale, NOW).unwrap_err();
    assert!(
        matches!(e.block_error(), Some(BlockError::UnexpectedBits { .. })),
        "{e}"
    );
    let mut good = assemble_block(
        &p,
        &parent,
        expected,
        parent.time + 10,
        pkh,
        vec![],
        Amount(0),
    );
    assert!(solve(&mut good, 1, &Default::default(), &mut |_| {}));
    assert!(matches!(accept(&mut s, &good), Accepted::NewTip(_)));
    assert_eq!(
        s.context_for_tip(NOW).unwrap().expected_bits,
        expected,
        "no retarget until the next interval"
    );
}

#[test]
fn a_block_written_behind_reads_at_once_and_lands() {
    let mut s = setup();
    let pkh = s.key.public_key().pubkey_hash();
    // Each block spends the previous block's payment, so its inputs are
    // coins the batch still in flight created.
    let mut coin = outputs_of(&s.g.transactions[0]);
    let mut parent = s.g.header;
    let mut hashes = Vec::new();
    for i in 0..5u64 {
        let tx = spend(&s.key, &coin, pkh, Amount(1), Amount(0));
        let b = child(&easy_params(), &parent, vec![tx.clone()], Amount(0), pkh);
        assert!(
            matches!(accept(&mut s.store, &b), Accepted::NewTip(_)),
            "{i}"
        );
        let h = b.hash();
        assert_eq!(s.store.tip().hash, h);
        assert_eq!(s.store.block_bytes(&h).unwrap(), Some(b.encode()));
        assert_eq!(
            s.store.header_entry(&h).unwrap().unwrap().status,
            chain_store::Status::Valid
        );
        assert_eq!(s.store.hash_at(b.header.height).unwrap(), Some(h));
        assert!(s.store.coin(&coin[0].0).unwrap().is_none(), "spent at once");
        let paid = outputs_of(&tx);
        assert!(
            s.store.coin(&paid[0].0).unwrap().is_some(),
            "created at once"
        );
        assert!(s.store.find_transaction(&tx.txid()).unwrap().is_some());
        coin = paid[..1].to_vec();
        parent = b.header;
        hashes.push(h);
    }
    // Iterating waits for the last batch: the address index and the UTXO
    // set agree, the five coinbases included.
    let owned = s.store.utxos_for(&pkh).unwrap().len();
    assert_eq!(owned, s.store.all_utxos().unwrap().len());
    assert!(owned >= 6, "{owned}");
    let path = s.store.path().to_path_buf();
    drop(s.store);
    let again = ChainStore::open(&path).unwrap();
    assert_eq!(again.tip().hash, *hashes.last().unwrap());
    assert!(again.check_db().unwrap().problems.is_empty());
}

#[test]
fn the_reader_serves_chain_reads_within_their_limits() {
    let mut s = setup();
    let p = easy_params();
    let pkh = s.key.public_key().pubkey_hash();
    let mut parent = s.g.header;
    let mut chain = vec![s.g.clone()];
    for _ in 0..6 {
        let b = child(&p, &parent, vec![], Amount(0), pkh);
        accept(&mut s.store, &b);
        parent = b.header;
        chain.push(b);
    }
    s.store.sync().unwrap();
    let r = s.store.reader();
    assert_eq!(r.tip().unwrap(), (chain[6].hash(), 6));
    let locator = vec![chain[2].hash()];
    assert_eq!(
        r.headers_after(&locator, None, 3).unwrap(),
        s.store.headers_after(&locator, None, 3).unwrap()
    );
    assert_eq!(r.hashes_after(&locator, None, 100).unwrap().len(), 4);
    // Seven coinbases pay the key; the read stops at the limit, and
    // skips what it is told to.
    let all = s.store.utxos_for(&pkh).unwrap();
    assert_eq!(all.len(), 7);
    assert_eq!(r.utxos_for_at_most(&pkh, 3, |_| false).unwrap().len(), 3);
    let first = all[0].0;
    let some = r.utxos_for_at_most(&pkh, 100, |op| *op == first).unwrap();
    assert_eq!(some.len(), 6);
    assert!(some.iter().all(|(op, _)| *op != first));
    // Only blocks validated in full are served.
    assert!(r.valid_block_bytes(&chain[3].hash()).unwrap().is_some());
    let side = child(&p, &chain[5].header, vec![], Amount(1), pkh);
    assert!(r.valid_block_bytes(&side.hash()).unwrap().is_none());
}
