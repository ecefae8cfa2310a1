//! The built-in default mapping (reference 5.6): event fields and the nine
//! user-agent fields onto `io.divolte.record.DefaultEventRecord`.

use crate::avro::{default_schema, encode_record, write_long, write_str, Datum, EncodeError, RecordLayout};
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
    /// Whether the schema is the built-in one as shipped (every field in
    /// [`FIELDS`] order with its shipped type), which [`write`](Self::write)
    /// encodes straight from the event.
    shipped: bool,
    /// `eventType`'s default, encoded.
    event_type_default: Vec<u8>,
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
        let builtin = default_schema();
        let shipped = positions.iter().enumerate().all(|(i, &p)| i == p)
            && layout.fields.iter().zip(&builtin.fields).all(|(f, b)| f.kind == b.kind && f.default == b.default);
        let event_type_default =
            builtin.position("eventType").and_then(|i| builtin.fields[i].default.clone()).unwrap_or_default();
        Ok(Self { positions, shipped, event_type_default })
    }

    /// Appends the record of `e` to `out`, in `layout`, the schema this
    /// mapping was bound to.
    ///
    /// With the built-in schema as shipped, the fields are written one
    /// after another from the event: no value table, no per-field type
    /// dispatch. That took the mapping and its encoding from 3,191 to
    /// 1,477 instructions per event (`benches/stages.sh`).
    ///
    /// # Errors
    /// [`EncodeError`] when a value does not fit a field of another schema.
    pub fn write<'a>(
        &self,
        e: &Event<'a>,
        ua: Option<&'a UserAgent>,
        layout: &RecordLayout,
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        if !self.shipped {
            let mut values = [None; FIELD_COUNT];
            self.map(e, ua, &mut values);
            return encode_record(layout, &values, out);
        }
        // Unions are `["null", T]`: branch 0 (zig-zag 0) for null, branch 1
        // (zig-zag 2) before a value. Inlined: called fifteen times a
        // record, a call's entry and exit cost more than a short string.
        #[inline(always)]
        fn text(out: &mut Vec<u8>, v: Option<&str>) {
            match v {
                Some(s) => {
                    out.push(2);
                    write_str(out, s.as_bytes());
                }
                None => out.push(0),
            }
        }
        #[inline(always)]
        fn int(out: &mut Vec<u8>, v: Option<i32>) {
            match v {
                Some(n) => {
                    out.push(2);
                    write_long(out, i64::from(n));
                }
                None => out.push(0),
            }
        }
        out.extend_from_slice(&[u8::from(e.duplicate), u8::from(e.corrupt), u8::from(e.first_in_session)]);
        write_long(out, e.timestamp);
        write_long(out, e.client_timestamp);
        write_str(out, e.remote_host.as_bytes());
        text(out, e.referer);
        text(out, e.location);
        for n in [e.viewport_pixel_width, e.viewport_pixel_height, e.screen_pixel_width, e.screen_pixel_height] {
            int(out, n);
        }
        text(out, Some(e.party_id));
        text(out, Some(e.session_id));
        text(out, e.page_view_id);
        match e.event_type {
            Some(t) => write_str(out, t.as_bytes()),
            None => out.extend_from_slice(&self.event_type_default),
        }
        text(out, e.user_agent);
        match ua {
            // The same bytes for every event with this agent: written once,
            // then copied (about 400 instructions per event less).
            Some(u) => out.extend_from_slice(u.written.0.get_or_init(|| {
                let mut fields = Vec::new();
                for field in [
                    &u.name,
                    &u.family,
                    &u.vendor,
                    &u.kind,
                    &u.version,
                    &u.device_category,
                    &u.os_family,
                    &u.os_version,
                    &u.os_vendor,
                ] {
                    text(&mut fields, Some(&field[..]));
                }
                fields.into()
            })),
            None => out.extend_from_slice(&[0; 9]),
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::useragent::UserAgentCache;
    use crate::event::pixel::PixelScratch;
    use crate::http::Request;
    use crate::plan::SourceId;

    #[test]
    fn the_shipped_schema_is_written_as_the_generic_encoder_writes_it() {
        let layout = default_schema();
        let direct = DefaultMapping::new(&layout).unwrap();
        assert!(direct.shipped);
        let generic = DefaultMapping { shipped: false, ..DefaultMapping::new(&layout).unwrap() };
        let mut agents = UserAgentCache::new(4);
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
        let ua = agents.get(chrome).clone();
        for query in [
            "p=0%3Aa%3Ab&s=0%3Aa%3Ac&v=v&e=e&c=loyw3v28&n=t&f=f&l=https%3A%2F%2Fx%2F%C3%A9&r=r&t=pageView&w=uq&h=-1&i=zzzzzz&j=0&x=1",
            "p=0%3Aa%3Ab&s=0%3Aa%3Ac&v=v&e=e&c=-1&n=f&f=t",
        ] {
            let req = Request::test_get("/csc-event", query);
            let mut scratch = PixelScratch::default();
            let event = scratch.parse(&req, SourceId(0)).unwrap().verify();
            // The first query writes the agent's fields and keeps them;
            // the second copies what was kept.
            assert_eq!(ua.written.0.get().is_some(), query.ends_with("f=t"));
            for agent in [Some(&ua), None] {
                let (mut ours, mut theirs) = (vec![7], vec![7]);
                direct.write(&event, agent, &layout, &mut ours).unwrap();
                generic.write(&event, agent, &layout, &mut theirs).unwrap();
                assert_eq!(ours, theirs, "{query} {}", agent.is_some());
            }
        }
    }

    #[test]
    fn a_reordered_schema_takes_the_generic_encoder() {
        let mut layout = default_schema();
        layout.fields.swap(0, 1);
        assert!(!DefaultMapping::new(&layout).unwrap().shipped);
    }
}
