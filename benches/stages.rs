//! The request path's stages over the load kit's traffic, for counting
//! instructions per stage under callgrind (`benches/stages.sh`). Unlike
//! criterion's times, the counts do not move with other load on the
//! machine, so two builds compare exactly, stage by stage.
//!
//! Reads the requests of benches/traffic.py from the file named by
//! `$TRAFFIC` (one sample request without it) and runs each through the head parse, the pixel parse and
//! checksum, the duplicate memory and the default mapping with Avro
//! encoding, `$ROUNDS` times over.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use divolte::avro::default_schema;
use divolte::enrich::dedup::DuplicateMemory;
use divolte::enrich::useragent::UserAgentCache;
use divolte::event::pixel::PixelScratch;
use divolte::http::{Method, Request, MAX_HEADERS};
use divolte::mapping::default::DefaultMapping;
use divolte::mapping::{Inputs, Mapping, Program, Scratch};
use divolte::plan::SourceId;

/// The load kit's request head around `path` and `agent` (benches/traffic.lua).
fn head(path: &str, agent: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: collector.example.com\r\nUser-Agent: {agent}\r\n\
         Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n\
         Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n\
         Referer: https://shop.example.com/\r\n\r\n"
    )
    .into_bytes()
}

#[inline(never)]
fn parse_head<'h>(raw: &'h [u8], headers: &mut [httparse::Header<'h>]) -> (&'h str, usize) {
    let mut req = httparse::Request::new(headers);
    assert!(req.parse(raw).is_ok_and(|s| s.is_complete()), "a whole head");
    (req.path.expect("a path"), req.headers.len())
}

/// One line of benches/traffic.py's output, for `cargo test`, which runs
/// this once without `$TRAFFIC`.
const SAMPLE: &str = "/csc-event?p=0%3Alonopqzt%3A9e1kX~3XYVH5AsSDpmZwqOPYPGW8IWu_&s=0%3Aloyw0oie%3ABtcgXXF7vdPWKay2N3Fcau1ItscKDvpZ&v=0%3AHlDaWKqpOydZCsfckzIfdIM2dZzTDbLm&e=0%3AHlDaWKqpOydZCsfckzIfdIM2dZzTDbLm0&c=loyw3v28&n=f&f=t&l=https%3A%2F%2Fshop.example.com%2Fproduct%2F734943&r=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Dbags&i=1hc&j=u0&k=2&w=140&h=p0&t=pageView&x=-dlkzdp\tMozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

fn main() {
    let traffic = match std::env::var("TRAFFIC") {
        Ok(file) => std::fs::read_to_string(file).expect("a readable TRAFFIC file"),
        Err(_) => SAMPLE.to_owned(),
    };
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let heads: Vec<Vec<u8>> =
        traffic.lines().filter_map(|line| line.split_once('\t')).map(|(path, agent)| head(path, agent)).collect();

    let layout = Arc::new(default_schema());
    let mapping =
        Mapping::standalone("stages", layout.clone(), Program::Default(DefaultMapping::new(&layout).unwrap()));
    let memory = DuplicateMemory::new(1 << 20);
    let mut agents = UserAgentCache::new(1000);
    let (mut pixel, mut key, mut map_scratch) = (PixelScratch::default(), Vec::new(), Scratch::default());
    let mut record = Vec::with_capacity(1024);
    let mut corrupt = 0usize;
    for _ in 0..rounds {
        for raw in &heads {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let (target, count) = parse_head(black_box(raw), &mut headers);
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let req = Request {
                method: Method::Get,
                method_str: "GET",
                path,
                query: Some(query),
                minor_version: 1,
                headers: &headers[..count],
                body: &[],
                peer: SocketAddr::from(([192, 0, 2, 7], 51234)),
                peer_host: "192.0.2.7",
                received: SystemTime::now(),
            };
            let Ok(unverified) = pixel.parse(&req, SourceId(0)) else { continue };
            let probe = {
                let e = unverified.event();
                memory.probe(e.party_id, e.session_id, e.event_id, &mut key)
            };
            let mut event = unverified.verify();
            corrupt += usize::from(event.corrupt);
            event.duplicate = memory.check(probe);
            let ua = event.user_agent.map(|a| agents.get(a));
            let inputs = Inputs { event: &event, user_agent: ua, geo: None, geo_host: event.remote_host };
            record.clear();
            mapping.map_into(inputs, &mut map_scratch, &mut record).expect("the default mapping maps every event");
            black_box(record.len());
        }
    }
    assert_eq!(corrupt, 0, "the load kit's traffic carries good checksums");
    println!("events={}", rounds * heads.len());
}
