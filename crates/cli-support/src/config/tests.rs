//! The config file's parsing, layering and provenance, against a small parser.

use super::*;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "t")]
struct Cli {
    #[arg(long, global = true)]
    node_id: Option<String>,
    #[arg(long, global = true, default_value = "./tmp")]
    data_dir: PathBuf,
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    Run {
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        #[arg(long)]
        quiet: bool,
        #[arg(long)]
        peer: Vec<String>,
        #[arg(long, conflicts_with = "quiet")]
        loud: bool,
    },
}

fn cmd() -> Command {
    <Cli as clap::CommandFactory>::command()
}

fn parse(text: &str) -> Result<ConfigFile> {
    ConfigFile::parse(text, Path::new("c.toml"), &cmd(), &["other"])
}

fn err(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

#[test]
fn a_file_takes_the_commands_flags_with_their_types() {
    let f = parse(
        "node-id = 7\n[run]\nname = \"x\"\n\ncount = 5\nquiet = true\npeer = [\"a\", \"b\"]\n[other]\nanything = 1\n",
    )
    .unwrap();
    assert_eq!(f.get("", "node-id").unwrap().0, Value::from("7"));
    assert_eq!(f.get("run", "count").unwrap(), &(Value::from(5i64), 5));
    assert_eq!(f.get("run", "quiet").unwrap().1, 6);
    assert!(f.get("other", "anything").is_none());
}

#[test]
fn bad_keys_and_values_name_the_key_the_file_and_the_line() {
    let e = err("[run]\ncount = 2\ncoutn = 3\n");
    assert!(
        e.contains("unknown key `coutn`") && e.contains("c.toml") && e.contains("line 3"),
        "{e}"
    );
    let e = err("[run]\ncount = \"3\"\n");
    assert!(
        e.contains("`count`")
            && e.contains("line 2")
            && e.contains("expected an integer, found a string"),
        "{e}"
    );
    let e = err("[run]\ncount = 0\n");
    assert!(e.contains("line 2") && e.contains("0 is not in 1.."), "{e}");
    let e = err("[run]\nquiet = 1\n");
    assert!(e.contains("expected a boolean"), "{e}");
    let e = err("[run]\npeer = [1]\n");
    assert!(e.contains("array holding integer"), "{e}");
    let e = err("[walk]\n");
    assert!(
        e.contains("unknown section [walk]") && e.contains("line 1"),
        "{e}"
    );
    let e = err("count = 1\n");
    assert!(
        e.contains("unknown key `count`") && e.contains("top level"),
        "{e}"
    );
    let e = err("config = \"x\"\n");
    assert!(e.contains("unknown key `config`"), "{e}");
    let e = err("[run]\nname = \n");
    assert!(
        e.contains("not valid TOML at line 2") && !e.contains('\n'),
        "{e}"
    );
}

#[test]
fn the_command_line_wins_over_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[run]\nname = \"file\"\ncount = 9\nquiet = true\npeer = [\"p1\"]\n",
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = ["t", "--config", path.to_str().unwrap(), "run"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let parsed = |a: Vec<String>| {
        let full = with_config(&cmd(), a, &[]).unwrap();
        let Cmd::Run {
            name,
            count,
            quiet,
            peer,
            loud,
        } = Cli::try_parse_from(full).unwrap().command;
        (name, count, quiet, peer, loud)
    };
    assert_eq!(
        parsed(args(&[])),
        ("file".into(), 9, true, vec!["p1".into()], false)
    );
    assert_eq!(
        parsed(args(&["--name", "cli", "--count", "3", "--peer", "p2"])),
        ("cli".into(), 3, true, vec!["p2".into()], false)
    );
    // --loud conflicts with the file's quiet: the command line wins.
    assert!(!parsed(args(&["--loud"])).2);
    assert!(parsed(args(&["--loud"])).4);
    // Provenance, for `config show`.
    let top = relaxed(cmd())
        .try_get_matches_from(args(&["--count", "4"]))
        .unwrap();
    let (_, sub) = top.subcommand().unwrap();
    let file = ConfigFile::read(&path, &cmd(), &[]).unwrap();
    let s = layer(&cmd(), "run", &top, Some(sub), &file).unwrap();
    assert_eq!(s["count"].origin, Origin::CommandLine);
    assert_eq!(
        s["name"].origin,
        Origin::File {
            path: path.clone(),
            line: 2
        }
    );
    assert_eq!(s["data-dir"].origin, Origin::Default);
    assert_eq!(s["data-dir"].value, Value::from("./tmp"));
}

#[test]
fn a_missing_named_file_is_an_error() {
    let a: Vec<String> = ["t", "--config", "/nonexistent/c.toml", "run", "--name", "x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let e = with_config(&cmd(), a, &[]).unwrap_err().to_string();
    assert!(e.contains("does not exist"), "{e}");
}
