//! `send --mint`: a payment minted straight into the local chain, as the
//! tutorial's single-node step does.

use anyhow::{bail, Result};
use chain_core::{Address, Amount, Block, Txid};
use chain_store::ChainStore;
use std::path::Path;
use wallet::{Fee, Spendable, WalletKey};

/// A payment in a block of its own.
#[derive(Debug)]
pub struct Minted {
    /// The payment's txid.
    pub txid: Txid,
    /// The fee it paid (the block's minter, `from`, gets it back).
    pub fee: Amount,
    /// The block, connected to the chain.
    pub block: Block,
}

/// Builds and signs a payment from `from`'s confirmed coins in the chain
/// at `chain_dir`, mines a block holding it (showing the search on a
/// terminal) on `threads` threads, and connects the block.
pub fn mint_payment(
    chain_dir: &Path,
    from: &WalletKey,
    to: &Address,
    amount: Amount,
    fee: Fee,
    threads: usize,
) -> Result<Minted> {
    let mut store = ChainStore::open(chain_dir)?;
    let coins: Vec<Spendable> = store
        .utxos_for(&from.address.pubkey_hash())?
        .into_iter()
        .map(|(outpoint, c)| Spendable {
            outpoint,
            output: c.output,
        })
        .collect();
    let (tx, fee) = wallet::build_payment(from, coins, vec![], to, amount, fee)?;
    let txid = tx.txid();
    let now = chain_store::unix_now();
    let mut block = store.template(from.address.pubkey_hash(), vec![tx], fee, now)?;
    let what = format!("minting block {} with the payment", block.header.height);
    if !crate::mine_shown(&mut block, threads, what) {
        bail!("mining was cancelled");
    }
    store.accept_block(&block, now)?;
    Ok(Minted { txid, fee, block })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chain_core::test_utils::{easy_params, genesis};
    use chain_core::PrivateKey;

    #[test]
    fn a_minted_payment_is_in_the_new_tip() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate();
        let address = Address::from_pubkey_hash(key.public_key().pubkey_hash());
        let from = WalletKey {
            alias: None,
            key,
            address,
        };
        let g = genesis(&easy_params(), address.pubkey_hash());
        let path = dir.path().join("chain");
        drop(ChainStore::create(&path, &g).unwrap());
        let to = Address::from_pubkey_hash(chain_core::PubkeyHash([7; 20]));
        let m = mint_payment(&path, &from, &to, Amount(5), Fee::Fixed(Amount(1)), 1).unwrap();
        assert_eq!(m.fee, Amount(1));
        assert_eq!(m.block.header.height, 1);
        assert!(m.block.transactions.iter().any(|t| t.txid() == m.txid));
        let store = ChainStore::open_read_only(&path).unwrap();
        assert_eq!(store.tip().hash, m.block.hash());
        assert_eq!(store.balance(&to.pubkey_hash()).unwrap(), Amount(5));
        // More than the coins hold: refused, and nothing is minted.
        drop(store);
        assert!(mint_payment(&path, &from, &to, Amount(1_000), Fee::Fixed(Amount(1)), 1).is_err());
        assert_eq!(ChainStore::open_read_only(&path).unwrap().tip().height, 1);
    }
}
