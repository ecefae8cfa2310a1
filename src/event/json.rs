//! JSON events: `POST <event_path>?p=<party id>` with a JSON object body
//! (reference 3). The party id comes from the query string; the body holds
//! the rest. Unknown properties, a missing required one, an invalid
//! session id or a timestamp without offset make the event invalid: it is
//! dropped and counted (the original's mapper thread crashed on the last).

use std::borrow::Cow;

use serde::Deserialize;

use super::ids::DivolteId;
use super::{CustomParameters, Event, Rejected, SourceKind};
use crate::http::Request;
use crate::plan::SourceId;

/// The body's properties, borrowed from the request where possible.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonBody<'a> {
    #[serde(borrow)]
    session_id: Cow<'a, str>,
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    is_new_party: bool,
    is_new_session: bool,
    #[serde(borrow)]
    client_timestamp_iso: Cow<'a, str>,
    #[serde(borrow, default)]
    event_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    parameters: Option<&'a serde_json::value::RawValue>,
}

/// The party id from the query string, when present and valid. URL
/// encoders in Java, Python and JavaScript escape the id's colons
/// (`p=0%3Ai1t84hgy%3A...`), so the value is decoded as the pixel's are.
pub fn party_id<'q>(query: Option<&'q str>, parameter: &str) -> Option<Cow<'q, str>> {
    let raw = query?.split('&').find_map(|pair| pair.strip_prefix(parameter)?.strip_prefix('='))?;
    let value = percent_encoding::percent_decode_str(raw).decode_utf8().ok()?;
    DivolteId::parse(&value)?;
    Some(value)
}

/// Parses the body.
///
/// # Errors
/// [`Rejected::InvalidBody`] for anything but a valid event object.
pub fn parse_body(body: &[u8]) -> Result<JsonBody<'_>, Rejected> {
    serde_json::from_slice(body).map_err(|_| Rejected::InvalidBody)
}

/// The event of a parsed body. `party` comes from [`party_id`].
///
/// # Errors
/// [`Rejected::InvalidSessionId`] or [`Rejected::InvalidBody`] (timestamp
/// without offset or unparsable).
pub fn event<'a>(
    body: &'a JsonBody<'a>,
    party: &'a str,
    req: &'a Request<'a>,
    source: SourceId,
) -> Result<Event<'a>, Rejected> {
    DivolteId::parse(&body.session_id).ok_or(Rejected::InvalidSessionId)?;
    let client_timestamp = chrono::DateTime::parse_from_rfc3339(&body.client_timestamp_iso)
        .map_err(|_| Rejected::InvalidBody)?
        .timestamp_millis();
    Ok(Event {
        source,
        kind: SourceKind::Json,
        timestamp: super::pixel::millis_since_epoch(req.received),
        remote_host: req.peer_host,
        party_id: party,
        session_id: &body.session_id,
        event_id: &body.event_id,
        page_view_id: None,
        client_timestamp,
        new_party: body.is_new_party,
        first_in_session: body.is_new_session,
        corrupt: false,
        duplicate: false,
        location: None,
        referer: None,
        event_type: body.event_type.as_deref(),
        viewport_pixel_width: None,
        viewport_pixel_height: None,
        screen_pixel_width: None,
        screen_pixel_height: None,
        device_pixel_ratio: None,
        custom_parameters: body.parameters.map(|p| CustomParameters::Json(p.get())),
        user_agent: req.header("user-agent"),
        headers: req.headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_party_parameter() {
        assert_eq!(party_id(Some("p=0:a:b&x=1"), "p").as_deref(), Some("0:a:b"));
        assert_eq!(party_id(Some("x=1&party=0:a:b"), "party").as_deref(), Some("0:a:b"));
        assert_eq!(party_id(Some("p=0%3Ai1t84hgy%3Aabc"), "p").as_deref(), Some("0:i1t84hgy:abc"), "escaped colons");
        assert_eq!(party_id(Some("p=0%3aa%3Ab"), "p").as_deref(), Some("0:a:b"));
        assert_eq!(party_id(Some("p=0%3Aa%FF%3Ab"), "p"), None, "not UTF-8");
        assert_eq!(party_id(Some("p=garbage"), "p"), None);
        assert_eq!(party_id(Some("pp=0:a:b"), "p"), None);
        assert_eq!(party_id(None, "p"), None);
    }

    #[test]
    fn rejects_unknown_properties_and_missing_ones() {
        let ok = br#"{"session_id":"0:a:s","event_id":"e","is_new_party":true,"is_new_session":false,"client_timestamp_iso":"2016-08-24T13:29:39.412+02:00"}"#;
        assert!(parse_body(ok).is_ok());
        assert!(parse_body(br#"{"session_id":"0:a:s"}"#).is_err());
        let extra = br#"{"session_id":"0:a:s","event_id":"e","is_new_party":true,"is_new_session":false,"client_timestamp_iso":"2016-08-24T13:29:39Z","colour":"red"}"#;
        assert!(parse_body(extra).is_err());
        assert!(parse_body(b"[1,2]").is_err());
    }
}
