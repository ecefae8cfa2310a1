//! The file sink on remote stores, against real servers of each protocol:
//! S3 (moto) and GCS (fake-gcs-server), read back with boto3 and
//! google-cloud-storage and fastavro; HDFS as far as it can be tested
//! without a namenode (see docs/sinks.md).

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::stores::{Kind, Object, StoreServer};
use common::{eventually, free_port, Collector, Options, Pixel};

fn collector(store: &StoreServer, staging: &Path, strategy: &str) -> Collector {
    let kind = if store.kind == Kind::S3 { "s3" } else { "gcs" };
    let toml = format!("[global.{kind}]\nenabled = true\nthreads = 1\n{}", store.sink_toml("store", staging, strategy));
    Collector::start(Options { toml, file_sink: false, env: store.client_env(), ..Options::default() })
}

fn send(c: &Collector, tag: &str, i: usize) -> String {
    let location = format!("http://t/{tag}/{i}");
    let q = Pixel { location: location.clone(), event: format!("{tag}-{i}"), ..Pixel::default() }.query();
    assert!(c.get(&format!("/csc-event?{q}"), "").starts_with("HTTP/1.1 200"));
    location
}

/// How many times each location was published.
fn counts(objects: &[Object]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for location in objects.iter().flat_map(|o| o.locations.iter().flatten()) {
        *counts.entry(location.clone()).or_insert(0) += 1;
    }
    counts
}

fn staged(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default()
}

fn published_files_are_complete_avro_read_by_the_vendors_client(kind: Kind) {
    let store = StoreServer::start(kind, "clicks");
    let staging = tempfile::tempdir().unwrap();
    let c = collector(&store, staging.path(), "roll_every = \"1 second\"");
    let sent: Vec<String> = (0..25).map(|i| send(&c, "a", i)).collect();
    eventually(Duration::from_secs(20), || counts(&store.objects("published/")).len() == sent.len());
    let objects = store.objects("");
    let got = counts(&objects);
    assert!(sent.iter().all(|l| got.get(l) == Some(&1)), "each event exactly once: {got:?}");
    for o in &objects {
        let name = o.name.strip_prefix("published/").unwrap_or_else(|| panic!("outside publish_dir: {}", o.name));
        assert!(name[..14].bytes().all(|b| b.is_ascii_digit()) && name.contains("-divolte-tracking-"), "{name}");
        assert!(name.ends_with(".avro"), "only published files, no partial uploads: {name}");
    }
    eventually(Duration::from_secs(5), || staged(staging.path()).is_empty());
    assert!(c.metric("divolte_sink_files_published_total", "store") >= 1);
    assert!(c.get("/ready", "").starts_with("HTTP/1.1 200"));
}

#[test]
fn s3_files_are_complete_avro_read_by_boto3() {
    published_files_are_complete_avro_read_by_the_vendors_client(Kind::S3);
}

#[test]
fn gcs_files_are_complete_avro_read_by_googles_client() {
    published_files_are_complete_avro_read_by_the_vendors_client(Kind::Gcs);
}

