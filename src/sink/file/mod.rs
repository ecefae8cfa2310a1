//! File sink: Avro container files written and synced in a local staging
//! directory, published to a store when rolled: a local directory, HDFS,
//! or an S3 or GCS bucket ([`store`]).
//!
//! Each flush thread owns one open file. A file is opened when the first
//! record arrives (so no empty file is ever published), synced every
//! `sync_file_after_records` records or `sync_file_after_duration`, and
//! rolled `roll_every` after it was opened: synced, closed and published.
//! At shutdown the thread drains its queue and publishes what it holds.
//!
//! Batches of durable mode carry a share of their shard's round: the
//! thread syncs once its queue is empty (or after a few such batches), so
//! one fdatasync covers every batch that arrived meanwhile, and confirms
//! the shares once their records are synced.
//!
//! A write or a publish that fails (a full disk, a store that is down) is
//! tried again with a growing pause (`retry_settings`; every half second
//! for local files) with the records held; meanwhile the thread takes
//! nothing new, so its queue fills and shards count what does not fit.
//! Only a drain deadline that passes gives records up, counted; a file
//! that could not be published by then stays staged and is published at
//! the next start ([`recover`]).
//!
//! Key components:
//! - [`spawn`]: starts one flush thread.
//! - [`recover`]: what a previous run left staged, ready to publish.
//! - [`writer::OpenFile`]: one file's life in the staging directory (Avro
//!   container or, with `format = "json"`, JSON lines from [`lines`]).
//! - [`store::Store`]: where files are published; `remote.rs` the S3, GCS
//!   and HDFS clients (feature `remote-stores`, on by default).

mod lines;
#[cfg(feature = "remote-stores")]
mod remote;
pub mod store;
pub mod writer;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::DrainDeadline;
use crate::batch::ack::Share;
use crate::batch::{Batch, SinkMessage};
use crate::config::FileStrategyConfig;
use crate::metrics::{Part, SinkMetrics, StoreErrorCause};
use crate::plan::{Backoff, FilePlan, Jitter};
use store::Store;
use writer::{FileFormat, FileNamer, OpenFile, Staged};

/// How often an idle flush thread wakes to check sync and roll deadlines.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Durable batches written before a sync even while more are queued, so a
/// busy queue cannot hold answers back indefinitely.
const DURABLE_GROUP: usize = 32;

/// Creates the staging directory and returns what a previous run of sink
/// `name` left staged there (a crash, or a store that was down at
/// shutdown), each cut back to its last whole block.
///
/// # Errors
/// The directory cannot be created or listed, or a file cannot be recovered.
pub fn recover(name: &str, plan: &FilePlan) -> std::io::Result<Vec<Staged>> {
    std::fs::create_dir_all(&plan.staging)?;
    if let crate::plan::StorePlan::Local { publish } = &plan.store {
        std::fs::create_dir_all(publish)?;
    }
    let staged = writer::recover(&plan.staging)?;
    for s in &staged {
        tracing::warn!(sink = %name, path = %s.path.display(), records = s.records, "Recovered a file left by an earlier run; publishing it.");
    }
    Ok(staged)
}

/// Starts one flush thread of sink `name`; it publishes `leftovers` first.
///
/// # Errors
/// The store's client cannot be built, or the thread cannot start.
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    name: &str,
    lane: usize,
    plan: &FilePlan,
    format: FileFormat,
    leftovers: Vec<Staged>,
    rx: Receiver<SinkMessage>,
    metrics: Arc<SinkMetrics>,
    deadline: Arc<DrainDeadline>,
) -> Result<JoinHandle<()>, String> {
    let store = Store::open(&plan.store).map_err(|e| format!("sink {name}: {e}"))?;
    let namer = FileNamer::new(plan.staging.clone(), &format);
    let guard = Retry { sink: name.to_owned(), metrics, deadline, backoff: plan.backoff };
    let strategy = plan.strategy.clone();
    std::thread::Builder::new()
        .name(format!("sink-{name}-{lane}"))
        .spawn(move || {
            let mut thread = FlushThread {
                lane,
                strategy,
                format,
                namer,
                guard,
                store,
                file: None,
                acks: Vec::new(),
                gave_up: false,
            };
            for staged in leftovers {
                thread.publish_staged(staged);
            }
            thread.run(rx);
        })
        .map_err(|e| format!("sink {name}: {e}"))
}

/// Retries failed writes until they succeed or the drain deadline passes.
struct Retry {
    sink: String,
    metrics: Arc<SinkMetrics>,
    deadline: Arc<DrainDeadline>,
    backoff: Backoff,
}

