//! Durable answers (`global.server.delivery = "durable"`): under load the
//! collector is killed with `kill -9` at a random moment, and every event
//! it answered 200 is found afterwards: in a published file (after the
//! next start recovers what was staged) or on the Kafka topic. A sink that
//! cannot make records durable turns their answers into 503.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apache_avro::types::Value;
use common::{eventually, field, read_with_fastavro, Broker, Collector, Options, Pixel};

/// Keys of `[global.server]`, which the generated configuration opens.
const DURABLE: &str = "delivery = \"durable\"\n";

/// A file sink that, in fast mode, would hold records unsynced for an hour.
fn file_sink(working: &Path, publish: &Path) -> String {
    format!(
        "[global.hdfs]\nthreads = 2\n[sinks.hdfs]\ntype = \"hdfs\"\n[sinks.hdfs.file_strategy]\nworking_dir = \"{}\"\n\
         publish_dir = \"{}\"\nsync_file_after_records = 1000000\nsync_file_after_duration = \"1 hour\"\nroll_every = \"1 hour\"\n",
        working.display(),
        publish.display()
    )
}

/// One answer read from a keep-alive connection: its status code.
fn read_status(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<u16> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buf.len() < end + 4 + length {
                // The body is still coming.
            } else {
                buf.drain(..end + 4 + length);
                return head.split(' ').nth(1).and_then(|c| c.parse().ok());
            }
        }
        let mut chunk = [0u8; 4096];
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Sends pixel events with unique locations over `clients` keep-alive
/// connections until `stop` is set or the collector goes away; returns
/// the locations answered 200.
fn load(port: u16, clients: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    (0..clients)
        .map(|client| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return acked };
                let mut buf = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let location = format!("http://t/{client}/{i}");
                    let party = format!("0:p{client}:party");
                    let q = Pixel { location: location.clone(), party, ..Pixel::default() }.query();
                    let req = format!("GET /csc-event?{q} HTTP/1.1\r\nHost: t\r\n\r\n");
                    if s.write_all(req.as_bytes()).is_err() {
                        break;
                    }
                    match read_status(&mut s, &mut buf) {
                        Some(200) => acked.push(location),
                        _ => break,
                    }
                }
                acked
            })
        })
        .collect()
}

/// Every location in `acked` is in `stored`, `place` saying where that is.
fn assert_all_stored(acked: &[String], stored: &HashSet<String>, place: &str) {
    let lost: Vec<&String> = acked.iter().filter(|l| !stored.contains(*l)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} events answered 200 are not {place}: {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );
}

