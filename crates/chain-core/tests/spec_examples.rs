//! The rules and worked examples of `docs/consensus.md`, checked against
//! the same numbers the document gives: the retarget example and its
//! clamps, the compact encoding's normalisation, the median time with an
//! even number of blocks, the fee-rate example, the signature field's
//! length limit and the stable names that start a refusal's text.

#![allow(clippy::unwrap_used)]

use chain_core::mempool::{FeeRate, MIN_FEE_RATE};
use chain_core::pow::{retarget, POW_LIMIT_BITS};
use chain_core::test_utils::spend;
use chain_core::transaction::MAX_SIGNATURE_LEN;
use chain_core::validation::{
    check_header_context, median_time, next_bits, HeaderContext, InputError,
};
use chain_core::{
    Amount, BlockError, BlockHash, BlockHeader, ChainParams, CompactTarget, MempoolError,
    MerkleRoot, OutPoint, PrivateKey, PubkeyHash, Target, TxError, TxOut, Txid,
};
use primitive_types::U256;

/// The example's chain: a retarget every 10 blocks, 60 s apart.
fn retargeting() -> ChainParams {
    ChainParams {
        initial_bits: CompactTarget(0x1f10_0000),
        retarget_interval: 10,
        target_spacing: 60,
        ..ChainParams::default()
    }
}

fn header(height: u32, time: u64, bits: CompactTarget) -> BlockHeader {
    BlockHeader {
        version: 1,
        prev: BlockHash([0; 32]),
        merkle_root: MerkleRoot([0; 32]),
        time,
        bits,
        height,
        nonce: 0,
    }
}

/// The bits of block 20 when block 19 has `t19` and block 10 has `t10`.
fn bits_at_20(t10: u64, t19: u64) -> CompactTarget {
    let parent = header(19, t19, CompactTarget(0x1f10_0000));
    next_bits(&retargeting(), &parent, |h| match h {
        10 => Some(t10),
        _ => None,
    })
}

#[test]
fn the_worked_retarget_example() {
    // Block 20 retargets: t[19] - t[10] = 1,000 s against 10 x 60 = 600 s.
    // 2^244 x 1000 / 600 = 0x1aaaaa...aa (rounded down), whose compact form
    // keeps three bytes: 0x1f1aaaaa.
    assert_eq!(
        bits_at_20(1_700_000_000, 1_700_001_000),
        CompactTarget(0x1f1a_aaaa)
    );
    let exact = (U256::one() << 244) * U256::from(1000u32) / U256::from(600u32);
    let kept = CompactTarget(0x1f1a_aaaa).to_target().unwrap().0;
    assert!(kept <= exact && exact - kept < U256::one() << 224);
}

#[test]
fn only_multiples_of_the_interval_retarget() {
    let parent = header(18, 1_700_001_000, CompactTarget(0x1f10_0000));
    let bits = next_bits(&retargeting(), &parent, |_| Some(1_700_000_000));
    assert_eq!(
        bits,
        CompactTarget(0x1f10_0000),
        "block 19 keeps its parent's bits"
    );
}

#[test]
fn the_timespan_is_clamped_to_a_quarter_and_four_times() {
    // 3,000 s is past 4 x 600: clamped to 2,400, four times easier.
    assert_eq!(
        bits_at_20(1_700_000_000, 1_700_003_000),
        CompactTarget(0x1f40_0000)
    );
    // 100 s is under 600 / 4: clamped to 150, four times harder.
    assert_eq!(
        bits_at_20(1_700_000_000, 1_700_000_100),
        CompactTarget(0x1f04_0000)
    );
    // 0xffff x 2^232 x 2,400 does not fit in 256 bits, so the division
    // comes first: (T / 600) x 2,400 gives 0x2003fffb, where the exact
    // T x 2,400 / 600 would give 0x2003fffc.
    assert_eq!(
        retarget(CompactTarget(0x2000_ffff), 2_400, 600),
        CompactTarget(0x2003_fffb)
    );
    // Past the limit, the limit.
    assert_eq!(retarget(POW_LIMIT_BITS, 2_400, 600), POW_LIMIT_BITS);
}

