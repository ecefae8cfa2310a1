//! The Kafka sink against a real broker (tansu): records keyed by party,
//! timestamped with the receive time, in naked and confluent framing; a
//! frozen broker; bounded memory; shutdown delivering what is queued.

mod common;

use std::time::Duration;

use apache_avro::types::Value;
use common::{field, opt_str, read_avro_dir, Broker, Collector, Options, Pixel, Tmpfs};

fn kafka_toml(
    broker: &Broker,
    extra_global: &str,
    sinks: &str,
    mapping_sinks: &str,
    confluent_id: Option<i32>,
) -> String {
    let id = confluent_id.map(|i| format!("confluent_id = {i}\n")).unwrap_or_default();
    format!(
        "[global.kafka]\nenabled = true\nthreads = 2\n{extra_global}\n[global.kafka.producer]\n\"bootstrap.servers\" = \"{}\"\n\"message.timeout.ms\" = 60000\n{sinks}\n[mappings.main]\nsources = [\"browser\"]\nsinks = [{mapping_sinks}]\n{id}",
        broker.bootstrap()
    )
}

fn send(c: &Collector, party: &str, location: &str) {
    let q = Pixel { party: party.into(), location: location.into(), ..Pixel::default() }.query();
    assert!(c.get(&format!("/csc-event?{q}"), "").starts_with("HTTP/1.1 200"));
}

/// Proves the path works (one record arrives), then freezes the broker.
fn deliver_one_then_freeze(c: &Collector, broker: &Broker) {
    send(c, "0:a:warm", "http://t/warm");
    assert_eq!(broker.consume("clicks", 1, Duration::from_secs(20)).len(), 1);
    broker.freeze(true);
}

fn decode(schema: &apache_avro::Schema, mut datum: &[u8]) -> Value {
    apache_avro::from_avro_datum(schema, &mut datum, None).unwrap()
}

#[test]
fn records_arrive_keyed_timestamped_and_decodable_beside_the_file_sink() {
    let broker = Broker::start(&[("clicks", 2), ("clicks-cf", 1)]);
    let sinks = "[sinks.naked]\ntype = \"kafka\"\ntopic = \"clicks\"\n[sinks.cf]\ntype = \"kafka\"\ntopic = \"clicks-cf\"\nmode = \"confluent\"\n";
    let c = Collector::start(Options {
        toml: kafka_toml(&broker, "", sinks, "\"naked\", \"cf\", \"hdfs\"", Some(0x1DEF_ACED)),
        ..Options::default()
    });
    let parties = ["0:a1:alice", "0:b2:bob", "0:c3:carol"];
    for i in 0..30 {
        send(&c, parties[i % 3], &format!("http://t/{}/{i:02}", i % 3));
    }
    let schema = divolte::avro::default_schema().schema;
    let naked = broker.consume("clicks", 30, Duration::from_secs(20));
    assert_eq!(naked.len(), 30, "{}", c.log_text());
    for m in &naked {
        let r = decode(&schema, &m.value);
        assert_eq!(opt_str(&r, "partyId").unwrap().as_bytes(), &m.key[..], "key = party id");
        assert_eq!(field(&r, "timestamp"), &Value::Long(m.timestamp.unwrap()), "Kafka timestamp = receive time");
    }
    // A party's records keep their order within its partition.
    for (p, party) in parties.iter().enumerate() {
        let of_party = || naked.iter().filter(|m| m.key == party.as_bytes());
        let locations: Vec<String> =
            of_party().map(|m| opt_str(&decode(&schema, &m.value), "location").unwrap()).collect();
        let mut sorted = locations.clone();
        sorted.sort();
        assert_eq!(locations, sorted, "order of {party}");
        assert_eq!(locations.len(), 10);
        assert!(locations.iter().all(|l| l.starts_with(&format!("http://t/{p}/"))));
        let partitions: std::collections::HashSet<i32> = of_party().map(|m| m.partition).collect();
        assert_eq!(partitions.len(), 1, "one partition per party");
    }

    // Delivered first, then read: the broker sometimes takes its time over
    // one batch, and a read that starts early can end before it lands.
    common::eventually(Duration::from_secs(60), || c.metric("divolte_sink_delivered_total", "sink=\"cf\"") == 30);
    let confluent = broker.consume("clicks-cf", 30, Duration::from_secs(30));
    assert_eq!(confluent.len(), 30);
    for m in &confluent {
        assert_eq!(&m.value[..5], &[0x00, 0x1d, 0xef, 0xac, 0xed], "magic byte and big-endian schema id");
        decode(&schema, &m.value[5..]);
    }
    c.assert_off_shard_cpus("rdk:");
    common::eventually(Duration::from_secs(10), || c.metric("divolte_sink_delivered_total", "sink=\"naked\"") == 30);
    common::eventually(Duration::from_secs(10), || c.metric("divolte_sink_delivered_total", "sink=\"cf\"") == 30);
    let (status, c) = c.stop();
    assert!(status.success());
    assert_eq!(read_avro_dir(&c.publish_dir()).len(), 30, "the file sink got the same records");
}

