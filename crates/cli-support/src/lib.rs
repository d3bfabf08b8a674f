//! What the `node` and `wallet-cli` binaries share, so that each stays
//! wiring: the tutorial's single-dash flags, the logging set-up, and the
//! progress a person sees while a command works.
//!
//! Progress goes to stderr and only when stderr is a terminal, so stdout
//! carries nothing but a command's result (one JSON object with `--json`)
//! and scripts that read stderr see only errors and logs.

pub mod args;
pub mod config;
pub mod docs;
pub mod mint;

use chain_core::miner::MiningProgress;
use std::io::IsTerminal;
use std::time::Duration;

/// The advice a user needs after a library error: the library says what
/// was wrong, the binary says which command to run.
pub fn advice(e: &anyhow::Error) -> Option<&'static str> {
    e.chain().find_map(|c| {
        if let Some(s) = c.downcast_ref::<chain_store::StoreError>() {
            match s {
                chain_store::StoreError::NotFound(_) => Some(
                    "create one with `node createblockchain --address ADDR`, or join one with `node startp2p --dest MULTIADDR`",
                ),
                chain_store::StoreError::InUse(_) => Some("stop that node, or use a read-only command"),
                _ => None,
            }
        } else if let Some(wallet::WalletError::NoWalletFile(_)) = c.downcast_ref() {
            Some("create a wallet with `wallet-cli createwallet`")
        } else {
            None
        }
    })
}

/// Installs the `tracing` subscriber: stderr, `RUST_LOG` when set, otherwise
/// `default_filter` (for example `"warn"` or `"info,libp2p=warn"`).
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// An amount given on the command line: above zero unless `allow_zero`, and
/// at most the money supply. `name` says which one in the error.
pub fn check_amount(name: &str, v: u64, allow_zero: bool) -> anyhow::Result<chain_core::Amount> {
    if v == 0 && !allow_zero {
        anyhow::bail!("the {name} must be above zero");
    }
    let max = chain_core::amount::MAX_MONEY;
    if chain_core::Amount(v) > max {
        anyhow::bail!("the {name} {v} is larger than the money supply ({max})");
    }
    Ok(chain_core::Amount(v))
}

/// Mining threads: the flag when above zero, else every core.
pub fn threads(flag: Option<usize>) -> usize {
    flag.filter(|n| *n > 0).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    })
}

/// Mines `block` in place on `threads` threads, showing the search as
/// `what` on a terminal. Returns false if the nonce space ran out.
pub fn mine_shown(block: &mut chain_core::Block, threads: usize, what: impl Into<String>) -> bool {
    let mut display = MiningDisplay::new(what);
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let solved = chain_core::miner::solve(block, threads, &cancel, &mut |p| display.update(p));
    display.finish();
    solved
}

/// Shows a proof-of-work search on a terminal: a spinner with the hashes
/// tried, the rate and the elapsed time while it runs, then one line with the
/// totals. Shows nothing when stderr is not a terminal.
pub struct MiningDisplay {
    what: String,
    bar: Option<indicatif::ProgressBar>,
    last: Option<MiningProgress>,
}

impl MiningDisplay {
    /// A display for the search described by `what` ("mining the genesis
    /// block"), shown when stderr is a terminal.
    pub fn new(what: impl Into<String>) -> Self {
        Self::with_terminal(what, std::io::stderr().is_terminal())
    }

    fn with_terminal(what: impl Into<String>, terminal: bool) -> Self {
        let what = what.into();
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            bar.set_message(format!("{what}..."));
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        MiningDisplay {
            what,
            bar,
            last: None,
        }
    }

    /// Takes a report from the search (pass this as its progress callback).
    pub fn update(&mut self, p: MiningProgress) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{}: {p}", self.what));
        }
        self.last = Some(p);
    }

    /// The line printed when the search ends, if it reported anything.
    pub fn summary(&self) -> Option<String> {
        self.last.map(|p| format!("{}: done, {p}", self.what))
    }

    /// Ends the display: the spinner is replaced by the summary line.
    pub fn finish(self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            if let Some(line) = self.summary() {
                eprintln!("{line}");
            }
        }
    }
}

/// The node id from --node-id or NODE_ID, checked: it names files, so only
/// letters, digits, '-' and '_' are allowed.
pub fn node_id(given: Option<String>) -> anyhow::Result<String> {
    let id = given.ok_or_else(|| {
        anyhow::anyhow!("no node id: pass --node-id N or set NODE_ID (as in `export NODE_ID=3000`)")
    })?;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        anyhow::bail!("node id '{id}' is not usable: use letters, digits, '-' or '_' (the tutorial uses port numbers such as 3000)");
    }
    Ok(id)
}

