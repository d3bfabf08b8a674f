//! The chain every simulated node starts from: a genesis, blocks whose
//! coinbases pay the simulation's key, and one block that splits those
//! coinbases into small coins, so that each simulated payment spends a
//! coin of its own and none waits for another.

use chain_core::test_utils::{chain_of, child, genesis, outputs_of, spend};
use chain_core::{
    Amount, Block, ChainParams, OutPoint, PrivateKey, PubkeyHash, Transaction, TxIn, TxOut,
};

/// Coins each coinbase is split into.
const SPLIT: usize = 9;
/// Value of each coin: a payment of 1 and a fee of 1.
const COIN: Amount = Amount(2);

/// The starting chain and the coins the simulation spends.
pub struct Fixture {
    /// The chain's genesis.
    pub genesis: Block,
    /// The blocks after the genesis, in order.
    pub blocks: Vec<Block>,
    /// The key every coin belongs to.
    pub key: PrivateKey,
    /// Unspent coins of [`COIN`] each, at least as many as asked for.
    pub coins: Vec<(OutPoint, TxOut)>,
}

impl Fixture {
    /// A chain with at least `coins` spendable coins (one per payment),
    /// on the node's default parameters.
    pub fn new(coins: usize) -> Fixture {
        let params = ChainParams::default();
        let key = PrivateKey::from_bytes(&[7; 32]).expect("a valid scalar");
        let me = key.public_key().pubkey_hash();
        let g = genesis(&params, me);
        let funding = coins.div_ceil(SPLIT).max(1);
        let mut blocks = chain_of(&params, &g, funding, me);
        let splits: Vec<Transaction> = blocks[1..]
            .iter()
            .map(|b| split(&key, outputs_of(&b.transactions[0])[0], me))
            .collect();
        let fees = reward_left(&params, splits.len());
        let tip = blocks[blocks.len() - 1].header;
        blocks.push(child(&params, &tip, splits.clone(), fees, me));
        blocks.remove(0);
        Fixture {
            genesis: g,
            blocks,
            key,
            coins: splits.iter().flat_map(outputs_of).collect(),
        }
    }

    /// A payment of 1 to `to` with a fee of 1, spending coin `i`.
    pub fn payment(&self, i: usize, to: PubkeyHash) -> Transaction {
        spend(&self.key, &self.coins[i..=i], to, Amount(1), Amount(1))
    }
}

/// The fees of `n` split transactions.
fn reward_left(params: &ChainParams, n: usize) -> Amount {
    let per = params.reward.0 - COIN.0 * SPLIT as u64;
    Amount(per * n as u64)
}

/// Splits a coinbase into [`SPLIT`] coins of [`COIN`]; the rest is fee.
fn split(key: &PrivateKey, coin: (OutPoint, TxOut), to: PubkeyHash) -> Transaction {
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: coin.0,
            signature: vec![],
            pubkey: vec![],
        }],
        outputs: vec![
            TxOut {
                value: COIN,
                pubkey_hash: to,
            };
            SPLIT
        ],
    };
    tx.sign_all(&[coin.1], &[key]);
    tx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_has_the_coins_asked_for_and_a_valid_chain() {
        let f = Fixture::new(20);
        assert!(f.coins.len() >= 20, "{}", f.coins.len());
        assert_eq!(f.coins.len() % SPLIT, 0);
        // Three funding blocks and the split block after the genesis.
        assert_eq!(f.blocks.len(), 20usize.div_ceil(SPLIT) + 1);
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut store =
            chain_store::ChainStore::create(&dir.path().join("c"), &f.genesis).expect("created");
        for b in &f.blocks {
            store
                .accept_block(b, chain_store::unix_now())
                .expect("the fixture's blocks are valid");
        }
        assert_eq!(store.tip().hash, f.blocks[f.blocks.len() - 1].hash());
        // A payment from the fixture is taken by a mempool.
        let mut pool = chain_core::Mempool::new(Default::default());
        pool.accept(
            f.payment(0, PubkeyHash([3; 20])),
            &store,
            chain_store::unix_now(),
        )
        .expect("a payment is accepted");
    }
}
