//! JSON sources over real sockets: the status codes of reference 3 and
//! records in the sink.

mod common;

use apache_avro::types::Value;
use common::{field, opt_str, read_avro_dir, Collector, Options};

const PARTY: &str = "0:is8tiwk4:GKv5gCc5TtrvBTs9bXfVD8KIQ3oO~sEg";
const EVENT: &str = r#"{"session_id":"0:is8tiwk4:XLEUVj9hA6AXRUOp2zuIdUpaeFOC~7AU","event_id":"AruZ~Em0WNlAnbyzVmwM~GR0cMb6Xl9r","is_new_party":true,"is_new_session":true,"client_timestamp_iso":"2016-08-24T13:29:39.412+02:00","event_type":"newUser","parameters":{"channel":"google"}}"#;

fn json_collector() -> Collector {
    Collector::start(Options {
        toml: "[sources.app]\ntype = \"json\"\nevent_path = \"/json\"\nmaximum_body_size = 5000\n".into(),
        ..Options::default()
    })
}

fn post(c: &Collector, target: &str, content_type: &str, body: &str) -> String {
    let ct = if content_type.is_empty() { String::new() } else { format!("Content-Type: {content_type}\r\n") };
    let raw = format!(
        "POST {target} HTTP/1.1\r\nHost: t\r\n{ct}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    String::from_utf8_lossy(&c.raw(raw.as_bytes())).into_owned()
}

#[test]
fn answers_with_the_original_status_codes() {
    let c = json_collector();
    let target = format!("/json?p={PARTY}");
    let r = c.get(&target, "");
    assert!(r.starts_with("HTTP/1.1 405") && r.contains("Allow: POST"), "{r}");
    let r = post(&c, &target, "text/plain", EVENT);
    assert!(r.starts_with("HTTP/1.1 415") && r.ends_with("Content type must be application/json."), "{r}");
    assert!(post(&c, &target, "", EVENT).starts_with("HTTP/1.1 415"));
    assert!(post(&c, &target, "application/json", "").starts_with("HTTP/1.1 400"), "empty body");
    assert!(post(&c, "/json", "application/json", EVENT).starts_with("HTTP/1.1 400"), "no party");
    assert!(post(&c, "/json?p=garbage", "application/json", EVENT).starts_with("HTTP/1.1 400"), "invalid party");
    // 5000 rounds up to two 4 KiB buffers: 8192 is accepted, one more byte is not.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(8192 - 10));
    assert_eq!(big.len(), 8192);
    assert!(
        post(&c, &target, "application/json", &big).starts_with("HTTP/1.1 204"),
        "invalid JSON is answered, then dropped"
    );
    let too_big = format!("{{\"pad\":\"{}\"}}", "x".repeat(8193 - 10));
    assert!(post(&c, &target, "application/json", &too_big).starts_with("HTTP/1.1 413"));
    let r = post(&c, &target, "application/json; charset=utf-8", EVENT);
    assert!(r.starts_with("HTTP/1.1 204 No Content\r\n"), "{r}");
    assert_eq!(c.metric("divolte_events_rejected_total", "invalid_body"), 2, "the empty and the padded body");
    assert_eq!(c.metric("divolte_records_mapped_total", ""), 1);
}

#[test]
fn chunked_bodies_and_expect_continue_work() {
    let c = json_collector();
    let head = format!("POST /json?p={PARTY} HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n");
    let mut s = c.connect();
    use std::io::{Read, Write};
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    let (a, b) = EVENT.split_at(40);
    s.write_all(format!("{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len()).as_bytes()).unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 204"), "{rest}");
    assert_eq!(c.metric("divolte_records_mapped_total", ""), 1);
}

#[test]
fn json_events_become_records_and_bad_ones_are_counted_drops() {
    let c = json_collector();
    let target = format!("/json?p={PARTY}");
    for body in [
        EVENT.to_owned(),
        EVENT.replace("+02:00", ""), // no offset: dropped, not a crash
        EVENT.replace("\"event_type\"", "\"colour\":1,\"event_type\""), // unknown property
        EVENT.replace("0:is8tiwk4:XLEU", "garbage"), // invalid session id
        "{not json".to_owned(),
        EVENT.to_owned(), // the same event again: a duplicate
    ] {
        assert!(post(&c, &target, "application/json", &body).starts_with("HTTP/1.1 204"));
    }
    assert_eq!(c.metric("divolte_events_received_total", "json"), 6);
    assert_eq!(c.metric("divolte_events_rejected_total", "invalid_body"), 3);
    assert_eq!(c.metric("divolte_events_rejected_total", "invalid_session_id"), 1);
    let (status, c) = c.stop();
    assert!(status.success());
    let records = read_avro_dir(&c.publish_dir());
    assert_eq!(records.len(), 2);
    let r = &records[0];
    assert_eq!(opt_str(r, "partyId").as_deref(), Some(PARTY));
    assert_eq!(opt_str(r, "sessionId").as_deref(), Some("0:is8tiwk4:XLEUVj9hA6AXRUOp2zuIdUpaeFOC~7AU"));
    assert_eq!(field(r, "eventType"), &Value::String("newUser".into()));
    assert_eq!(field(r, "firstInSession"), &Value::Boolean(true));
    assert_eq!(field(r, "clientTimestamp"), &Value::Long(1_472_038_179_412));
    assert_eq!(field(r, "detectedCorruption"), &Value::Boolean(false));
    assert_eq!(field(r, "remoteHost"), &Value::String("127.0.0.1".into()));
    assert_eq!(opt_str(r, "location"), None);
    assert_eq!(opt_str(r, "pageViewId"), None);
    assert_eq!(field(&records[1], "detectedDuplicate"), &Value::Boolean(true));
}

#[test]
fn a_party_id_with_escaped_colons_is_decoded() {
    // What URL encoders in Java, Python and JavaScript make of the id.
    let c = json_collector();
    let escaped = PARTY.replace(':', "%3A");
    let r = post(&c, &format!("/json?p={escaped}"), "application/json", EVENT);
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    let (_, c) = c.stop();
    let records = read_avro_dir(&c.publish_dir());
    assert_eq!(records.len(), 1);
    assert_eq!(opt_str(&records[0], "partyId").as_deref(), Some(PARTY));
}
