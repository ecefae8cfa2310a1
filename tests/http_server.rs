//! The HTTP/1.1 layer over real sockets: framing, keep-alive, pipelining,
//! limits and timeouts.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{text, Collector, Options};

fn small_limits() -> Collector {
    Collector::start(Options {
        toml: "max_header_bytes = 1024\nmax_body_bytes = 2048\nheader_read_timeout = \"1 second\"\nidle_timeout = \"2 seconds\"\n".into(),
        ..Options::default()
    })
}

/// Reads responses from `s` until `n` complete ones (by Content-Length) arrived.
fn read_responses(s: &mut std::net::TcpStream, n: usize) -> Vec<String> {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    while out.len() < n {
        let read = s.read(&mut chunk).unwrap();
        assert!(read > 0, "connection closed after {} responses", out.len());
        buf.extend_from_slice(&chunk[..read]);
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            out.push(String::from_utf8_lossy(&buf[..end + 4 + len]).into_owned());
            buf.drain(..end + 4 + len);
        }
    }
    out
}

#[test]
fn ping_answers_pong_as_plain_text_with_server_and_date() {
    let c = Collector::start(Options::default());
    let r = c.get("/ping", "");
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.contains("\r\nServer: divolte\r\n"), "{r}");
    assert!(r.contains("\r\nDate: "), "{r}");
    assert!(r.contains("\r\nContent-Type: text/plain; charset=utf-8\r\n"), "{r}");
    assert!(r.ends_with("\r\n\r\npong"), "{r}");
}

