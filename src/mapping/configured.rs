//! The configured mappings, compiled: each mapping's schema file (or the
//! built-in schema) and its script (or the built-in mapping), with the
//! indexes of the sources it reads and the sinks it writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::script::{Environment, Script};
use super::{default::DefaultMapping, Mapping, Program};
use crate::avro::{default_schema, RecordLayout};
use crate::config::Config;

/// A file's text; the error names `what` it is and where.
pub(super) fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// Compiles every mapping of `config`. `geo` says whether an ip2geo
/// database is configured (scripts that use `ip2geo()` need one).
///
/// # Errors
/// The first mapping whose schema or script cannot be used, with the file,
/// line and column.
pub fn build(config: &Config, geo: bool) -> Result<Vec<Mapping>, String> {
    let sources: Vec<&String> = config.sources.iter().flatten().map(|(n, _)| n).collect();
    let active: Vec<&String> = config.active_sinks().map(|(n, _)| n).collect();
    let default = Arc::new(default_schema());
    let mut schemas: HashMap<PathBuf, Arc<RecordLayout>> = HashMap::new();
    let mut mappings = Vec::new();
    for (name, m) in config.mappings.iter().flatten() {
        let (layout, program) = match &m.mapping_script_file {
            None => {
                if let Some(schema) = &m.schema_file {
                    tracing::warn!(mapping = %name, schema = %schema.display(), "schema_file is ignored without mapping_script_file; the built-in schema and mapping are used.");
                }
                let program = DefaultMapping::new(&default).map_err(|f| format!("default schema lacks {f}"))?;
                (default.clone(), Program::Default(program))
            }
            Some(script_path) => {
                let layout = match &m.schema_file {
                    None => default.clone(),
                    Some(path) => match schemas.get(path) {
                        Some(l) => l.clone(),
                        None => {
                            let text = read(path, "schema_file")?;
                            let layout = RecordLayout::parse(&text)
                                .map_err(|e| format!("mapping {name}: schema_file {}: {e}", path.display()))?;
                            let layout = Arc::new(layout);
                            schemas.insert(path.clone(), layout.clone());
                            layout
                        }
                    },
                };
                let text = read(script_path, "mapping_script_file")?;
                let script = Script::compile(&text, &layout, Environment { geo })
                    .map_err(|e| format!("mapping {name}: {}: {e}", script_path.display()))?;
                (layout, Program::Script(script))
            }
        };
        let sink_idx: Vec<usize> =
            m.sinks.iter().flatten().filter_map(|s| active.iter().position(|n| *n == s)).collect();
        if sink_idx.is_empty() {
            tracing::warn!(mapping = %name, "Mapping writes to no enabled sink; its records go nowhere.");
        }
        mappings.push(Mapping {
            name: name.clone(),
            sources: m.sources.iter().flatten().filter_map(|s| sources.iter().position(|n| *n == s)).collect(),
            sinks: sink_idx,
            layout,
            discard_corrupted: m.discard_corrupted,
            discard_duplicates: m.discard_duplicates,
            program,
        });
    }
    Ok(mappings)
}
