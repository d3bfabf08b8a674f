//! `node`: create, inspect and maintain a chain, and run a networked node.

mod chain_cmds;
mod p2p;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// A small proof-of-work blockchain node.
#[derive(Parser, Debug)]
#[command(name = "node", version, about, long_about = None)]
pub struct Cli {
    /// Node id (also the TCP port of `startp2p`). Defaults to the NODE_ID environment variable.
    #[arg(long, env = "NODE_ID", global = true)]
    pub node_id: Option<String>,
    /// Directory holding chains, wallets and network identities.
    #[arg(long, default_value = "./tmp", global = true)]
    pub data_dir: PathBuf,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Node commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a chain whose genesis pays ADDRESS (an alias of this node's wallet or an address).
    Createblockchain(chain_cmds::CreateArgs),
    /// Print the best chain, newest block first.
    Printchain(chain_cmds::JsonFlag),
    /// Rebuild the UTXO set and the indexes from the blocks.
    Reindexutxo(chain_cmds::JsonFlag),
    /// Recompute the UTXO set from the blocks and compare it with the stored one.
    Checkdb(chain_cmds::JsonFlag),
    /// Run a networked node: sync, relay, and mint with --minter.
    Startp2p(p2p::StartArgs),
}

fn main() {
    let args = cli_support::args::go_style_args(std::env::args());
    let cli = Cli::parse_from(args);
    // startp2p installs its own, chattier, filter.
    if !matches!(cli.command, Command::Startp2p(_)) {
        cli_support::init_tracing("warn");
    }
    if let Err(e) = run(cli) {
        match cli_support::advice(&e) {
            Some(a) => eprintln!("error: {e:#}: {a}"),
            None => eprintln!("error: {e:#}"),
        }
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    let node_id = cli_support::node_id(cli.node_id.clone())?;
    let ctx = chain_cmds::Ctx {
        data_dir: cli.data_dir.clone(),
        node_id,
    };
    match cli.command {
        Command::Createblockchain(a) => chain_cmds::createblockchain(&ctx, a),
        Command::Printchain(a) => chain_cmds::printchain(&ctx, a),
        Command::Reindexutxo(a) => chain_cmds::reindexutxo(&ctx, a),
        Command::Checkdb(a) => chain_cmds::checkdb(&ctx, a),
        Command::Startp2p(a) => p2p::startp2p(&ctx, a),
    }
}
