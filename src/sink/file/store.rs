//! Where a file sink publishes a finished file: a local directory (a
//! rename), an S3 or GCS bucket (an upload through OpenDAL), or HDFS (an
//! upload through the native client, `hdfs-native`, then a rename).
//!
//! Every store is fed the same way: a complete Avro file that was written
//! and synced in the local staging directory. So a published file is
//! always whole, a sync costs a local `fdatasync` whatever the store, a
//! failed write can be cut back to the last good block (no remote store
//! can cut a file back), and what was synced survives a crash of the
//! collector: staged files are published at the next start. Publishing is
//! idempotent by name, so a file published just before a crash and
//! published again after it is one object.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use opendal::Operator;

use crate::metrics::StoreErrorCause;
use crate::plan::{RequestRetry, StorePlan};

/// Files up to this size are uploaded in one request (held in memory for it).
const SINGLE_UPLOAD_MAX: u64 = 64 << 20;

/// Larger files are uploaded in parts of this size (S3 needs at least 5 MiB).
const PART: usize = 16 << 20;

/// The longest a check, or a publish of an empty file, may take before it
/// counts as failed: a hung store (or the HDFS client retrying a refused
/// connection by itself) shows as an unhealthy sink within it.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(20);

/// The slowest upload a publish is given time for, beyond [`REQUEST_LIMIT`].
const SLOWEST_UPLOAD_BYTES_PER_SEC: u64 = 4 << 20;

/// A file sink's store, with the runtime its client's requests run on.
pub struct Store {
    kind: Kind,
    /// Remote clients are async; a flush thread drives them itself.
    rt: Option<tokio::runtime::Runtime>,
}

enum Kind {
    Local { publish: PathBuf },
    Object { op: Operator, url: String, prefix: String },
    Hdfs { client: hdfs_native::Client, url: String, working: String, publish: String, replication: u16 },
}

/// Why a store failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckFailure {
    /// The store answered no: no such bucket or directory, credentials
    /// refused. Starting would only fill the staging directory.
    Refused(String),
    /// The store did not answer; it may come back.
    Unreachable(String),
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Unreachable(why) => write!(f, "unreachable: {why}"),
        }
    }
}

