//! The connection loop: read, frame, hand complete requests to a
//! [`Service`], write responses in order.
//!
//! A connection alternates between two phases. *Handle*: every complete
//! request in the read buffer is parsed and answered into the write buffer
//! (this is how pipelined requests are answered in order). *Flush*: the
//! service settles whatever the answers depend on (for events: the batch is
//! handed to its sink), then the write buffer goes out in one write. Then
//! the connection reads again, with a deadline that depends on whether it is
//! idle or inside a request.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use std::os::fd::AsRawFd;

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use super::body::ChunkedDecoder;
use super::request::{canonical_path, Method, Request};
use super::{DateCache, Error, Response, Status};

/// Most headers accepted in one request; more gets 431.
pub const MAX_HEADERS: usize = 64;

/// Initial read buffer per connection; grows up to the limits on demand,
/// and back to this when the connection goes idle.
const INITIAL_READ_BUFFER: usize = 4096;

/// Unwritten answers past which a connection stops answering pipelined
/// requests until they are written. A client that pipelines and never reads
/// holds at most this much (plus one answer) on the collector; the rest of
/// its requests wait, unparsed, in its read buffer and socket.
const WRITE_HIGH_WATER: usize = 16 * 1024;

/// Write (and body) buffer capacity an idle connection keeps; a buffer
/// grown past it (a tag answer, a pipelined burst, a large body) is given
/// back.
const IDLE_BUFFER_KEEP: usize = 8 * 1024;

/// After an error answer the client may still be sending (a body refused
/// from its head). Closing with unread input makes the kernel reset the
/// connection, and a client or proxy still writing never reads the answer
/// (nginx counts that as an upstream failure and takes the collector out
/// of rotation). So the sending side closes first, and what arrives is
/// read and dropped: at most this much...
const LINGER_BYTES: usize = 4 << 20;
/// ...for at most this long...
const LINGER_TIME: Duration = Duration::from_secs(5);
/// ...and no longer than this after the last bytes arrived.
const LINGER_QUIET: Duration = Duration::from_secs(2);

/// Framing limits and timeouts of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Request line plus headers; more gets 431, or 414 when the request line alone is longer.
    pub max_head_bytes: usize,
    /// Default body limit (a [`Service`] may lower or raise it per path); more gets 413.
    pub max_body_bytes: usize,
    /// A request must be complete this long after its first byte, else 408.
    pub request_timeout: Duration,
    /// An idle keep-alive connection is closed after this long.
    pub idle_timeout: Duration,
}

/// What the collector does with requests; the HTTP layer knows nothing else.
pub trait Service {
    /// Something the answers written so far depend on; the connection waits
    /// for [`Service::settle`] of the latest ticket before writing them.
    type Ticket: Copy;

    /// Largest body accepted for `path`.
    fn body_limit(&self, path: &str, default: usize) -> usize;

    /// Answers one request. Returns a ticket when the answer may only be
    /// sent after the service settled something.
    fn call(&self, req: &Request<'_>, res: &mut Response<'_>) -> Option<Self::Ticket>;

    /// Completes once `ticket` is settled.
    fn settle(&self, ticket: Self::Ticket) -> impl Future<Output = ()>;

    /// Whether the server is draining: finish the current requests, then close.
    fn draining(&self) -> bool;

    /// The shard's date cache.
    fn date(&self) -> &DateCache;

    /// Told about every request refused by the HTTP layer (for counting).
    fn rejected(&self, error: Error);
}

/// The client end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// Its address.
    pub addr: SocketAddr,
    /// The address as text, formatted once per connection.
    pub host: &'a str,
}

/// Outcome of trying to take one request off the front of the read buffer.
enum Step {
    /// A request was answered; it used this many bytes.
    Done { consumed: usize },
    /// The request is incomplete. `continue_wanted`: the client waits for `100 Continue`.
    NeedMore { continue_wanted: bool },
    /// The request is invalid; answer and close.
    Fail(Error),
}

