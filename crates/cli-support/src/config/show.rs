//! `config show`: the effective settings of every command, with where each
//! came from, as TOML a person can copy into the file or as JSON.

use super::{keys_of, layer, locate, relaxed, scalar, ConfigFile, Setting};
use anyhow::{anyhow, Result};
use clap::{ArgMatches, Command};
use figment::value::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every key of a section, with its setting (`None`: no value, no default).
pub type Section = BTreeMap<String, Option<Setting>>;

/// The file read, if any, and each section's settings ("" for the top level).
pub type Effective = (Option<PathBuf>, Vec<(String, Section)>);

/// The effective settings of every command of `cmd`, as `config show`
/// prints them: the top level, then a section per command.
pub fn effective(cmd: &Command, top: &ArgMatches, foreign: &[&str]) -> Result<Effective> {
    let path = locate(top)?;
    let file = match &path {
        Some(p) => ConfigFile::read(p, cmd, foreign)?,
        None => ConfigFile::default(),
    };
    let full = |keys: Vec<String>, mut set: BTreeMap<String, Setting>| -> Section {
        keys.into_iter()
            .map(|k| {
                let v = set.remove(&k);
                (k, v)
            })
            .collect()
    };
    let mut out = Vec::new();
    let globals = layer(cmd, "", top, None, &file)?;
    out.push((String::new(), full(keys_of(cmd, true), globals)));
    for s in cmd.get_subcommands() {
        let keys = keys_of(s, false);
        if s.is_hide_set() || keys.is_empty() {
            continue;
        }
        let settings = layer(cmd, s.get_name(), top, None, &file)?;
        out.push((s.get_name().to_string(), full(keys, settings)));
    }
    Ok((path, out))
}

/// `config show` as TOML a person can copy into the file, each line with
/// its origin.
pub fn render(path: Option<&Path>, sections: &[(String, Section)]) -> String {
    let mut s = String::new();
    s.push_str("# Effective settings: command line > environment > file > defaults.\n");
    match path {
        Some(p) => s.push_str(&format!("# Config file: {}\n", p.display())),
        None => s.push_str("# Config file: none\n"),
    }
    for (name, settings) in sections {
        if !name.is_empty() {
            s.push_str(&format!("\n[{name}]\n"));
        }
        for (key, setting) in settings {
            match setting {
                Some(setting) => {
                    let line = format!("{key} = {}", toml_literal(&setting.value));
                    s.push_str(&format!("{line:<40} # {}\n", setting.origin));
                }
                None => s.push_str(&format!("{:<40} # unset\n", format!("# {key} ="))),
            }
        }
    }
    s
}

/// The same as JSON: `{"file": ..., "settings": {section: {key: {"value", "source"}}}}`.
pub fn render_json(path: Option<&Path>, sections: &[(String, Section)]) -> serde_json::Value {
    let mut all = serde_json::Map::new();
    for (name, settings) in sections {
        let mut m = serde_json::Map::new();
        for (key, setting) in settings {
            let entry = match setting {
                Some(s) => serde_json::json!({
                    "value": serde_json::to_value(&s.value).unwrap_or_default(),
                    "source": s.origin.to_string(),
                }),
                None => serde_json::json!({"value": null, "source": "unset"}),
            };
            m.insert(key.clone(), entry);
        }
        all.insert(
            if name.is_empty() {
                "top".into()
            } else {
                name.clone()
            },
            m.into(),
        );
    }
    serde_json::json!({"file": path.map(|p| p.display().to_string()), "settings": all})
}

fn toml_literal(v: &Value) -> String {
    match v {
        Value::String(_, s) => toml_edit::Value::from(s.as_str())
            .to_string()
            .trim()
            .to_string(),
        Value::Array(_, items) => format!(
            "[{}]",
            items
                .iter()
                .map(toml_literal)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => scalar(other),
    }
}

/// `config show`: the effective settings of every command of `cmd` for the
/// command line `args`, as TOML with each line's origin, or as JSON.
pub fn show(cmd: &Command, args: Vec<String>, foreign: &[&str], json: bool) -> Result<String> {
    let top = relaxed(cmd.clone())
        .try_get_matches_from(&args)
        .map_err(|e| anyhow!("{e}"))?;
    let (path, sections) = effective(cmd, &top, foreign)?;
    Ok(if json {
        format!("{}\n", render_json(path.as_deref(), &sections))
    } else {
        render(path.as_deref(), &sections)
    })
}
