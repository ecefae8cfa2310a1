//! A parsed request: a borrowed view of the connection's read buffer.

use std::net::SocketAddr;
use std::time::SystemTime;

/// Request methods the collector routes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD` (answered like GET, without a body)
    Head,
    /// `POST`
    Post,
    /// Anything else; the raw token is in [`Request::method_str`].
    Other,
}

impl Method {
    pub(crate) fn from_token(token: &str) -> Self {
        match token {
            "GET" => Self::Get,
            "HEAD" => Self::Head,
            "POST" => Self::Post,
            _ => Self::Other,
        }
    }
}

/// One complete request. Everything borrows from the connection's buffers,
/// so building it allocates nothing.
#[derive(Debug)]
pub struct Request<'a> {
    /// Routed method.
    pub method: Method,
    /// The method token as sent (for `405` messages).
    pub method_str: &'a str,
    /// Path with `.` and `..` segments resolved, without the query.
    pub path: &'a str,
    /// Raw query string after `?`, if any.
    pub query: Option<&'a str>,
    /// `0` for HTTP/1.0, `1` for HTTP/1.1.
    pub minor_version: u8,
    /// Headers in arrival order.
    pub headers: &'a [httparse::Header<'a>],
    /// The body, de-chunked.
    pub body: &'a [u8],
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The peer address as text (formatted once per connection).
    pub peer_host: &'a str,
    /// When the request was complete, as wall-clock time.
    pub received: SystemTime,
}

#[cfg(test)]
impl<'a> Request<'a> {
    /// A GET of `path?query` from 192.0.2.1 (as an IPv4-mapped address),
    /// received now: what the unit tests of later stages parse.
    pub fn test_get(path: &'a str, query: &'a str) -> Self {
        Request {
            method: Method::Get,
            method_str: "GET",
            path,
            query: Some(query),
            minor_version: 1,
            headers: &[],
            body: &[],
            peer: SocketAddr::from(([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201], 1)),
            peer_host: "192.0.2.1",
            received: SystemTime::now(),
        }
    }
}

impl<'a> Request<'a> {
    /// Values of every header named `name` (lower case; matched without
    /// regard to case), in order.
    pub fn headers_named(&self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        debug_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{name} is asked for in lower case");
        let headers = self.headers;
        // Only the sent name is folded: `name` is lower case already.
        let named = move |h: &&httparse::Header<'a>| {
            h.name.len() == name.len() && h.name.bytes().zip(name.bytes()).all(|(a, b)| a.to_ascii_lowercase() == b)
        };
        headers.iter().filter(named).map(|h| h.value)
    }

    /// The first header named `name`, as text if it is valid UTF-8.
    pub fn header(&self, name: &'a str) -> Option<&'a str> {
        self.headers_named(name).next().and_then(|v| {
            // Header values are nearly always ASCII, which a vector check
            // finds in fewer instructions than UTF-8 validation (the user
            // agent's lookup went from 314 to 171).
            if is_ascii(v) {
                // SAFETY: ASCII is valid UTF-8.
                Some(unsafe { std::str::from_utf8_unchecked(v) })
            } else {
                std::str::from_utf8(v).ok()
            }
        })
    }
}

/// Whether `bytes` is all ASCII, sixteen bytes at a time with SSE2 (the
/// last sixteen bytes loaded on their own, overlapping the block before
/// them unless the length is a multiple of sixteen). The standard
/// library's word-wise check cost more than validating the text as UTF-8.
fn is_ascii(bytes: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if bytes.len() >= 16 {
        use std::arch::x86_64::{_mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128};
        // SAFETY: SSE2 is part of every x86_64 target; each load reads
        // sixteen bytes of `bytes` (unaligned): a whole block, or the last
        // sixteen.
        return unsafe {
            let load = |at: usize| _mm_loadu_si128(bytes.as_ptr().add(at).cast());
            let mut high = load(bytes.len() - 16);
            for at in (0..bytes.len() - 16).step_by(16) {
                high = _mm_or_si128(high, load(at));
            }
            // A byte's high bit is set exactly when it is not ASCII.
            _mm_movemask_epi8(high) == 0
        };
    }
    bytes.is_ascii()
}

/// Resolves `.` and `..` segments the way the original's canonical-path
/// handler does, so `/a/../csc-event` routes like `/csc-event`. Paths
/// without dot segments (nearly all) are returned untouched.
pub fn canonical_path<'a>(path: &'a str, scratch: &'a mut String) -> &'a str {
    // Each `.` found by memchr, then the byte before it: `str::contains`
    // sets up a substring search for every request, and a scan of byte
    // pairs cost more than finding no `.` at all.
    let bytes = path.as_bytes();
    if !memchr::memchr_iter(b'.', bytes).any(|dot| dot > 0 && bytes[dot - 1] == b'/') {
        return path;
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/').skip(1) {
        match seg {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    scratch.clear();
    for s in &segments {
        scratch.push('/');
        scratch.push_str(s);
    }
    let trailing = path.ends_with("/.") || path.ends_with("/..");
    if scratch.is_empty() || trailing {
        scratch.push('/');
    }
    scratch
}

#[cfg(test)]
mod tests {
    use super::{canonical_path, is_ascii, Request};

    #[test]
    fn the_vector_ascii_check_finds_any_high_byte() {
        for len in 0..70 {
            let mut text = vec![b'a'; len];
            assert!(is_ascii(&text), "{len}");
            for at in 0..len {
                text[at] = 0x80;
                assert!(!is_ascii(&text), "{len} {at}");
                text[at] = 0x7f;
                assert!(is_ascii(&text), "{len} {at}");
            }
        }
    }

    #[test]
    fn headers_are_found_whatever_the_case_they_were_sent_in() {
        let sent = [
            httparse::Header { name: "USER-AGENT", value: b"a" },
            httparse::Header { name: "user-agents", value: b"b" },
            httparse::Header { name: "User-Agent", value: b"c" },
            httparse::Header { name: "user_agent", value: b"d" },
        ];
        let req = Request { headers: &sent, ..Request::test_get("/", "") };
        assert_eq!(req.headers_named("user-agent").collect::<Vec<_>>(), [b"a", b"c"]);
        assert_eq!(req.header("user-agent"), Some("a"));
        assert_eq!(req.header("origin"), None);
    }

    #[test]
    fn resolves_dot_segments() {
        let mut s = String::new();
        assert_eq!(canonical_path("/csc-event", &mut s), "/csc-event");
        assert_eq!(canonical_path("/a/../csc-event", &mut s), "/csc-event");
        assert_eq!(canonical_path("/./ping", &mut s), "/ping");
        assert_eq!(canonical_path("/../../ping", &mut s), "/ping");
        assert_eq!(canonical_path("/a/b/..", &mut s), "/a/");
        assert_eq!(canonical_path("/..", &mut s), "/");
    }
}
