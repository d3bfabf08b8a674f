//! Property tests of the consensus encoding: every transaction and block
//! round-trips, the counted size is the encoded size, and any bytes that
//! decode re-encode to exactly themselves (one encoding per object).

#![allow(clippy::unwrap_used)]

use chain_core::test_utils::strategies::tx;
use chain_core::{Block, BlockHash, BlockHeader, CompactTarget, MerkleRoot, Transaction};
use proptest::prelude::*;

fn block() -> impl Strategy<Value = Block> {
    (
        any::<[u8; 92]>().prop_map(|b| BlockHeader::from_bytes(&b)),
        prop::collection::vec(tx(), 0..4),
    )
        .prop_map(|(header, transactions)| Block {
            header,
            transactions,
        })
}

proptest! {
    #[test]
    fn transactions_round_trip_and_size_is_exact(t in tx()) {
        let bytes = t.encode();
        prop_assert_eq!(bytes.len(), t.size());
        let back = Transaction::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &t);
        prop_assert_eq!(back.txid(), t.txid());
    }

    #[test]
    fn blocks_round_trip_with_txids_from_the_bytes(b in block()) {
        let bytes = b.encode();
        prop_assert_eq!(bytes.len(), b.encoded_len());
        let (back, txids) = Block::decode_with_txids(&bytes).unwrap();
        prop_assert_eq!(&back, &b);
        prop_assert_eq!(txids, b.txids());
        prop_assert_eq!(Block::header_of(&bytes).unwrap(), b.header);
    }

    #[test]
    fn whatever_decodes_re_encodes_to_the_same_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(t) = Transaction::decode(&bytes) {
            prop_assert_eq!(t.encode(), bytes.clone());
        }
        if let Ok(b) = Block::decode(&bytes) {
            prop_assert_eq!(b.encode(), bytes);
        }
    }

    #[test]
    fn a_mutated_encoding_is_refused_or_is_another_object(t in tx(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = t.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(other) = Transaction::decode(&bytes) {
            prop_assert_ne!(&other, &t);
            prop_assert_eq!(other.encode(), bytes);
        }
    }
}

#[test]
fn a_block_header_is_its_92_bytes_in_a_block() {
    let header = BlockHeader {
        version: 1,
        prev: BlockHash([0xaa; 32]),
        merkle_root: MerkleRoot([0xbb; 32]),
        time: 0x0102_0304,
        bits: CompactTarget(0x1f10_0000),
        height: 7,
        nonce: 9,
    };
    let b = Block {
        header,
        transactions: vec![],
    };
    let bytes = b.encode();
    assert_eq!(bytes.len(), 93);
    assert_eq!(&bytes[..92], &header.to_bytes());
    assert_eq!(bytes[92], 0, "a zero transaction count");
    // A count of 1 with nothing after it claims more than the bytes hold.
    let mut short = bytes.clone();
    short[92] = 1;
    assert!(Block::decode(&short).is_err());
}
