//! Scripts covering every construct, run on described events, with the
//! exact records they must produce (decoded with apache-avro).

use std::sync::Arc;

use serde_json::{json, Value as Json};

use super::{Environment, Inputs, Scratch, Script};
use crate::avro::{JsonWriter, RecordLayout, Unions};
use crate::enrich::useragent;
use crate::mapping::sample::SampleEvent;

const SCHEMA: &str = r#"
// Every kind of field the language maps onto.
{ "type": "record", "name": "TestEvent", "namespace": "test", "fields": [
  { "name": "ts", "type": "long" },
  { "name": "s1", "type": ["null", "string"], "default": null },
  { "name": "s2", "type": ["null", "string"], "default": null },
  { "name": "s3", "type": ["null", "string"], "default": null },
  { "name": "s4", "type": ["null", "string"], "default": null },
  { "name": "kept", "type": "string", "default": "not set" },
  { "name": "b1", "type": ["null", "boolean"], "default": null },
  { "name": "b2", "type": ["null", "boolean"], "default": null },
  { "name": "b3", "type": ["null", "boolean"], "default": null },
  { "name": "i1", "type": ["null", "int"], "default": null },
  { "name": "i2", "type": ["null", "int"], "default": null },
  { "name": "l1", "type": ["null", "long"], "default": null },
  { "name": "f1", "type": ["null", "float"], "default": null },
  { "name": "d1", "type": ["null", "double"], "default": null },
  { "name": "bin", "type": ["null", "bytes"], "default": null },
  { "name": "list", "type": ["null", { "type": "array", "items": "string" }], "default": null },
  { "name": "ints", "type": ["null", { "type": "array", "items": "int" }], "default": null },
  { "name": "query", "type": ["null", { "type": "map", "values": { "type": "array", "items": "string" } }], "default": null },
  { "name": "pmap", "type": ["null", { "type": "map", "values": "string" }], "default": null },
  { "name": "prices", "type": ["null", { "type": "array", "items": "double" }], "default": null },
  { "name": "basket", "type": ["null", { "type": "record", "name": "Basket", "fields": [
      { "name": "total", "type": "double" },
      { "name": "items", "type": { "type": "array", "items": { "type": "record", "name": "Item", "fields": [
          { "name": "sku", "type": "string" }, { "name": "count", "type": "int" } ] } } } ] }], "default": null },
  { "name": "suit", "type": ["null", { "type": "enum", "name": "Suit", "symbols": ["SPADES", "HEARTS"] }], "default": null },
  { "name": "wide", "type": ["null", "string", "int"], "default": null }
]}"#;

const CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/38.0.2125.122 Safari/537.36";

fn layout() -> Arc<RecordLayout> {
    Arc::new(RecordLayout::parse(SCHEMA).unwrap())
}

fn compile(script: &str) -> Result<Script, super::ScriptErrors> {
    Script::compile(script, &layout(), Environment::default())
}

/// Runs `script` (its body; `ts` is mapped first) on `event` and returns
/// the record's non-null fields other than `ts` and `kept` at its default.
fn record(body: &str, event: Json) -> Json {
    let script = format!("mapping {{\n  map timestamp() onto 'ts'\n{body}\n}}");
    let layout = layout();
    let program = Script::compile(&script, &layout, Environment::default()).unwrap_or_else(|e| panic!("{e}\n{script}"));
    let sample = SampleEvent::from_json(&event.to_string()).unwrap();
    let parser = useragent::UserAgentParser::default();
    let mut out = Vec::new();
    sample.with_event(|e| {
        let ua = e.user_agent.map(|a| parser.parse(a));
        let inputs = Inputs { event: e, user_agent: ua.as_ref(), geo: None, geo_host: e.remote_host };
        program.run(inputs, &mut Scratch::default(), &mut out).unwrap();
    });
    let mut text = Vec::new();
    JsonWriter::new(&layout.schema, Unions::Plain).unwrap().write(&out, &mut text).unwrap();
    let Json::Object(fields) = serde_json::from_slice(&text).unwrap() else { panic!() };
    let kept: serde_json::Map<String, Json> =
        fields.into_iter().filter(|(k, v)| !v.is_null() && k != "ts" && !(k == "kept" && v == "not set")).collect();
    Json::Object(kept)
}

