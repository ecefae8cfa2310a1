//! The values a mapping script computes per event: what `eval.rs`
//! produces and what `geo.rs` reads out of a lookup.

use std::borrow::Cow;
use std::ops::Range;
use std::rc::Rc;

use serde_json::Value as Json;

use super::uri::Uri;
use crate::enrich::geo::Geo;
use crate::enrich::useragent::UserAgent;

/// A runtime value.
#[derive(Debug, Clone)]
pub enum Val<'e> {
    /// String
    Str(Cow<'e, str>),
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
    /// bytes
    Bytes(Rc<[u8]>),
    /// List<String>
    StrList(Rc<[String]>),
    /// List<Integer>
    IntList(Rc<[i32]>),
    /// Map<String,List<String>>, in the order names first appear
    Query(Rc<[(String, Vec<String>)]>),
    /// JsonNode
    Json(Rc<Json>),
    /// URI
    Uri(Rc<Uri<'e>>),
    /// A regex match
    Matcher(Rc<Matched<'e>>),
    /// A parsed user agent
    UserAgent(&'e UserAgent),
    /// A geo lookup
    Geo(Rc<Geo>),
}

/// The subject of a match and its capture ranges (`None`: no match, or
/// no subject).
#[derive(Debug)]
pub struct Matched<'e> {
    pub(super) subject: Cow<'e, str>,
    pub(super) groups: Option<Vec<Option<Range<usize>>>>,
}
