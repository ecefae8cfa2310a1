//! The collector as a process: started from the built binary with a
//! generated configuration (or a file of the test's), spoken to over real
//! sockets, stopped with a real signal; and what tests need around it
//! (free ports, waiting, small disks, CPU masks).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{metric_value, pixel_rate_on};

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
