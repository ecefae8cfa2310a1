//! The HTTP layer and the real request pipeline: raw bytes as one
//! connection would send them (pipelined requests, bodies, chunking), routed
//! to pixels, the JSON source, the tag, probes and metrics. Every answer must
//! be a well-formed HTTP response.
#![no_main]

use std::net::SocketAddr;
use std::sync::Arc;

use divolte::config::from_toml_with_env;
use divolte::http::{answer_bytes, Peer};
use divolte::metrics::ShardMetrics;
use divolte::plan::Plan;
use divolte::shard::service::ShardService;
use divolte::startup::{build, Built};
use libfuzzer_sys::fuzz_target;

/// A browser source and a JSON source (with the options of today's
/// browsers on: cookies, CORS, GPC, anonymised addresses; the batch
/// endpoint and compressed bodies are always there) into a Kafka sink whose broker is not
/// there: records fill its buffer (kept small here; the default holds a
/// million records) and are then dropped and counted, so memory stays flat
/// and nothing fills a disk while the fuzzer runs.
const CONFIG: &str = r#"
[global.server]
port = 1
max_header_bytes = 2048
max_body_bytes = 4096
[global.hdfs]
enabled = false
[global.kafka]
enabled = true
buffer_size = 1024
[global.kafka.producer]
"bootstrap.servers" = "127.0.0.1:9"
[global.mapper]
anonymize_ip = true
[sources.browser]
type = "browser"
server_cookies = true
respect_gpc = true
cors_allowed_origins = ["https://shop.example.com"]
[sources.app]
type = "json"
event_path = "/json"
cors_allowed_origins = ["*"]
[sinks.kafka]
type = "kafka"
topic = "fuzz"
[mappings.web]
sources = ["browser", "app"]
sinks = ["kafka"]
"#;

thread_local! {
    // The pipeline is a shard's: single-threaded, like the fuzzer.
    static SHARD: &'static (Built, ShardService) = {
        let config = from_toml_with_env(CONFIG, |_| None).expect("fuzz configuration");
        let plan = Plan::resolve(&config).expect("plan");
        let built = build(&plan, 1).expect("runtime");
        let service = ShardService::new(built.runtime.clone(), Arc::new(ShardMetrics::default()), 0);
        Box::leak(Box::new((built, service)))
    };
}

fuzz_target!(|data: &[u8]| {
    let (built, service) = SHARD.with(|s| *s);
    let peer = Peer { addr: SocketAddr::from(([192, 0, 2, 1], 4321)), host: "192.0.2.1" };
    let out = answer_bytes(data, &peer, service, &built.runtime.server.limits);
    service.flush_now();
    // Each answer parses as a response and declares the length of its body.
    let mut rest = out.as_slice();
    while !rest.is_empty() {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        let head = match res.parse(rest) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!("malformed answer {other:?}: {:?}", String::from_utf8_lossy(rest)),
        };
        let length = res
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map(|h| std::str::from_utf8(h.value).unwrap().parse::<usize>().unwrap());
        let body = match (res.code, length) {
            (Some(100), _) | (Some(304), _) => 0,
            // A HEAD answer declares the length of the body it leaves out.
            _ if rest[head..].is_empty() || rest[head..].starts_with(b"HTTP/1.1 ") => 0,
            (_, Some(n)) => n,
            (code, None) => panic!("answer {code:?} without Content-Length"),
        };
        assert!(head + body <= rest.len(), "answer shorter than its Content-Length");
        rest = &rest[head + body..];
    }
});
