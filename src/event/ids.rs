//! Divolte identifiers (`0:<timestamp base 36>:<unique id>`) and base-36 numbers.
//!
//! The original parses the timestamp with Java's `Long.parseLong(x, 36)` and
//! stores the identifier re-rendered with `Long.toString(ts, 36)`, so `+abc`
//! or upper-case digits come out normalised. The unique part is opaque.

use std::ops::Range;

/// Parses a base-36 `i64` the way Java's `Long.parseLong(x, 36)` does:
/// optional sign, digits and letters of either case, no overflow.
pub fn parse_base36_i64(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    // A checksum is negative half the time: its digits are in normal form
    // too, and take the shortcut rather than the general parse.
    let normal = match s.as_bytes() {
        [b'-', digits @ ..] => normal_base36(digits).map(|n| -n),
        digits => normal_base36(digits),
    };
    normal.or_else(|| i64::from_str_radix(s, 36).ok())
}

/// Parses a base-36 `i32` like Java's `Integer.parseInt(x, 36)`.
pub fn parse_base36_i32(s: &str) -> Option<i32> {
    if s.is_empty() {
        return None;
    }
    match normal_base36(s.as_bytes()) {
        Some(n) => i32::try_from(n).ok(),
        None => i32::from_str_radix(s, 36).ok(),
    }
}

/// Parses a base-36 number with an optional fraction, as JavaScript's
/// `Number.prototype.toString(36)` writes it (`1.5` is `"1.i"`). The
/// original parsed only integers and lost fractional device pixel ratios.
pub fn parse_base36_f64(s: &str) -> Option<f64> {
    // What the tag sends is nearly always a small integer in normal form.
    // Up to ten digits (below 2^53) it is exact as one conversion, just as
    // the loop below computes it.
    if s.len() <= 10 {
        if let Some(n) = normal_base36(s.as_bytes()) {
            return Some(n as f64);
        }
    }
    let (negative, unsigned) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in int.chars() {
        value = value * 36.0 + f64::from(c.to_digit(36)?);
    }
    let mut scale = 1.0 / 36.0;
    for c in frac.chars() {
        value += f64::from(c.to_digit(36)?) * scale;
        scale /= 36.0;
    }
    Some(if negative { -value } else { value })
}

/// Formats `n` in lower-case base 36, like Java's `Long.toString(n, 36)`,
/// into `buf`; returns the used tail.
pub fn format_base36(n: i64, buf: &mut [u8; 14]) -> &[u8] {
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = ALPHABET[(v % 36) as usize];
        v /= 36;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Appends `n` in lower-case base 36.
pub fn push_base36(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(format_base36(n, &mut [0; 14]));
}

/// A parsed identifier, borrowing its unique part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DivolteId<'a> {
    /// Milliseconds since the epoch when the identifier was made.
    pub timestamp: i64,
    /// The unique part (not validated, as in the original).
    pub unique: &'a str,
}

impl<'a> DivolteId<'a> {
    /// Parses `0:<ts36>:<id>`; `None` when the version is not `0`, the
    /// timestamp is not base 36, or there are not exactly three parts.
    pub fn parse(s: &'a str) -> Option<Self> {
        let parts = id_parts(s.as_bytes())?;
        Some(Self { timestamp: parts.timestamp, unique: &s[parts.unique] })
    }
}

/// The parts of an identifier `0:<ts36>:<id>`, as [`id_parts`] finds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdParts {
    /// The timestamp.
    pub timestamp: i64,
    /// Where the unique part is.
    pub unique: Range<usize>,
}

/// Whether `s` is an identifier the original stores as it is: `0:`, a
/// timestamp as it renders them ([`normal_base36`]'s text), `:`, and a
/// unique part without a colon. The tag writes every identifier so; only
/// the others need [`id_parts`] and a rendering. Reads no value: checking
/// the shape costs about half as much as parsing it.
pub fn is_normal_id(s: &[u8]) -> bool {
    let Some(rest) = s.strip_prefix(b"0:") else {
        return false;
    };
    let digits = rest.iter().take(NORMAL_DIGITS).take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'z')).count();
    let leading_zero = rest.first() == Some(&b'0') && digits > 1;
    digits > 0 && !leading_zero && rest.get(digits) == Some(&b':') && !has_colon(&rest[digits + 1..])
}

