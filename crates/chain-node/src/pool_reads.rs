//! Reads of the mempool that the chain actor answers for the HTTP API and
//! other local clients: a typed request and answer each, and each bounded in
//! its work by [`MAX_POOL_ITEMS`] whatever the pool holds. Store reads never
//! come here: callers read the store from its reader.

use chain_core::mempool::FeeBand;
use chain_core::{Amount, Mempool, OutPoint, PubkeyHash, Transaction, TxOut, Txid};

/// Most items (transactions looked at, outputs or txids returned) one
/// pool read handles.
pub const MAX_POOL_ITEMS: usize = 1_000;

/// A read of the mempool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolRequest {
    /// One transaction, with the outputs its inputs spend that pool
    /// transactions created (`None` for coins of the chain: the caller
    /// reads those from the store).
    Tx(Txid),
    /// One address's pool activity.
    Address(PubkeyHash),
    /// Counts, bytes, fees and the fee-rate histogram.
    Summary,
    /// Up to `limit` txids in arrival order after `after`.
    Page {
        /// From just after this one (`None`: the first).
        after: Option<Txid>,
        /// At most this many (capped at [`MAX_POOL_ITEMS`]).
        limit: usize,
    },
    /// Nothing: the actor answers, so it is alive.
    Ping,
}

/// An address's pool activity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPool {
    /// Its confirmed coins that pool transactions spend.
    pub spent: Vec<OutPoint>,
    /// Pool outputs paying it, unspent in the pool.
    pub pending: Vec<(OutPoint, Amount)>,
    /// Pool transactions paying or spending from it, newest first.
    pub txids: Vec<Txid>,
}

/// The pool in numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolSummary {
    /// Transactions.
    pub count: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Their fees.
    pub total_fee: Amount,
    /// The fee-rate histogram, lowest band first.
    pub bands: Vec<FeeBand>,
}

/// The answer to a [`PoolRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolResponse {
    /// To [`PoolRequest::Tx`]: the transaction and, per input, the pool
    /// output it spends; `None` when the pool lacks it.
    Tx(Option<(Transaction, Vec<Option<TxOut>>)>),
    /// To [`PoolRequest::Address`].
    Address(AddressPool),
    /// To [`PoolRequest::Summary`].
    Summary(PoolSummary),
    /// To [`PoolRequest::Page`]: `None` when `after` left the pool.
    Page(Option<Vec<Txid>>),
    /// To [`PoolRequest::Ping`].
    Pong,
}

/// Answers `request` from `pool`.
pub fn answer(pool: &Mempool, request: PoolRequest) -> PoolResponse {
    match request {
        PoolRequest::Tx(txid) => PoolResponse::Tx(pool.get(&txid).map(|tx| {
            let spent = tx
                .inputs
                .iter()
                .map(|i| {
                    pool.get(&i.prevout.txid)
                        .and_then(|p| p.outputs.get(i.prevout.vout as usize).copied())
                })
                .collect();
            (tx.clone(), spent)
        })),
        PoolRequest::Address(pkh) => {
            let mut txids = pool.txids_for(&pkh);
            txids.reverse();
            txids.truncate(MAX_POOL_ITEMS);
            let mut pending: Vec<(OutPoint, Amount)> = pool
                .outputs_paying(&pkh, MAX_POOL_ITEMS)
                .into_iter()
                .map(|(op, o)| (op, o.value))
                .collect();
            pending.truncate(MAX_POOL_ITEMS);
            PoolResponse::Address(AddressPool {
                spent: pool.coins_spent_from(&pkh, MAX_POOL_ITEMS),
                pending,
                txids,
            })
        }
        PoolRequest::Summary => PoolResponse::Summary(PoolSummary {
            count: pool.len(),
            bytes: pool.bytes(),
            total_fee: pool.total_fee(),
            bands: pool.fee_histogram().to_vec(),
        }),
        PoolRequest::Page { after, limit } => {
            PoolResponse::Page(pool.txids_after(after.as_ref(), limit.min(MAX_POOL_ITEMS)))
        }
        PoolRequest::Ping => PoolResponse::Pong,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chain_core::test_utils::{made_up_coins, spend, utxo_of};
    use chain_core::PrivateKey;

    #[test]
    fn each_read_is_bounded_whatever_the_pool_holds() {
        let key = PrivateKey::generate();
        let me = key.public_key().pubkey_hash();
        let coins = made_up_coins(me, 0, 1_500, 1_000, 9);
        let utxo = utxo_of(&coins);
        let mut pool = Mempool::default();
        for c in &coins {
            let tx = spend(&key, &[*c], me, Amount(10), Amount(5));
            pool.accept(tx, &utxo, 0).unwrap();
        }
        let PoolResponse::Address(a) = answer(&pool, PoolRequest::Address(me)) else {
            panic!("an address answer");
        };
        assert_eq!(a.txids.len(), MAX_POOL_ITEMS);
        assert!(a.pending.len() <= MAX_POOL_ITEMS);
        assert_eq!(a.spent.len(), MAX_POOL_ITEMS);
        let PoolResponse::Page(Some(page)) = answer(
            &pool,
            PoolRequest::Page {
                after: None,
                limit: usize::MAX,
            },
        ) else {
            panic!("a page");
        };
        assert_eq!(page.len(), MAX_POOL_ITEMS);
        let PoolResponse::Summary(s) = answer(&pool, PoolRequest::Summary) else {
            panic!("a summary");
        };
        assert_eq!(s.count, 1_500);
        assert_eq!(s.total_fee, Amount(5 * 1_500));
    }
}