/// Runs the load, kills the collector at a random moment within it, and
/// returns what was answered 200.
fn kill_under_load(c: &mut Collector) -> Vec<String> {
    // One event first: the sinks have opened their file or connection.
    let q = Pixel { location: "http://t/warm".into(), ..Pixel::default() }.query();
    assert!(c.get(&format!("/csc-event?{q}"), "").starts_with("HTTP/1.1 200"), "{}", c.log_text());
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(c.port, 16, stop.clone());
    // A moment between 0.3 and 1.3 s into the load, from the clock.
    let nanos = Instant::now().elapsed().subsec_nanos() ^ std::process::id();
    std::thread::sleep(Duration::from_millis(300 + u64::from(nanos % 1000)));
    c.signal(libc::SIGKILL);
    c.wait_exit(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    clients.into_iter().flat_map(|t| t.join().unwrap()).collect()
}

#[test]
fn kill_9_under_load_loses_no_event_answered_200_by_the_file_sink() {
    let data = tempfile::tempdir().unwrap();
    let (working, publish) = (data.path().join("work"), data.path().join("publish"));
    let opts = || Options {
        toml: format!("{DURABLE}{}", file_sink(&working, &publish)),
        file_sink: false,
        cores: 2,
        ..Options::default()
    };
    let mut first = Collector::start(opts());
    let acked = kill_under_load(&mut first);
    assert!(acked.len() > 100, "the load ran: {} answered 200", acked.len());

    // The next start publishes what the killed one had synced.
    let second = Collector::start(opts());
    let (status, second) = second.stop();
    assert!(status.success(), "{}", second.log_text());
    let stored: HashSet<String> =
        read_with_fastavro(&publish).iter().map(|r| r["location"].as_str().unwrap().to_owned()).collect();
    assert_all_stored(&acked, &stored, "in the published files");
}

#[test]
fn kill_9_under_load_loses_no_event_answered_200_by_kafka() {
    let broker = Broker::start(&[("clicks", 2)]);
    let toml = format!(
        "{DURABLE}[global.kafka]\nenabled = true\nthreads = 2\n[global.kafka.producer]\n\"bootstrap.servers\" = \"{}\"\n\
         acks = \"all\"\n\"linger.ms\" = 5\n[sinks.kafka]\ntype = \"kafka\"\ntopic = \"clicks\"\n\
         [mappings.main]\nsources = [\"browser\"]\nsinks = [\"kafka\"]\n",
        broker.bootstrap()
    );
    let mut c = Collector::start(Options { toml, file_sink: false, cores: 2, ..Options::default() });
    let acked = kill_under_load(&mut c);
    assert!(acked.len() > 100, "the load ran: {} answered 200", acked.len());

    let schema = divolte::avro::default_schema().schema;
    // Read for a while rather than up to a count: a record the producer
    // sent twice (a retry after a lost acknowledgement) is on the topic twice.
    let consumed = broker.consume("clicks", usize::MAX, Duration::from_secs(10));
    let stored: HashSet<String> = consumed
        .iter()
        .map(|m| {
            let record = apache_avro::from_avro_datum(&schema, &mut &m.value[..], None).unwrap();
            match field(&record, "location") {
                Value::Union(_, v) => match v.as_ref() {
                    Value::String(s) => s.clone(),
                    other => panic!("location {other:?}"),
                },
                other => panic!("location {other:?}"),
            }
        })
        .collect();
    assert_all_stored(&acked, &stored, &format!("among the {} records on the topic", consumed.len()));
}

#[test]
fn a_broker_that_does_not_acknowledge_gets_503_and_then_200_again() {
    let broker = Broker::start(&[("clicks", 1)]);
    let toml = format!(
        "delivery = \"durable\"\ndelivery_timeout = \"1 second\"\n[global.kafka]\nenabled = true\n\
         [global.kafka.producer]\n\"bootstrap.servers\" = \"{}\"\n[sinks.kafka]\ntype = \"kafka\"\ntopic = \"clicks\"\n\
         [mappings.main]\nsources = [\"browser\"]\nsinks = [\"kafka\"]\n",
        broker.bootstrap()
    );
    let c = Collector::start(Options { toml, file_sink: false, ..Options::default() });
    let event = |n: usize| {
        let q = Pixel { location: format!("http://t/{n}"), ..Pixel::default() }.query();
        c.get(&format!("/csc-event?{q}"), "")
    };
    assert!(event(0).starts_with("HTTP/1.1 200"), "{}", c.log_text());

    broker.freeze(true);
    let started = Instant::now();
    let answer = event(1);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("Retry-After: 1\r\n"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900), "the answer waited for delivery_timeout");
    assert_eq!(c.metric("divolte_durable_unavailable_total", "cause=\"timeout\""), 1);
    assert!(c.get("/ping", "").starts_with("HTTP/1.1 200"), "the shard goes on serving meanwhile");

    broker.freeze(false);
    eventually(Duration::from_secs(20), || event(2).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_full_queue_is_503_at_once_in_durable_mode() {
    // A lane that holds one record and a sink that never takes it: the
    // first record waits in the queue, the next does not fit.
    let broker = Broker::start(&[("clicks", 1)]);
    broker.freeze(true);
    let toml = format!(
        "delivery = \"durable\"\ndelivery_timeout = \"30 seconds\"\n[global.kafka]\nenabled = true\n\
         buffer_size = 1\n[global.kafka.producer]\n\"bootstrap.servers\" = \"{}\"\n\"queue.buffering.max.messages\" = 1\n\
         [sinks.kafka]\ntype = \"kafka\"\ntopic = \"clicks\"\n[mappings.main]\nsources = [\"browser\"]\nsinks = [\"kafka\"]\n",
        broker.bootstrap()
    );
    let c = Collector::start(Options { toml, file_sink: false, ..Options::default() });
    let mut waiting = Vec::new();
    for n in 0..3 {
        let mut s = c.connect();
        let q = Pixel { location: format!("http://t/{n}"), ..Pixel::default() }.query();
        s.write_all(format!("GET /csc-event?{q} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes()).unwrap();
        waiting.push(s);
    }
    eventually(Duration::from_secs(10), || c.metric("divolte_records_dropped_total", "cause=\"queue_full\"") >= 1);
    eventually(Duration::from_secs(10), || c.metric("divolte_durable_unavailable_total", "cause=\"lost\"") >= 1);
    let started = Instant::now();
    let mut refused = 0;
    for mut s in waiting {
        s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut buf = Vec::new();
        if read_status(&mut s, &mut buf) == Some(503) {
            refused += 1;
        }
    }
    assert!(refused >= 1, "a record that did not fit its queue was answered 503");
    assert!(started.elapsed() < Duration::from_secs(5), "without waiting for delivery_timeout");
    broker.freeze(false);
}
