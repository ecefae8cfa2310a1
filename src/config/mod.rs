//! The configuration tree, its embedded defaults, and loading from TOML or
//! the original's HOCON.
//!
//! The tree mirrors the original's HOCON tree (`divolte.global.server.port`
//! and so on), written as TOML. A file may wrap everything in a `[divolte]`
//! table, as HOCON files do, or start at `[global...]` directly. A `.conf`
//! file, or one that is not TOML, is read as HOCON ([`hocon`]) into the same
//! tree.
//!
//! Loading happens in two phases: this module deserializes and validates,
//! doing nothing else; `main` turns the validated tree into runtime objects.
//!
//! Key components:
//! - [`Config`]: the whole tree; `Config::default()` is what runs without a file.
//! - [`load`]: reads a file, applies environment overrides and substitutions, reports every error at once.
//! - [`validate`]: cross-object rules (mapping references, sink schemas, ...).

pub mod duration;
mod env;
pub mod hocon;
pub mod kafka;
mod sections;
mod size;
pub mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::DeserializeOwned;

pub use duration::ConfigDuration;
use sections::Tagged;
pub use sections::*;

/// One configuration problem, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted key path, e.g. `divolte.global.server.port`.
    pub path: String,
    /// What is wrong and, where possible, what to do about it.
    pub message: String,
}

impl ConfigError {
    /// An error at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found in a configuration, reported together.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} configuration error(s):", self.0.len())?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The root of every key path in messages, as in the original.
const ROOT: &str = "divolte";

/// Loads a configuration file, or the embedded defaults when `path` is `None`.
///
/// # Errors
/// Every syntax, type, unknown-key and validation problem, with key paths.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigErrors> {
    let env = |name: &str| std::env::var(name).ok();
    let Some(path) = path else { return from_toml_with_env("", env) };
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![ConfigError::new(path.display().to_string(), format!("cannot read configuration file: {e}"))])
    })?;
    if path.extension().is_some_and(|e| e == "conf") {
        return from_table_with_env(read_hocon(path, &text)?.table, Vec::new(), env);
    }
    match parse_toml(&text) {
        Ok(table) => from_toml_table(table, env),
        // Not TOML: the original's HOCON under another name (it has the
        // `divolte { }` object), or a TOML file with a mistake, whose error
        // is then the one to show.
        Err(toml_errors) => match read_hocon(path, &text) {
            Ok(converted) if converted.rooted => from_table_with_env(converted.table, Vec::new(), env),
            _ => Err(toml_errors),
        },
    }
}

/// Reads the original's HOCON file at `path` (its text: `text`) into the
/// configuration tree, with the process environment.
///
/// # Errors
/// Syntax and substitution errors, with file, line and column.
pub fn read_hocon(path: &Path, text: &str) -> Result<hocon::Converted, ConfigErrors> {
    let base = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    hocon::convert(text, &path.display().to_string(), base, std::env::vars().collect()).map_err(ConfigErrors)
}

/// Parses TOML text into the tree below the `divolte` root.
fn parse_toml(text: &str) -> Result<toml::Table, ConfigErrors> {
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigErrors(vec![ConfigError::new(ROOT, format!("invalid TOML: {e}"))]))?;
    match table.remove(ROOT) {
        None => Ok(table),
        Some(toml::Value::Table(inner)) if table.is_empty() => Ok(inner),
        Some(_) => Err(ConfigErrors(vec![ConfigError::new(
            ROOT,
            "when a [divolte] table is used, every key must be inside it",
        )])),
    }
}

/// Parses TOML text into a validated [`Config`], reading overrides and
/// `${VAR}` substitutions from `env`.
///
/// # Errors
/// Every problem found, each with its key path.
pub fn from_toml_with_env(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    from_toml_table(parse_toml(text)?, env)
}

/// A parsed TOML tree (below the root) into a validated [`Config`].
fn from_toml_table(mut table: toml::Table, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    env::substitute(&mut table, ROOT, &env, &mut errors);
    from_table_with_env(table, errors, env)
}

