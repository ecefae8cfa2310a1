//! Reload without restart: under load, a mapping script and its schema
//! change (a field added) and SIGHUP reloads them; every event is in
//! exactly one record, written whole by the old or the new mapping, each
//! file holds one schema. A broken script is refused and traffic goes on;
//! with `watch_config` a changed file reloads by itself.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{eventually, Collector, Options, Pixel};
use serde_json::Value;

const V1_SCHEMA: &str = r#"{"type": "record", "name": "Click", "fields": [
  {"name": "location", "type": ["null", "string"], "default": null},
  {"name": "version", "type": "string"}]}"#;
const V1_SCRIPT: &str = "mapping {\n  map location() onto 'location'\n  map 'v1' onto 'version'\n}\n";
const V2_SCHEMA: &str = r#"{"type": "record", "name": "Click", "fields": [
  {"name": "location", "type": ["null", "string"], "default": null},
  {"name": "version", "type": "string"},
  {"name": "party", "type": ["null", "string"], "default": null}]}"#;
const V2_SCRIPT: &str =
    "mapping {\n  map location() onto 'location'\n  map 'v2' onto 'version'\n  map partyId() onto 'party'\n}\n";

fn config(dir: &Path, watch: bool) -> String {
    format!(
        "watch_config = {watch}\n[global.hdfs]\nthreads = 1\n[sinks.clicks]\ntype = \"hdfs\"\n[sinks.clicks.file_strategy]\n\
         working_dir = \"{}\"\npublish_dir = \"{}\"\n[mappings.main]\nsources = [\"browser\"]\nsinks = [\"clicks\"]\n\
         schema_file = \"{}\"\nmapping_script_file = \"{}\"\n",
        dir.join("work").display(),
        dir.join("publish").display(),
        dir.join("click.avsc").display(),
        dir.join("click.groovy").display()
    )
}

/// Every published file's schema field names and records (fastavro).
fn files(dir: &Path) -> Vec<(Vec<String>, Vec<Value>)> {
    let script = "import fastavro, json, pathlib, sys\n\
        for p in sorted(pathlib.Path(sys.argv[1]).glob('*.avro')):\n\
        \x20   r = fastavro.reader(open(p, 'rb'))\n\
        \x20   print(json.dumps([[f['name'] for f in r.writer_schema['fields']], list(r)]))\n";
    let out = Command::new("python3").arg("-c").arg(script).arg(dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Keep-alive clients sending events with unique locations until `stop`;
/// they return the locations answered 200.
fn load(port: u16, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    (0..6)
        .map(|client| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut acked = Vec::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let location = format!("http://t/{client}/{i}");
                    i += 1;
                    let q = Pixel { location: location.clone(), ..Pixel::default() }.query();
                    s.write_all(format!("GET /csc-event?{q} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
                    // The pixel answer is small: read it whole.
                    let mut buf = [0u8; 4096];
                    let n = s.read(&mut buf).unwrap();
                    if buf[..n].starts_with(b"HTTP/1.1 200") {
                        acked.push(location);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                acked
            })
        })
        .collect()
}

#[test]
fn a_mapping_and_schema_change_under_load_switch_whole_events_and_files() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    std::fs::write(dir.join("click.avsc"), V1_SCHEMA).unwrap();
    std::fs::write(dir.join("click.groovy"), V1_SCRIPT).unwrap();
    let c = Collector::start(Options { toml: config(dir, false), file_sink: false, ..Options::default() });

    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(c.port, stop.clone());
    std::thread::sleep(Duration::from_millis(800));
    std::fs::write(dir.join("click.avsc"), V2_SCHEMA).unwrap();
    std::fs::write(dir.join("click.groovy"), V2_SCRIPT).unwrap();
    c.signal(libc::SIGHUP);
    eventually(Duration::from_secs(10), || c.metric("divolte_config_reloads_total", "result=\"ok\"") == 1);
    std::thread::sleep(Duration::from_millis(800));

    // A script that does not compile is refused; the running one stays.
    std::fs::write(dir.join("click.groovy"), "mapping {\n  map nonsense( onto 'version'\n}\n").unwrap();
    c.signal(libc::SIGHUP);
    eventually(Duration::from_secs(10), || c.metric("divolte_config_reloads_total", "result=\"failed\"") == 1);
    assert!(c.get("/ready", "").starts_with("HTTP/1.1 200"), "still ready");
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<String> = clients.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let (status, c) = c.stop();
    assert!(status.success(), "{}", c.log_text());
    assert!(c.log_text().contains("Configuration not reloaded"), "the refusal is logged");

    let mut seen: HashMap<String, String> = HashMap::new();
    let (mut v1_files, mut v2_files) = (0, 0);
    for (fields, records) in files(&dir.join("publish")) {
        let v2 = fields.iter().any(|f| f == "party");
        if v2 {
            v2_files += 1;
        } else {
            v1_files += 1;
        }
        for r in records {
            let version = r["version"].as_str().unwrap().to_owned();
            // One schema per file, and each record whole by one mapping.
            assert_eq!(version == "v2", v2, "a {version} record in a file with fields {fields:?}");
            if v2 {
                assert!(r["party"].as_str().unwrap().starts_with("0:"), "{r}");
            }
            let location = r["location"].as_str().unwrap().to_owned();
            assert!(seen.insert(location.clone(), version).is_none(), "{location} written twice");
        }
    }
    assert!(v1_files >= 1 && v2_files >= 1, "files of both schemas: {v1_files} and {v2_files}");
    for l in &acked {
        assert!(seen.contains_key(l), "{l} answered 200 but not written");
    }
    let counts = seen.values().fold((0, 0), |(a, b), v| if v == "v1" { (a + 1, b) } else { (a, b + 1) });
    assert!(counts.0 > 0 && counts.1 > 0, "events on both sides of the reload: {counts:?}");
}

#[test]
fn watch_config_reloads_a_changed_script_by_itself() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    std::fs::write(dir.join("click.avsc"), V2_SCHEMA).unwrap();
    std::fs::write(
        dir.join("click.groovy"),
        V1_SCRIPT.replace("onto 'location'", "onto 'location'\n  map 'p' onto 'party'"),
    )
    .unwrap();
    let c = Collector::start(Options { toml: config(dir, true), file_sink: false, ..Options::default() });
    let send = |n: usize| {
        let q = Pixel { location: format!("http://t/{n}"), ..Pixel::default() }.query();
        assert!(c.get(&format!("/csc-event?{q}"), "").starts_with("HTTP/1.1 200"));
    };
    send(0);
    // Same schema: the sink keeps running, only the mapping changes.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(dir.join("click.groovy"), V2_SCRIPT).unwrap();
    eventually(Duration::from_secs(10), || c.metric("divolte_config_reloads_total", "result=\"ok\"") == 1);
    std::thread::sleep(Duration::from_millis(300));
    send(1);
    let (status, c) = c.stop();
    assert!(status.success(), "{}", c.log_text());
    let all = files(&dir.join("publish"));
    assert_eq!(all.len(), 1, "an unchanged sink keeps its file: {all:?}");
    let versions: Vec<&str> = all[0].1.iter().map(|r| r["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["v1", "v2"]);
}
