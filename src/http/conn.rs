//! The connection loop: read, hand the buffered requests to
//! [`super::exchange`], write the answers in order.
//!
//! A connection alternates between two phases. *Handle*: every complete
//! request in the read buffer is parsed and answered into the write buffer
//! (this is how pipelined requests are answered in order). *Flush*: the
//! service settles whatever the answers depend on (for events: the batch is
//! handed to its sink), then the write buffer goes out in one write. Then
//! the connection reads again, with a deadline that depends on whether it is
//! idle or inside a request.

use std::cell::Cell;
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant, SystemTime};

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::exchange::{answer_buffered, fail, read_capacity, Exchange};
use super::readiness::Registration;
use super::service::{Limits, Peer, Service};
use super::Error;

/// Initial read buffer per connection; grows up to the limits on demand,
/// and back to this when the connection goes idle.
const INITIAL_READ_BUFFER: usize = 4096;

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
/// server drains. Reads wait on `input`, the stream's registration with
/// the shard's [`Readiness`](super::Readiness); writes go to the stream.
/// `idle` is shared with the shard, which closes idle connections when a
/// drain begins.
pub async fn serve<S: Service>(
    stream: &mut TcpStream,
    input: &Registration,
    peer: Peer<'_>,
    svc: &S,
    limits: &Limits,
    idle: &Cell<bool>,
) {
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
                if !svc.settle(t).await {
                    ex.unavailable(svc);
                }
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
                linger(stream, input, &mut rbuf.buf).await;
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
        // Let the shard's other ready connections run first, so that one
        // client's pipelined flood cannot keep the shard to itself. Without
        // input the read waits for an event, and that wait yields anyway:
        // a yield first would cost a second wake-up per request.
        if input.may_have_input() {
            futures_lite::future::yield_now().await;
        }
        let read = input.read(rbuf.spare(), timeout).await;
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
async fn linger(stream: &mut TcpStream, input: &Registration, scratch: &mut [u8]) {
    // SAFETY: the descriptor is open for as long as `stream` lives; shutting
    // down the write side only sends FIN after the answer.
    unsafe { libc::shutdown(stream.as_raw_fd(), libc::SHUT_WR) };
    let deadline = Instant::now() + LINGER_TIME;
    let mut dropped = 0;
    while dropped < LINGER_BYTES {
        let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else { return };
        match input.read(scratch, left.min(LINGER_QUIET)).await {
            Ok(0) | Err(_) => return,
            Ok(n) => dropped += n,
        }
    }
}

async fn stream_write(stream: &mut TcpStream, buf: &[u8]) -> io::Result<()> {
    stream.write_all(buf).await
}
