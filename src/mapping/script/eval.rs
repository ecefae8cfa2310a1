//! Running a compiled [`Program`] for one event.
//!
//! Values are computed on demand; expensive ones (URI parsing, regex
//! matches, geo lookups, event parameters, headers, digests) once per
//! event, in memo slots. Absent values allocate nothing. The per-event
//! vectors are kept in a shard's [`Scratch`] and reused, so an event that
//! maps only event fields allocates nothing at all.

use std::borrow::Cow;
use std::ops::Range;
use std::rc::Rc;

use base64::Engine;
use serde_json::Value as Json;

use super::headers::{cookie, split_list};
use super::program::{Action, BytesFormat, EventField, Lit, Node, NodeId, ParseTo, Program, UaField, UriPart};
use super::uri::{parse_query, percent_decode, Uri};
use super::val::{Matched, Val};
use crate::avro::{encode_json, write_long, write_str, EncodeError};
use crate::enrich::geo::GeoDatabase;
use crate::enrich::useragent::UserAgent;
use crate::event::{mincode, CustomParameters, Event};

fn lit_val(l: &Lit) -> Val<'_> {
    match l {
        Lit::Str(s) => Val::Str(Cow::Borrowed(s)),
        Lit::Bool(b) => Val::Bool(*b),
        Lit::Int(n) => Val::Int(*n),
        Lit::Long(n) => Val::Long(*n),
        Lit::Float(n) => Val::Float(*n),
        Lit::Double(n) => Val::Double(*n),
    }
}

/// Java's `equals` between two values of one type.
fn same(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Str(x), Val::Str(y)) => x == y,
        (Val::Bool(x), Val::Bool(y)) => x == y,
        (Val::Int(x), Val::Int(y)) => x == y,
        (Val::Long(x), Val::Long(y)) => x == y,
        (Val::Float(x), Val::Float(y)) => x.to_bits() == y.to_bits(),
        (Val::Double(x), Val::Double(y)) => x.to_bits() == y.to_bits(),
        (Val::Bytes(x), Val::Bytes(y)) => x == y,
        (Val::StrList(x), Val::StrList(y)) => x == y,
        (Val::IntList(x), Val::IntList(y)) => x == y,
        (Val::Query(x), Val::Query(y)) => x == y,
        (Val::Json(x), Val::Json(y)) => x == y,
        (Val::UserAgent(x), Val::UserAgent(y)) => x == y,
        (Val::Geo(x), Val::Geo(y)) => x == y,
        (Val::Uri(x), Val::Uri(y)) => Rc::ptr_eq(x, y),
        (Val::Matcher(x), Val::Matcher(y)) => Rc::ptr_eq(x, y),
        _ => false,
    }
}

/// Jackson's `asText()` of a value node; containers have no text.
fn json_text(j: &Json) -> Option<Cow<'_, str>> {
    match j {
        Json::String(s) => Some(Cow::Borrowed(s)),
        Json::Number(n) => Some(Cow::Owned(n.to_string())),
        Json::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        Json::Null => Some(Cow::Borrowed("null")),
        Json::Array(_) | Json::Object(_) => None,
    }
}

/// Guava's `Ints.tryParse`/`Longs.tryParse`: an optional `-` and ASCII digits.
fn parse_integer(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// What an event's mapping needs besides the program.
#[derive(Clone, Copy)]
pub struct Inputs<'e> {
    /// The event.
    pub event: &'e Event<'e>,
    /// Its parsed user agent.
    pub user_agent: Option<&'e UserAgent>,
    /// The geo database, when configured.
    pub geo: Option<&'e GeoDatabase>,
    /// The address `ip2geo()` looks up: the client's whole address, which
    /// `event.remote_host` no longer is when addresses are anonymised.
    pub geo_host: &'e str,
}

/// A field's value while the script runs.
#[derive(Debug, Clone)]
enum Slot<'e> {
    Unset,
    Value(Val<'e>),
    /// Already encoded (converted JSON): a range of [`Scratch::encoded`].
    Encoded(Range<usize>),
}

/// A shard's reusable per-event buffers.
#[derive(Debug, Default)]
pub struct Scratch {
    memo: Vec<Option<Option<Val<'static>>>>,
    slots: Vec<Slot<'static>>,
    encoded: Vec<u8>,
    /// JSON values that did not fit their field, since the shard started.
    pub json_mismatches: u64,
}

