//! Writing responses into a connection's output buffer.

use super::Status;

/// Whether the connection stays open after a response, and what the
/// response says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Stays open; HTTP/1.1's default, so nothing is said.
    KeepAlive,
    /// Stays open, which an HTTP/1.0 client asked for: `Connection: keep-alive`.
    KeepAliveAnnounced,
    /// Closes after this response: `Connection: close`.
    Close,
}

/// The `Server` line of every answer.
const SERVER_LINE: &[u8] = b"Server: divolte\r\n";

/// Appends one response to the connection's output buffer. Created by the
/// connection for each request; the handler picks the status, headers and
/// body, while the connection decides `Date`, `Server` and `Connection`.
pub struct Response<'a> {
    out: &'a mut Vec<u8>,
    date_line: &'a [u8],
    head_only: bool,
    persistence: Persistence,
    written: bool,
}

impl<'a> Response<'a> {
    pub(crate) fn new(out: &'a mut Vec<u8>, date_line: &'a [u8], head_only: bool, persistence: Persistence) -> Self {
        Self { out, date_line, head_only, persistence, written: false }
    }

    /// Whether a response has been written.
    pub fn is_written(&self) -> bool {
        self.written
    }

    pub(crate) fn closes(&self) -> bool {
        self.persistence == Persistence::Close
    }

    /// Writes a complete response. `headers` are complete lines including
    /// `\r\n`, typically constants, so that the common responses are a few
    /// memory copies. The body is omitted for HEAD requests (its length is
    /// still announced) and for 204/304.
    pub fn send(&mut self, status: Status, headers: &[&str], content_type: Option<&str>, body: &[u8]) {
        self.send_with(status, headers, "", content_type, body);
    }

    /// [`Response::send`] with `extra` header lines (complete, with
    /// `\r\n`) built for this answer, written after `headers`.
    pub fn send_with(
        &mut self,
        status: Status,
        headers: &[&str],
        extra: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) {
        self.start(status);
        let out = &mut *self.out;
        for h in headers {
            out.extend_from_slice(h.as_bytes());
        }
        out.extend_from_slice(extra.as_bytes());
        if let Some(ct) = content_type {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(ct.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        let bodiless = status.code == 204 || status.code == 304;
        if !bodiless {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        match self.persistence {
            Persistence::KeepAlive => {}
            Persistence::KeepAliveAnnounced => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            Persistence::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only && !bodiless {
            out.extend_from_slice(body);
        }
    }

    /// `prepared`'s answer, with `extra` header lines built for this one.
    /// Its bytes after the `Date` line are copied whole when nothing about
    /// this answer differs from how they were written.
    pub fn send_prepared(&mut self, prepared: &Prepared, extra: &str) {
        if !extra.is_empty() || self.head_only || self.persistence != Persistence::KeepAlive {
            let Prepared { status, headers, content_type, body, .. } = *prepared;
            return self.send_with(status, headers, extra, content_type, body);
        }
        self.start(prepared.status);
        self.out.extend_from_slice(&prepared.tail);
    }

    /// Writes the lines every answer starts with: status, `Server`, `Date`.
    fn start(&mut self, status: Status) {
        debug_assert!(!self.written, "one response per request");
        self.written = true;
        self.out.extend_from_slice(status.line.as_bytes());
        self.out.extend_from_slice(SERVER_LINE);
        self.out.extend_from_slice(self.date_line);
    }

    /// `text/plain; charset=utf-8` response.
    pub fn text(&mut self, status: Status, headers: &[&str], body: &str) {
        self.text_with(status, headers, "", body);
    }

    /// [`Response::text`] with `extra` header lines built for this answer.
    pub fn text_with(&mut self, status: Status, headers: &[&str], extra: &str, body: &str) {
        self.send_with(status, headers, extra, Some("text/plain; charset=utf-8"), body.as_bytes());
    }
}

/// An answer whose status, header lines and body never change (the pixel),
/// with everything [`Response::send_with`] writes after the `Date` line
/// written once: a dozen small copies per request become one.
#[derive(Debug)]
pub struct Prepared {
    status: Status,
    headers: &'static [&'static str],
    content_type: Option<&'static str>,
    body: &'static [u8],
    /// The bytes after the `Date` line on a kept-alive connection, for a
    /// request that is not `HEAD`.
    tail: Box<[u8]>,
}

impl Prepared {
    /// The answer with `status`, `headers` (complete lines), `content_type`
    /// and `body`.
    pub fn new(
        status: Status,
        headers: &'static [&'static str],
        content_type: Option<&'static str>,
        body: &'static [u8],
    ) -> Self {
        // Written the one way answers are written, with an empty Date line:
        // the tail is what follows the status and Server lines.
        let mut written = Vec::new();
        Response::new(&mut written, b"", false, Persistence::KeepAlive).send(status, headers, content_type, body);
        let tail = written.split_off(status.line.len() + SERVER_LINE.len()).into_boxed_slice();
        Self { status, headers, content_type, body, tail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADERS: &[&str] = &["Cache-Control: no-cache\r\n", "ETag: \"x\"\r\n"];
    const DATE: &[u8] = b"Date: Tue, 01 Dec 2026 01:00:00 GMT\r\n";

    #[test]
    fn a_prepared_answer_is_written_as_the_same_answer_written_in_parts() {
        let prepared = Prepared::new(Status::OK, HEADERS, Some("image/gif"), b"GIF89a");
        for persistence in [Persistence::KeepAlive, Persistence::KeepAliveAnnounced, Persistence::Close] {
            for head_only in [false, true] {
                for extra in ["", "Set-Cookie: a=b\r\n"] {
                    let (mut whole, mut parts) = (Vec::new(), Vec::new());
                    Response::new(&mut whole, DATE, head_only, persistence).send_prepared(&prepared, extra);
                    Response::new(&mut parts, DATE, head_only, persistence).send_with(
                        Status::OK,
                        HEADERS,
                        extra,
                        Some("image/gif"),
                        b"GIF89a",
                    );
                    assert_eq!(
                        String::from_utf8_lossy(&whole),
                        String::from_utf8_lossy(&parts),
                        "{persistence:?}, HEAD {head_only}, extra {extra:?}"
                    );
                }
            }
        }
        let mut out = Vec::new();
        Response::new(&mut out, DATE, false, Persistence::KeepAlive).send_prepared(&prepared, "");
        assert!(out.starts_with(b"HTTP/1.1 200 OK\r\nServer: divolte\r\nDate: "));
        assert!(out.ends_with(b"Content-Length: 6\r\n\r\nGIF89a"));
    }
}
