//! The remote stores: S3 and GCS through OpenDAL, HDFS through the native
//! client (`hdfs-native`). Each takes a complete staged file and uploads
//! it; a flush thread drives the async clients on its own runtime.

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use opendal::Operator;

use super::store::{CheckFailure, REQUEST_LIMIT};
use crate::plan::{RequestRetry, StorePlan};

/// Files up to this size are uploaded in one request (held in memory for it).
const SINGLE_UPLOAD_MAX: u64 = 64 << 20;

/// Larger files are uploaded in parts of this size (S3 needs at least 5 MiB).
const PART: usize = 16 << 20;

/// The slowest upload a publish is given time for, beyond [`REQUEST_LIMIT`].
const SLOWEST_UPLOAD_BYTES_PER_SEC: u64 = 4 << 20;

/// A remote store with the runtime its client's requests run on.
pub struct Remote {
    kind: Kind,
    rt: tokio::runtime::Runtime,
}

enum Kind {
    Object { op: Operator, url: String, prefix: String },
    Hdfs { client: hdfs_native::Client, url: String, working: String, publish: String, replication: u16 },
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

impl Remote {
    /// Builds the client of a remote `plan`.
    pub fn open(plan: &StorePlan) -> Result<Self, String> {
        // OpenDAL's HTTP clients go through a process-wide transport,
        // installed once (later calls do nothing).
        opendal::install_default();
        let kind = match plan {
            StorePlan::Local { .. } => return Err("a local directory is not a remote store".to_owned()),
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
        Ok(Self { kind, rt })
    }

    /// Where files go, for logs.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Object { url, .. } => url.clone(),
            Kind::Hdfs { url, publish, .. } => format!("{url}{publish}"),
        }
    }

    /// Runs requests of the client for at most `limit`.
    fn block_on<T>(&self, limit: Duration, f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
        self.rt.block_on(async {
            match tokio::time::timeout(limit, f).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {limit:?}"))),
            }
        })
    }

    /// See [`super::store::Store::check`].
    pub fn check(&self, limit: Duration) -> Result<(), CheckFailure> {
        match &self.kind {
            Kind::Object { op, url, .. } => {
                match self.rt.block_on(async { tokio::time::timeout(limit, op.check()).await }) {
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

    /// Uploads the complete file `staged` as `name`, taking at most
    /// `within` (the drain's time left) and at most [`REQUEST_LIMIT`] plus
    /// the time of a slow upload; returns where it went. The staged file is
    /// the caller's to remove.
    pub fn publish(&self, staged: &Path, name: &str, within: Option<Duration>) -> io::Result<String> {
        let size = std::fs::metadata(staged)?.len();
        let limit = REQUEST_LIMIT + Duration::from_secs(size / SLOWEST_UPLOAD_BYTES_PER_SEC);
        let limit = within.map_or(limit, |w| w.min(limit));
        match &self.kind {
            Kind::Object { op, prefix, url } => {
                let path = if prefix.is_empty() { name.to_owned() } else { format!("{prefix}/{name}") };
                self.block_on(limit, upload(op, &path, staged))?;
                Ok(format!("{}/{name}", url.trim_end_matches('/')))
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
                Ok(format!("{url}{target}"))
            }
        }
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
