//! Browser events: the query string of `GET <prefix><event_suffix>`.
//!
//! Parameters are single letters (reference 1.2). Values are URL-decoded
//! into one shard-local arena; the first value of a name feeds the event,
//! all values feed the checksum.

use std::ops::Range;

use super::checksum;
use super::ids::{id_parts, is_normal_id_in, parse_base36_f64, parse_base36_i32, parse_base36_i64, push_base36};
use super::{CustomParameters, Event, Rejected, SourceKind};
use crate::http::Request;
use crate::plan::SourceId;

/// One decoded query parameter: ranges into the arena.
#[derive(Debug, Clone)]
struct Param {
    name: Range<usize>,
    value: Range<usize>,
    /// An escape in it decoded to a non-ASCII byte. Only such parameters
    /// can hold invalid UTF-8: the query itself is valid UTF-8 and is cut
    /// only at ASCII bytes, and the other escapes decode to ASCII.
    escaped_non_ascii: bool,
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
    /// The query with zeros after it.
    padded: Vec<u8>,
}

/// Bit `k` set where `block[k]` is a byte that decoding must look at:
/// `&`, `=`, `%` or `+`. Four SSE2 compares find them in sixteen bytes at
/// once, where the word-wise search before stopped at each of them (they
/// are about a fifth of the tag's query bytes).
#[cfg(target_arch = "x86_64")]
fn specials(block: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8};
    // SAFETY: SSE2 is part of every x86_64 target, and the load reads
    // exactly the sixteen bytes of `block` (unaligned).
    unsafe {
        let v = _mm_loadu_si128(block.as_ptr().cast());
        let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
        let found = _mm_or_si128(_mm_or_si128(eq(b'&'), eq(b'=')), _mm_or_si128(eq(b'%'), eq(b'+')));
        _mm_movemask_epi8(found) as u32
    }
}

/// [`specials`] a byte at a time, for other targets (and to check the
/// SIMD version against).
#[cfg(any(not(target_arch = "x86_64"), test))]
fn specials_bytewise(block: &[u8; 16]) -> u32 {
    block.iter().enumerate().filter(|(_, b)| matches!(b, b'&' | b'=' | b'%' | b'+')).fold(0, |m, (k, _)| m | 1 << k)
}

#[cfg(not(target_arch = "x86_64"))]
use specials_bytewise as specials;

/// Value of each hex digit; 0xff for bytes that are not one.
const HEX: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// The byte that `%hi lo` stands for, when both are hex digits.
fn unescape(hi: u8, lo: u8) -> Option<u8> {
    let (hi, lo) = (HEX[usize::from(hi)], HEX[usize::from(lo)]);
    ((hi | lo) != 0xff).then_some(hi << 4 | lo)
}

