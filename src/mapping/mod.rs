//! Mapping: from an [`Event`] to the values of one Avro record.
//!
//! A mapping is compiled once at startup into an immutable [`Mapping`]
//! shared by all shards. Per event it fills one value slot per schema field;
//! the `avro` stage encodes the slots.
//!
//! Key components:
//! - [`Mapping`]: one configured mapping (schema, program, discard rules, sinks).
//! - [`default`]: the built-in mapping onto `DefaultEventRecord`.

pub mod configured;
pub mod default;
pub mod sample;
pub mod script;
pub mod tool;

use std::sync::Arc;

use crate::avro::{EncodeError, RecordLayout};
use crate::plan::{SinkId, SourceId};
pub use script::{Inputs, Scratch};

/// What a mapping runs per event.
#[derive(Debug)]
pub enum Program {
    /// The original's built-in mapping.
    Default(default::DefaultMapping),
    /// A user's mapping script.
    Script(script::Script),
}

/// Why a mapping produced no record for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// `discard_corrupted` and the checksum failed.
    Corrupt,
    /// `discard_duplicates` and the event was seen before.
    Duplicate,
    /// `discard_bots` and the user agent is a bot.
    Bot,
    /// The record could not be completed (a field without default unset).
    Invalid(EncodeError),
}

/// One configured mapping, compiled.
#[derive(Debug)]
pub struct Mapping {
    /// Name from the configuration.
    pub name: String,
    /// The sources it reads.
    pub sources: Vec<SourceId>,
    /// The sinks it writes to.
    pub sinks: Vec<SinkId>,
    /// The record schema, compiled.
    pub layout: Arc<RecordLayout>,
    /// Drop events whose checksum failed.
    pub discard_corrupted: bool,
    /// Drop events seen before.
    pub discard_duplicates: bool,
    /// Drop events from bots.
    pub discard_bots: bool,
    /// What runs per event.
    pub program: Program,
}

impl Mapping {
    /// A mapping from source 0 to sink 0 that keeps corrupt and duplicate
    /// events: how benchmarks and fuzz targets run a program outside a
    /// configuration.
    pub fn standalone(name: &str, layout: Arc<RecordLayout>, program: Program) -> Self {
        Self {
            name: name.to_owned(),
            sources: vec![SourceId(0)],
            sinks: vec![SinkId(0)],
            layout,
            discard_corrupted: false,
            discard_duplicates: false,
            discard_bots: false,
            program,
        }
    }

    /// Maps one event and appends its encoded record to `out`.
    ///
    /// # Errors
    /// [`Dropped`] when the discard rules drop the event or the record
    /// cannot be completed; `out` is then unchanged.
    pub fn map_into(&self, inputs: Inputs<'_>, scratch: &mut Scratch, out: &mut Vec<u8>) -> Result<(), Dropped> {
        let event = inputs.event;
        if self.discard_corrupted && event.corrupt {
            return Err(Dropped::Corrupt);
        }
        if self.discard_duplicates && event.duplicate {
            return Err(Dropped::Duplicate);
        }
        if self.discard_bots && inputs.user_agent.is_some_and(|ua| ua.bot) {
            return Err(Dropped::Bot);
        }
        match &self.program {
            Program::Default(m) => m.write(event, inputs.user_agent, &self.layout, out),
            Program::Script(s) => s.run(inputs, scratch, out),
        }
        .map_err(Dropped::Invalid)
    }
}
