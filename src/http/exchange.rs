//! The requests in a connection's read buffer, framed and answered
//! without I/O: head parsing (httparse for tokens), body framing, limits,
//! keep-alive, and the answers written into the connection's write buffer.
//! [`super::conn`] reads and writes around it; the fuzzer and unit tests
//! drive it through [`answer_bytes`].

use std::time::SystemTime;

use super::body::ChunkedDecoder;
use super::request::{canonical_path, Method, Request};
use super::service::{Limits, Peer, Service};
use super::{Error, Persistence, Response, Status};

/// Most headers accepted in one request; more gets 431.
pub const MAX_HEADERS: usize = 64;

/// Unwritten answers past which a connection stops answering pipelined
/// requests until they are written. A client that pipelines and never reads
/// holds at most this much (plus one answer) on the collector; the rest of
/// its requests wait, unparsed, in its read buffer and socket.
const WRITE_HIGH_WATER: usize = 16 * 1024;

/// Write (and body) buffer capacity an idle connection keeps; a buffer
/// grown past it (a tag answer, a pipelined burst, a large body) is given
/// back.
const IDLE_BUFFER_KEEP: usize = 8 * 1024;

/// Outcome of trying to take one request off the front of the read buffer.
enum Step {
    /// A request was answered; it used this many bytes.
    Done { consumed: usize },
    /// The request is incomplete. `continue_wanted`: the client waits for `100 Continue`.
    NeedMore { continue_wanted: bool },
    /// The request is invalid; answer and close.
    Fail(Error),
}

/// A connection's read ceiling: chunk framing can take more room than the
/// body it carries.
pub(super) fn read_capacity(limits: &Limits) -> usize {
    limits.max_head_bytes + 2 * limits.max_body_bytes + 1024
}

/// What one connection keeps between reads: the answers not yet written and
/// the state of the request being answered.
pub(super) struct Exchange<T> {
    pub(super) wbuf: Vec<u8>,
    /// The chunked body of the request being received, decoded so far.
    chunked: ChunkedDecoder,
    /// The service's hand-off to settle before the answers are written.
    pub(super) ticket: Option<T>,
    /// The last answer closes the connection.
    pub(super) closing: bool,
    /// That answer refused a request (the client may still be sending).
    pub(super) failed: bool,
    continue_sent: bool,
}

impl<T> Default for Exchange<T> {
    fn default() -> Self {
        Self {
            wbuf: Vec::with_capacity(1024),
            chunked: ChunkedDecoder::default(),
            ticket: None,
            closing: false,
            failed: false,
            continue_sent: false,
        }
    }
}

impl<T> Exchange<T> {
    /// Gives back buffers grown past what an idle connection keeps.
    pub(super) fn shrink(&mut self) {
        if self.wbuf.capacity() > IDLE_BUFFER_KEEP {
            self.wbuf = Vec::with_capacity(1024);
        }
        self.chunked.reset(IDLE_BUFFER_KEEP);
    }

    /// Replaces the unwritten answers with one 503 and closes: the service
    /// could not do what they acknowledge. Pipelined requests after the
    /// first get no answer, which tells a client they were not taken.
    pub(super) fn unavailable<S: Service>(&mut self, svc: &S) {
        self.wbuf.clear();
        svc.date().with_line(SystemTime::now(), |date| {
            let mut res = Response::new(&mut self.wbuf, date, false, Persistence::Close);
            res.text(Status::SERVICE_UNAVAILABLE, &["Retry-After: 1\r\n"], "Not stored; try again.");
        });
        self.closing = true;
    }

    /// Answers `e` and closes after it.
    fn refuse<S: Service>(&mut self, svc: &S, e: Error) {
        fail(svc, &mut self.wbuf, e);
        self.closing = true;
        self.failed = true;
    }
}

/// What [`answer_buffered`] did.
pub(super) struct Answered {
    /// Bytes of the requests it answered.
    pub(super) consumed: usize,
    /// It stopped at [`WRITE_HIGH_WATER`] with requests possibly left.
    pub(super) paused: bool,
}

