//! First-party cookies set by the collector (`server_cookies`): the party
//! and session cookies the tag writes, with the same names, values and
//! attributes, sent as `Set-Cookie` on pixel and batch answers. A cookie a
//! server on the site's own domain sets is kept for its whole lifetime by
//! browsers that cap cookies written by scripts (Safari's ITP: 7 days).
//! The values are always the ids the tag sent, never new ones.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::assets::TagSettings;

/// What JavaScript's `encodeURIComponent` escapes: the tag writes its
/// cookies with it and reads them back with `decodeURIComponent`.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'!')
    .remove(b'~')
    .remove(b'*')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')');

/// A browser source's two cookies.
#[derive(Debug, Clone)]
pub struct ServerCookies {
    party: Cookie,
    session: Cookie,
    /// `; Domain=..; SameSite=..; Secure`, as configured.
    attributes: String,
}

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    lifetime: Duration,
}

impl ServerCookies {
    /// The cookies of the tag built from `tag`.
    pub fn new(tag: &TagSettings) -> Self {
        let mut attributes = String::new();
        if !tag.cookie_domain.is_empty() {
            let _ = write!(attributes, "; Domain={}", tag.cookie_domain);
        }
        if !tag.same_site.is_empty() {
            let _ = write!(attributes, "; SameSite={}", tag.same_site);
        }
        if tag.secure {
            attributes.push_str("; Secure");
        }
        Self {
            party: Cookie { name: tag.party_cookie.clone(), lifetime: Duration::from_secs(tag.party_timeout_seconds) },
            session: Cookie {
                name: tag.session_cookie.clone(),
                lifetime: Duration::from_secs(tag.session_timeout_seconds),
            },
            attributes,
        }
    }

    /// Appends the two `Set-Cookie` header lines for `party` and `session`,
    /// expiring their lifetimes after `now`.
    pub fn write(&self, party: &str, session: &str, now: SystemTime, out: &mut String) {
        for (cookie, value) in [(&self.party, party), (&self.session, session)] {
            let expires = httpdate::fmt_http_date(now + cookie.lifetime);
            let _ = write!(
                out,
                "Set-Cookie: {}={}; Path=/; Expires={expires}; Max-Age={}{}\r\n",
                cookie.name,
                utf8_percent_encode(value, URI_COMPONENT),
                cookie.lifetime.as_secs(),
                self.attributes
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> TagSettings {
        TagSettings { cookie_domain: "example.com".into(), secure: true, ..TagSettings::example() }
    }

    #[test]
    fn both_cookies_with_the_tags_encoding_and_attributes() {
        let mut out = String::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        ServerCookies::new(&settings()).write("0:lo2abc:Ab~_9", "0:lo2abd:s!x", now, &mut out);
        assert_eq!(
            out,
            "Set-Cookie: _dvp=0%3Alo2abc%3AAb~_9; Path=/; Expires=Thu, 13 Nov 2025 22:13:20 GMT; Max-Age=63072000; Domain=example.com; SameSite=Lax; Secure\r\n\
             Set-Cookie: _dvs=0%3Alo2abd%3As!x; Path=/; Expires=Tue, 14 Nov 2023 22:43:20 GMT; Max-Age=1800; Domain=example.com; SameSite=Lax; Secure\r\n"
        );
    }

    #[test]
    fn no_attributes_when_none_are_configured() {
        let tag = TagSettings { cookie_domain: String::new(), same_site: String::new(), secure: false, ..settings() };
        let mut out = String::new();
        ServerCookies::new(&tag).write("0:a:b", "0:a:c", SystemTime::now(), &mut out);
        assert!(out
            .lines()
            .all(|l| l.ends_with(&format!("Max-Age={}", if l.contains("_dvp") { 63072000 } else { 1800 }))));
    }
}
