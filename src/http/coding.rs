//! Compressed request bodies (`Content-Encoding: gzip` or `deflate`),
//! decoded with a guard against bombs: the decoded size counts against the
//! endpoint's body limit, and may be at most [`MAX_RATIO`] times the size
//! that arrived.

use std::io::Read;

/// Largest decoded size per byte received. Text events compress five to
/// twenty times; a thousand-fold body is a bomb.
pub const MAX_RATIO: usize = 100;

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// A coding other than gzip, deflate or identity, or more than one (415).
    Unsupported,
    /// Decoded, it passes the limit or the ratio (413).
    TooLarge,
    /// The compressed data is broken (400).
    Corrupt,
}

/// The coding named by `Content-Encoding` header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Identity,
    Gzip,
    Deflate,
}

fn coding<'h>(values: impl Iterator<Item = &'h [u8]>) -> Result<Coding, BodyError> {
    let mut found = Coding::Identity;
    for token in values.flat_map(|v| v.split(|&b| b == b',')).map(<[u8]>::trim_ascii) {
        let this = if token.is_empty() || token.eq_ignore_ascii_case(b"identity") {
            continue;
        } else if token.eq_ignore_ascii_case(b"gzip") || token.eq_ignore_ascii_case(b"x-gzip") {
            Coding::Gzip
        } else if token.eq_ignore_ascii_case(b"deflate") {
            Coding::Deflate
        } else {
            return Err(BodyError::Unsupported);
        };
        if found != Coding::Identity {
            return Err(BodyError::Unsupported);
        }
        found = this;
    }
    Ok(found)
}

/// `body` decoded as its `Content-Encoding` header values say: itself when
/// it is not encoded, else its decoding in `out`.
///
/// # Errors
/// [`BodyError`] for an unknown coding, a body past `limit` or
/// [`MAX_RATIO`] once decoded, or broken compressed data.
pub fn decode<'b, 'h>(
    body: &'b [u8],
    encodings: impl Iterator<Item = &'h [u8]>,
    limit: usize,
    out: &'b mut Vec<u8>,
) -> Result<&'b [u8], BodyError> {
    let coding = coding(encodings)?;
    if coding == Coding::Identity {
        return Ok(body);
    }
    let ceiling = limit.min(body.len().saturating_mul(MAX_RATIO));
    out.clear();
    // One byte past the ceiling tells "exactly at" from "beyond".
    let read = match coding {
        Coding::Gzip => flate2::read::MultiGzDecoder::new(body).take(ceiling as u64 + 1).read_to_end(out),
        // RFC 9110's deflate is zlib-wrapped; some clients send the raw stream.
        Coding::Deflate if is_zlib(body) => {
            flate2::read::ZlibDecoder::new(body).take(ceiling as u64 + 1).read_to_end(out)
        }
        _ => flate2::read::DeflateDecoder::new(body).take(ceiling as u64 + 1).read_to_end(out),
    };
    match read {
        Ok(n) if n > ceiling => Err(BodyError::TooLarge),
        Ok(_) => Ok(out),
        Err(_) => Err(BodyError::Corrupt),
    }
}

/// A zlib header: deflate method, and the check bits over the first two bytes.
fn is_zlib(body: &[u8]) -> bool {
    matches!(body, [cmf, flg, ..] if cmf & 0x0f == 8 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn run(body: &[u8], encoding: &str, limit: usize) -> Result<Vec<u8>, BodyError> {
        let mut out = Vec::new();
        decode(body, [encoding.as_bytes()].into_iter(), limit, &mut out).map(<[u8]>::to_vec)
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decode() {
        let text = br#"{"session_id":"0:a:b","event_id":"e","is_new_party":true}"#;
        assert_eq!(run(&gzip(text), "gzip", 4096).unwrap(), text);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(text).unwrap();
        assert_eq!(run(&z.finish().unwrap(), "deflate", 4096).unwrap(), text);
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(text).unwrap();
        assert_eq!(run(&d.finish().unwrap(), "Deflate", 4096).unwrap(), text);
        assert_eq!(run(text, "identity", 4096).unwrap(), text);
    }

    #[test]
    fn bombs_and_unknown_codings_are_refused() {
        let bomb = gzip(&vec![b'{'; 1 << 20]);
        assert!(bomb.len() < 2048, "{}", bomb.len());
        assert_eq!(run(&bomb, "gzip", 64 << 20), Err(BodyError::TooLarge), "the ratio");
        assert_eq!(run(&gzip(&[b' '; 5000]), "gzip", 4096), Err(BodyError::TooLarge), "the limit");
        assert_eq!(run(b"x", "br", 4096), Err(BodyError::Unsupported));
        assert_eq!(run(b"x", "gzip, gzip", 4096), Err(BodyError::Unsupported));
        assert_eq!(run(b"not gzip at all", "gzip", 4096), Err(BodyError::Corrupt));
    }
}
