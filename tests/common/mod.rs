//! A real collector process for integration tests: started from the built
//! binary with a generated configuration, spoken to over real sockets,
//! stopped with a real signal.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a test wants its collector.
pub struct Options {
    /// Extra TOML appended to the generated configuration.
    pub toml: String,
    /// `global.server.cores`.
    pub cores: usize,
    /// Whether the generated config declares the default file sink.
    pub file_sink: bool,
    /// Extra keys for that sink's `file_strategy` table.
    pub file_strategy: String,
    /// A lower limit on open descriptors (`RLIMIT_NOFILE`) for the process.
    pub fd_limit: Option<u64>,
    /// The port to listen on; a free one when unset.
    pub port: Option<u16>,
    /// Environment variables for the process.
    pub env: Vec<(&'static str, String)>,
    /// A configuration file of the test's own (TOML or HOCON) instead of the
    /// generated one; `port` must then be the port it listens on.
    pub config_file: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            toml: String::new(),
            cores: 1,
            file_sink: true,
            file_strategy: String::new(),
            fd_limit: None,
            port: None,
            env: Vec::new(),
            config_file: None,
        }
    }
}

/// A running collector.
pub struct Collector {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
    pub log: PathBuf,
}

/// An answer's bytes as text (invalid UTF-8 shown as U+FFFD).
pub fn text(b: Vec<u8>) -> String {
    String::from_utf8_lossy(&b).into_owned()
}

