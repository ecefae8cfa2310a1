//! What operators run: the packages (tarball, zip, deb installed here, rpm
//! inspected), the service files, the load-balancer examples (nginx fronting
//! two collectors with URI-hash routing), the Kubernetes example's
//! configuration, and /metrics read by Prometheus's own parser.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{free_port, read_with_fastavro, Collector, Front, Options, Pixel};

mod common;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The packages, built once from the test binary by the packaging script.
fn packages() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = std::env::temp_dir().join(format!("divolte-packages-{}", std::process::id()));
        run(Command::new("bash")
            .arg(repo("packaging/build.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_divolte-collector"), "--out"])
            .arg(&out));
        out
    })
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn get(port: u16, target: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    String::from_utf8_lossy(&reply).into_owned()
}

fn wait_for_ping(port: u16) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() && get(port, "/ping").ends_with("pong") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing answered /ping on {port}");
}

/// Starts `cmd`, waits for /ping on `port`, stops it with SIGTERM and
/// returns its exit status.
fn serve_and_stop(mut cmd: Command, port: u16) -> std::process::ExitStatus {
    let mut child =
        cmd.env("DIVOLTE_PORT", port.to_string()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for_ping(port);
    assert!(get(port, "/ping").starts_with("HTTP/1.1 200"));
    terminate(child.id());
    child.wait().unwrap()
}

fn terminate(pid: u32) {
    run(Command::new("kill").args(["-TERM", &pid.to_string()]));
}

/// Kills a process if the test fails before stopping it.
struct Stop(u32);

impl Drop for Stop {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", &self.0.to_string()]).stderr(Stdio::null()).status();
    }
}

#[test]
fn the_tarball_and_zip_carry_a_binary_that_serves_ping() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("divolte-collector-{}", version());
    run(Command::new("tar")
        .arg("-xzf")
        .arg(packages().join(format!("{name}-linux-x86_64.tar.gz")))
        .arg("-C")
        .arg(dir.path()));
    let root = dir.path().join(&name);
    for f in [
        "bin/divolte-collector",
        "conf/divolte-collector.toml",
        "conf/divolte-collector.reference.toml",
        "docs/README.md",
        "docs/deployment.md",
        "docs/mapping.md",
        "docs/migration.md",
        "service/divolte-collector.service",
        "service/divolte-collector.init",
        "examples/pagetype/mapping.groovy",
        "examples/examples/nginx.conf",
    ] {
        assert!(root.join(f).exists(), "{f} in the tarball");
    }
    // On its embedded defaults, no configuration file.
    let mut cmd = Command::new(root.join("bin/divolte-collector"));
    cmd.current_dir(dir.path());
    assert!(serve_and_stop(cmd, free_port()).success());
    // The shipped configurations are valid.
    for conf in ["conf/divolte-collector.toml", "conf/divolte-collector.reference.toml"] {
        run(Command::new(root.join("bin/divolte-collector")).arg("check-config").arg(root.join(conf)));
    }
    let listing = run(Command::new("unzip").arg("-l").arg(packages().join(format!("{name}-linux-x86_64.zip"))));
    assert!(listing.contains(&format!("{name}/bin/divolte-collector")), "{listing}");
}