/// Answers, into `ex.wbuf`, every complete request at the front of `data`
/// (a read buffer of at most `capacity` bytes) and returns the bytes they
/// used. Stops at an incomplete request, after an answer that closes, or
/// once the unwritten answers reach [`WRITE_HIGH_WATER`].
pub(super) fn answer_buffered<S: Service>(
    data: &[u8],
    capacity: usize,
    peer: &Peer<'_>,
    now: SystemTime,
    svc: &S,
    limits: &Limits,
    ex: &mut Exchange<S::Ticket>,
) -> Answered {
    let mut used = 0;
    while used < data.len() && !ex.closing {
        if ex.wbuf.len() >= WRITE_HIGH_WATER {
            return Answered { consumed: used, paused: true };
        }
        match handle_one(&data[used..], peer, now, svc, limits, ex) {
            Step::Done { consumed } => {
                used += consumed;
                ex.continue_sent = false;
                ex.chunked.reset(usize::MAX);
            }
            Step::NeedMore { continue_wanted } => {
                if data.len() - used >= capacity {
                    ex.refuse(svc, Error::BodyTooLarge);
                } else if continue_wanted && !ex.continue_sent {
                    ex.wbuf.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    ex.continue_sent = true;
                }
                break;
            }
            Step::Fail(e) => ex.refuse(svc, e),
        }
    }
    Answered { consumed: used, paused: false }
}

/// Answers `data` as if one connection had sent it in one piece and returns
/// what the server would write back: the framing, limits and answers of
/// [`serve`] without a socket. For fuzzing and tests of the HTTP layer.
pub fn answer_bytes<S: Service>(data: &[u8], peer: &Peer<'_>, svc: &S, limits: &Limits) -> Vec<u8> {
    let capacity = read_capacity(limits);
    let data = &data[..data.len().min(capacity)];
    let mut ex = Exchange::default();
    let mut out = Vec::new();
    let mut used = 0;
    loop {
        let answered = answer_buffered(&data[used..], capacity, peer, SystemTime::now(), svc, limits, &mut ex);
        used += answered.consumed;
        out.append(&mut ex.wbuf);
        if !answered.paused {
            return out;
        }
    }
}

/// Writes the error answer for `e`; the connection closes after it.
pub(super) fn fail<S: Service>(svc: &S, wbuf: &mut Vec<u8>, e: Error) {
    svc.rejected(e);
    svc.date().with_line(SystemTime::now(), |date| {
        let mut res = Response::new(wbuf, date, false, Persistence::Close);
        res.text(e.status(), &[], "");
    });
}

/// Bytes up to which a request head is accepted, for telling 414 from 431:
/// when the request line alone does not end within the limit, it is the URI.
fn head_too_large(buf: &[u8], max: usize) -> Error {
    let window = &buf[..buf.len().min(max)];
    if window.contains(&b'\n') {
        Error::HeaderTooLarge
    } else {
        Error::UriTooLong
    }
}

/// Body framing declared by the headers.
enum Framing {
    Empty,
    Length(usize),
    Chunked,
}

