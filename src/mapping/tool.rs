//! `divolte-collector mapping-test`: a mapping author's loop. Reads events
//! as JSON objects (one per line, see [`super::sample`]), runs the mapping
//! script on each and prints each record as one line of JSON, decoded
//! from the Avro the collector would write: the line a sink with
//! `format = "json"` and `json_unions = "plain"` writes.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use super::configured::read;
use super::sample::SampleEvent;
use super::script::{Environment, Inputs, Scratch, Script};
use crate::avro::{JsonWriter, RecordLayout, Unions};
use crate::enrich::geo::GeoDatabase;
use crate::enrich::useragent;

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
    let json = JsonWriter::new(&layout.schema, Unions::Plain).map_err(|e| format!("{}: {e}", schema.display()))?;
    let geo = geo.map(GeoDatabase::open).transpose()?;
    let program = Script::compile(&read(script, "the mapping")?, &layout, Environment { geo: geo.is_some() })
        .map_err(|e| format!("{}: {e}", script.display()))?;
    let ua_parser = useragent::UserAgentParser::default();
    let mut scratch = Scratch::default();
    let mut failed = 0;
    for (n, line) in input.lines().enumerate() {
        let line = line.map_err(|e| e.to_string())?;
        if line.trim().is_empty() {
            continue;
        }
        let result = SampleEvent::from_json(&line).map_err(|e| format!("invalid event: {e}")).and_then(|sample| {
            sample.with_event(|event| {
                let ua = event.user_agent.map(|a| ua_parser.parse(a));
                let inputs =
                    Inputs { event, user_agent: ua.as_ref(), geo: geo.as_deref(), geo_host: event.remote_host };
                let mut bytes = Vec::new();
                let before = scratch.json_mismatches;
                program.run(inputs, &mut scratch, &mut bytes).map_err(|e| {
                    format!("field '{}' has no default and this event left it unset", layout.fields[e.field()].name)
                })?;
                if scratch.json_mismatches > before {
                    eprintln!("line {}: a JSON value did not fit its field; the field kept its value", n + 1);
                }
                let mut text = Vec::new();
                json.write(&bytes, &mut text).map_err(|e| format!("cannot decode the record: {e}"))?;
                Ok(String::from_utf8_lossy(&text).into_owned())
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
