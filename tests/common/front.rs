//! nginx in front of collectors, with the shipped example configuration.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, free_port};

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