#[test]
fn a_frozen_broker_loses_nothing_within_the_buffer_and_delivery_resumes() {
    let broker = Broker::start(&[("clicks", 1)]);
    let sinks = "[sinks.k]\ntype = \"kafka\"\ntopic = \"clicks\"\n";
    let c = Collector::start(Options { toml: kafka_toml(&broker, "", sinks, "\"k\"", None), ..Options::default() });
    deliver_one_then_freeze(&c, &broker);
    for i in 0..200 {
        send(&c, "0:a:frozen", &format!("http://t/frozen/{i}"));
    }
    assert!(c.get("/ping", "").ends_with("pong"), "the collector keeps answering");
    std::thread::sleep(Duration::from_secs(2));
    broker.freeze(false);
    let all = broker.consume("clicks", 201, Duration::from_secs(60));
    assert_eq!(all.len(), 201, "{}", c.log_text());
    assert_eq!(c.metric("divolte_records_dropped_total", ""), 0);
}

#[test]
fn a_broker_killed_for_30_seconds_under_traffic_and_restarted_loses_nothing() {
    let broker = Broker::start(&[("clicks", 2)]);
    let port = broker.port;
    let sinks = "[sinks.k]\ntype = \"kafka\"\ntopic = \"clicks\"\n";
    let toml = kafka_toml(&broker, "", sinks, "\"k\"", None)
        .replace("\"message.timeout.ms\" = 60000", "\"message.timeout.ms\" = 5000");
    let c = Collector::start(Options { toml, ..Options::default() });
    for i in 0..50 {
        send(&c, "0:a:before", &format!("http://t/before/{i}"));
    }
    assert_eq!(broker.consume("clicks", 50, Duration::from_secs(20)).len(), 50);
    broker.kill();
    // Thirty seconds without a broker, an event every 100 ms, each answered.
    let down = std::time::Instant::now();
    let mut sent = 0;
    while down.elapsed() < Duration::from_secs(30) {
        send(&c, "0:a:down", &format!("http://t/down/{sent}"));
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(c.get("/ready", "").starts_with("HTTP/1.1 503"), "not ready without a broker");
    // The broker comes back empty (memory storage), its topic recreated.
    let broker = Broker::start_on(port, &[("clicks", 2)]);
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while c.metric("divolte_sink_delivered_total", "") < 50 + sent as u64 {
        assert!(std::time::Instant::now() < deadline, "not redelivered within 90 s: {}", c.log_text());
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = broker.consume("clicks", sent, Duration::from_secs(30));
    let locations: std::collections::HashSet<Vec<u8>> = got.iter().map(|m| m.value.clone()).collect();
    assert_eq!(locations.len(), sent, "every event accepted while the broker was down arrived");
    assert_eq!(c.metric("divolte_sink_delivered_total", ""), 50 + sent as u64);
    eprintln!(
        "broker down 30 s: {sent} events accepted meanwhile, {} on the restarted broker, {} sends retried",
        locations.len(),
        c.metric("divolte_sink_retried_total", "")
    );
    assert_eq!(c.metric("divolte_sink_failed_total", ""), 0);
    assert_eq!(c.metric("divolte_records_dropped_total", ""), 0);
    assert!(c.metric("divolte_sink_retried_total", "") > 0, "records timed out while it was down and were sent again");
    common::eventually(Duration::from_secs(10), || c.get("/ready", "").starts_with("HTTP/1.1 200"));
}

#[test]
fn the_spool_keeps_records_through_a_dead_broker_and_a_restart_and_replays_each_once() {
    let broker = Broker::start(&[("clicks", 2)]);
    let port = broker.port;
    let spool = tempfile::tempdir().unwrap();
    let sinks = format!(
        "[sinks.k]\ntype = \"kafka\"\ntopic = \"clicks\"\n[sinks.k.spool]\ndirectory = \"{}\"\n",
        spool.path().display()
    );
    let toml = format!(
        "shutdown_timeout = \"3 seconds\"\n{}",
        kafka_toml(&broker, "", &sinks, "\"k\"", None)
            .replace("\"message.timeout.ms\" = 60000", "\"message.timeout.ms\" = 2000")
    );
    let first = Collector::start(Options { toml: toml.clone(), ..Options::default() });
    for i in 0..10 {
        send(&first, "0:a:before", &format!("http://t/before/{i}"));
    }
    assert_eq!(broker.consume("clicks", 10, Duration::from_secs(20)).len(), 10);
    broker.kill();

    // The broker is gone: records time out in librdkafka and go to disk.
    for i in 0..200 {
        send(&first, "0:a:down", &format!("http://t/down/{i}"));
    }
    common::eventually(Duration::from_secs(20), || first.metric("divolte_sink_spooled_total", "") == 200);
    assert!(first.metric("divolte_sink_spool_bytes", "") > 0);
    // Stopped while spooled: the drain leaves the records on disk.
    let (status, first) = first.stop();
    assert!(status.success());
    assert!(first.log_text().contains("stay in the spool"), "{}", first.log_text());

    // Restarted while the broker is still down: spooled records wait, new ones join them.
    let second = Collector::start(Options { toml, ..Options::default() });
    assert!(second.log_text().contains("replayed first"));
    for i in 0..50 {
        send(&second, "0:a:restarted", &format!("http://t/restarted/{i}"));
    }
    common::eventually(Duration::from_secs(10), || second.metric("divolte_sink_spooled_total", "") == 50);

    // The broker returns (empty, its topic recreated): everything arrives, once.
    let broker = Broker::start_on(port, &[("clicks", 2)]);
    let got = broker.consume("clicks", 250, Duration::from_secs(90));
    let unique: std::collections::HashSet<Vec<u8>> = got.iter().map(|m| m.value.clone()).collect();
    assert_eq!(unique.len(), 250, "every spooled record arrived");
    common::eventually(Duration::from_secs(20), || second.metric("divolte_sink_spool_bytes", "") == 0);
    assert_eq!(broker.consume("clicks", 251, Duration::from_secs(3)).len(), 250, "and each exactly once");
    assert_eq!(second.metric("divolte_sink_failed_total", ""), 0);
    let (status, _second) = second.stop();
    assert!(status.success());
    let segments = walk(spool.path());
    assert!(segments.is_empty(), "replayed segments are deleted: {segments:?}");
}

#[test]
fn a_spool_on_a_full_disk_counts_exactly_what_it_could_not_keep() {
    let broker = Broker::start(&[("clicks", 1)]);
    let port = broker.port;
    let data = tempfile::tempdir().unwrap();
    let disk = data.path().join("small-disk");
    let _tmpfs = Tmpfs::mount(&disk, "128k");
    // Half the disk taken by something else, freed later.
    let filler = disk.join("filler");
    std::fs::write(&filler, vec![0u8; 64 << 10]).unwrap();
    let sinks = format!(
        "[sinks.k]\ntype = \"kafka\"\ntopic = \"clicks\"\n[sinks.k.spool]\ndirectory = \"{}\"\n",
        disk.display()
    );
    let toml = kafka_toml(&broker, "", &sinks, "\"k\"", None)
        .replace("\"message.timeout.ms\" = 60000", "\"message.timeout.ms\" = 2000");
    let c = Collector::start(Options { toml, ..Options::default() });
    send(&c, "0:a:warm", "http://t/warm");
    assert_eq!(broker.consume("clicks", 1, Duration::from_secs(20)).len(), 1);
    broker.kill();

    // More than the 64 KiB left: the disk fills part way through.
    const SENT: u64 = 400;
    for i in 0..SENT {
        send(&c, "0:a:down", &format!("http://t/down/{i}"));
    }
    common::eventually(Duration::from_secs(30), || {
        c.metric("divolte_sink_spooled_total", "") + c.metric("divolte_sink_failed_total", "") == SENT
    });
    let spooled = c.metric("divolte_sink_spooled_total", "");
    let failed = c.metric("divolte_sink_failed_total", "");
    assert!(spooled > 0 && failed > 0, "spooled {spooled}, failed {failed}");
    // The warning is written after the count moves, and the log is read
    // from the process's output: wait for it rather than race it.
    let logged = std::time::Instant::now() + Duration::from_secs(10);
    while !c.log_text().contains("Cannot write the spool") {
        assert!(std::time::Instant::now() < logged, "{}", c.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }

    // Space returns: the spool goes on after the record the disk cut short.
    std::fs::remove_file(&filler).unwrap();
    for i in 0..100 {
        send(&c, "0:a:freed", &format!("http://t/freed/{i}"));
    }
    common::eventually(Duration::from_secs(30), || c.metric("divolte_sink_spooled_total", "") == spooled + 100);
    let spooled = spooled + 100;
    assert_eq!(c.metric("divolte_sink_failed_total", ""), failed);
    eprintln!("spool on a full disk: {spooled} spooled, {failed} failed");

    // What the spool reported durable arrives, each once, and nothing that
    // was counted as failed.
    let broker = Broker::start_on(port, &[("clicks", 1)]);
    let got = broker.consume("clicks", spooled as usize, Duration::from_secs(60));
    let unique: std::collections::HashSet<Vec<u8>> = got.iter().map(|m| m.value.clone()).collect();
    assert_eq!(
        unique.len() as u64,
        spooled,
        "spooled {spooled}, failed {failed}, read {} ({} unique), spool bytes left {}",
        got.len(),
        unique.len(),
        c.metric("divolte_sink_spool_bytes", "")
    );
    common::eventually(Duration::from_secs(20), || c.metric("divolte_sink_spool_bytes", "") == 0);
    let more = broker.consume("clicks", spooled as usize + 1, Duration::from_secs(3)).len() as u64;
    assert_eq!(more, spooled, "each once");
    assert_eq!(c.metric("divolte_sink_failed_total", ""), failed);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn beyond_the_buffer_records_are_dropped_and_every_one_is_counted() {
    let broker = Broker::start(&[("clicks", 1)]);
    let sinks = "[sinks.k]\ntype = \"kafka\"\ntopic = \"clicks\"\n";
    let toml = kafka_toml(&broker, "buffer_size = 20", sinks, "\"k\"", None)
        .replace(
            "\"message.timeout.ms\" = 60000",
            "\"message.timeout.ms\" = 60000\n\"queue.buffering.max.messages\" = 10",
        )
        .replace("threads = 2", "threads = 1");
    let c = Collector::start(Options { toml, ..Options::default() });
    deliver_one_then_freeze(&c, &broker);
    for i in 0..100 {
        send(&c, "0:a:burst", &format!("http://t/burst/{i}"));
    }
    let dropped = c.metric("divolte_records_dropped_total", "queue_full");
    assert!(dropped > 0, "the bound was reached");
    broker.freeze(false);
    common::eventually(Duration::from_secs(60), || {
        c.metric("divolte_sink_delivered_total", "") + dropped == 101 && c.metric("divolte_sink_queue_records", "") == 0
    });
    let delivered = c.metric("divolte_sink_delivered_total", "");
    assert_eq!(broker.consume("clicks", delivered as usize, Duration::from_secs(20)).len() as u64, delivered);
    assert_eq!(c.metric("divolte_sink_failed_total", ""), 0);
}

#[test]
fn shutdown_delivers_the_records_still_queued() {
    let broker = Broker::start(&[("clicks", 1)]);
    let sinks = "[sinks.k]\ntype = \"kafka\"\ntopic = \"clicks\"\n";
    let c = Collector::start(Options {
        toml: format!("shutdown_timeout = \"20 seconds\"\n{}", kafka_toml(&broker, "", sinks, "\"k\"", None)),
        ..Options::default()
    });
    deliver_one_then_freeze(&c, &broker);
    for i in 0..30 {
        send(&c, "0:a:late", &format!("http://t/late/{i}"));
    }
    c.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_secs(1));
    broker.freeze(false);
    let mut c = c;
    assert!(c.wait_exit(Duration::from_secs(30)).success(), "{}", c.log_text());
    assert_eq!(broker.consume("clicks", 31, Duration::from_secs(20)).len(), 31);
}

#[test]
fn records_that_time_out_while_the_broker_is_frozen_are_retried_and_delivered() {
    let broker = Broker::start(&[("clicks", 1)]);
    let sinks = "[sinks.k]\ntype = \"kafka\"\ntopic = \"clicks\"\n";
    let toml = kafka_toml(&broker, "", sinks, "\"k\"", None)
        .replace("\"message.timeout.ms\" = 60000", "\"message.timeout.ms\" = 1000");
    let c = Collector::start(Options { toml, ..Options::default() });
    deliver_one_then_freeze(&c, &broker);
    for i in 0..20 {
        send(&c, "0:a:retry", &format!("http://t/retry/{i}"));
    }
    // librdkafka gives up on them after a second; the sink sends them again.
    common::eventually(Duration::from_secs(20), || c.metric("divolte_sink_retried_total", "") > 0);
    broker.freeze(false);
    common::eventually(Duration::from_secs(60), || c.metric("divolte_sink_delivered_total", "") == 21);
    let got = broker.consume("clicks", 21, Duration::from_secs(20));
    let unique: std::collections::HashSet<Vec<u8>> = got.iter().map(|m| m.value.clone()).collect();
    assert_eq!(unique.len(), 21, "every record arrived");
    assert_eq!(c.metric("divolte_sink_failed_total", ""), 0);
}

#[test]
fn readiness_fails_while_no_broker_is_reachable_and_recovers() {
    let port = common::free_port();
    let sinks = "[sinks.k]\ntype = \"kafka\"\ntopic = \"clicks\"\n";
    let toml = format!(
        "[global.kafka]\nenabled = true\nthreads = 1\n[global.kafka.producer]\n\"bootstrap.servers\" = \"127.0.0.1:{port}\"\n{sinks}\n[mappings.main]\nsources = [\"browser\"]\nsinks = [\"k\"]\n"
    );
    let c = Collector::start(Options { toml, ..Options::default() });
    send(&c, "0:a:early", "http://t/early");
    common::eventually(Duration::from_secs(20), || c.get("/ready", "").starts_with("HTTP/1.1 503"));
    assert!(c.get("/ready", "").contains("sink(s) failing: k"));
    assert!(c.get("/ping", "").ends_with("pong"), "liveness is not readiness");
    let broker = Broker::start_on(port, &[("clicks", 1)]);
    common::eventually(Duration::from_secs(60), || c.get("/ready", "").starts_with("HTTP/1.1 200"));
    assert_eq!(broker.consume("clicks", 1, Duration::from_secs(20)).len(), 1, "the early event arrived");
}