/// URL-decodes a whole query string into `arena` in one pass, recording
/// each `name=value` pair (`+` is a space, as in form encoding; an invalid
/// escape is kept as written; empty pairs are skipped). `padded` is
/// scratch space.
///
/// The arena keeps each pair's first `=` and turns the `&` after it into
/// `,` (one is written after the last pair too), so that a pair with an
/// `=` reads `name=value,` from its name's start: its section of the
/// checksum's canonical form, copied whole.
///
/// The query moves sixteen bytes at a time: each block is copied whole,
/// and its `&`, `=`, `+` and `%` are handled where they landed. A decoded
/// escape shortens the text by two, and the bytes after it are copied
/// again, two places earlier, before the block goes on.
fn decode_query(query: &[u8], padded: &mut Vec<u8>, arena: &mut Vec<u8>, params: &mut Vec<Param>) {
    // Zeros (which need no decoding) after the query let every block and
    // every copy after an escape load whole.
    const PAD: usize = 48;
    padded.clear();
    padded.extend_from_slice(query);
    padded.resize(query.len() + PAD, 0);
    let base = arena.len();
    // Decoding never lengthens the text. The slack takes the last block,
    // the closing `,` and the zeros after it.
    arena.resize(base + query.len() + PAD + checksum::SECTION_SLACK, 0);
    let out = arena.as_mut_slice();
    // Input byte `p` lands at `base + p - lag`: escapes take two bytes out.
    let mut lag = 0;
    let mut name_start = base;
    let mut value_start: Option<usize> = None;
    let mut non_ascii = false;
    let mut finish = |end: usize, name_start: usize, value_start: Option<usize>, escaped_non_ascii: bool| {
        let (name, value) = match value_start {
            Some(v) => (name_start..v - 1, v..end),
            None if end > name_start => (name_start..end, end..end),
            None => return,
        };
        params.push(Param { name, value, escaped_non_ascii });
    };
    let mut i = 0;
    while i < query.len() {
        let block: &[u8; 16] = padded[i..i + 16].try_into().unwrap_or(&[0; 16]);
        out[base + i - lag..base + i - lag + 16].copy_from_slice(block);
        // An escape in the last two bytes reaches into the next block.
        let mut next = i + 16;
        let mut found = specials(block);
        while found != 0 {
            let p = i + found.trailing_zeros() as usize;
            found &= found - 1;
            let at = base + p - lag;
            match padded[p] {
                b'&' => {
                    out[at] = b',';
                    finish(at, name_start, value_start, non_ascii);
                    name_start = at + 1;
                    value_start = None;
                    non_ascii = false;
                }
                b'=' => {
                    value_start.get_or_insert(at + 1);
                }
                b'+' => out[at] = b' ',
                _ => {
                    if let Some(byte) = unescape(padded[p + 1], padded[p + 2]) {
                        out[at] = byte;
                        non_ascii |= !byte.is_ascii();
                        lag += 2;
                        out[at + 1..at + 17].copy_from_slice(&padded[p + 3..p + 19]);
                        next = next.max(p + 3);
                    }
                }
            }
        }
        i = next;
    }
    let w = base + query.len() - lag;
    finish(w, name_start, value_start, non_ascii);
    out[w] = b',';
    // Zeros after the text, for the canonical form's whole-block copies.
    arena.truncate(w + 1);
    arena.resize(w + 1 + checksum::SECTION_SLACK, 0);
}

/// Replaces invalid UTF-8 in a decoded value with U+FFFD, in place at the
/// arena's end; returns the new range. Only used when an escaped value
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
    if is_normal_id_in(arena, raw.clone()) {
        return Some(raw);
    }
    let parts = id_parts(&arena[raw.clone()])?;
    let start = arena.len();
    arena.extend_from_slice(b"0:");
    push_base36(arena, parts.timestamp);
    arena.push(b':');
    arena.extend_from_within(raw.start + parts.unique.start..raw.end);
    Some(start..arena.len())
}

/// A parsed pixel event whose checksum is not checked yet. The shard's
/// pipeline starts the duplicate memory's lookup (a cache miss) from
/// [`event`](Self::event) and then [`verify`](Self::verify)s, so that the
/// hashing runs while the memory's line is on its way.
#[derive(Debug)]
pub struct Unverified<'a> {
    event: Event<'a>,
    canonical: &'a [u8],
    checksum: Option<&'a str>,
}

impl<'a> Unverified<'a> {
    /// The event, flagged corrupt until verified.
    pub fn event(&self) -> &Event<'a> {
        &self.event
    }

    /// The event, flagged corrupt when its checksum does not match.
    pub fn verify(mut self) -> Event<'a> {
        self.event.corrupt = !checksum::verify(self.canonical, self.checksum);
        self.event
    }
}

