//! Property tests: every message round-trips through its codec, and no input
//! makes a decoder panic.

#![allow(clippy::unwrap_used)]

use chain_core::test_utils::strategies::tx;
use chain_core::{Amount, BlockHash, OutPoint, PubkeyHash, Transaction, Txid};
use p2p_proto::*;
use proptest::prelude::*;

fn hash() -> impl Strategy<Value = BlockHash> {
    any::<[u8; 32]>().prop_map(BlockHash)
}

fn status() -> impl Strategy<Value = Status> {
    (
        any::<u32>(),
        hash(),
        any::<u32>(),
        hash(),
        any::<[u8; 32]>(),
        "[a-z/0-9.]{0,40}",
    )
        .prop_map(|(v, g, h, b, w, a)| Status {
            protocol_version: v,
            genesis: g,
            best_height: h,
            best_hash: b,
            total_work: w,
            agent: a,
        })
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        status().prop_map(Request::Status),
        (
            prop::collection::vec(hash(), 0..MAX_LOCATOR),
            prop::option::of(hash())
        )
            .prop_map(|(locator, stop)| Request::GetBlocks { locator, stop }),
        prop::collection::vec(hash(), 0..MAX_GETDATA)
            .prop_map(|hashes| Request::GetData { hashes }),
        tx().prop_map(Request::SubmitTx),
        any::<[u8; 20]>().prop_map(|h| Request::GetUtxos {
            pubkey_hash: PubkeyHash(h)
        }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        status().prop_map(Response::Status),
        prop::collection::vec(hash(), 0..MAX_INV).prop_map(|hashes| Response::Inv { hashes }),
        (any::<[u8; 32]>()).prop_map(|t| Response::TxAccepted { txid: Txid(t) }),
        (any::<[u8; 32]>(), "[ -~]{0,100}").prop_map(|(t, reason)| Response::TxRejected {
            txid: Txid(t),
            reason
        }),
        (
            any::<u32>(),
            prop::collection::vec(
                (
                    any::<[u8; 32]>(),
                    any::<u32>(),
                    any::<u64>(),
                    prop::option::of(any::<u32>())
                ),
                0..20
            )
        )
            .prop_map(|(height, u)| Response::Utxos {
                height,
                utxos: u
                    .into_iter()
                    .map(|(t, v, a, c)| UtxoEntry {
                        outpoint: OutPoint {
                            txid: Txid(t),
                            vout: v
                        },
                        value: Amount(a),
                        confirmed_height: c,
                        change: c.is_none() && v % 2 == 0
                    })
                    .collect()
            }),
        "[ -~]{0,100}".prop_map(|reason| Response::Error { reason }),
    ]
}

proptest! {
    #[test]
    fn requests_round_trip(r in request()) {
        prop_assert_eq!(Request::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn responses_round_trip(r in response()) {
        prop_assert_eq!(Response::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn tx_announcements_round_trip(t in tx()) {
        let a = Announcement::Tx(t);
        prop_assert_eq!(Announcement::decode(&a.encode()).unwrap(), a);
    }

    #[test]
    fn garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Request::decode(&bytes);
        let _ = Response::decode(&bytes);
        let _ = Announcement::decode(&bytes);
        let _ = chain_core::Block::decode(&bytes);
        let _ = Transaction::decode(&bytes);
    }
}

#[test]
fn block_announcement_round_trips() {
    let key = chain_core::PrivateKey::generate();
    let g = chain_core::test_utils::genesis(
        &chain_core::test_utils::easy_params(),
        key.public_key().pubkey_hash(),
    );
    let a = Announcement::Block((&g).into());
    let bytes = a.encode();
    // Variant 0, a varint length, then the block's consensus bytes.
    let block = g.encode();
    assert_eq!(bytes[0], 0);
    assert!(bytes.ends_with(&block));
    assert_eq!(Announcement::decode(&bytes).unwrap(), a);
    let Announcement::Block(b) = Announcement::decode(&bytes).unwrap() else {
        panic!("a block announcement")
    };
    assert_eq!(b.hash().unwrap(), g.hash());
    assert_eq!(b.decode().unwrap(), g);
}

/// The chainless `Status` request of `docs/protocol.md`, byte by byte.
#[test]
fn the_documented_chainless_status_bytes() {
    let status = Request::Status(Status {
        protocol_version: PROTOCOL_VERSION,
        genesis: BlockHash([0; 32]),
        best_height: 0,
        best_hash: BlockHash([0; 32]),
        total_work: [0; 32],
        agent: "py".into(),
    });
    let mut expected = vec![0x00, 0x04];
    expected.extend([0u8; 32]);
    expected.push(0x00);
    expected.extend([0u8; 64]);
    expected.extend([0x02, b'p', b'y']);
    assert_eq!(status.encode(), expected);
    assert_eq!(Request::decode(&expected).unwrap(), status);
}