/// A client error as an I/O error, for the sink's retry loop.
fn io_error(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// An OpenDAL error as an I/O error whose kind keeps the cause.
fn store_error(e: opendal::Error) -> io::Error {
    let kind = match e.kind() {
        opendal::ErrorKind::NotFound | opendal::ErrorKind::PermissionDenied | opendal::ErrorKind::ConfigInvalid => {
            io::ErrorKind::PermissionDenied
        }
        opendal::ErrorKind::RateLimited => io::ErrorKind::QuotaExceeded,
        _ if e.to_string().to_ascii_lowercase().contains("timeout") => io::ErrorKind::TimedOut,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

/// The cause a failed publish is counted under.
pub fn cause(error: &io::Error) -> StoreErrorCause {
    let text = error.to_string().to_ascii_lowercase();
    match error.kind() {
        io::ErrorKind::PermissionDenied => StoreErrorCause::Refused,
        io::ErrorKind::QuotaExceeded => StoreErrorCause::Throttled,
        io::ErrorKind::TimedOut | io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {
            StoreErrorCause::Unreachable
        }
        io::ErrorKind::StorageFull | io::ErrorKind::NotFound => StoreErrorCause::Disk,
        _ if text.contains("connect") || text.contains("refused") || text.contains("dns") => {
            StoreErrorCause::Unreachable
        }
        _ => StoreErrorCause::Other,
    }
}

impl Store {
    /// Connects to the store of `plan` (no request is made yet).
    ///
    /// # Errors
    /// A client cannot be built: a bad URL, endpoint or credentials file.
    pub fn open(plan: &StorePlan) -> Result<Self, String> {
        // OpenDAL's HTTP clients go through a process-wide transport,
        // installed once (later calls do nothing).
        opendal::install_default();
        let kind = match plan {
            StorePlan::Local { publish } => {
                return Ok(Self { kind: Kind::Local { publish: publish.clone() }, rt: None })
            }
            StorePlan::S3 { bucket, region, endpoint, prefix, request } => Kind::Object {
                op: with_retries(s3(bucket, region.as_deref(), endpoint.as_deref())?, request),
                url: format!("s3://{bucket}/{prefix}"),
                prefix: prefix.clone(),
            },
            StorePlan::Gcs { bucket, prefix, request } => Kind::Object {
                op: with_retries(gcs(bucket)?, request),
                url: format!("gs://{bucket}/{prefix}"),
                prefix: prefix.clone(),
            },
            StorePlan::Hdfs { url, client, working, publish, replication } => {
                let mut builder = hdfs_native::ClientBuilder::new().with_url(url);
                if !client.0.is_empty() {
                    builder = builder.with_config(client.0.clone());
                }
                let built = builder.build().map_err(|e| format!("HDFS client: {e}"))?;
                Kind::Hdfs {
                    client: built,
                    url: url.clone(),
                    working: working.clone(),
                    publish: publish.clone(),
                    replication: *replication,
                }
            }
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the store client's runtime: {e}"))?;
        Ok(Self { kind, rt: Some(rt) })
    }

    /// Where files go, for logs.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Local { publish } => publish.display().to_string(),
            Kind::Object { url, .. } => url.clone(),
            Kind::Hdfs { url, publish, .. } => format!("{url}{publish}"),
        }
    }

    /// Runs requests of a remote client for at most `limit`.
    fn block_on<T>(&self, limit: Duration, f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
        let rt = self.rt.as_ref().expect("remote stores have a runtime");
        rt.block_on(async {
            match tokio::time::timeout(limit, f).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {limit:?}"))),
            }
        })
    }

    fn object_path(prefix: &str, name: &str) -> String {
        if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        }
    }

    /// Whether a local published file of this name exists (a name taken
    /// by an earlier run in this second, were it to happen). Remote stores
    /// are not asked, so that a store that is down does not hold up staging;
    /// names there are unique across runs by [`super::writer::FileNamer`].
    pub fn exists(&self, name: &str) -> bool {
        match &self.kind {
            Kind::Local { publish } => publish.join(name).exists(),
            Kind::Object { .. } | Kind::Hdfs { .. } => false,
        }
    }

    /// Checks, within `limit`, that the store answers and that the publish
    /// location is there (the bucket; on HDFS the directories, created if
    /// missing).
    ///
    /// # Errors
    /// [`CheckFailure::Refused`] when the store answers no (no such bucket,
    /// credentials refused), [`CheckFailure::Unreachable`] when it does
    /// not answer.
    pub fn check(&self, limit: Duration) -> Result<(), CheckFailure> {
        match &self.kind {
            Kind::Local { publish } => std::fs::read_dir(publish)
                .map(drop)
                .map_err(|e| CheckFailure::Refused(format!("{}: {e}", publish.display()))),
            Kind::Object { op, url, .. } => {
                let rt = self.rt.as_ref().expect("remote stores have a runtime");
                match rt.block_on(async { tokio::time::timeout(limit, op.check()).await }) {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => match e.kind() {
                        opendal::ErrorKind::NotFound
                        | opendal::ErrorKind::PermissionDenied
                        | opendal::ErrorKind::ConfigInvalid => Err(CheckFailure::Refused(format!("{url}: {e}"))),
                        _ => Err(CheckFailure::Unreachable(format!("{url}: {e}"))),
                    },
                    Err(_) => Err(CheckFailure::Unreachable(format!("{url}: no answer within {limit:?}"))),
                }
            }
            Kind::Hdfs { client, url, working, publish, .. } => self
                .block_on(limit, async {
                    client.mkdirs(working, 0o755, true).await.map_err(io_error)?;
                    client.mkdirs(publish, 0o755, true).await.map_err(io_error)
                })
                .map_err(|e| CheckFailure::Unreachable(format!("{url}: {e}"))),
        }
    }

    /// Publishes the complete staged file `staged` as `name` and removes
    /// the staged file, taking at most `within` (the drain's time left).
    /// Returns where it went.
    ///
    /// # Errors
    /// The upload or rename failed; the staged file stays for another try.
    pub fn publish(&self, staged: &Path, name: &str, within: Option<Duration>) -> io::Result<String> {
        let size = std::fs::metadata(staged)?.len();
        let limit = REQUEST_LIMIT + Duration::from_secs(size / SLOWEST_UPLOAD_BYTES_PER_SEC);
        let limit = within.map_or(limit, |w| w.min(limit));
        let published = match &self.kind {
            Kind::Local { publish } => {
                let target = publish.join(name);
                move_without_replacing(staged, &target)?;
                return Ok(target.display().to_string());
            }
            Kind::Object { op, prefix, url } => {
                let path = Self::object_path(prefix, name);
                self.block_on(limit, upload(op, &path, staged))?;
                format!("{}/{name}", url.trim_end_matches('/'))
            }
            Kind::Hdfs { client, url, working, publish, replication } => {
                let (partial, target) = (format!("{working}/{name}.partial"), format!("{publish}/{name}"));
                self.block_on(limit, async {
                    let options = hdfs_native::WriteOptions::default()
                        .overwrite(true)
                        .create_parent(true)
                        .replication(u32::from(*replication));
                    let mut writer = client.create(&partial, options).await.map_err(io_error)?;
                    let mut file = std::fs::File::open(staged)?;
                    let mut chunk = vec![0u8; PART];
                    loop {
                        let n = read_full(&mut file, &mut chunk)?;
                        if n == 0 {
                            break;
                        }
                        writer.write_bytes(bytes::Bytes::copy_from_slice(&chunk[..n])).await.map_err(io_error)?;
                    }
                    writer.close().await.map_err(io_error)?;
                    client.mkdirs(publish, 0o755, true).await.map_err(io_error)?;
                    client.rename(&partial, &target, true).await.map_err(io_error)
                })?;
                format!("{url}{target}")
            }
        };
        std::fs::remove_file(staged)?;
        Ok(published)
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Uploads a file: in one request up to [`SINGLE_UPLOAD_MAX`], else in
/// parts; a failed multipart upload is aborted so that no parts are left
/// behind.
async fn upload(op: &Operator, path: &str, staged: &Path) -> io::Result<()> {
    let mut file = std::fs::File::open(staged)?;
    if file.metadata()?.len() <= SINGLE_UPLOAD_MAX {
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        op.write(path, data).await.map_err(store_error)?;
        return Ok(());
    }
    let mut writer = op.writer_with(path).chunk(PART).await.map_err(store_error)?;
    let mut chunk = vec![0u8; PART];
    let written: io::Result<()> = async {
        loop {
            let n = read_full(&mut file, &mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            writer.write(chunk[..n].to_vec()).await.map_err(store_error)?;
        }
    }
    .await;
    match written {
        Ok(()) => writer.close().await.map(drop).map_err(store_error),
        Err(e) => {
            let _ = writer.abort().await;
            Err(e)
        }
    }
}

/// The client's own retries and timeouts of one request, within the
/// budget of `retry_settings`, so that a store that stopped answering
/// shows as a failure (and an unhealthy sink) soon.
fn with_retries(op: Operator, request: &RequestRetry) -> Operator {
    let retry = opendal::layers::RetryLayer::new()
        .with_max_times(request.retries)
        .with_factor(request.backoff.multiplier as f32)
        .with_min_delay(request.backoff.initial)
        .with_max_delay(request.backoff.max)
        .with_jitter();
    let timeout = opendal::layers::TimeoutLayer::new()
        .with_timeout(request.timeout)
        .with_io_timeout(request.timeout.min(Duration::from_secs(10)));
    // Timeouts inside retries: each attempt is bounded, then retried.
    op.layer(timeout).layer(retry)
}

/// An S3 client. Credentials come from the standard AWS chain
/// (environment, profile files, instance metadata); the endpoint from the
/// configuration or `AWS_ENDPOINT_URL`.
fn s3(bucket: &str, region: Option<&str>, endpoint: Option<&str>) -> Result<Operator, String> {
    let env_region = std::env::var("AWS_REGION").or_else(|_| std::env::var("AWS_DEFAULT_REGION")).ok();
    let region = region.map(str::to_owned).or(env_region).unwrap_or_else(|| "us-east-1".to_owned());
    let mut builder = opendal::services::S3::default().bucket(bucket).region(&region).root("/");
    if let Some(endpoint) = endpoint.map(str::to_owned).or_else(|| std::env::var("AWS_ENDPOINT_URL").ok()) {
        builder = builder.endpoint(&endpoint);
    }
    Operator::new(builder).map_err(|e| format!("S3 client for bucket {bucket}: {e}"))
}

/// A GCS client: credentials from `GOOGLE_APPLICATION_CREDENTIALS` or the
/// metadata server; `STORAGE_EMULATOR_HOST` points it at an emulator,
/// without credentials, as Google's own libraries do.
fn gcs(bucket: &str) -> Result<Operator, String> {
    let mut builder = opendal::services::Gcs::default().bucket(bucket).root("/");
    if let Ok(host) = std::env::var("STORAGE_EMULATOR_HOST") {
        let url = if host.contains("://") { host } else { format!("http://{host}") };
        builder =
            builder.endpoint(url.trim_end_matches('/')).skip_signature().disable_vm_metadata().disable_config_load();
    }
    Operator::new(builder).map_err(|e| format!("GCS client for bucket {bucket}: {e}"))
}

/// Moves `from` to `to`, failing rather than replacing a file already at
/// `to`: a link and an unlink on one file system, a copy across two. A
/// move that a crash interrupted between the link and the unlink is
/// finished (both names are the same file).
fn move_without_replacing(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let (a, b) = (std::fs::metadata(from)?, std::fs::metadata(to)?);
            if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                std::fs::remove_file(from)
            } else {
                Err(e)
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let mut source = std::fs::File::open(from)?;
            let mut target = std::fs::OpenOptions::new().write(true).create_new(true).open(to)?;
            io::copy(&mut source, &mut target)?;
            target.sync_all()?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}