#[test]
fn the_deb_installs_and_the_installed_collector_runs_on_its_installed_config() {
    assert!(run(Command::new("id").arg("-u")).trim() == "0", "installing the deb needs root (CI runs as root)");
    let deb = packages().join(format!("divolte-collector_{}_amd64.deb", version()));
    let info = run(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(info.contains("Package: divolte-collector") && info.contains("Depends: libc6"), "{info}");
    run(Command::new("dpkg").arg("-i").arg(&deb));
    let installed = std::panic::catch_unwind(|| {
        for f in [
            "/usr/bin/divolte-collector",
            "/etc/divolte/divolte-collector.toml",
            "/lib/systemd/system/divolte-collector.service",
            "/etc/init.d/divolte-collector",
            "/usr/share/doc/divolte-collector/deployment.md",
        ] {
            assert!(Path::new(f).exists(), "{f} installed");
        }
        assert!(run(Command::new("id").arg("divolte")).contains("divolte"), "the system user");
        run(Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/divolte-collector.service"]));
        // As the service runs it: the divolte user, the installed config.
        let id = |flag: &str| run(Command::new("id").args([flag, "divolte"])).trim().parse::<u32>().unwrap();
        let port = free_port();
        let mut child = Command::new("/usr/bin/divolte-collector")
            .args(["--config", "/etc/divolte/divolte-collector.toml"])
            .uid(id("-u"))
            .gid(id("-g"))
            .current_dir("/")
            .env("DIVOLTE_PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let _stop = Stop(child.id());
        wait_for_ping(port);
        // The packaged configuration keeps /metrics off the public port.
        assert!(get(port, "/metrics").starts_with("HTTP/1.1 404"));
        assert!(get(9290, "/metrics").contains("divolte_connections_accepted_total"));
        let q = Pixel { location: format!("http://installed/{port}"), ..Pixel::default() }.query();
        assert!(get(port, &format!("/csc-event?{q}")).starts_with("HTTP/1.1 200"));
        terminate(child.id());
        assert!(child.wait().unwrap().success());
        // The event went to the packaged file sink, as the divolte user.
        let published: Vec<serde_json::Value> = read_with_fastavro(Path::new("/var/lib/divolte/published"));
        assert!(published.iter().any(|r| r["location"] == format!("http://installed/{port}")));
    });
    run(Command::new("dpkg").args(["--purge", "divolte-collector"]));
    installed.unwrap();
    assert!(!Path::new("/usr/bin/divolte-collector").exists(), "purged");
}

#[test]
fn the_rpm_has_the_expected_files_and_scriptlets() {
    let rpm = packages().join(format!("divolte-collector-{}-1.x86_64.rpm", version()));
    let info = run(Command::new("rpm").arg("-qip").arg(&rpm));
    assert!(
        info.contains("Name        : divolte-collector") && info.contains(&format!("Version     : {}", version())),
        "{info}"
    );
    let files = run(Command::new("rpm").arg("-qlp").arg(&rpm));
    for f in [
        "/usr/bin/divolte-collector",
        "/etc/divolte/divolte-collector.toml",
        "/usr/lib/systemd/system/divolte-collector.service",
        "/etc/rc.d/init.d/divolte-collector",
        "/var/lib/divolte/published",
        "/var/log/divolte",
    ] {
        assert!(files.lines().any(|l| l == f), "{f} in {files}");
    }
    let config = run(Command::new("rpm").arg("-qp").arg("--configfiles").arg(&rpm));
    assert_eq!(config.trim(), "/etc/divolte/divolte-collector.toml");
    let scripts = run(Command::new("rpm").arg("-qp").arg("--scripts").arg(&rpm));
    assert!(scripts.contains("preinstall") && scripts.contains("useradd -r -g divolte"), "{scripts}");
    assert!(scripts.contains("preuninstall") && scripts.contains("systemctl stop divolte-collector"), "{scripts}");
}

#[test]
fn the_service_files_allow_the_drain_and_raise_the_limits() {
    let unit = std::fs::read_to_string(repo("packaging/divolte-collector.service")).unwrap();
    let value =
        |key: &str| unit.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("{key}"));
    assert_eq!(value("Restart"), "on-failure");
    assert_eq!(value("LimitMEMLOCK"), "infinity");
    assert!(value("LimitNOFILE").parse::<u64>().unwrap() >= 65536);
    // Longer than the packaged config's shutdown_delay + shutdown_timeout.
    let config = std::fs::read_to_string(repo("packaging/divolte-collector.toml")).unwrap();
    assert!(config.contains("shutdown_delay = \"0 seconds\"") && config.contains("shutdown_timeout = \"2 minutes\""));
    assert!(value("TimeoutStopSec").parse::<u64>().unwrap() > 120);
    run(Command::new("sh").arg("-n").arg(repo("packaging/divolte-collector.init")));
}

#[test]
fn the_kubernetes_and_haproxy_examples_are_valid() {
    let manifest = std::fs::read_to_string(repo("packaging/examples/kubernetes.yaml")).unwrap();
    let toml: String = manifest
        .split("divolte-collector.toml: |\n")
        .nth(1)
        .unwrap()
        .lines()
        .take_while(|l| l.starts_with("    ") || l.is_empty())
        .map(|l| format!("{}\n", l.trim_start_matches("    ")))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k8s.toml");
    std::fs::write(&path, &toml).unwrap();
    run(Command::new(env!("CARGO_BIN_EXE_divolte-collector")).arg("check-config").arg(&path));
    assert!(toml.contains("shutdown_delay = \"11 seconds\"") && toml.contains("shutdown_timeout = \"15 seconds\""));
    assert!(
        manifest.contains("terminationGracePeriodSeconds: 30") && manifest.contains("seconds: 2"),
        "2 + 11 + 15 < 30"
    );
    run(Command::new("haproxy").arg("-c").arg("-f").arg(repo("packaging/examples/haproxy.cfg")));
}

/// A pixel request for the `i`th test URI.
fn pixel_target(tag: &str, i: usize) -> String {
    let q = Pixel { location: format!("http://{tag}/{i}"), event: format!("0:{tag}{i}"), ..Pixel::default() }.query();
    format!("/csc-event?{q}")
}

/// Sends `target` with a 900 KB body, all of it, then reads the answer, as
/// a client whose upload was refused would.
fn send_large_body(port: u16, target: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let body = vec![b'x'; 900 * 1024];
    write!(s, "POST {target} HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())
        .unwrap();
    let _ = s.write_all(&body);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// Twelve 900 KB uploads on URIs that reach both collectors, each refused
/// with 413; then every normal request through `front` is still answered
/// 200 (a collector that reset the uploads would be out of rotation).
fn large_uploads_are_refused_and_traffic_goes_on(front: u16, tag: &str) {
    for i in 0..12 {
        let reply = send_large_body(front, &pixel_target(&format!("{tag}-big"), i));
        assert!(reply.starts_with("HTTP/1.1 413"), "upload {i}: {reply}");
    }
    for i in 0..40 {
        let reply = get(front, &pixel_target(tag, i));
        assert!(reply.starts_with("HTTP/1.1 200"), "request {i} after the uploads: {reply}");
    }
}

/// Checks that every URI of `seen` went to one collector only, its retries
/// flagged as duplicates, and that both collectors took some.
fn assert_each_uri_on_one_collector(a: &Collector, b: &Collector, prefix: &str, uris: usize, sends: usize) {
    let mut seen: HashMap<String, (usize, usize, usize)> = HashMap::new();
    for (i, c) in [a, b].iter().enumerate() {
        for r in read_with_fastavro(&c.publish_dir()) {
            let location = r["location"].as_str().unwrap();
            if !location.starts_with(prefix) {
                continue;
            }
            let e = seen.entry(location.to_owned()).or_default();
            if i == 0 {
                e.0 += 1
            } else {
                e.1 += 1
            }
            if r["detectedDuplicate"] == true {
                e.2 += 1;
            }
        }
    }
    assert_eq!(seen.len(), uris);
    for (loc, (on_a, on_b, dups)) in &seen {
        assert!(
            (*on_a, *on_b) == (sends, 0) || (*on_a, *on_b) == (0, sends),
            "{loc}: {on_a} on one, {on_b} on the other"
        );
        assert_eq!(*dups, sends - 1, "{loc}: the retries were caught as duplicates");
    }
    let on_a = seen.values().filter(|v| v.0 > 0).count();
    assert!(on_a > 0 && on_a < uris, "both collectors take traffic ({on_a} of {uris} URIs on the first)");
}

#[test]
fn nginx_with_the_example_config_keeps_each_uri_on_one_collector() {
    let example = repo("packaging/examples/nginx.conf");
    run(Command::new("nginx").arg("-t").arg("-c").arg(&example));

    let a = Collector::start(Options::default());
    let b = Collector::start(Options::default());
    let nginx = Front::start(a.port, b.port);
    let front = nginx.port;
    // Forty events, each sent three times (a browser's retries).
    for round in 0..3 {
        for i in 0..40 {
            let reply = get(front, &pixel_target("lb", i));
            assert!(reply.starts_with("HTTP/1.1 200"), "round {round}: {reply}");
        }
    }
    // The operators' endpoints are not served to the public.
    for path in ["/metrics", "/ready", "//metrics", "/x/../ready", "/%6detrics"] {
        let reply = get(front, path);
        assert!(reply.starts_with("HTTP/1.1 404") && !reply.contains("divolte_"), "{path}: {reply}");
    }
    // Uploads over the limit: nginx refuses them itself...
    large_uploads_are_refused_and_traffic_goes_on(front, "after-nginx-413");
    drop(nginx);
    // ...and where it lets them through, the collectors answer 413 without
    // resetting nginx's upload, so nginx keeps them in rotation.
    // (nginx keeps such bodies in temporary files, which its workers write
    // as root here: the test's directory is root's.)
    let lifted = Front::start_edited(a.port, b.port, |conf| {
        format!("user root;\n{}", conf.replace("client_max_body_size 64k;", "client_max_body_size 2m;"))
    });
    large_uploads_are_refused_and_traffic_goes_on(lifted.port, "after-collector-413");
    drop(lifted);
    let (_, a) = a.stop();
    let (_, b) = b.stop();
    assert_each_uri_on_one_collector(&a, &b, "http://lb/", 40, 3);
}

/// HAProxy running `packaging/examples/haproxy.cfg` in front of two collectors.
struct Haproxy {
    port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    /// The example configuration as `edit` changes it.
    fn start(a: u16, b: u16, edit: impl FnOnce(String) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = edit(std::fs::read_to_string(repo("packaging/examples/haproxy.cfg")).unwrap())
            .replace("127.0.0.1:8290", &format!("127.0.0.1:{a}"))
            .replace("127.0.0.1:8291", &format!("127.0.0.1:{b}"))
            .replace("bind :8080", &format!("bind 127.0.0.1:{port}"));
        let path = dir.path().join("haproxy.cfg");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("haproxy").arg("-db").arg("-f").arg(&path).stdout(Stdio::null()).spawn().unwrap();
        let proxy = Self { port, child, _dir: dir };
        wait_for_ping(port);
        proxy
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn haproxy_with_the_example_config_routes_by_uri_and_drops_a_draining_collector() {
    // The example leaves maxconn to HAProxy: it starts under any descriptor limit.
    let a = Collector::start(Options { toml: "shutdown_delay = \"15 seconds\"\n".into(), ..Options::default() });
    let b = Collector::start(Options::default());
    let proxy = Haproxy::start(a.port, b.port, |conf| conf);
    let front = proxy.port;
    let events_on_a = || a.metric("divolte_events_received_total", "");
    // Each URI stays on one collector: note where each went, then send it
    // twice more.
    let mut on_a = Vec::new();
    for i in 0..40 {
        let before = events_on_a();
        assert!(get(front, &pixel_target("ha", i)).starts_with("HTTP/1.1 200"));
        on_a.push(events_on_a() > before);
    }
    for round in 1..3 {
        for (i, &was_on_a) in on_a.iter().enumerate() {
            let before = events_on_a();
            assert!(get(front, &pixel_target("ha", i)).starts_with("HTTP/1.1 200"));
            assert_eq!(events_on_a() > before, was_on_a, "round {round}: URI {i} moved");
        }
    }
    let on_a_count = on_a.iter().filter(|&&x| x).count();
    assert!(on_a_count > 0 && on_a_count < 40, "both collectors take traffic ({on_a_count} of 40 on the first)");
    for path in ["/metrics", "/ready", "/x/../metrics"] {
        let reply = get(front, path);
        assert!(reply.starts_with("HTTP/1.1 404") && !reply.contains("divolte_"), "{path}: {reply}");
    }
    large_uploads_are_refused_and_traffic_goes_on(front, "ha-after-413");
    // Where HAProxy lets them through, the collectors' 413 reaches the client.
    let deny = "http-request deny deny_status 413 if { req.hdr_val(content-length) gt 65536 }";
    let lifted = Haproxy::start(a.port, b.port, |conf| conf.replace(deny, ""));
    large_uploads_are_refused_and_traffic_goes_on(lifted.port, "ha-after-collector-413");
    drop(lifted);

    // A draining collector answers /ping with 503 and leaves the rotation
    // (health checks every 2 s, two failures) while it still serves.
    let first_on_a = on_a.iter().position(|&x| x).unwrap();
    a.signal(libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(12);
    loop {
        let before = events_on_a();
        assert!(get(front, &pixel_target("ha", first_on_a)).starts_with("HTTP/1.1 200"));
        if events_on_a() == before {
            break;
        }
        assert!(Instant::now() < deadline, "HAProxy still routes to the draining collector");
        std::thread::sleep(Duration::from_millis(250));
    }
    let before = events_on_a();
    for i in 0..40 {
        assert!(get(front, &pixel_target("ha", i)).starts_with("HTTP/1.1 200"), "URI {i} while a drains");
    }
    assert_eq!(events_on_a(), before, "the draining collector took requests");
    drop(proxy);
}

#[test]
fn metrics_parse_with_prometheus_own_parser() {
    let c = Collector::start(Options::default());
    for i in 0..5 {
        let q = Pixel { location: format!("http://m/{i}"), event: format!("0:m{i}"), ..Pixel::default() }.query();
        c.get(&format!("/csc-event?{q}"), "");
    }
    c.get("/csc-event?p=garbage", "");
    c.get("/nothing-here", "");
    let reply = c.get("/metrics", "");
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut parser = Command::new("python3")
        .arg(repo("tests/parse_metrics.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    parser.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = parser.wait_with_output().unwrap();
    assert!(out.status.success(), "prometheus_client refused the exposition: {}", String::from_utf8_lossy(&out.stderr));
    let samples: Vec<serde_json::Value> =
        String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let value = |name: &str, label: (&str, &str)| -> f64 {
        samples
            .iter()
            .filter(|s| s["name"] == name && s["labels"][label.0] == label.1)
            .map(|s| s["value"].as_f64().unwrap())
            .sum()
    };
    assert_eq!(value("divolte_http_requests_total", ("endpoint", "browser_event")), 6.0);
    assert_eq!(value("divolte_http_requests_total", ("endpoint", "not_found")), 1.0);
    assert_eq!(value("divolte_events_received_total", ("source", "browser")), 6.0);
    assert_eq!(value("divolte_events_rejected_total", ("reason", "invalid_party_id")), 1.0);
    assert_eq!(value("divolte_shard_events_received_total", ("shard", "0")), 6.0);
    assert!(
        samples.iter().all(|s| s["type"] == "counter" || s["type"] == "gauge" || s["type"] == "info"),
        "typed families"
    );
    assert!(samples.iter().all(|s| !s["help"].as_str().unwrap_or("").is_empty()), "every family has help");
    let families: std::collections::HashSet<&str> = samples.iter().map(|s| s["family"].as_str().unwrap()).collect();
    for f in
        ["divolte_records_mapped", "divolte_records_dropped", "divolte_user_agent_cache_hits", "divolte_sink_delivered"]
    {
        assert!(families.iter().any(|n| n.starts_with(f)), "{f} in {families:?}");
    }
}

#[test]
fn flush_and_other_threads_keep_off_the_shards_cpus() {
    // One shard, on the first CPU this process may use; its flush threads
    // and the signal watcher go to the rest.
    let c = Collector::start(Options::default());
    c.assert_off_shard_cpus("sink-");
    c.assert_off_shard_cpus("signals");
    let mut threads = c.thread_cpus();
    threads.retain(|(n, _)| n.starts_with("shard"));
    assert!(threads.iter().all(|(_, cpus)| cpus.len() == 1), "a shard is pinned to one CPU: {threads:?}");
}