fn error(body: &str) -> String {
    let script = format!("mapping {{\n  map timestamp() onto 'ts'\n{body}\n}}");
    compile(&script).err().unwrap_or_else(|| panic!("compiled: {script}")).to_string()
}

#[test]
fn simple_values_and_literals() {
    let event = json!({
        "location": "https://example.com/a", "referer": "https://example.com/", "event_type": "pageView",
        "first_in_session": true, "viewport_pixel_width": 1018, "device_pixel_ratio": 1.5,
        "client_timestamp": 7, "headers": {"User-Agent": CHROME, "Cookie": "shop=42; other=x"}
    });
    assert_eq!(
        record(
            "map location() onto 's1'\n map referer() onto 's2'\n map eventType() onto 's3'\n map cookie('shop') onto 's4'\n\
             map firstInSession() onto 'b1'\n map corrupt() onto 'b2'\n map viewportPixelWidth() onto 'i1'\n\
             map devicePixelRatio() onto 'i2'\n map clientTimestamp() onto 'l1'",
            event.clone()
        ),
        json!({"s1": "https://example.com/a", "s2": "https://example.com/", "s3": "pageView", "s4": "42",
               "b1": true, "b2": false, "i1": 1018, "i2": 2, "l1": 7})
    );
    assert_eq!(
        record("map 'text' onto 's1'\n map true onto 'b1'\n map 42 onto 'i1'\n map 42I onto 'i2'\n map 42L onto 'l1'\n map 1.5F onto 'f1'\n map 42.0D onto 'd1'\n map \"dq\" onto 'kept'", json!({})),
        json!({"s1": "text", "b1": true, "i1": 42, "i2": 42, "l1": 42, "f1": 1.5, "d1": 42.0, "kept": "dq"})
    );
    assert_eq!(
        record("map userAgentString() onto 's1'\n def ua = userAgent()\n map ua.name() onto 's2'\n map ua.osFamily() onto 's3'\n map ua.deviceCategory() onto 's4'", event),
        json!({"s1": CHROME, "s2": "Chrome", "s3": "OS X", "s4": "Personal computer"})
    );
}

#[test]
fn absent_values_set_nothing_and_later_present_values_win() {
    let body =
        "def u = parse referer() to uri\n def m = match 'some (group)' against u.path()\n map m.group(1) onto 'kept'\n\
                map location() onto 's1'\n map referer() onto 's1'\n map 'first' onto 's2'\n map referer() onto 's2'";
    assert_eq!(record(body, json!({"location": "https://x/"})), json!({"s1": "https://x/", "s2": "first"}));
}

#[test]
fn when_section_exit_and_stop() {
    let body = r#"
    when { location() equalTo 'http://www.example.com/' } apply {
        map 'locationmatch' onto 's1'
        when { referer() equalTo 'http://www.example.com/somepage.html' } apply { map 'referermatch' onto 's2' }
    }
    when { referer() equalTo 'not the referer' } apply { map 'is set' onto 'kept' }
    when header('X-Missing').isAbsent() apply { map 'absent' onto 's3' }
    when location().isAbsent() apply { map 'should not apply' onto 's3' }
    "#;
    let event = json!({"location": "http://www.example.com/", "referer": "http://www.example.com/somepage.html"});
    assert_eq!(record(body, event.clone()), json!({"s1": "locationmatch", "s2": "referermatch", "s3": "absent"}));

    let body = r#"
    section {
        when location().isPresent() apply {
            map 'happened' onto 's1'
            exit()
            map 'should not happen' onto 'kept'
        }
    }
    section {
        when { location().isPresent() } apply {
            map 'happened' onto 's2'
            when location().isAbsent() exit()
            map 'happened' onto 's3'
            when location().isPresent() exit()
            map 'should not happen' onto 'kept'
        }
    }
    map 'happened' onto 's4'
    "#;
    assert_eq!(
        record(body, event.clone()),
        json!({"s1": "happened", "s2": "happened", "s3": "happened", "s4": "happened"})
    );

    for stop in [
        "stop()",
        "when location().isPresent() stop()",
        "when { location().isPresent() } stop()",
        "when location().isPresent() apply { when timestamp().isPresent() apply { stop() } }",
        "section { section { stop() } }",
        "exit()",
        "when referer().isPresent exit()",
    ] {
        assert_eq!(
            record(&format!("map 'happened' onto 's1'\n {stop}\n map 'should not happen' onto 's2'"), event.clone()),
            json!({"s1": "happened"}),
            "{stop}"
        );
    }
}