/// Reuses a vector's allocation for a shorter-lived element type.
fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    // Same layout, so the standard library collects in place.
    v.into_iter().map(|_| -> U { unreachable!("the vector is empty") }).collect()
}

enum Flow {
    Continue,
    Exit,
    Stop,
}

struct Eval<'e> {
    program: &'e Program,
    inputs: Inputs<'e>,
    memo: Vec<Option<Option<Val<'e>>>>,
    slots: Vec<Slot<'e>>,
    encoded: Vec<u8>,
    mismatches: u64,
}

/// Runs `program` for one event and appends the encoded record to `out`.
///
/// # Errors
/// [`EncodeError::MissingField`] when a field without default ended up
/// unset (`out` is then unchanged).
pub fn run<'e>(
    program: &'e Program,
    inputs: Inputs<'e>,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let mut memo = recycle(std::mem::take(&mut scratch.memo));
    memo.resize(program.memo_slots, None);
    let mut slots = recycle(std::mem::take(&mut scratch.slots));
    slots.resize(program.branches.len(), Slot::Unset);
    let mut encoded = std::mem::take(&mut scratch.encoded);
    encoded.clear();
    let mut ev = Eval { program, inputs, memo, slots, encoded, mismatches: 0 };
    ev.actions(&program.actions);
    let result = ev.write(out);
    scratch.json_mismatches += ev.mismatches;
    scratch.memo = recycle(ev.memo);
    scratch.slots = recycle(ev.slots);
    scratch.encoded = ev.encoded;
    result
}

impl<'e> Eval<'e> {
    fn actions(&mut self, actions: &'e [Action]) -> Flow {
        for a in actions {
            match a {
                Action::Map { field, value } => self.assign(*field, *value),
                Action::When(c, body) => {
                    if self.holds(*c) {
                        match self.actions(body) {
                            Flow::Continue => {}
                            other => return other,
                        }
                    }
                }
                Action::WhenExit(c) if self.holds(*c) => return Flow::Exit,
                Action::WhenStop(c) if self.holds(*c) => return Flow::Stop,
                Action::WhenExit(_) | Action::WhenStop(_) => {}
                Action::Section(body) => {
                    if let Flow::Stop = self.actions(body) {
                        return Flow::Stop;
                    }
                }
                Action::Exit => return Flow::Exit,
                Action::Stop => return Flow::Stop,
            }
        }
        Flow::Continue
    }

    fn holds(&mut self, cond: NodeId) -> bool {
        matches!(self.eval(cond), Some(Val::Bool(true)))
    }

    fn assign(&mut self, field: usize, value: NodeId) {
        let Some(v) = self.eval(value) else { return };
        let json = match v {
            Val::Json(j) => j,
            Val::StrList(l) => Rc::new(Json::from(l.to_vec())),
            Val::IntList(l) => Rc::new(Json::from(l.to_vec())),
            Val::Query(q) => {
                Rc::new(Json::Object(q.iter().map(|(k, vs)| (k.clone(), Json::from(vs.clone()))).collect()))
            }
            scalar => {
                self.slots[field] = Slot::Value(scalar);
                return;
            }
        };
        let start = self.encoded.len();
        let layout = &self.program.layout;
        match encode_json(&layout.fields[field].schema, &layout.names, &json, &mut self.encoded) {
            Ok(()) => self.slots[field] = Slot::Encoded(start..self.encoded.len()),
            // As the original: the field keeps what it had.
            Err(_) => self.mismatches += 1,
        }
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let fields = self.program.layout.fields.iter().zip(&self.program.branches);
        for (i, (slot, (field, branch))) in self.slots.iter().zip(fields).enumerate() {
            match slot {
                Slot::Encoded(r) => out.extend_from_slice(&self.encoded[r.clone()]),
                Slot::Value(v) => {
                    if let Some(b) = branch {
                        write_long(out, i64::from(*b));
                    }
                    match v {
                        Val::Str(s) => write_str(out, s.as_bytes()),
                        Val::Bool(b) => out.push(u8::from(*b)),
                        Val::Int(n) => write_long(out, i64::from(*n)),
                        Val::Long(n) => write_long(out, *n),
                        Val::Float(f) => out.extend_from_slice(&f.to_le_bytes()),
                        Val::Double(f) => out.extend_from_slice(&f.to_le_bytes()),
                        Val::Bytes(b) => write_str(out, b),
                        _ => unreachable!("containers are encoded when mapped; objects are refused at startup"),
                    }
                }
                Slot::Unset => match &field.default {
                    Some(bytes) => out.extend_from_slice(bytes),
                    None => {
                        out.truncate(start);
                        return Err(EncodeError::MissingField(i));
                    }
                },
            }
        }
        Ok(())
    }

