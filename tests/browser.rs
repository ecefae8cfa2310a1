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

const FLAGS_SCHEMA: &str = r#"{"type": "record", "name": "Flags", "fields": [
  {"name": "eventType", "type": ["null", "string"], "default": null},
  {"name": "bot", "type": ["null", "boolean"], "default": null}
]}"#;

fn opt_str_json(v: &Json) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// Percent-decoding of a cookie value the way the tag reads it.
fn decode_cookie(v: &str) -> String {
    percent_encoding::percent_decode_str(v).decode_utf8().unwrap().into_owned()
}

#[test]
fn todays_browsers_server_cookies_cors_beacons_consent_gpc_and_bots() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, script, flags_dir) =
        (dir.path().join("flags.avsc"), dir.path().join("flags.groovy"), dir.path().join("flags"));
    std::fs::write(&schema, FLAGS_SCHEMA).unwrap();
    std::fs::write(&script, "mapping {\n  map eventType() onto 'eventType'\n  map userAgent().bot() onto 'bot'\n}\n")
        .unwrap();
    let site_port = common::free_port();
    let toml = format!(
        concat!(
            "[sources.srv]\ntype = \"browser\"\nprefix = \"/srv\"\nserver_cookies = true\ncookie_same_site = \"Lax\"\n",
            "[sources.leave]\ntype = \"browser\"\nprefix = \"/leave\"\n[sources.leave.javascript]\nuse_beacon = true\n",
            "[sources.gpc]\ntype = \"browser\"\nprefix = \"/gpc\"\nrespect_gpc = true\n",
            "[sources.consent]\ntype = \"browser\"\nprefix = \"/consent\"\n[sources.consent.javascript]\nrequire_consent = true\n",
            "[sources.app]\ntype = \"json\"\nevent_path = \"/app\"\ncors_allowed_origins = [\"http://127.0.0.1:{}\"]\n",
            "[sources.closed]\ntype = \"json\"\nevent_path = \"/closed\"\ncors_allowed_origins = [\"https://elsewhere.example\"]\n",
            "[mappings.all]\nsources = [\"srv\", \"leave\", \"gpc\", \"consent\", \"app\", \"closed\"]\nsinks = [\"hdfs\"]\n",
            "[mappings.flags]\nsources = [\"srv\"]\nsinks = [\"flags\"]\nschema_file = \"{}\"\nmapping_script_file = \"{}\"\n",
            "[sinks.flags]\ntype = \"hdfs\"\n[sinks.flags.file_strategy]\nworking_dir = \"{}\"\npublish_dir = \"{}\"\n",
        ),
        site_port,
        schema.display(),
        script.display(),
        flags_dir.display(),
        flags_dir.display()
    );
    let c = Collector::start(Options { toml, ..Options::default() });
    let dir_js = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let run = Command::new("node")
        .arg(dir_js.join("today.mjs"))
        .arg(format!("http://127.0.0.1:{}", c.port))
        .arg(site_port.to_string())
        .output()
        .expect("node runs (tests/run-all.sh installs it)");
    assert!(run.status.success(), "driver failed:\n{}\n{}", String::from_utf8_lossy(&run.stderr), c.log_text());
    let seen: Json = serde_json::from_slice(&run.stdout).expect("driver prints JSON");
    let batches = c.metric("divolte_http_requests_total", "browser_batch");
    let opted_out = c.metric("divolte_events_opted_out_total", "gpc");
    let (status, c) = c.stop();
    assert!(status.success());
    let records = read_avro_dir(&c.publish_dir());
    let of_type = |t: &str| records.iter().filter(|r| opt_str(r, "eventType").as_deref() == Some(t)).count();
    let at = |page: &str| {
        records.iter().filter(|r| opt_str(r, "location").is_some_and(|l| l.ends_with(page))).collect::<Vec<_>>()
    };

    // 1. Every pixel answer set both cookies with the ids the tag sent, and
    // the browser kept them for the next page.
    let sc = &seen["serverCookies"];
    assert_eq!(sc["first"]["party"], sc["second"]["party"], "{sc}");
    assert_eq!(sc["first"]["session"], sc["second"]["session"], "{sc}");
    let lines: Vec<&str> = sc["setCookies"].as_array().unwrap().iter().map(s).collect();
    assert!(lines.len() >= 6, "two cookies on each of three events: {lines:?}");
    for line in &lines {
        let (name, rest) = line.split_once('=').unwrap();
        let value = decode_cookie(rest.split(';').next().unwrap());
        let expected = if name == "_dvp" { s(&sc["first"]["party"]) } else { s(&sc["first"]["session"]) };
        assert_eq!(value, expected, "{line}");
        assert!(line.contains("; Path=/;") && line.ends_with("; SameSite=Lax"), "{line}");
    }
    for cookie in sc["jar"].as_array().unwrap() {
        let expected = if cookie["name"] == "_dvp" { &sc["first"]["party"] } else { &sc["first"]["session"] };
        assert_eq!(decode_cookie(s(&cookie["value"])), s(expected), "{cookie}");
        assert_eq!(cookie["sameSite"], "Lax");
    }
    let headless_view = opt_str_json(&seen["headless"]["pageView"]);
    let srv: Vec<_> = at("/srv.html")
        .into_iter()
        .chain(at("/srv2.html"))
        .filter(|r| opt_str(r, "pageViewId") != headless_view)
        .collect();
    assert_eq!(srv.len(), 3, "two page views and a click");
    assert!(srv.iter().all(|r| opt_str(r, "partyId").as_deref() == Some(s(&sc["first"]["party"]))));

    // 2. The allowed origin's post arrived; the other origin's never left the browser.
    assert_eq!(seen["cors"]["allowed"]["status"], 204, "{}", seen["cors"]);
    assert!(s(&seen["cors"]["refused"]["error"]).contains("Failed to fetch"), "{}", seen["cors"]);
    assert_eq!((of_type("corsAllowed"), of_type("corsRefused")), (1, 0));

    // 3. The events of pagehide left in one beacon to the batch endpoint.
    let requests: Vec<&str> = seen["leave"]["requests"].as_array().unwrap().iter().map(s).collect();
    assert_eq!(requests.first().copied(), Some("/leave/csc-event"), "the page view by image: {requests:?}");
    assert_eq!(batches, 1, "{requests:?}");
    assert_eq!((of_type("bye1"), of_type("bye2")), (1, 1));
    assert_eq!(seen["leave"]["committed"], "yes", "whenCommitted ran once the beacon was taken");

    // 4. GPC: the header alone is honoured by the collector; with the
    // property on, the tag sends nothing and sets no cookie.
    assert!(seen["gpcHeader"]["requests"].as_u64().unwrap() >= 1, "{}", seen["gpcHeader"]);
    assert!(opted_out >= 1);
    assert!(at("/gpc.html").is_empty(), "nothing recorded from a GPC browser");
    let gp = &seen["gpcProperty"];
    assert_eq!((gp["requests"].as_u64(), &gp["party"], &gp["signalled"]), (Some(0), &Json::Null, &Json::Null), "{gp}");
    assert_eq!(gp["cookies"], serde_json::json!([]));

    // 5. Consent: nothing before, one page view with fresh ids after, cookies deleted when withdrawn.
    let consent = &seen["consent"];
    assert_eq!(consent["before"]["requests"], 0, "{consent}");
    assert_eq!(consent["before"]["party"], Json::Null);
    assert_eq!(consent["before"]["signalled"], Json::Null);
    assert_eq!(consent["before"]["cookies"], serde_json::json!([]));
    let cookies_during: Vec<&str> = consent["during"]["cookies"].as_array().unwrap().iter().map(s).collect();
    assert!(cookies_during.contains(&"_dvp") && cookies_during.contains(&"_dvs"), "{consent}");
    assert_eq!(consent["after"]["cookies"], serde_json::json!([]), "{consent}");
    assert_eq!(consent["after"]["signalled"], Json::Null);
    assert_eq!(consent["after"]["requests"], consent["during"]["requests"], "nothing sent after withdrawal");
    let consented = at("/consent.html");
    assert_eq!(consented.len(), 1, "only the page view after consent");
    assert_eq!(opt_str(consented[0], "partyId").as_deref(), Some(s(&consent["given"]["party"])));
    assert_eq!((of_type("tooEarly"), of_type("tooLate")), (0, 0));

    // 6. Bot verdicts: the headless user agent is a bot, Chrome is not.
    let flags = read_with_fastavro(&flags_dir);
    let bots: Vec<bool> = flags.iter().map(|r| r["bot"].as_bool().unwrap()).collect();
    assert_eq!(bots.iter().filter(|b| **b).count(), 1, "the headless page view: {flags:?}");
    assert!(bots.iter().filter(|b| !**b).count() >= 3, "the Chrome page views and click: {flags:?}");
}