#[test]
fn boolean_logic_and_equality() {
    let body = "map referer().isPresent().or(location().isPresent()) onto 'b1'\n\
                map location().isPresent().and(referer().isPresent()) onto 'b2'\n\
                map not(location().isAbsent()) onto 'b3'";
    let got = record(body, json!({"location": "http://x/"}));
    assert_eq!(got, json!({"b1": true, "b2": false, "b3": true}));
    // and/or of an absent value is absent; equalTo of two absent values is true.
    let body = "map referer().equalTo('x').and(true) onto 'b1'\n map location().equalTo(referer()) onto 'b2'\n\
                map referer().equalTo(cookie('none')) onto 'b3'\n map not referer().equalTo('x') onto 'i1'";
    assert!(error(body).contains("Boolean value cannot be mapped onto field 'i1'"));
    let body = "map referer().equalTo('x').and(true) onto 'b1'\n map location().equalTo(referer()) onto 'b2'\n\
                map referer().equalTo(cookie('none')) onto 'b3'\n map (parse cookie('n') to bool).and(true) onto 's1'";
    let e = error(body);
    assert!(e.contains("onto field 's1'"), "{e}");
    let body = "map referer().equalTo('x').and(true) onto 'b1'\n map location().equalTo(referer()) onto 'b2'\n\
                map referer().equalTo(cookie('none')) onto 'b3'";
    assert_eq!(record(body, json!({"location": "http://x/"})), json!({"b1": false, "b2": false, "b3": true}));
    let body =
        "map { parse cookie('flag') to bool }.and(true) onto 'b1'\n map not(parse cookie('none') to bool) onto 'b2'";
    assert_eq!(record(body, json!({"headers": {"Cookie": "flag=TRUE"}})), json!({"b1": true}));
}

#[test]
fn parsing_strings() {
    let body = "map { parse cookie('i') to int32 } onto 'i1'\n map { parse cookie('bad') to int } onto 'i2'\n\
                map { parse cookie('l') to int64 } onto 'l1'\n map { parse cookie('f') to fp32 } onto 'f1'\n\
                map { parse cookie('d') to double } onto 'd1'\n map { parse cookie('b') to boolean } onto 'b1'\n\
                map { parse cookie('bad') to bool } onto 'b2'";
    let cookies = "i=-42; bad=4x; l=9000000000; f=1.5; d=2.25; b=True";
    assert_eq!(
        record(body, json!({"headers": {"Cookie": cookies}})),
        json!({"i1": -42, "l1": 9_000_000_000i64, "f1": 1.5, "d1": 2.25, "b1": true, "b2": false})
    );
}

#[test]
fn regexes() {
    let body = r#"
    def regex = '^http://[^/]+/path/with/([0-9]+)/(?<page>[^\\.]+)\\.html'
    def m = match regex against location()
    map m.matches() onto 'b1'
    map m.group(1) onto 's1'
    map m.group("page") onto 's2'
    def slashy = match /^\/product\/(\d+)$/ against { parse location() to uri }.path()
    map slashy.matches onto 'b2'
    def partial = match 'path' against location()
    map partial.matches() onto 'b3'
    map partial.group(0) onto 's3'
    "#;
    let got = record(body, json!({"location": "http://www.example.com/path/with/42/about.html"}));
    assert_eq!(got, json!({"b1": true, "s1": "42", "s2": "about", "b2": false, "b3": false}));
    let got = record(body, json!({}));
    assert_eq!(got, json!({"b1": false, "b2": false, "b3": false}), "no subject: matches() is false, groups absent");
}

