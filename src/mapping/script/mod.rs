//! The mapping language: users' Divolte mapping scripts, unmodified.
//!
//! A script is parsed ([`parser`]), its helpers and loops expanded as
//! Groovy would run them while building the mapping ([`expand`]), checked
//! against the record schema and compiled into typed nodes ([`compile`],
//! [`program`]) once at startup, then run per event ([`eval`]). The Groovy the original evaluated is not
//! run; the language is implemented: every construct and value of the
//! original's mapping reference, with the parts of Groovy's surface that
//! scripts use (optional parentheses, command chains, slashy regexes,
//! literal suffixes). Anything else Groovy offers is refused by name, with
//! its line and column.

mod compile;
mod digest;
mod error;
mod eval;
mod expand;
mod geo;
mod headers;
mod lexer;
mod methods;
mod parser;
mod program;
mod regex;
mod syntax;
mod uri;
mod val;

pub use compile::Environment;
pub use error::{Pos, ScriptError, ScriptErrors};
pub use eval::{Inputs, Scratch};

use std::sync::Arc;

use crate::avro::{EncodeError, RecordLayout};

/// A compiled mapping script.
#[derive(Debug)]
pub struct Script {
    program: program::Program,
}

impl Script {
    /// Parses `text`, expands its helpers and loops, and compiles it
    /// against the record schema `layout`.
    ///
    /// # Errors
    /// [`ScriptErrors`], each with its line and column: every statement
    /// that does not parse or expand, else the first that does not compile.
    pub fn compile(text: &str, layout: &Arc<RecordLayout>, env: Environment) -> Result<Self, ScriptErrors> {
        let block = parser::parse(text).map_err(ScriptErrors)?;
        let block = expand::expand(block).map_err(ScriptErrors)?;
        let program = compile::compile(&block, layout, env)?;
        Ok(Self { program })
    }

    /// Maps one event and appends the encoded record to `out`.
    ///
    /// # Errors
    /// [`EncodeError::MissingField`] when a field without default was left
    /// unset by this event (`out` is then unchanged).
    pub fn run<'e>(&'e self, inputs: Inputs<'e>, scratch: &mut Scratch, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        eval::run(&self.program, inputs, scratch, out)
    }
}

#[cfg(test)]
mod tests;
