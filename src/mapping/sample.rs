//! Events described as JSON, for `divolte-collector mapping-test` and for
//! testing mappings: every value a mapping can read, with defaults for
//! what an author leaves out.
//!
//! ```json
//! {"location": "https://example.com/product/123456?q=shoes",
//!  "event_type": "pageView", "parameters": {"price": 42},
//!  "headers": {"User-Agent": "Mozilla/5.0 ...", "Cookie": "a=b"}}
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::event::{CustomParameters, Event, SourceKind};
use crate::plan::SourceId;

/// One header's value or values.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum HeaderValues {
    /// One instance.
    One(String),
    /// Several instances, in order.
    Many(Vec<String>),
}

/// An event as a mapping author writes it; field names follow the
/// original's mapping test server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SampleEvent {
    /// `location()`
    pub location: Option<String>,
    /// `referer()`
    pub referer: Option<String>,
    /// `partyId()`
    pub party_id: String,
    /// `sessionId()`
    pub session_id: String,
    /// `pageViewId()`
    pub page_view_id: Option<String>,
    /// `eventId()`
    pub event_id: String,
    /// `eventType()`
    pub event_type: Option<String>,
    /// `eventParameters()`
    pub parameters: Option<serde_json::Value>,
    /// `remoteHost()`
    pub remote_host: String,
    /// `corrupt()`
    pub corrupt: bool,
    /// `duplicate()`
    pub duplicate: bool,
    /// `firstInSession()`
    pub first_in_session: bool,
    /// The client says the party is new.
    pub new_party_id: bool,
    /// `timestamp()`, ms since the epoch.
    pub timestamp: i64,
    /// `clientTimestamp()`, ms since the epoch.
    pub client_timestamp: i64,
    /// `viewportPixelWidth()`
    pub viewport_pixel_width: Option<i32>,
    /// `viewportPixelHeight()`
    pub viewport_pixel_height: Option<i32>,
    /// `screenPixelWidth()`
    pub screen_pixel_width: Option<i32>,
    /// `screenPixelHeight()`
    pub screen_pixel_height: Option<i32>,
    /// `devicePixelRatio()`
    pub device_pixel_ratio: Option<f64>,
    /// Request headers (`User-Agent`, `Cookie`, anything `header()` reads).
    pub headers: BTreeMap<String, HeaderValues>,
    /// Serialized `parameters`, kept so the event can borrow it.
    #[serde(skip)]
    parameters_text: Option<String>,
}

impl Default for SampleEvent {
    fn default() -> Self {
        Self {
            location: None,
            referer: None,
            party_id: "0:sample:party".into(),
            session_id: "0:sample:session".into(),
            page_view_id: None,
            event_id: "0:sample:event".into(),
            event_type: None,
            parameters: None,
            remote_host: "127.0.0.1".into(),
            corrupt: false,
            duplicate: false,
            first_in_session: false,
            new_party_id: false,
            timestamp: 0,
            client_timestamp: 0,
            viewport_pixel_width: None,
            viewport_pixel_height: None,
            screen_pixel_width: None,
            screen_pixel_height: None,
            device_pixel_ratio: None,
            headers: BTreeMap::new(),
            parameters_text: None,
        }
    }
}

impl SampleEvent {
    /// Reads one JSON object.
    ///
    /// # Errors
    /// The JSON error, naming unknown properties.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let mut e: Self = serde_json::from_str(text)?;
        e.parameters_text = e.parameters.as_ref().map(serde_json::Value::to_string);
        Ok(e)
    }

    /// Calls `f` with the event this describes.
    pub fn with_event<R>(&self, f: impl FnOnce(&Event<'_>) -> R) -> R {
        let headers: Vec<httparse::Header<'_>> = self
            .headers
            .iter()
            .flat_map(|(name, v)| {
                let values: Vec<&String> = match v {
                    HeaderValues::One(s) => vec![s],
                    HeaderValues::Many(m) => m.iter().collect(),
                };
                values.into_iter().map(move |s| httparse::Header { name, value: s.as_bytes() })
            })
            .collect();
        let user_agent = headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("user-agent"))
            .and_then(|h| std::str::from_utf8(h.value).ok());
        let event = Event {
            source: SourceId(0),
            kind: SourceKind::Browser,
            timestamp: self.timestamp,
            remote_host: &self.remote_host,
            party_id: &self.party_id,
            session_id: &self.session_id,
            event_id: &self.event_id,
            page_view_id: self.page_view_id.as_deref(),
            client_timestamp: self.client_timestamp,
            new_party: self.new_party_id,
            first_in_session: self.first_in_session,
            corrupt: self.corrupt,
            duplicate: self.duplicate,
            location: self.location.as_deref(),
            referer: self.referer.as_deref(),
            event_type: self.event_type.as_deref(),
            viewport_pixel_width: self.viewport_pixel_width,
            viewport_pixel_height: self.viewport_pixel_height,
            screen_pixel_width: self.screen_pixel_width,
            screen_pixel_height: self.screen_pixel_height,
            device_pixel_ratio: self.device_pixel_ratio,
            custom_parameters: self.parameters_text.as_deref().map(CustomParameters::Json),
            user_agent,
            headers: &headers,
        };
        f(&event)
    }
}