/// [`is_normal_id`] of `text[id]`. An identifier the tag writes is 16 to
/// 48 bytes long; when `text` holds 48 bytes from its start, the shape is
/// read from three 16-byte vectors at once (the identifiers' share of
/// the parse went from 456 to 188 instructions per event), else bytewise.
pub fn is_normal_id_in(text: &[u8], id: Range<usize>) -> bool {
    #[cfg(target_arch = "x86_64")]
    if (16..=VECTOR_ID).contains(&id.len()) && id.start + VECTOR_ID <= text.len() {
        let block: &[u8; VECTOR_ID] = text[id.start..id.start + VECTOR_ID].try_into().unwrap_or(&[0; VECTOR_ID]);
        return is_normal_id_vector(block, id.len());
    }
    is_normal_id(&text[id])
}

/// The longest identifier [`is_normal_id_in`] checks by vector.
#[cfg(target_arch = "x86_64")]
const VECTOR_ID: usize = 48;

/// [`is_normal_id`] of `block[..len]`, 16 <= `len` <= 48: one mask of the
/// colons and one of the timestamp's digit class, compared whole.
#[cfg(target_arch = "x86_64")]
fn is_normal_id_vector(block: &[u8; VECTOR_ID], len: usize) -> bool {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 target, and the three loads read
    // exactly the 48 bytes of `block` (unaligned).
    let (colons, digits) = unsafe {
        let load = |at: usize| _mm_loadu_si128(block.as_ptr().add(at).cast());
        let (a, b, c) = (load(0), load(16), load(32));
        let colon = _mm_set1_epi8(b':' as i8);
        let mask = |v| _mm_movemask_epi8(_mm_cmpeq_epi8(v, colon)) as u32 as u64;
        let colons = mask(a) | mask(b) << 16 | mask(c) << 32;
        // Signed compares: bytes from 0x80 up are negative, below '0'.
        let within = |lo: u8, hi: u8| {
            _mm_and_si128(
                _mm_cmpgt_epi8(a, _mm_set1_epi8(lo as i8 - 1)),
                _mm_cmpgt_epi8(_mm_set1_epi8(hi as i8 + 1), a),
            )
        };
        (colons, _mm_movemask_epi8(_mm_or_si128(within(b'0', b'9'), within(b'a', b'z'))) as u32)
    };
    let colons = colons & ((1 << len) - 1);
    // `0:` first, then exactly one more colon, after one to twelve digits.
    let second = colons & !0b10;
    let end = second.trailing_zeros();
    if block[0] != b'0'
        || colons & 0b10 == 0
        || !second.is_power_of_two()
        || !(3..=2 + NORMAL_DIGITS as u32).contains(&end)
    {
        return false;
    }
    // Bits 2 to `end - 1`: the timestamp's digits, none of them a leading
    // zero unless it is the only one.
    let timestamp = (1u32 << end) - 4;
    digits & timestamp == timestamp && (block[2] != b'0' || end == 3)
}

/// Whether `s` holds a `:`, eight bytes at a time: a unique part is a
/// few words long, too short for a vector search to pay for its setup.
fn has_colon(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let mut words = s.chunks_exact(8);
    // Some byte of `x` is zero (a colon) exactly when this is not: the
    // lowest zero byte borrows into its own high bit, which was clear.
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let colons = u64::from_ne_bytes([b':'; 8]);
    words.by_ref().any(|w| zero_in(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])) ^ colons))
        || words.remainder().contains(&b':')
}

/// The parts of the identifier `0:<ts36>:<id>` in `s`, as [`DivolteId::parse`]
/// takes them. Works on bytes, so a caller holding bytes need not check UTF-8.
pub fn id_parts(s: &[u8]) -> Option<IdParts> {
    let rest = s.strip_prefix(b"0:")?;
    // The tag writes timestamps in normal form: read it while looking for
    // the colon, and search only for anything else.
    let (colon, normal) = match normal_base36_before_colon(rest) {
        Some((n, colon)) => (colon, Some(n)),
        None => (memchr::memchr(b':', rest)?, None),
    };
    if memchr::memchr(b':', &rest[colon + 1..]).is_some() {
        return None;
    }
    let timestamp = match normal {
        Some(n) => n,
        None => parse_base36_i64(std::str::from_utf8(&rest[..colon]).ok()?)?,
    };
    Some(IdParts { timestamp, unique: 3 + colon..s.len() })
}

