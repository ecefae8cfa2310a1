//! From the syntax tree to a [`Program`]: names resolved, every value
//! typed, every `map` checked against the Avro schema, regexes, JSON paths
//! and digests built once. Every error names the line and column.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use apache_avro::Schema;

use super::digest::Digester;
use super::error::{Pos, ScriptError};
use super::lexer::Number;
use super::methods::{self, UriMethod};
use super::program::{Action, EventField, Lit, Node, NodeId, ParseTo, Program, Ty};
use super::syntax::{Block, Expr, ExprKind, Stmt, Then};
use crate::avro::{is_long, Names, RecordLayout};

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

/// The simple values, with their types.
fn simple_value(name: &str) -> Option<(EventField, Ty)> {
    use EventField as F;
    Some(match name {
        "location" => (F::Location, Ty::Str),
        "referer" => (F::Referer, Ty::Str),
        "firstInSession" => (F::FirstInSession, Ty::Bool),
        "corrupt" => (F::Corrupt, Ty::Bool),
        "duplicate" => (F::Duplicate, Ty::Bool),
        "timestamp" => (F::Timestamp, Ty::Long),
        "clientTimestamp" => (F::ClientTimestamp, Ty::Long),
        "remoteHost" => (F::RemoteHost, Ty::Str),
        "viewportPixelWidth" => (F::ViewportWidth, Ty::Int),
        "viewportPixelHeight" => (F::ViewportHeight, Ty::Int),
        "screenPixelWidth" => (F::ScreenWidth, Ty::Int),
        "screenPixelHeight" => (F::ScreenHeight, Ty::Int),
        "devicePixelRatio" => (F::DevicePixelRatio, Ty::Int),
        "partyId" => (F::PartyId, Ty::Str),
        "sessionId" => (F::SessionId, Ty::Str),
        "pageViewId" => (F::PageViewId, Ty::Str),
        "eventId" => (F::EventId, Ty::Str),
        "eventType" => (F::EventType, Ty::Str),
        "userAgentString" => (F::UserAgentString, Ty::Str),
        _ => return None,
    })
}

fn literal_ty(lit: &Lit) -> Ty {
    match lit {
        Lit::Str(_) => Ty::Str,
        Lit::Bool(_) => Ty::Bool,
        Lit::Int(_) => Ty::Int,
        Lit::Long(_) => Ty::Long,
        Lit::Float(_) => Ty::Float,
        Lit::Double(_) => Ty::Double,
    }
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

/// Whether a value of type `ty` can be written to a field of schema `s`
/// (a trivial union already unwrapped).
fn fits(ty: Ty, s: &Schema, names: &Names) -> bool {
    let s = names.resolve(s);
    let string_items = |items: &Schema| match names.resolve(items) {
        Schema::String => true,
        Schema::Union(u) => u.variants().len() == 1 && matches!(names.resolve(&u.variants()[0]), Schema::String),
        _ => false,
    };
    match ty {
        Ty::Str => matches!(s, Schema::String | Schema::Uuid),
        Ty::Bool => matches!(s, Schema::Boolean),
        Ty::Int => matches!(s, Schema::Int | Schema::Date | Schema::TimeMillis),
        Ty::Long => is_long(s),
        Ty::Float => matches!(s, Schema::Float),
        Ty::Double => matches!(s, Schema::Double),
        Ty::Bytes => matches!(s, Schema::Bytes),
        Ty::StrList => matches!(s, Schema::Array(a) if string_items(&a.items)),
        Ty::IntList => matches!(s, Schema::Array(a) if matches!(names.resolve(&a.items), Schema::Int)),
        Ty::Query => {
            matches!(s, Schema::Map(m) if matches!(names.resolve(&m.types), Schema::Array(a) if string_items(&a.items)))
        }
        Ty::Json => true,
        Ty::Uri | Ty::Matcher | Ty::UserAgent | Ty::Geo | Ty::Digest => false,
    }
}

/// The first union inside `s` that JSON values cannot be converted to.
fn unsupported_union(s: &Schema, names: &Names, seen: &mut Vec<String>) -> Option<String> {
    match s {
        Schema::Ref { .. } => match names.resolve(s) {
            Schema::Ref { .. } => None,
            named => unsupported_union(named, names, seen),
        },
        Schema::Union(u) => {
            let v = u.variants();
            let nulls = v.iter().filter(|s| matches!(s, Schema::Null)).count();
            if v.len() > 2 || (v.len() == 2 && nulls != 1) {
                return Some(schema_text(s));
            }
            v.iter().find_map(|b| unsupported_union(b, names, seen))
        }
        Schema::Record(r) => {
            let full = r.name.fullname(None);
            if seen.contains(&full) {
                return None;
            }
            seen.push(full);
            r.fields.iter().find_map(|f| unsupported_union(&f.schema, names, seen))
        }
        Schema::Array(a) => unsupported_union(&a.items, names, seen),
        Schema::Map(m) => unsupported_union(&m.types, names, seen),
        _ => None,
    }
}

/// Whether a JSON path names at most one value (Jayway's "definite" path):
/// no deep scan, wildcard, filter, slice or list of selectors.
fn is_definite(path: &str) -> bool {
    let mut depth = 0;
    let mut quote = None;
    let b = path.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q && b.get(i.wrapping_sub(1)) != Some(&b'\\') => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(c),
            (None, b'[') => depth += 1,
            (None, b']') => depth -= 1,
            (None, b'*' | b'?') => return false,
            (None, b',' | b':') if depth > 0 => return false,
            (None, b'.') if b.get(i + 1) == Some(&b'.') => return false,
            _ => {}
        }
    }
    true
}