/// A free loopback port (the collector binds it with SO_REUSEPORT on every shard).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Collector {
    pub fn start(opts: Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = opts.port.unwrap_or_else(free_port);
        let work = dir.path().join("work");
        let publish = dir.path().join("publish");
        let mut toml = format!("[global.server]\nport = {port}\ncores = {}\n", opts.cores);
        toml.push_str(&opts.toml);
        if opts.file_sink {
            toml.push_str(&format!(
                "\n[sinks.hdfs]\ntype = \"hdfs\"\n[sinks.hdfs.file_strategy]\nworking_dir = \"{}\"\npublish_dir = \"{}\"\n{}\n",
                work.display(),
                publish.display(),
                opts.file_strategy
            ));
        }
        let config = opts.config_file.clone().unwrap_or_else(|| dir.path().join("collector.toml"));
        if opts.config_file.is_none() {
            std::fs::write(&config, toml).unwrap();
        }
        let log = dir.path().join("collector.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_divolte-collector"));
        command
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(limit) = opts.fd_limit {
            use std::os::unix::process::CommandExt;
            let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            // SAFETY: setrlimit is async-signal-safe and only touches the child.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let child = command.spawn().unwrap();
        let c = Self { port, dir, child: Some(child), log };
        c.wait_until_ready();
        c
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = self.try_request("GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n") {
                if r.starts_with("HTTP/1.1 200") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("collector did not start; log:\n{}", self.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn publish_dir(&self) -> PathBuf {
        self.dir.path().join("publish")
    }

    pub fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    }

    fn try_request(&self, raw: &str) -> std::io::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(raw.as_bytes())?;
        let mut out = Vec::new();
        s.read_to_end(&mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Sends raw bytes on a new connection and reads until the server closes it.
    pub fn raw(&self, raw: &[u8]) -> Vec<u8> {
        let mut s = self.connect();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    }

    /// One GET with `Connection: close`; the whole response as text.
    pub fn get(&self, target: &str, headers: &str) -> String {
        String::from_utf8_lossy(
            &self.raw(format!("GET {target} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n").as_bytes()),
        )
        .into_owned()
    }

    /// Sum of a metric over all its series with `labels` (a label substring), from `/metrics`.
    pub fn metric(&self, name: &str, labels: &str) -> u64 {
        let text = self.get("/metrics", "");
        metric_value(text.split("\r\n\r\n").nth(1).unwrap_or(""), name, labels)
    }

    /// The collector's resident memory, from `/proc`.
    pub fn rss_mib(&self) -> f64 {
        let pid = self.child.as_ref().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kib / 1024.0
    }

    /// Pixel requests answered 200 per second over `secs`, sent on
    /// `connections` keep-alive connections, one thread each.
    pub fn pixel_rate(&self, connections: usize, secs: f64) -> f64 {
        pixel_rate_on((0..connections).map(|_| self.connect()).collect(), secs)
    }

    /// `/metrics` asked on an open keep-alive connection (a new one may be
    /// refused when the collector is at its connection limit).
    pub fn metrics_on(s: &mut TcpStream) -> String {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "closed");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap();
                if body.len() >= len {
                    return body.to_owned();
                }
            }
        }
    }

    /// Each of the process's threads: its name and the CPUs it may run on.
    pub fn thread_cpus(&self) -> Vec<(String, Vec<usize>)> {
        let pid = self.child.as_ref().unwrap().id();
        let mut threads = Vec::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
            let dir = task.unwrap().path();
            let (Ok(name), Ok(status)) =
                (std::fs::read_to_string(dir.join("comm")), std::fs::read_to_string(dir.join("status")))
            else {
                continue; // the thread ended meanwhile
            };
            threads.push((name.trim().to_owned(), allowed_cpus(&status)));
        }
        threads
    }

    /// Asserts that threads named `prefix*` (there must be some) keep off
    /// the shards' CPUs and may use every other CPU the test may use; with
    /// a single CPU they share it.
    pub fn assert_off_shard_cpus(&self, prefix: &str) {
        let threads = self.thread_cpus();
        let mut shard_cpus: Vec<usize> =
            threads.iter().filter(|(n, _)| n.starts_with("shard")).flat_map(|(_, c)| c.clone()).collect();
        shard_cpus.sort_unstable();
        shard_cpus.dedup();
        assert!(!shard_cpus.is_empty(), "no shard threads in {threads:?}");
        let mine = allowed_cpus(&std::fs::read_to_string("/proc/self/status").unwrap());
        let mut others: Vec<usize> = mine.iter().copied().filter(|c| !shard_cpus.contains(c)).collect();
        if others.is_empty() {
            eprintln!("one CPU only: the threads share it with the shard");
            others = mine;
        }
        let matching: Vec<_> = threads.iter().filter(|(n, _)| n.starts_with(prefix)).collect();
        assert!(!matching.is_empty(), "no {prefix}* threads in {threads:?}");
        for (name, cpus) in matching {
            assert_eq!(cpus, &others, "{name} (shards on {shard_cpus:?})");
        }
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(pid, sig) };
    }

    /// SIGTERM, then wait for the exit.
    pub fn stop(mut self) -> (ExitStatus, Self) {
        self.signal(libc::SIGTERM);
        let status = self.wait_exit(Duration::from_secs(30));
        (status, self)
    }

    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("collector did not exit; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Pixel requests answered 200 per second over `secs`, one thread per open
/// keep-alive connection in `streams`.
pub fn pixel_rate_on(streams: Vec<TcpStream>, secs: f64) -> f64 {
    let query = Pixel::default().query();
    let request = format!("GET /csc-event?{query} HTTP/1.1\r\nHost: t\r\nUser-Agent: {CHROME_UA}\r\n\r\n");
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let threads: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            let request = request.clone();
            std::thread::spawn(move || {
                let mut answered = 0u64;
                let mut buf = [0u8; 1024];
                while Instant::now() < deadline {
                    s.write_all(request.as_bytes()).unwrap();
                    let mut got = Vec::new();
                    // The pixel answer ends with the GIF trailer byte.
                    while !got.ends_with(b"\x3b") || !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        let n = s.read(&mut buf).unwrap();
                        assert!(n > 0, "closed");
                        got.extend_from_slice(&buf[..n]);
                    }
                    assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    total as f64 / secs
}

/// Every record of every published `.avro` file in `dir`, read with apache-avro.
pub fn read_avro_dir(dir: &Path) -> Vec<apache_avro::types::Value> {
    let mut records = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    files.sort();
    for f in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "avro")) {
        let reader = apache_avro::Reader::new(std::fs::File::open(&f).unwrap()).unwrap();
        for r in reader {
            records.push(r.unwrap());
        }
    }
    records
}

/// Field `name` of a record value.
pub fn field<'a>(record: &'a apache_avro::types::Value, name: &str) -> &'a apache_avro::types::Value {
    let apache_avro::types::Value::Record(fields) = record else { panic!("not a record: {record:?}") };
    &fields.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no field {name}")).1
}

