//! Browser events: the query string of `GET <prefix><event_suffix>`.
//!
//! Parameters are single letters (reference 1.2). Values are URL-decoded
//! into one shard-local arena; the first value of a name feeds the event,
//! all values feed the checksum.

use std::ops::Range;

use super::checksum;
use super::ids::{parse_base36_f64, parse_base36_i32, parse_base36_i64, push_base36, DivolteId};
use super::{CustomParameters, Event, Rejected, SourceKind};
use crate::http::Request;

/// One decoded query parameter: ranges into the arena.
#[derive(Debug, Clone)]
struct Param {
    name: Range<usize>,
    value: Range<usize>,
}

/// Reusable buffers for parsing pixel requests; one per shard, so parsing
/// allocates nothing once they have grown to the traffic's size.
#[derive(Debug, Default)]
pub struct PixelScratch {
    /// Decoded names and values, plus rendered ids and the remote host.
    arena: Vec<u8>,
    /// Decoded parameters in arrival order.
    params: Vec<Param>,
    /// Sort order for the checksum.
    order: Vec<u32>,
    /// Canonical form for the checksum.
    canonical: Vec<u8>,
}

/// Bytes that end a run of literal query text.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'&' as usize] = true;
    t[b'=' as usize] = true;
    t[b'%' as usize] = true;
    t[b'+' as usize] = true;
    t
};

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// URL-decodes a whole query string into `arena` in one pass, recording
/// each `name=value` pair (`+` is a space, as in form encoding; an invalid
/// escape is kept as written; empty pairs are skipped).
///
/// Literal runs are copied in bulk. One pass over the query replaced a
/// search per pair and a decode per value, which dominated the profile of
/// the whole event path.
fn decode_query(query: &[u8], arena: &mut Vec<u8>, params: &mut Vec<Param>) {
    arena.reserve(query.len());
    let mut name_start = arena.len();
    let mut value_start: Option<usize> = None;
    let mut i = 0;
    let mut finish = |arena: &Vec<u8>, name_start: usize, value_start: Option<usize>| {
        let end = arena.len();
        match value_start {
            Some(v) => params.push(Param { name: name_start..v, value: v..end }),
            None if end > name_start => params.push(Param { name: name_start..end, value: end..end }),
            None => {}
        }
    };
    while i < query.len() {
        let b = query[i];
        if !SPECIAL[usize::from(b)] {
            let run = query[i..].iter().position(|&c| SPECIAL[usize::from(c)]).map_or(query.len(), |n| i + n);
            arena.extend_from_slice(&query[i..run]);
            i = run;
            continue;
        }
        i += 1;
        match b {
            b'&' => {
                finish(arena, name_start, value_start);
                name_start = arena.len();
                value_start = None;
            }
            b'=' if value_start.is_none() => value_start = Some(arena.len()),
            b'+' => arena.push(b' '),
            b'%' => match (query.get(i).copied().and_then(hex), query.get(i + 1).copied().and_then(hex)) {
                (Some(hi), Some(lo)) => {
                    arena.push(hi << 4 | lo);
                    i += 2;
                }
                _ => arena.push(b'%'),
            },
            other => arena.push(other),
        }
    }
    finish(arena, name_start, value_start);
}