fn schema_text(s: &Schema) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

impl Compiler<'_> {
    fn add(&mut self, node: Node, ty: Ty) -> NodeId {
        self.nodes.push(node);
        self.types.push(ty);
        (self.nodes.len() - 1) as NodeId
    }

    fn memo(&mut self) -> u32 {
        self.memo += 1;
        self.memo - 1
    }

    fn ty(&self, id: NodeId) -> Ty {
        self.types[id as usize]
    }

    fn lit(&self, id: NodeId) -> Option<&Lit> {
        match &self.nodes[id as usize] {
            Node::Lit(l) => Some(l),
            _ => None,
        }
    }

    fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, ScriptError>) -> Result<T, ScriptError> {
        self.scopes.push(HashMap::new());
        self.declared.push(HashSet::new());
        let r = f(self);
        self.scopes.pop();
        self.declared.pop();
        r
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

    /// Schema position of `field` after checking that `value` fits it.
    fn field_target(&mut self, value: NodeId, field: &str, pos: Pos, value_pos: Pos) -> Result<usize, ScriptError> {
        let Some(index) = self.layout.position(field) else {
            let names: Vec<&str> = self.layout.fields.iter().map(|f| f.name.as_str()).collect();
            return err(pos, format!("the schema has no field '{field}' (fields: {})", names.join(", ")));
        };
        let schema = &self.layout.fields[index].schema;
        let ty = self.ty(value);
        let non_trivial = || {
            err(
                pos,
                format!(
                    "field '{field}' is a union {}; only [\"null\", T] unions can be mapped onto",
                    schema_text(schema)
                ),
            )
        };
        let (branch, inner) = match schema {
            Schema::Union(u) => {
                let v = u.variants();
                match (v.len(), v.iter().position(|s| matches!(s, Schema::Null)), ty) {
                    (2, Some(null), _) => (Some((1 - null) as u8), &v[1 - null]),
                    // The original checked a two-branch union without null
                    // against its first branch; scripts written for it rely on that.
                    (2, None, t) if t != Ty::Json => (Some(0), &v[0]),
                    (1, _, Ty::Json) => (Some(0), &v[0]),
                    _ => return non_trivial(),
                }
            }
            s => (None, s),
        };
        if ty == Ty::Json {
            if let Some(bad) = unsupported_union(inner, self.names, &mut Vec::new()) {
                return err(
                    value_pos,
                    format!("field '{field}' holds the union {bad}; JSON values map only onto [\"null\", T] unions"),
                );
            }
        }
        if !fits(ty, inner, self.names) {
            let why = match ty {
                Ty::Uri | Ty::Matcher | Ty::UserAgent | Ty::Geo | Ty::Digest => {
                    format!("a {} cannot be mapped onto a field; map one of its parts", ty.name())
                }
                _ => format!(
                    "a {} value cannot be mapped onto field '{field}' of type {}{}",
                    ty.name(),
                    schema_text(schema),
                    if self.lit(value).is_some() {
                        literal_hint(match self.names.resolve(inner) {
                            Schema::Long => Ty::Long,
                            Schema::Float => Ty::Float,
                            Schema::Double => Ty::Double,
                            _ => ty,
                        })
                    } else {
                        ""
                    }
                ),
            };
            return err(value_pos, why);
        }
        self.targets[index] = Some(branch);
        Ok(index)
    }

    fn expect(&self, id: NodeId, ty: Ty, pos: Pos, what: &str) -> Result<(), ScriptError> {
        let got = self.ty(id);
        if got == ty {
            Ok(())
        } else {
            err(pos, format!("{what} must be a {}, not a {}", ty.name(), got.name()))
        }
    }

    /// An expression or a closure whose last statement is the value.
    fn value(&mut self, e: &Expr) -> Result<NodeId, ScriptError> {
        let ExprKind::Closure(body) = &e.kind else { return self.expr(e) };
        self.scoped(|s| {
            let Some((Stmt::Expr(last), init)) = body.split_last() else {
                return err(e.pos, "a value closure must end with the value it produces");
            };
            for stmt in init {
                match stmt {
                    Stmt::Def { name, value, .. } => {
                        let id = s.value(value)?;
                        s.scopes.last_mut().expect("scope").insert(name.clone(), id);
                    }
                    _ => {
                        return err(
                            e.pos,
                            "a value closure may hold only `def` bindings before its value; mappings go outside it",
                        )
                    }
                }
            }
            s.value(last)
        })
    }

    fn literal(&mut self, e: &Expr) -> Result<Option<Lit>, ScriptError> {
        Ok(Some(match &e.kind {
            ExprKind::Str(s) => Lit::Str(s.as_str().into()),
            ExprKind::Bool(b) => Lit::Bool(*b),
            ExprKind::Num(Number::Int(n)) => Lit::Int(*n),
            ExprKind::Num(Number::Long(n)) => Lit::Long(*n),
            ExprKind::Num(Number::Float(n)) => Lit::Float(*n),
            ExprKind::Num(Number::Double(n)) => Lit::Double(*n),
            ExprKind::Num(Number::Decimal) => {
                return err(
                    e.pos,
                    "Groovy reads a decimal literal as a BigDecimal, which maps onto no Avro type: write 42.0D for a double or 42.0F for a float",
                )
            }
            _ => return Ok(None),
        }))
    }

    /// A literal argument (or a name bound to one) of the given type.
    fn literal_arg(&mut self, e: &Expr, ty: Ty, what: &str) -> Result<Lit, ScriptError> {
        let id = self.expr(e)?;
        match self.lit(id) {
            Some(l) if literal_ty(l) == ty => Ok(l.clone()),
            _ => err(e.pos, format!("{what} must be a {} literal", ty.name())),
        }
    }

    /// A string literal (or a name bound to one).
    fn string_literal(&mut self, e: &Expr, what: &str) -> Result<Box<str>, ScriptError> {
        match self.literal_arg(e, Ty::Str, what)? {
            Lit::Str(s) => Ok(s),
            _ => unreachable!("literal_arg checked the type"),
        }
    }

    fn string_arg(&mut self, args: &[Expr], pos: Pos, what: &str) -> Result<Box<str>, ScriptError> {
        match args {
            [a] => self.string_literal(a, what),
            _ => err(pos, format!("{what} takes one quoted argument")),
        }
    }

    fn no_args(args: &[Expr], pos: Pos, name: &str) -> Result<(), ScriptError> {
        if args.is_empty() {
            Ok(())
        } else {
            err(pos, format!("{name}() takes no arguments"))
        }
    }

    fn shared(&mut self, key: &'static str, make: impl FnOnce(&mut Self) -> (Node, Ty)) -> NodeId {
        if let Some(id) = self.shared.get(key) {
            return *id;
        }
        let (node, ty) = make(self);
        let id = self.add(node, ty);
        self.shared.insert(key, id);
        id
    }

    fn expr(&mut self, e: &Expr) -> Result<NodeId, ScriptError> {
        if let Some(lit) = self.literal(e)? {
            let ty = literal_ty(&lit);
            return Ok(self.add(Node::Lit(lit), ty));
        }
        match &e.kind {
            ExprKind::Var(name) => {
                if let Some(id) = self.scopes.iter().rev().find_map(|s| s.get(name)) {
                    return Ok(*id);
                }
                if self.declared.iter().any(|d| d.contains(name)) {
                    return err(e.pos, format!("`{name}` is declared with `def {name}` but has no value here yet"));
                }
                if simple_value(name).is_some() || matches!(name.as_str(), "userAgent" | "eventParameters" | "ip2geo") {
                    return self.call(name, &[], e.pos);
                }
                err(e.pos, format!("unknown name `{name}` (bind values with `def {name} = ...` before using them)"))
            }
            ExprKind::Call { name, args } => self.call(name, args, e.pos),
            ExprKind::Method { recv, name, args } => {
                let r = self.value(recv)?;
                self.method(r, name, args, e.pos)
            }
            ExprKind::Not(inner) => {
                let id = self.value(inner)?;
                self.expect(id, Ty::Bool, inner.pos, "the operand of `not`")?;
                Ok(self.add(Node::Not(id), Ty::Bool))
            }
            ExprKind::Parse { input, target } => {
                let id = self.value(input)?;
                self.expect(id, Ty::Str, input.pos, "the value to parse")?;
                let to = match target.as_str() {
                    "int32" | "int" | "Integer" => ParseTo::Int,
                    "int64" | "long" | "Long" => ParseTo::Long,
                    "fp32" | "float" | "Float" => ParseTo::Float,
                    "fp64" | "double" | "Double" => ParseTo::Double,
                    "bool" | "boolean" | "Boolean" => ParseTo::Bool,
                    "uri" | "URI" => {
                        let memo = self.memo();
                        return Ok(self.add(Node::ParseUri { input: id, memo }, Ty::Uri));
                    }
                    other => {
                        return err(
                            e.pos,
                            format!("cannot parse to `{other}`: use int32, int64, fp32, fp64, bool or uri"),
                        )
                    }
                };
                let ty = match to {
                    ParseTo::Int => Ty::Int,
                    ParseTo::Long => Ty::Long,
                    ParseTo::Float => Ty::Float,
                    ParseTo::Double => Ty::Double,
                    ParseTo::Bool => Ty::Bool,
                };
                Ok(self.add(Node::Parse(id, to), ty))
            }
            ExprKind::Match { regex, input } => {
                let pattern = self.string_literal(regex, "the regular expression")?;
                let re = super::regex::compile(&pattern).map_err(|m| ScriptError::new(regex.pos, m))?;
                let id = self.value(input)?;
                self.expect(id, Ty::Str, input.pos, "the value matched against")?;
                let memo = self.memo();
                Ok(self.add(Node::Match { regex: Box::new(re), input: id, memo }, Ty::Matcher))
            }
            ExprKind::Closure(_) => self.value(e),
            ExprKind::Lambda { .. } | ExprKind::List(_) | ExprKind::Template(_) => {
                unreachable!("expansion replaces helpers, lists and templates or refuses them")
            }
            ExprKind::Str(_) | ExprKind::Bool(_) | ExprKind::Num(_) => unreachable!("literals handled above"),
        }
    }

    fn call(&mut self, name: &str, args: &[Expr], pos: Pos) -> Result<NodeId, ScriptError> {
        if let Some((field, ty)) = simple_value(name) {
            Self::no_args(args, pos, name)?;
            return Ok(self.add(Node::Event(field), ty));
        }
        match name {
            "cookie" => {
                let n = self.string_arg(args, pos, "cookie()")?;
                Ok(self.add(Node::Cookie(n), Ty::Str))
            }
            "header" => {
                let n = self.string_arg(args, pos, "header()")?;
                let memo = self.memo();
                Ok(self.add(Node::Header { name: n, memo }, Ty::StrList))
            }
            "eventParameters" => {
                Self::no_args(args, pos, name)?;
                Ok(self.params())
            }
            "eventParameter" => {
                let n = self.string_arg(args, pos, "eventParameter()")?;
                let p = self.params();
                Ok(self.add(Node::ParamValue(p, n), Ty::Str))
            }
            "userAgent" => {
                Self::no_args(args, pos, name)?;
                Ok(self.shared("userAgent", |_| (Node::UserAgent, Ty::UserAgent)))
            }
            "ip2geo" => {
                if !self.env.geo {
                    return err(pos, "ip2geo() needs a geo database: set global.mapper.ip2geo_database");
                }
                match args {
                    [] => Ok(self.shared("ip2geo", |s| (Node::Geo { ip: None, memo: s.memo() }, Ty::Geo))),
                    [ip] => {
                        let id = self.value(ip)?;
                        self.expect(id, Ty::Str, ip.pos, "the address given to ip2geo()")?;
                        let memo = self.memo();
                        Ok(self.add(Node::Geo { ip: Some(id), memo }, Ty::Geo))
                    }
                    _ => err(pos, "ip2geo() takes at most one argument, the address"),
                }
            }
            "digest" => {
                let (alg, seed) = match args {
                    [a] => (a, None),
                    [a, s] => (a, Some(s)),
                    _ => return err(pos, "digest() takes an algorithm name and optionally a seed"),
                };
                let alg_name = self.string_literal(alg, "the digest algorithm")?;
                let seed = seed.map(|s| self.string_literal(s, "the digest seed")).transpose()?;
                let digester = Digester::new(&alg_name, seed.as_deref()).map_err(|m| ScriptError::new(alg.pos, m))?;
                Ok(self.add(Node::Digest { digester: Box::new(digester), parts: Vec::new() }, Ty::Digest))
            }
            "match" | "parse" | "not" => {
                err(pos, format!("`{name}` is written without parentheses: see the mapping reference"))
            }
            _ => err(pos, format!("unknown function {name}()")),
        }
    }

    fn params(&mut self) -> NodeId {
        self.shared("eventParameters", |s| (Node::Params { memo: s.memo() }, Ty::Json))
    }

    fn method(&mut self, r: NodeId, name: &str, args: &[Expr], pos: Pos) -> Result<NodeId, ScriptError> {
        let ty = self.ty(r);
        match name {
            _ if ty == Ty::Digest => {}
            "isPresent" | "isAbsent" => {
                Self::no_args(args, pos, name)?;
                let node = if name == "isPresent" { Node::IsPresent(r) } else { Node::IsAbsent(r) };
                return Ok(self.add(node, Ty::Bool));
            }
            "equalTo" => {
                let [arg] = args else { return err(pos, "equalTo() takes one argument") };
                let other = self.value(arg)?;
                let other_ty = self.ty(other);
                if other_ty != ty {
                    return err(
                        arg.pos,
                        format!(
                            "equalTo() compares values of one type: {} with {}{}",
                            ty.name(),
                            other_ty.name(),
                            literal_hint(ty)
                        ),
                    );
                }
                let node = match self.lit(other) {
                    Some(l) => Node::EqualLit(r, l.clone()),
                    None => Node::EqualValues(r, other),
                };
                return Ok(self.add(node, Ty::Bool));
            }
            _ => {}
        }
        let one_string = |s: &mut Self, what: &str| s.string_arg(args, pos, what);
        let (node, out) = match (ty, name) {
            (Ty::Bool, "and" | "or") => {
                let [arg] = args else { return err(pos, format!("{name}() takes one argument")) };
                let other = self.value(arg)?;
                self.expect(other, Ty::Bool, arg.pos, &format!("the argument of {name}()"))?;
                (if name == "and" { Node::And(r, other) } else { Node::Or(r, other) }, Ty::Bool)
            }
            (Ty::StrList | Ty::IntList, "first" | "last" | "get") => {
                let elem = if ty == Ty::StrList { Ty::Str } else { Ty::Int };
                match name {
                    "first" => {
                        Self::no_args(args, pos, name)?;
                        (Node::First(r), elem)
                    }
                    "last" => {
                        Self::no_args(args, pos, name)?;
                        (Node::Last(r), elem)
                    }
                    _ => {
                        let [arg] = args else { return err(pos, "get() takes one int argument") };
                        let Lit::Int(i) = self.literal_arg(arg, Ty::Int, "the index given to get()")? else {
                            unreachable!()
                        };
                        (Node::Get(r, i), elem)
                    }
                }
            }
            (Ty::StrList, "commaSeparated") => {
                Self::no_args(args, pos, name)?;
                (Node::Joined(r), Ty::Str)
            }
            (Ty::Query, "value") => (Node::QueryValue(r, one_string(self, "value()")?), Ty::Str),
            (Ty::Query, "valueList") => (Node::QueryValues(r, one_string(self, "valueList()")?), Ty::StrList),
            (Ty::Json, "value") => (Node::ParamValue(r, one_string(self, "value()")?), Ty::Str),
            (Ty::Json, "path") => {
                let text = one_string(self, "path()")?;
                let path = serde_json_path::JsonPath::parse(&text)
                    .map_err(|e| ScriptError::new(args[0].pos, format!("invalid JSON path {text:?}: {e}")))?;
                let memo = self.memo();
                let definite = is_definite(&text);
                (Node::ParamPath { json: r, path: Box::new(path), definite, memo }, Ty::Json)
            }
            (Ty::Uri, _) => {
                let Some(method) = methods::find(methods::URI, name) else { return self.no_such_method(ty, name, pos) };
                Self::no_args(args, pos, name)?;
                match method {
                    UriMethod::Part(part) => (Node::UriPart(r, part), Ty::Str),
                    UriMethod::Port => (Node::UriPort(r), Ty::Int),
                    UriMethod::Query => {
                        let memo = self.memo();
                        (Node::UriQuery { uri: r, memo }, Ty::Query)
                    }
                }
            }
            (Ty::Matcher, "matches") => {
                Self::no_args(args, pos, name)?;
                (Node::Matches(r), Ty::Bool)
            }
            (Ty::Matcher, "group") => {
                let [arg] = args else { return err(pos, "group() takes a group number or name") };
                let id = self.value(arg)?;
                let Node::Match { regex, .. } = &self.nodes[r as usize] else {
                    return err(pos, "group() needs a `match ... against ...` value");
                };
                match self.lit(id) {
                    Some(Lit::Int(i)) if *i >= 0 && (*i as usize) < regex.captures_len() => {
                        (Node::Group(r, *i as usize), Ty::Str)
                    }
                    Some(Lit::Int(i)) => {
                        return err(
                            arg.pos,
                            format!("the regex has no group {i} (it has {})", regex.captures_len() - 1),
                        )
                    }
                    Some(Lit::Str(n)) => match regex.capture_names().position(|g| g == Some(&**n)) {
                        Some(index) => (Node::Group(r, index), Ty::Str),
                        None => return err(arg.pos, format!("the regex has no group named {n:?}")),
                    },
                    _ => return err(arg.pos, "group() takes a group number or a quoted group name"),
                }
            }
            (Ty::UserAgent, _) => {
                let Some(f) = methods::find(methods::USER_AGENT, name) else {
                    return self.no_such_method(ty, name, pos);
                };
                Self::no_args(args, pos, name)?;
                (Node::UaField(r, f), Ty::Str)
            }
            (Ty::Geo, _) => {
                let Some((f, t)) = methods::find(methods::GEO, name) else { return self.no_such_method(ty, name, pos) };
                Self::no_args(args, pos, name)?;
                (Node::GeoField(r, f), t)
            }
            (Ty::Digest, "add") => {
                let [arg] = args else { return err(pos, "add() takes one value") };
                let part = self.value(arg)?;
                if !matches!(self.ty(part), Ty::Str | Ty::Json | Ty::Bytes) {
                    return err(
                        arg.pos,
                        format!("add() takes a String, JSON or bytes value, not a {}", self.ty(part).name()),
                    );
                }
                let Node::Digest { digester, parts } = &self.nodes[r as usize] else { unreachable!("typed Digest") };
                let mut parts = parts.clone();
                parts.push(part);
                (Node::Digest { digester: digester.clone(), parts }, Ty::Digest)
            }
            (Ty::Digest, "result") => {
                Self::no_args(args, pos, name)?;
                let memo = self.memo();
                (Node::DigestResult { digest: r, memo }, Ty::Bytes)
            }
            (Ty::Bytes, _) if methods::find(methods::BYTES, name).is_some() => {
                Self::no_args(args, pos, name)?;
                let f = methods::find(methods::BYTES, name).expect("found in the guard");
                (Node::FormatBytes(r, f), Ty::Str)
            }
            _ => return self.no_such_method(ty, name, pos),
        };
        Ok(self.add(node, out))
    }

    fn no_such_method<T>(&self, ty: Ty, name: &str, pos: Pos) -> Result<T, ScriptError> {
        const ANY: &str = "equalTo, isPresent, isAbsent";
        let methods = match ty {
            Ty::Bool => format!("and, or, {ANY}"),
            Ty::StrList => format!("first, last, get, commaSeparated, {ANY}"),
            Ty::IntList => format!("first, last, get, {ANY}"),
            Ty::Query => format!("value, valueList, {ANY}"),
            Ty::Json => format!("value, path, {ANY}"),
            Ty::Uri => format!("{}, {ANY}", methods::names(methods::URI)),
            Ty::Matcher => format!("matches, group, {ANY}"),
            Ty::UserAgent => format!("{}, {ANY}", methods::names(methods::USER_AGENT)),
            Ty::Geo => format!("{}, {ANY}", methods::names(methods::GEO)),
            Ty::Digest => "add, result".to_owned(),
            Ty::Bytes => format!("{}, {ANY}", methods::names(methods::BYTES)),
            _ => ANY.to_owned(),
        };
        err(pos, format!("a {} has no method {name}() (it has: {methods})", ty.name()))
    }
}