/// The store stops answering for 20 s while events keep coming; every
/// event answered is published exactly once after it answers again.
fn a_store_that_stops_answering_loses_nothing(kind: Kind) {
    let store = StoreServer::start(kind, "clicks");
    let staging = tempfile::tempdir().unwrap();
    let strategy = "roll_every = \"1 second\"\n[sinks.store.retry_settings]\ntotal_timeout = \"2 seconds\"\ninitial_retry_delay = \"200 milliseconds\"\nmax_retry_delay = \"1 second\"";
    let c = Arc::new(collector(&store, staging.path(), strategy));
    let running = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (c, running, sent) = (c.clone(), running.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut locations = Vec::new();
            while running.load(Ordering::Relaxed) {
                locations.push(send(&c, "b", locations.len()));
                sent.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
            locations
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    store.freeze();
    let frozen = Instant::now();
    eventually(Duration::from_secs(15), || c.get("/ready", "").contains("sink(s) failing: store"));
    std::thread::sleep(Duration::from_secs(20).saturating_sub(frozen.elapsed()));
    let sent_while_frozen = sent.load(Ordering::Relaxed);
    store.thaw();
    std::thread::sleep(Duration::from_secs(2));
    running.store(false, Ordering::Relaxed);
    let locations = sender.join().unwrap();
    eventually(Duration::from_secs(30), || counts(&store.objects("published/")).len() >= locations.len());
    let got = counts(&store.objects("published/"));
    assert!(locations.iter().all(|l| got.get(l) == Some(&1)), "each event exactly once after the outage");
    assert_eq!(got.len(), locations.len());
    eventually(Duration::from_secs(10), || c.get("/ready", "").starts_with("HTTP/1.1 200"));
    assert!(c.metric("divolte_sink_errors_total", "store") > 0, "the failures were counted");
    assert!(
        c.metric("divolte_sink_store_errors_total", "cause=\"unreachable\"") > 0,
        "counted as a store that did not answer"
    );
    assert_eq!(c.metric("divolte_records_dropped_total", ""), 0);
    eprintln!("{kind:?}: {} events, {sent_while_frozen} sent before the store answered again", locations.len());
}

#[test]
fn s3_stopped_for_20_seconds_under_traffic_loses_nothing() {
    a_store_that_stops_answering_loses_nothing(Kind::S3);
}

#[test]
fn gcs_stopped_for_20_seconds_under_traffic_loses_nothing() {
    a_store_that_stops_answering_loses_nothing(Kind::Gcs);
}

/// `kill -9` with a file half synced: the next start publishes every
/// synced record of it exactly once, beside the new run's files.
fn kill_9_then_restart_publishes_every_synced_record_once(kind: Kind) {
    let store = StoreServer::start(kind, "clicks");
    let staging = tempfile::tempdir().unwrap();
    let c = collector(&store, staging.path(), "sync_file_after_records = 5\nroll_every = \"1 hour\"");
    let first: Vec<String> = (0..12).map(|i| send(&c, "c", i)).collect();
    eventually(Duration::from_secs(5), || c.metric("divolte_sink_delivered_total", "store") == 10);
    c.signal(libc::SIGKILL);
    let mut c = c;
    c.wait_exit(Duration::from_secs(5));
    assert!(store.objects("published/").is_empty(), "nothing was published before the kill");

    let c = collector(&store, staging.path(), "roll_every = \"1 second\"");
    let second: Vec<String> = (0..3).map(|i| send(&c, "d", i)).collect();
    eventually(Duration::from_secs(20), || counts(&store.objects("published/")).len() == 13);
    let got = counts(&store.objects("published/"));
    for l in first[..10].iter().chain(&second) {
        assert_eq!(got.get(l), Some(&1), "{l} published once");
    }
    assert!(first[10..].iter().all(|l| !got.contains_key(l)), "records not synced before the kill are not invented");
    assert!(c.log_text().contains("Recovered a file left by an earlier run"));
}

#[test]
fn s3_kill_9_then_restart_publishes_every_synced_record_once() {
    kill_9_then_restart_publishes_every_synced_record_once(Kind::S3);
}

#[test]
fn gcs_kill_9_then_restart_publishes_every_synced_record_once() {
    kill_9_then_restart_publishes_every_synced_record_once(Kind::Gcs);
}

/// No HDFS can run here: a namenode that refuses connections must leave
/// the sink unhealthy with its records held and staged, not lost.
#[test]
fn an_unreachable_namenode_holds_the_records_staged_and_the_sink_unhealthy() {
    let conf = tempfile::tempdir().unwrap();
    let namenode = format!("hdfs://127.0.0.1:{}", free_port());
    std::fs::write(
        conf.path().join("core-site.xml"),
        format!(
            "<configuration><property><name>fs.defaultFS</name><value>{namenode}</value></property></configuration>"
        ),
    )
    .unwrap();
    let staging = tempfile::tempdir().unwrap();
    let toml = format!(
        "shutdown_timeout = \"2 seconds\"\n[sinks.hdfs]\ntype = \"hdfs\"\nstaging_dir = \"{}\"\n[sinks.hdfs.file_strategy]\nworking_dir = \"/divolte/inflight\"\npublish_dir = \"/divolte/published\"\nroll_every = \"1 second\"\n",
        staging.path().display()
    );
    let env = vec![("HADOOP_CONF_DIR", conf.path().display().to_string())];
    let c = Collector::start(Options { toml, file_sink: false, env, ..Options::default() });
    assert!(c.log_text().contains(&namenode), "the default filesystem of HADOOP_CONF_DIR is used");
    let sent: Vec<String> = (0..5).map(|i| send(&c, "e", i)).collect();
    // The startup check found no namenode: the sink starts unhealthy.
    eventually(Duration::from_secs(5), || c.get("/ready", "").contains("sink(s) failing: hdfs"));
    assert!(c.log_text().contains("The store does not answer"));
    // Synced in the staging directory at the roll, then the publish fails.
    eventually(Duration::from_secs(10), || c.metric("divolte_sink_delivered_total", "hdfs") == 5);
    // Files written to the staging disk say nothing of the store.
    assert!(c.get("/ready", "").contains("sink(s) failing: hdfs"), "staged records do not make the store healthy");
    eventually(Duration::from_secs(45), || c.metric("divolte_sink_errors_total", "hdfs") > 0);
    assert!(c.metric("divolte_sink_store_errors_total", "cause=\"unreachable\"") > 0);
    assert_eq!(c.metric("divolte_sink_store_errors_total", "cause=\"disk\""), 0);
    let (status, c) = c.stop();
    assert!(status.success());
    let files = staged(staging.path());
    assert_eq!(files.len(), 1, "the file stays staged for the next start: {files:?}");
    let records: Vec<_> = apache_avro::Reader::new(std::fs::File::open(&files[0]).unwrap()).unwrap().collect();
    assert_eq!(records.len(), sent.len());
    assert!(c.log_text().contains("stays staged and is published at the next start"));
}

/// A bucket that is not there stops the start with the reason, and
/// `check-config --connect` says which sink cannot be reached.
#[test]
fn a_missing_bucket_is_one_clear_error_at_startup_and_in_check_config() {
    let store = StoreServer::start(Kind::S3, "clicks");
    let dir = tempfile::tempdir().unwrap();
    let config = |bucket: &str| {
        let file = dir.path().join(format!("{bucket}.toml"));
        let mut toml = format!("[global.server]\nport = {}\n[global.s3]\nenabled = true\n", free_port());
        toml.push_str(
            &store.sink_toml("store", &dir.path().join("staging"), "").replace("\"clicks\"", &format!("{bucket:?}")),
        );
        toml.push_str(&format!("[global.kafka]\nenabled = {}\n[global.kafka.producer]\n\"bootstrap.servers\" = \"127.0.0.1:{}\"\n[sinks.topic]\ntype = \"kafka\"\n[mappings.m]\nsources = [\"browser\"]\nsinks = [\"store\", \"topic\"]\n", bucket == "nowhere", free_port()));
        std::fs::write(&file, toml).unwrap();
        file
    };
    let run = |args: &[&std::ffi::OsStr]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_divolte-collector"))
            .args(args)
            .envs(store.client_env())
            .output()
            .unwrap()
    };
    let good = config("clicks");
    let out = run(&["check-config".as_ref(), "--connect".as_ref(), good.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let missing = config("no-such-bucket");
    let out = run(&["check-config".as_ref(), "--connect".as_ref(), missing.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("1 sink(s) cannot be reached") && err.contains("sink store: refused: s3://no-such-bucket/"),
        "{err}"
    );
    let out = run(&["--config".as_ref(), missing.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("sink store: the store refuses: s3://no-such-bucket/"), "{err}");

    let no_broker = config("nowhere");
    let out = run(&["check-config".as_ref(), "--connect".as_ref(), no_broker.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sink topic: no broker answers"), "a Kafka sink without a broker is named too: {err}");
}
