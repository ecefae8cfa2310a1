//! Mapping: from an [`Event`] to the values of one Avro record.
//!
//! A mapping is compiled once at startup into an immutable [`Mapping`]
//! shared by all shards. Per event it fills one value slot per schema field;
//! the `avro` stage encodes the slots.
//!
//! Key components:
//! - [`Mapping`]: one configured mapping (schema, program, discard rules, sinks).
//! - [`default`]: the built-in mapping onto `DefaultEventRecord`.

pub mod default;

use std::sync::Arc;

use crate::avro::{Datum, RecordLayout};
use crate::enrich::useragent::UserAgent;
use crate::event::Event;

/// What a mapping runs per event.
#[derive(Debug)]
pub enum Program {
    /// The original's built-in mapping.
    Default(default::DefaultMapping),
}

/// Why a mapping produced no record for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    /// `discard_corrupted` and the checksum failed.
    Corrupt,
    /// `discard_duplicates` and the event was seen before.
    Duplicate,
}

/// One configured mapping, compiled.
#[derive(Debug)]
pub struct Mapping {
    /// Name from the configuration.
    pub name: String,
    /// Indexes of the sources it reads.
    pub sources: Vec<usize>,
    /// Indexes of the sinks it writes to.
    pub sinks: Vec<usize>,
    /// The record schema, compiled.
    pub layout: Arc<RecordLayout>,
    /// Drop events whose checksum failed.
    pub discard_corrupted: bool,
    /// Drop events seen before.
    pub discard_duplicates: bool,
    /// What runs per event.
    pub program: Program,
}

impl Mapping {
    /// Maps `event` into `values` (one slot per schema field, `None` = default).
    ///
    /// # Errors
    /// [`Discard`] when the mapping's discard rules drop the event.
    pub fn map<'a>(
        &self,
        event: &Event<'a>,
        user_agent: Option<&'a UserAgent>,
        values: &mut Vec<Option<Datum<'a>>>,
    ) -> Result<(), Discard> {
        if self.discard_corrupted && event.corrupt {
            return Err(Discard::Corrupt);
        }
        if self.discard_duplicates && event.duplicate {
            return Err(Discard::Duplicate);
        }
        values.clear();
        values.resize(self.layout.fields.len(), None);
        match &self.program {
            Program::Default(m) => m.map(event, user_agent, values),
        }
        Ok(())
    }
}
