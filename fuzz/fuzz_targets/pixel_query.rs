//! The pixel's query string: URL decoding, identifiers, base-36 numbers, the
//! checksum's canonical form, then both the built-in mapping and a mapping
//! script that parses the location as a URI and its query, runs regexes,
//! reads the mincode custom parameters and hashes the party id.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use divolte::avro::{default_schema, RecordLayout};
use divolte::event::pixel::{PixelScratch, Unverified};
use divolte::http::{Method, Request};
use divolte::mapping::default::DefaultMapping;
use divolte::mapping::script::{Environment, Script};
use divolte::mapping::{Inputs, Mapping, Program, Scratch};
use divolte::plan::SourceId;
use libfuzzer_sys::fuzz_target;

fn mappings() -> &'static [Mapping; 2] {
    static M: OnceLock<[Mapping; 2]> = OnceLock::new();
    M.get_or_init(|| {
        let layout = Arc::new(default_schema());
        let default =
            Mapping::standalone("fuzz", layout.clone(), Program::Default(DefaultMapping::new(&layout).unwrap()));
        let shop = Arc::new(RecordLayout::parse(include_str!("../../examples/pagetype/schema.avsc")).unwrap());
        // The example without ip2geo(), which needs a database.
        let text = include_str!("../../examples/pagetype/mapping.groovy").replace("map ip2geo()", "// ");
        let script = Script::compile(&text, &shop, Environment { geo: false }).unwrap();
        [default, Mapping::standalone("fuzz", shop, Program::Script(script))]
    })
}

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    let headers = [
        httparse::Header { name: "User-Agent", value: b"Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0" },
        httparse::Header { name: "Cookie", value: b"_dvp=0:a:b" },
    ];
    let req = Request {
        method: Method::Get,
        method_str: "GET",
        path: "/csc-event",
        query: Some(&query),
        minor_version: 1,
        headers: &headers,
        body: &[],
        peer: SocketAddr::from(([192, 0, 2, 1], 4321)),
        peer_host: "192.0.2.1",
        received: SystemTime::now(),
    };
    let mut pixel = PixelScratch::default();
    let Ok(event) = pixel.parse(&req, SourceId(0)).map(Unverified::verify) else { return };
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    for m in mappings() {
        out.clear();
        let _ = m.map_into(Inputs { event: &event, user_agent: None, geo: None, geo_host: event.remote_host }, &mut scratch, &mut out);
    }
});
