//! What browsers of today need from the collector, over real sockets: the
//! batch endpoint, cookies set by the server, CORS, compressed bodies,
//! opting out (GPC, DNT), truncated addresses and bot verdicts. The tag's
//! side of these runs in Chromium in `tests/browser.rs`.

mod common;

use std::io::Write;
use std::path::Path;

use common::{opt_str, read_avro_dir, read_with_fastavro, text, Collector, Options, Pixel, CHROME_UA};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A POST of `body` to `target` with extra `headers` lines; the answer.
fn post(c: &Collector, target: &str, headers: &str, body: &[u8]) -> String {
    let mut raw = format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    text(c.raw(&raw))
}

fn options(c: &Collector, target: &str, headers: &str) -> String {
    text(c.raw(format!("OPTIONS {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n").as_bytes()))
}

fn pixel(event: &str, location: &str) -> Pixel {
    Pixel { event: event.into(), location: location.into(), ..Pixel::default() }
}

fn locations(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = read_avro_dir(dir).iter().filter_map(|r| opt_str(r, "location")).collect();
    all.sort();
    all
}

fn set_cookies(answer: &str) -> Vec<&str> {
    answer.lines().filter_map(|l| l.strip_prefix("Set-Cookie: ")).collect()
}

#[test]
fn a_batch_is_handled_line_by_line_and_a_bad_line_fails_only_itself() {
    let c = Collector::start(Options::default());
    let lines = [
        pixel("0:pv0", "http://t/one").query(),
        "p=not-an-id&s=0%3Aa%3Ab".to_owned(),
        String::new(),
        format!("?{}", pixel("0:pv1", "http://t/two").query()),
        "caf\u{e9}=1".to_owned(),
    ];
    let body = lines.join("\r\n");
    let r = post(&c, "/csc-batch", "Content-Type: text/plain;charset=UTF-8\r\n", body.as_bytes());
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    let compressed = gzip(pixel("0:pv2", "http://t/three").query().as_bytes());
    let r = post(&c, "/csc-batch", "Content-Encoding: gzip\r\n", &compressed);
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    assert!(c.get("/csc-batch", "").starts_with("HTTP/1.1 405"));
    assert_eq!(c.metric("divolte_http_requests_total", "browser_batch"), 3);
    assert_eq!(c.metric("divolte_events_received_total", "browser"), 5, "four lines and the compressed one");
    assert_eq!(c.metric("divolte_events_rejected_total", "invalid_party_id"), 1);
    assert_eq!(c.metric("divolte_events_rejected_total", "incomplete"), 1, "the line that is not a query string");
    let (status, c) = c.stop();
    assert!(status.success());
    assert_eq!(locations(&c.publish_dir()), ["http://t/one", "http://t/three", "http://t/two"]);
}

#[test]
fn server_cookies_echo_the_tags_ids_and_attributes_and_nothing_else() {
    let c = Collector::start(Options {
        toml: concat!(
            "[sources.browser]\ntype = \"browser\"\nserver_cookies = true\ncookie_domain = \".example.com\"\n",
            "cookie_same_site = \"Lax\"\ncookie_secure = true\nparty_timeout = \"10 days\"\n",
            "[sources.plain]\ntype = \"browser\"\nprefix = \"/plain\"\n",
        )
        .into(),
        ..Options::default()
    });
    let p = Pixel::default();
    let r = c.get(&format!("/csc-event?{}", p.query()), "");
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("Content-Type: image/gif"), "{r}");
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 2, "{r}");
    let attributes = "; Domain=.example.com; SameSite=Lax; Secure";
    assert!(cookies[0].starts_with("_dvp=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG; Path=/; Expires="), "{r}");
    assert!(cookies[0].ends_with(&format!("; Max-Age=864000{attributes}")), "{r}");
    assert!(cookies[1].starts_with("_dvs=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8; Path=/; Expires="), "{r}");
    assert!(cookies[1].ends_with(&format!("; Max-Age=1800{attributes}")), "{r}");
    let expires = cookies[0].split("Expires=").nth(1).unwrap().split(';').next().unwrap();
    let in_days = httpdate::parse_http_date(expires).unwrap().duration_since(std::time::SystemTime::now()).unwrap();
    assert!((9.9..10.1).contains(&(in_days.as_secs_f64() / 86400.0)), "{expires}");

    // No cookies for what the server cannot vouch for, nor on other sources.
    let corrupt = Pixel { checksum: false, ..Pixel::default() }.query() + "&x=bad";
    assert!(set_cookies(&c.get(&format!("/csc-event?{corrupt}"), "")).is_empty(), "a corrupt event");
    let no_party = Pixel { party: "nonsense".into(), ..Pixel::default() }.query();
    assert!(set_cookies(&c.get(&format!("/csc-event?{no_party}"), "")).is_empty(), "no valid party id");
    assert!(set_cookies(&c.get(&format!("/plain/csc-event?{}", p.query()), "")).is_empty());

    // A batch's answer carries the ids of its last good line.
    let last = Pixel { party: "0:i1t84hgz:other".into(), event: "0:pv9".into(), ..Pixel::default() }.query();
    let r = post(&c, "/csc-batch", "", format!("{}\n{last}\n{corrupt}", p.query()).as_bytes());
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    assert!(set_cookies(&r)[0].starts_with("_dvp=0%3Ai1t84hgz%3Aother;"), "{r}");
}

