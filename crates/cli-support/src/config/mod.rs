//! The config file, `chain.toml`, layered under the command line.
//!
//! Every flag of a command has a key of the same name (without the dashes)
//! in the section named after the command; `node-id` and `data-dir` sit at
//! the top. Precedence, highest first: the command line, the environment
//! (`CHAIN_<KEY>`, dashes as underscores, and the variables a flag names,
//! such as `NODE_ID`), the file, the defaults. The layering is figment's;
//! the names, types and ranges are clap's, so the file accepts exactly what
//! the command line does and no list of keys is kept twice.
//!
//! ```toml
//! node-id = "3000"
//!
//! [startp2p]
//! minter = "w3"
//! min-txs = 2
//! dest = ["/ip4/127.0.0.1/tcp/3000/p2p/12D3KooW..."]
//! ```

use anyhow::{anyhow, bail, Context, Result};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use std::any::TypeId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The config file's name in the data directory.
pub const FILE_NAME: &str = "chain.toml";
/// The prefix of the environment variables that set a key.
pub const ENV_PREFIX: &str = "CHAIN_";
/// The sections `node` reads: its commands.
pub const NODE_SECTIONS: &[&str] = &[
    "createblockchain",
    "printchain",
    "reindexutxo",
    "checkdb",
    "startp2p",
];
/// The sections `wallet-cli` reads: its commands.
pub const WALLET_SECTIONS: &[&str] = &[
    "createwallet",
    "encryptwallet",
    "listaddresses",
    "getbalance",
    "send",
    "importkey",
    "exportkey",
];
/// Top-level keys that no file may set.
const NOT_IN_FILE: &[&str] = &["config"];

/// Where a setting's value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Given on the command line.
    CommandLine,
    /// From this environment variable.
    Env(String),
    /// From the config file, at this line (counting from 1).
    File {
        /// The file.
        path: PathBuf,
        /// The key's line.
        line: usize,
    },
    /// The flag's default.
    Default,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::CommandLine => write!(f, "command line"),
            Origin::Env(v) => write!(f, "environment {v}"),
            Origin::File { path, line } => write!(f, "{} line {line}", path.display()),
            Origin::Default => write!(f, "default"),
        }
    }
}

/// One setting after layering.
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// The value: a string, integer, boolean or array of strings.
    pub value: Value,
    /// The layer it came from.
    pub origin: Origin,
}

/// A parsed config file: each key's value and line, by section ("" for the
/// top level).
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// The file read, if any.
    pub path: Option<PathBuf>,
    sections: BTreeMap<String, BTreeMap<String, (Value, usize)>>,
}

