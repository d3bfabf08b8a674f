//! proptest strategies for chain-core's types.

use crate::{Amount, OutPoint, PubkeyHash, Transaction, TxIn, TxOut, Txid};
use proptest::prelude::*;

/// Any transaction the encoding can carry, valid or not: any version, up to
/// 4 inputs with byte strings of any content, up to 300 outputs.
pub fn tx() -> impl Strategy<Value = Transaction> {
    (
        any::<u32>(),
        prop::collection::vec(
            (
                any::<[u8; 32]>(),
                any::<u32>(),
                prop::collection::vec(any::<u8>(), 0..300),
                prop::collection::vec(any::<u8>(), 0..40),
            ),
            0..5,
        ),
        prop::collection::vec((any::<u64>(), any::<[u8; 20]>()), 0..300),
    )
        .prop_map(|(version, ins, outs)| Transaction {
            version,
            inputs: ins
                .into_iter()
                .map(|(t, v, s, p)| TxIn {
                    prevout: OutPoint {
                        txid: Txid(t),
                        vout: v,
                    },
                    signature: s,
                    pubkey: p,
                })
                .collect(),
            outputs: outs
                .into_iter()
                .map(|(v, h)| TxOut {
                    value: Amount(v),
                    pubkey_hash: PubkeyHash(h),
                })
                .collect(),
        })
}