impl Retry {
    /// The pause after `failures` failed attempts.
    fn pause(&self, failures: u32) -> Duration {
        let b = &self.backoff;
        let grown = b.initial.as_secs_f64() * b.multiplier.powi(failures.saturating_sub(1).min(64) as i32);
        let pause = Duration::from_secs_f64(grown.min(b.max.as_secs_f64()));
        // Jitter from the clock's nanoseconds: spread, not secret.
        let random = f64::from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()),
        ) / 1e9;
        pause
            + match b.jitter {
                Jitter::Upto(d) => d.mul_f64(random),
                Jitter::Fraction(f) => pause.mul_f64(f * random),
            }
    }

    /// Runs `op`, the work of `part` described by `what`, until it
    /// succeeds, with the backoff between attempts, `part` unhealthy and
    /// each failure counted; `None` once the drain deadline has passed.
    fn until_done<T>(&self, part: Part, what: &str, mut op: impl FnMut() -> std::io::Result<T>) -> Option<T> {
        let mut failures = 0u32;
        let mut last_log: Option<Instant> = None;
        loop {
            match op() {
                Ok(v) => {
                    self.metrics.set_healthy(part, true);
                    if failures > 0 {
                        tracing::info!(sink = %self.sink, failures, "Writing again after {what} failed.");
                    }
                    return Some(v);
                }
                Err(error) => {
                    self.metrics.set_healthy(part, false);
                    self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    let cause = match part {
                        Part::Store => store::cause(&error),
                        _ => StoreErrorCause::Disk,
                    };
                    self.metrics.store_errors[cause as usize].fetch_add(1, Ordering::Relaxed);
                    failures += 1;
                    // Once, then every ten seconds of retrying.
                    if last_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
                        last_log = Some(Instant::now());
                        tracing::error!(sink = %self.sink, %error, failures, "Cannot {what}; retrying with the records held.");
                    }
                    if self.deadline.passed() {
                        return None;
                    }
                    // Sleep in short steps so that a drain deadline is noticed.
                    let until = Instant::now() + self.pause(failures);
                    while Instant::now() < until && !self.deadline.passed() {
                        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(100)));
                    }
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
    format: FileFormat,
    namer: FileNamer,
    guard: Retry,
    store: Store,
    file: Option<OpenFile>,
    /// Shares of durable batches whose records are written but not synced.
    acks: Vec<Share>,
    /// Records were given up since the current batch began.
    gave_up: bool,
}

impl FlushThread {
    fn run(mut self, rx: Receiver<SinkMessage>) {
        loop {
            match rx.recv_timeout(HEARTBEAT) {
                Ok(SinkMessage::Records(mut batch)) => {
                    self.guard.metrics.remember(batch.values());
                    let ack = batch.ack.take();
                    let durable = ack.is_some();
                    // A share whose records were lost is dropped: unconfirmed.
                    if self.write(&batch) {
                        self.acks.extend(ack);
                    }
                    if !self.acks.is_empty() && (rx.is_empty() || self.acks.len() >= DURABLE_GROUP) {
                        self.sync();
                    }
                    super::gather(&rx, durable);
                }
                Ok(SinkMessage::Drain) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.tick(Instant::now());
        }
        self.publish();
    }

    /// Appends a batch to the open file; `false` when records were lost.
    fn write(&mut self, batch: &Batch) -> bool {
        // The records leave the queue bound now: they are this thread's.
        self.guard.metrics.queued[self.lane].fetch_sub(batch.len() as u64, Ordering::Relaxed);
        self.gave_up = false;
        for i in 0..batch.len() {
            if self.file.is_none() {
                let taken = |name: &str| self.store.exists(name);
                match self
                    .guard
                    .until_done(Part::Disk, "create a file", || OpenFile::create(&self.namer, &self.format, taken))
                {
                    Some(f) => {
                        tracing::debug!(sink = %self.guard.sink, path = %f.working_path().display(), "Opened file.");
                        self.file = Some(f);
                    }
                    None => {
                        self.guard.lost((batch.len() - i) as u64, "create a file");
                        return false;
                    }
                }
            }
            let file = self.file.as_mut().expect("opened above");
            if let Err(error) = file.append(batch.value(i)) {
                // The shard encoded it with this schema: a bug, not bad input.
                self.guard.metrics.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(sink = %self.guard.sink, %error, "Cannot write a record as JSON. Dropping it.");
                self.gave_up = true;
            }
            if file.pending() >= self.strategy.sync_file_after_records {
                self.sync();
            }
        }
        !self.gave_up
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

    /// Makes every appended record durable and confirms the shares of
    /// their batches (or drops them, failing their rounds, when the records
    /// are given up).
    fn sync(&mut self) {
        let synced = match &mut self.file {
            // Nothing is pending without a file: what was written is synced.
            None => true,
            Some(file) => {
                let pending = file.pending() as u64;
                if self.guard.until_done(Part::Disk, "write a file", || file.sync()).is_some() {
                    self.guard.metrics.delivered.fetch_add(pending, Ordering::Relaxed);
                    true
                } else {
                    let lost = file.drop_pending();
                    self.guard.lost(lost, "write a file");
                    false
                }
            }
        };
        if synced {
            self.acks.drain(..).for_each(Share::confirm);
        } else {
            self.acks.clear();
            self.gave_up = true;
        }
    }

    /// Syncs the open file and publishes it.
    fn publish(&mut self) {
        self.sync();
        let Some(file) = self.file.take() else { return };
        let working = file.working_path().to_owned();
        match file.close() {
            Ok(Some(staged)) => self.publish_staged(staged),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(sink = %self.guard.sink, %error, path = %working.display(), "Cannot delete an empty file.");
            }
        }
    }

    /// Publishes a complete staged file, trying until the drain deadline;
    /// after that it stays staged for the next start.
    fn publish_staged(&mut self, staged: Staged) {
        let (sink, store, deadline) = (&self.guard.sink, &self.store, &self.guard.deadline);
        match self.guard.until_done(Part::Store, "publish a file", || {
            store.publish(&staged.path, &staged.name, deadline.remaining())
        }) {
            Some(published) => {
                self.guard.metrics.files_published.fetch_add(1, Ordering::Relaxed);
                tracing::info!(sink = %sink, path = %published, records = staged.records, "Published file.");
            }
            None => {
                tracing::error!(sink = %sink, path = %staged.path.display(), records = staged.records, "Shutdown deadline passed before the file could be published; it stays staged and is published at the next start.");
            }
        }
    }
}
