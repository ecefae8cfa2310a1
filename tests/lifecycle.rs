//! Shutdown: `/ping` fails first, traffic continues through the delay,
//! then listeners close and every acknowledged event is published.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{opt_str, read_avro_dir, Collector, Options, Pixel};

/// Sends events on one keep-alive connection until the server goes away;
/// returns the event ids that were answered with the GIF.
fn event_sender(c: &Collector, worker: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<String>> {
    let port = c.port;
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        let mut n = 0;
        'outer: while !stop.load(Ordering::Relaxed) {
            let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                break;
            };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            loop {
                n += 1;
                let id = format!("http://test/w{worker}/e{n}");
                let q = Pixel { location: id.clone(), ..Pixel::default() }.query();
                if s.write_all(format!("GET /csc-event?{q} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).is_err() {
                    continue 'outer;
                }
                let mut buf = vec![0u8; 2048];
                let mut got = 0;
                let complete = loop {
                    match s.read(&mut buf[got..]) {
                        Ok(0) | Err(_) => break false,
                        Ok(k) => got += k,
                    }
                    let text = String::from_utf8_lossy(&buf[..got]);
                    if let Some(end) = text.find("\r\n\r\n") {
                        if got >= end + 4 + 43 {
                            break true;
                        }
                    }
                };
                if complete && buf.starts_with(b"HTTP/1.1 200") {
                    acked.push(id);
                    if String::from_utf8_lossy(&buf[..got]).contains("Connection: close") {
                        continue 'outer;
                    }
                } else {
                    continue 'outer;
                }
            }
        }
        acked
    })
}

