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
    normal_base36(s.as_bytes()).or_else(|| i64::from_str_radix(s, 36).ok())
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
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = DIGITS[(v % 36) as usize];
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
    /// The text is how the original renders the timestamp
    /// (`Long.toString(n, 36)`), so the identifier is already normalised.
    pub normal: bool,
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
    Some(IdParts { timestamp, unique: 3 + colon..s.len(), normal: normal.is_some() })
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
    text.iter().try_fold(0i64, |n, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return None,
        };
        Some(n * 36 + i64::from(digit))
    })
}

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
        assert!(!parts.normal);
        let normal = id_parts(b"0:i1t84hgy:x").unwrap();
        assert_eq!(normal.timestamp, parts.timestamp);
        assert!(normal.normal);
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
            if let Some(parts) = id_parts(format!("0:{text}:u").as_bytes()) {
                assert_eq!(parts.timestamp, general.unwrap(), "{text}");
                assert!(!parts.normal || rendered == Some(true), "{text} is not normal");
                let tag_form = rendered == Some(true) && !text.starts_with('-') && text.len() <= 12;
                assert!(parts.normal || !tag_form, "{text} is normal");
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
        for n in [0i64, 35, 36, -1, -1_234_567, i64::MAX, i64::MIN + 1] {
            let mut out = Vec::new();
            push_base36(&mut out, n);
            assert_eq!(parse_base36_i64(std::str::from_utf8(&out).unwrap()), Some(n));
        }
        assert_eq!(parse_base36_i32("1ak"), Some(1676));
        assert_eq!(parse_base36_i32("1.i"), None, "integers stay integers");
        assert_eq!(parse_base36_f64("1.i"), Some(1.5));
        assert_eq!(parse_base36_f64("2"), Some(2.0));
        assert_eq!(parse_base36_f64("-0.9"), Some(-0.25));
        assert_eq!(parse_base36_f64("2.mi"), Some(2.0 + 22.0 / 36.0 + 18.0 / 1296.0));
        assert_eq!(parse_base36_f64("."), None);
        assert_eq!(parse_base36_f64("1.?"), None);
    }
}