#[test]
fn uris_and_query_strings() {
    let body = r#"
    def u = parse location() to uri
    map u.scheme() onto 's1'
    map u.host() onto 's2'
    map u.port() onto 'i1'
    map u.path() onto 's3'
    map u.decodedQueryString() onto 's4'
    map u.query().value('q') onto 'kept'
    map u.query().valueList('p') onto 'list'
    map u.query() onto 'query'
    map { parse referer() to uri }.decodedFragment() onto 'pmap'
    "#;
    // (pmap is a map: a String cannot go there)
    assert!(error(body).contains("onto field 'pmap'"));
    let body = body.replace("map { parse referer() to uri }.decodedFragment() onto 'pmap'", "");
    let event = json!({"location": "https://www.example.com:8080/path/to/resource/page%20x.html?q=multiple+words+%24%23%25%26&p=10&p=20"});
    assert_eq!(
        record(&body, event),
        json!({"s1": "https", "s2": "www.example.com", "i1": 8080, "s3": "/path/to/resource/page x.html",
               "s4": "q=multiple+words+$#%&&p=10&p=20", "kept": "multiple words $#%&", "list": ["10", "20"],
               "query": {"q": ["multiple words $#%&"], "p": ["10", "20"]}})
    );
    let body = r#"
    def u = parse location() to uri
    map u.rawPath() onto 's1'
    map u.rawQueryString() onto 's2'
    def hash = parse u.rawFragment() to uri
    map hash.path() onto 's3'
    map hash.query().value('q') onto 's4'
    map u.query().value('missing') onto 'kept'
    "#;
    let event = json!({"location": "http://example.com/a%20b/?q=divolte#/client/side/path?x=value&q=multiple+words"});
    assert_eq!(
        record(body, event),
        json!({"s1": "/a%20b/", "s2": "q=divolte", "s3": "/client/side/path", "s4": "multiple words"})
    );
    let body = "def q = { parse location() to uri }.query()\n map q.value('a') onto 's1'\n map q.value('b') onto 's2'\n map q.value('c') onto 's3'\n map q.value('') onto 's4'";
    assert_eq!(
        record(body, json!({"location": "http://example.com/path/?a=value&=42&b=&d=word&c&=bla"})),
        json!({"s1": "value", "s2": "", "s3": "", "s4": "42"})
    );
    assert_eq!(
        record("map { parse location() to uri }.path() onto 's1'", json!({"location": "http://x/a b"})),
        json!({})
    );
}

#[test]
fn headers() {
    let event = json!({"headers": {
        "X-Divolte-Test": ["first", "second", "last"],
        "X-Horrible": ["first", "second, third ,fourth,fifth", "\"sixth,still_sixth\", seventh,", "ninth  still ninth"]
    }});
    let body = r#"
    def h = header('x-divolte-test')
    map h onto 'list'
    map h.first() onto 's1'
    map h.last() onto 's2'
    map h.get(-3) onto 's3'
    map h.get(3) onto 's4'
    map h.commaSeparated() onto 'kept'
    "#;
    assert_eq!(
        record(body, event.clone()),
        json!({"list": ["first", "second", "last"], "s1": "first", "s2": "last", "s3": "first", "kept": "first,second,last"})
    );
    assert_eq!(
        record("map header('X-Horrible') onto 'list'\n map header('X-Horrible').get(-4) onto 's1'", event),
        json!({"list": ["first", "second", "third", "fourth", "fifth", "sixth,still_sixth", "seventh", "ninth still ninth"],
               "s1": "fifth"})
    );
}

#[test]
fn event_parameters_and_json_paths() {
    let params = json!({"foo": "string", "bar": 42, "suit": "HEARTS", "total": "184.91",
        "items": [{"sku": "a", "count": 3, "price": 1.23, "extra": true}, {"sku": "b", "count": "1", "price": 0.89}]});
    let event = json!({"parameters": params});
    let body = r#"
    map eventParameters().value('foo') onto 's1'
    map eventParameters().value('bar') onto 's2'
    map eventParameters().value('missing') onto 's3'
    map eventParameter('foo') onto 's4'
    map eventParameters().path('$.bar') onto 'i1'
    map eventParameters().path('$.items[*].price') onto 'prices'
    map eventParameters().path('$.items[0].count') onto 'i2'
    map eventParameters().path('$.suit') onto 'suit'
    map eventParameters().path('$.items[1].sku') onto 'list'
    map eventParameters() onto 'basket'
    when eventParameters().path('$.foo').isPresent() apply { map true onto 'b1' }
    when eventParameters().path('$.missing').isPresent() apply { map true onto 'b2' }
    "#;
    assert_eq!(
        record(body, event.clone()),
        json!({"s1": "string", "s2": "42", "s3": "", "s4": "string", "i1": 42, "prices": [1.23, 0.89], "i2": 3,
               "suit": "HEARTS", "list": ["b"], "basket": {"total": 184.91, "items": [{"sku": "a", "count": 3}, {"sku": "b", "count": 1}]},
               "b1": true})
    );
    // A value that does not fit leaves the field as it was; the rest maps.
    let body = "map 'kept value' onto 's1'\n map eventParameters().path('$.foo') onto 'i1'\n map eventParameters().path('$.missing') onto 's1'\n\
                map eventParameters().path('$.foo') onto 'suit'\n map true onto 'b1'";
    assert_eq!(record(body, event), json!({"s1": "kept value", "b1": true}));
    assert_eq!(
        record("map eventParameters() onto 'pmap'", json!({"parameters": {"a": 1, "b": true}})),
        json!({"pmap": {"a": "1", "b": "true"}})
    );
    assert_eq!(record("map eventParameters().value('a') onto 's1'", json!({})), json!({}), "no parameters: absent");
}

