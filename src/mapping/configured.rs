//! The configured mappings, compiled: each mapping's schema file (or the
//! built-in schema) and its script (or the built-in mapping), with the
//! ids of the sources it reads and the sinks it writes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::script::{Environment, Script};
use super::{default::DefaultMapping, Mapping, Program};
use crate::avro::{default_schema, RecordLayout};
use crate::plan::MappingPlan;

/// A file's text; the error names `what` it is and where.
pub(super) fn read(path: &Path, what: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {what} {}: {e}", path.display()))
}

/// Compiles every mapping of the plan. `geo` says whether an ip2geo
/// database is configured (scripts that use `ip2geo()` need one).
///
/// # Errors
/// The first mapping whose schema or script cannot be used, with the file,
/// line and column.
pub fn build(plans: &[MappingPlan], geo: bool) -> Result<Vec<Mapping>, String> {
    let default = Arc::new(default_schema());
    let mut schemas: HashMap<PathBuf, Arc<RecordLayout>> = HashMap::new();
    let mut mappings = Vec::new();
    for plan in plans {
        let name = &plan.name;
        let (layout, program) = match &plan.script_file {
            None => {
                let program = DefaultMapping::new(&default).map_err(|f| format!("default schema lacks {f}"))?;
                (default.clone(), Program::Default(program))
            }
            Some(script_path) => {
                let layout = match &plan.schema_file {
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
        mappings.push(Mapping {
            name: name.clone(),
            sources: plan.sources.clone(),
            sinks: plan.sinks.clone(),
            layout,
            discard_corrupted: plan.discard_corrupted,
            discard_duplicates: plan.discard_duplicates,
            discard_bots: plan.discard_bots,
            program,
        });
    }
    Ok(mappings)
}
