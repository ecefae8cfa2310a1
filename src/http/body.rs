//! Request body framing: chunked transfer coding, decoded as it arrives.
//!
//! The framing is strict where a proxy in front might read it differently:
//! every chunk-size line and chunk end must end in CRLF (a bare CR or LF is
//! refused), and extensions may not hold control characters. The trailer
//! section follows the head's rules (it is parsed by the same tokenizer),
//! so it ends where a head would end, and each trailer line must be a
//! valid header field.

use super::Error;

/// Most trailer fields accepted after the last chunk.
const MAX_TRAILERS: usize = 32;

/// Hex digits of a chunk size beyond which it cannot fit in 64 bits.
const MAX_SIZE_DIGITS: usize = 16;

/// What the decoder expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// A chunk-size line.
    #[default]
    Size,
    /// This many data bytes of the current chunk.
    Data(usize),
    /// The CRLF after a chunk's data.
    DataEnd,
    /// The trailer section after the last chunk.
    Trailers,
}

/// Decodes one chunked body across reads: it keeps its position, so bytes
/// already decoded are not decoded again when more arrive.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    /// The decoded body so far.
    body: Vec<u8>,
    /// Wire bytes already decoded, from the start of the body.
    pos: usize,
    state: State,
}

impl ChunkedDecoder {
    /// Continues decoding `wire`, the body's bytes from its first one (the
    /// same start on every call; more bytes at the end each time).
    ///
    /// Returns `Ok(Some(consumed))` once the last chunk and the trailer
    /// section have arrived, `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// [`Error::BodyTooLarge`] when the decoded body would exceed `limit`,
    /// [`Error::BadFraming`] on an invalid chunk size, extension, chunk end
    /// or trailer.
    pub fn decode(&mut self, wire: &[u8], limit: usize) -> Result<Option<usize>, Error> {
        loop {
            let rest = &wire[self.pos..];
            match self.state {
                State::Size => {
                    let Some((line_len, size)) = size_line(rest)? else { return Ok(None) };
                    self.pos += line_len;
                    if size == 0 {
                        self.state = State::Trailers;
                        continue;
                    }
                    if size > limit.saturating_sub(self.body.len()) {
                        return Err(Error::BodyTooLarge);
                    }
                    self.state = State::Data(size);
                }
                State::Data(left) => {
                    let n = left.min(rest.len());
                    self.body.extend_from_slice(&rest[..n]);
                    self.pos += n;
                    if n < left {
                        self.state = State::Data(left - n);
                        return Ok(None);
                    }
                    self.state = State::DataEnd;
                }
                State::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        self.pos += 2;
                        self.state = State::Size;
                    }
                    [] | [b'\r'] => return Ok(None),
                    _ => return Err(Error::BadFraming),
                },
                State::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; MAX_TRAILERS];
                    return match httparse::parse_headers(rest, &mut fields) {
                        Ok(httparse::Status::Complete((len, _))) => Ok(Some(self.pos + len)),
                        Ok(httparse::Status::Partial) => Ok(None),
                        Err(_) => Err(Error::BadFraming),
                    };
                }
            }
        }
    }

    /// The body decoded so far (all of it once [`Self::decode`] returned `Some`).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Forgets the body, ready for the next request; keeps the buffer's
    /// capacity unless it grew past `keep` bytes.
    pub fn reset(&mut self, keep: usize) {
        if self.body.capacity() > keep {
            self.body = Vec::new();
        } else {
            self.body.clear();
        }
        self.pos = 0;
        self.state = State::Size;
    }
}

/// Parses a chunk-size line: hex digits, optional extensions, CRLF.
/// Returns the line's length and the size, or `None` when it has not all
/// arrived.
fn size_line(buf: &[u8]) -> Result<Option<(usize, usize)>, Error> {
    let digits = buf.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits > MAX_SIZE_DIGITS {
        return Err(Error::BodyTooLarge);
    }
    if digits == buf.len() {
        return Ok(None);
    }
    if digits == 0 {
        return Err(Error::BadFraming);
    }
    let size = buf[..digits].iter().fold(0u64, |n, &d| n << 4 | u64::from(hex_value(d)));
    let size = usize::try_from(size).map_err(|_| Error::BodyTooLarge)?;
    // After the digits: optional whitespace, then CRLF, or extensions
    // (`;name=value`) up to CRLF.
    let after = digits + buf[digits..].iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    match buf.get(after) {
        None => return Ok(None),
        Some(b'\r' | b';') => {}
        Some(_) => return Err(Error::BadFraming),
    }
    for (i, &b) in buf.iter().enumerate().skip(after) {
        match b {
            b'\r' => {
                return match buf.get(i + 1) {
                    None => Ok(None),
                    Some(b'\n') => Ok(Some((i + 2, size))),
                    Some(_) => Err(Error::BadFraming),
                }
            }
            b'\t' => {}
            b'\n' | 0x7f => return Err(Error::BadFraming),
            b if b < 0x20 => return Err(Error::BadFraming),
            _ => {}
        }
    }
    Ok(None)
}