/// The keys of layouts older than 0.5, and what replaced them.
const OLD_LAYOUT: &[(&str, &str)] = &[
    ("server", "divolte.global.server"),
    (
        "tracking",
        "divolte.sources.<name> (type = browser) and divolte.mappings.<name> (schema_file, mapping_script_file)",
    ),
    ("javascript", "divolte.sources.<name>.javascript"),
    ("incoming_request_processor", "divolte.global.mapper"),
    ("kafka_flusher", "divolte.global.kafka and divolte.sinks.<name> (type = kafka, topic)"),
    ("hdfs_flusher", "divolte.global.hdfs and divolte.sinks.<name> (type = hdfs, file_strategy)"),
];

/// Validates a configuration tree (below the `divolte` root), adding to
/// `errors` found so far.
fn from_table_with_env(
    mut table: toml::Table,
    mut errors: Vec<ConfigError>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    env::apply_overrides(&mut table, &env, &mut errors);

    let mut config = Config::default();
    for (key, value) in table {
        let path = format!("{ROOT}.{key}");
        match key.as_str() {
            "global" => config.global = section(value, &path, &mut errors),
            "sources" => config.sources = named_sections(value, &path, &mut errors, tagged),
            "mappings" => config.mappings = named_sections(value, &path, &mut errors, section),
            "sinks" => config.sinks = named_sections(value, &path, &mut errors, tagged),
            old => match OLD_LAYOUT.iter().find(|(k, _)| *k == old) {
                Some((_, now)) => errors.push(ConfigError::new(
                    path,
                    format!("this is the layout of Divolte before 0.5; its settings moved to {now}"),
                )),
                None => {
                    errors.push(ConfigError::new(path, "unknown key (expected global, sources, mappings or sinks)"))
                }
            },
        }
    }
    config.fill_implicit_defaults();
    errors.extend(validate::validate(&config));
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// Deserializes one subtree, recording unknown keys and type errors under
/// `path` instead of stopping at the first one, so that a user sees every
/// problem of a file in one run.
pub(crate) fn section<T: DeserializeOwned + Default>(
    value: toml::Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> T {
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let result = {
        let de = serde_path_to_error::Deserializer::new(value, &mut track);
        serde_ignored::deserialize(de, |p| unknown.push(p.to_string()))
    };
    for key in unknown {
        errors.push(ConfigError::new(format!("{path}.{key}"), "unknown key"));
    }
    match result {
        Ok(v) => v,
        Err(e) => {
            let at = track.path().to_string();
            let full = if at == "." || at.is_empty() { path.to_owned() } else { format!("{path}.{at}") };
            errors.push(ConfigError::new(full, e.to_string()));
            T::default()
        }
    }
}

/// Deserializes an object whose `type` key selects its struct.
fn tagged<T: Tagged + Default>(value: toml::Value, path: &str, errors: &mut Vec<ConfigError>) -> T {
    let toml::Value::Table(mut table) = value else {
        errors.push(ConfigError::new(path, "expected a table"));
        return T::default();
    };
    let kind = match table.remove("type") {
        Some(toml::Value::String(kind)) => kind,
        Some(_) | None => {
            errors.push(ConfigError::new(
                format!("{path}.type"),
                format!("missing or not a string; expected {}", T::KINDS),
            ));
            return T::default();
        }
    };
    T::from_kind(&kind, toml::Value::Table(table), path, errors).unwrap_or_else(|| {
        errors.push(ConfigError::new(format!("{path}.type"), format!("unknown type {kind:?}; expected {}", T::KINDS)));
        T::default()
    })
}

/// Deserializes a table of named objects (`sources.*`, `sinks.*`, `mappings.*`).
fn named_sections<T>(
    value: toml::Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
    item: fn(toml::Value, &str, &mut Vec<ConfigError>) -> T,
) -> Option<BTreeMap<String, T>> {
    let toml::Value::Table(table) = value else {
        errors.push(ConfigError::new(path, "expected a table of named entries"));
        return None;
    };
    Some(
        table
            .into_iter()
            .map(|(name, v)| {
                let p = format!("{path}.{name}");
                let parsed = item(v, &p, errors);
                (name, parsed)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
