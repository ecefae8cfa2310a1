//! Mapping scripts in the running collector: the example page-type mapping
//! with its schema, custom parameters and geo fields in the records (read
//! with apache-avro and fastavro), two mappings with different schemas side
//! by side, startup refusing a broken script, and the mapping-test tool.

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{field, opt_str, read_avro_dir, read_with_fastavro, Collector, Options, Pixel};

mod common;

fn example(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/pagetype").join(file)
}

fn city_database(dir: &Path) -> PathBuf {
    let path = dir.join("city.mmdb");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/make_mmdb.py");
    let status = Command::new("python3").arg(script).arg("city").arg(&path).arg("Amsterdam").status().unwrap();
    assert!(status.success(), "mmdb-writer (tests/run-all.sh installs it)");
    path
}

fn shop_config(geo: &Path, plain_dir: &Path) -> String {
    format!(
        // Continues the harness's [global.server] table.
        r#"use_x_forwarded_for = true
[global.mapper]
ip2geo_database = "{geo}"
[sources.browser]
type = "browser"
[mappings.shop]
sources = ["browser"]
sinks = ["hdfs"]
schema_file = "{schema}"
mapping_script_file = "{script}"
[mappings.plain]
sources = ["browser"]
sinks = ["plain"]
[sinks.plain]
type = "hdfs"
[sinks.plain.file_strategy]
working_dir = "{plain}"
publish_dir = "{plain}"
"#,
        geo = geo.display(),
        schema = example("schema.avsc").display(),
        script = example("mapping.groovy").display(),
        plain = plain_dir.display(),
    )
}

#[test]
fn the_example_mapping_runs_in_the_collector() {
    let dir = tempfile::tempdir().unwrap();
    let geo = city_database(dir.path());
    let plain = dir.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let c = Collector::start(Options { toml: shop_config(&geo, &plain), ..Options::default() });
    let send = |p: Pixel| {
        let reply = c.get(&format!("/csc-event?{}", p.query()), "X-Forwarded-For: 192.0.2.77\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\n");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    };
    send(Pixel {
        location: "https://shop.example.com/product/311381".into(),
        event: "0:e1".into(),
        ..Pixel::default()
    });
    send(Pixel {
        location: "https://shop.example.com/search?q=red+shoes".into(),
        event: "0:e2".into(),
        ..Pixel::default()
    });
    send(Pixel {
        location: "https://shop.example.com/basket".into(),
        event: "0:e3".into(),
        event_type: "addToBasket".into(),
        // {"total": 43.94, "items": [{"sku": "0886974140818", "count": 1}]} in the tag's mincode.
        params: Some("(jtotal!43.94!aitems!(ssku!0886974140818!dcount!1!).)".into()),
        ..Pixel::default()
    });
    let (status, c) = c.stop();
    assert!(status.success());

    let records = read_avro_dir(&c.publish_dir());
    assert_eq!(records.len(), 3);
    let by_type = |t: &str| records.iter().find(|r| opt_str(r, "pageType").as_deref() == Some(t)).unwrap();
    let product = by_type("product_detail");
    assert_eq!(opt_str(product, "productId").as_deref(), Some("311381"));
    assert_eq!(opt_str(product, "countryCode").as_deref(), Some("NL"), "ip2geo() of the forwarded address");
    assert_eq!(opt_str(product, "remoteHost").as_deref(), Some("192.0.2.77"));
    assert_eq!(opt_str(product, "browser").as_deref(), Some("Chrome"));
    assert_eq!(opt_str(product, "hashedPartyId").map(|h| h.len()), Some(64));
    assert_eq!(opt_str(by_type("search"), "searchPhrase").as_deref(), Some("red shoes"));
    let basket = field(by_type("basket"), "basket");
    assert!(format!("{basket:?}").contains("0886974140818"), "{basket:?}");

    // The independent reader sees the same records, the nested basket included.
    let independent = read_with_fastavro(&c.publish_dir());
    let basket = independent.iter().find(|r| r["pageType"] == "basket").unwrap();
    assert_eq!(basket["basket"], serde_json::json!({"total": 43.94, "items": [{"sku": "0886974140818", "count": 1}]}));
    assert_eq!(basket["eventType"], "addToBasket");

    // The built-in mapping ran beside it, into its own sink, with its own schema.
    let plain_records = read_with_fastavro(&plain);
    assert_eq!(plain_records.len(), 3);
    assert!(plain_records.iter().all(|r| r.get("detectedDuplicate").is_some() && r.get("pageType").is_none()));
}