/// [`normal_base36`] of the text before the first colon of `s`, and where
/// that colon is; `None` when that text is not in normal form.
fn normal_base36_before_colon(s: &[u8]) -> Option<(i64, usize)> {
    let colon = s.iter().take(NORMAL_DIGITS + 1).position(|&b| b == b':')?;
    Some((normal_base36(&s[..colon])?, colon))
}

/// The most digits [`normal_base36`] reads: 36^12 < 2^63, so it cannot
/// overflow.
const NORMAL_DIGITS: usize = 12;

/// The value of `text` when it is written as the original renders numbers
/// (`Long.toString(n, 36)`: lower-case digits, no sign, no leading zero),
/// as the tag writes them, in at most [`NORMAL_DIGITS`] digits. `None` for
/// anything else, which the general parse takes.
fn normal_base36(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > NORMAL_DIGITS || text[0] == b'0' && text.len() > 1 {
        return None;
    }
    let mut n = 0i64;
    for &b in text {
        let digit = NORMAL_DIGIT[usize::from(b)];
        if digit == NOT_A_DIGIT {
            return None;
        }
        n = n * 36 + i64::from(digit);
    }
    Some(n)
}

/// The digits of base 36 as the original writes them, by value.
const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// [`NORMAL_DIGIT`]'s mark for a byte that is not a digit.
const NOT_A_DIGIT: u8 = 0xff;