/// Replaces invalid UTF-8 in a decoded value with U+FFFD, in place at the
/// arena's end; returns the new range. Only used when the arena as a whole
/// failed validation, which well-behaved clients never cause.
fn make_utf8(arena: &mut Vec<u8>, range: Range<usize>) -> Range<usize> {
    let fixed = String::from_utf8_lossy(&arena[range]).into_owned();
    let start = arena.len();
    arena.extend_from_slice(fixed.as_bytes());
    start..arena.len()
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
    pub fn parse<'a>(&'a mut self, req: &'a Request<'a>, source: usize) -> Result<Event<'a>, Rejected> {
        self.arena.clear();
        self.params.clear();
        self.canonical.clear();
        let query = req.query.unwrap_or("").as_bytes();
        decode_query(query, &mut self.arena, &mut self.params);
        let mut first: [Option<u16>; 26] = [None; 26];
        for (i, p) in self.params.iter().enumerate() {
            if let Some(slot) = letter(&self.arena[p.name.clone()]) {
                first[slot].get_or_insert(i as u16);
            }
        }
        // Each name and value on its own: escapes can split a character
        // across two parameters (`a=%D6&%A1=`), which a check of the whole
        // arena passes (found by fuzz/pixel_query). A client sending
        // invalid UTF-8 gets its values repaired one by one.
        let valid = |r: &Range<usize>| std::str::from_utf8(&self.arena[r.clone()]).is_ok();
        if !self.params.iter().all(|p| valid(&p.name) && valid(&p.value)) {
            for i in 0..self.params.len() {
                let p = self.params[i].clone();
                self.params[i] =
                    Param { name: make_utf8(&mut self.arena, p.name), value: make_utf8(&mut self.arena, p.value) };
            }
            let valid_from = self.params.first().map_or(0, |p| p.name.start);
            self.arena.drain(..valid_from);
            for p in &mut self.params {
                p.name = p.name.start - valid_from..p.name.end - valid_from;
                p.value = p.value.start - valid_from..p.value.end - valid_from;
            }
        }
        let value = |c: u8| first[usize::from(c - b'a')].map(|i| self.params[usize::from(i)].value.clone());
        let (party_raw, session_raw) = (value(b'p'), value(b's'));
        let required = [b'v', b'e', b'c', b'n', b'f'].map(value);
        let optional = [b'l', b'r', b't', b'u', b'w', b'h', b'i', b'j', b'k', b'x'].map(value);

        let arena = &self.arena;
        let params = &self.params;
        checksum::canonical_form(
            params.len(),
            |i| (&arena[params[i].name.clone()], &arena[params[i].value.clone()]),
            &mut self.order,
            &mut self.canonical,
        );

        let party = party_raw.and_then(|r| normalised_id(&mut self.arena, r)).ok_or(Rejected::InvalidPartyId)?;
        let session = session_raw.and_then(|r| normalised_id(&mut self.arena, r)).ok_or(Rejected::InvalidSessionId)?;

        // Every range now points into valid UTF-8 (decode_into ensures it),
        // so the arena is checked once and sliced.
        let arena = std::str::from_utf8(&self.arena).map_err(|_| Rejected::Incomplete)?;
        let text = |r: &Option<Range<usize>>| r.as_ref().map(|r| &arena[r.clone()]);
        let [page_view, event_id, client_ts, new_party, first_in_session] = &required;
        let [location, referer, event_type, custom, w, h, i, j, k, x] = &optional;
        let (Some(page_view), Some(event_id), Some(client_ts), Some(new_party), Some(first_in_session)) = (
            text(page_view),
            text(event_id),
            text(client_ts).and_then(parse_base36_i64),
            text(new_party),
            text(first_in_session),
        ) else {
            return Err(Rejected::Incomplete);
        };
        let int = |r: &Option<Range<usize>>| text(r).and_then(parse_base36_i32);
        Ok(Event {
            source,
            kind: SourceKind::Browser,
            timestamp: millis_since_epoch(req.received),
            remote_host: req.peer_host,
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
            device_pixel_ratio: text(k).and_then(parse_base36_f64),
            custom_parameters: text(custom).map(CustomParameters::Mincode),
            user_agent: req.header("user-agent"),
            headers: req.headers,
        })
    }
}

