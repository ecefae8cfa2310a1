//! Serving the tag and the test page: caching headers, gzip, ETags, and
//! the beacon endpoint, over real sockets.

mod common;

use std::io::Read;

use common::{Collector, Options, Pixel};

fn header<'a>(response: &'a str, name: &str) -> Option<&'a str> {
    let head = response.split("\r\n\r\n").next().unwrap();
    head.lines().find_map(|l| l.split_once(": ").filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

fn body(raw: &[u8]) -> &[u8] {
    let at = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    &raw[at + 4..]
}

#[test]
fn the_tag_is_served_minified_with_settings_and_strong_etags() {
    let c = Collector::start(Options {
        toml:
            "[sources.browser]\ntype = \"browser\"\nsession_timeout = \"45 minutes\"\ncookie_same_site = \"Strict\"\n"
                .into(),
        ..Options::default()
    });
    let raw = c.raw(b"GET /divolte.js HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(header(&text, "Content-Type"), Some("application/javascript"));
    assert_eq!(header(&text, "Cache-Control"), Some("public, max-age=3600"));
    assert_eq!(header(&text, "Vary"), Some("Accept-Encoding"));
    assert_eq!(header(&text, "Content-Encoding"), None);
    let etag = header(&text, "ETag").unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() == 46, "base64 SHA-256, quoted: {etag}");
    let js = String::from_utf8(body(&raw).to_vec()).unwrap();
    assert!(
        js.contains("\"sessionTimeoutSeconds\":2700") && js.contains("\"sameSite\":\"Strict\""),
        "settings baked in"
    );
    assert!(!js.contains("\n  "), "minified");

    // gzip only for an exact token, with its own ETag.
    let gz = c.raw(b"GET /divolte.js HTTP/1.1\r\nAccept-Encoding: deflate, gzip\r\nConnection: close\r\n\r\n");
    let gz_text = String::from_utf8_lossy(&gz).into_owned();
    assert_eq!(header(&gz_text, "Content-Encoding"), Some("gzip"));
    assert_eq!(header(&gz_text, "ETag"), Some(format!("\"gz+{}", &etag[1..]).as_str()));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(body(&gz)).read_to_string(&mut unzipped).unwrap();
    assert_eq!(unzipped, js);
    let q = String::from_utf8_lossy(
        &c.raw(b"GET /divolte.js HTTP/1.1\r\nAccept-Encoding: gzip;q=0.5\r\nConnection: close\r\n\r\n"),
    )
    .into_owned();
    assert_eq!(header(&q, "Content-Encoding"), None);

    // Revalidation answers 304 for the variant the client holds.
    let not_modified = c.get("/divolte.js", &format!("If-None-Match: {etag}\r\n"));
    assert!(not_modified.starts_with("HTTP/1.1 304") && not_modified.ends_with("\r\n\r\n"), "{not_modified}");
    let other_variant = c.get("/divolte.js", &format!("If-None-Match: {etag}\r\nAccept-Encoding: gzip\r\n"));
    assert!(other_variant.starts_with("HTTP/1.1 200"));
    let r =
        String::from_utf8_lossy(&c.raw(b"POST /divolte.js HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
            .into_owned();
    assert!(r.starts_with("HTTP/1.1 405") && r.contains("Allow: GET"), "{r}");
    assert_eq!(c.metric("divolte_http_requests_total", "endpoint=\"tag\""), 6);
}

#[test]
fn javascript_debug_serves_the_readable_tag_and_names_are_configurable() {
    let c = Collector::start(Options {
        toml: "[sources.web]\ntype = \"browser\"\nprefix = \"/t\"\n[sources.web.javascript]\nname = \"tracker.js\"\ndebug = true\n".into(),
        ..Options::default()
    });
    assert!(c.get("/divolte.js", "").starts_with("HTTP/1.1 404"));
    let r = c.get("/t/tracker.js", "");
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("\n  'use strict';"), "readable source");
    assert!(r.contains("\"scriptName\":\"tracker.js\""));
}

#[test]
fn the_test_page_is_served_at_the_root_unless_switched_off() {
    let c = Collector::start(Options::default());
    let r = c.get("/", "");
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("text/html; charset=utf-8"), "{r}");
    assert!(r.contains("<script src=\"divolte.js\" defer async></script>") && r.contains("divolte.signal("));
    let off = Collector::start(Options { toml: "serve_static_resources = false\n".into(), ..Options::default() });
    assert!(off.get("/", "").starts_with("HTTP/1.1 404"));
}

#[test]
fn beacon_posts_are_accepted_only_where_enabled_and_answered_204() {
    let c = Collector::start(Options {
        toml: "[sources.browser]\ntype = \"browser\"\n[sources.beacon]\ntype = \"browser\"\nprefix = \"/b\"\n[sources.beacon.javascript]\nuse_beacon = true\n".into(),
        ..Options::default()
    });
    let q = Pixel::default().query();
    let plain = String::from_utf8_lossy(
        &c.raw(format!("POST /csc-event?{q} HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes()),
    )
    .into_owned();
    assert!(plain.starts_with("HTTP/1.1 405"), "{plain}");
    let beacon = String::from_utf8_lossy(&c.raw(
        format!("POST /b/csc-event?{q} HTTP/1.1\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    ))
    .into_owned();
    assert!(beacon.starts_with("HTTP/1.1 204 No Content\r\n"), "{beacon}");
    assert!(!beacon.contains("Content-Length"), "{beacon}");
    assert_eq!(c.metric("divolte_records_mapped_total", ""), 1);
}
