//! `wallet-cli`: keys, balances and payments.

mod net;

use anyhow::{bail, Result};
use chain_store::ChainStore;
use clap::{CommandFactory, Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use wallet::Wallet;

/// Wallets with aliases, balances and payments.
#[derive(Parser, Debug)]
#[command(name = "wallet-cli", version, about, long_about = None)]
struct Cli {
    /// Node id whose wallet file and chain to use. Defaults to the NODE_ID environment variable.
    #[arg(long, env = "NODE_ID", global = true)]
    node_id: Option<String>,
    /// Directory holding chains and wallets.
    #[arg(long, default_value = "./tmp", global = true)]
    data_dir: PathBuf,
    /// Config file (default: chain.toml in the data directory, when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new key, optionally with an alias.
    Createwallet {
        /// A name to use instead of the address.
        #[arg(long)]
        alias: Option<String>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Encrypt the wallet file with the passphrase in WALLET_PASSPHRASE.
    Encryptwallet {
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List the wallet's aliases and addresses.
    Listaddresses {
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Print the balance of an alias or address.
    Getbalance {
        /// Alias or address.
        #[arg(long)]
        address: String,
        /// Ask this node instead of reading the local chain.
        #[arg(long)]
        peer: Option<String>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Pay AMOUNT from one of this wallet's keys.
    Send(SendArgs),
    /// Import a compressed mainnet WIF private key.
    Importkey {
        /// The key.
        #[arg(long)]
        wif: String,
        /// An alias for it.
        #[arg(long)]
        alias: Option<String>,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Export a key as compressed mainnet WIF.
    Exportkey {
        /// Alias or address of the key.
        #[arg(long)]
        address: String,
        /// Print one JSON object on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Completions and manual pages.
    #[command(flatten)]
    Docs(cli_support::docs::DocCommand),
}

#[derive(clap::Args, Debug)]
struct SendArgs {
    /// Alias or address of the payer (its key must be in this wallet).
    #[arg(long)]
    from: String,
    /// Alias or address of the payee.
    #[arg(long)]
    to: String,
    /// Amount to pay.
    #[arg(long)]
    amount: u64,
    /// Fee left for the miner.
    #[arg(long, default_value_t = 0)]
    fee: u64,
    /// Fee per 1,000 bytes of the transaction, instead of --fee.
    #[arg(long, conflicts_with = "fee")]
    fee_rate: Option<u64>,
    /// Mint a block holding the payment on the local chain right away.
    #[arg(long, conflicts_with = "peer")]
    mint: bool,
    /// Submit the payment to this node (a multiaddress ending in /p2p/<peer id>).
    #[arg(long)]
    peer: Option<String>,
    /// Mining threads for --mint (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

struct Ctx {
    data_dir: PathBuf,
    node_id: String,
}

impl Ctx {
    fn wallet_file(&self) -> PathBuf {
        wallet::wallet_path(&self.data_dir, &self.node_id)
    }
    fn chain_dir(&self) -> PathBuf {
        self.data_dir.join(format!("blocks_{}", self.node_id))
    }
}

fn main() {
    let args = cli_support::args::go_style_args(std::env::args());
    let args =
        cli_support::config::with_config(&Cli::command(), args, cli_support::config::NODE_SECTIONS)
            .unwrap_or_else(|e| {
                eprintln!("error: {e:#}");
                std::process::exit(1);
            });
    let cli = Cli::parse_from(args);
    cli_support::init_tracing("warn");
    if let Err(e) = run(cli) {
        match cli_support::advice(&e) {
            Some(a) => eprintln!("error: {e:#}: {a}"),
            None => eprintln!("error: {e:#}"),
        }
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Command::Docs(d) = &cli.command {
        return d.run(Cli::command());
    }
    let node_id = cli_support::node_id(cli.node_id.clone())?;
    let ctx = Ctx {
        data_dir: cli.data_dir,
        node_id,
    };
    match cli.command {
        Command::Createwallet { alias, json } => {
            let address = Wallet::update(&ctx.wallet_file(), |w| w.create_key(alias.as_deref()))?;
            let value = json!({"address": address.to_string(), "alias": alias});
            cli_support::print_result(json, value, || {
                let named = alias.map(|a| format!(" (alias {a})"));
                format!("New address is: {address}{}", named.unwrap_or_default())
            });
        }
        Command::Encryptwallet { json } => {
            let file = ctx.wallet_file();
            Wallet::encrypt_file(&file)?;
            let value = json!({"encrypted": true, "file": file.display().to_string()});
            cli_support::print_result(json, value, || format!("Encrypted {}", file.display()));
        }
        Command::Listaddresses { json } => {
            let w = Wallet::load(&ctx.wallet_file())?;
            if json {
                let list: Vec<_> = w
                    .keys()
                    .iter()
                    .map(|k| json!({"alias": k.alias, "address": k.address.to_string()}))
                    .collect();
                println!("{}", json!({"addresses": list}));
            } else {
                for k in w.keys() {
                    match &k.alias {
                        Some(a) => println!("{a}: {}", k.address),
                        None => println!("{}", k.address),
                    }
                }
            }
        }
        Command::Getbalance {
            address,
            peer,
            json,
        } => {
            let addr = wallet::resolve_name(&ctx.wallet_file(), &address)?;
            let (balance, unconfirmed, height) = match peer {
                Some(p) => net::balance(&p, &addr)?,
                None => {
                    let store = ChainStore::open_read_only(&ctx.chain_dir())?;
                    let b = store.balance(&addr.pubkey_hash())?;
                    (b, chain_core::Amount::ZERO, Some(store.tip().height))
                }
            };
            if json {
                println!(
                    "{}",
                    json!({"address": addr.to_string(), "balance": balance.0, "unconfirmed": unconfirmed.0, "height": height})
                );
            } else {
                let pending = (unconfirmed > chain_core::Amount::ZERO)
                    .then(|| format!(" (unconfirmed: {unconfirmed})"));
                println!(
                    "Balance of {address}: {balance}{}",
                    pending.unwrap_or_default()
                );
            }
        }
        Command::Send(a) => send(&ctx, a)?,
        Command::Docs(_) => {}
        Command::Importkey { wif, alias, json } => {
            let key = chain_core::PrivateKey::from_wif(&wif)?;
            let address = Wallet::update(&ctx.wallet_file(), |w| w.add_key(key, alias.as_deref()))?;
            let value = json!({"address": address.to_string(), "alias": alias});
            cli_support::print_result(json, value, || format!("Imported {address}"));
        }
        Command::Exportkey { address, json } => {
            let w = Wallet::load(&ctx.wallet_file())?;
            let k = w.key_for(&address)?;
            let value = json!({"address": k.address.to_string(), "wif": k.key.to_wif()});
            cli_support::print_result(json, value, || k.key.to_wif());
        }
    }
    Ok(())
}

fn send(ctx: &Ctx, a: SendArgs) -> Result<()> {
    let amount = cli_support::check_amount("amount", a.amount, false)?;
    let fee = match a.fee_rate {
        Some(r) => wallet::Fee::Rate(chain_core::FeeRate(r)),
        None => wallet::Fee::Fixed(cli_support::check_amount("fee", a.fee, true)?),
    };
    let w = Wallet::load(&ctx.wallet_file())?;
    let from = w.key_for(&a.from)?.clone();
    let to = w.resolve(&a.to)?;
    if let Some(peer) = &a.peer {
        return net::send(peer, &from, &to, amount, fee, a.json);
    }
    if !a.mint {
        bail!("say how to deliver the payment: --mint to mint it into the local chain, or --peer MULTIADDR to submit it to a node");
    }
    let threads = cli_support::threads(a.threads);
    let m = cli_support::mint::mint_payment(&ctx.chain_dir(), &from, &to, amount, fee, threads)?;
    let (txid, fee, block) = (m.txid, m.fee, m.block);
    if a.json {
        println!(
            "{}",
            json!({"txid": txid.to_string(), "from": from.address.to_string(), "to": to.to_string(), "amount": amount.0, "fee": fee.0, "block": block.hash().to_string(), "height": block.header.height})
        );
    } else {
        println!(
            "Success! Transaction {txid} minted in block {} at height {}",
            block.hash(),
            block.header.height
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_sections_are_the_commands() {
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .filter(|c| c.get_arguments().any(|a| a.get_long().is_some()))
            .map(|c| c.get_name().to_string())
            .collect();
        assert_eq!(names, cli_support::config::WALLET_SECTIONS);
        Cli::command().debug_assert();
    }
}
