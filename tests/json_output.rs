//! JSON output beside Avro (`sinks.<n>.format = "json"`): the same events
//! through an Avro file sink, two JSON lines file sinks (tagged and plain
//! unions) and a JSON Kafka sink; the JSON is compared field by field with
//! the Avro records as fastavro reads them and as fastavro's own JSON
//! encoder writes them.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{read_with_fastavro, Broker, Collector, Options, Pixel};
use serde_json::Value;

fn file_sink(name: &str, dir: &Path, extra: &str) -> String {
    format!(
        "[sinks.{name}]\ntype = \"hdfs\"\n{extra}\n[sinks.{name}.file_strategy]\nworking_dir = \"{}\"\npublish_dir = \"{}\"\n",
        dir.join("work").display(),
        dir.join("publish").display()
    )
}

/// Every published JSON lines record of `dir`, by location.
fn json_lines(dir: &Path) -> BTreeMap<String, Value> {
    let mut records = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("jsonl"), "{path:?}");
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            records.insert(location(&record), record);
        }
    }
    records
}

/// A record's location, plain or tagged.
fn location(record: &Value) -> String {
    match &record["location"] {
        Value::String(s) => s.clone(),
        Value::Object(o) => o["string"].as_str().unwrap().to_owned(),
        other => panic!("location {other}"),
    }
}

fn by_location(records: Vec<Value>) -> BTreeMap<String, Value> {
    records.into_iter().map(|r| (location(&r), r)).collect()
}

#[test]
fn json_sinks_carry_the_same_records_as_the_avro_sink() {
    let data = tempfile::tempdir().unwrap();
    let (avro, tagged, plain) = (data.path().join("avro"), data.path().join("tagged"), data.path().join("plain"));
    let broker = Broker::start(&[("clicks-json", 1)]);
    let toml = format!(
        "[global.kafka]\nenabled = true\n[global.kafka.producer]\n\"bootstrap.servers\" = \"{}\"\n\
         [sinks.kafka]\ntype = \"kafka\"\ntopic = \"clicks-json\"\nformat = \"json\"\njson_unions = \"plain\"\n{}{}{}\
         [mappings.main]\nsources = [\"browser\"]\nsinks = [\"avro\", \"tagged\", \"plain\", \"kafka\"]\n",
        broker.bootstrap(),
        file_sink("avro", &avro, ""),
        file_sink("tagged", &tagged, "format = \"json\""),
        file_sink("plain", &plain, "format = \"json\"\njson_unions = \"plain\""),
    );
    let c = Collector::start(Options { toml, file_sink: false, ..Options::default() });
    let agent = "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n";
    for i in 0..20 {
        // Custom parameters on some (a map of JSON values in the default
        // schema), a quote and non-ASCII text to escape.
        let params = (i % 2 == 0).then(|| format!("(jtotal!{i}.5!sname!caf\u{e9} \"x\"!aitems!(dcount!1!).)"));
        let q = Pixel { location: format!("http://t/{i}?q=\"ü\""), params, ..Pixel::default() }.query();
        assert!(c.get(&format!("/csc-event?{q}"), agent).starts_with("HTTP/1.1 200"));
    }
    let kafka = broker.consume("clicks-json", 20, Duration::from_secs(20));
    let (status, c) = c.stop();
    assert!(status.success(), "{}", c.log_text());

    let from_avro = by_location(read_with_fastavro(&avro.join("publish")));
    assert_eq!(from_avro.len(), 20);
    let plain = json_lines(&plain.join("publish"));
    assert_eq!(plain, from_avro, "plain JSON = the Avro records as fastavro reads them");

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/avro_to_json.py");
    let out = Command::new("python3").arg(script).arg(avro.join("publish")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reference =
        by_location(String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect());
    let tagged = json_lines(&tagged.join("publish"));
    assert_eq!(tagged, reference, "tagged JSON = fastavro's Avro JSON encoding of the same records");
    let sample = tagged.values().next().unwrap();
    assert!(sample["location"]["string"].is_string(), "a union value names its branch: {sample}");
    assert!(sample["detectedDuplicate"].is_boolean(), "a plain field is bare");

    assert_eq!(kafka.len(), 20);
    let on_topic = by_location(kafka.iter().map(|m| serde_json::from_slice(&m.value).unwrap()).collect());
    assert_eq!(on_topic, from_avro, "Kafka JSON values = the Avro records");
}

#[test]
fn json_with_confluent_framing_is_refused_with_its_key() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("c.toml");
    std::fs::write(
        &config,
        "[global.kafka]\nenabled = true\n[sinks.k]\ntype = \"kafka\"\nmode = \"confluent\"\nformat = \"json\"\n\
         [mappings.m]\nsources = [\"browser\"]\nsinks = [\"k\"]\nconfluent_id = 1\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_divolte-collector")).arg("check-config").arg(&config).output().unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("divolte.sinks.k.format"), "{text}");
}
