//! Methods of typed values: the ones every value has (`equalTo`,
//! `isPresent`, `isAbsent`), and each family's, looked up in the tables of
//! `methods.rs`.

use super::{err, literal_hint, Compiler};
use crate::mapping::script::error::{Pos, ScriptError};
use crate::mapping::script::methods::{self, UriMethod};
use crate::mapping::script::program::{Lit, Node, NodeId, Ty, UaField};
use crate::mapping::script::syntax::Expr;

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

impl Compiler<'_> {
    pub(super) fn method(&mut self, r: NodeId, name: &str, args: &[Expr], pos: Pos) -> Result<NodeId, ScriptError> {
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
                (Node::UaField(r, f), if f == UaField::Bot { Ty::Bool } else { Ty::Str })
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

    pub(super) fn no_such_method<T>(&self, ty: Ty, name: &str, pos: Pos) -> Result<T, ScriptError> {
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
