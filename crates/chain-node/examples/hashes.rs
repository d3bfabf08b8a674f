//! Where the hashing goes: counts the double SHA-256 calls the chain actor's
//! callers and the actor itself make for each block a sync hands over, for
//! each payment a peer relays, and for a block this node mints, along the
//! same path the node takes (decoded at the edge, handed to the actor).
//!
//! `cargo run --release -p chain-node --example hashes -- [BLOCKS] [PAYMENTS]`
//! (defaults 50 and 50). It measures; it asserts nothing.

use chain_core::hash::count;
use chain_core::keys::PrivateKey;
use chain_core::test_utils::{child, easy_params, genesis, outputs_of, spend};
use chain_core::{Amount, Block, ReceivedBlock, Transaction, TxOut, UnminedTx};
use chain_node::chain::{spawn, PoolSettings};
use chain_store::ChainStore;
use p2p_proto::BlockBytes;
use std::sync::atomic::AtomicBool;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n_blocks: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let per_block: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let params = chain_core::ChainParams {
        reward: Amount(1_000_000_000),
        ..easy_params()
    };
    let key = PrivateKey::generate();
    let pkh = key.public_key().pubkey_hash();
    let g = genesis(&params, pkh);

    // Block 1 fans the genesis coin out; each later block spends every coin.
    let mut chain: Vec<Block> = Vec::new();
    let fan = {
        let coin = outputs_of(&g.transactions[0]);
        let mut tx = spend(&key, &coin, pkh, Amount(1), Amount(0));
        let each = coin[0].1.value.0 / (2 * per_block as u64);
        tx.outputs = (0..2 * per_block)
            .map(|_| TxOut {
                value: Amount(each),
                pubkey_hash: pkh,
            })
            .collect();
        tx.sign_all(&[coin[0].1], &[&key]);
        tx
    };
    let mut coins = outputs_of(&fan);
    // Half the coins are kept for the relayed payments.
    let spares = coins.split_off(per_block);
    chain.push(child(&params, &g.header, vec![fan], Amount::ZERO, pkh));
    for _ in 1..n_blocks {
        let txs: Vec<Transaction> = coins
            .iter()
            .map(|c| spend(&key, &[*c], pkh, c.1.value, Amount::ZERO))
            .collect();
        coins = txs.iter().map(|t| outputs_of(t)[0]).collect();
        let parent = chain.last().expect("non-empty").header;
        chain.push(child(&params, &parent, txs, Amount::ZERO, pkh));
    }
    let wire: Vec<Vec<u8>> = chain.iter().map(Block::encode).collect();
    let block_bytes: usize = wire.iter().map(Vec::len).sum();
    let payments: usize = chain.iter().map(|b| b.transactions.len()).sum();
    // Payments from the spare coins, as a peer would relay them.
    let relayed: Vec<Transaction> = spares
        .iter()
        .map(|c| {
            spend(
                &key,
                &[*c],
                pkh,
                Amount(c.1.value.0 - 10_000),
                Amount(10_000),
            )
        })
        .collect();

    let dir = tempfile::tempdir()?;
    let store = ChainStore::create(&dir.path().join("blocks"), &g)?;
    let handle = spawn::<u32>(
        Some(store),
        dir.path().join("blocks"),
        PoolSettings::default(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        count::take();
        // A sync: each block decoded from the bytes it came in, then handed over.
        for bytes in &wire {
            let block = BlockBytes::new(bytes.clone()).into_received()?;
            let out = handle.accept_requested_block(block, 1).await;
            anyhow::ensure!(out.tip_changed, "a block of the chain did not connect");
        }
        let sync = count::take();
        // Relayed payments, as gossip hands them over.
        for tx in relayed {
            let tx = UnminedTx::new(tx);
            let _txid = tx.txid();
            let out = handle.accept_tx(tx, Some(1)).await;
            anyhow::ensure!(out.refused.is_none(), "refused: {:?}", out.refused);
        }
        let relay = count::take();
        // A block minted from the pool and published.
        let mut block = handle
            .template(pkh, 1)
            .await
            .ok_or_else(|| anyhow::anyhow!("no template"))?;
        let t = count::take();
        chain_core::miner::solve(&mut block, 1, &AtomicBool::new(false), &mut |_| {});
        count::take();
        let out = handle
            .accept_block(ReceivedBlock::new(block), None)
            .await;
        let published = out
            .publish
            .map(|m| BlockBytes::new(m.bytes))
            .ok_or_else(|| anyhow::anyhow!("the minted block was not connected"))?;
        let mint = count::take();
        println!("sync of {n_blocks} blocks, {payments} transactions, {block_bytes} bytes:");
        println!(
            "  header hashes per block: {:.2}",
            sync.headers as f64 / n_blocks as f64
        );
        println!(
            "  double SHA-256 calls per transaction: {:.2}",
            sync.calls as f64 / payments as f64
        );
        println!(
            "  bytes hashed per block byte: {:.2}",
            sync.bytes as f64 / block_bytes as f64
        );
        println!(
            "relay of {per_block} payments: double SHA-256 calls per payment: {:.2}",
            relay.calls as f64 / per_block as f64
        );
        println!(
            "mint of a block of {} payments ({} bytes): template {} calls, connect and publish {} calls ({} header hashes)",
            per_block,
            published.len(),
            t.calls,
            mint.calls,
            mint.headers
        );
        handle.close().await;
        Ok(())
    })
}
