//! `node`: create, inspect and maintain a chain, and run a networked node.

mod chain_cmds;
mod p2p;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};
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
    /// Config file (default: chain.toml in the data directory, when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    /// The config file: `config show` prints the effective settings.
    Config {
        /// What to do.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Completions and manual pages.
    #[command(flatten)]
    Docs(cli_support::docs::DocCommand),
}

/// `config` actions.
#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Print the effective settings of every command and where each came from.
    Show(chain_cmds::JsonFlag),
}

fn main() {
    let args = cli_support::args::go_style_args(std::env::args());
    let args = cli_support::config::with_config(
        &Cli::command(),
        args,
        cli_support::config::WALLET_SECTIONS,
    )
    .unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    });
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
    match &cli.command {
        Command::Config {
            action: ConfigAction::Show(a),
        } => {
            let args = cli_support::args::go_style_args(std::env::args());
            let wallet = cli_support::config::WALLET_SECTIONS;
            print!(
                "{}",
                cli_support::config::show(&Cli::command(), args, wallet, a.json)?
            );
            return Ok(());
        }
        Command::Docs(d) => return d.run(Cli::command()),
        _ => {}
    }
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
        Command::Config { .. } | Command::Docs(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_sections_are_the_commands() {
        let names: Vec<String> = Cli::command()
            .get_subcommands()
            .filter(|c| !c.get_arguments().all(|a| a.get_long().is_none()))
            .map(|c| c.get_name().to_string())
            .filter(|n| !["config", "completions", "manpage"].contains(&n.as_str()))
            .collect();
        assert_eq!(names, cli_support::config::NODE_SECTIONS);
        Cli::command().debug_assert();
    }
}