/// Parses and answers the request at the front of `buf`, if complete.
fn handle_one<S: Service>(
    buf: &[u8],
    peer: &Peer<'_>,
    now: SystemTime,
    svc: &S,
    limits: &Limits,
    ex: &mut Exchange<S::Ticket>,
) -> Step {
    // Left uninitialised: filling 64 empty headers (2 KiB, 128 vector
    // stores) for every request is work no request needs; httparse writes
    // the ones it parses and hands back only those.
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let head_len = match parsed.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) if n > limits.max_head_bytes => {
            return Step::Fail(head_too_large(buf, limits.max_head_bytes))
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= limits.max_head_bytes => {
            return Step::Fail(head_too_large(buf, limits.max_head_bytes))
        }
        Ok(httparse::Status::Partial) => return Step::NeedMore { continue_wanted: false },
        Err(httparse::Error::TooManyHeaders) => return Step::Fail(Error::HeaderTooLarge),
        Err(_) => return Step::Fail(Error::Malformed),
    };
    let (Some(method_str), Some(target), Some(minor_version)) = (parsed.method, parsed.path, parsed.version) else {
        return Step::Fail(Error::Malformed);
    };
    let headers = parsed.headers;

    let mut framing = Framing::Empty;
    let mut keep_alive = minor_version == 1;
    let mut continue_wanted = false;
    for h in headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            // Digits only: `+5` or `5, 5` parse elsewhere and would let a
            // proxy and the collector disagree on where the body ends.
            let digits = h.value.trim_ascii();
            let valid = !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
            let Some(n) = valid.then(|| std::str::from_utf8(digits).ok()?.parse::<usize>().ok()).flatten() else {
                return Step::Fail(Error::BadFraming);
            };
            framing = match framing {
                Framing::Empty => Framing::Length(n),
                Framing::Length(m) if m == n => framing,
                // Conflicting lengths, or a length beside chunked: refuse
                // rather than guess where the next request starts.
                _ => return Step::Fail(Error::BadFraming),
            };
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
            if !last.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return Step::Fail(Error::UnsupportedTransferEncoding);
            }
            if !matches!(framing, Framing::Empty) {
                return Step::Fail(Error::BadFraming);
            }
            framing = Framing::Chunked;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && minor_version == 0 {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            continue_wanted = h.value.trim_ascii().eq_ignore_ascii_case(b"100-continue");
        }
    }

    if matches!(framing, Framing::Chunked) && minor_version == 0 {
        // An HTTP/1.0 peer may not know chunked framing, so where its body
        // ends is in doubt: answer, then close (RFC 9112, 6.1).
        keep_alive = false;
    }

    // memchr, not `split_once`: the char searcher's setup cost more than
    // finding the `?` of a pixel's target.
    let (raw_path, query) = match memchr::memchr(b'?', target.as_bytes()) {
        Some(q) => (&target[..q], Some(&target[q + 1..])),
        None => (target, None),
    };
    let mut path_scratch = String::new();
    let path = canonical_path(raw_path, &mut path_scratch);
    // Asked only when there is a body: most requests (pixels) have none,
    // and the limit costs the service a route lookup.
    let body_limit = || svc.body_limit(path, limits.max_body_bytes);
    let (body, consumed): (&[u8], usize) = match framing {
        Framing::Empty => (&[], head_len),
        Framing::Length(n) if n > body_limit() => return Step::Fail(Error::BodyTooLarge),
        Framing::Length(n) => {
            if buf.len() < head_len + n {
                return Step::NeedMore { continue_wanted };
            }
            (&buf[head_len..head_len + n], head_len + n)
        }
        Framing::Chunked => match ex.chunked.decode(&buf[head_len..], body_limit()) {
            Ok(Some(n)) => (ex.chunked.body(), head_len + n),
            Ok(None) => return Step::NeedMore { continue_wanted },
            Err(e) => return Step::Fail(e),
        },
    };

    let request = Request {
        method: Method::from_token(method_str),
        method_str,
        path,
        query,
        minor_version,
        headers,
        body,
        peer: peer.addr,
        peer_host: peer.host,
        received: now,
    };
    let persistence = match (keep_alive && !svc.draining(), minor_version) {
        (false, _) => Persistence::Close,
        (true, 0) => Persistence::KeepAliveAnnounced,
        (true, _) => Persistence::KeepAlive,
    };
    let head_only = request.method == Method::Head;
    svc.date().with_line(request.received, |date| {
        let mut res = Response::new(&mut ex.wbuf, date, head_only, persistence);
        if let Some(t) = svc.call(&request, &mut res) {
            ex.ticket = Some(t);
        }
        if !res.is_written() {
            res.text(Status::INTERNAL_SERVER_ERROR, &[], "");
        }
        ex.closing = res.closes();
    });
    Step::Done { consumed }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::Duration;

    use super::*;
    use crate::http::DateCache;

    /// Answers every request with its path and body; records refusals.
    #[derive(Default)]
    struct Echo {
        date: DateCache,
        refused: RefCell<Vec<Error>>,
    }

    impl Service for Echo {
        type Ticket = ();

        fn body_limit(&self, _: &str, default: usize) -> usize {
            default
        }

        fn call(&self, req: &Request<'_>, res: &mut Response<'_>) -> Option<()> {
            let body = [req.path.as_bytes(), b":", req.body].concat();
            res.send(Status::OK, &[], None, &body);
            None
        }

        async fn settle(&self, _: ()) -> bool {
            true
        }

        fn draining(&self) -> bool {
            false
        }

        fn date(&self) -> &DateCache {
            &self.date
        }

        fn rejected(&self, error: Error) {
            self.refused.borrow_mut().push(error);
        }
    }

    /// A read of up to 9,344 bytes (head + 2 x body + 1 KiB) at once.
    const LIMITS: Limits = Limits {
        max_head_bytes: 8192,
        max_body_bytes: 64,
        request_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
    };

    fn answer(svc: &Echo, wire: &[u8]) -> String {
        let peer = Peer { addr: "127.0.0.1:1".parse().unwrap(), host: "127.0.0.1" };
        String::from_utf8(answer_bytes(wire, &peer, svc, &LIMITS)).unwrap()
    }

    /// The bodies of the answers in `out`, in order.
    fn bodies(out: &str) -> Vec<&str> {
        out.split("HTTP/1.1 ").skip(1).map(|a| a.split("\r\n\r\n").nth(1).unwrap_or("")).collect()
    }

    #[test]
    fn pipelined_requests_are_answered_in_order_past_the_write_pause() {
        let svc = Echo::default();
        // 400 requests in one read, ~44 KB of answers: the answering
        // pauses at 16 KiB twice.
        let wire: String = (0..400).map(|i| format!("GET /{i} HTTP/1.1\r\n\r\n")).collect();
        let out = answer(&svc, wire.as_bytes());
        let expected: Vec<String> = (0..400).map(|i| format!("/{i}:")).collect();
        assert_eq!(bodies(&out), expected);
    }

    #[test]
    fn bodies_by_length_and_by_chunks_and_the_limits() {
        let svc = Echo::default();
        let out = answer(
            &svc,
            b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcPOST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n",
        );
        assert_eq!(bodies(&out), ["/a:abc", "/b:xy"]);
        let out = answer(&svc, b"POST /c HTTP/1.1\r\nContent-Length: 65\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 413") && out.contains("Connection: close"), "{out}");
        let out = answer(&svc, b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n41\r\n");
        assert!(out.starts_with("HTTP/1.1 413"), "{out}");
        assert_eq!(*svc.refused.borrow(), [Error::BodyTooLarge, Error::BodyTooLarge]);
    }

    #[test]
    fn keep_alive_follows_the_version_and_the_client() {
        let svc = Echo::default();
        let out = answer(&svc, b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        assert_eq!(bodies(&out), ["/a:"], "HTTP/1.0 closes: {out}");
        assert!(out.contains("Connection: close"));
        let out = answer(&svc, b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        assert_eq!(bodies(&out), ["/a:", "/b:"]);
        assert!(out.contains("Connection: keep-alive\r\n"), "{out}");
        let out = answer(&svc, b"GET /a HTTP/1.1\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n");
        assert_eq!(bodies(&out), ["/a:"]);
        let out =
            answer(&svc, b"POST /a HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
        assert!(out.contains("Connection: close"), "chunked HTTP/1.0 closes: {out}");
    }

    #[test]
    fn heads_over_the_limit_are_told_apart() {
        let svc = Echo::default();
        let long_uri = format!("GET /{} HTTP/1.1\r\n\r\n", "u".repeat(9000));
        assert!(answer(&svc, long_uri.as_bytes()).starts_with("HTTP/1.1 414"));
        let long_head = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "h".repeat(9000));
        assert!(answer(&svc, long_head.as_bytes()).starts_with("HTTP/1.1 431"));
        assert!(answer(&svc, b"GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx").starts_with("HTTP/1.1 400"));
    }
}
