//! Browser events: the query string of `GET <prefix><event_suffix>`.
//!
//! Parameters are single letters (reference 1.2). Values are URL-decoded
//! into one shard-local arena; the first value of a name feeds the event,
//! all values feed the checksum.

use std::io::Write;
use std::net::IpAddr;
use std::ops::Range;

use percent_encoding::percent_decode;

use super::checksum;
use super::ids::{parse_base36_i32, parse_base36_i64, push_base36, DivolteId};
use super::{Event, Rejected, SourceKind};
use crate::http::Request;

/// Reusable buffers for parsing pixel requests; one per shard, so parsing
/// allocates nothing once they have grown to the traffic's size.
#[derive(Debug, Default)]
pub struct PixelScratch {
    /// Decoded names and values, plus rendered ids and the remote host.
    arena: Vec<u8>,
    /// (name, value) ranges into the arena, in arrival order.
    params: Vec<(Range<usize>, Range<usize>)>,
    /// Sort order for the checksum.
    order: Vec<u16>,
    /// Canonical form for the checksum.
    canonical: Vec<u8>,
}

/// Appends `raw` URL-decoded (`+` is a space, as in form encoding) to the
/// arena as valid UTF-8; returns its range.
fn decode_into(arena: &mut Vec<u8>, raw: &[u8]) -> Range<usize> {
    let start = arena.len();
    for (i, piece) in raw.split(|&b| b == b'+').enumerate() {
        if i > 0 {
            arena.push(b' ');
        }
        arena.extend(percent_decode(piece));
    }
    if std::str::from_utf8(&arena[start..]).is_err() {
        let fixed = String::from_utf8_lossy(&arena[start..]).into_owned();
        arena.truncate(start);
        arena.extend_from_slice(fixed.as_bytes());
    }
    start..arena.len()
}

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
            write!(
                out,
                "{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}",
                s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
            )
        }
    };
}

/// Index of a single-letter parameter name in the first-value table.
fn letter(name: &[u8]) -> Option<usize> {
    match name {
        [c @ b'a'..=b'z'] => Some(usize::from(c - b'a')),
        _ => None,
    }
}

/// The range of the normalised form of the identifier at `raw`: `raw`
/// itself when already normal, else a rendering appended to the arena.
fn normalised_id(arena: &mut Vec<u8>, raw: Range<usize>) -> Option<Range<usize>> {
    let text = std::str::from_utf8(&arena[raw.clone()]).ok()?;
    let id = DivolteId::parse(text)?;
    if id.is_rendered_as(text) {
        return Some(raw);
    }
    let unique = raw.end - id.unique.len()..raw.end;
    let timestamp = id.timestamp;
    let start = arena.len();
    arena.extend_from_slice(b"0:");
    push_base36(arena, timestamp);
    arena.push(b':');
    arena.extend_from_within(unique);
    Some(start..arena.len())
}

impl PixelScratch {
    /// Parses the event in `req`'s query string.
    ///
    /// # Errors
    /// [`Rejected`] when the party id, session id or another required
    /// parameter is missing or invalid.
    pub fn parse<'a>(
        &'a mut self,
        req: &'a Request<'a>,
        source: usize,
    ) -> Result<Event<'a>, Rejected> {
        self.arena.clear();
        self.params.clear();
        self.canonical.clear();
        let query = req.query.unwrap_or("").as_bytes();
        let mut first: [Option<u16>; 26] = [None; 26];
        for pair in query.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = decode_into(&mut self.arena, name);
            let value = decode_into(&mut self.arena, value);
            if let Some(slot) = letter(&self.arena[name.clone()]) {
                first[slot].get_or_insert(self.params.len() as u16);
            }
            self.params.push((name, value));
        }
        let value =
            |c: u8| first[usize::from(c - b'a')].map(|i| self.params[usize::from(i)].1.clone());
        let (party_raw, session_raw) = (value(b'p'), value(b's'));
        let required = [b'v', b'e', b'c', b'n', b'f'].map(value);
        let optional = [b'l', b'r', b't', b'u', b'w', b'h', b'i', b'j', b'k', b'x'].map(value);

        let arena = &self.arena;
        let params = &self.params;
        checksum::canonical_form(
            params.len(),
            |i| (&arena[params[i].0.clone()], &arena[params[i].1.clone()]),
            &mut self.order,
            &mut self.canonical,
        );

        let party = party_raw
            .and_then(|r| normalised_id(&mut self.arena, r))
            .ok_or(Rejected::InvalidPartyId)?;
        let session = session_raw
            .and_then(|r| normalised_id(&mut self.arena, r))
            .ok_or(Rejected::InvalidSessionId)?;
        let host_start = self.arena.len();
        write_remote_host(&mut self.arena, req.peer.ip());
        let host = host_start..self.arena.len();

        // Every range now points into valid UTF-8 (decode_into ensures it),
        // so the arena is checked once and sliced.
        let arena = std::str::from_utf8(&self.arena).map_err(|_| Rejected::Incomplete)?;
        let text = |r: &Option<Range<usize>>| r.as_ref().map(|r| &arena[r.clone()]);
        let [page_view, event_id, client_ts, new_party, first_in_session] = &required;
        let [location, referer, event_type, custom, w, h, i, j, k, x] = &optional;
        let (
            Some(page_view),
            Some(event_id),
            Some(client_ts),
            Some(new_party),
            Some(first_in_session),
        ) = (
            text(page_view),
            text(event_id),
            text(client_ts).and_then(parse_base36_i64),
            text(new_party),
            text(first_in_session),
        )
        else {
            return Err(Rejected::Incomplete);
        };
        let int = |r: &Option<Range<usize>>| text(r).and_then(parse_base36_i32);
        Ok(Event {
            source,
            kind: SourceKind::Browser,
            timestamp: millis_since_epoch(req.received),
            remote_host: &arena[host],
            party_id: &arena[party],
            session_id: &arena[session],
            event_id,
            page_view_id: Some(page_view),
            client_timestamp: client_ts,
            new_party: new_party == "t",
            first_in_session: first_in_session == "t",
            corrupt: !checksum::verify(&self.canonical, text(x)),
            duplicate: false,
            location: text(location),
            referer: text(referer),
            event_type: text(event_type),
            viewport_pixel_width: int(w),
            viewport_pixel_height: int(h),
            screen_pixel_width: int(i),
            screen_pixel_height: int(j),
            device_pixel_ratio: int(k),
            custom_parameters: text(custom),
            user_agent: req.header("user-agent"),
            headers: req.headers,
        })
    }
}

/// Milliseconds since the epoch (0 for clocks before 1970).
pub fn millis_since_epoch(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
