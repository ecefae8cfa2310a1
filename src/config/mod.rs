//! The configuration tree, its embedded defaults, and loading from TOML.
//!
//! The tree mirrors the original's HOCON tree (`divolte.global.server.port`
//! and so on), written as TOML. A file may wrap everything in a `[divolte]`
//! table, as HOCON files do, or start at `[global...]` directly.
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
pub mod kafka;
mod sections;
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
    let text = match path {
        Some(p) => std::fs::read_to_string(p).map_err(|e| {
            ConfigErrors(vec![ConfigError::new(
                p.display().to_string(),
                format!("cannot read configuration file: {e}"),
            )])
        })?,
        None => String::new(),
    };
    from_toml_with_env(&text, |name| std::env::var(name).ok())
}

/// Parses TOML text into a validated [`Config`], reading overrides from `env`.
///
/// # Errors
/// Every problem found, each with its key path.
pub fn from_toml_with_env(text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ConfigErrors(vec![ConfigError::new(ROOT, format!("invalid TOML: {e}"))]))?;
    if let Some(inner) = table.remove(ROOT) {
        match inner {
            toml::Value::Table(t) if table.is_empty() => table = t,
            _ => errors.push(ConfigError::new(ROOT, "when a [divolte] table is used, every key must be inside it")),
        }
    }
    env::substitute(&mut table, ROOT, &env, &mut errors);
    env::apply_overrides(&mut table, &env, &mut errors);

    let mut config = Config::default();
    for (key, value) in table {
        let path = format!("{ROOT}.{key}");
        match key.as_str() {
            "global" => config.global = section(value, &path, &mut errors),
            "sources" => config.sources = named_sections(value, &path, &mut errors, tagged),
            "mappings" => config.mappings = named_sections(value, &path, &mut errors, section),
            "sinks" => config.sinks = named_sections(value, &path, &mut errors, tagged),
            _ => errors.push(ConfigError::new(path, "unknown key (expected global, sources, mappings or sinks)")),
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