impl ConfigFile {
    /// Reads and checks `path` against `cmd`: every key must be a flag of
    /// its section's command, of the type the flag takes. `foreign` names
    /// the sections of the other binary, which this one leaves alone.
    pub fn read(path: &Path, cmd: &Command, foreign: &[&str]) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        Self::parse(&text, path, cmd, foreign)
    }

    /// Parses `text` as the file `path` (see [`ConfigFile::read`]).
    pub fn parse(text: &str, path: &Path, cmd: &Command, foreign: &[&str]) -> Result<ConfigFile> {
        let shown = path.display();
        let line_of = |span: Option<std::ops::Range<usize>>| {
            span.map_or(0, |s| {
                let end = s.start.min(text.len());
                text.as_bytes()[..end]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1
            })
        };
        let doc = toml_edit::Document::parse(text).map_err(|e| {
            anyhow!(
                "the config file {shown} is not valid TOML at line {}: {}",
                line_of(e.span()),
                e.message().trim().replace('\n', "; ")
            )
        })?;
        let mut file = ConfigFile {
            path: Some(path.to_path_buf()),
            sections: BTreeMap::new(),
        };
        for (key, item) in doc.iter() {
            let line = line_of(doc.key(key).and_then(|k| k.span()));
            if let Some(table) = item.as_table_like() {
                if foreign.contains(&key) {
                    continue;
                }
                let Some(sub) = cmd.find_subcommand(key) else {
                    bail!(
                        "unknown section [{key}] in {shown} (line {line}); the sections are the commands of {}: {}",
                        cmd.get_name(),
                        cmd.get_subcommands().map(|c| c.get_name()).collect::<Vec<_>>().join(", ")
                    );
                };
                let mut keys = BTreeMap::new();
                for (k, v) in table.iter() {
                    let line = line_of(table.key(k).and_then(|k| k.span()));
                    let where_ = format!("[{key}] of {shown} (line {line})");
                    let arg = settable(sub, k)
                        .filter(|a| !a.is_global_set())
                        .ok_or_else(|| {
                            anyhow!(
                                "unknown key `{k}` in {where_}; `{key}` takes: {}",
                                keys_of(sub, false).join(", ")
                            )
                        })?;
                    let value = checked(sub, arg, v, &format!("`{k}` in {where_}"))?;
                    keys.insert(k.to_string(), (value, line));
                }
                file.sections.insert(key.to_string(), keys);
            } else {
                let where_ = format!("{shown} (line {line})");
                let arg = settable(cmd, key)
                    .filter(|a| a.is_global_set() && !NOT_IN_FILE.contains(&key))
                    .ok_or_else(|| {
                        anyhow!(
                            "unknown key `{key}` in {where_}; the top level takes {}, and a section per command",
                            keys_of(cmd, true).join(", ")
                        )
                    })?;
                let value = checked(cmd, arg, item, &format!("`{key}` in {where_}"))?;
                file.sections
                    .entry(String::new())
                    .or_default()
                    .insert(key.to_string(), (value, line));
            }
        }
        Ok(file)
    }

    /// The value the file gives `key` in `section` ("" for the top level).
    pub fn get(&self, section: &str, key: &str) -> Option<&(Value, usize)> {
        self.sections.get(section)?.get(key)
    }
}

/// The flags of `cmd` a file may set: every flag with a long name but
/// `--help`, `--version` and `--config`.
fn settable<'a>(cmd: &'a Command, long: &str) -> Option<&'a Arg> {
    cmd.get_arguments().find(|a| {
        a.get_long() == Some(long)
            && !matches!(
                a.get_action(),
                ArgAction::Help | ArgAction::HelpLong | ArgAction::Version
            )
    })
}

fn keys_of(cmd: &Command, global: bool) -> Vec<String> {
    cmd.get_arguments()
        .filter(|a| a.is_global_set() == global)
        .filter_map(|a| settable(cmd, a.get_long()?))
        .filter_map(|a| a.get_long())
        .filter(|l| !NOT_IN_FILE.contains(l))
        .map(str::to_string)
        .collect()
}

/// What a flag takes, in TOML's terms.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Str,
    Strings,
}

impl Kind {
    fn of(arg: &Arg) -> Kind {
        let ints = [
            TypeId::of::<u8>(),
            TypeId::of::<u16>(),
            TypeId::of::<u32>(),
            TypeId::of::<u64>(),
            TypeId::of::<usize>(),
            TypeId::of::<i32>(),
            TypeId::of::<i64>(),
        ];
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => Kind::Bool,
            ArgAction::Append => Kind::Strings,
            _ if ints.iter().any(|t| arg.get_value_parser().type_id() == *t) => Kind::Int,
            _ => Kind::Str,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::Bool => "a boolean (true or false)",
            Kind::Int => "an integer",
            Kind::Str => "a string",
            Kind::Strings => "an array of strings",
        }
    }
}