#[test]
fn ping_accepts_any_method_and_head_has_no_body() {
    let c = Collector::start(Options::default());
    let r = text(c.raw(b"DELETE /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("pong"), "{r}");
    let r = text(c.raw(b"HEAD /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
    assert!(r.starts_with("HTTP/1.1 200") && r.contains("Content-Length: 4\r\n") && r.ends_with("\r\n\r\n"), "{r}");
}

#[test]
fn unknown_path_is_404_and_wrong_method_is_405_with_allow() {
    let c = Collector::start(Options::default());
    assert!(c.get("/nope", "").starts_with("HTTP/1.1 404"));
    let r = text(c.raw(b"POST /csc-event HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
    assert!(r.contains("\r\nAllow: GET\r\n"), "{r}");
    assert!(r.ends_with("HTTP method POST not allowed."), "{r}");
    assert_eq!(c.metric("divolte_http_requests_total", "method_not_allowed"), 1);
}

#[test]
fn dot_segments_are_resolved_before_routing() {
    let c = Collector::start(Options::default());
    assert!(c.get("/a/../ping", "").starts_with("HTTP/1.1 200"));
}

#[test]
fn keep_alive_serves_many_requests_on_one_connection() {
    let c = Collector::start(Options::default());
    let before = c.metric("divolte_connections_accepted_total", "");
    let mut s = c.connect();
    for _ in 0..20 {
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let r = read_responses(&mut s, 1);
        assert!(r[0].ends_with("pong"));
        assert!(!r[0].contains("Connection: close"));
    }
    let after = c.metric("divolte_connections_accepted_total", "");
    assert_eq!(after - before, 2, "one connection for 20 requests, plus this scrape's own");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let c = Collector::start(Options::default());
    let mut s = c.connect();
    let batch = "GET /ping HTTP/1.1\r\nHost: t\r\n\r\nGET /nope HTTP/1.1\r\nHost: t\r\n\r\nHEAD /ping HTTP/1.1\r\nHost: t\r\n\r\nGET /ping HTTP/1.1\r\nConnection: close\r\n\r\n";
    // Sent in awkward pieces, so requests straddle reads.
    for piece in batch.as_bytes().chunks(7) {
        s.write_all(piece).unwrap();
    }
    let mut all = String::new();
    s.read_to_string(&mut all).unwrap();
    let statuses: Vec<&str> = all.match_indices("HTTP/1.1 ").map(|(i, _)| &all[i + 9..i + 12]).collect();
    assert_eq!(statuses, ["200", "404", "200", "200"], "{all}");
    // The HEAD answer announces the body but sends none.
    let head_answer = all.split("HTTP/1.1 ").nth(3).unwrap();
    assert!(head_answer.contains("Content-Length: 4\r\n") && head_answer.ends_with("\r\n\r\n"), "{head_answer:?}");
    assert!(all.ends_with("pong"));
}

#[test]
fn http_1_0_closes_unless_keep_alive_is_asked_for() {
    let c = Collector::start(Options::default());
    let r = text(c.raw(b"GET /ping HTTP/1.0\r\n\r\n"));
    assert!(r.contains("Connection: close") && r.ends_with("pong"), "{r}");
    let mut s = c.connect();
    s.write_all(b"GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    let r = read_responses(&mut s, 1);
    assert!(r[0].contains("Connection: keep-alive\r\n"), "{}", r[0]);
    s.write_all(b"GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
    assert!(read_responses(&mut s, 1)[0].ends_with("pong"));
}

#[test]
fn connection_close_is_honoured() {
    let c = Collector::start(Options::default());
    // Read to end: returns only because the server closes.
    let r = text(c.raw(b"GET /ping HTTP/1.1\r\nConnection: close\r\n\r\nGET /ping HTTP/1.1\r\n\r\n"));
    assert_eq!(r.matches("HTTP/1.1 200").count(), 1, "{r}");
}

#[test]
fn content_length_and_chunked_bodies_are_consumed_before_the_next_request() {
    let c = Collector::start(Options::default());
    let mut s = c.connect();
    s.write_all(b"GET /ping HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /ping HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /ping HTTP/1.1\r\n\r\n").unwrap();
    let r = read_responses(&mut s, 3);
    assert!(r.iter().all(|x| x.ends_with("pong")), "{r:?}");
}

#[test]
fn expect_100_continue_gets_an_interim_answer() {
    let c = Collector::start(Options::default());
    let mut s = c.connect();
    s.write_all(b"GET /ping HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"abc").unwrap();
    assert!(read_responses(&mut s, 1)[0].ends_with("pong"));
}

#[test]
fn head_over_the_limit_gets_431_and_a_long_request_line_414() {
    let c = small_limits();
    let big_header = format!("GET /ping HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(1024));
    let r = text(c.raw(big_header.as_bytes()));
    assert!(r.starts_with("HTTP/1.1 431") && r.contains("Connection: close"), "{r}");
    let long_uri = format!("GET /ping?{} HTTP/1.1\r\n\r\n", "q".repeat(1100));
    assert!(text(c.raw(long_uri.as_bytes())).starts_with("HTTP/1.1 414"));
    // One byte under the limit still works.
    let head = "GET /ping HTTP/1.1\r\nX-Fill: \r\nConnection: close\r\n\r\n";
    let fill = "b".repeat(1024 - head.len());
    let ok = format!("GET /ping HTTP/1.1\r\nX-Fill: {fill}\r\nConnection: close\r\n\r\n");
    assert_eq!(ok.len(), 1024);
    assert!(text(c.raw(ok.as_bytes())).starts_with("HTTP/1.1 200"));
    let too_many: String = (0..70).map(|i| format!("X-{i}: v\r\n")).collect();
    assert!(text(c.raw(format!("GET /ping HTTP/1.1\r\n{too_many}\r\n").as_bytes())).starts_with("HTTP/1.1 431"));
    assert_eq!(c.metric("divolte_http_errors_total", "431"), 2);
}

#[test]
fn bodies_over_the_limit_get_413() {
    let c = small_limits();
    let r = text(c.raw(b"GET /ping HTTP/1.1\r\nContent-Length: 2049\r\n\r\n"));
    assert!(r.starts_with("HTTP/1.1 413"), "{r}");
    let chunk =
        format!("GET /ping HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n801\r\n{}\r\n0\r\n\r\n", "z".repeat(2049));
    assert!(text(c.raw(chunk.as_bytes())).starts_with("HTTP/1.1 413"));
    let at_limit =
        format!("GET /ping HTTP/1.1\r\nContent-Length: 2048\r\nConnection: close\r\n\r\n{}", "z".repeat(2048));
    assert!(text(c.raw(at_limit.as_bytes())).starts_with("HTTP/1.1 200"));
}

#[test]
fn malformed_requests_get_400_and_the_connection_closes() {
    let c = Collector::start(Options::default());
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /ping HTTP/1.1\r\nBad Header\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"GET /ping HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
    ] {
        let r = text(c.raw(bad));
        assert!(
            r.starts_with("HTTP/1.1 400") && r.contains("Connection: close"),
            "{:?} -> {r}",
            String::from_utf8_lossy(bad)
        );
    }
    let r = text(c.raw(b"GET /ping HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"));
    assert!(r.starts_with("HTTP/1.1 501"), "{r}");
}

#[test]
fn a_slow_request_head_gets_408() {
    let c = small_limits();
    let mut s = c.connect();
    let start = Instant::now();
    // Dribble a byte at a time, never finishing the head.
    let mut answer = Vec::new();
    let mut last_error = None;
    for b in b"GET /ping HTTP/1.1\r\nX-Slow: ".iter().cycle() {
        if let Err(e) = s.write_all(&[*b]) {
            last_error = Some(format!("write: {e}"));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => last_error = Some(format!("read: {e}")),
        }
        s.set_nonblocking(false).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "never timed out");
    }
    let answer = text(answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?} after {:?}, {last_error:?}", start.elapsed());
    assert!(start.elapsed() >= Duration::from_millis(900));
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() {
    let c = small_limits();
    let mut s = c.connect();
    let start = Instant::now();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap(), 0, "server closed");
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(1900) && waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn metrics_can_move_to_their_own_port() {
    let admin_port = common::free_port();
    let c = Collector::start(Options { toml: format!("metrics_port = {admin_port}\n"), ..Options::default() });
    assert!(c.get("/metrics", "").starts_with("HTTP/1.1 404"), "not on the public port");
    let admin = |path: &str| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", admin_port)).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    let m = admin("/metrics");
    assert!(
        m.starts_with("HTTP/1.1 200") && m.contains("divolte_http_requests_total{endpoint=\"not_found\"} 1"),
        "{m}"
    );
    assert!(admin("/ping").ends_with("pong"));
    assert!(admin("/ready").ends_with("ready"));
    assert!(admin("/csc-event").starts_with("HTTP/1.1 404"), "no events on the admin port");
}