/// A nullable string field's value.
pub fn opt_str(record: &apache_avro::types::Value, name: &str) -> Option<String> {
    match field(record, name) {
        apache_avro::types::Value::Union(_, v) => match &**v {
            apache_avro::types::Value::String(s) => Some(s.clone()),
            apache_avro::types::Value::Null => None,
            other => panic!("{name} is {other:?}"),
        },
        apache_avro::types::Value::String(s) => Some(s.clone()),
        other => panic!("{name} is {other:?}"),
    }
}

/// The published records as JSON, read by Python's fastavro (an independent reader).
pub fn read_with_fastavro(dir: &Path) -> Vec<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_avro.py");
    let out = Command::new("python3").arg(script).arg(dir).output().expect("python3 runs");
    assert!(out.status.success(), "fastavro reader failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A realistic pixel query as the tag sends it, with a valid checksum.
pub struct Pixel {
    pub party: String,
    pub session: String,
    pub page_view: String,
    pub event: String,
    pub event_type: String,
    pub location: String,
    /// Custom parameters, already in mincode (`u`).
    pub params: Option<String>,
    pub checksum: bool,
}

impl Default for Pixel {
    fn default() -> Self {
        Self {
            party: "0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG".into(),
            session: "0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8".into(),
            page_view: "0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF".into(),
            event: "0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0".into(),
            event_type: "pageView".into(),
            location: "http://localhost:8290/".into(),
            params: None,
            checksum: true,
        }
    }
}

impl Pixel {
    /// The query string, URL-encoded as `encodeURIComponent` does, with `x` computed.
    pub fn query(&self) -> String {
        let mut params: Vec<(&str, String)> = vec![
            ("p", self.party.clone()),
            ("s", self.session.clone()),
            ("v", self.page_view.clone()),
            ("e", self.event.clone()),
            ("c", "i1t8q2b6".into()),
            ("n", "f".into()),
            ("f", "t".into()),
            ("l", self.location.clone()),
            ("i", "1ak".into()),
            ("j", "sj".into()),
            ("k", "2".into()),
            ("w", "uq".into()),
            ("h", "qd".into()),
            ("t", self.event_type.clone()),
        ];
        params.extend(self.params.clone().map(|u| ("u", u)));
        let mut q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode_component(v))).collect();
        if self.checksum {
            let mut sorted = params.clone();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            let canonical: String = sorted.iter().map(|(k, v)| format!("{k}={v},;")).collect();
            let hash = murmur3::murmur3_32(&mut std::io::Cursor::new(canonical.as_bytes()), 0).unwrap() as i32;
            q.push(format!("x={}", base36(i64::from(hash))));
        }
        q.join("&")
    }
}

pub fn base36(n: i64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut v = n.unsigned_abs();
    let mut out = Vec::new();
    loop {
        out.push(digits[(v % 36) as usize]);
        v /= 36;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// JavaScript's `encodeURIComponent`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub const CHROME_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_10_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/38.0.2125.122 Safari/537.36";

/// The sum of the samples of metric `name` whose labels contain `labels`,
/// in a `/metrics` body.
pub fn metric_value(body: &str, name: &str, labels: &str) -> u64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.starts_with(name)
                && (l.as_bytes().get(name.len()) == Some(&b' ') || l.as_bytes().get(name.len()) == Some(&b'{'))
        })
        .filter(|l| l.contains(labels))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Waits until `cond` holds or panics after `limit`.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "condition not met within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A tmpfs of `size` (mount's syntax, "512k") mounted on a new directory