/// Sync progress on a terminal: a bar from a sync's first report to its
/// last; nothing when stderr is not a terminal.
#[derive(Default)]
pub struct SyncDisplay {
    /// None: no sync running; Some(None): a sync, but not on a terminal.
    bar: std::sync::Mutex<Option<Option<indicatif::ProgressBar>>>,
}

impl SyncDisplay {
    /// Shows the local `height` against the `target` height, or clears the
    /// bar when the sync is `done`.
    pub fn show(&self, height: u64, target: u64, done: bool) {
        let mut bar = self.bar.lock().unwrap_or_else(|e| e.into_inner());
        if done {
            if let Some(Some(b)) = bar.take() {
                b.finish_and_clear();
            }
            return;
        }
        let b = bar.get_or_insert_with(|| sync_bar(target));
        if let Some(b) = b {
            // Each headers round may show a further target.
            b.set_length(target.max(height));
            b.set_position(height);
        }
    }
}

fn sync_bar(target: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(target);
    bar.set_style(
        indicatif::ProgressStyle::with_template("sync {bar:40} {pos}/{len} blocks ({per_sec})")
            .ok()?,
    );
    Some(bar)
}

/// Where `startp2p` serves HTTP: `--http ADDR`, nowhere with
/// `--no-http`, or by default 127.0.0.1 on port NODE_ID + 1000. A node id
/// that gives no such port (not a number, or over 64535) gives no default:
/// the `Err` says so, and the node runs without the server.
pub fn http_address(
    flag: Option<std::net::SocketAddr>,
    off: bool,
    node_id: &str,
) -> Result<Option<std::net::SocketAddr>, String> {
    if off {
        return Ok(None);
    }
    if let Some(a) = flag {
        return Ok(Some(a));
    }
    let port = node_id
        .parse::<u16>()
        .ok()
        .and_then(|p| p.checked_add(1000))
        .ok_or_else(|| {
            format!(
                "not serving the HTTP API: its default port is NODE_ID + 1000, and node id '{node_id}' gives none; pass --http 127.0.0.1:PORT to serve it"
            )
        })?;
    Ok(Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))))
}

/// Prints a command's result on stdout: `value` as one JSON object with
/// `--json`, otherwise the line `text` makes for a person.
pub fn print_result(json: bool, value: serde_json::Value, text: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", text());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_address_defaults_to_loopback_at_node_id_plus_1000() {
        assert_eq!(
            http_address(None, false, "3000").unwrap(),
            Some("127.0.0.1:4000".parse().unwrap())
        );
        assert_eq!(http_address(None, true, "3000").unwrap(), None);
        let given = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(http_address(Some(given), false, "x").unwrap(), Some(given));
        for bad in ["x", "65000", "-1"] {
            let e = http_address(None, false, bad).unwrap_err();
            assert!(e.contains("--http") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn library_errors_get_the_commands_that_fix_them() {
        let e = anyhow::Error::from(chain_store::StoreError::NotFound("x".into()));
        assert!(advice(&e).is_some_and(|a| a.contains("node createblockchain")));
        let e = anyhow::Error::from(wallet::WalletError::NoWalletFile("w".into()))
            .context("reading the wallet");
        assert!(advice(&e).is_some_and(|a| a.contains("wallet-cli createwallet")));
        assert_eq!(advice(&anyhow::anyhow!("other")), None);
    }

    #[test]
    fn amounts_are_above_zero_and_within_the_supply() {
        assert!(check_amount("amount", 0, false).is_err());
        assert_eq!(
            check_amount("fee", 0, true).ok(),
            Some(chain_core::Amount(0))
        );
        let too_much = chain_core::amount::MAX_MONEY.0 + 1;
        let e = check_amount("amount", too_much, false).unwrap_err();
        assert!(
            e.to_string().contains("larger than the money supply"),
            "{e}"
        );
        assert!(threads(Some(3)) == 3 && threads(Some(0)) >= 1 && threads(None) >= 1);
    }

    #[test]
    fn summary_gives_the_final_totals() {
        let mut d = MiningDisplay::with_terminal("mining the genesis block", false);
        assert_eq!(d.summary(), None);
        d.update(MiningProgress {
            hashes: 4096,
            elapsed: Duration::from_millis(250),
        });
        d.update(MiningProgress {
            hashes: 1_000_000,
            elapsed: Duration::from_millis(500),
        });
        assert_eq!(
            d.summary().as_deref(),
            Some("mining the genesis block: done, 1.00M hashes, 2.00M hashes/s, 0.5 s")
        );
        d.finish();
    }
}
