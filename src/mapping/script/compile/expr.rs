//! Expressions: names, literals, closures, `parse`, `match` and the
//! functions of the event (`location()`, `cookie()`, `ip2geo()`, ...).

use super::{err, Compiler};
use crate::mapping::script::digest::Digester;
use crate::mapping::script::error::{Pos, ScriptError};
use crate::mapping::script::lexer::Number;
use crate::mapping::script::program::{EventField, Lit, Node, NodeId, ParseTo, Ty};
use crate::mapping::script::syntax::{Expr, ExprKind, Stmt};

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

impl Compiler<'_> {
    /// An expression or a closure whose last statement is the value.
    pub(super) fn value(&mut self, e: &Expr) -> Result<NodeId, ScriptError> {
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

    pub(super) fn literal(&mut self, e: &Expr) -> Result<Option<Lit>, ScriptError> {
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
    pub(super) fn literal_arg(&mut self, e: &Expr, ty: Ty, what: &str) -> Result<Lit, ScriptError> {
        let id = self.expr(e)?;
        match self.lit(id) {
            Some(l) if literal_ty(l) == ty => Ok(l.clone()),
            _ => err(e.pos, format!("{what} must be a {} literal", ty.name())),
        }
    }

    /// A string literal (or a name bound to one).
    pub(super) fn string_literal(&mut self, e: &Expr, what: &str) -> Result<Box<str>, ScriptError> {
        match self.literal_arg(e, Ty::Str, what)? {
            Lit::Str(s) => Ok(s),
            _ => unreachable!("literal_arg checked the type"),
        }
    }

    pub(super) fn string_arg(&mut self, args: &[Expr], pos: Pos, what: &str) -> Result<Box<str>, ScriptError> {
        match args {
            [a] => self.string_literal(a, what),
            _ => err(pos, format!("{what} takes one quoted argument")),
        }
    }

    pub(super) fn no_args(args: &[Expr], pos: Pos, name: &str) -> Result<(), ScriptError> {
        if args.is_empty() {
            Ok(())
        } else {
            err(pos, format!("{name}() takes no arguments"))
        }
    }

    pub(super) fn expr(&mut self, e: &Expr) -> Result<NodeId, ScriptError> {
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
                let re =
                    crate::mapping::script::regex::compile(&pattern).map_err(|m| ScriptError::new(regex.pos, m))?;
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

    pub(super) fn call(&mut self, name: &str, args: &[Expr], pos: Pos) -> Result<NodeId, ScriptError> {
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

    pub(super) fn params(&mut self) -> NodeId {
        self.shared("eventParameters", |s| (Node::Params { memo: s.memo() }, Ty::Json))
    }
}