    fn memoized(&mut self, slot: u32, f: impl FnOnce(&mut Self) -> Option<Val<'e>>) -> Option<Val<'e>> {
        if let Some(v) = &self.memo[slot as usize] {
            return v.clone();
        }
        let v = f(self);
        self.memo[slot as usize] = Some(v.clone());
        v
    }

    fn str(&mut self, id: NodeId) -> Option<Cow<'e, str>> {
        match self.eval(id)? {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    fn bool(&mut self, id: NodeId) -> Option<bool> {
        match self.eval(id)? {
            Val::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn event(&self, f: EventField) -> Option<Val<'e>> {
        let e = self.inputs.event;
        let s = |v: &'e str| Some(Val::Str(Cow::Borrowed(v)));
        let opt = |v: Option<&'e str>| v.map(|v| Val::Str(Cow::Borrowed(v)));
        match f {
            EventField::Location => opt(e.location),
            EventField::Referer => opt(e.referer),
            EventField::FirstInSession => Some(Val::Bool(e.first_in_session)),
            EventField::Corrupt => Some(Val::Bool(e.corrupt)),
            EventField::Duplicate => Some(Val::Bool(e.duplicate)),
            EventField::Timestamp => Some(Val::Long(e.timestamp)),
            EventField::ClientTimestamp => Some(Val::Long(e.client_timestamp)),
            EventField::RemoteHost => s(e.remote_host),
            EventField::ViewportWidth => e.viewport_pixel_width.map(Val::Int),
            EventField::ViewportHeight => e.viewport_pixel_height.map(Val::Int),
            EventField::ScreenWidth => e.screen_pixel_width.map(Val::Int),
            EventField::ScreenHeight => e.screen_pixel_height.map(Val::Int),
            // The original's value is an int; fractional ratios round.
            EventField::DevicePixelRatio => e.device_pixel_ratio.map(|r| Val::Int(r.round() as i32)),
            EventField::PartyId => s(e.party_id),
            EventField::SessionId => s(e.session_id),
            EventField::PageViewId => opt(e.page_view_id),
            EventField::EventId => s(e.event_id),
            EventField::EventType => opt(e.event_type),
            EventField::UserAgentString => opt(e.user_agent),
        }
    }

    fn eval(&mut self, id: NodeId) -> Option<Val<'e>> {
        let program = self.program;
        match &program.nodes[id as usize] {
            Node::Lit(l) => Some(lit_val(l)),
            Node::Event(f) => self.event(*f),
            Node::Cookie(name) => cookie(self.inputs.event.headers, name).map(|c| Val::Str(Cow::Borrowed(c))),
            Node::Header { name, memo } => self.memoized(*memo, |s| {
                let mut items = Vec::new();
                let mut any = false;
                for h in s.inputs.event.headers.iter().filter(|h| h.name.eq_ignore_ascii_case(name)) {
                    any = true;
                    split_list(&String::from_utf8_lossy(h.value), &mut items);
                }
                any.then(|| Val::StrList(items.into()))
            }),
            Node::First(l) => self.element(*l, 0),
            Node::Last(l) => self.element(*l, -1),
            Node::Get(l, i) => self.element(*l, *i),
            Node::Joined(l) => match self.eval(*l)? {
                Val::StrList(items) => Some(Val::Str(Cow::Owned(items.join(",")))),
                _ => None,
            },
            Node::UserAgent => self.inputs.user_agent.map(Val::UserAgent),
            Node::UaField(ua, f) => {
                let Val::UserAgent(u) = self.eval(*ua)? else { return None };
                let text: &'e str = match f {
                    UaField::Name => &u.name,
                    UaField::Family => &u.family,
                    UaField::Vendor => &u.vendor,
                    UaField::Type => &u.kind,
                    UaField::Version => &u.version,
                    UaField::DeviceCategory => &u.device_category,
                    UaField::OsFamily => &u.os_family,
                    UaField::OsVersion => &u.os_version,
                    UaField::OsVendor => &u.os_vendor,
                    UaField::Bot => return Some(Val::Bool(u.bot)),
                };
                Some(Val::Str(Cow::Borrowed(text)))
            }
            Node::Geo { ip, memo } => self.memoized(*memo, |s| {
                let db = s.inputs.geo?;
                let text = match ip {
                    Some(ip) => s.str(*ip)?,
                    None => Cow::Borrowed(s.inputs.geo_host),
                };
                db.lookup(text.parse().ok()?).map(|g| Val::Geo(Rc::new(g)))
            }),
            Node::GeoField(g, f) => match self.eval(*g)? {
                Val::Geo(geo) => f.read(&geo),
                _ => None,
            },
            Node::Params { memo } => self.memoized(*memo, |s| {
                let json = match s.inputs.event.custom_parameters? {
                    CustomParameters::Mincode(text) => mincode::decode(text).ok()?,
                    CustomParameters::Json(text) => serde_json::from_str(text).ok()?,
                };
                Some(Val::Json(Rc::new(json)))
            }),
            Node::ParamValue(j, name) => {
                let Val::Json(json) = self.eval(*j)? else { return None };
                let text = json.get(&**name).and_then(json_text).map_or(String::new(), Cow::into_owned);
                Some(Val::Str(Cow::Owned(text)))
            }
            Node::ParamPath { json, path, definite, memo } => self.memoized(*memo, |s| {
                let Val::Json(j) = s.eval(*json)? else { return None };
                let found = path.query(&j);
                let value = if *definite {
                    found.at_most_one().ok()??.clone()
                } else {
                    Json::Array(found.all().into_iter().cloned().collect())
                };
                Some(Val::Json(Rc::new(value)))
            }),
            Node::Parse(v, to) => {
                let s = self.str(*v)?;
                match to {
                    ParseTo::Int => parse_integer(&s).and_then(|n| i32::try_from(n).ok()).map(Val::Int),
                    ParseTo::Long => parse_integer(&s).map(Val::Long),
                    ParseTo::Float => s.parse().ok().map(Val::Float),
                    ParseTo::Double => s.parse().ok().map(Val::Double),
                    ParseTo::Bool => Some(Val::Bool(s.eq_ignore_ascii_case("true"))),
                }
            }
            Node::ParseUri { input, memo } => self.memoized(*memo, |s| {
                let text = s.str(*input)?;
                Uri::parse(text).map(|u| Val::Uri(Rc::new(u)))
            }),
            Node::UriPart(u, part) => {
                let Val::Uri(uri) = self.eval(*u)? else { return None };
                let text = match part {
                    UriPart::Scheme => uri.scheme()?.to_owned(),
                    UriPart::Host => uri.host()?.to_owned(),
                    UriPart::RawPath => uri.raw_path()?.to_owned(),
                    UriPart::Path => percent_decode(uri.raw_path()?).into_owned(),
                    UriPart::RawQuery => uri.raw_query()?.to_owned(),
                    UriPart::Query => percent_decode(uri.raw_query()?).into_owned(),
                    UriPart::RawFragment => uri.raw_fragment()?.to_owned(),
                    UriPart::Fragment => percent_decode(uri.raw_fragment()?).into_owned(),
                };
                Some(Val::Str(Cow::Owned(text)))
            }
            Node::UriPort(u) => match self.eval(*u)? {
                Val::Uri(uri) => uri.port().map(Val::Int),
                _ => None,
            },
            Node::UriQuery { uri, memo } => self.memoized(*memo, |s| {
                let Val::Uri(u) = s.eval(*uri)? else { return None };
                let query = match u.raw_query() {
                    Some(raw) => parse_query(raw)?,
                    None => Vec::new(),
                };
                Some(Val::Query(query.into()))
            }),
            Node::QueryValue(q, name) => match self.eval(*q)? {
                Val::Query(q) => {
                    let (_, values) = q.iter().find(|(k, _)| **k == **name)?;
                    values.first().map(|v| Val::Str(Cow::Owned(v.clone())))
                }
                _ => None,
            },
            Node::QueryValues(q, name) => match self.eval(*q)? {
                Val::Query(q) => {
                    let (_, values) = q.iter().find(|(k, _)| **k == **name)?;
                    Some(Val::StrList(values.clone().into()))
                }
                _ => None,
            },
            Node::Match { regex, input, memo } => self.memoized(*memo, |s| {
                let subject = s.str(*input);
                let caps = subject
                    .as_deref()
                    .and_then(|text| regex.captures(text).map(|c| c.iter().map(|g| g.map(|m| m.range())).collect()));
                Some(Val::Matcher(Rc::new(Matched { subject: subject.unwrap_or_default(), groups: caps })))
            }),
            Node::Matches(m) => match self.eval(*m)? {
                Val::Matcher(found) => Some(Val::Bool(found.groups.is_some())),
                _ => None,
            },
            Node::Group(m, i) => match self.eval(*m)? {
                Val::Matcher(found) => {
                    let range = found.groups.as_ref()?.get(*i)?.clone()?;
                    Some(Val::Str(Cow::Owned(found.subject[range].to_owned())))
                }
                _ => None,
            },
            Node::Not(b) => Some(Val::Bool(!self.bool(*b)?)),
            Node::And(a, b) => {
                let (a, b) = (self.bool(*a), self.bool(*b));
                Some(Val::Bool(a? && b?))
            }
            Node::Or(a, b) => {
                let (a, b) = (self.bool(*a), self.bool(*b));
                Some(Val::Bool(a? || b?))
            }
            Node::IsPresent(v) => Some(Val::Bool(self.eval(*v).is_some())),
            Node::IsAbsent(v) => Some(Val::Bool(self.eval(*v).is_none())),
            Node::EqualValues(a, b) => {
                let (a, b) = (self.eval(*a), self.eval(*b));
                Some(Val::Bool(match (a, b) {
                    (None, None) => true,
                    (Some(a), Some(b)) => same(&a, &b),
                    _ => false,
                }))
            }
            Node::EqualLit(a, l) => Some(Val::Bool(self.eval(*a).is_some_and(|v| same(&v, &lit_val(l))))),
            Node::Digest { .. } => None,
            Node::DigestResult { digest, memo } => self.memoized(*memo, |s| {
                let Node::Digest { digester, parts } = &program.nodes[*digest as usize] else { return None };
                // Absent pieces are skipped; JSON containers have no text.
                let values: Vec<Val<'e>> = parts.iter().filter_map(|p| s.eval(*p)).collect();
                let pieces: Vec<Cow<'_, [u8]>> = values
                    .iter()
                    .filter_map(|v| match v {
                        Val::Str(t) => Some(Cow::Borrowed(t.as_bytes())),
                        Val::Bytes(b) => Some(Cow::Borrowed(&b[..])),
                        Val::Json(j) => json_text(j).map(|t| match t {
                            Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
                            Cow::Owned(t) => Cow::Owned(t.into_bytes()),
                        }),
                        _ => None,
                    })
                    .collect();
                let refs: Vec<&[u8]> = pieces.iter().map(|p| &**p).collect();
                Some(Val::Bytes(digester.digest(&refs).into()))
            }),
            Node::FormatBytes(b, f) => {
                let Val::Bytes(bytes) = self.eval(*b)? else { return None };
                Some(Val::Str(Cow::Owned(match f {
                    BytesFormat::HexLower => hex::encode(&bytes),
                    BytesFormat::HexUpper => hex::encode_upper(&bytes),
                    BytesFormat::Base64 => base64::engine::general_purpose::STANDARD.encode(&bytes),
                })))
            }
        }
    }

    /// `get(i)` of a list: negative counts from the end.
    fn element(&mut self, list: NodeId, i: i32) -> Option<Val<'e>> {
        let pick = |len: usize| -> Option<usize> {
            let i = if i < 0 { len as i64 + i64::from(i) } else { i64::from(i) };
            usize::try_from(i).ok().filter(|i| *i < len)
        };
        match self.eval(list)? {
            Val::StrList(items) => items.get(pick(items.len())?).map(|s| Val::Str(Cow::Owned(s.clone()))),
            Val::IntList(items) => items.get(pick(items.len())?).map(|n| Val::Int(*n)),
            _ => None,
        }
    }
}
