//! The operator page (`/status` on the admin address) in headless
//! Chromium: it loads without console errors and without anything from
//! elsewhere, its numbers move while traffic runs, it links each mapping's
//! schema, and no secret of the configuration appears on it. It is not
//! served on the public port.

mod common;

use std::path::Path;
use std::process::Command;

use common::{free_port, Collector, Options, Pixel};
use serde_json::Value;

const SECRET: &str = "s3cr3t-never-shown";

#[test]
fn the_operator_page_shows_live_numbers_and_no_secrets() {
    let admin = free_port();
    let toml = format!(
        "metrics_port = {admin}\n[global.kafka]\nenabled = true\n[global.kafka.producer]\n\
         \"bootstrap.servers\" = \"127.0.0.1:1\"\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\"sasl.mechanism\" = \"PLAIN\"\n\
         \"sasl.username\" = \"collector\"\n\"sasl.password\" = \"{SECRET}\"\n[sinks.kafka]\ntype = \"kafka\"\n\
         [mappings.main]\nsources = [\"browser\"]\nsinks = [\"hdfs\", \"kafka\"]\n"
    );
    let c = Collector::start(Options { toml, ..Options::default() });
    assert!(c.get("/status", "").starts_with("HTTP/1.1 404"), "never on the public port");

    let pixel = Pixel::default().query();
    let pixel: String = pixel.split('&').filter(|p| !p.starts_with("l=")).collect::<Vec<_>>().join("&");
    let shot = c.dir.path().join("status.png");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/status.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(format!("http://127.0.0.1:{admin}/status"))
        .arg(&shot)
        .arg(format!("http://127.0.0.1:{}/csc-event?{pixel}", c.port))
        .output()
        .expect("node runs (tests/run-all.sh installs it)");
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), c.log_text());
    let seen: Value = serde_json::from_slice(&out.stdout).unwrap();

    assert_eq!(seen["errors"], Value::Array(vec![]), "no console errors");
    assert_eq!(seen["foreign"], Value::Array(vec![]), "no asset from elsewhere");
    assert!(seen["after"].as_u64().unwrap() >= seen["before"].as_u64().unwrap() + 20, "{seen}");
    assert_eq!(seen["phase"], "running");
    assert_eq!(seen["lines"], 3, "the chart draws one series per source, records and drops");
    assert!(seen["legend"].as_str().unwrap().contains("browser events"), "{seen}");
    assert_eq!(seen["source"], "browser");
    assert!(seen["sourceEvents"].as_u64().unwrap() >= 20, "events counted by source: {seen}");
    let text = seen["text"].as_str().unwrap();
    assert!(!text.contains(SECRET), "the secret is not on the page");
    assert!(text.contains("sasl.password"), "its key is, so the operator sees it is set");
    assert!(text.contains("\"eventType\":\"pageView\""), "the last records are shown as JSON");
    assert!(text.contains("failing"), "the Kafka sink without a broker shows as failing");
    assert_eq!(seen["schemaLink"], "schema/main");
    let schema: Value = serde_json::from_str(seen["schemaText"].as_str().unwrap()).unwrap();
    assert_eq!(schema["name"], "DefaultEventRecord");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "a screenshot was taken");
    if let Some(keep) = std::env::var_os("STATUS_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
