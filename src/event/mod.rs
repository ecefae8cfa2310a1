//! Events: what a request says, parsed into one [`Event`] type shared by
//! every source.
//!
//! Key components:
//! - [`Event`]: one event, borrowing from the request and a shard-local scratch.
//! - [`pixel`]: browser events from `GET /csc-event` query strings.
//! - [`checksum`]: the `x` parameter check that flags corrupt events.
//! - [`ids`]: Divolte identifiers and base-36 numbers.
//! - [`mincode`]: the tag's compact JSON encoding of custom parameters.

pub mod checksum;
pub mod ids;
pub mod json;
pub mod mincode;
pub mod pixel;

use std::io::Write;
use std::net::IpAddr;

use crate::plan::SourceId;

/// Writes an address the way the original reports it: IPv4-mapped IPv6 as
/// plain IPv4, other IPv6 as eight uncompressed hex groups.
pub fn write_remote_host(out: &mut Vec<u8>, ip: IpAddr) {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    // Writing to a Vec cannot fail.
    let _ = match ip {
        IpAddr::V4(v4) => write!(out, "{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            write!(out, "{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}", s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])
        }
    };
}

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// The JavaScript tag's pixel requests.
    Browser,
    /// JSON posts.
    Json,
}

/// One event as the mapping stage sees it. Text fields borrow from the
/// request buffer or the shard's scratch arena, so building an event does
/// not allocate.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// The configured source that received it.
    pub source: SourceId,
    /// Kind of that source.
    pub kind: SourceKind,
    /// Server receive time, ms since the epoch.
    pub timestamp: i64,
    /// Client address (or forwarded address when configured).
    pub remote_host: &'a str,
    /// Normalised party id.
    pub party_id: &'a str,
    /// Normalised session id.
    pub session_id: &'a str,
    /// Event id.
    pub event_id: &'a str,
    /// Page-view id (browser events).
    pub page_view_id: Option<&'a str>,
    /// Client clock at the event, ms since the epoch.
    pub client_timestamp: i64,
    /// The client says the party id is new.
    pub new_party: bool,
    /// The client says this is the first event of the session.
    pub first_in_session: bool,
    /// The checksum did not match.
    pub corrupt: bool,
    /// The duplicate memory has seen this event before.
    pub duplicate: bool,
    /// Page location.
    pub location: Option<&'a str>,
    /// Page referrer.
    pub referer: Option<&'a str>,
    /// Event type (`pageView` for automatic page views).
    pub event_type: Option<&'a str>,
    /// Viewport width in CSS pixels.
    pub viewport_pixel_width: Option<i32>,
    /// Viewport height in CSS pixels.
    pub viewport_pixel_height: Option<i32>,
    /// Screen width.
    pub screen_pixel_width: Option<i32>,
    /// Screen height.
    pub screen_pixel_height: Option<i32>,
    /// Device pixel ratio, fractions kept (`1.5` on many laptops).
    pub device_pixel_ratio: Option<f64>,
    /// Custom parameters, still encoded; decoded only when a mapping asks.
    pub custom_parameters: Option<CustomParameters<'a>>,
    /// First `User-Agent` header.
    pub user_agent: Option<&'a str>,
    /// All request headers, for mappings that read headers and cookies.
    pub headers: &'a [httparse::Header<'a>],
}

/// Custom event parameters as they arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomParameters<'a> {
    /// The pixel's `u` parameter, in mincode.
    Mincode(&'a str),
    /// A JSON event's `parameters` value, as JSON text.
    Json(&'a str),
}

/// Why a request carried no usable event. Each is counted; none is an error
/// for the client, which still gets its normal answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// `p` missing or not a Divolte identifier.
    InvalidPartyId,
    /// `s` missing or not a Divolte identifier.
    InvalidSessionId,
    /// A required parameter (`v`, `e`, `c`, `n`, `f`) missing or unparsable.
    Incomplete,
    /// A JSON body that is not a valid event (syntax, properties, timestamp).
    InvalidBody,
}

impl Rejected {
    /// Label used in logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::InvalidPartyId => "invalid_party_id",
            Self::InvalidSessionId => "invalid_session_id",
            Self::Incomplete => "incomplete",
            Self::InvalidBody => "invalid_body",
        }
    }
}
