//! Request body framing: chunked transfer coding.

use super::Error;

/// Decodes a chunked body at the start of `buf` into `out`.
///
/// Returns `Ok(Some(consumed))` once the last chunk and the trailer section
/// have arrived, `Ok(None)` when more bytes are needed. Decoding restarts
/// from the beginning on every call; bodies are bounded by `limit`, so this
/// stays cheap and keeps no state between reads.
///
/// # Errors
/// [`Error::BodyTooLarge`] when the decoded body would exceed `limit`,
/// [`Error::BadFraming`] on an invalid chunk size or a missing chunk end.
pub fn decode_chunked(buf: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<Option<usize>, Error> {
    out.clear();
    let mut pos = 0;
    loop {
        let (header_len, size) = match httparse::parse_chunk_size(&buf[pos..]) {
            Ok(httparse::Status::Complete(parsed)) => parsed,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Error::BadFraming),
        };
        pos += header_len;
        if size == 0 {
            return Ok(skip_trailers(&buf[pos..]).map(|n| pos + n));
        }
        let size = usize::try_from(size).map_err(|_| Error::BodyTooLarge)?;
        if out.len().saturating_add(size) > limit {
            return Err(Error::BodyTooLarge);
        }
        let Some(chunk_end) = pos.checked_add(size) else {
            return Err(Error::BodyTooLarge);
        };
        if buf.len() < chunk_end + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&buf[pos..chunk_end]);
        if &buf[chunk_end..chunk_end + 2] != b"\r\n" {
            return Err(Error::BadFraming);
        }
        pos = chunk_end + 2;
    }
}

/// Length of the trailer section including the final empty line, once complete.
fn skip_trailers(buf: &[u8]) -> Option<usize> {
    let mut pos = 0;
    loop {
        let line_end = buf[pos..].windows(2).position(|w| w == b"\r\n")?;
        pos += line_end + 2;
        if line_end == 0 {
            return Some(pos);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunks_and_reports_consumed_bytes() {
        let wire = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut out = Vec::new();
        let consumed = decode_chunked(wire, &mut out, 100).unwrap().unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(&wire[consumed..], b"NEXT");
    }

    #[test]
    fn waits_for_more_bytes_at_every_cut() {
        let wire = b"5\r\nhello\r\n0\r\n\r\n";
        let mut out = Vec::new();
        for cut in 0..wire.len() {
            assert_eq!(decode_chunked(&wire[..cut], &mut out, 100), Ok(None), "cut at {cut}");
        }
        assert_eq!(decode_chunked(wire, &mut out, 100), Ok(Some(wire.len())));
    }

    #[test]
    fn rejects_oversized_and_malformed_bodies() {
        let mut out = Vec::new();
        assert_eq!(decode_chunked(b"5\r\nhello\r\n0\r\n\r\n", &mut out, 4), Err(Error::BodyTooLarge));
        assert_eq!(decode_chunked(b"zz\r\n", &mut out, 4), Err(Error::BadFraming));
        assert_eq!(decode_chunked(b"2\r\nabXX", &mut out, 4), Err(Error::BadFraming));
        assert_eq!(decode_chunked(b"ffffffffffffffff\r\n", &mut out, 4), Err(Error::BodyTooLarge));
    }
}
