//! The JSON source's request body and the party id in its query.
#![no_main]

use std::net::SocketAddr;
use std::time::SystemTime;

use divolte::event::json;
use divolte::http::{Method, Request};
use divolte::plan::SourceId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let req = Request {
        method: Method::Post,
        method_str: "POST",
        path: "/json",
        query: Some("p=0:a:b"),
        minor_version: 1,
        headers: &[],
        body: data,
        peer: SocketAddr::from(([192, 0, 2, 1], 4321)),
        peer_host: "192.0.2.1",
        received: SystemTime::now(),
    };
    let Some(party) = json::party_id(req.query, "p") else { return };
    if let Ok(body) = json::parse_body(req.body) {
        let _ = json::event(&body, &party, &req, SourceId(0));
    }
});
