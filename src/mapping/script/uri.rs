//! `parse ... to uri`: URIs split the way `java.net.URI` splits them, so
//! scripts see the same parts: relative references parse, a host that is
//! not a valid server name leaves `host()` and `port()` absent, characters
//! Java refuses make the whole value absent, and the decoded parts turn
//! `%XX` into UTF-8 but leave `+` alone. The `url` crate follows the WHATWG
//! rules instead (it normalises, and refuses relative references), so this
//! is our own.

use std::borrow::Cow;
use std::ops::Range;

/// A parsed URI: ranges into the original text.
#[derive(Debug, Clone)]
pub struct Uri<'a> {
    text: Cow<'a, str>,
    scheme: Option<Range<usize>>,
    host: Option<Range<usize>>,
    port: Option<i32>,
    path: Option<Range<usize>>,
    query: Option<Range<usize>>,
    fragment: Option<Range<usize>>,
}

const UNRESERVED_PUNCT: &[u8] = b"-_.!~*'()";

/// `unreserved | reserved | escaped | other` of RFC 2396 as Java reads it,
/// with `extra` allowed on top of unreserved, `%` and non-ASCII.
fn legal(s: &str, extra: &[u8]) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit) && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)) {
                return false;
            }
            i += 3;
            continue;
        }
        let ok = c.is_ascii_alphanumeric() || UNRESERVED_PUNCT.contains(&c) || extra.contains(&c) || c >= 0x80;
        if !ok {
            return false;
        }
        i += 1;
    }
    // Non-ASCII is "other" to Java, except control and space characters.
    s.chars().all(|c| c.is_ascii() || !(c.is_control() || c.is_whitespace()))
}

const PATH: &[u8] = b";/:@&=+$,";
const URIC: &[u8] = b";/?:@&=+$,[]";

fn is_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.trim_end_matches('.').split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        })
}

impl<'a> Uri<'a> {
    /// Parses `text`; `None` where `java.net.URI` throws.
    pub fn parse(text: Cow<'a, str>) -> Option<Self> {
        let s: &str = &text;
        let mut uri = Uri {
            scheme: None,
            host: None,
            port: None,
            path: None,
            query: None,
            fragment: None,
            text: Cow::Borrowed(""),
        };
        let (body_end, fragment) = match s.find('#') {
            Some(h) => (h, Some(h + 1..s.len())),
            None => (s.len(), None),
        };
        if let Some(f) = &fragment {
            if !legal(&s[f.clone()], URIC) {
                return None;
            }
        }
        uri.fragment = fragment;
        let mut rest = 0..body_end;
        if let Some(colon) = s[..body_end].find([':', '/', '?']).filter(|i| s.as_bytes()[*i] == b':') {
            let scheme = &s[..colon];
            let b = scheme.as_bytes();
            if b.is_empty()
                || !b[0].is_ascii_alphabetic()
                || !b.iter().all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c))
            {
                return None;
            }
            uri.scheme = Some(0..colon);
            rest = colon + 1..body_end;
            if !s[rest.clone()].starts_with('/') {
                // Opaque (`mailto:x`): no path, query or authority.
                if rest.is_empty() || !legal(&s[rest.clone()], URIC) {
                    return None;
                }
                uri.text = text;
                return Some(uri);
            }
        }
        let mut at = rest.start;
        if s[rest.clone()].starts_with("//") {
            let auth_start = at + 2;
            let auth_end = s[auth_start..rest.end].find(['/', '?']).map_or(rest.end, |i| auth_start + i);
            uri.parse_authority(s, auth_start..auth_end)?;
            at = auth_end;
        }
        let path_end = s[at..rest.end].find('?').map_or(rest.end, |i| at + i);
        if !legal(&s[at..path_end], PATH) {
            return None;
        }
        uri.path = Some(at..path_end);
        if path_end < rest.end {
            let q = path_end + 1..rest.end;
            if !legal(&s[q.clone()], URIC) {
                return None;
            }
            uri.query = Some(q);
        }
        uri.text = text;
        Some(uri)
    }

    /// `[userinfo@]host[:port]`; not a valid server leaves host and port
    /// absent (a "registry" authority to Java) when its characters are legal.
    fn parse_authority(&mut self, s: &str, r: Range<usize>) -> Option<()> {
        let auth = &s[r.clone()];
        if auth.is_empty() {
            return Some(());
        }
        let host_start = auth.rfind('@').map_or(0, |i| i + 1);
        let hostport = &auth[host_start..];
        let (host, port) = if hostport.starts_with('[') {
            let close = hostport.find(']')?;
            let v6 = &hostport[1..close];
            if v6.parse::<std::net::Ipv6Addr>().is_err() {
                return None;
            }
            (0..close + 1, hostport[close + 1..].strip_prefix(':'))
        } else {
            match hostport.rfind(':') {
                Some(c) => (0..c, Some(&hostport[c + 1..])),
                None => (0..hostport.len(), None),
            }
        };
        let host_text = &hostport[host.clone()];
        let port_ok = port.is_none_or(|p| p.bytes().all(|c| c.is_ascii_digit()));
        let server = port_ok && (host_text.starts_with('[') || is_hostname(host_text));
        if server {
            let base = r.start + host_start;
            self.host = Some(base + host.start..base + host.end);
            self.port = match port {
                Some(p) if !p.is_empty() => Some(p.parse().ok()?),
                _ => None,
            };
            Some(())
        } else if legal(auth, b";:@&=+$,") {
            Some(())
        } else {
            None
        }
    }

    fn part(&self, r: &Option<Range<usize>>) -> Option<&str> {
        r.as_ref().map(|r| &self.text[r.clone()])
    }

    /// `scheme()`
    pub fn scheme(&self) -> Option<&str> {
        self.part(&self.scheme)
    }

    /// `host()`
    pub fn host(&self) -> Option<&str> {
        self.part(&self.host)
    }

    /// `port()`
    pub fn port(&self) -> Option<i32> {
        self.port
    }

    /// `rawPath()`
    pub fn raw_path(&self) -> Option<&str> {
        self.part(&self.path)
    }

    /// `rawQueryString()`
    pub fn raw_query(&self) -> Option<&str> {
        self.part(&self.query)
    }

    /// `rawFragment()`
    pub fn raw_fragment(&self) -> Option<&str> {
        self.part(&self.fragment)
    }
}