/// Milliseconds since the epoch (0 for clocks before 1970).
pub fn millis_since_epoch(t: std::time::SystemTime) -> i64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::write_remote_host;
    use std::net::SocketAddr;

    fn decode(raw: &str) -> String {
        let (mut arena, mut params) = (Vec::new(), Vec::new());
        decode_query(format!("v={raw}").as_bytes(), &mut arena, &mut params);
        String::from_utf8_lossy(&arena[params[0].value.clone()]).into_owned()
    }

    #[test]
    fn splits_pairs_like_a_form_decoder() {
        let (mut arena, mut params) = (Vec::new(), Vec::new());
        decode_query(b"a=1&&b&c=x=y&=z&d%3D=2", &mut arena, &mut params);
        let got: Vec<(String, String)> = params
            .iter()
            .map(|p| {
                let s = |r: &Range<usize>| String::from_utf8_lossy(&arena[r.clone()]).into_owned();
                (s(&p.name), s(&p.value))
            })
            .collect();
        let want = [("a", "1"), ("b", ""), ("c", "x=y"), ("", "z"), ("d=", "2")];
        assert_eq!(got, want.map(|(a, b)| (a.to_owned(), b.to_owned())));
    }

    #[test]
    fn decodes_escapes_and_plus_and_keeps_invalid_escapes() {
        assert_eq!(decode("0%3Aabc%3Adef"), "0:abc:def");
        assert_eq!(decode("a+b%20c%2B"), "a b c+");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz%4"), "%zz%4");
        assert_eq!(decode("%%41"), "%A");
        assert_eq!(decode("%E2%9A%95"), "⚕");
    }

    fn parse_query(query: &str, f: impl FnOnce(Result<Event<'_>, Rejected>)) {
        let req = Request {
            method: crate::http::Method::Get,
            method_str: "GET",
            path: "/csc-event",
            query: Some(query),
            minor_version: 1,
            headers: &[],
            body: &[],
            peer: SocketAddr::from(([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201], 1)),
            peer_host: "192.0.2.1",
            received: std::time::SystemTime::now(),
        };
        let mut scratch = PixelScratch::default();
        f(scratch.parse(&req, 0));
    }

    #[test]
    fn invalid_utf8_is_repaired_not_fatal() {
        parse_query("p=0%3Aa%3Ab&s=0%3Aa%3Ac&v=v&e=e%FF%FE&c=1&n=t&f=f&l=%C3%A9t%C3", |r| {
            let e = r.unwrap();
            assert_eq!(e.event_id, "e\u{FFFD}\u{FFFD}");
            assert_eq!(e.location, Some("ét\u{FFFD}"));
            assert_eq!(e.party_id, "0:a:b");
            assert!(e.new_party && !e.first_in_session);
            assert_eq!(e.remote_host, "192.0.2.1");
        });
    }

    #[test]
    fn a_character_split_across_two_parameters_is_repaired_in_each() {
        // %D6%A1 is one character; split by `&`, each half is invalid alone.
        parse_query("p=0%3Aa%3Ab%D6&%A1s=x&s=0%3Aa%3Ac&v=v&e=e&c=1&n=t&f=f&l=%D6&%A1", |r| {
            let e = r.unwrap();
            assert_eq!(e.party_id, "0:a:b\u{FFFD}", "the unique part is opaque, as in the original");
            assert_eq!(e.location, Some("\u{FFFD}"));
        });
        parse_query("p=0%3Aa%3Ab&s=0%3Aa%3Ac&v=v&e=e&c=1&n=t&f=f&l=x%D6&%A1=y", |r| {
            assert_eq!(r.unwrap().location, Some("x\u{FFFD}"));
        });
    }

    #[test]
    fn unparsable_numbers_are_absent_and_ipv6_is_written_in_full() {
        let mut out = Vec::new();
        write_remote_host(&mut out, "2001:db8::1".parse().unwrap());
        assert_eq!(out, b"2001:db8:0:0:0:0:0:1");
        out.clear();
        write_remote_host(&mut out, "::ffff:192.0.2.1".parse().unwrap());
        assert_eq!(out, b"192.0.2.1", "IPv4-mapped addresses are reported as IPv4");
        parse_query("p=0%3Aa%3Ab&s=0%3Aa%3Ac&v=v&e=e&c=1&n=t&f=f&k=1.i&w=zz&h=", |r| {
            let e = r.unwrap();
            assert_eq!(e.device_pixel_ratio, Some(1.5), "fractional ratios are kept");
            assert_eq!(e.viewport_pixel_width, Some(35 * 36 + 35));
            assert_eq!(e.viewport_pixel_height, None);
        });
        parse_query("p=0%3Aa%3Ab&s=0%3Aa%3Ac&v=v&e=e&c=notbase36!&n=t&f=f", |r| {
            assert_eq!(r.unwrap_err(), Rejected::Incomplete)
        });
    }
}
