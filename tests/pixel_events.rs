//! Browser pixel events end to end: real HTTP in, Avro container files
//! out, read back with apache-avro and with Python's fastavro.

mod common;

use apache_avro::types::Value;
use common::{field, opt_str, read_avro_dir, read_with_fastavro, Collector, Options, Pixel, CHROME_UA};

fn send(c: &Collector, query: &str, headers: &str) -> String {
    c.get(&format!("/csc-event?{query}"), headers)
}

#[test]
fn a_pixel_event_becomes_a_default_event_record() {
    let c = Collector::start(Options::default());
    let r = send(&c, &Pixel::default().query(), &format!("User-Agent: {CHROME_UA}\r\n"));
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    for h in [
        "Content-Type: image/gif\r\n",
        "ETag: \"6b3edc43-20ec-4078-bc47-e965dd76b88a\"\r\n",
        "Cache-Control: private, no-cache, proxy-revalidate\r\n",
        "Pragma: no-cache\r\n",
        "Expires: Fri, 14 Apr 1995 11:30:00 GMT\r\n",
    ] {
        assert!(r.contains(h), "missing {h:?} in {r}");
    }
    assert!(r.split("\r\n\r\n").nth(1).unwrap().starts_with("GIF89a"));
    assert_eq!(c.metric("divolte_records_mapped_total", ""), 1);

    let (status, c) = c.stop();
    assert!(status.success(), "exit {status:?}\n{}", c.log_text());
    let records = read_avro_dir(&c.publish_dir());
    assert_eq!(records.len(), 1, "{}", c.log_text());
    let r = &records[0];
    assert_eq!(field(r, "detectedDuplicate"), &Value::Boolean(false));
    assert_eq!(field(r, "detectedCorruption"), &Value::Boolean(false));
    assert_eq!(field(r, "firstInSession"), &Value::Boolean(true));
    assert_eq!(field(r, "clientTimestamp"), &Value::Long(i64::from_str_radix("i1t8q2b6", 36).unwrap()));
    let Value::Long(ts) = field(r, "timestamp") else { panic!() };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    assert!((now - ts).abs() < 60_000, "server timestamp {ts} vs now {now}");
    assert_eq!(field(r, "remoteHost"), &Value::String("127.0.0.1".into()));
    assert_eq!(opt_str(r, "location").as_deref(), Some("http://localhost:8290/"));
    assert_eq!(opt_str(r, "referer"), None);
    assert_eq!(field(r, "viewportPixelWidth"), &Value::Union(1, Box::new(Value::Int(1106))));
    assert_eq!(field(r, "screenPixelHeight"), &Value::Union(1, Box::new(Value::Int(1027))));
    assert_eq!(opt_str(r, "partyId").as_deref(), Some("0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG"));
    assert_eq!(opt_str(r, "pageViewId").as_deref(), Some("0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF"));
    assert_eq!(field(r, "eventType"), &Value::String("pageView".into()));
    assert_eq!(opt_str(r, "userAgentString").as_deref(), Some(CHROME_UA));
    assert_eq!(opt_str(r, "userAgentName").as_deref(), Some("Chrome"));
    assert_eq!(opt_str(r, "userAgentVendor").as_deref(), Some("Google Inc."));
    assert_eq!(opt_str(r, "userAgentDeviceCategory").as_deref(), Some("Personal computer"));
    assert_eq!(opt_str(r, "userAgentOsFamily").as_deref(), Some("OS X"));
    assert_eq!(opt_str(r, "userAgentOsVersion").as_deref(), Some("10.10.1"));

    let independent = read_with_fastavro(&c.publish_dir());
    assert_eq!(independent.len(), 1);
    let j = &independent[0];
    assert_eq!(j["partyId"], "0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG");
    assert_eq!(j["viewportPixelWidth"], 1106);
    assert_eq!(j["eventType"], "pageView");
    assert_eq!(j["userAgentOsVendor"], "Apple Computer, Inc.");
    assert_eq!(j["timestamp"], *ts);
}