#[test]
fn sigterm_fails_ping_then_drains_and_publishes_every_acknowledged_event() {
    let c = Collector::start(Options {
        toml: "shutdown_delay = \"1500 milliseconds\"\nshutdown_timeout = \"5 seconds\"\n".into(),
        cores: 2,
        ..Options::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4).map(|w| event_sender(&c, w, stop.clone())).collect();
    std::thread::sleep(Duration::from_millis(500));
    let ready = c.get("/ready", "");
    assert!(ready.starts_with("HTTP/1.1 200") && ready.ends_with("ready"), "{ready}");

    let signalled = Instant::now();
    c.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let ping = c.get("/ping", "");
    assert!(ping.starts_with("HTTP/1.1 503"), "{ping}");
    assert!(c.get("/ready", "").starts_with("HTTP/1.1 503"), "not ready while draining");
    assert!(ping.ends_with("No p*ng for you, shutting down"), "{ping}");
    // During the delay, new connections are still served.
    let during = c.get(
        &format!("/csc-event?{}", Pixel { location: "http://test/during".into(), ..Pixel::default() }.query()),
        "",
    );
    assert!(during.starts_with("HTTP/1.1 200"), "{during}");

    let mut c = c;
    let status = c.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit {status:?}\n{}", c.log_text());
    assert!(signalled.elapsed() >= Duration::from_millis(1500), "exited before shutdown_delay");
    stop.store(true, Ordering::Relaxed);
    let mut acked: Vec<String> = senders.into_iter().flat_map(|h| h.join().unwrap()).collect();
    acked.push("http://test/during".into());
    assert!(acked.len() > 100, "load was too light to mean anything: {}", acked.len());

    let published: std::collections::HashSet<String> =
        read_avro_dir(&c.publish_dir()).iter().filter_map(|r| opt_str(r, "location")).collect();
    let missing: Vec<&String> = acked.iter().filter(|id| !published.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events missing, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    assert_eq!(std::fs::read_dir(c.work_dir()).unwrap().count(), 0, "nothing left in the working directory");
}

#[test]
fn a_restart_right_after_a_drain_listens_on_the_same_port() {
    let first = Collector::start(Options::default());
    let port = first.port;
    // Keep-alive connections the drain closes from the collector's side:
    // those leave TIME_WAIT sockets on the port for a minute.
    let mut open: Vec<_> = (0..20).map(|_| first.connect()).collect();
    for s in &mut open {
        s.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut buf = [0u8; 512];
        assert!(s.read(&mut buf).unwrap() > 0);
    }
    let (status, _first) = first.stop();
    assert!(status.success());
    for s in &mut open {
        let mut buf = [0u8; 512];
        assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "closed by the drain");
    }
    let waiting =
        Command::new("ss").args(["-tanH", "state", "time-wait", &format!("sport = :{port}")]).output().unwrap();
    assert!(!waiting.stdout.is_empty(), "the collector closed first, so the port has TIME_WAIT sockets");

    let second = Collector::start(Options { port: Some(port), ..Options::default() });
    assert!(second.get("/ping", "").starts_with("HTTP/1.1 200"));
}

/// A collector whose only shard stalls for good half a second after it starts.
fn stalling(server_toml: &str) -> Collector {
    Collector::start(Options {
        toml: server_toml.into(),
        env: vec![("DIVOLTE_TEST_STALL_SHARD_AFTER_MS", "500".into())],
        ..Options::default()
    })
}

#[test]
fn a_stalled_shard_ends_the_process_so_that_it_is_restarted() {
    let mut c = stalling("watchdog_timeout = \"2 seconds\"\n");
    let started = Instant::now();
    let status = c.wait_exit(Duration::from_secs(20));
    let log = c.log_text();
    assert_eq!(status.code(), Some(70), "{log}");
    assert!(log.contains("A shard has made no progress") && log.contains("shard=0"), "{log}");
    assert!(started.elapsed() >= Duration::from_secs(2), "exited after {:?}", started.elapsed());
}

#[test]
fn a_drain_that_cannot_finish_ends_the_process_after_its_limit() {
    // The stall check is out of the way (a minute); the drain may take
    // 0 + 1 s + 5 s.
    let mut c = stalling("watchdog_timeout = \"60 seconds\"\nshutdown_timeout = \"1 second\"\n");
    std::thread::sleep(Duration::from_secs(1));
    c.signal(libc::SIGTERM);
    let signalled = Instant::now();
    let status = c.wait_exit(Duration::from_secs(30));
    let log = c.log_text();
    assert_eq!(status.code(), Some(70), "{log}");
    assert!(log.contains("The drain overran"), "{log}");
    let took = signalled.elapsed();
    assert!(took >= Duration::from_secs(6) && took < Duration::from_secs(11), "exited {took:?} after SIGTERM");
}

#[test]
fn one_shutdown_timeout_covers_the_connections_and_then_the_sinks() {
    // A connection in the middle of a request holds its shard until the
    // deadline, and a Kafka sink whose broker is not there holds its record
    // until the deadline too: together they get one shutdown_timeout.
    let toml = format!(
        "shutdown_timeout = \"3 seconds\"\n[global.kafka]\nenabled = true\n[global.kafka.producer]\n\
         \"bootstrap.servers\" = \"127.0.0.1:{}\"\n[sinks.k]\ntype = \"kafka\"\ntopic = \"t\"\n\
         [mappings.m]\nsources = [\"browser\"]\nsinks = [\"k\"]\n",
        common::free_port()
    );
    let mut c = Collector::start(Options { toml, file_sink: false, ..Options::default() });
    let q = Pixel::default().query();
    assert!(c.get(&format!("/csc-event?{q}"), "").starts_with("HTTP/1.1 200"));
    let mut busy = c.connect();
    busy.write_all(b"GET /ping HTTP/1.1\r\nX-Half: ").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    c.signal(libc::SIGTERM);
    let signalled = Instant::now();
    let status = c.wait_exit(Duration::from_secs(20));
    let took = signalled.elapsed();
    assert!(status.success(), "{}", c.log_text());
    assert!(took >= Duration::from_millis(2900) && took < Duration::from_millis(4500), "drained in {took:?}");
}