/// Read buffer with a hard ceiling: growing on partial input ends there.
struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl ReadBuf {
    fn new(max: usize) -> Self {
        Self { buf: vec![0; INITIAL_READ_BUFFER.min(max)], start: 0, end: 0, max }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Gives back a buffer grown by an earlier request (call when empty).
    fn shrink(&mut self) {
        if self.buf.len() > INITIAL_READ_BUFFER {
            self.buf = vec![0; INITIAL_READ_BUFFER.min(self.max)];
        }
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space to read into, compacting or growing as needed.
    fn spare(&mut self) -> &mut [u8] {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() < self.max {
                let grown = (self.buf.len() * 2).min(self.max);
                self.buf.resize(grown, 0);
            }
        }
        &mut self.buf[self.end..]
    }
}

/// Serves one connection until the peer closes, an error closes it, or the
/// server drains. `idle` is shared with the shard, which closes idle
/// connections when a drain begins.
pub async fn serve<S: Service>(stream: &mut TcpStream, peer: Peer<'_>, svc: &S, limits: &Limits, idle: &Cell<bool>) {
    let mut rbuf = ReadBuf::new(read_capacity(limits));
    let mut ex = Exchange::default();
    let mut request_started: Option<Instant> = None;
    let _ = stream.set_write_timeout(Some(limits.idle_timeout));

    loop {
        // One clock read per batch of requests: requests read together share
        // their receive time.
        let answered = answer_buffered(rbuf.data(), rbuf.max, &peer, SystemTime::now(), svc, limits, &mut ex);
        if answered.consumed > 0 {
            rbuf.consume(answered.consumed);
            request_started = None;
        }
        if !ex.wbuf.is_empty() {
            if let Some(t) = ex.ticket.take() {
                svc.settle(t).await;
            }
            if stream_write(stream, &ex.wbuf).await.is_err() {
                return;
            }
            ex.wbuf.clear();
        }
        if ex.closing {
            if ex.failed {
                idle.set(true);
                // The unanswered bytes are dropped: the whole buffer is scratch.
                linger(stream, &mut rbuf.buf).await;
            }
            return;
        }
        if answered.paused {
            // The answers are out: take the next buffered requests before
            // reading more.
            continue;
        }

        let timeout = if rbuf.is_empty() {
            if svc.draining() {
                return;
            }
            rbuf.shrink();
            ex.shrink();
            idle.set(true);
            limits.idle_timeout
        } else {
            let started = *request_started.get_or_insert_with(Instant::now);
            match limits.request_timeout.checked_sub(started.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => {
                    fail(svc, &mut ex.wbuf, Error::HeadTimeout);
                    let _ = stream_write(stream, &ex.wbuf).await;
                    return;
                }
            }
        };
        let _ = stream.set_read_timeout(Some(timeout));
        // Let the shard's other ready connections run first: by the time
        // this one reads again its client has usually sent the next
        // request, and `stream_read` gets it without arming the ring.
        // Measured: 0.77x -> 0.95x of nginx on benches/load.sh.
        futures_lite::future::yield_now().await;
        let read = stream_read(stream, rbuf.spare()).await;
        idle.set(false);
        match read {
            Ok(0) => return,
            Ok(n) => rbuf.end += n,
            Err(e) if e.kind() == io::ErrorKind::TimedOut && !rbuf.is_empty() => {
                fail(svc, &mut ex.wbuf, Error::HeadTimeout);
                let _ = stream_write(stream, &ex.wbuf).await;
                return;
            }
            Err(_) => return,
        }
    }
}

/// Closes the sending side, then reads and drops what the client still
/// sends, within [`LINGER_BYTES`], [`LINGER_TIME`] and [`LINGER_QUIET`], so
/// that it reads the error answer instead of a reset.
async fn linger(stream: &mut TcpStream, scratch: &mut [u8]) {
    // SAFETY: the descriptor is open for as long as `stream` lives; shutting
    // down the write side only sends FIN after the answer.
    unsafe { libc::shutdown(stream.as_raw_fd(), libc::SHUT_WR) };
    let deadline = Instant::now() + LINGER_TIME;
    let mut dropped = 0;
    while dropped < LINGER_BYTES {
        let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else { return };
        let _ = stream.set_read_timeout(Some(left.min(LINGER_QUIET)));
        match stream_read(stream, scratch).await {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped += n,
        }
    }
}

/// A connection's read ceiling: chunk framing can take more room than the
/// body it carries.
fn read_capacity(limits: &Limits) -> usize {
    limits.max_head_bytes + 2 * limits.max_body_bytes + 1024
}

/// What one connection keeps between reads: the answers not yet written and
/// the state of the request being answered.
struct Exchange<T> {
    wbuf: Vec<u8>,
    /// The chunked body of the request being received, decoded so far.
    chunked: ChunkedDecoder,
    /// The service's hand-off to settle before the answers are written.
    ticket: Option<T>,
    /// The last answer closes the connection.
    closing: bool,
    /// That answer refused a request (the client may still be sending).
    failed: bool,
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
    fn shrink(&mut self) {
        if self.wbuf.capacity() > IDLE_BUFFER_KEEP {
            self.wbuf = Vec::with_capacity(1024);
        }
        self.chunked.reset(IDLE_BUFFER_KEEP);
    }

    /// Answers `e` and closes after it.
    fn refuse<S: Service>(&mut self, svc: &S, e: Error) {
        fail(svc, &mut self.wbuf, e);
        self.closing = true;
        self.failed = true;
    }
}

/// What [`answer_buffered`] did.
struct Answered {
    /// Bytes of the requests it answered.
    consumed: usize,
    /// It stopped at [`WRITE_HIGH_WATER`] with requests possibly left.
    paused: bool,
}

/// Answers, into `ex.wbuf`, every complete request at the front of `data`
/// (a read buffer of at most `capacity` bytes) and returns the bytes they
/// used. Stops at an incomplete request, after an answer that closes, or
/// once the unwritten answers reach [`WRITE_HIGH_WATER`].
fn answer_buffered<S: Service>(
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

/// Reads what has arrived, waiting through glommio only when nothing has.
///
/// glommio arms an io_uring poll after every successful read and then
/// waits for that poll before reading again; each completion is delivered
/// as task work with an inter-processor interrupt. On a busy keep-alive
/// connection the next request is usually there already, so a plain
/// non-blocking `recv` first skips the ring (and the interrupt) entirely.
async fn stream_read(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the descriptor is open for as long as `stream` lives, and
    // `buf` is valid for writes of `buf.len()` bytes.
    let n = unsafe { libc::recv(stream.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let error = io::Error::last_os_error();
    if error.kind() != io::ErrorKind::WouldBlock {
        return Err(error);
    }
    stream.read(buf).await
}

async fn stream_write(stream: &mut TcpStream, buf: &[u8]) -> io::Result<()> {
    stream.write_all(buf).await
}

/// Writes the error answer for `e`; the connection closes after it.
fn fail<S: Service>(svc: &S, wbuf: &mut Vec<u8>, e: Error) {
    svc.rejected(e);
    svc.date().with_line(SystemTime::now(), |date| {
        let mut res = Response::new(wbuf, date, false, true, false);
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
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let head_len = match parsed.parse(buf) {
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

    let (raw_path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
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
    let close = !keep_alive || svc.draining();
    let head_only = request.method == Method::Head;
    svc.date().with_line(request.received, |date| {
        let mut res = Response::new(&mut ex.wbuf, date, head_only, close, keep_alive && minor_version == 0);
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