/// `path`, unmounted on drop: a small disk to fill.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(path: &Path, size: &str) -> Self {
        std::fs::create_dir(path).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(mounted.success(), "this test mounts a {size} tmpfs: it needs root with CAP_SYS_ADMIN");
        Self(path.to_owned())
    }

    /// Fills the disk to the last byte; free it again by dropping the file.
    pub fn fill(&self) -> std::fs::File {
        let mut filler = std::fs::File::create(self.0.join("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        while filler.write_all(&chunk).is_ok() {}
        while filler.write_all(&[0]).is_ok() {}
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// One record read back from a topic.
pub struct Consumed {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub timestamp: Option<i64>,
    pub partition: i32,
}

/// A real Kafka-protocol broker (tansu, memory storage) on a free loopback port.
pub struct Broker {
    pub port: u16,
    child: Child,
    _log: tempfile::NamedTempFile,
}

impl Broker {
    pub fn start(topics: &[(&str, u32)]) -> Self {
        Self::start_on(free_port(), topics)
    }

    pub fn start_on(port: u16, topics: &[(&str, u32)]) -> Self {
        let url = format!("tcp://127.0.0.1:{port}");
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new("tansu")
            .args([
                "broker",
                "--storage-engine",
                "memory://tansu/",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .expect("tansu is installed (tests/run-all.sh installs it)");
        let broker = Self { port, child, _log: log };
        eventually(Duration::from_secs(20), || TcpStream::connect(("127.0.0.1", port)).is_ok());
        for (topic, partitions) in topics {
            let status = Command::new("tansu")
                .args(["topic", "create", "--broker", &url, "--partitions", &partitions.to_string(), topic])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "topic {topic} created");
        }
        broker
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the broker (its memory storage goes with it).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the broker; memory storage keeps its data.
    pub fn freeze(&self, frozen: bool) {
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, if frozen { libc::SIGSTOP } else { libc::SIGCONT }) };
    }

    /// Every record of `topic` (key, value, timestamp, partition), reading
    /// until `expected` arrived or `limit` passed.
    pub fn consume(&self, topic: &str, expected: usize, limit: Duration) -> Vec<Consumed> {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::{Message, Offset, TopicPartitionList};
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", format!("test-{}", free_port()))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        // Every partition assigned directly and read from its start: no
        // consumer group to join, which a just-restarted broker can take
        // longer over than a test waits.
        let deadline = Instant::now() + limit;
        let partitions = loop {
            let found = consumer.fetch_metadata(Some(topic), Duration::from_secs(2)).ok().and_then(|m| {
                m.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len()).filter(|&n| n > 0)
            });
            match found {
                Some(n) => break n,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                None => return Vec::new(),
            }
        };
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions as i32 {
            assignment.add_partition_offset(topic, partition, Offset::Beginning).unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut out = Vec::new();
        while out.len() < expected && Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
                out.push(Consumed {
                    key: m.key().unwrap_or_default().to_vec(),
                    value: m.payload().unwrap_or_default().to_vec(),
                    timestamp: m.timestamp().to_millis(),
                    partition: m.partition(),
                });
            }
        }
        out
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.freeze(false);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx with the shipped example configuration
/// (`packaging/examples/nginx.conf`: consistent URI hashing, retries on
/// error and 503) in front of two collectors.
pub struct Front {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Front {
    pub fn start(a: u16, b: u16) -> Self {
        Self::start_edited(a, b, |conf| conf)
    }

    /// The example configuration as `edit` changes it.
    pub fn start_edited(a: u16, b: u16, edit: impl FnOnce(String) -> String) -> Self {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/examples/nginx.conf");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = edit(std::fs::read_to_string(&example).unwrap())
            .replace("127.0.0.1:8290", &format!("127.0.0.1:{a}"))
            .replace("127.0.0.1:8291", &format!("127.0.0.1:{b}"))
            .replace("listen 8080", &format!("listen 127.0.0.1:{port}"))
            .replace("/tmp/divolte-nginx.pid", &dir.path().join("nginx.pid").display().to_string());
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf_path)
            .args(["-g", "daemon off;"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let front = Self { port, child, _dir: dir };
        eventually(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
                let _ = s.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                let mut out = String::new();
                let _ = s.read_to_string(&mut out);
                out.ends_with("pong")
            })
        });
        front
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master takes its workers down with it.
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

/// The CPUs in a /proc status's `Cpus_allowed_list` ("0-3,6").
pub fn allowed_cpus(status: &str) -> Vec<usize> {
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).expect("Cpus_allowed_list").trim();
    let mut cpus = Vec::new();
    for part in list.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        cpus.extend(a.parse::<usize>().unwrap()..=b.parse::<usize>().unwrap());
    }
    cpus
}