/// A TOML item as a figment value, if it has the type `arg` takes; then
/// checked by the flag's own parser, so a file accepts what the command
/// line accepts.
fn checked(cmd: &Command, arg: &Arg, item: &toml_edit::Item, what: &str) -> Result<Value> {
    let want = Kind::of(arg);
    let found = item.as_value().map_or("a table", |v| match v {
        toml_edit::Value::String(_) => "a string",
        toml_edit::Value::Integer(_) => "an integer",
        toml_edit::Value::Float(_) => "a float",
        toml_edit::Value::Boolean(_) => "a boolean",
        toml_edit::Value::Datetime(_) => "a date",
        toml_edit::Value::Array(_) => "an array",
        toml_edit::Value::InlineTable(_) => "a table",
    });
    let wrong = || anyhow!("{what}: expected {}, found {found}", want.describe());
    let value = match (item.as_value(), want) {
        (Some(toml_edit::Value::Boolean(b)), Kind::Bool) => Value::from(*b.value()),
        (Some(toml_edit::Value::Integer(i)), Kind::Int) => Value::from(*i.value()),
        (Some(toml_edit::Value::String(s)), Kind::Str) => Value::from(s.value().clone()),
        // A node id or a port reads naturally as a number.
        (Some(toml_edit::Value::Integer(i)), Kind::Str) => Value::from(i.value().to_string()),
        (Some(toml_edit::Value::Array(a)), Kind::Strings) => {
            let mut items = Vec::new();
            for v in a.iter() {
                match v {
                    toml_edit::Value::String(s) => items.push(Value::from(s.value().clone())),
                    _ => bail!(
                        "{what}: expected {}, found an array holding {}",
                        want.describe(),
                        v.type_name()
                    ),
                }
            }
            Value::from(items)
        }
        _ => return Err(wrong()),
    };
    check_with_parser(cmd, arg, &value).map_err(|e| anyhow!("{what}: {e}"))?;
    Ok(value)
}

/// The command-line words that give `arg` this value.
fn words(arg: &Arg, value: &Value) -> Vec<String> {
    let Some(long) = arg.get_long() else {
        return vec![];
    };
    let flag = format!("--{long}");
    match value {
        Value::Bool(_, true) => vec![flag],
        Value::Bool(_, false) => vec![],
        Value::Array(_, items) => items
            .iter()
            .flat_map(|v| [flag.clone(), scalar(v)])
            .collect(),
        v => vec![flag, scalar(v)],
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(_, s) => s.clone(),
        Value::Num(_, n) => n
            .to_i128()
            .map(|i| i.to_string())
            .or_else(|| n.to_u128().map(|u| u.to_string()))
            .or_else(|| n.to_f64().map(|f| f.to_string()))
            .unwrap_or_default(),
        Value::Bool(_, b) => b.to_string(),
        Value::Char(_, c) => c.to_string(),
        other => format!("{other:?}"),
    }
}

/// Runs the flag's parser (types, ranges) on the value alone, in the
/// command that owns the flag.
fn check_with_parser(owner: &Command, arg: &Arg, value: &Value) -> Result<()> {
    let probe = relaxed(owner.clone())
        .no_binary_name(true)
        .subcommand_required(false)
        .arg_required_else_help(false);
    if let Err(e) = probe.try_get_matches_from(words(arg, value)) {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("");
        bail!("{}", first.trim_start_matches("error: "));
    }
    Ok(())
}

/// One layer of settings, named for `config show` and figment's errors.
struct Layer {
    name: &'static str,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name)
    }
    fn data(&self) -> std::result::Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// The environment variable that sets `long`.
pub fn env_name(long: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        long.to_ascii_uppercase().replace('-', "_")
    )
}

/// Reads an environment variable's value for `arg`, with the type it takes
/// (figment's parsing: `3` an integer, `true` a boolean, `[a, b]` an array).
fn env_value(cmd: &Command, arg: &Arg, var: &str, raw: &str) -> Result<Value> {
    let value = match arg.get_action() {
        // `[a, b]` (quotes optional) is a list; anything else one item.
        ArgAction::Append => match raw
            .trim()
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
        {
            Some(inner) => Value::from(
                inner
                    .split(',')
                    .map(|v| v.trim().trim_matches('"').to_string())
                    .filter(|v| !v.is_empty())
                    .map(Value::from)
                    .collect::<Vec<_>>(),
            ),
            None => Value::from(vec![Value::from(raw.to_string())]),
        },
        ArgAction::SetTrue | ArgAction::SetFalse => match raw {
            "true" | "1" => Value::from(true),
            "false" | "0" | "" => Value::from(false),
            _ => bail!("environment {var}: expected true or false, found '{raw}'"),
        },
        _ => match (Kind::of(arg), raw.parse::<i64>()) {
            (Kind::Int, Ok(n)) => Value::from(n),
            _ => Value::from(raw.to_string()),
        },
    };
    check_with_parser(cmd, arg, &value).map_err(|e| anyhow!("environment {var}: {e}"))?;
    Ok(value)
}