#[test]
fn a_broken_script_keeps_the_collector_from_starting() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("broken.groovy");
    std::fs::write(&script, "mapping {\n  map timestamp() onto 'timestamp'\n  map remoteHost() onto 'remotehost'\n}\n")
        .unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        format!(
            "[global.server]\nport = {}\n[mappings.m]\nsources = [\"browser\"]\nsinks = [\"hdfs\"]\nschema_file = \"{}\"\nmapping_script_file = \"{}\"\n",
            common::free_port(),
            example("schema.avsc").display(),
            script.display()
        ),
    )
    .unwrap();
    for args in [vec!["--config".into(), config.clone()], vec!["check-config".into(), config.clone()]] {
        let out = Command::new(env!("CARGO_BIN_EXE_divolte-collector")).args(&args).output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("broken.groovy: line 3, column 25: the schema has no field 'remotehost'"), "{stderr}");
    }
}

#[test]
fn the_example_configuration_checks() {
    let out = Command::new(env!("CARGO_BIN_EXE_divolte-collector"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["check-config", "examples/pagetype/divolte-collector.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_mapping_test_tool_prints_the_examples_records() {
    let dir = tempfile::tempdir().unwrap();
    let geo = city_database(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_divolte-collector"))
        .args(["mapping-test", "--schema"])
        .arg(example("schema.avsc"))
        .arg("--mapping")
        .arg(example("mapping.groovy"))
        .arg("--geo")
        .arg(&geo)
        .stdin(std::fs::File::open(example("events.jsonl")).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let want: Vec<serde_json::Value> = std::fs::read_to_string(example("expected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(got.len(), 9);
    assert_eq!(got, want);
    let page_types: Vec<&str> = got.iter().map(|r| r["pageType"].as_str().unwrap()).collect();
    assert_eq!(
        page_types,
        ["home", "product_detail", "other", "search", "basket", "category", "section", "shop", "other"]
    );
}

#[test]
fn json_events_map_their_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("s.avsc");
    std::fs::write(
        &schema,
        r#"{"type": "record", "name": "App", "fields": [
            {"name": "ts", "type": "long"},
            {"name": "screen", "type": ["null", "string"], "default": null},
            {"name": "prices", "type": ["null", {"type": "array", "items": "double"}], "default": null},
            {"name": "level", "type": ["null", "int"], "default": null}]}"#,
    )
    .unwrap();
    let script = dir.path().join("m.groovy");
    std::fs::write(
        &script,
        "mapping {\n map timestamp() onto 'ts'\n map eventParameters().value('screen') onto 'screen'\n\
         map eventParameters().path('$.items[*].price') onto 'prices'\n map eventParameters().path('$.level') onto 'level'\n}\n",
    )
    .unwrap();
    let toml = format!(
        "[sources.app]\ntype = \"json\"\nevent_path = \"/json\"\n[mappings.app]\nsources = [\"app\"]\nsinks = [\"hdfs\"]\nschema_file = \"{}\"\nmapping_script_file = \"{}\"\n",
        schema.display(),
        script.display()
    );
    let c = Collector::start(Options { toml, ..Options::default() });
    let body = r#"{"session_id":"0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8","event_id":"e1","is_new_party":false,"is_new_session":false,"client_timestamp_iso":"2024-01-01T00:00:00Z","event_type":"level","parameters":{"screen":"map","level":"7","items":[{"price":1.5},{"price":2}]}}"#;
    let req = format!(
        "POST /json?p=0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let reply = String::from_utf8(c.raw(req.as_bytes())).unwrap();
    assert!(reply.starts_with("HTTP/1.1 204"), "{reply}");
    let (_, c) = c.stop();
    let records = read_with_fastavro(&c.publish_dir());
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["screen"], "map");
    assert_eq!(records[0]["prices"], serde_json::json!([1.5, 2.0]));
    assert_eq!(records[0]["level"], 7, "a numeric string converts to int");
}
