//! Faults around the collector: a full disk under the file sink, `kill -9`
//! in the middle of writing, and a graceful restart under load behind the
//! example load balancer. Every acknowledged event is counted end to end.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, read_avro_dir, read_with_fastavro, Collector, Front, Options, Pixel, Tmpfs};

/// A file sink on `working`/`publish`, one flush thread, a block every ten records.
fn file_sink(working: &Path, publish: &Path) -> Options {
    Options {
        toml: format!(
            "[global.hdfs]\nthreads = 1\n[sinks.hdfs]\ntype = \"hdfs\"\n[sinks.hdfs.file_strategy]\nworking_dir = \"{}\"\n\
             publish_dir = \"{}\"\nsync_file_after_records = 10\nroll_every = \"1 hour\"\n",
            working.display(),
            publish.display()
        ),
        file_sink: false,
        ..Options::default()
    }
}

fn send(c: &Collector, tag: &str, n: usize) {
    for i in 0..n {
        let q = Pixel { location: format!("http://t/{tag}/{i}"), ..Pixel::default() }.query();
        assert!(c.get(&format!("/csc-event?{q}"), "").starts_with("HTTP/1.1 200"));
    }
}

#[test]
fn a_full_disk_holds_records_until_space_returns() {
    let data = tempfile::tempdir().unwrap();
    let disk = data.path().join("small-disk");
    let tmpfs = Tmpfs::mount(&disk, "512k");
    let publish = data.path().join("publish");
    let c = Collector::start(file_sink(&disk.join("work"), &publish));

    let filler = tmpfs.fill();

    send(&c, "full", 50);
    eventually(Duration::from_secs(5), || c.get("/ready", "").starts_with("HTTP/1.1 503"));
    eventually(Duration::from_secs(5), || c.metric("divolte_sink_errors_total", "hdfs") >= 2);
    assert_eq!(c.metric("divolte_sink_delivered_total", "hdfs"), 0);
    assert_eq!(c.metric("divolte_sink_failed_total", "hdfs"), 0);
    assert!(c.metric("divolte_sink_store_errors_total", "cause=\"disk\"") >= 2, "a full disk is counted as the disk's");
    assert!(c.get("/ping", "").starts_with("HTTP/1.1 200"), "the collector goes on answering");

    drop(filler);
    std::fs::remove_file(disk.join("filler")).unwrap();
    eventually(Duration::from_secs(5), || c.metric("divolte_sink_delivered_total", "hdfs") == 50);
    assert!(c.get("/ready", "").starts_with("HTTP/1.1 200"));
    send(&c, "after", 5);
    let (status, c) = c.stop();
    assert!(status.success(), "{}", c.log_text());
    let locations: HashSet<String> =
        read_with_fastavro(&publish).iter().map(|r| r["location"].as_str().unwrap().to_owned()).collect();
    assert_eq!(locations.len(), 55);
    assert!(c.log_text().contains("No space left on device"), "the cause is logged");
}

#[test]
fn kill_9_leaves_valid_files_and_the_next_start_recovers_the_partial_one() {
    let data = tempfile::tempdir().unwrap();
    let (working, publish) = (data.path().join("work"), data.path().join("publish"));
    let mut first = Collector::start(file_sink(&working, &publish));
    send(&first, "before", 95);
    eventually(Duration::from_secs(5), || first.metric("divolte_sink_delivered_total", "hdfs") == 90);
    first.signal(libc::SIGKILL);
    first.wait_exit(Duration::from_secs(5));

    let partials: Vec<PathBuf> = std::fs::read_dir(&working).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(partials.len(), 1, "{partials:?}");
    // A crash in the middle of writing the next block leaves a torn tail.
    let mut torn = std::fs::OpenOptions::new().append(true).open(&partials[0]).unwrap();
    torn.write_all(&[0x14, 0xd0, 0x0f, 0x02, 0x0a, 0x0b]).unwrap();
    drop(torn);
    assert!(std::fs::read_dir(&publish).unwrap().next().is_none(), "nothing was published before the kill");

    let second = Collector::start(file_sink(&working, &publish));
    assert!(std::fs::read_dir(&working).unwrap().next().is_none(), "the partial file was taken");
    let records = read_avro_dir(&publish);
    assert_eq!(records.len(), 90, "every synced record, none of the torn block");
    assert_eq!(read_with_fastavro(&publish).len(), 90);
    assert!(second.log_text().contains("Recovered a file left by an earlier run"));
    send(&second, "after", 3);
    let (status, _second) = second.stop();
    assert!(status.success());
    assert_eq!(read_avro_dir(&publish).len(), 93);
}

#[test]
fn a_graceful_restart_under_load_behind_nginx_loses_no_acknowledged_event() {
    let drain = "shutdown_delay = \"1 second\"\nshutdown_timeout = \"10 seconds\"\n";
    let collector = || Collector::start(Options { toml: drain.into(), ..Options::default() });
    let (a, b) = (collector(), collector());
    let front = Front::start(a.port, b.port);
    // wrk through nginx; tests/acked.lua writes down every location
    // answered 200.
    let acked_dir = tempfile::tempdir().unwrap();
    let wrk = Command::new("wrk")
        .args(["-t8", "-c8", "-d4s", "-s", concat!(env!("CARGO_MANIFEST_DIR"), "/tests/acked.lua")])
        .arg(format!("http://127.0.0.1:{}/", front.port))
        .env("ACKED_DIR", acked_dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wrk is installed (tests/run-all.sh installs it)");
    std::thread::sleep(Duration::from_secs(1));
    let stopping = Instant::now();
    let (status, a) = a.stop();
    assert!(status.success());
    eprintln!("collector A drained and exited in {:?} under load", stopping.elapsed());
    let wrk = wrk.wait_with_output().unwrap();
    assert!(wrk.status.success(), "{}", String::from_utf8_lossy(&wrk.stdout));
    eprintln!("{}", String::from_utf8_lossy(&wrk.stdout));
    let acked: Vec<String> = std::fs::read_dir(acked_dir.path())
        .unwrap()
        .flat_map(|f| {
            std::fs::read_to_string(f.unwrap().path()).unwrap().lines().map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    drop(front);
    let (status, b) = b.stop();
    assert!(status.success());

    let stored = |c: &Collector| -> HashSet<String> {
        read_with_fastavro(&c.publish_dir()).iter().map(|r| r["location"].as_str().unwrap().to_owned()).collect()
    };
    let (on_a, on_b) = (stored(&a), stored(&b));
    let lost: Vec<&String> = acked.iter().filter(|l| !on_a.contains(*l) && !on_b.contains(*l)).collect();
    eprintln!(
        "{} events acknowledged: {} stored by A, {} by B, {} lost",
        acked.len(),
        on_a.len(),
        on_b.len(),
        lost.len()
    );
    assert!(acked.len() > 500, "too little load to mean anything: {}", acked.len());
    assert!(!on_a.is_empty() && !on_b.is_empty(), "both collectors took traffic");
    assert!(lost.is_empty(), "acknowledged but not stored: {:?}", &lost[..lost.len().min(5)]);
}