fn hex_value(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(wire: &[u8], limit: usize) -> Result<Option<(usize, Vec<u8>)>, Error> {
        let mut d = ChunkedDecoder::default();
        Ok(d.decode(wire, limit)?.map(|n| (n, d.body().to_vec())))
    }

    #[test]
    fn decodes_chunks_and_reports_consumed_bytes() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\nA ; x=\"y\"\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let (consumed, body) = decode(wire, 100).unwrap().unwrap();
        assert_eq!(body, b"hello world0123456789");
        assert_eq!(&wire[consumed..], b"NEXT");
    }

    #[test]
    fn resumes_where_it_stopped_at_every_cut() {
        let wire = b"5\r\nhello\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n";
        for cut in 0..wire.len() {
            let mut d = ChunkedDecoder::default();
            assert_eq!(d.decode(&wire[..cut], 100), Ok(None), "cut at {cut}");
            // The same start, more bytes: it continues, and the body is whole.
            assert_eq!(d.decode(wire, 100), Ok(Some(wire.len())), "cut at {cut}");
            assert_eq!(d.body(), b"helloabc", "cut at {cut}");
        }
    }

    #[test]
    fn bytes_already_decoded_are_not_read_again() {
        // The decoder goes on from where it stopped: a change to the bytes
        // it has already taken (which a decoder that starts over would read
        // again) does not reach the body.
        let mut d = ChunkedDecoder::default();
        let mut wire = b"6\r\nhello ".to_vec();
        assert_eq!(d.decode(&wire, 100), Ok(None));
        wire[3] = b'J';
        wire.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(d.decode(&wire, 100), Ok(Some(wire.len())));
        assert_eq!(d.body(), b"hello ");
    }

    #[test]
    fn the_trailer_section_ends_as_a_head_does() {
        // A bare LF ends the trailers as it ends a head: the next request is
        // not swallowed as trailers.
        let wire = b"0\r\n\nGET /ping HTTP/1.1\r\n\r\n";
        let (consumed, _) = decode(wire, 100).unwrap().unwrap();
        assert_eq!(&wire[consumed..], b"GET /ping HTTP/1.1\r\n\r\n");
        assert_eq!(decode(b"0\r\nNot a field\r\n\r\n", 100), Err(Error::BadFraming));
        assert_eq!(decode(b"0\r\nX: a\0b\r\n\r\n", 100), Err(Error::BadFraming));
    }

    #[test]
    fn refuses_bare_line_ends_and_controls_in_framing() {
        for wire in [
            &b"5;\nJUNK\r\nhello\r\n0\r\n\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\rhello\r\n0\r\n\r\n",
            b"5;a\x01b\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhello\rX0\r\n\r\n",
            b"5x\r\nhello\r\n0\r\n\r\n",
            b"5 junk\r\nhello\r\n0\r\n\r\n",
            b";\r\n",
        ] {
            assert_eq!(decode(wire, 100), Err(Error::BadFraming), "{:?}", String::from_utf8_lossy(wire));
        }
    }

    #[test]
    fn refuses_oversized_bodies() {
        assert_eq!(decode(b"5\r\nhello\r\n0\r\n\r\n", 4), Err(Error::BodyTooLarge));
        assert_eq!(decode(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", 4), Err(Error::BodyTooLarge));
        assert_eq!(decode(b"ffffffffffffffff\r\n", 4), Err(Error::BodyTooLarge));
        assert_eq!(decode(b"1ffffffffffffffff\r\n", 4), Err(Error::BodyTooLarge));
    }

    #[test]
    fn reset_forgets_the_body_and_gives_back_a_grown_buffer() {
        let mut d = ChunkedDecoder::default();
        let wire = b"10\r\n0123456789abcdef\r\n0\r\n\r\n";
        assert_eq!(d.decode(wire, 100), Ok(Some(wire.len())));
        d.reset(8);
        assert_eq!(d.body().len(), 0);
        assert_eq!(d.body.capacity(), 0, "grown past the bound: released");
        assert_eq!(d.decode(wire, 100), Ok(Some(wire.len())));
        assert_eq!(d.body(), b"0123456789abcdef");
    }
}
