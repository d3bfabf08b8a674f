//! Helpers for tests that build invalid blocks on a stored chain. Only
//! compiled for tests or with the `test-utils` feature.

use crate::{ChainStore, StoreError};
use chain_core::keys::PrivateKey;
use chain_core::test_utils::cases::CaseBase;
use chain_core::transaction::OutPoint;

/// The base for the invalid-block and invalid-transaction cases on top of
/// the store's tip. `key` must own the genesis coinbase, already spent on
/// this chain, and at least two unspent outputs.
pub fn case_base(store: &ChainStore, key: PrivateKey, now: u64) -> Result<CaseBase, StoreError> {
    let tip = store.tip();
    let header = store
        .header_entry(&tip.hash)?
        .expect("the tip has a header entry")
        .header;
    let genesis = store
        .block(&store.genesis_hash())?
        .expect("the genesis is stored");
    let cb = &genesis.transactions[0];
    let spent = (
        OutPoint {
            txid: cb.txid(),
            vout: 0,
        },
        cb.outputs[0],
    );
    assert!(store.coin(&spent.0)?.is_none(), "the genesis coin is spent");
    let pkh = key.public_key().pubkey_hash();
    let coins: Vec<_> = store
        .utxos_for(&pkh)?
        .into_iter()
        .map(|(op, c)| (op, c.output))
        .collect();
    assert!(coins.len() >= 2, "the key owns two unspent outputs");
    Ok(CaseBase {
        params: *store.params(),
        tip: header,
        median_time_past: store.context_for_tip(now)?.median_time_past,
        now,
        key,
        coins,
        spent,
    })
}
