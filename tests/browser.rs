//! The tracking tag in headless Chromium: pages load the tag from the
//! collector, and the records in the file sink prove what happened.
//! `tests/browser/drive.mjs` (Node, playwright-core) drives the browser;
//! this test starts the collector, runs it, and checks the records.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use apache_avro::types::Value;
use common::{field, opt_str, read_avro_dir, read_with_fastavro, Collector, Options};
use serde_json::Value as Json;

fn drive(collector: &Collector) -> Json {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let out = Command::new("node")
        .arg(dir.join("drive.mjs"))
        .arg(format!("http://127.0.0.1:{}", collector.port))
        .output()
        .expect("node runs (tests/run-all.sh installs it)");
    assert!(
        out.status.success(),
        "browser driver failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        collector.log_text()
    );
    serde_json::from_slice(&out.stdout).expect("driver prints JSON")
}

fn s(v: &Json) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

const PARAMS_SCHEMA: &str = r#"{"type": "record", "name": "Params", "fields": [
  {"name": "eventType", "type": ["null", "string"], "default": null},
  {"name": "text", "type": ["null", "string"], "default": null},
  {"name": "params", "default": null, "type": ["null", {"type": "record", "name": "Checkout", "fields": [
    {"name": "order", "type": {"type": "record", "name": "Order", "fields": [
      {"name": "id", "type": "string"},
      {"name": "lines", "type": {"type": "array", "items": {"type": "record", "name": "Line", "fields": [
        {"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}, {"name": "price", "type": "double"}]}}}]}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "gift", "type": "boolean"},
    {"name": "note", "type": ["null", "string"], "default": null}]}]}
]}"#;

const PARAMS_SCRIPT: &str = "mapping {
  map eventType() onto 'eventType'
  when eventType().equalTo('checkout') apply {
    map eventParameters() onto 'params'
  }
  map eventParameters().value('text') onto 'text'
}
";

#[test]
fn the_tag_in_chromium_produces_correct_uncorrupted_records() {
    // Besides the built-in mapping, a script maps the custom parameters
    // onto a nested record, to check them in records as the tag sent them.
    let dir = tempfile::tempdir().unwrap();
    let (schema, script, params_dir) =
        (dir.path().join("params.avsc"), dir.path().join("params.groovy"), dir.path().join("params"));
    std::fs::write(&schema, PARAMS_SCHEMA).unwrap();
    std::fs::write(&script, PARAMS_SCRIPT).unwrap();
    let toml = format!(
        concat!(
            "[sources.browser]\ntype = \"browser\"\ncookie_same_site = \"Lax\"\n",
            "[sources.short]\ntype = \"browser\"\nprefix = \"/short\"\nsession_timeout = \"2 seconds\"\n",
            "[sources.beacon]\ntype = \"browser\"\nprefix = \"/beacon\"\n[sources.beacon.javascript]\nuse_beacon = true\n",
            "[mappings.default]\nsources = [\"browser\", \"short\", \"beacon\"]\nsinks = [\"hdfs\"]\n",
            "[mappings.params]\nsources = [\"browser\"]\nsinks = [\"params\"]\nschema_file = \"{}\"\nmapping_script_file = \"{}\"\n",
            "[sinks.params]\ntype = \"hdfs\"\n[sinks.params.file_strategy]\nworking_dir = \"{}\"\npublish_dir = \"{}\"\n",
        ),
        schema.display(),
        script.display(),
        params_dir.display(),
        params_dir.display()
    );
    let c = Collector::start(Options { toml, ..Options::default() });
    let seen = drive(&c);
    let (status, c) = c.stop();
    assert!(status.success());
    let records = read_avro_dir(&c.publish_dir());
    // Ten page views (the test page, plain, other, the restore, server-id,
    // leave, other again, the hidden page once shown, short and its reload)
    // and four custom events (the button, checkout, emoji, and the beacon
    // sent while leaving).
    assert_eq!(records.len(), 14, "{}", c.log_text());

    // Nothing the tag sent is corrupt, emoji included.
    for r in &records {
        assert_eq!(field(r, "detectedCorruption"), &Value::Boolean(false), "corrupt record: {r:?}");
    }
    let by_type = |t: &str| -> Vec<&Value> {
        records.iter().filter(|r| field(r, "eventType") == &Value::String(t.into())).collect()
    };
    let page_views_of =
        |pv: &str| by_type("pageView").into_iter().filter(|r| opt_str(r, "pageViewId").as_deref() == Some(pv)).count();

    // 1. First visit: a page view with every browser field, then the custom events.
    let first = &seen["first"];
    assert_eq!((first["newParty"].as_bool(), first["firstInSession"].as_bool()), (Some(true), Some(true)));
    assert!(s(&first["party"]).starts_with("0:") && s(&first["party"]).len() > 35, "{first}");
    let pv = by_type("pageView")
        .into_iter()
        .find(|r| opt_str(r, "pageViewId").as_deref() == Some(s(&first["pageView"])))
        .expect("first page view");
    assert_eq!(opt_str(pv, "partyId").as_deref(), Some(s(&first["party"])));
    assert_eq!(opt_str(pv, "sessionId").as_deref(), Some(s(&first["session"])));
    assert_eq!(field(pv, "firstInSession"), &Value::Boolean(true));
    assert_eq!(opt_str(pv, "location"), Some(format!("http://127.0.0.1:{}/", c.port)));
    for f in ["viewportPixelWidth", "viewportPixelHeight", "screenPixelWidth", "screenPixelHeight"] {
        assert!(
            matches!(field(pv, f), Value::Union(1, v) if matches!(**v, Value::Int(n) if n > 0)),
            "{f}: {:?}",
            field(pv, f)
        );
    }
    assert!(opt_str(pv, "userAgentString").unwrap().contains("Chrome"));
    let click = by_type("bannerClick");
    assert_eq!(click.len(), 1, "the test page's button");
    assert_eq!(field(click[0], "firstInSession"), &Value::Boolean(false), "only the first event of a page load");
    assert_eq!(by_type("checkout").len(), 1);
    assert_eq!(by_type("launch 🚀").len(), 1, "emoji event type arrives intact and verified");
    assert_eq!(seen["firstCommitted"], Json::Bool(true), "whenCommitted fired");
    assert!(s(&seen["custom"]).starts_with(s(&first["pageView"])), "event id = page view id + counter");

    // 2. Cookies carry party and session to the next pages; each page is a new page view.
    for key in ["second", "third"] {
        let p = &seen[key];
        assert_eq!(p["party"], first["party"], "{key}");
        assert_eq!(p["session"], first["session"], "{key}");
        assert_eq!((p["newParty"].as_bool(), p["firstInSession"].as_bool()), (Some(false), Some(false)), "{key}");
        assert_eq!(page_views_of(s(&p["pageView"])), 1, "{key}");
    }
    let views: HashSet<&str> =
        ["first", "second", "third", "restored"].iter().map(|k| s(&seen[*k]["pageView"])).collect();
    assert_eq!(views.len(), 4, "every page view has its own id: {views:?}");

    // 3. Restored from the back/forward cache (the page's own pageshow
    // handler saw `persisted`): the tag starts a new page view.
    assert_eq!(seen["restoredFromCache"], Json::Bool(true));
    assert_eq!(page_views_of(s(&seen["restored"]["pageView"])), 1);

    // 4. Server-supplied page view id.
    assert_eq!(seen["serverId"]["pageView"], Json::String("supercalifragilisticexpialidocious".into()));
    assert_eq!(seen["serverId"]["serverPageView"], Json::Bool(true));
    assert_eq!(page_views_of("supercalifragilisticexpialidocious"), 1);

    // A page loaded hidden had no page view until it was shown; then one.
    assert_eq!(seen["hiddenBefore"], Json::Null);
    assert_eq!(page_views_of(s(&seen["hiddenAfter"]["pageView"])), 1);

    // 5. A new session once the session cookie expired; the party stays.
    assert_eq!(seen["shortAfter"]["party"], first["party"]);
    assert_ne!(seen["shortAfter"]["session"], seen["shortBefore"]["session"]);
    assert_eq!(seen["shortAfter"]["firstInSession"], Json::Bool(true));

    // An event signalled while the page unloads still arrives, by beacon.
    assert_eq!(by_type("leaving").len(), 1);

    // 6. No double initialisation; 7. cookie attributes.
    assert_eq!(seen["doubleLoad"], Json::Bool(true));
    let cookies = seen["cookies"].as_array().unwrap();
    let party_cookie = cookies.iter().find(|c| c["name"] == "_dvp").expect("party cookie");
    let in_a_year =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64() + 365.0 * 86400.0;
    assert!(party_cookie["expires"].as_f64().unwrap() > in_a_year, "two-year party cookie: {party_cookie}");

    // The custom parameters reach records as the page signalled them.
    let mapped = read_with_fastavro(&params_dir);
    let of = |t: &str| mapped.iter().find(|r| r["eventType"] == t).unwrap_or_else(|| panic!("{t} in {mapped:?}"));
    assert_eq!(
        of("checkout")["params"],
        serde_json::json!({
            "order": {"id": "A-17", "lines": [{"sku": "x!~y", "qty": 2, "price": 19.95}, {"sku": "ünï", "qty": -3, "price": 1e21}]},
            "tags": ["a", "b"], "gift": false, "note": null
        })
    );
    assert_eq!(of("launch 🚀")["text"], "😀 smile");

    // Every custom parameter encoding the tag produced decodes to the same JSON.
    for w in seen["wire"].as_array().unwrap() {
        let expected: Json = serde_json::from_str(s(&w["json"])).unwrap();
        let decoded = divolte::event::mincode::decode(s(&w["mincode"])).unwrap_or_else(|e| panic!("{w}: {e}"));
        let same = decoded == expected || (decoded.as_f64().is_some() && decoded.as_f64() == expected.as_f64());
        assert!(same, "mincode {} decoded to {decoded}, expected {expected}", w["mincode"]);
    }
    // And every checksum the tag computed is the collector's.
    for cs in seen["checksums"].as_array().unwrap() {
        let params: Vec<(String, String)> =
            cs["params"].as_array().unwrap().iter().map(|p| (s(&p[0]).to_owned(), s(&p[1]).to_owned())).collect();
        let mut canonical = Vec::new();
        divolte::event::checksum::canonical_form(
            params.len(),
            |i| (params[i].0.as_bytes(), params[i].1.as_bytes()),
            &mut Vec::new(),
            &mut canonical,
        );
        assert!(divolte::event::checksum::verify(&canonical, Some(s(&cs["x"]))), "checksum mismatch for {cs}");
    }
}
