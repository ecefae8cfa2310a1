//! Errors in a mapping script, always with the line and column they are at.

/// A place in the script, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line number.
    pub line: u32,
    /// Column, in characters.
    pub col: u32,
}

/// Why a script cannot be used: what, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError {
    /// Where the problem starts.
    pub pos: Pos,
    /// What is wrong, in the script author's terms.
    pub message: String,
}

impl ScriptError {
    /// An error at `pos`.
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Self { pos, message: message.into() }
    }
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}: {}", self.pos.line, self.pos.col, self.message)
    }
}

impl std::error::Error for ScriptError {}
