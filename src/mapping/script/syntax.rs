//! The syntax tree of a mapping script, as written (names not yet resolved).

use super::error::Pos;
use super::lexer::{Number, StrPart};

/// Statements in order.
pub type Block = Vec<Stmt>;

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Stmt {
    /// `map <value> onto 'field'`
    Map {
        /// The value (an expression or a closure).
        value: Expr,
        /// Target field name.
        field: String,
        /// Where the field name is.
        field_pos: Pos,
    },
    /// `when <cond> apply { ... }`, `when <cond> exit()`, `when <cond> stop()`
    When {
        /// The condition (an expression or a closure).
        cond: Expr,
        /// What runs when it holds.
        then: Then,
    },
    /// `section { ... }`
    Section(Block),
    /// The body of an expanded helper call or loop pass: its own scope for
    /// `def`, otherwise part of the block it stands in (an `exit()` in it
    /// leaves the enclosing section).
    Scope(Block),
    /// `exit()`
    Exit(Pos),
    /// `stop()`
    Stop(Pos),
    /// `map <value> onto <parameter>`: a helper's or loop's parameter
    /// names the field; expansion turns it into [`Stmt::Map`].
    MapOntoParam {
        /// The value.
        value: Expr,
        /// The parameter.
        param: String,
        /// Where the parameter is.
        pos: Pos,
    },
    /// `def name = <value>`
    Def {
        /// Variable name.
        name: String,
        /// Where the name is.
        pos: Pos,
        /// Bound value.
        value: Expr,
    },
    /// `def name`: declared, bound by a later [`Stmt::Assign`].
    Declare {
        /// Variable name.
        name: String,
        /// Where the name is.
        pos: Pos,
    },
    /// `name = <value>` for a declared name. The script body runs once,
    /// when the mapping is built, so the value is bound wherever the
    /// assignment stands (also inside a `when ... apply { }`).
    Assign {
        /// Variable name.
        name: String,
        /// Where the name is.
        pos: Pos,
        /// Bound value.
        value: Expr,
    },
    /// An expression on its own; the last one of a closure is its value.
    Expr(Expr),
}

/// The action of a `when`.
#[derive(Debug, Clone, PartialEq)]
pub enum Then {
    /// `apply { ... }`
    Apply(Block),
    /// `exit()`
    Exit(Pos),
    /// `stop()`
    Stop(Pos),
}

/// An expression and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Its first token.
    pub pos: Pos,
}

/// Expression forms.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// A string literal.
    Str(String),
    /// `true` / `false`
    Bool(bool),
    /// A number literal.
    Num(Number),
    /// A name bound by `def`, or a function named without parentheses.
    Var(String),
    /// `name(args)`
    Call {
        /// Function name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// `recv.name(args)`, `recv.name` or the command form `recv name arg`.
    Method {
        /// Receiver.
        recv: Box<Expr>,
        /// Method name.
        name: String,
        /// Arguments.
        args: Vec<Expr>,
    },
    /// `parse <input> to <type>`
    Parse {
        /// The string to parse.
        input: Box<Expr>,
        /// Target type name as written.
        target: String,
    },
    /// `match <regex> against <input>`
    Match {
        /// The pattern.
        regex: Box<Expr>,
        /// The string to match.
        input: Box<Expr>,
    },
    /// `not <cond>`
    Not(Box<Expr>),
    /// `{ ... }`: its last expression is the value.
    Closure(Block),
    /// `{ a, b -> ... }`: a helper, expanded where it is called.
    Lambda {
        /// Parameter names.
        params: Vec<String>,
        /// Its statements.
        body: Block,
    },
    /// `[a, b]`: only as the receiver of `.each { x -> ... }`.
    List(Vec<Expr>),
    /// A double-quoted string with `$name` in it.
    Template(Vec<StrPart>),
}