/// Settings of one command after layering: every flag that has a value.
pub fn layer(
    cmd: &Command,
    section: &str,
    top: &ArgMatches,
    sub: Option<&ArgMatches>,
    file: &ConfigFile,
) -> Result<BTreeMap<String, Setting>> {
    let sub_cmd = cmd.find_subcommand(section);
    let mut args: Vec<(&Command, &Arg, Option<&ArgMatches>, &str)> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| (cmd, a, Some(top), ""))
        .collect();
    if let Some(s) = sub_cmd {
        args.extend(
            s.get_arguments()
                .filter(|a| !a.is_global_set())
                .map(|a| (s, a, sub, section)),
        );
    }
    let (mut defaults, mut from_file, mut from_env, mut from_cli) =
        (Dict::new(), Dict::new(), Dict::new(), Dict::new());
    let mut origins: BTreeMap<(&'static str, String), Origin> = BTreeMap::new();
    for (owner, arg, matches, sec) in args {
        let Some(long) = arg.get_long() else { continue };
        if settable(owner, long).is_none() {
            continue;
        }
        let key = long.to_string();
        if Kind::of(arg) == Kind::Bool {
            defaults.insert(key.clone(), Value::from(false));
        } else if let Some(first) = arg.get_default_values().first() {
            let v = first.to_string_lossy().to_string();
            let value = match Kind::of(arg) {
                Kind::Bool => Value::from(v == "true"),
                Kind::Int => v.parse::<i64>().map_or(Value::from(v.clone()), Value::from),
                Kind::Str | Kind::Strings => Value::from(v),
            };
            defaults.insert(key.clone(), value);
        }
        if let Some((v, line)) = file.get(sec, long) {
            from_file.insert(key.clone(), v.clone());
            let path = file.path.clone().unwrap_or_default();
            origins.insert(("file", key.clone()), Origin::File { path, line: *line });
        }
        let var = env_name(long);
        if let Ok(raw) = std::env::var(&var) {
            from_env.insert(key.clone(), env_value(owner, arg, &var, &raw)?);
            origins.insert(("environment", key.clone()), Origin::Env(var.clone()));
        }
        let id = arg.get_id().as_str();
        let Some(m) = matches else { continue };
        match m.value_source(id) {
            Some(ValueSource::CommandLine) => {
                from_cli.insert(key.clone(), value_of(m, arg));
            }
            Some(ValueSource::EnvVariable) => {
                from_env.insert(key.clone(), value_of(m, arg));
                let var = arg
                    .get_env()
                    .map(|v| v.to_string_lossy().to_string())
                    .unwrap_or(var);
                origins.insert(("environment", key.clone()), Origin::Env(var));
            }
            _ => {}
        }
    }
    let fig = Figment::new()
        .merge(Layer {
            name: "default",
            dict: defaults,
        })
        .merge(Layer {
            name: "file",
            dict: from_file,
        })
        .merge(Layer {
            name: "environment",
            dict: from_env,
        })
        .merge(Layer {
            name: "command line",
            dict: from_cli,
        });
    let mut out = BTreeMap::new();
    let data = fig.data().map_err(|e| anyhow!("{e}"))?;
    let Some(dict) = data.get(&Profile::Default) else {
        return Ok(out);
    };
    for key in dict.keys() {
        let value = fig.find_value(key).map_err(|e| anyhow!("{e}"))?;
        let layer = fig
            .find_metadata(key)
            .map_or("default", |m| match m.name.as_ref() {
                "file" => "file",
                "environment" => "environment",
                "command line" => "command line",
                _ => "default",
            });
        let origin = match layer {
            "command line" => Origin::CommandLine,
            "default" => Origin::Default,
            l => origins
                .get(&(l, key.clone()))
                .cloned()
                .unwrap_or(Origin::Default),
        };
        out.insert(key.clone(), Setting { value, origin });
    }
    Ok(out)
}