#[test]
fn checksums_flag_corruption_including_the_reference_vectors() {
    let c = Collector::start(Options::default());
    // The original's test query (reference 2.5), checksum si9804: valid.
    let reference = "c=i1t8q2b6&e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&f=f&h=qd&i=1ak&j=sj&k=2&l=http%3A%2F%2Flocalhost%3A8290%2F&n=f&p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8&t=pageView&v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&w=uq";
    let unicode = "c=i1t8q2b6&e=0%3AeventId&f=f&h=qd&i=1ak&j=sj&k=2&l=http%3A%2F%2Flocalhost%3A8290%2F&n=f&p=0%3Ai1t84hgy%3Aparty&s=0%3Ai1t84hgy%3Asession&t=%E1%BB%A5%C3%B1%E2%9A%95%C2%A9%C2%BA%E1%B8%8C%E2%84%A8&v=0%3ApageView&w=uq";
    let emoji = Pixel { event_type: "launch 🚀 now".into(), event: "0:emoji".into(), ..Pixel::default() };
    let cases = [
        (format!("{reference}&x=si9804"), false),
        (format!("{reference}&x=si9805"), true),
        (reference.to_owned(), true),
        (format!("{reference}&x"), true),
        (format!("{reference}&x="), true),
        (format!("{unicode}&x=-ql2p2c"), false),
        (emoji.query(), false),
    ];
    for (q, _) in &cases {
        assert!(send(&c, q, "").starts_with("HTTP/1.1 200"));
    }
    assert_eq!(c.metric("divolte_events_corrupt_total", ""), 4);
    let (status, c) = c.stop();
    assert!(status.success());
    let records = read_avro_dir(&c.publish_dir());
    assert_eq!(records.len(), cases.len());
    let mut corrupt: Vec<(String, bool)> = records
        .iter()
        .map(|r| (opt_str(r, "sessionId").unwrap(), field(r, "detectedCorruption") == &Value::Boolean(true)))
        .collect();
    corrupt.sort();
    let flagged = corrupt.iter().filter(|(_, c)| *c).count();
    assert_eq!(flagged, 4, "{corrupt:?}");
    let emoji_record =
        records.iter().find(|r| field(r, "eventType") == &Value::String("launch 🚀 now".into())).unwrap();
    assert_eq!(field(emoji_record, "detectedCorruption"), &Value::Boolean(false), "emoji checksums verify");
}

#[test]
fn events_without_a_valid_party_id_are_answered_but_dropped_and_counted() {
    let c = Collector::start(Options::default());
    let no_party = Pixel { party: "garbage".into(), ..Pixel::default() };
    let no_session = Pixel { session: "1:abc:def".into(), ..Pixel::default() };
    for q in [no_party.query(), no_session.query(), "p=0%3Aabc%3Adef&s=0%3Aabc%3Aghi".to_owned(), String::new()] {
        let r = send(&c, &q, "");
        assert!(r.starts_with("HTTP/1.1 200") && r.contains("image/gif"), "{r}");
    }
    assert_eq!(c.metric("divolte_events_rejected_total", "invalid_party_id"), 2);
    assert_eq!(c.metric("divolte_events_rejected_total", "invalid_session_id"), 1);
    assert_eq!(c.metric("divolte_events_rejected_total", "incomplete"), 1);
    assert_eq!(c.metric("divolte_records_mapped_total", ""), 0);
    let (_, c) = c.stop();
    assert!(read_avro_dir(&c.publish_dir()).is_empty(), "no file for no records");
    assert_eq!(std::fs::read_dir(c.work_dir()).unwrap().count(), 0, "no partial file left");
}

#[test]
fn revalidating_the_pixel_gets_304_and_is_not_logged() {
    let c = Collector::start(Options::default());
    for inm in [
        "\"6b3edc43-20ec-4078-bc47-e965dd76b88a\"",
        "W/\"6b3edc43-20ec-4078-bc47-e965dd76b88a\"",
        "\"other\", \"6b3edc43-20ec-4078-bc47-e965dd76b88a\"",
    ] {
        let r = send(&c, &Pixel::default().query(), &format!("If-None-Match: {inm}\r\n"));
        assert!(r.starts_with("HTTP/1.1 304 Not Modified\r\n"), "{r}");
        assert!(r.contains("ETag: \"6b3edc43-20ec-4078-bc47-e965dd76b88a\""));
        assert!(r.ends_with("\r\n\r\n"), "no body");
    }
    assert!(send(&c, &Pixel::default().query(), "If-None-Match: \"other\"\r\n").starts_with("HTTP/1.1 200"));
    assert_eq!(c.metric("divolte_events_not_modified_total", ""), 3);
    assert_eq!(c.metric("divolte_records_mapped_total", ""), 1);
}

#[test]
fn identifiers_are_normalised_and_first_values_win() {
    let c = Collector::start(Options::default());
    let p = Pixel { party: "0:+I1T84HGY:abc".into(), ..Pixel::default() };
    let q = format!("{}&t=second&l=http%3A%2F%2Fother%2F", p.query());
    send(&c, &q, "");
    let (_, c) = c.stop();
    let records = read_avro_dir(&c.publish_dir());
    let r = &records[0];
    assert_eq!(opt_str(r, "partyId").as_deref(), Some("0:i1t84hgy:abc"));
    assert_eq!(field(r, "eventType"), &Value::String("pageView".into()));
    assert_eq!(opt_str(r, "location").as_deref(), Some("http://localhost:8290/"));
    assert_eq!(field(r, "detectedCorruption"), &Value::Boolean(true), "the extra values changed the checksum input");
}

#[test]
fn configured_prefix_and_suffix_route_the_pixel() {
    let c = Collector::start(Options {
        toml: "[sources.web]\ntype = \"browser\"\nprefix = \"/tracking\"\nevent_suffix = \"hit\"\n".into(),
        ..Options::default()
    });
    assert!(send(&c, &Pixel::default().query(), "").starts_with("HTTP/1.1 404"));
    let r = c.get(&format!("/tracking/hit?{}", Pixel::default().query()), "");
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("image/gif"), "{r}");
    assert_eq!(c.metric("divolte_records_mapped_total", ""), 1);
}

