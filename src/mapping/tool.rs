//! `divolte-collector mapping-test`: a mapping author's loop. Reads events
//! as JSON objects (one per line, see [`super::sample`]), runs the mapping
//! script on each and prints each record as one line of JSON, decoded
//! from the Avro the collector would write.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use apache_avro::types::Value;
use base64::Engine;
use serde_json::{json, Value as Json};

use super::configured::read;
use super::sample::SampleEvent;
use super::script::{Environment, Inputs, Scratch, Script};
use crate::avro::RecordLayout;
use crate::enrich::geo::GeoDatabase;
use crate::enrich::useragent;

/// A record as JSON: unions as their value, bytes and fixed as base64.
pub fn record_json(v: &Value) -> Json {
    let b64 = |b: &[u8]| Json::String(base64::engine::general_purpose::STANDARD.encode(b));
    match v {
        Value::Null => Json::Null,
        Value::Boolean(b) => json!(b),
        Value::Int(n) | Value::Date(n) | Value::TimeMillis(n) => json!(n),
        Value::Long(n)
        | Value::TimeMicros(n)
        | Value::TimestampMillis(n)
        | Value::TimestampMicros(n)
        | Value::TimestampNanos(n)
        | Value::LocalTimestampMillis(n)
        | Value::LocalTimestampMicros(n)
        | Value::LocalTimestampNanos(n) => json!(n),
        Value::Float(f) => json!(f),
        Value::Double(f) => json!(f),
        Value::Bytes(b) | Value::Fixed(_, b) => b64(b),
        Value::String(s) => json!(s),
        Value::Uuid(u) => json!(u.to_string()),
        Value::Enum(_, s) => json!(s),
        Value::Union(_, inner) => record_json(inner),
        Value::Array(items) => Json::Array(items.iter().map(record_json).collect()),
        Value::Map(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), record_json(v))).collect()),
        Value::Record(fields) => Json::Object(fields.iter().map(|(k, v)| (k.clone(), record_json(v))).collect()),
        other => json!(format!("{other:?}")),
    }
}

/// Runs the tool. Returns how many input lines failed.
///
/// # Errors
/// The schema or script cannot be used, or output cannot be written.
pub fn run(
    schema: &Path,
    script: &Path,
    geo: Option<&Path>,
    input: impl BufRead,
    mut output: impl Write,
) -> Result<usize, String> {
    let layout = RecordLayout::parse(&read(schema, "the schema")?).map_err(|e| format!("{}: {e}", schema.display()))?;
    let layout = Arc::new(layout);
    let geo = geo.map(GeoDatabase::open).transpose()?;
    let program = Script::compile(&read(script, "the mapping")?, &layout, Environment { geo: geo.is_some() })
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let ua_parser = woothee::parser::Parser::new();
    let mut scratch = Scratch::default();
    let mut failed = 0;
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let result = SampleEvent::from_json(&line).map_err(|e| format!("invalid event: {e}")).and_then(|sample| {
            sample.with_event(|event| {
                let ua = event.user_agent.map(|a| useragent::parse(&ua_parser, a));
                let inputs = Inputs { event, user_agent: ua.as_ref(), geo: geo.as_deref() };
                let mut bytes = Vec::new();
                let before = scratch.json_mismatches;
                program.run(inputs, &mut scratch, &mut bytes).map_err(|e| {
                    format!("field '{}' has no default and this event left it unset", layout.fields[e.field()].name)
                })?;
                if scratch.json_mismatches > before {
                    eprintln!("line {}: a JSON value did not fit its field; the field kept its value", n + 1);
                }
                apache_avro::from_avro_datum(&layout.schema, &mut &bytes[..], None)
                    .map(|v| record_json(&v))
                    .map_err(|e| format!("cannot decode the record: {e}"))
            })
        });
        match result {
            Ok(record) => writeln!(output, "{record}").map_err(|e| e.to_string())?,
            Err(e) => {
                failed += 1;
                eprintln!("line {}: {e}", n + 1);
            }
        }
    }
    Ok(failed)
}