/// A flag's value as the command line gave it.
fn value_of(m: &ArgMatches, arg: &Arg) -> Value {
    let id = arg.get_id().as_str();
    let raw: Vec<String> = m
        .get_raw(id)
        .map(|v| v.map(|s| s.to_string_lossy().to_string()).collect())
        .unwrap_or_default();
    match arg.get_action() {
        ArgAction::SetTrue => Value::from(m.get_flag(id)),
        ArgAction::Append => Value::from(raw.into_iter().map(Value::from).collect::<Vec<_>>()),
        _ => Value::from(raw.into_iter().next().unwrap_or_default()),
    }
}

/// The config file a command reads: `--config`, else `chain.toml` in the
/// data directory when it exists. A `--config` file must exist.
pub fn locate(top: &ArgMatches) -> Result<Option<PathBuf>> {
    if let Some(p) = top.get_one::<PathBuf>("config") {
        if !p.is_file() {
            bail!("the config file {} does not exist", p.display());
        }
        return Ok(Some(p.clone()));
    }
    let given = top.get_one::<PathBuf>("data_dir").cloned();
    let dir = match top.value_source("data_dir") {
        Some(ValueSource::CommandLine | ValueSource::EnvVariable) => given,
        _ => std::env::var_os(env_name("data-dir"))
            .map(PathBuf::from)
            .or(given),
    }
    .unwrap_or_else(|| PathBuf::from("./tmp"));
    let p = dir.join(FILE_NAME);
    Ok(p.is_file().then_some(p))
}

/// Makes every flag optional, so that a required one may come from the
/// file or the environment; the real parser checks them afterwards.
fn relaxed(cmd: Command) -> Command {
    cmd.mut_args(|a| a.required(false)).mut_subcommands(relaxed)
}

/// The command line with the file's and the environment's settings added,
/// ready for the real parser: `args` (Go-style flags already rewritten) as
/// the user gave them, then `--key value` for each setting that a lower
/// layer gave and the command line did not. A flag that conflicts with one
/// given on the command line is left out. `foreign` names the other
/// binary's sections.
pub fn with_config(cmd: &Command, args: Vec<String>, foreign: &[&str]) -> Result<Vec<String>> {
    let Ok(top) = relaxed(cmd.clone()).try_get_matches_from(&args) else {
        // Help, a version request or a parse error: the real parser says it.
        return Ok(args);
    };
    let path = locate(&top)?;
    let file = match &path {
        Some(p) => ConfigFile::read(p, cmd, foreign)?,
        None => ConfigFile::default(),
    };
    if top.get_one::<PathBuf>("config").is_none() && file.get("", "data-dir").is_some() {
        bail!(
            "`data-dir` in {} would move the data directory away from the file that sets it; name the file with --config instead",
            path.unwrap_or_default().display()
        );
    }
    let Some((section, sub)) = top.subcommand() else {
        return Ok(args);
    };
    let sub_cmd = cmd
        .find_subcommand(section)
        .ok_or_else(|| anyhow!("unknown command {section}"))?;
    let settings = layer(cmd, section, &top, Some(sub), &file)?;
    let mut out = args;
    for (key, s) in &settings {
        if matches!(s.origin, Origin::CommandLine | Origin::Default) {
            continue;
        }
        let (owner, arg) = match settable(sub_cmd, key).filter(|a| !a.is_global_set()) {
            Some(a) => (sub_cmd, a),
            None => match settable(cmd, key) {
                Some(a) => (cmd, a),
                None => continue,
            },
        };
        // Given by clap's own env fallback: the parser reads it again.
        if arg.get_env().is_some()
            && matches!(&s.origin, Origin::Env(v) if Some(std::ffi::OsStr::new(v)) == arg.get_env())
        {
            continue;
        }
        let given = |a: &Arg| {
            let m = if a.is_global_set() { &top } else { sub };
            m.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine)
        };
        // Conflicts are declared on one side of a pair: look at both.
        let names = |a: &Arg, b: &Arg| {
            owner
                .get_arg_conflicts_with(a)
                .iter()
                .any(|c| c.get_id() == b.get_id())
        };
        let clashes = owner
            .get_arguments()
            .any(|g| given(g) && (names(arg, g) || names(g, arg)));
        if clashes {
            continue;
        }
        out.extend(words(arg, &s.value));
    }
    Ok(out)
}

mod show;
pub use show::{effective, render, render_json, show, Effective, Section};

#[cfg(test)]
mod tests;
