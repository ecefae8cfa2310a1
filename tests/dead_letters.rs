//! Dead letters (`sources.<n>.dead_letter_sink`): every event the
//! collector refuses or cannot map is written to the dead-letter sink with
//! its reason, receive time, address, source, request and headers, one
//! test request per reason.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Collector, Options, Pixel};
use serde_json::Value;

/// The dead letters published in `dir`, by the request's path and query.
fn letters(dir: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            out.push(serde_json::from_str(line).unwrap());
        }
    }
    out
}

fn post(c: &Collector, target: &str, body: &str) -> String {
    common::text(c.raw(
        format!(
            "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    ))
}

#[test]
fn every_refused_or_unmappable_event_becomes_a_dead_letter() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    std::fs::write(
        dir.join("strict.avsc"),
        r#"{"type": "record", "name": "Strict", "fields": [{"name": "x", "type": "string"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("strict.groovy"),
        "mapping {\n  when eventType().equalTo('ok') apply {\n    map 'v' onto 'x'\n  }\n}\n",
    )
    .unwrap();
    let sink = |name: &str, extra: &str| {
        format!(
            "[sinks.{name}]\ntype = \"hdfs\"\n{extra}\n[sinks.{name}.file_strategy]\nworking_dir = \"{}\"\npublish_dir = \"{}\"\n",
            dir.join(name).join("work").display(),
            dir.join(name).join("publish").display()
        )
    };
    let toml = format!(
        "[sources.browser]\ntype = \"browser\"\ndead_letter_sink = \"dead\"\n\
         [sources.app]\ntype = \"json\"\nevent_path = \"/json\"\ndead_letter_sink = \"dead\"\n\
         {}{}{}\
         [mappings.main]\nsources = [\"browser\", \"app\"]\nsinks = [\"main\"]\ndiscard_corrupted = true\n\
         [mappings.strict]\nsources = [\"browser\"]\nsinks = [\"strict\"]\nschema_file = \"{}\"\nmapping_script_file = \"{}\"\n",
        sink("main", ""),
        sink("strict", ""),
        sink("dead", "format = \"json\"\njson_unions = \"plain\""),
        dir.join("strict.avsc").display(),
        dir.join("strict.groovy").display(),
    );
    let c = Collector::start(Options { toml, file_sink: false, ..Options::default() });
    let get = |q: &str| c.get(&format!("/csc-event?{q}"), "Authorization: Basic c2VjcmV0\r\nUser-Agent: probe/1.0\r\n");

    let ok = Pixel { event_type: "ok".into(), location: "http://t/ok".into(), ..Pixel::default() }.query();
    assert!(get(&ok).starts_with("HTTP/1.1 200"));
    let corrupt =
        Pixel { event_type: "ok".into(), location: "http://t/corrupt".into(), checksum: false, ..Pixel::default() }
            .query()
            + "&x=bad";
    assert!(get(&corrupt).starts_with("HTTP/1.1 200"));
    let party = Pixel { event_type: "ok".into(), party: "nonsense".into(), ..Pixel::default() }.query();
    assert!(get(&party).starts_with("HTTP/1.1 200"));
    let session = Pixel { event_type: "ok".into(), session: "nonsense".into(), ..Pixel::default() }.query();
    assert!(get(&session).starts_with("HTTP/1.1 200"));
    let incomplete: String = ok.split('&').filter(|p| !p.starts_with("v=")).collect::<Vec<_>>().join("&");
    assert!(get(&incomplete).starts_with("HTTP/1.1 200"));
    let unmappable =
        Pixel { event_type: "other".into(), location: "http://t/unmappable".into(), ..Pixel::default() }.query();
    assert!(get(&unmappable).starts_with("HTTP/1.1 200"));
    assert!(
        post(&c, "/json?p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG", "{not json").starts_with("HTTP/1.1 204")
    );
    assert!(post(&c, "/json", "{\"session_id\": \"s\"}").starts_with("HTTP/1.1 400"));

    assert_eq!(c.metric("divolte_dead_letters_total", ""), 7);
    let (status, c) = c.stop();
    assert!(status.success(), "{}", c.log_text());

    let all = letters(&dir.join("dead").join("publish"));
    assert_eq!(all.len(), 7, "{all:#?}");
    let by_reason: BTreeMap<String, Vec<&Value>> = all.iter().fold(BTreeMap::new(), |mut m, l| {
        m.entry(l["reason"].as_str().unwrap().to_owned()).or_default().push(l);
        m
    });
    let one = |reason: &str| {
        let found = by_reason.get(reason).unwrap_or_else(|| panic!("no {reason} letter: {all:#?}"));
        assert_eq!(found.len(), 1, "{reason}: {found:#?}");
        found[0]
    };
    assert_eq!(one("corrupt")["request"], format!("GET /csc-event?{corrupt}"));
    let parties = &by_reason["invalid_party_id"];
    let from = |source: &str| *parties.iter().find(|l| l["source"] == source).unwrap();
    assert_eq!(from("browser")["request"], format!("GET /csc-event?{party}"));
    assert_eq!(from("app")["request"], "POST /json");
    assert_eq!(from("app")["body"], "{\"session_id\": \"s\"}");
    assert_eq!(one("invalid_session_id")["source"], "browser");
    assert_eq!(one("incomplete")["request"], format!("GET /csc-event?{incomplete}"));
    let mapping = one("mapping_error");
    assert_eq!(mapping["request"], format!("GET /csc-event?{unmappable}"));
    assert!(mapping["detail"].as_str().unwrap().contains("mapping strict: field x"), "{mapping}");
    let invalid_bodies = &by_reason["invalid_body"];
    assert_eq!(invalid_bodies.len(), 1);
    assert_eq!(invalid_bodies[0]["body"], "{not json");
    assert_eq!(invalid_bodies[0]["source"], "app");
    for letter in &all {
        assert_eq!(letter["remoteHost"], "127.0.0.1");
        assert!(letter["timestamp"].as_i64().unwrap() > 1_600_000_000_000);
        let headers = letter["headers"].as_object().unwrap();
        assert!(!headers.contains_key("authorization"), "credentials are never written: {letter}");
    }
    assert_eq!(one("corrupt")["headers"]["user-agent"], "probe/1.0");
}

#[test]
fn a_record_its_sink_queue_cannot_take_becomes_a_dead_letter() {
    // A Kafka lane that holds one record and a broker that takes none: the
    // first record goes to librdkafka, the second waits in the lane, and
    // later ones do not fit.
    let broker = common::Broker::start(&[("clicks", 1)]);
    broker.freeze(true);
    let data = tempfile::tempdir().unwrap();
    let dead = data.path().join("dead");
    let toml = format!(
        "[global.kafka]\nenabled = true\nbuffer_size = 1\n[global.kafka.producer]\n\"bootstrap.servers\" = \"{}\"\n\
         \"queue.buffering.max.messages\" = 1\n[sources.browser]\ntype = \"browser\"\ndead_letter_sink = \"dead\"\n\
         [sinks.kafka]\ntype = \"kafka\"\ntopic = \"clicks\"\n[sinks.dead]\ntype = \"hdfs\"\nformat = \"json\"\njson_unions = \"plain\"\n\
         [sinks.dead.file_strategy]\nworking_dir = \"{}\"\npublish_dir = \"{}\"\n\
         [mappings.main]\nsources = [\"browser\"]\nsinks = [\"kafka\"]\n",
        broker.bootstrap(),
        dead.join("work").display(),
        dead.join("publish").display()
    );
    let c = Collector::start(Options { toml, file_sink: false, ..Options::default() });
    for i in 0..5 {
        let q = Pixel { location: format!("http://t/{i}"), ..Pixel::default() }.query();
        assert!(c.get(&format!("/csc-event?{q}"), "").starts_with("HTTP/1.1 200"));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let full = c.metric("divolte_records_dropped_total", "cause=\"queue_full\"");
    assert!(full >= 1, "records did not fit: {}", c.log_text());
    assert_eq!(c.metric("divolte_dead_letters_total", ""), full, "each became a dead letter");
    broker.freeze(false);
    let (status, c) = c.stop();
    assert!(status.success(), "{}", c.log_text());
    let all = letters(&dead.join("publish"));
    assert_eq!(all.len() as u64, full);
    for letter in &all {
        assert_eq!(letter["reason"], "queue_full");
        assert!(letter["detail"].as_str().unwrap().contains("the queue of sink kafka is full"), "{letter}");
        assert!(letter["request"].as_str().unwrap().starts_with("GET /csc-event?"), "{letter}");
    }
}
