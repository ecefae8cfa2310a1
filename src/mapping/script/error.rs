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

/// Every problem found in a script, in the order of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptErrors(pub Vec<ScriptError>);

impl From<ScriptError> for ScriptErrors {
    fn from(e: ScriptError) -> Self {
        Self(vec![e])
    }
}

impl std::fmt::Display for ScriptErrors {
    /// One problem as it is; several, one per line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0[..] {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "{} problems:", all.len())?;
                for e in all {
                    write!(f, "\n  {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ScriptErrors {}