#[test]
fn a_zero_or_negative_timespan_counts_as_a_quarter() {
    assert_eq!(
        bits_at_20(1_700_000_000, 1_700_000_000),
        CompactTarget(0x1f04_0000)
    );
    // Block 19 earlier than block 10: the timespan is taken as 0.
    assert_eq!(
        bits_at_20(1_700_000_000, 1_699_999_000),
        CompactTarget(0x1f04_0000)
    );
}

#[test]
fn the_compact_form_is_normalised_when_the_top_bit_would_be_set() {
    // 0x800000 needs 3 bytes, but a mantissa with bit 23 set reads as
    // negative: one more byte, mantissa 0x008000.
    assert_eq!(
        Target(U256::from(0x80_0000u32)).to_compact(),
        CompactTarget(0x0400_8000)
    );
    assert_eq!(
        Target(U256::from(0x1234_5678_u64)).to_compact(),
        CompactTarget(0x0412_3456),
        "rounded down to three bytes"
    );
}

#[test]
fn the_median_of_an_even_count_is_the_upper_middle() {
    assert_eq!(median_time(&[40, 10, 30, 20]), 30);
    assert_eq!(median_time(&[7]), 7);
    assert_eq!(median_time(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), 6);
    let ctx = HeaderContext {
        parent_height: 3,
        median_time_past: median_time(&[40, 10, 30, 20]),
        expected_bits: POW_LIMIT_BITS,
        now: 1_000,
    };
    let at = |time| check_header_context(&header(4, time, POW_LIMIT_BITS), &ctx);
    assert!(matches!(at(30), Err(BlockError::TimeTooOld { .. })));
    assert!(at(31).is_ok());
}

#[test]
fn the_worked_fee_rate_example() {
    // 1,482 bytes paying 1: 1,000 / 1,482 rounds down to 0, free.
    assert_eq!(FeeRate::of(Amount(1), 1_482), FeeRate(0));
    assert!(FeeRate::of(Amount(1), 1_482) < MIN_FEE_RATE);
    // Paying 2: 2,000 / 1,482 rounds down to 1, not free.
    assert_eq!(FeeRate::of(Amount(2), 1_482), FeeRate(1));
    // The fee a free-relay refusal names: 1 x 1,482 / 1,000, rounded up.
    assert_eq!(MIN_FEE_RATE.fee_for(1_482), Amount(2));
    // 226 bytes paying 1: 1,000 / 226 = 4 per 1,000 bytes.
    assert_eq!(FeeRate::of(Amount(1), 226), FeeRate(4));
}

#[test]
fn a_signature_field_holds_1_to_72_bytes() {
    assert_eq!(MAX_SIGNATURE_LEN, 72);
    let key = PrivateKey::generate();
    let coin = (
        OutPoint {
            txid: Txid([3; 32]),
            vout: 0,
        },
        TxOut {
            value: Amount(10),
            pubkey_hash: key.public_key().pubkey_hash(),
        },
    );
    let tx = spend(&key, &[coin], PubkeyHash([9; 20]), Amount(5), Amount(1));
    assert!(tx.check().is_ok());
    for (len, malformed) in [(0, true), (1, false), (72, false), (73, true)] {
        let mut t = tx.clone();
        t.inputs[0].signature = vec![0x30; len];
        let r = t.check();
        assert_eq!(
            matches!(r, Err(TxError::MalformedInput { .. })),
            malformed,
            "{len} bytes: {r:?}"
        );
    }
}

#[test]
fn a_refusal_starts_with_its_rules_name() {
    let txid = Txid([1; 32]);
    let cases = [
        (MempoolError::AlreadyKnown(txid), "AlreadyKnown"),
        (
            MempoolError::Tx(TxError::MalformedInput { txid, index: 0 }),
            "MalformedInput",
        ),
        (
            MempoolError::Input(InputError::Missing {
                txid,
                index: 0,
                outpoint: OutPoint { txid, vout: 1 },
            }),
            "Missing",
        ),
        (
            MempoolError::PoolFull {
                txid,
                rate: FeeRate(0),
                max_bytes: 1,
                needed: Amount(1),
            },
            "PoolFull",
        ),
    ];
    for (e, name) in cases {
        assert_eq!(e.code(), name);
        let reason = e.reason();
        assert!(reason.starts_with(&format!("{name}: ")), "{reason}");
        assert!(reason.ends_with(&e.to_string()), "{reason}");
    }
}