impl PixelScratch {
    /// Parses the event in `req`'s query string.
    ///
    /// # Errors
    /// [`Rejected`] when the party id, session id or another required
    /// parameter is missing or invalid.
    pub fn parse<'a>(&'a mut self, req: &'a Request<'a>, source: SourceId) -> Result<Unverified<'a>, Rejected> {
        self.arena.clear();
        self.params.clear();
        self.canonical.clear();
        let query = req.query.unwrap_or("").as_bytes();
        decode_query(query, &mut self.padded, &mut self.arena, &mut self.params);
        // The first parameter of each single-letter name; `sections` stays
        // true while every name is a distinct letter written with an `=`,
        // so that the canonical form is the arena's sections in name order.
        let mut first: [Option<u16>; 26] = [None; 26];
        let mut sections = self.params.len() <= usize::from(u16::MAX);
        for (i, p) in self.params.iter().enumerate() {
            match letter(&self.arena[p.name.clone()]) {
                Some(slot) if first[slot].is_none() => {
                    first[slot] = Some(i as u16);
                    sections &= p.value.start == p.name.end + 1;
                }
                _ => sections = false,
            }
        }
        // Each name and value on its own: escapes can split a character
        // across two parameters (`a=%D6&%A1=`), which a check of the whole
        // arena passes (found by fuzz/pixel_query). A client sending
        // invalid UTF-8 gets its values repaired one by one.
        let valid = |r: &Range<usize>| std::str::from_utf8(&self.arena[r.clone()]).is_ok();
        let escaped = self.params.iter().any(|p| p.escaped_non_ascii);
        if escaped && !self.params.iter().all(|p| !p.escaped_non_ascii || valid(&p.name) && valid(&p.value)) {
            for i in 0..self.params.len() {
                let p = self.params[i].clone();
                self.params[i] = Param {
                    name: make_utf8(&mut self.arena, p.name),
                    value: make_utf8(&mut self.arena, p.value),
                    escaped_non_ascii: false,
                };
            }
            let valid_from = self.params.first().map_or(0, |p| p.name.start);
            self.arena.drain(..valid_from);
            for p in &mut self.params {
                p.name = p.name.start - valid_from..p.name.end - valid_from;
                p.value = p.value.start - valid_from..p.value.end - valid_from;
            }
            // The repaired copies are not followed by their `,`.
            sections = false;
        }
        let value = |c: u8| first[usize::from(c - b'a')].map(|i| self.params[usize::from(i)].value.clone());
        let (party_raw, session_raw) = (value(b'p'), value(b's'));
        // Looked up one by one: `[..].map(value)` goes through a generic
        // `try_map` that the compiler did not always inline (the whole
        // process counted about 220 instructions per request more when it
        // did not).
        let required = [value(b'v'), value(b'e'), value(b'c'), value(b'n'), value(b'f')];
        let optional = [
            value(b'l'),
            value(b'r'),
            value(b't'),
            value(b'u'),
            value(b'w'),
            value(b'h'),
            value(b'i'),
            value(b'j'),
            value(b'k'),
            value(b'x'),
        ];

        let arena = &self.arena;
        let params = &self.params;
        if sections {
            let x = usize::from(b'x' - b'a');
            let sections = first.iter().enumerate().filter(|&(slot, _)| slot != x).filter_map(|(_, i)| {
                let p = &params[usize::from((*i)?)];
                Some((p.name.start, p.value.end + 1))
            });
            checksum::canonical_form_of_sections(arena, sections, &mut self.canonical);
        } else {
            checksum::canonical_form(
                params.len(),
                |i| (&arena[params[i].name.clone()], &arena[params[i].value.clone()]),
                &mut self.order,
                &mut self.canonical,
            );
        }

        let party = party_raw.and_then(|r| normalised_id(&mut self.arena, r)).ok_or(Rejected::InvalidPartyId)?;
        let session = session_raw.and_then(|r| normalised_id(&mut self.arena, r)).ok_or(Rejected::InvalidSessionId)?;

        // Every range now points into valid UTF-8 (checked or repaired
        // above), so the arena is checked once and sliced. Without escapes
        // to non-ASCII bytes it is valid by construction, and is not
        // checked again (a tenth of the parse).
        let arena = if escaped {
            std::str::from_utf8(&self.arena).map_err(|_| Rejected::Incomplete)?
        } else {
            debug_assert!(std::str::from_utf8(&self.arena).is_ok());
            // SAFETY: the arena holds the query (a `str`) copied in runs cut
            // only at ASCII bytes, with ASCII in place of those bytes (`,`
            // for `&`, a space for `+`, and escapes, which all decoded to
            // ASCII as none was flagged `escaped_non_ascii`), then rendered
            // identifiers (ASCII) and copies of its own ranges cut at `:`.
            // Multi-byte characters are never split or altered.
            unsafe { std::str::from_utf8_unchecked(&self.arena) }
        };
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
        let event = Event {
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
            corrupt: true,
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
        };
        Ok(Unverified { event, canonical: &self.canonical, checksum: text(x) })
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

    fn decode(raw: &str) -> String {
        let (mut arena, mut params) = (Vec::new(), Vec::new());
        decode_query(format!("v={raw}").as_bytes(), &mut Vec::new(), &mut arena, &mut params);
        String::from_utf8_lossy(&arena[params[0].value.clone()]).into_owned()
    }

    #[test]
    fn splits_pairs_like_a_form_decoder() {
        let (mut arena, mut params) = (Vec::new(), Vec::new());
        decode_query(b"a=1&&b&c=x=y&=z&d%3D=2", &mut Vec::new(), &mut arena, &mut params);
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

    /// Decodes like a form decoder written the obvious way: split on `&`,
    /// then on the first `=`, then unescape.
    fn decode_naively(query: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let unescape = |s: &[u8]| {
            let mut out = Vec::new();
            let mut i = 0;
            while i < s.len() {
                let hex = |j: usize| s.get(j).and_then(|&b| (b as char).to_digit(16));
                match (s[i], hex(i + 1), hex(i + 2)) {
                    (b'%', Some(hi), Some(lo)) => {
                        out.push((hi * 16 + lo) as u8);
                        i += 3;
                        continue;
                    }
                    (b'+', ..) => out.push(b' '),
                    (b, ..) => out.push(b),
                }
                i += 1;
            }
            out
        };
        query
            .split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| match pair.iter().position(|&b| b == b'=') {
                Some(eq) => (unescape(&pair[..eq]), unescape(&pair[eq + 1..])),
                None => (unescape(pair), Vec::new()),
            })
            .collect()
    }

    #[test]
    fn decodes_every_split_of_words_like_the_obvious_decoder() {
        // Queries of up to 40 pieces, heavy in the bytes that matter (and
        // with raw UTF-8), so that each lands at every offset of a word and
        // in the tail.
        const PIECES: [&str; 10] = ["a", "b", "=", "&", "%", "+", "2F", "%e9", "é", "x"];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..40 {
            for _ in 0..200 {
                let query: Vec<u8> = (0..len)
                    .flat_map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        PIECES[(seed % PIECES.len() as u64) as usize].bytes()
                    })
                    .collect();
                let (mut arena, mut params) = (vec![b'#'; 3], Vec::new());
                decode_query(&query, &mut Vec::new(), &mut arena, &mut params);
                let got: Vec<(Vec<u8>, Vec<u8>)> =
                    params.iter().map(|p| (arena[p.name.clone()].to_vec(), arena[p.value.clone()].to_vec())).collect();
                assert_eq!(got, decode_naively(&query), "{}", String::from_utf8_lossy(&query));
                for p in params.iter().filter(|p| !p.escaped_non_ascii) {
                    let valid = |r: &Range<usize>| std::str::from_utf8(&arena[r.clone()]).is_ok();
                    assert!(valid(&p.name) && valid(&p.value), "unflagged invalid UTF-8 in {query:?}");
                }
            }
        }
    }

    #[test]
    fn the_sections_of_the_arena_make_the_same_canonical_form_as_the_pairs() {
        let tag = "p=0%3Ai1t84hgy%3Aa&s=0%3Ai1t84hgy%3Ab&v=v%2B1&e=e&c=loyw3v28&n=t&f=f&l=https%3A%2F%2Fx%2F%3Fq%3Da%26b&t=page+View&x=1";
        for query in [
            tag.to_owned(),
            format!("{tag}&u=%C3%A9"),
            format!("{tag}&w="),
            format!("{tag}&h"),
            format!("{tag}&t=twice"),
            format!("{tag}&zz=long"),
            format!("{tag}&&&"),
            format!("%70=0%3Aa%3Ab&{tag}"),
        ] {
            let req = Request::test_get("/csc-event", &query);
            let mut scratch = PixelScratch::default();
            let parsed = scratch.parse(&req, SourceId(0)).unwrap();
            let pairs = decode_naively(query.as_bytes());
            let (mut order, mut want) = (Vec::new(), Vec::new());
            checksum::canonical_form(pairs.len(), |i| (&pairs[i].0, &pairs[i].1), &mut order, &mut want);
            assert_eq!(String::from_utf8_lossy(parsed.canonical), String::from_utf8_lossy(&want), "{query}");
        }
    }

    #[test]
    fn the_block_search_finds_what_a_byte_by_byte_search_finds() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let block: [u8; 16] = std::array::from_fn(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                b"&=%+a0\xff\x25\x26\x2a\x3c\x3e\xa6"[(seed % 13) as usize]
            });
            assert_eq!(specials(&block), specials_bytewise(&block), "{block:?}");
        }
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
        let req = Request::test_get("/csc-event", query);
        let mut scratch = PixelScratch::default();
        f(scratch.parse(&req, SourceId(0)).map(Unverified::verify));
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
