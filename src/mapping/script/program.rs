//! A compiled mapping script: typed expression nodes in one arena and the
//! actions that run per event. Everything here is fixed at startup.

use std::sync::Arc;

use regex::Regex;
use serde_json_path::JsonPath;

use super::digest::Digester;
use crate::avro::RecordLayout;

/// Index of a node in [`Program::nodes`].
pub type NodeId = u32;

/// Index of a per-event memo slot.
pub type MemoId = u32;

/// A value's type as the mapping language sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// `String`
    Str,
    /// `Boolean`
    Bool,
    /// `int`
    Int,
    /// `long`
    Long,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `ByteBuffer`
    Bytes,
    /// `List<String>`
    StrList,
    /// `List<Integer>`
    IntList,
    /// `Map<String,List<String>>`
    Query,
    /// `JsonNode`
    Json,
    /// A parsed URI (not mappable).
    Uri,
    /// A regex match (not mappable).
    Matcher,
    /// A parsed user agent (not mappable).
    UserAgent,
    /// A geo lookup (not mappable).
    Geo,
    /// A digest being built (not mappable).
    Digest,
}

impl Ty {
    /// How a script author reads the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Str => "String",
            Self::Bool => "Boolean",
            Self::Int => "int",
            Self::Long => "long",
            Self::Float => "float",
            Self::Double => "double",
            Self::Bytes => "ByteBuffer",
            Self::StrList => "List<String>",
            Self::IntList => "List<Integer>",
            Self::Query => "Map<String,List<String>>",
            Self::Json => "JsonNode",
            Self::Uri => "URI",
            Self::Matcher => "Matcher",
            Self::UserAgent => "UserAgent",
            Self::Geo => "GeoIP response",
            Self::Digest => "Digest",
        }
    }
}

/// A constant.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    /// String
    Str(Box<str>),
    /// Boolean
    Bool(bool),
    /// int
    Int(i32),
    /// long
    Long(i64),
    /// float
    Float(f32),
    /// double
    Double(f64),
}

/// The simple values of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventField {
    /// `location()`
    Location,
    /// `referer()`
    Referer,
    /// `firstInSession()`
    FirstInSession,
    /// `corrupt()`
    Corrupt,
    /// `duplicate()`
    Duplicate,
    /// `timestamp()`
    Timestamp,
    /// `clientTimestamp()`
    ClientTimestamp,
    /// `remoteHost()`
    RemoteHost,
    /// `viewportPixelWidth()`
    ViewportWidth,
    /// `viewportPixelHeight()`
    ViewportHeight,
    /// `screenPixelWidth()`
    ScreenWidth,
    /// `screenPixelHeight()`
    ScreenHeight,
    /// `devicePixelRatio()`
    DevicePixelRatio,
    /// `partyId()`
    PartyId,
    /// `sessionId()`
    SessionId,
    /// `pageViewId()`
    PageViewId,
    /// `eventId()`
    EventId,
    /// `eventType()`
    EventType,
    /// `userAgentString()`
    UserAgentString,
}

/// Parts of a URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriPart {
    /// `path()`
    Path,
    /// `rawPath()`
    RawPath,
    /// `scheme()`
    Scheme,
    /// `host()`
    Host,
    /// `decodedQueryString()`
    Query,
    /// `rawQueryString()`
    RawQuery,
    /// `decodedFragment()`
    Fragment,
    /// `rawFragment()`
    RawFragment,
}

/// Fields of `userAgent()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UaField {
    /// `name()`
    Name,
    /// `family()`
    Family,
    /// `vendor()`
    Vendor,
    /// `type()`
    Type,
    /// `version()`
    Version,
    /// `deviceCategory()`
    DeviceCategory,
    /// `osFamily()`
    OsFamily,
    /// `osVersion()`
    OsVersion,
    /// `osVendor()`
    OsVendor,
    /// `bot()`: a crawler, bot or headless browser (a boolean).
    Bot,
}

/// How bytes are written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BytesFormat {
    /// `toHexLower()`
    HexLower,
    /// `toHexUpper()`
    HexUpper,
    /// `toBase64()`
    Base64,
}

/// Conversions of `parse ... to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseTo {
    /// `int32`
    Int,
    /// `int64`
    Long,
    /// `fp32`
    Float,
    /// `fp64`
    Double,
    /// `bool`
    Bool,
}

