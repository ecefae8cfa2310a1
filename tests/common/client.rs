//! Talking to a collector: pixel queries as the tag writes them, load on
//! keep-alive connections, answers as text, metrics read from a body.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// An answer's bytes as text (invalid UTF-8 shown as U+FFFD).
pub fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// Pixel requests answered 200 per second over `secs`, one thread per open
/// keep-alive connection in `streams`.
pub fn pixel_rate_on(streams: Vec<TcpStream>, secs: f64) -> f64 {
    let query = Pixel::default().query();
    let request = format!("GET /csc-event?{query} HTTP/1.1\r\nHost: t\r\nUser-Agent: {CHROME_UA}\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let threads: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            let request = request.clone();
            std::thread::spawn(move || {
                let mut answered = 0u64;
                let mut buf = [0u8; 1024];
                while Instant::now() < deadline {
                    s.write_all(request.as_bytes()).unwrap();
                    let mut got = Vec::new();
                    // The pixel answer ends with the GIF trailer byte.
                    while !got.ends_with(b"\x3b") || !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = s.read(&mut buf).unwrap();
                        assert!(n > 0, "closed");
                        got.extend_from_slice(&buf[..n]);
                    }
                    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total as f64 / secs
}

/// A realistic pixel query as the tag sends it, with a valid checksum.
pub struct Pixel {
    pub party: String,
    pub session: String,
    pub page_view: String,
    pub event: String,
    pub event_type: String,
    pub location: String,
    /// Custom parameters, already in mincode (`u`).
    pub params: Option<String>,
    pub checksum: bool,
}

impl Default for Pixel {
    fn default() -> Self {
        Self {
            party: "0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG".into(),
            session: "0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8".into(),
            page_view: "0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF".into(),
            event: "0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0".into(),
            event_type: "pageView".into(),
            location: "http://localhost:8290/".into(),
            params: None,
            checksum: true,
        }
    }
}

impl Pixel {
    /// The query string, URL-encoded as `encodeURIComponent` does, with `x` computed.
    pub fn query(&self) -> String {
        let mut params: Vec<(&str, String)> = vec![
            ("p", self.party.clone()),
            ("s", self.session.clone()),
            ("v", self.page_view.clone()),
            ("e", self.event.clone()),
            ("c", "i1t8q2b6".into()),
            ("n", "f".into()),
            ("f", "t".into()),
            ("l", self.location.clone()),
            ("i", "1ak".into()),
            ("j", "sj".into()),
            ("k", "2".into()),
            ("w", "uq".into()),
            ("h", "qd".into()),
            ("t", self.event_type.clone()),
        ];
        params.extend(self.params.clone().map(|u| ("u", u)));
        let mut q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
        if self.checksum {
            let mut sorted = params.clone();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let canonical: String = sorted.iter().map(|(k, v)| format!("{k}={v},;")).collect();
            let hash = murmur3::murmur3_32(&mut std::io::Cursor::new(canonical.as_bytes()), 0).unwrap() as i32;
            q.push(format!("x={}", base36(i64::from(hash))));
        }
        q.join("&")
    }
}

pub fn base36(n: i64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = n.unsigned_abs();
    let mut out = Vec::new();
    loop {
        out.push(digits[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// JavaScript's `encodeURIComponent`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub const CHROME_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/38.0.2125.122 Safari/537.36";

/// The sum of the samples of metric `name` whose labels contain `labels`,
/// in a `/metrics` body.
pub fn metric_value(body: &str, name: &str, labels: &str) -> u64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name)
                && (l.as_bytes().get(name.len()) == Some(&b' ') || l.as_bytes().get(name.len()) == Some(&b'{'))
        })
        .filter(|l| l.contains(labels))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}
