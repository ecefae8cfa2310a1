//! The built-in default mapping (reference 5.6): event fields and the nine
//! user-agent fields onto `io.divolte.record.DefaultEventRecord`.

use crate::avro::{Datum, RecordLayout};
use crate::enrich::useragent::UserAgent;
use crate::event::Event;

/// Fields of the default schema, all of which it sets.
pub const FIELD_COUNT: usize = 26;

/// The fields it sets, in the order of [`DefaultMapping::positions`].
const FIELDS: [&str; FIELD_COUNT] = [
    "detectedDuplicate",
    "detectedCorruption",
    "firstInSession",
    "timestamp",
    "clientTimestamp",
    "remoteHost",
    "referer",
    "location",
    "viewportPixelWidth",
    "viewportPixelHeight",
    "screenPixelWidth",
    "screenPixelHeight",
    "partyId",
    "sessionId",
    "pageViewId",
    "eventType",
    "userAgentString",
    "userAgentName",
    "userAgentFamily",
    "userAgentVendor",
    "userAgentType",
    "userAgentVersion",
    "userAgentDeviceCategory",
    "userAgentOsFamily",
    "userAgentOsVersion",
    "userAgentOsVendor",
];

/// The default mapping, bound to the field positions of its schema.
#[derive(Debug)]
pub struct DefaultMapping {
    positions: [usize; FIELD_COUNT],
}

impl DefaultMapping {
    /// Binds to `layout`, which must be the default schema.
    ///
    /// # Errors
    /// The name of the first missing field.
    pub fn new(layout: &RecordLayout) -> Result<Self, &'static str> {
        if layout.fields.len() != FIELD_COUNT {
            return Err("the default schema's 26 fields");
        }
        let mut positions = [0; FIELD_COUNT];
        for (slot, name) in positions.iter_mut().zip(FIELDS) {
            *slot = layout.position(name).ok_or(name)?;
        }
        Ok(Self { positions })
    }

    /// Fills `values` (indexed by schema position) from `e` and its parsed user agent.
    pub fn map<'a>(&self, e: &Event<'a>, ua: Option<&'a UserAgent>, values: &mut [Option<Datum<'a>>]) {
        let s = |v: Option<&'a str>| v.map(Datum::String);
        let i = |v: Option<i32>| v.map(Datum::Int);
        let ua_field = |f: fn(&'a UserAgent) -> &'a str| ua.map(|u| Datum::String(f(u)));
        let row: [Option<Datum<'a>>; FIELD_COUNT] = [
            Some(Datum::Boolean(e.duplicate)),
            Some(Datum::Boolean(e.corrupt)),
            Some(Datum::Boolean(e.first_in_session)),
            Some(Datum::Long(e.timestamp)),
            Some(Datum::Long(e.client_timestamp)),
            Some(Datum::String(e.remote_host)),
            s(e.referer),
            s(e.location),
            i(e.viewport_pixel_width),
            i(e.viewport_pixel_height),
            i(e.screen_pixel_width),
            i(e.screen_pixel_height),
            Some(Datum::String(e.party_id)),
            Some(Datum::String(e.session_id)),
            s(e.page_view_id),
            s(e.event_type),
            s(e.user_agent),
            ua_field(|u| &u.name),
            ua_field(|u| &u.family),
            ua_field(|u| &u.vendor),
            ua_field(|u| &u.kind),
            ua_field(|u| &u.version),
            ua_field(|u| &u.device_category),
            ua_field(|u| &u.os_family),
            ua_field(|u| &u.os_version),
            ua_field(|u| &u.os_vendor),
        ];
        for (pos, v) in self.positions.iter().zip(row) {
            values[*pos] = v;
        }
    }
}