#[test]
fn digests() {
    let event = json!({"event_id": "0:OxVC1WJ4PZNEGIUuzdXPsy_bztnKMuoH0",
        "parameters": {"foo": "string", "bar": 42, "items": [{"name": "apple"}, {"name": "pear"}]}});
    let body = r#"
    map digest('sha-256').add('aLiteralString').result() onto 'bin'
    map digest("SHA-256").add(eventId()).result().toHexLower() onto 's1'
    map digest('sha-256').add(eventId()).add('aLiteralString').result().toHexUpper() onto 's2'
    map digest('sha-256', 'foo').add(eventId()).result().toBase64() onto 's3'
    map digest('sha-256')
        .add(eventParameters().path('$.foo'))
        .add(eventParameters().path('$.bar'))
        .add(eventParameters().path('$.items'))
        .add(eventParameters().path('$.items[0].name'))
        .add(header('absent').first())
        .result().toHexLower() onto 's4'
    def empty = digest('sha-256').result()
    map digest('sha-256').add(empty).result().toHexLower() onto 'kept'
    "#;
    let got = record(body, event);
    // Bytes in JSON are text of the code points 0-255.
    let bin: Vec<u8> = got["bin"].as_str().unwrap().chars().map(|c| u8::try_from(u32::from(c)).unwrap()).collect();
    let hex_of_bin = hex::encode(bin);
    assert_eq!(hex_of_bin, "b93e514de9769112599e389019442a14823bd19574a16113892156b3528660c6");
    assert_eq!(got["s1"], "f3c4588d2d4302a6e996d3cf95ccaa538fd7df485cd1dcb852c682c407cadf7f");
    assert_eq!(got["s2"], "FC4E257EBBB6B80CCBA4FB876514738F49844B384C9F3DDF8C0BC85C216A3507");
    assert_eq!(got["s3"], "fdqpTfUghO+MFq9zCZBBNTwA9yJaoHrpACG5y45tyGk=");
    assert_eq!(got["s4"], "3a81a64fa8398e91d2852ce2623eb8f6fe0484cb465fa5b3cc84fe8173dabdd5");
    assert_eq!(got["kept"], "5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456");
}

#[test]
fn groovy_surface_forms() {
    let body = "\t/* block\n\t comment */\n\t'''a triple-quoted string used as a comment'''\n\
                \tdef loc = location()\n\tmap loc onto 's1'   // trailing comment\n\
                \tmap(referer()).onto('s2')\n\
                \twhen loc.isPresent() apply({\n\t\tmap 'yes' onto 's3'\n\t})\n\
                \tmap location()\n\t\t.equalTo('http://x/') onto 'b1'\n\
                \twhen { loc equalTo 'http://x/' } apply { map true onto 'b2' }\n\
                \tmap \"\"\"triple\"\"\" onto 's4'";
    assert_eq!(
        record(body, json!({"location": "http://x/", "referer": "http://r/"})),
        json!({"s1": "http://x/", "s2": "http://r/", "s3": "yes", "b1": true, "b2": true, "s4": "triple"})
    );
}

