use super::*;
use chain_core::pow::CompactTarget;
use chain_core::{Amount, MerkleRoot, OutPoint, PubkeyHash, TxIn, TxOut};

/// SipHash-2-4's reference vector (Aumasson and Bernstein, "SipHash: a
/// fast short-input PRF", appendix A): key 00..0f, message 00..0e.
#[test]
fn siphash_matches_the_papers_vector() {
    let mut h = SipHasher24::new_with_keys(0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
    h.write(&(0u8..15).collect::<Vec<u8>>());
    assert_eq!(h.finish(), 0xa129_ca61_49be_45e5);
}

/// The worked example of `docs/protocol.md`.
fn example_header() -> BlockHeader {
    BlockHeader {
        version: 1,
        prev: BlockHash([0x11; 32]),
        merkle_root: MerkleRoot([0x22; 32]),
        time: 1_700_000_000,
        bits: CompactTarget(0x1f00_ffff),
        height: 7,
        nonce: 42,
    }
}

#[test]
fn the_worked_example_of_the_docs() {
    let header = example_header();
    let nonce = [0, 1, 2, 3, 4, 5, 6, 7];
    let key = ShortIdKey::new(&header, nonce);
    let id = key.short_id(&Txid([0x33; 32]));
    assert_eq!(hex(&header.to_bytes()), EXAMPLE_HEADER);
    assert_eq!((key.k0, key.k1), EXAMPLE_KEYS);
    assert_eq!(hex(&id.0), EXAMPLE_SHORT_ID);
}

/// The example's values, computed independently with Python's `hashlib`
/// and the `siphash24` package (`siphash24(txid, key=sha256(...)[:16])`).
const EXAMPLE_HEADER: &str = "01000000\
    1111111111111111111111111111111111111111111111111111111111111111\
    2222222222222222222222222222222222222222222222222222222222222222\
    00f1536500000000ffff001f070000002a00000000000000";
const EXAMPLE_KEYS: (u64, u64) = (0xdf0e_60ca_3a67_2ace, 0xcfcc_28ea_4f8b_b790);
const EXAMPLE_SHORT_ID: &str = "440ac26ed9d8";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn payment(i: u8) -> Transaction {
    Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: OutPoint {
                txid: Txid([i; 32]),
                vout: 0,
            },
            signature: vec![i; 70],
            pubkey: vec![2; 33],
        }],
        outputs: vec![TxOut {
            value: Amount(u64::from(i)),
            pubkey_hash: PubkeyHash([i; 20]),
        }],
    }
}

fn block_of(n: u8) -> Block {
    let mut coinbase = payment(0);
    coinbase.inputs.clear();
    let transactions: Vec<Transaction> = std::iter::once(coinbase)
        .chain((1..=n).map(payment))
        .collect();
    let ids: Vec<Txid> = transactions.iter().map(Transaction::txid).collect();
    let mut header = example_header();
    header.merkle_root = merkle_root(&ids);
    Block {
        header,
        transactions,
    }
}

fn pool_of(txs: &[Transaction]) -> Vec<(Txid, Transaction)> {
    txs.iter().map(|t| (t.txid(), t.clone())).collect()
}

fn partial(r: Rebuild) -> PartialBlock {
    match r {
        Rebuild::Partial(p) => p,
        Rebuild::DuplicateIds => panic!("no duplicate ids here"),
    }
}

#[test]
fn a_block_is_rebuilt_from_the_pool_and_the_missing_transactions() {
    let block = block_of(5);
    let cb = CompactBlock::of(&block, [9; 8]).expect("has a coinbase");
    assert_eq!(cb.short_ids.len(), 5);
    // The pool has payments 1, 3 and 5, and two the block does not hold.
    let txs = &block.transactions;
    let pool = pool_of(&[
        txs[1].clone(),
        txs[3].clone(),
        txs[5].clone(),
        payment(40),
        payment(41),
    ]);
    let mut p = partial(cb.rebuild(pool.iter().map(|(a, b)| (a, b))));
    assert_eq!(p.missing(), vec![2, 4]);
    assert_eq!(p.clone().finish(), Err(RebuildError::Incomplete(2)));
    assert_eq!(
        p.clone().fill(vec![txs[2].clone()]),
        Err(RebuildError::WrongCount { asked: 2, got: 1 })
    );
    // Others than the block's: the Merkle root says so.
    let mut wrong = p.clone();
    wrong
        .fill(vec![txs[4].clone(), txs[2].clone()])
        .expect("two for two");
    assert_eq!(wrong.finish(), Err(RebuildError::MerkleMismatch));
    p.fill(vec![txs[2].clone(), txs[4].clone()])
        .expect("two for two");
    assert_eq!(p.finish(), Ok(block.clone()));
    // With every payment in the pool, nothing is missing.
    let all = pool_of(&txs[1..]);
    let p = partial(cb.rebuild(all.iter().map(|(a, b)| (a, b))));
    assert!(p.missing().is_empty());
    assert_eq!(p.finish(), Ok(block));
}

#[test]
fn repeated_short_ids_and_wrong_matches_are_caught() {
    let block = block_of(3);
    let mut cb = CompactBlock::of(&block, [1; 8]).expect("has a coinbase");
    let pool = pool_of(&block.transactions[1..]);
    // A pool transaction whose short id the block names in another's place
    // is taken, and the Merkle root refuses the result.
    let mut swapped = cb.clone();
    swapped.short_ids.swap(0, 1);
    let p = partial(swapped.rebuild(pool.iter().map(|(a, b)| (a, b))));
    assert!(p.missing().is_empty());
    assert_eq!(p.finish(), Err(RebuildError::MerkleMismatch));
    // Two equal short ids: no rebuild.
    cb.short_ids[2] = cb.short_ids[0];
    assert_eq!(
        cb.rebuild(pool.iter().map(|(a, b)| (a, b))),
        Rebuild::DuplicateIds
    );
}

#[test]
fn a_compact_block_round_trips_and_is_small() {
    let block = block_of(100);
    let cb = CompactBlock::of(&block, [7; 8]).expect("has a coinbase");
    let a = crate::Announcement::CompactBlock(cb);
    let bytes = a.encode();
    assert_eq!(crate::Announcement::decode(&bytes), Ok(a.clone()));
    // Variant 2, the 92-byte header, the nonce, 100 short ids (a 1-byte
    // count), then the coinbase.
    assert_eq!(bytes[0], 2);
    let coinbase = block.transactions[0].encode().len();
    assert_eq!(bytes.len(), 1 + 92 + 8 + 1 + 600 + 1 + coinbase);
    let full: usize = block.encoded_len();
    assert!(bytes.len() * 5 < full, "{} vs {full}", bytes.len());
}
