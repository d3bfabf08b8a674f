//! Shell completions and manual pages, made from the binaries' own parsers.

use anyhow::Context;
use std::path::{Path, PathBuf};

pub use clap_complete::Shell;

/// Writes `cmd`'s completion script for `shell`.
pub fn completions(mut cmd: clap::Command, shell: Shell, out: &mut dyn std::io::Write) {
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, out);
}

/// Writes `cmd`'s manual pages into `dir` (section 1): `<name>.1`, and
/// `<name>-<command>.1` for each visible command. Returns the files.
pub fn manpages(cmd: clap::Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    cmd.build();
    let mut pages = vec![(cmd.get_name().to_string(), cmd.clone())];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{}-{}", cmd.get_name(), sub.get_name());
        // Built, a command's display name is already `<name>-<command>`.
        pages.push((name, sub.clone()));
    }
    let mut written = Vec::new();
    for (name, page) in pages {
        let path = dir.join(format!("{name}.1"));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(page).render(&mut bytes)?;
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// The commands both binaries have for their documentation; a binary
/// flattens them into its own commands and runs them with its parser.
#[derive(clap::Subcommand, Debug)]
pub enum DocCommand {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Write the manual pages of this program and its commands into DIR.
    #[command(hide = true)]
    Manpage {
        /// The directory.
        dir: PathBuf,
    },
}

impl DocCommand {
    /// Prints the completion script, or writes the pages and prints their
    /// paths, for the program whose parser is `cmd`.
    pub fn run(&self, cmd: clap::Command) -> anyhow::Result<()> {
        match self {
            DocCommand::Completions { shell } => completions(cmd, *shell, &mut std::io::stdout()),
            DocCommand::Manpage { dir } => {
                for page in manpages(cmd, dir)? {
                    println!("{}", page.display());
                }
            }
        }
        Ok(())
    }
}
