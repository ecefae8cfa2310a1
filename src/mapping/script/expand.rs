//! Expansion: the parts of a script that Groovy runs once, when the
//! mapping is built, are run here on the syntax tree.
//!
//! - A helper (`def flag = { name -> ... }`) is expanded where it is
//!   called, its parameters replaced by the call's arguments: as a value
//!   (`map flag('isAdmin') onto 'isAdmin'`) it becomes its last expression
//!   (or a closure of its statements); as a statement
//!   (`mapOptional('email')`) its statements take the call's place.
//! - `[a, b].each { x -> ... }` is unrolled, once per item.
//! - A parameter stands wherever a literal may: in values, in
//!   `onto <param>`, and in `"text $param"`.
//!
//! What is left is the plain language that [`super::compile`] checks.

use std::collections::HashMap;

use super::error::{Pos, ScriptError};
use super::lexer::{Number, StrPart};
use super::syntax::{Block, Expr, ExprKind, Stmt, Then};

/// A helper: its parameters and body.
#[derive(Clone)]
struct Helper {
    params: Vec<String>,
    body: Block,
}

/// Expands `block`.
///
/// # Errors
/// Every helper call with the wrong number of arguments, parameter used
/// where its argument cannot stand, and list or helper used elsewhere.
pub fn expand(block: Block) -> Result<Block, Vec<ScriptError>> {
    let mut x = Expander { helpers: vec![HashMap::new()], errors: Vec::new(), expanding: Vec::new() };
    let out = x.block(block, &HashMap::new());
    if x.errors.is_empty() {
        Ok(out)
    } else {
        Err(x.errors)
    }
}

/// Parameters bound to their arguments.
type Bindings = HashMap<String, Expr>;

struct Expander {
    /// Helpers in scope, innermost last.
    helpers: Vec<HashMap<String, Helper>>,
    errors: Vec<ScriptError>,
    /// The helpers being expanded, outermost first.
    expanding: Vec<String>,
}

impl Expander {
    fn helper(&self, name: &str) -> Option<Helper> {
        self.helpers.iter().rev().find_map(|h| h.get(name)).cloned()
    }

    fn scoped(&mut self, block: Block, bound: &Bindings) -> Block {
        self.helpers.push(HashMap::new());
        let out = self.block(block, bound);
        self.helpers.pop();
        out
    }

    fn block(&mut self, block: Block, bound: &Bindings) -> Block {
        let mut out = Vec::with_capacity(block.len());
        for stmt in block {
            self.stmt(stmt, bound, &mut out);
        }
        out
    }

    fn stmt(&mut self, stmt: Stmt, bound: &Bindings, out: &mut Block) {
        match stmt {
            Stmt::Def { name, value: Expr { kind: ExprKind::Lambda { params, body }, .. }, .. } => {
                self.helpers.last_mut().expect("a scope is always open").insert(name, Helper { params, body });
            }
            Stmt::Def { name, pos, value } => out.push(Stmt::Def { name, pos, value: self.expr(value, bound) }),
            Stmt::Assign { name, pos, value } => out.push(Stmt::Assign { name, pos, value: self.expr(value, bound) }),
            Stmt::Map { value, field, field_pos } => {
                out.push(Stmt::Map { value: self.expr(value, bound), field, field_pos });
            }
            Stmt::MapOntoParam { value, param, pos } => match bound.get(&param).map(|e| &e.kind) {
                Some(ExprKind::Str(field)) => {
                    out.push(Stmt::Map { value: self.expr(value, bound), field: field.clone(), field_pos: pos });
                }
                Some(_) => self.refuse(pos, format!("`onto {param}`: the argument for `{param}` must be a quoted name")),
                None => self.refuse(
                    pos,
                    format!("`onto {param}`: the field must be a quoted name or a helper's parameter, and `{param}` is neither"),
                ),
            },
            Stmt::When { cond, then } => {
                let cond = self.expr(cond, bound);
                let then = match then {
                    Then::Apply(body) => Then::Apply(self.scoped(body, bound)),
                    other => other,
                };
                out.push(Stmt::When { cond, then });
            }
            Stmt::Section(body) => out.push(Stmt::Section(self.scoped(body, bound))),
            Stmt::Scope(body) => out.push(Stmt::Scope(self.scoped(body, bound))),
            Stmt::Expr(e) => self.statement_expr(e, bound, out),
            other @ (Stmt::Exit(_) | Stmt::Stop(_) | Stmt::Declare { .. }) => out.push(other),
        }
    }

    /// An expression standing as a statement: a helper call or a loop
    /// expands into statements; anything else stays (for its checks).
    fn statement_expr(&mut self, e: Expr, bound: &Bindings, out: &mut Block) {
        if let ExprKind::Call { name, args } = &e.kind {
            if let Some(helper) = self.helper(name) {
                if let Some(inner) = self.bind(name, &helper, args, e.pos, bound) {
                    // Its own scope: a `def` in the helper stays in it, as
                    // a closure's local does in Groovy.
                    self.within(name, e.pos, |x| out.push(Stmt::Scope(x.scoped(helper.body, &inner))));
                }
                return;
            }
        }
        match e.kind {
            ExprKind::Method { recv, name, mut args } if name == "each" => {
                let ExprKind::List(items) = recv.kind else {
                    return self.refuse(
                        e.pos,
                        "`.each` is unrolled only on a list written in the script (`['a', 'b'].each { x -> ... }`)",
                    );
                };
                let Some(Expr { kind: ExprKind::Lambda { params, body }, .. }) = args.pop().filter(|_| args.is_empty())
                else {
                    return self.refuse(e.pos, "`.each` takes one closure with one parameter (`.each { x -> ... }`)");
                };
                let [param] = &params[..] else {
                    return self.refuse(e.pos, "`.each` takes one closure with one parameter (`.each { x -> ... }`)");
                };
                for item in items {
                    let item = self.expr(item, bound);
                    let mut inner = bound.clone();
                    inner.insert(param.clone(), item);
                    out.push(Stmt::Scope(self.scoped(body.clone(), &inner)));
                }
            }
            _ => out.push(Stmt::Expr(self.expr(e, bound))),
        }
    }

