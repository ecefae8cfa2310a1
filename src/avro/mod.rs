//! Avro: record layouts compiled from schemas, datum encoding, and the
//! container-file framing used by file sinks.
//!
//! Records are encoded once, on the shard, into Avro binary; every sink of
//! the mapping shares those bytes. Schemas are parsed by `apache-avro`
//! (also used to write container headers and, in tests, to read everything
//! back). The per-record encoder is our own: it writes straight from
//! borrowed event data in schema order, with field defaults pre-encoded at
//! startup, where building `apache_avro::types::Value` trees would allocate
//! a string per field.
//!
//! Key components:
//! - [`RecordLayout`]: a record schema compiled for encoding.
//! - [`Datum`] and [`encode_record`]: one record's values to bytes.
//! - [`encode_json`]: JSON values by the original's JSON-to-Avro rules.
//! - [`container`]: Avro object container files.

pub mod container;
mod dead_letter;
mod defaults;
mod encode;
mod json;
mod names;
mod schema;
mod to_json;

pub use dead_letter::{dead_letter_schema, DeadLetter, DEAD_LETTER_SCHEMA_JSON};
pub use encode::{encode_record, Datum, EncodeError};
pub(crate) use encode::{write_long, write_str};
pub use json::{encode_json, is_long, Mismatch};
pub use names::Names;
pub use schema::{default_schema, FieldKind, FieldLayout, RecordLayout, SchemaError, DEFAULT_SCHEMA_JSON};
pub use to_json::{JsonWriter, Unions};