/// One typed expression.
#[derive(Debug)]
pub enum Node {
    /// A constant.
    Lit(Lit),
    /// A simple value of the event.
    Event(EventField),
    /// `cookie('name')`
    Cookie(Box<str>),
    /// `header('Name')`: normalised values.
    Header { name: Box<str>, memo: MemoId },
    /// `list.first()`
    First(NodeId),
    /// `list.last()`
    Last(NodeId),
    /// `list.get(i)`; negative counts from the end.
    Get(NodeId, i32),
    /// `list.commaSeparated()`
    Joined(NodeId),
    /// `userAgent()`
    UserAgent,
    /// `userAgent().field()`
    UaField(NodeId, UaField),
    /// `ip2geo()` or `ip2geo(ip)`
    Geo { ip: Option<NodeId>, memo: MemoId },
    /// `ip2geo().field()`
    GeoField(NodeId, super::geo::GeoField),
    /// `eventParameters()`
    Params { memo: MemoId },
    /// `json.value('name')`: the property as text (`""` when missing).
    ParamValue(NodeId, Box<str>),
    /// `json.path('$...')`; a definite path yields one value, any other
    /// (wildcards, filters, slices, unions, `..`) an array of the matches.
    ParamPath { json: NodeId, path: Box<JsonPath>, definite: bool, memo: MemoId },
    /// `parse s to int32|int64|fp32|fp64|bool`
    Parse(NodeId, ParseTo),
    /// `parse s to uri`
    ParseUri { input: NodeId, memo: MemoId },
    /// A part of a URI.
    UriPart(NodeId, UriPart),
    /// `uri.port()`
    UriPort(NodeId),
    /// `uri.query()`
    UriQuery { uri: NodeId, memo: MemoId },
    /// `query.value('k')`
    QueryValue(NodeId, Box<str>),
    /// `query.valueList('k')`
    QueryValues(NodeId, Box<str>),
    /// `match 'regex' against s`
    Match { regex: Box<Regex>, input: NodeId, memo: MemoId },
    /// `matcher.matches()`
    Matches(NodeId),
    /// `matcher.group(i)` or `matcher.group('name')`, resolved to an index.
    Group(NodeId, usize),
    /// `not b`
    Not(NodeId),
    /// `a.and(b)`
    And(NodeId, NodeId),
    /// `a.or(b)`
    Or(NodeId, NodeId),
    /// `v.isPresent()`
    IsPresent(NodeId),
    /// `v.isAbsent()`
    IsAbsent(NodeId),
    /// `a.equalTo(b)` with another value: absent equals absent.
    EqualValues(NodeId, NodeId),
    /// `a.equalTo(literal)`: present and equal.
    EqualLit(NodeId, Lit),
    /// `digest(...).add(...)...`: not evaluated itself.
    Digest { digester: Box<Digester>, parts: Vec<NodeId> },
    /// `digest.result()`
    DigestResult { digest: NodeId, memo: MemoId },
    /// `bytes.toHexLower()` and friends.
    FormatBytes(NodeId, BytesFormat),
}

/// One action of the script.
#[derive(Debug)]
pub enum Action {
    /// `map value onto field`
    Map {
        /// Schema position of the field.
        field: usize,
        /// The value.
        value: NodeId,
    },
    /// `when cond apply { ... }`
    When(NodeId, Vec<Action>),
    /// `when cond exit()`
    WhenExit(NodeId),
    /// `when cond stop()`
    WhenStop(NodeId),
    /// `section { ... }`
    Section(Vec<Action>),
    /// `exit()`
    Exit,
    /// `stop()`
    Stop,
}

/// A whole compiled script.
#[derive(Debug)]
pub struct Program {
    /// Expression arena.
    pub nodes: Vec<Node>,
    /// Top-level actions.
    pub actions: Vec<Action>,
    /// Memo slots needed per event.
    pub memo_slots: usize,
    /// The record schema it maps onto (field schemas, defaults, names).
    pub layout: Arc<RecordLayout>,
    /// Per schema field, the union branch a typed value is written in when
    /// the field is a union. Typed values were checked against their field
    /// at startup, so this is all their encoding needs; JSON values are
    /// converted against the field's whole schema at run time.
    pub branches: Vec<Option<u8>>,
}
