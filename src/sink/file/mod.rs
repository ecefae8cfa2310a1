//! File sink: Avro container files in `working_dir`, published to
//! `publish_dir` when rolled.
//!
//! Each flush thread owns one open file. A file is opened when the first
//! record arrives (so no empty file is ever published), synced every
//! `sync_file_after_records` records or `sync_file_after_duration`, and
//! rolled `roll_every` after it was opened: synced, closed and moved from
//! `<name>.partial` to the publish directory. At shutdown the thread drains
//! its queue and publishes what it holds.
//!
//! A write that fails (a full disk) is cut back to the last synced block
//! and retried every [`RETRY_EVERY`] with the records held; meanwhile the
//! thread takes nothing new, so its queue fills and shards count what does
//! not fit. Only a drain deadline that passes gives records up, counted.
//! Files a crash left behind are recovered at startup ([`recover`]).
//!
//! Key components:
//! - [`spawn`]: starts one flush thread.
//! - [`recover`]: publishes what a previous run left in the working directory.
//! - [`writer::AvroFile`]: one file's lifecycle.

pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::DrainDeadline;
use crate::batch::{Batch, SinkMessage};
use crate::config::FileStrategyConfig;
use crate::metrics::SinkMetrics;
use writer::{AvroFile, FileNamer};

/// How often an idle flush thread wakes to check sync and roll deadlines.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// How long a flush thread waits before trying a failed write again.
pub const RETRY_EVERY: Duration = Duration::from_millis(500);

/// A directory setting as a local path (`file://` prefix allowed).
pub fn local_dir(setting: &str) -> PathBuf {
    PathBuf::from(setting.strip_prefix("file://").unwrap_or(setting))
}

/// Publishes the files a previous run of sink `name` left in its working
/// directory, each cut back to its last whole block, and creates the
/// directories.
///
/// # Errors
/// A directory cannot be created or listed, or a file cannot be recovered.
pub fn recover(name: &str, strategy: &FileStrategyConfig) -> std::io::Result<()> {
    let (working, publish) = (local_dir(&strategy.working_dir), local_dir(&strategy.publish_dir));
    std::fs::create_dir_all(&working)?;
    std::fs::create_dir_all(&publish)?;
    for (path, records) in writer::recover(&working, &publish)? {
        tracing::warn!(sink = %name, path = %path.display(), records, "Recovered a file left by an earlier run and published it.");
    }
    Ok(())
}

/// Starts one flush thread of sink `name`.
///
/// # Errors
/// The thread cannot start.
pub fn spawn(
    name: &str,
    lane: usize,
    strategy: FileStrategyConfig,
    schema: apache_avro::Schema,
    rx: Receiver<SinkMessage>,
    metrics: Arc<SinkMetrics>,
    deadline: Arc<DrainDeadline>,
) -> std::io::Result<JoinHandle<()>> {
    let namer = FileNamer::new(local_dir(&strategy.working_dir), local_dir(&strategy.publish_dir));
    let guard = Retry { sink: name.to_owned(), metrics, deadline };
    std::thread::Builder::new()
        .name(format!("sink-{name}-{lane}"))
        .spawn(move || FlushThread { lane, strategy, schema, namer, guard, file: None }.run(rx))
}

/// Retries failed writes until they succeed or the drain deadline passes.
struct Retry {
    sink: String,
    metrics: Arc<SinkMetrics>,
    deadline: Arc<DrainDeadline>,
}

impl Retry {
    /// Runs `op` until it succeeds, every [`RETRY_EVERY`], with the sink
    /// unhealthy and each failure counted; `None` once the drain deadline
    /// has passed.
    fn until_done<T>(&self, what: &str, mut op: impl FnMut() -> std::io::Result<T>) -> Option<T> {
        let mut failures = 0u64;
        loop {
            match op() {
                Ok(v) => {
                    self.metrics.set_healthy(true);
                    if failures > 0 {
                        tracing::info!(sink = %self.sink, failures, "Writing again after {what} failed.");
                    }
                    return Some(v);
                }
                Err(error) => {
                    self.metrics.set_healthy(false);
                    self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    // Once, then every ten seconds of retrying.
                    if failures % 20 == 0 {
                        tracing::error!(sink = %self.sink, %error, "Cannot {what}; retrying with the records held.");
                    }
                    failures += 1;
                    if self.deadline.passed() {
                        return None;
                    }
                    std::thread::sleep(RETRY_EVERY);
                }
            }
        }
    }

    fn lost(&self, records: u64, why: &str) {
        self.metrics.failed.fetch_add(records, Ordering::Relaxed);
        tracing::error!(sink = %self.sink, records, "Shutdown deadline passed while unable to {why}. Dropping records.");
    }
}

struct FlushThread {
    lane: usize,
    strategy: FileStrategyConfig,
    schema: apache_avro::Schema,
    namer: FileNamer,
    guard: Retry,
    file: Option<AvroFile>,
}

impl FlushThread {
    fn run(mut self, rx: Receiver<SinkMessage>) {
        loop {
            match rx.recv_timeout(HEARTBEAT) {
                Ok(SinkMessage::Records(batch)) => self.write(&batch),
                Ok(SinkMessage::Drain) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.tick(Instant::now());
        }
        self.publish();
    }

    fn write(&mut self, batch: &Batch) {
        // The records leave the queue bound now: they are this thread's.
        self.guard.metrics.queued[self.lane].fetch_sub(batch.len() as u64, Ordering::Relaxed);
        for i in 0..batch.len() {
            if self.file.is_none() {
                match self.guard.until_done("create a file", || AvroFile::create(&self.namer, &self.schema)) {
                    Some(f) => {
                        tracing::debug!(sink = %self.guard.sink, path = %f.working_path().display(), "Opened file.");
                        self.file = Some(f);
                    }
                    None => return self.guard.lost((batch.len() - i) as u64, "create a file"),
                }
            }
            let file = self.file.as_mut().expect("opened above");
            file.append(batch.value(i));
            if file.pending() >= self.strategy.sync_file_after_records {
                self.sync();
            }
        }
    }

    /// Time-based sync and roll.
    fn tick(&mut self, now: Instant) {
        let Some(file) = &self.file else { return };
        if now.duration_since(file.opened()) >= self.strategy.roll_every.0 {
            self.publish();
        } else if file.pending() > 0 && now.duration_since(file.last_sync()) >= self.strategy.sync_file_after_duration.0
        {
            self.sync();
        }
    }

    fn sync(&mut self) {
        let Some(file) = &mut self.file else { return };
        let pending = file.pending() as u64;
        if self.guard.until_done("write a file", || file.sync()).is_some() {
            self.guard.metrics.delivered.fetch_add(pending, Ordering::Relaxed);
        } else {
            let lost = file.drop_pending();
            self.guard.lost(lost, "write a file");
        }
    }

    /// Syncs the open file and moves it to the publish directory.
    fn publish(&mut self) {
        self.sync();
        let Some(file) = self.file.take() else { return };
        let sink = &self.guard.sink;
        let records = file.synced();
        let working = file.working_path().to_owned();
        match file.publish() {
            Ok(path) if records > 0 => {
                self.guard.metrics.files_published.fetch_add(1, Ordering::Relaxed);
                tracing::info!(sink = %sink, path = %path.display(), records, "Published file.");
            }
            Ok(_) => {}
            Err(error) => {
                self.guard.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(sink = %sink, %error, path = %working.display(), records, "Cannot publish file; it stays in the working directory and is published at the next start.");
            }
        }
    }
}
