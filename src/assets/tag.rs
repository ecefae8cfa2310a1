//! The tracking tag, prepared for serving.

use std::io::Write;

use base64::Engine;
use sha2::{Digest, Sha256};

/// Our tag's source; the settings object between `/*SETTINGS*/` and
/// `/*END*/` is replaced per browser source.
const SOURCE: &str = include_str!("divolte.js");

/// The settings a browser source bakes into its tag.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TagSettings {
    /// Party cookie name.
    pub party_cookie: String,
    /// Party cookie lifetime in seconds.
    pub party_timeout_seconds: u64,
    /// Session cookie name.
    pub session_cookie: String,
    /// Session cookie lifetime in seconds.
    pub session_timeout_seconds: u64,
    /// Cookie `domain` attribute; empty for none.
    pub cookie_domain: String,
    /// Cookie `SameSite` attribute; empty for none.
    pub same_site: String,
    /// Mark cookies `Secure`.
    pub secure: bool,
    /// Log to the browser console.
    pub logging: bool,
    /// The script's own file name, to find its `<script>` element.
    pub script_name: String,
    /// Event endpoint relative to the script's directory.
    pub event_suffix: String,
    /// Send `pageView` when a page view starts.
    pub auto_page_view: bool,
    /// How long to wait for one event before sending the next.
    pub event_timeout_millis: u64,
    /// Send what is queued or signalled while the page hides or unloads
    /// in one `navigator.sendBeacon` to the batch endpoint.
    pub beacon: bool,
    /// Batch endpoint relative to the script's directory.
    pub batch_suffix: String,
    /// Set no cookies and send nothing until `divolte.consent(true)`.
    pub require_consent: bool,
    /// Track nothing when the browser has Global Privacy Control on.
    pub respect_gpc: bool,
    /// Track nothing when the browser sends Do Not Track.
    pub respect_dnt: bool,
}

#[cfg(test)]
impl TagSettings {
    /// The defaults of a browser source, with `SameSite=Lax`.
    pub fn example() -> Self {
        Self {
            party_cookie: "_dvp".into(),
            party_timeout_seconds: 63_072_000,
            session_cookie: "_dvs".into(),
            session_timeout_seconds: 1800,
            cookie_domain: String::new(),
            same_site: "Lax".into(),
            secure: false,
            logging: false,
            script_name: "divolte.js".into(),
            event_suffix: "csc-event".into(),
            auto_page_view: true,
            event_timeout_millis: 750,
            beacon: false,
            batch_suffix: "csc-batch".into(),
            require_consent: false,
            respect_gpc: false,
            respect_dnt: false,
        }
    }
}

/// A tag ready to serve: bytes, gzip variant and their ETags.
#[derive(Debug, Clone)]
pub struct Tag {
    /// The JavaScript (minified unless debugging).
    pub body: Vec<u8>,
    /// Quoted strong ETag of `body`: base64 of its SHA-256.
    pub etag: String,
    /// Gzip-compressed body, kept only when smaller.
    pub gzip: Option<Vec<u8>>,
    /// Quoted ETag of the gzip variant: `"gz+<etag>"`.
    pub gzip_etag: String,
    /// Response header lines of the plain variant (type, caching, ETag, Vary).
    pub plain_headers: String,
    /// Response header lines of the gzip variant.
    pub gzip_headers: String,
}

/// Why a tag could not be built.
#[derive(Debug)]
pub struct TagError(pub String);

impl std::fmt::Display for TagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot build the tracking tag: {}", self.0)
    }
}

impl std::error::Error for TagError {}

impl Tag {
    /// Bakes `settings` into the tag; minifies unless `debug`.
    ///
    /// # Errors
    /// The minifier rejects the source (a bug in the tag, caught at startup).
    pub fn build(settings: &TagSettings, debug: bool) -> Result<Self, TagError> {
        let start = SOURCE.find("/*SETTINGS*/").ok_or_else(|| TagError("settings marker missing".into()))?;
        let end = SOURCE.find("/*END*/").ok_or_else(|| TagError("settings end marker missing".into()))?;
        let json = serde_json::to_string(settings).map_err(|e| TagError(e.to_string()))?;
        let script = format!("{}{}{}", &SOURCE[..start], json, &SOURCE[end + "/*END*/".len()..]);
        let body = if debug {
            script.into_bytes()
        } else {
            minifier::js::minify(&script).map_err(|e| TagError(e.to_owned()))?.to_string().into_bytes()
        };
        let digest = Sha256::digest(&body);
        let tag = base64::engine::general_purpose::STANDARD.encode(digest);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&body).map_err(|e| TagError(e.to_string()))?;
        let compressed = encoder.finish().map_err(|e| TagError(e.to_string()))?;
        let gzip = (compressed.len() < body.len()).then_some(compressed);
        let (etag, gzip_etag) = (format!("\"{tag}\""), format!("\"gz+{tag}\""));
        // With a gzip variant, caches must key on Accept-Encoding for both.
        let vary = if gzip.is_some() { "Vary: Accept-Encoding\r\n" } else { "" };
        let common = "Content-Type: application/javascript\r\nCache-Control: public, max-age=3600\r\n";
        let plain_headers = format!("{common}ETag: {etag}\r\n{vary}");
        let gzip_headers = format!("{common}ETag: {gzip_etag}\r\nContent-Encoding: gzip\r\n{vary}");
        Ok(Self { etag, gzip_etag, body, gzip, plain_headers, gzip_headers })
    }
}

/// Whether any `Accept-Encoding` token is exactly `gzip` (the original's rule).
pub fn accepts_gzip<'a>(mut accept_encoding: impl Iterator<Item = &'a [u8]>) -> bool {
    accept_encoding.any(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii() == b"gzip"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bakes_settings_in_and_minifies() {
        let debug = Tag::build(&TagSettings::example(), true).unwrap();
        let small = Tag::build(&TagSettings::example(), false).unwrap();
        let text = String::from_utf8(debug.body.clone()).unwrap();
        assert!(text.contains(r#""sameSite":"Lax""#), "settings substituted");
        assert!(!text.contains("/*SETTINGS*/"));
        assert!(small.body.len() < debug.body.len() * 3 / 4, "{} vs {}", small.body.len(), debug.body.len());
        assert!(String::from_utf8(small.body.clone()).unwrap().contains("sameSite"));
        let gz = small.gzip.as_ref().unwrap();
        assert!(gz.len() < small.body.len());
        assert_eq!(small.gzip_etag, format!("\"gz+{}", &small.etag[1..]));
        assert_ne!(small.etag, debug.etag);
    }

    #[test]
    fn gzip_only_for_an_exact_token() {
        assert!(accepts_gzip([&b"deflate, gzip"[..]].into_iter()));
        assert!(accepts_gzip([&b"br"[..], &b" gzip "[..]].into_iter()));
        assert!(!accepts_gzip([&b"gzip;q=1.0"[..]].into_iter()));
        assert!(!accepts_gzip([&b"x-gzip"[..]].into_iter()));
    }
}