#[test]
fn browsers_that_ask_not_to_be_tracked_are_answered_but_not_recorded() {
    let c = Collector::start(Options {
        toml: concat!(
            "[sources.browser]\ntype = \"browser\"\nrespect_gpc = true\nrespect_dnt = true\nserver_cookies = true\n",
            "[sources.deaf]\ntype = \"browser\"\nprefix = \"/deaf\"\n",
        )
        .into(),
        ..Options::default()
    });
    let q = |e: &str, l: &str| pixel(e, l).query();
    let r = c.get(&format!("/csc-event?{}", q("0:g", "http://t/gpc")), "Sec-GPC: 1\r\n");
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with(";"), "the pixel as usual: {r}");
    assert!(set_cookies(&r).is_empty(), "{r}");
    let r = c.get(&format!("/csc-event?{}", q("0:d", "http://t/dnt")), "DNT: 1\r\n");
    assert!(r.starts_with("HTTP/1.1 200") && set_cookies(&r).is_empty(), "{r}");
    let r = post(&c, "/csc-batch", "Sec-GPC: 1\r\n", q("0:b", "http://t/batch-gpc").as_bytes());
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    let r = c.get(&format!("/csc-event?{}", q("0:n", "http://t/no-signal")), "Sec-GPC: 0\r\n");
    assert_eq!(set_cookies(&r).len(), 2, "{r}");
    c.get(&format!("/deaf/csc-event?{}", q("0:x", "http://t/deaf")), "Sec-GPC: 1\r\nDNT: 1\r\n");
    assert_eq!(c.metric("divolte_events_opted_out_total", "gpc"), 2);
    assert_eq!(c.metric("divolte_events_opted_out_total", "dnt"), 1);
    let (status, c) = c.stop();
    assert!(status.success());
    assert_eq!(locations(&c.publish_dir()), ["http://t/deaf", "http://t/no-signal"]);
}

const PARTY: &str = "0:is8tiwk4:GKv5gCc5TtrvBTs9bXfVD8KIQ3oO~sEg";
const EVENT: &str = r#"{"session_id":"0:is8tiwk4:XLEUVj9hA6AXRUOp2zuIdUpaeFOC~7AU","event_id":"e1","is_new_party":true,"is_new_session":true,"client_timestamp_iso":"2016-08-24T13:29:39.412+02:00","event_type":"zipped"}"#;

