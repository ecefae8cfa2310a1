//! Cross-origin posts (`cors_allowed_origins`): which pages on other
//! origins may post events to a JSON source or a batch endpoint, and the
//! headers that tell their browsers so. Origins not allowed get no CORS
//! headers, so their browsers refuse to send (after a preflight) or to let
//! the page read the answer.

use std::fmt::Write;

use crate::http::Request;

/// How long a browser may reuse a preflight's answer, in seconds.
const PREFLIGHT_MAX_AGE: u32 = 600;

/// One endpoint's CORS policy.
#[derive(Debug, Clone, Default)]
pub struct Cors {
    /// `["*"]`: every origin, without credentials.
    any: bool,
    /// Listed origins, which may send credentials (cookies).
    origins: Vec<String>,
}

/// How a preflight is answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Preflight {
    /// Allowed: answer 204 with the header lines written.
    Allowed,
    /// The origin, method or headers are not allowed: 403 without CORS headers.
    Refused,
}

impl Cors {
    /// The policy for `origins` (checked by the configuration).
    pub fn new(origins: &[String]) -> Self {
        let any = origins.iter().any(|o| o == "*");
        Self { any, origins: if any { Vec::new() } else { origins.to_vec() } }
    }

    /// Whether any origin is allowed (else preflights are not served).
    pub fn enabled(&self) -> bool {
        self.any || !self.origins.is_empty()
    }

    /// The allowed origin of `req`, and whether it may send credentials.
    fn allowed<'r>(&self, req: &Request<'r>) -> Option<(&'r str, bool)> {
        let origin = req.header("origin")?;
        if self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
            Some((origin, true))
        } else {
            self.any.then_some(("*", false))
        }
    }

    /// Appends the header lines of an answer to `req`, when its origin is allowed.
    pub fn answer_headers(&self, req: &Request<'_>, out: &mut String) {
        if let Some((origin, credentials)) = self.allowed(req) {
            write_origin(origin, credentials, out);
        }
    }

    /// Answers a preflight (`OPTIONS`) for a `POST` with JSON or text and
    /// an optional `Content-Encoding`, appending the header lines to `out`.
    pub fn preflight(&self, req: &Request<'_>, out: &mut String) -> Preflight {
        let Some((origin, credentials)) = self.allowed(req) else { return Preflight::Refused };
        let method_ok = req.header("access-control-request-method").is_none_or(|m| m == "POST");
        let headers_ok = req.header("access-control-request-headers").is_none_or(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .all(|h| h.eq_ignore_ascii_case("content-type") || h.eq_ignore_ascii_case("content-encoding"))
        });
        if !(method_ok && headers_ok) {
            return Preflight::Refused;
        }
        write_origin(origin, credentials, out);
        let _ = write!(
            out,
            "Access-Control-Allow-Methods: POST\r\nAccess-Control-Allow-Headers: Content-Type, Content-Encoding\r\nAccess-Control-Max-Age: {PREFLIGHT_MAX_AGE}\r\n"
        );
        Preflight::Allowed
    }
}

fn write_origin(origin: &str, credentials: bool, out: &mut String) {
    let _ = write!(out, "Access-Control-Allow-Origin: {origin}\r\n");
    if credentials {
        out.push_str("Access-Control-Allow-Credentials: true\r\n");
    }
    // The answer differs by origin, so caches must key on it.
    out.push_str("Vary: Origin\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(headers: &'a [httparse::Header<'a>]) -> Request<'a> {
        Request { headers, ..Request::test_get("/e", "") }
    }

    fn preflight(cors: &Cors, headers: &[httparse::Header<'_>]) -> (Preflight, String) {
        let mut out = String::new();
        let answer = cors.preflight(&request(headers), &mut out);
        (answer, out)
    }

    const SHOP: httparse::Header<'static> = httparse::Header { name: "Origin", value: b"https://shop.example.com" };
    const OTHER: httparse::Header<'static> = httparse::Header { name: "Origin", value: b"https://evil.example.net" };
    const POST: httparse::Header<'static> = httparse::Header { name: "Access-Control-Request-Method", value: b"POST" };

    #[test]
    fn a_listed_origin_is_echoed_with_credentials_and_others_get_nothing() {
        let cors = Cors::new(&["https://shop.example.com".into()]);
        let (answer, out) = preflight(&cors, &[SHOP, POST]);
        assert_eq!(answer, Preflight::Allowed);
        assert!(out.starts_with(
            "Access-Control-Allow-Origin: https://shop.example.com\r\nAccess-Control-Allow-Credentials: true\r\nVary: Origin\r\n"
        ));
        assert!(out.contains("Access-Control-Allow-Methods: POST\r\n"));
        assert_eq!(preflight(&cors, &[OTHER, POST]), (Preflight::Refused, String::new()));
        assert_eq!(preflight(&cors, &[POST]).0, Preflight::Refused, "no origin");
        let put = httparse::Header { name: "Access-Control-Request-Method", value: b"PUT" };
        assert_eq!(preflight(&cors, &[SHOP, put]).0, Preflight::Refused);
        let custom = httparse::Header { name: "Access-Control-Request-Headers", value: b"content-type, x-secret" };
        assert_eq!(preflight(&cors, &[SHOP, POST, custom]).0, Preflight::Refused);
        let mut out = String::new();
        cors.answer_headers(&request(&[OTHER]), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn any_origin_without_credentials() {
        let cors = Cors::new(&["*".into()]);
        let mut out = String::new();
        cors.answer_headers(&request(&[OTHER]), &mut out);
        assert_eq!(out, "Access-Control-Allow-Origin: *\r\nVary: Origin\r\n");
        assert!(!Cors::new(&[]).enabled());
    }
}
