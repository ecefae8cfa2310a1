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
//! Key components:
//! - [`spawn`]: starts one flush thread.
//! - [`writer::AvroFile`]: one file's lifecycle.

pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::batch::{Batch, SinkMessage};
use crate::config::FileStrategyConfig;
use crate::metrics::SinkMetrics;
use writer::{AvroFile, FileNamer};

/// How often an idle flush thread wakes to check sync and roll deadlines.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// A directory setting as a local path (`file://` prefix allowed).
pub fn local_dir(setting: &str) -> PathBuf {
    PathBuf::from(setting.strip_prefix("file://").unwrap_or(setting))
}

/// Starts one flush thread of sink `name`, creating its directories.
///
/// # Errors
/// The working or publish directory cannot be created, or the thread cannot start.
pub fn spawn(
    name: &str,
    lane: usize,
    strategy: FileStrategyConfig,
    schema: apache_avro::Schema,
    rx: Receiver<SinkMessage>,
    metrics: Arc<SinkMetrics>,
) -> std::io::Result<JoinHandle<()>> {
    let working = local_dir(&strategy.working_dir);
    let publish = local_dir(&strategy.publish_dir);
    std::fs::create_dir_all(&working)?;
    std::fs::create_dir_all(&publish)?;
    let sink = name.to_owned();
    std::thread::Builder::new().name(format!("sink-{name}-{lane}")).spawn(move || {
        let namer = FileNamer::new(working, publish);
        FlushThread { sink, lane, strategy, schema, namer, metrics, file: None }.run(rx);
    })
}

struct FlushThread {
    sink: String,
    lane: usize,
    strategy: FileStrategyConfig,
    schema: apache_avro::Schema,
    namer: FileNamer,
    metrics: Arc<SinkMetrics>,
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
        if let Some(file) = self.file.take() {
            self.publish(file);
        }
    }

    fn write(&mut self, batch: &Batch) {
        // The records leave the queue bound now: they are this thread's.
        self.metrics.queued[self.lane].fetch_sub(batch.len() as u64, Ordering::Relaxed);
        for i in 0..batch.len() {
            if self.file.is_none() {
                match AvroFile::create(&self.namer, &self.schema) {
                    Ok(f) => {
                        self.metrics.set_healthy(true);
                        tracing::debug!(sink = %self.sink, path = %f.working_path().display(), "Opened file.");
                        self.file = Some(f);
                    }
                    Err(error) => {
                        let lost = (batch.len() - i) as u64;
                        self.metrics.set_healthy(false);
                        self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                        self.metrics.failed.fetch_add(lost, Ordering::Relaxed);
                        tracing::error!(sink = %self.sink, %error, records = lost, "Cannot create file. Dropping records.");
                        return;
                    }
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
            let file = self.file.take().expect("checked above");
            self.publish(file);
        } else if file.pending() > 0 && now.duration_since(file.last_sync()) >= self.strategy.sync_file_after_duration.0
        {
            self.sync();
        }
    }

    fn sync(&mut self) {
        let Some(file) = &mut self.file else { return };
        let pending = file.pending() as u64;
        match file.sync() {
            Ok(()) => {
                self.metrics.set_healthy(true);
                self.metrics.delivered.fetch_add(pending, Ordering::Relaxed);
            }
            Err(error) => {
                // The file can no longer be trusted: discard it, as the
                // original does, and count what it held.
                self.metrics.set_healthy(false);
                let file = self.file.take().expect("checked above");
                let lost = pending + file.synced();
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                self.metrics.failed.fetch_add(lost, Ordering::Relaxed);
                self.metrics.delivered.fetch_sub(file.synced(), Ordering::Relaxed);
                tracing::error!(sink = %self.sink, %error, records = lost, "Cannot write file. Discarding it.");
                file.discard();
            }
        }
    }

    fn publish(&mut self, mut file: AvroFile) {
        let pending = file.pending() as u64;
        if let Err(error) = file.sync() {
            let lost = pending + file.synced();
            self.metrics.errors.fetch_add(1, Ordering::Relaxed);
            self.metrics.failed.fetch_add(lost, Ordering::Relaxed);
            tracing::error!(sink = %self.sink, %error, records = lost, "Cannot write file. Discarding it.");
            file.discard();
            return;
        }
        self.metrics.delivered.fetch_add(pending, Ordering::Relaxed);
        let records = file.synced();
        let working = file.working_path().to_owned();
        match file.publish() {
            Ok(path) if records > 0 => {
                self.metrics.files_published.fetch_add(1, Ordering::Relaxed);
                tracing::info!(sink = %self.sink, path = %path.display(), records, "Published file.");
            }
            Ok(_) => {}
            Err(error) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(sink = %self.sink, %error, path = %working.display(), records, "Cannot publish file; it stays in the working directory.");
            }
        }
    }
}
