//! One generation of what the shards run, built from a plan: at startup
//! and again at every reload.

use std::sync::Arc;

use apache_avro::Schema;

use crate::avro::{dead_letter_schema, default_schema, JsonWriter, Unions};
use crate::batch::SinkLanes;
use crate::enrich::dedup::DuplicateMemory;
use crate::enrich::geo::GeoDatabase;
use crate::mapping::Mapping;
use crate::plan::{Plan, SinkId};
use crate::shard::routes::RouteTables;
use crate::shard::stages::{EventStages, SourceStage};
use crate::shard::status::{MappingStatus, StatusInfo};
use crate::shard::Generation;

/// The schema each sink of `plan` receives, by [`SinkId`]: its mappings'
/// (validation made them agree), or the dead letters' for a dead-letter
/// sink.
pub fn sink_schemas(plan: &Plan, mappings: &[Mapping]) -> Vec<Schema> {
    (0..plan.sinks.len())
        .map(SinkId)
        .map(|sink| {
            if plan.sources.iter().any(|s| s.dead_letters == Some(sink)) {
                return dead_letter_schema();
            }
            let writer = mappings.iter().find(|m| m.sinks.contains(&sink));
            writer.map_or_else(|| default_schema().schema, |m| m.layout.schema.clone())
        })
        .collect()
}

/// How each sink's records read as JSON on the operator page, by
/// [`SinkId`]; built before any sink starts or changes, so that nothing can
/// fail after.
///
/// # Errors
/// A schema whose named types do not resolve.
pub fn sink_json(schemas: &[Schema]) -> Result<Vec<JsonWriter>, String> {
    schemas.iter().map(|s| JsonWriter::new(s, Unions::Plain)).collect()
}

/// What a generation is built from.
#[allow(missing_docs)]
pub struct Parts<'a> {
    /// Its number: 1 at startup, one more at each reload.
    pub number: u64,
    pub plan: &'a Plan,
    pub mappings: Vec<Mapping>,
    pub routes: RouteTables,
    pub geo: Option<Arc<GeoDatabase>>,
    /// The duplicate memory, kept across reloads.
    pub duplicates: Arc<DuplicateMemory>,
    /// The running sinks' lanes, by [`SinkId`].
    pub sinks: Vec<SinkLanes>,
    /// Their records as JSON, by [`SinkId`] (from [`sink_json`]).
    pub sink_json: Vec<JsonWriter>,
}

/// Builds a generation.
pub fn build(parts: Parts<'_>) -> Generation {
    let Parts { number, plan, mappings, routes, geo, duplicates, sinks, sink_json } = parts;
    let status = StatusInfo {
        plan: format!("{plan:#?}"),
        mappings: mappings
            .iter()
            .map(|m| MappingStatus {
                name: m.name.clone(),
                schema: serde_json::to_string_pretty(&m.layout.schema).unwrap_or_default(),
                sinks: m.sinks.clone(),
            })
            .collect(),
        sink_json,
    };
    let sources =
        plan.sources.iter().map(|s| SourceStage { name: s.name.clone(), dead_letters: s.dead_letters }).collect();
    let events = Arc::new(EventStages::new(&plan.enrichment, mappings, sources, geo, duplicates));
    Generation { number, routes, events, sinks, status }
}