#[test]
fn json_bodies_may_be_compressed_within_the_limit_and_bombs_are_refused() {
    let c = Collector::start(Options {
        toml: "[sources.app]\ntype = \"json\"\nevent_path = \"/json\"\nmaximum_body_size = 5000\n".into(),
        ..Options::default()
    });
    let target = format!("/json?p={PARTY}");
    let json = "Content-Type: application/json\r\n";
    let r = post(&c, &target, &format!("{json}Content-Encoding: gzip\r\n"), &gzip(EVENT.as_bytes()));
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(EVENT.replace("e1", "e2").as_bytes()).unwrap();
    let r = post(&c, &target, &format!("{json}Content-Encoding: deflate\r\n"), &z.finish().unwrap());
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    // 8,192 bytes decoded is the limit (5000 in whole 4 KiB buffers); a
    // bomb stops at it, a 100-fold body at the ratio.
    let bomb = gzip(&vec![b' '; 1 << 20]);
    assert!(bomb.len() < 8192, "small enough to pass the limit as it arrives");
    let r = post(&c, &target, &format!("{json}Content-Encoding: gzip\r\n"), &bomb);
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    let padded = format!("{}{{}}", " ".repeat(7900));
    let r = post(&c, &target, &format!("{json}Content-Encoding: gzip\r\n"), &gzip(padded.as_bytes()));
    assert!(r.starts_with("HTTP/1.1 413"), "more than 100 times its size: {r}");
    let r = post(&c, &target, &format!("{json}Content-Encoding: br\r\n"), EVENT.as_bytes());
    assert!(r.starts_with("HTTP/1.1 415"), "{r}");
    let r = post(&c, &target, &format!("{json}Content-Encoding: gzip\r\n"), b"plainly not gzip");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert_eq!(c.metric("divolte_http_errors_total", "decompressed"), 2);
    assert_eq!(c.metric("divolte_http_errors_total", "status=\"415\""), 1);
    assert!(c.get("/ping", "").starts_with("HTTP/1.1 200"), "the shard is fine");
    let (status, c) = c.stop();
    assert!(status.success());
    let records = read_avro_dir(&c.publish_dir());
    assert_eq!(records.len(), 2, "the gzip and the deflate event");
}

#[test]
fn preflights_and_answers_carry_cors_headers_for_allowed_origins_only() {
    let c = Collector::start(Options {
        toml: concat!(
            "[sources.app]\ntype = \"json\"\nevent_path = \"/json\"\n",
            "cors_allowed_origins = [\"https://shop.example.com\"]\n",
            "[sources.closed]\ntype = \"json\"\nevent_path = \"/closed\"\n",
            "[sources.browser]\ntype = \"browser\"\ncors_allowed_origins = [\"*\"]\n",
        )
        .into(),
        ..Options::default()
    });
    let ask = "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n";
    let shop = "Origin: https://shop.example.com\r\n";
    let r = options(&c, "/json", &format!("{shop}{ask}"));
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    for line in [
        "Access-Control-Allow-Origin: https://shop.example.com",
        "Access-Control-Allow-Credentials: true",
        "Vary: Origin",
        "Access-Control-Allow-Methods: POST",
        "Access-Control-Allow-Headers: Content-Type, Content-Encoding",
    ] {
        assert!(r.contains(&format!("{line}\r\n")), "{line} in {r}");
    }
    let r = options(&c, "/json", &format!("Origin: https://evil.example.net\r\n{ask}"));
    assert!(r.starts_with("HTTP/1.1 403") && !r.contains("Access-Control"), "{r}");
    let r = options(&c, "/closed", &format!("{shop}{ask}"));
    assert!(r.starts_with("HTTP/1.1 405") && !r.contains("Access-Control"), "no CORS configured: {r}");

    let target = format!("/json?p={PARTY}");
    let r = post(&c, &target, &format!("{shop}Content-Type: application/json\r\n"), EVENT.as_bytes());
    assert!(r.starts_with("HTTP/1.1 204") && r.contains("Access-Control-Allow-Origin: https://shop.example.com\r\n"));
    let r =
        post(&c, &target, "Origin: https://evil.example.net\r\nContent-Type: application/json\r\n", EVENT.as_bytes());
    assert!(r.starts_with("HTTP/1.1 204") && !r.contains("Access-Control"), "{r}");

    let r = options(&c, "/csc-batch", &format!("Origin: https://any.example.org\r\n{ask}"));
    assert!(r.starts_with("HTTP/1.1 204") && r.contains("Access-Control-Allow-Origin: *\r\n"), "{r}");
    assert!(!r.contains("Credentials"), "{r}");
    assert_eq!(c.metric("divolte_http_requests_total", "preflight"), 3);
}

const PRIVATE_SCHEMA: &str = r#"{"type": "record", "name": "Private", "fields": [
  {"name": "host", "type": ["null", "string"], "default": null},
  {"name": "city", "type": ["null", "string"], "default": null},
  {"name": "forwarded", "type": ["null", "string"], "default": null},
  {"name": "bot", "type": ["null", "boolean"], "default": null}
]}"#;

const PRIVATE_SCRIPT: &str = "mapping {
  map remoteHost() onto 'host'
  map ip2geo().cityName() onto 'city'
  map header('X-Forwarded-For').first() onto 'forwarded'
  map userAgent().bot() onto 'bot'
}
";

