//! The single-node commands.

use anyhow::{bail, Context, Result};
use chain_core::block::ChainParams;
use chain_core::miner::assemble_genesis;
use chain_core::{Block, CompactTarget, Transaction};
use chain_store::ChainStore;
use serde_json::json;
use std::path::PathBuf;

/// Where this node's files are.
pub struct Ctx {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The node id.
    pub node_id: String,
}

impl Ctx {
    /// The chain directory: `<data-dir>/blocks_<id>`.
    pub fn chain_dir(&self) -> PathBuf {
        self.data_dir.join(format!("blocks_{}", self.node_id))
    }
    /// The wallet file.
    pub fn wallet_file(&self) -> PathBuf {
        wallet::wallet_path(&self.data_dir, &self.node_id)
    }
}

/// `--json` alone.
#[derive(clap::Args, Debug)]
pub struct JsonFlag {
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `createblockchain`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Who the genesis reward pays: an alias of this node's wallet or an address.
    #[arg(long)]
    pub address: String,
    /// Leading zero bits required of block hashes.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub difficulty: u32,
    /// Coinbase reward.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=21_000_000))]
    pub reward: u64,
    /// Blocks between difficulty adjustments (0: never).
    #[arg(long, default_value_t = 0)]
    pub retarget_interval: u32,
    /// Intended seconds between blocks, for retargeting.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub target_spacing: u64,
    /// Mining threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn createblockchain(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    let dir = ctx.chain_dir();
    if ChainStore::exists(&dir) {
        bail!(
            "a chain already exists in {}; nothing was changed",
            dir.display()
        );
    }
    let to = wallet::resolve_name(&ctx.wallet_file(), &a.address)?;
    let params = ChainParams {
        initial_bits: CompactTarget::from_leading_zero_bits(a.difficulty)
            .context("difficulty out of range")?,
        reward: chain_core::Amount(a.reward),
        retarget_interval: a.retarget_interval,
        target_spacing: a.target_spacing,
    };
    params
        .validate()
        .map_err(|e| anyhow::anyhow!("bad chain parameters: {e}"))?;
    let mut genesis = assemble_genesis(&params, to.pubkey_hash(), chain_store::unix_now());
    let threads = cli_support::threads(a.threads);
    if !cli_support::mine_shown(&mut genesis, threads, "mining the genesis block") {
        bail!("mining the genesis block was cancelled");
    }
    let store = ChainStore::create(&dir, &genesis)?;
    let hash = store.tip().hash;
    if a.json {
        println!(
            "{}",
            json!({"hash": hash.to_string(), "height": 0, "address": to.to_string(), "reward": a.reward, "chain": dir.display().to_string()})
        );
    } else {
        println!("Created a chain in {}", dir.display());
        println!("Genesis {hash} pays {} to {to}", a.reward);
    }
    Ok(())
}

fn tx_json(tx: &Transaction) -> serde_json::Value {
    json!({
        "txid": tx.txid().to_string(),
        "coinbase": tx.is_coinbase(),
        "inputs": tx.inputs.iter().filter(|_| !tx.is_coinbase()).map(|i| json!({
            "txid": i.prevout.txid.to_string(), "vout": i.prevout.vout,
            "pubkey": hex::encode(&i.pubkey), "signature": hex::encode(&i.signature),
        })).collect::<Vec<_>>(),
        "outputs": tx.outputs.iter().map(|o| json!({
            "value": o.value.0, "address": chain_core::Address::from_pubkey_hash(o.pubkey_hash).to_string(),
        })).collect::<Vec<_>>(),
    })
}

fn block_json(b: &Block) -> serde_json::Value {
    json!({
        "height": b.header.height,
        "hash": b.hash().to_string(),
        "prev": b.header.prev.to_string(),
        "merkle_root": b.header.merkle_root.to_string(),
        "time": b.header.time,
        "bits": b.header.bits.to_string(),
        "nonce": b.header.nonce,
        "transactions": b.transactions.iter().map(tx_json).collect::<Vec<_>>(),
    })
}

pub fn printchain(ctx: &Ctx, a: JsonFlag) -> Result<()> {
    let store = ChainStore::open_read_only(&ctx.chain_dir())?;
    let tip = store.tip();
    let mut blocks = Vec::new();
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    for h in (0..=tip.height).rev() {
        let hash = store
            .hash_at(h)?
            .with_context(|| format!("no best-chain block at height {h}"))?;
        let b = store
            .block(&hash)?
            .with_context(|| format!("block {hash} missing"))?;
        if a.json {
            blocks.push(block_json(&b));
            continue;
        }
        writeln!(out, "============ Block {hash} ============")?;
        writeln!(out, "Height: {}", b.header.height)?;
        writeln!(out, "Prev. hash: {}", b.header.prev)?;
        writeln!(
            out,
            "Time: {}  Bits: {}  Nonce: {}",
            b.header.time, b.header.bits, b.header.nonce
        )?;
        writeln!(
            out,
            "PoW: {}",
            chain_core::validation::check_block(&b).is_ok()
        )?;
        for tx in &b.transactions {
            writeln!(
                out,
                "--- Transaction {}{}",
                tx.txid(),
                if tx.is_coinbase() { " (coinbase)" } else { "" }
            )?;
            if !tx.is_coinbase() {
                for (i, input) in tx.inputs.iter().enumerate() {
                    writeln!(out, "     Input {i}: {}", input.prevout)?;
                }
            }
            for (i, o) in tx.outputs.iter().enumerate() {
                writeln!(
                    out,
                    "     Output {i}: {} to {}",
                    o.value,
                    chain_core::Address::from_pubkey_hash(o.pubkey_hash)
                )?;
            }
        }
        writeln!(out)?;
    }
    if a.json {
        writeln!(
            out,
            "{}",
            json!({"height": tip.height, "tip": tip.hash.to_string(), "blocks": blocks})
        )?;
    }
    Ok(())
}

pub fn reindexutxo(ctx: &Ctx, a: JsonFlag) -> Result<()> {
    let mut store = ChainStore::open(&ctx.chain_dir())?;
    let n = store.reindex()?;
    if a.json {
        println!("{}", json!({"utxos": n, "height": store.tip().height}));
    } else {
        println!("Done! There are {n} transaction outputs in the UTXO set.");
    }
    Ok(())
}

pub fn checkdb(ctx: &Ctx, a: JsonFlag) -> Result<()> {
    let store = ChainStore::open_read_only(&ctx.chain_dir())?;
    let r = store.check_db()?;
    let digest = hex::encode(store.utxo_digest()?);
    if a.json {
        println!(
            "{}",
            json!({"ok": r.problems.is_empty(), "height": store.tip().height, "tip": store.tip().hash.to_string(), "blocks": r.blocks, "expected_utxos": r.expected_utxos, "stored_utxos": r.stored_utxos, "utxo_digest": digest, "problems": r.problems})
        );
    } else {
        println!(
            "Replayed {} blocks: {} coins expected, {} stored",
            r.blocks, r.expected_utxos, r.stored_utxos
        );
        for p in &r.problems {
            println!("problem: {p}");
        }
    }
    if !r.problems.is_empty() {
        bail!("the stored UTXO set differs from the blocks ({} problems); run `node reindexutxo` to rebuild it", r.problems.len());
    }
    if !a.json {
        println!("The stored UTXO set matches the blocks.");
    }
    Ok(())
}