    /// Runs `f` to expand the helper `name`, unless that helper is already
    /// being expanded: a helper that calls itself would never end.
    fn within(&mut self, name: &str, pos: Pos, f: impl FnOnce(&mut Self)) {
        if self.expanding.iter().any(|h| h == name) {
            return self.refuse(pos, format!("the helper `{name}` calls itself, which would never end"));
        }
        self.expanding.push(name.to_owned());
        f(self);
        self.expanding.pop();
    }

    /// The bindings of a helper call: its parameters to the arguments.
    fn bind(&mut self, name: &str, helper: &Helper, args: &[Expr], pos: Pos, bound: &Bindings) -> Option<Bindings> {
        if args.len() != helper.params.len() {
            self.refuse(
                pos,
                format!("the helper `{name}` takes {} argument(s), not {}", helper.params.len(), args.len()),
            );
            return None;
        }
        let mut inner = bound.clone();
        for (param, arg) in helper.params.iter().zip(args) {
            let value = self.expr(arg.clone(), bound);
            inner.insert(param.clone(), value);
        }
        Some(inner)
    }

    fn expr(&mut self, e: Expr, bound: &Bindings) -> Expr {
        let pos = e.pos;
        let kind = match e.kind {
            ExprKind::Var(name) => match bound.get(&name) {
                Some(value) => return value.clone(),
                None => ExprKind::Var(name),
            },
            ExprKind::Call { name, args } => match self.helper(&name) {
                Some(helper) => return self.helper_value(&name, helper, &args, pos, bound),
                None => ExprKind::Call { name, args: self.exprs(args, bound) },
            },
            ExprKind::Method { recv, name, args } => {
                ExprKind::Method { recv: Box::new(self.expr(*recv, bound)), name, args: self.exprs(args, bound) }
            }
            ExprKind::Parse { input, target } => ExprKind::Parse { input: Box::new(self.expr(*input, bound)), target },
            ExprKind::Match { regex, input } => {
                ExprKind::Match { regex: Box::new(self.expr(*regex, bound)), input: Box::new(self.expr(*input, bound)) }
            }
            ExprKind::Not(inner) => ExprKind::Not(Box::new(self.expr(*inner, bound))),
            ExprKind::Closure(body) => ExprKind::Closure(self.scoped(body, bound)),
            ExprKind::Template(parts) => match self.template(&parts, bound) {
                Ok(text) => ExprKind::Str(text),
                Err(message) => {
                    self.refuse(pos, message);
                    ExprKind::Str(String::new())
                }
            },
            ExprKind::Lambda { .. } => {
                self.refuse(pos, "a closure with parameters is a helper: define it with `def name = { x -> ... }`");
                ExprKind::Bool(false)
            }
            ExprKind::List(_) => {
                self.refuse(pos, "a list is only unrolled by `.each` (`['a', 'b'].each { x -> ... }`)");
                ExprKind::Bool(false)
            }
            literal @ (ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Num(_)) => literal,
        };
        Expr { kind, pos }
    }

    fn exprs(&mut self, items: Vec<Expr>, bound: &Bindings) -> Vec<Expr> {
        items.into_iter().map(|e| self.expr(e, bound)).collect()
    }

    /// A helper called for its value: its last expression, or a closure of
    /// its statements when it has more than one.
    fn helper_value(&mut self, name: &str, helper: Helper, args: &[Expr], pos: Pos, bound: &Bindings) -> Expr {
        let mut value = Expr { kind: ExprKind::Bool(false), pos };
        if let Some(inner) = self.bind(name, &helper, args, pos, bound) {
            self.within(name, pos, |x| {
                let body = x.scoped(helper.body, &inner);
                value = match <[Stmt; 1]>::try_from(body) {
                    Ok([Stmt::Expr(e)]) => e,
                    Ok([other]) => Expr { kind: ExprKind::Closure(vec![other]), pos },
                    Err(body) => Expr { kind: ExprKind::Closure(body), pos },
                };
            });
        }
        value
    }

    /// `"text $param"` with each parameter's literal argument put in.
    fn template(&self, parts: &[StrPart], bound: &Bindings) -> Result<String, String> {
        let mut text = String::new();
        for part in parts {
            match part {
                StrPart::Text(t) => text.push_str(t),
                StrPart::Name(name) => match bound.get(name).map(|e| &e.kind) {
                    Some(ExprKind::Str(s)) => text.push_str(s),
                    Some(ExprKind::Num(Number::Int(n))) => text.push_str(&n.to_string()),
                    Some(ExprKind::Num(Number::Long(n))) => text.push_str(&n.to_string()),
                    Some(ExprKind::Bool(b)) => text.push_str(&b.to_string()),
                    Some(_) => return Err(format!("`${name}`: only a literal argument can be put into a string")),
                    None => {
                        return Err(format!(
                            "`${name}` in a double-quoted string: only a helper's or `.each`'s parameter can be put into a string"
                        ))
                    }
                },
            }
        }
        Ok(text)
    }

    fn refuse(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(ScriptError::new(pos, message));
    }
}