#[test]
fn addresses_are_truncated_after_the_geo_lookup_and_bots_are_flagged_or_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("city.mmdb");
    let made = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/make_mmdb.py"))
        .args(["city", db.to_str().unwrap(), "Amsterdam"])
        .status()
        .unwrap();
    assert!(made.success(), "mmdb-writer (tests/run-all.sh installs it)");
    std::fs::write(d.join("private.avsc"), PRIVATE_SCHEMA).unwrap();
    std::fs::write(d.join("private.groovy"), PRIVATE_SCRIPT).unwrap();
    let sink = |name: &str, extra: &str| {
        let out = d.join(name);
        format!(
            "[sinks.{name}]\ntype = \"hdfs\"\n{extra}\n[sinks.{name}.file_strategy]\nworking_dir = \"{}\"\npublish_dir = \"{}\"\n",
            out.display(),
            out.display()
        )
    };
    let toml = format!(
        "use_x_forwarded_for = true\n[global.mapper]\nanonymize_ip = true\nip2geo_database = \"{}\"\n\
         [sources.browser]\ntype = \"browser\"\ndead_letter_sink = \"dead\"\n\
         [mappings.private]\nsources = [\"browser\"]\nsinks = [\"private\"]\nschema_file = \"{}\"\nmapping_script_file = \"{}\"\n\
         [mappings.humans]\nsources = [\"browser\"]\nsinks = [\"humans\"]\ndiscard_bots = true\n{}{}{}",
        db.display(),
        d.join("private.avsc").display(),
        d.join("private.groovy").display(),
        sink("private", ""),
        sink("humans", ""),
        sink("dead", "format = \"json\"\njson_unions = \"plain\""),
    );
    let c = Collector::start(Options { toml, file_sink: false, ..Options::default() });
    let headless =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
    let forwarded = "X-Forwarded-For: 10.0.0.1, 203.0.113.77\r\n";
    let human = pixel("0:h", "http://t/human").query();
    assert!(c
        .get(&format!("/csc-event?{human}"), &format!("{forwarded}User-Agent: {CHROME_UA}\r\n"))
        .contains(" 200 "));
    let bot = pixel("0:b", "http://t/bot").query();
    assert!(c.get(&format!("/csc-event?{bot}"), &format!("{forwarded}User-Agent: {headless}\r\n")).contains(" 200 "));
    let refused = Pixel { party: "nonsense".into(), ..Pixel::default() }.query();
    c.get(&format!("/csc-event?{refused}"), &format!("{forwarded}User-Agent: {CHROME_UA}\r\n"));
    assert_eq!(c.metric("divolte_events_discarded_total", "bot"), 1);
    let (status, c) = c.stop();
    assert!(status.success(), "{}", c.log_text());
    let log = c.log_text();
    assert!(!log.contains("203.0.113.77"), "{log}");

    let private = read_with_fastavro(&d.join("private"));
    assert_eq!(private.len(), 2, "{private:?}");
    for r in &private {
        assert_eq!(r["host"], "203.0.113.0", "{r}");
        // The database knows 203.0.113.77 alone: the lookup saw the whole address.
        assert_eq!(r["city"], "Amsterdam", "{r}");
        assert!(r["forwarded"].is_null(), "the header is hidden from mappings: {r}");
    }
    let bots: Vec<bool> = private.iter().map(|r| r["bot"].as_bool().unwrap()).collect();
    assert_eq!(bots.iter().filter(|b| **b).count(), 1, "HeadlessChrome is a bot, Chrome is not: {private:?}");

    let humans = read_with_fastavro(&d.join("humans"));
    assert_eq!(humans.len(), 1, "discard_bots kept the human only: {humans:?}");
    assert_eq!(humans[0]["remoteHost"], "203.0.113.0");
    assert_eq!(humans[0]["location"], "http://t/human");

    let letters: Vec<serde_json::Value> = std::fs::read_dir(d.join("dead"))
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.unwrap().path()).ok())
        .flat_map(|t| t.lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<_>>())
        .collect();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0]["remoteHost"], "127.0.0.0");
    let headers = letters[0]["headers"].as_object().unwrap();
    assert!(headers.contains_key("user-agent") && !headers.contains_key("x-forwarded-for"), "{headers:?}");
}