/// The value of each digit of normal form (`0`-`9`, `a`-`z`), and
/// [`NOT_A_DIGIT`] for other bytes: one load per digit where comparing
/// with both ranges took a dozen instructions.
const NORMAL_DIGIT: [u8; 256] = {
    let mut table = [NOT_A_DIGIT; 256];
    let mut i = 0;
    while i < 36 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_original_test_identifier() {
        let id = DivolteId::parse("0:16:abc").unwrap();
        assert_eq!(id.timestamp, 42);
        assert_eq!(id.unique, "abc");
    }

    #[test]
    fn recognises_identifiers_in_normal_form() {
        let raw = b"0:+I1T84HGY:x";
        let parts = id_parts(raw).unwrap();
        assert_eq!(&raw[parts.unique], b"x");
        assert!(!is_normal_id(raw));
        let normal = b"0:i1t84hgy:x";
        assert_eq!(id_parts(normal).unwrap().timestamp, parts.timestamp);
        assert!(is_normal_id(normal));
        for not_an_id in [&b"0:i1t84hgy"[..], b"0:i1t84hgy:x:y", b"1:i1t84hgy:x", b"0::x", b"0:"] {
            assert!(!is_normal_id(not_an_id), "{}", String::from_utf8_lossy(not_an_id));
        }
    }

    #[test]
    fn the_normal_form_shortcut_agrees_with_the_general_parse() {
        for text in
            ["0", "00", "1", "i1t84hgy", "loyw3v28", "zzzzzzzzzzzz", "1zzzzzzzzzzzz", "I1T84HGY", "+1", "-1", "-0"]
        {
            let general = parse_base36_i64(text);
            let rendered = general.map(|n| format_base36(n, &mut [0; 14]) == text.as_bytes());
            match normal_base36(text.as_bytes()) {
                Some(n) => assert_eq!((general, rendered), (Some(n), Some(true)), "{text}"),
                // Negative and long timestamps take the general parse.
                None => assert!(rendered != Some(true) || text.len() > 12 || text.starts_with('-'), "{text} is normal"),
            }
            // An identifier said to be normal has its timestamp's
            // rendering as text; every one the tag writes (no sign, at most
            // twelve digits) is said to be. Others are rendered again, to
            // the same text when it was normal.
            let id = format!("0:{text}:u");
            let normal = is_normal_id(id.as_bytes());
            match id_parts(id.as_bytes()) {
                Some(parts) => {
                    assert_eq!(parts.timestamp, general.unwrap(), "{text}");
                    assert!(!normal || rendered == Some(true), "{text} is not normal");
                    let tag_form = rendered == Some(true) && !text.starts_with('-') && text.len() <= 12;
                    assert!(normal || !tag_form, "{text} is normal");
                }
                None => assert!(!normal, "{text} is no identifier"),
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_vector_shape_check_agrees_with_the_bytewise_one() {
        // Identifiers of every length the vector takes, built from pieces
        // that sit on each side of its digit class and colon bounds.
        const PIECES: [&[u8]; 12] = [b"0", b"1", b"9", b"a", b"z", b"/", b"{", b"A", b":", b"0:", b"\xc3\xa9", b"`"];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut normal = 0;
        for _ in 0..200_000 {
            let mut id = b"0:".to_vec();
            let digits = next(15);
            (0..digits).for_each(|_| id.extend_from_slice(if next(8) == 0 { PIECES[next(12)] } else { b"k" }));
            id.push(b':');
            while id.len() < 16 + next(40) {
                id.extend_from_slice(if next(6) == 0 { PIECES[next(12)] } else { b"u" });
            }
            if next(10) == 0 {
                let at = next(id.len());
                id[at] = PIECES[next(12)][0];
            }
            let len = id.len();
            // What follows the identifier in the arena must not matter.
            id.extend_from_slice(b"::0:0:1:::");
            id.resize(len + VECTOR_ID, b':');
            let want = is_normal_id(&id[..len]);
            normal += usize::from(want);
            assert_eq!(is_normal_id_in(&id, 0..len), want, "{}", String::from_utf8_lossy(&id[..len]));
        }
        assert!(normal > 10_000, "the cases reach normal identifiers: {normal}");
    }

    #[test]
    fn finds_a_colon_anywhere_in_words_and_their_remainder() {
        for len in 0..40 {
            let plain = vec![b'a'; len];
            assert!(!has_colon(&plain));
            for at in 0..len {
                let mut with = plain.clone();
                with[at] = b':';
                assert!(has_colon(&with), "{len} {at}");
                // Bytes next to a colon in value (9 and ;) are not one.
                with[at] = if at % 2 == 0 { b'9' } else { b';' };
                assert!(!has_colon(&with), "{len} {at}");
            }
        }
    }

    #[test]
    fn accepts_an_empty_unique_part_and_colons_nowhere_else() {
        assert_eq!(DivolteId::parse("0:1:").unwrap().unique, "");
        assert!(DivolteId::parse("1:16:abc").is_none());
        assert!(DivolteId::parse("0:16").is_none());
        assert!(DivolteId::parse("0:16:a:b").is_none());
        assert!(DivolteId::parse("0::abc").is_none());
        assert!(DivolteId::parse("0:zzzzzzzzzzzzzzzz:abc").is_none(), "overflow");
    }

    #[test]
    fn base36_round_trips_like_java() {
        for n in [0i64, 35, 36, -1, -1_234_567, -(36i64.pow(12) - 1), -36i64.pow(12), i64::MAX, i64::MIN + 1] {
            let mut out = Vec::new();
            push_base36(&mut out, n);
            assert_eq!(parse_base36_i64(std::str::from_utf8(&out).unwrap()), Some(n));
        }
        for (text, n) in [("-0", 0), ("-00", 0), ("-01", 1), ("-z", 35), ("-", 0), ("--1", 0), ("-+1", 0), ("-A", 10)] {
            let java = if text.len() > 1 && !text[1..].starts_with(['-', '+']) { Some(-n) } else { None };
            assert_eq!(parse_base36_i64(text), java, "{text}");
        }
        assert_eq!(parse_base36_i32("1ak"), Some(1676));
        assert_eq!(parse_base36_i32("1.i"), None, "integers stay integers");
        assert_eq!(parse_base36_f64("1.i"), Some(1.5));
        assert_eq!(parse_base36_f64("2"), Some(2.0));
        assert_eq!(parse_base36_f64("-0.9"), Some(-0.25));
        assert_eq!(parse_base36_f64("2.mi"), Some(2.0 + 22.0 / 36.0 + 18.0 / 1296.0));
        assert_eq!(parse_base36_f64("."), None);
        // Integers in normal form take a shortcut up to ten digits; the
        // digit loop gives the same value on both sides of that bound.
        for digits in 1..=13 {
            let text = "z".repeat(digits);
            let looped = text.bytes().fold(0f64, |v, b| v * 36.0 + f64::from(NORMAL_DIGIT[usize::from(b)]));
            assert_eq!(parse_base36_f64(&text), Some(looped), "{text}");
            assert_eq!(parse_base36_f64(&format!("+{text}")), Some(looped), "+{text}");
        }
        assert_eq!(parse_base36_f64("1.?"), None);
    }
}