#[test]
fn startup_errors_name_the_line_and_the_problem() {
    let cases = [
        ("map location() onto 'nope'", "line 3, column 21: the schema has no field 'nope'"),
        ("map 'x' onto 'b1'", "String value cannot be mapped onto field 'b1'"),
        ("map 42 onto 'l1'", "write a long literal as 42L"),
        ("map 42.0 onto 'd1'", "BigDecimal"),
        ("map location().equalTo('x') onto 'i1'", "Boolean value cannot be mapped onto field 'i1'"),
        ("map timestamp() onto 'i1'", "long value cannot be mapped"),
        ("map location() onto 'wide'", "only [\"null\", T] unions"),
        ("map { parse location() to uri } onto 's1'", "a URI cannot be mapped onto a field"),
        ("map userAgent() onto 's1'", "UserAgent cannot be mapped"),
        ("map header('x') onto 'ints'", "List<String> value cannot be mapped"),
        ("map eventParameters() onto 'wide'", "only [\"null\", T] unions"),
        ("map ip2geo().cityName() onto 's1'", "ip2geo() needs a geo database"),
        ("map digest('whirlpool').result() onto 'bin'", "\"whirlpool\" is not supported"),
        ("map digest('sha-256').add(timestamp()).result() onto 'bin'", "add() takes a String"),
        ("map { parse location() to enum } onto 's1'", "cannot parse to `enum`"),
        ("def m = match '(a' against location()", "cannot be used"),
        ("def m = match 'a(?=b)' against location()", "look-around"),
        ("map { match '(a)' against location() }.group(2) onto 's1'", "no group 2"),
        ("map { match '(a)' against location() }.group('x') onto 's1'", "no group named \"x\""),
        ("map eventParameters().path('$[') onto 's1'", "invalid JSON path"),
        ("map location().frobnicate() onto 's1'", "has no method frobnicate()"),
        ("def u = parse location() to uri\n map u.hots() onto 's1'", "no method hots() (it has: path, rawPath"),
        ("map userAgent().os() onto 's1'", "osFamily, osVersion, osVendor, bot, equalTo"),
        ("map digest('md5').add(location()).result().toHex() onto 's1'", "toHexLower, toHexUpper, toBase64"),
        ("map unknownThing() onto 's1'", "unknown function unknownThing()"),
        ("map whatever onto 's1'", "unknown name `whatever`"),
        ("for (x in [1, 2]) { map 'a' onto 's1' }", "`for` is Groovy"),
        ("def f(x) { x }", "defines a function"),
        ("map location() + 'x' onto 's1'", "expected"),
        ("when location() apply { }", "a `when` condition must be a Boolean"),
        ("map timestamp().equalTo(42) onto 'b1'", "write a long literal as 42L"),
        ("map 'a' onto 's1' map 'b' onto 's2'", "expected the end of the statement"),
    ];
    for (body, want) in cases {
        let e = error(body);
        assert!(e.contains(want), "{body}\n  gave: {e}\n  wanted: {want}");
        assert!(e.starts_with("line "), "{e}");
    }
}

#[test]
fn a_required_field_left_unmapped_is_a_startup_error() {
    let e = compile("mapping { map location() onto 's1' }").unwrap_err();
    assert!(e.to_string().contains("field 'ts' has no default"), "{e}");
    // Mapped only under a condition: it compiles, and an event that leaves
    // it unset is refused rather than written half-built.
    let script = compile("mapping { when location().isPresent() apply { map timestamp() onto 'ts' } }").unwrap();
    let sample = SampleEvent::from_json("{}").unwrap();
    let mut out = vec![1];
    let r = sample.with_event(|e| {
        script.run(
            Inputs { event: e, user_agent: None, geo: None, geo_host: e.remote_host },
            &mut Scratch::default(),
            &mut out,
        )
    });
    assert_eq!(r, Err(crate::avro::EncodeError::MissingField(0)));
    assert_eq!(out, vec![1]);
}

#[test]
fn a_script_ending_inside_an_escape_is_an_error_not_a_crash() {
    for text in ["mapping { map 'abc\\", "mapping { map \"x\\", "mapping { map '''x\\"] {
        let e = compile(text).err().unwrap_or_else(|| panic!("compiled: {text}")).to_string();
        assert!(e.contains("unterminated string"), "{text}: {e}");
    }
}