/// `%XX` decoded as UTF-8 (bad sequences become U+FFFD); `+` stays, and
/// so does a `%` without two hex digits.
pub fn percent_decode(s: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

/// `query()`: the raw query split on `&`, names and values form-decoded
/// (`+` is a space). A piece without `=` has the value `""`; an empty
/// name is kept, as the original kept it. `None` for a malformed `%`,
/// where the original's decoder threw.
pub fn parse_query(raw: &str) -> Option<Vec<(String, Vec<String>)>> {
    let decode = |s: &str| -> Option<String> {
        let plus = s.replace('+', " ");
        let b = plus.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                s.get(i + 1..i + 3).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))?;
                i += 3;
            } else {
                i += 1;
            }
        }
        Some(percent_decode(&plus).into_owned())
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for piece in raw.split('&') {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let (k, v) = (decode(k)?, decode(v)?);
        match out.iter_mut().find(|(name, _)| *name == k) {
            Some((_, values)) => values.push(v),
            None => out.push((k, vec![v])),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Uri<'_>> {
        Uri::parse(Cow::Borrowed(s))
    }

    #[test]
    fn parts_like_java_net_uri() {
        let u = p("https://www.example.com:8080/path/to/resource/page.html?q=multiple+words+%24%23%25%26&p=10&p=20")
            .unwrap();
        assert_eq!(u.scheme(), Some("https"));
        assert_eq!(u.host(), Some("www.example.com"));
        assert_eq!(u.port(), Some(8080));
        assert_eq!(u.raw_path(), Some("/path/to/resource/page.html"));
        assert_eq!(percent_decode(u.raw_query().unwrap()), "q=multiple+words+$#%&&p=10&p=20");
        let q = parse_query(u.raw_query().unwrap()).unwrap();
        assert_eq!(q[0], ("q".into(), vec!["multiple words $#%&".into()]));
        assert_eq!(q[1], ("p".into(), vec!["10".into(), "20".into()]));

        let r = p("http://example.com/path/?q=divolte#/client/side/path?x=value&y=42").unwrap();
        assert_eq!(r.raw_fragment(), Some("/client/side/path?x=value&y=42"));
        assert_eq!(r.port(), None);
        let frag = p(r.raw_fragment().unwrap()).unwrap();
        assert_eq!(
            (frag.scheme(), frag.raw_path(), frag.raw_query()),
            (None, Some("/client/side/path"), Some("x=value&y=42"))
        );
    }

    #[test]
    fn java_quirks() {
        assert!(p("http://example.com/a b").is_none(), "space");
        assert!(p("http://example.com/%zz").is_none(), "bad escape");
        assert!(p("http://example.com/{x}").is_none());
        let u = p("http://under_score.example.com:80/x").unwrap();
        assert_eq!((u.host(), u.port(), u.raw_path()), (None, None, Some("/x")), "not a server name");
        let u = p("http://[::1]:9/").unwrap();
        assert_eq!((u.host(), u.port()), (Some("[::1]"), Some(9)));
        let u = p("http://example.com/caf%C3%A9/ü").unwrap();
        assert_eq!(percent_decode(u.raw_path().unwrap()), "/café/ü");
        assert!(p("mailto:someone@example.com").unwrap().raw_path().is_none());
    }

    #[test]
    fn funky_query_strings() {
        let q = parse_query("a=value&=42&b=&d=word&c&=bla").unwrap();
        let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("a"), Some(vec!["value".into()]));
        assert_eq!(get(""), Some(vec!["42".into(), "bla".into()]));
        assert_eq!(get("b"), Some(vec!["".into()]));
        assert_eq!(get("c"), Some(vec!["".into()]));
        assert!(parse_query("a=%zz").is_none());
    }
}