#[test]
fn behind_a_proxy_the_last_forwarded_address_is_the_remote_host() {
    let on = Collector::start(Options { toml: "use_x_forwarded_for = true\n".into(), ..Options::default() });
    let q = |l: &str| Pixel { location: l.into(), ..Pixel::default() }.query();
    send(&on, &q("http://t/one"), "X-Forwarded-For: 127.0.0.1,192.168.13.23\r\n");
    send(&on, &q("http://t/two"), "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.1.1.1, 2001:db8::5\r\n");
    send(&on, &q("http://t/three"), "X-Forwarded-For: not-an-address\r\n");
    let off = Collector::start(Options::default());
    send(&off, &q("http://t/four"), "X-Forwarded-For: 192.168.13.23\r\n");
    let mut hosts = std::collections::BTreeMap::new();
    for c in [on, off] {
        let (_, c) = c.stop();
        for r in read_avro_dir(&c.publish_dir()) {
            let Value::String(host) = field(&r, "remoteHost") else { panic!() };
            hosts.insert(opt_str(&r, "location").unwrap(), host.clone());
        }
    }
    assert_eq!(hosts["http://t/one"], "192.168.13.23");
    assert_eq!(hosts["http://t/two"], "2001:db8:0:0:0:0:0:5", "the last header wins");
    assert_eq!(hosts["http://t/three"], "127.0.0.1", "garbage keeps the peer");
    assert_eq!(hosts["http://t/four"], "127.0.0.1", "ignored unless enabled");
}

#[test]
fn a_duplicate_is_caught_whichever_shard_receives_it() {
    let c = Collector::start(Options { cores: 2, ..Options::default() });
    let repeated = Pixel { location: "http://t/repeated".into(), ..Pixel::default() }.query();
    // Each request on a new connection: the kernel spreads them over both shards.
    for _ in 0..20 {
        send(&c, &repeated, "");
    }
    for i in 0..20 {
        send(
            &c,
            &Pixel { event: format!("0:other{i}"), location: format!("http://t/other/{i}"), ..Pixel::default() }
                .query(),
            "",
        );
    }
    let per_shard = |name: &str| -> Vec<u64> { (0..2).map(|s| c.metric(name, &format!("shard=\"{s}\""))).collect() };
    let received = per_shard("divolte_shard_events_received_total");
    let duplicates = per_shard("divolte_shard_events_duplicate_total");
    assert!(received.iter().all(|&n| n > 0), "both shards received events: {received:?}");
    // One original, on one shard: if both shards flagged repeats, one of
    // them flagged an event first seen by the other.
    assert!(duplicates.iter().all(|&n| n > 0), "both shards flagged repeats: {duplicates:?}");
    assert_eq!(c.metric("divolte_events_duplicate_total", ""), 19);
    let (_, c) = c.stop();
    let records = read_avro_dir(&c.publish_dir());
    let flags: Vec<bool> = records
        .iter()
        .filter(|r| opt_str(r, "location").as_deref() == Some("http://t/repeated"))
        .map(|r| field(r, "detectedDuplicate") == &Value::Boolean(true))
        .collect();
    assert_eq!(flags.len(), 20);
    assert_eq!(flags.iter().filter(|d| **d).count(), 19);
    assert!(records.iter().filter(|r| opt_str(r, "location").unwrap().contains("other")).all(|r| field(
        r,
        "detectedDuplicate"
    ) == &Value::Boolean(
        false
    )));
}

#[test]
fn discard_duplicates_drops_repeats_and_counts_them() {
    let c = Collector::start(Options {
        toml: "[mappings.m]\nsources = [\"browser\"]\nsinks = [\"hdfs\"]\ndiscard_duplicates = true\n".into(),
        ..Options::default()
    });
    let q = Pixel::default().query();
    for _ in 0..3 {
        send(&c, &q, "");
    }
    assert_eq!(c.metric("divolte_events_discarded_total", "duplicate"), 2);
    let (_, c) = c.stop();
    assert_eq!(read_avro_dir(&c.publish_dir()).len(), 1);
}

#[test]
fn discard_corrupted_drops_bad_checksums_and_counts_them() {
    let c = Collector::start(Options {
        toml: "[mappings.m]\nsources = [\"browser\"]\nsinks = [\"hdfs\"]\ndiscard_corrupted = true\n".into(),
        ..Options::default()
    });
    send(&c, &Pixel { event: "0:good".into(), ..Pixel::default() }.query(), "");
    send(&c, &Pixel { event: "0:bad".into(), checksum: false, ..Pixel::default() }.query(), "");
    assert_eq!(c.metric("divolte_events_discarded_total", "corrupt"), 1);
    let (_, c) = c.stop();
    assert_eq!(read_avro_dir(&c.publish_dir()).len(), 1);
}