#[test]
fn helpers_with_parameters_expand_where_they_are_called() {
    let event = json!({"parameters": {"isAdmin": "true", "email": "a@example.com", "plan": "gold"}});
    // A helper as a value, and one whose body maps, called as a statement.
    let body = "
    def boolParam = { name -> parse eventParameters().value(name) to boolean }
    def mapOptional = { field, target -> map eventParameters().value(field) onto target }
    map boolParam('isAdmin') onto 'b1'
    mapOptional('email', 's1')
    mapOptional 'plan', 's2'
    ";
    assert_eq!(record(body, event), json!({"b1": true, "s1": "a@example.com", "s2": "gold"}));
    let e = error("def h = { x -> x }\n map h('a', 'b') onto 's1'");
    assert!(e.contains("the helper `h` takes 1 argument(s), not 2"), "{e}");
    let e = error("def loop = { x -> loop(x); loop(x) }\n loop('a')");
    assert!(e.contains("the helper `loop` calls itself"), "{e}");
    // A helper's own `def` stays in the helper.
    let body = "
    def v = location()
    def h = { n -> def v = eventParameters().value(n)
                   map v onto 's1' }
    h('p')
    map v onto 's2'
    ";
    assert_eq!(
        record(body, json!({"location": "https://x/", "parameters": {"p": "param"}})),
        json!({"s1": "param", "s2": "https://x/"})
    );
}

#[test]
fn a_declared_name_is_bound_by_an_assignment_inside_a_when() {
    // The script body runs once, when the mapping is built: the assignment
    // binds the value whatever the condition, and the value is evaluated
    // per event.
    let body = "
    def where
    when eventType().equalTo('never') apply {
        where = location()
    }
    map where onto 's1'
    ";
    assert_eq!(record(body, json!({"location": "https://x/"})), json!({"s1": "https://x/"}));
    let e = error("def x\n map x onto 's1'");
    assert!(e.contains("`x` is declared with `def x` but has no value here yet"), "{e}");
    let e = error("y = location()");
    assert!(e.contains("declare it first with `def y`"), "{e}");
}

#[test]
fn a_list_each_is_unrolled_with_its_parameter_in_strings() {
    let body = "
    ['s1', 's2'].each { field ->
        map \"$field-${field}\" onto field
    }
    ";
    assert_eq!(record(body, json!({})), json!({"s1": "s1-s1", "s2": "s2-s2"}));
    let body = "[['SHA-256', 's1'], ['MD5', 's2']].each { pair -> map pair onto 's3' }";
    assert!(error(body).contains("a list is only unrolled by `.each`"), "lists of lists are not");
    let body =
        "def hashed = { alg, field -> map digest(alg, \"seed-$alg\").add(partyId()).result().toHexLower() onto field }
    ['SHA-256'].each { alg -> hashed(alg, 's1') }
    ['MD5'].each { alg -> hashed(alg, 's2') }";
    let r = record(body, json!({"party_id": "0:a:b"}));
    assert_eq!((r["s1"].as_str().unwrap().len(), r["s2"].as_str().unwrap().len()), (64, 32), "{r}");
    let e = error("map \"a-$nowhere\" onto 's1'");
    assert!(e.contains("only a helper's or `.each`'s parameter"), "{e}");
}

#[test]
fn groovy_type_names_parse_as_their_avro_types() {
    let event = json!({"parameters": {"n": "7", "l": "8", "f": "1.5", "d": "2.5", "b": "true"}});
    let body = "
    map parse eventParameters().value('n') to int onto 'i1'
    map parse eventParameters().value('l') to long onto 'l1'
    map parse eventParameters().value('f') to float onto 'f1'
    map parse eventParameters().value('d') to double onto 'd1'
    map parse eventParameters().value('b') to boolean onto 'b1'
    ";
    assert_eq!(record(body, event), json!({"i1": 7, "l1": 8, "f1": 1.5, "d1": 2.5, "b1": true}));
}

#[test]
fn every_refused_construct_is_reported_in_one_run_with_helpers_named() {
    let e =
        error("for (x in y) { }\n map location() onto 's1'\n while (true) {}\n def h = { a -> a }\n map h onto 's2'");
    assert!(e.starts_with("2 problems:"), "{e}");
    assert!(e.contains("line 3,") && e.contains("line 5,"), "{e}");
}
