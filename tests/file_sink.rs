//! The file sink's sync, roll and publish rules, observed on disk while the
//! collector runs.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{eventually, read_avro_dir, Collector, Options, Pixel};

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).filter(|p| p.to_string_lossy().ends_with(suffix)).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Records readable in `path`; 0 while a file just opened has no complete
/// header yet (the test looks while the sink writes).
fn records_in(path: &Path) -> usize {
    std::fs::File::open(path).ok().and_then(|f| apache_avro::Reader::new(f).ok()).map_or(0, Iterator::count)
}

fn send_events(c: &Collector, n: usize, tag: &str) {
    for i in 0..n {
        let q = Pixel { location: format!("http://t/{tag}/{i}"), ..Pixel::default() }.query();
        assert!(c.get(&format!("/csc-event?{q}"), "").starts_with("HTTP/1.1 200"));
    }
}

fn collector(strategy: &str) -> Collector {
    Collector::start(Options {
        toml: "[global.hdfs]\nthreads = 1\n".into(),
        file_strategy: strategy.into(),
        ..Options::default()
    })
}

#[test]
fn records_are_synced_in_blocks_while_the_file_is_open() {
    let c = collector("sync_file_after_records = 5\nroll_every = \"1 hour\"\nsync_file_after_duration = \"1 hour\"");
    send_events(&c, 12, "a");
    eventually(Duration::from_secs(5), || files(&c.work_dir(), ".avro.partial").len() == 1);
    let partial = &files(&c.work_dir(), ".avro.partial")[0];
    // Two blocks of five are synced; the last two wait for the next sync.
    eventually(Duration::from_secs(5), || records_in(partial) == 10);
    let name = partial.file_name().unwrap().to_string_lossy().into_owned();
    let host = name.split("-divolte-tracking-").nth(1).unwrap();
    assert!(name.len() > 20 && name[..14].bytes().all(|b| b.is_ascii_digit()), "{name}");
    assert!(host.ends_with(".avro.partial"), "{name}");
    assert!(files(&c.publish_dir(), ".avro").is_empty(), "nothing published before the roll");
    // The counter moves just after the sync that made the records readable.
    eventually(Duration::from_secs(5), || c.metric("divolte_sink_delivered_total", "hdfs") == 10);
}

#[test]
fn pending_records_are_synced_after_the_sync_duration() {
    let c = collector("sync_file_after_records = 1000\nsync_file_after_duration = \"1 second\"");
    send_events(&c, 3, "b");
    eventually(Duration::from_secs(5), || files(&c.work_dir(), ".avro.partial").len() == 1);
    let partial = files(&c.work_dir(), ".avro.partial")[0].clone();
    eventually(Duration::from_secs(5), || records_in(&partial) == 3);
}

#[test]
fn files_roll_and_publish_and_no_empty_file_is_ever_published() {
    let c = collector("roll_every = \"1 second\"\nsync_file_after_records = 1000");
    send_events(&c, 4, "first");
    eventually(Duration::from_secs(6), || files(&c.publish_dir(), ".avro").len() == 1);
    assert!(files(&c.work_dir(), ".partial").is_empty());
    // Idle roll periods publish nothing.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(files(&c.publish_dir(), ".avro").len(), 1);
    send_events(&c, 2, "second");
    eventually(Duration::from_secs(6), || files(&c.publish_dir(), ".avro").len() == 2);
    let published = files(&c.publish_dir(), ".avro");
    assert_eq!(published.iter().map(|p| records_in(p)).collect::<Vec<_>>(), vec![4, 2]);
    assert_ne!(published[0], published[1]);
    // The counter moves just after the rename that published the file.
    eventually(Duration::from_secs(5), || c.metric("divolte_sink_files_published_total", "hdfs") == 2);
    let (status, c) = c.stop();
    assert!(status.success());
    assert_eq!(read_avro_dir(&c.publish_dir()).len(), 6);
}

#[test]
fn missing_directories_are_created_at_startup() {
    let c = Collector::start(Options::default());
    assert!(c.work_dir().is_dir() && c.publish_dir().is_dir());
    assert!(c.log_text().contains("File sink writes Avro files"), "{}", c.log_text());
}

#[test]
fn a_failing_file_sink_holds_its_records_and_is_not_ready_until_it_writes_again() {
    let c = collector("roll_every = \"1 hour\"");
    assert!(c.get("/ready", "").starts_with("HTTP/1.1 200"));
    std::fs::remove_dir_all(c.work_dir()).unwrap();
    send_events(&c, 1, "held");
    common::eventually(Duration::from_secs(5), || c.get("/ready", "").starts_with("HTTP/1.1 503"));
    assert!(c.get("/ready", "").contains("sink(s) failing: hdfs"));
    common::eventually(Duration::from_secs(5), || c.metric("divolte_sink_errors_total", "hdfs") >= 2);
    assert_eq!(c.metric("divolte_sink_failed_total", "hdfs"), 0, "nothing is given up while retrying");
    std::fs::create_dir_all(c.work_dir()).unwrap();
    common::eventually(Duration::from_secs(5), || c.get("/ready", "").starts_with("HTTP/1.1 200"));
    send_events(&c, 1, "after");
    let (status, c) = c.stop();
    assert!(status.success());
    let mut locations: Vec<_> =
        read_avro_dir(&c.publish_dir()).iter().map(|r| common::opt_str(r, "location").unwrap()).collect();
    locations.sort();
    assert_eq!(locations, ["http://t/after/0", "http://t/held/0"]);
}
