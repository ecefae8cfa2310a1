//! From the syntax tree to a [`Program`]: names resolved, every value
//! typed, every `map` checked against the Avro schema, regexes, JSON paths
//! and digests built once. Every error names the line and column.
//!
//! The compiler's state and the statements are here; expressions and calls
//! in `expr.rs`, methods of typed values in `method.rs`, and the checks of
//! a value against the field it is mapped onto in `target.rs`.

mod expr;
mod method;
mod target;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::error::{Pos, ScriptError};
use super::program::{Action, Lit, Node, NodeId, Program, Ty};
use super::syntax::{Block, Stmt, Then};
use crate::avro::{Names, RecordLayout};

/// What the script may use besides the event.
#[derive(Debug, Clone, Copy, Default)]
pub struct Environment {
    /// A geo database is configured, so `ip2geo()` works.
    pub geo: bool,
}

struct Compiler<'s> {
    layout: &'s RecordLayout,
    names: &'s Names,
    env: Environment,
    nodes: Vec<Node>,
    types: Vec<Ty>,
    memo: u32,
    scopes: Vec<HashMap<String, NodeId>>,
    /// Per scope: names declared with `def x` and not bound yet.
    declared: Vec<HashSet<String>>,
    /// Per field: `None` while unmapped, else the union branch of typed values.
    targets: Vec<Option<Option<u8>>>,
    /// Values every use shares, so they are computed once per event.
    shared: HashMap<&'static str, NodeId>,
}

/// Compiles a parsed script against a record schema.
///
/// # Errors
/// [`ScriptError`] for the first problem: unknown name, field or method,
/// wrong type, bad literal, regex or JSON path, or a field without default
/// that the script never maps.
pub fn compile(block: &Block, layout: &Arc<RecordLayout>, env: Environment) -> Result<Program, ScriptError> {
    let mut c = Compiler {
        layout,
        names: &layout.names,
        env,
        nodes: Vec::new(),
        types: Vec::new(),
        memo: 0,
        scopes: vec![HashMap::new()],
        declared: vec![HashSet::new()],
        targets: vec![None; layout.fields.len()],
        shared: HashMap::new(),
    };
    let actions = c.block(block)?;
    for (i, f) in layout.fields.iter().enumerate() {
        if f.default.is_none() && c.targets[i].is_none() {
            return Err(ScriptError::new(
                Pos { line: 1, col: 1 },
                format!(
                    "field '{}' has no default in the schema and the script never maps it; every record would fail",
                    f.name
                ),
            ));
        }
    }
    Ok(Program {
        nodes: c.nodes,
        actions,
        memo_slots: c.memo as usize,
        layout: layout.clone(),
        branches: c.targets.into_iter().map(Option::flatten).collect(),
    })
}

fn err<T>(pos: Pos, msg: impl Into<String>) -> Result<T, ScriptError> {
    Err(ScriptError::new(pos, msg))
}

/// The Java-style suffix that makes a literal of type `ty`.
fn literal_hint(ty: Ty) -> &'static str {
    match ty {
        Ty::Long => " (write a long literal as 42L)",
        Ty::Float => " (write a float literal as 1.5F)",
        Ty::Double => " (write a double literal as 1.5D)",
        _ => "",
    }
}

impl Compiler<'_> {
    pub(super) fn add(&mut self, node: Node, ty: Ty) -> NodeId {
        self.nodes.push(node);
        self.types.push(ty);
        (self.nodes.len() - 1) as NodeId
    }

    pub(super) fn memo(&mut self) -> u32 {
        self.memo += 1;
        self.memo - 1
    }

    pub(super) fn ty(&self, id: NodeId) -> Ty {
        self.types[id as usize]
    }

    pub(super) fn lit(&self, id: NodeId) -> Option<&Lit> {
        match &self.nodes[id as usize] {
            Node::Lit(l) => Some(l),
            _ => None,
        }
    }

    pub(super) fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, ScriptError>) -> Result<T, ScriptError> {
        self.scopes.push(HashMap::new());
        self.declared.push(HashSet::new());
        let r = f(self);
        self.scopes.pop();
        self.declared.pop();
        r
    }

    pub(super) fn shared(&mut self, key: &'static str, make: impl FnOnce(&mut Self) -> (Node, Ty)) -> NodeId {
        if let Some(id) = self.shared.get(key) {
            return *id;
        }
        let (node, ty) = make(self);
        let id = self.add(node, ty);
        self.shared.insert(key, id);
        id
    }

    pub(super) fn expect(&self, id: NodeId, ty: Ty, pos: Pos, what: &str) -> Result<(), ScriptError> {
        let got = self.ty(id);
        if got == ty {
            Ok(())
        } else {
            err(pos, format!("{what} must be a {}, not a {}", ty.name(), got.name()))
        }
    }

    fn block(&mut self, block: &Block) -> Result<Vec<Action>, ScriptError> {
        let mut out = Vec::new();
        for stmt in block {
            match stmt {
                Stmt::Map { value, field, field_pos } => {
                    let id = self.value(value)?;
                    let pos = self.field_target(id, field, *field_pos, value.pos)?;
                    out.push(Action::Map { field: pos, value: id });
                }
                Stmt::When { cond, then } => {
                    let c = self.value(cond)?;
                    self.expect(c, Ty::Bool, cond.pos, "a `when` condition")?;
                    out.push(match then {
                        Then::Apply(body) => Action::When(c, self.scoped(|s| s.block(body))?),
                        Then::Exit(_) => Action::WhenExit(c),
                        Then::Stop(_) => Action::WhenStop(c),
                    });
                }
                Stmt::Section(body) => out.push(Action::Section(self.scoped(|s| s.block(body))?)),
                Stmt::Scope(body) => out.extend(self.scoped(|s| s.block(body))?),
                Stmt::Exit(_) => out.push(Action::Exit),
                Stmt::Stop(_) => out.push(Action::Stop),
                Stmt::Def { name, value, .. } => {
                    let id = self.value(value)?;
                    self.scopes.last_mut().expect("a scope is always open").insert(name.clone(), id);
                }
                Stmt::Declare { name, .. } => {
                    self.declared.last_mut().expect("a scope is always open").insert(name.clone());
                }
                // Bound where the name was declared, so that it is seen
                // after the block the assignment stands in, as in Groovy.
                Stmt::Assign { name, pos, value } => {
                    let id = self.value(value)?;
                    let Some(scope) = (0..self.scopes.len())
                        .rev()
                        .find(|&i| self.scopes[i].contains_key(name) || self.declared[i].contains(name))
                    else {
                        return err(*pos, format!("`{name} = ...`: declare it first with `def {name}`"));
                    };
                    self.scopes[scope].insert(name.clone(), id);
                }
                Stmt::MapOntoParam { .. } => unreachable!("expansion replaces `onto <parameter>`"),
                // Evaluated for its checks only; it sets nothing.
                Stmt::Expr(e) => {
                    self.value(e)?;
                }
            }
        }
        Ok(out)
    }
}
