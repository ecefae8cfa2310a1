//! Kafka sink: each flush thread owns one librdkafka producer and sends the
//! records of its lane. Shards never call into librdkafka.
//!
//! A record is key = party id, value = the Avro datum (`naked`) or `0x00`,
//! the 4-byte big-endian schema id and the datum (`confluent`), timestamp =
//! the server's receive time. Records of one party share a lane and a key,
//! so they stay in order within a partition.
//!
//! Delivery reports come back on the same thread (`poll`). Retriable
//! failures (broker unreachable, timeouts, leader changes) are sent again;
//! other failures are logged with their reason and counted. While
//! librdkafka's own queue is full the thread waits for it, so the lane's
//! channel fills and the shards drop (and count) what does not fit: memory
//! stays bounded, and delivery resumes by itself when the broker returns.
//!
//! With a spool (`sinks.<name>.spool`) the thread does not wait: a full
//! queue or a record that failed retriably switches it to spooling, where
//! every record goes to disk and the oldest segment is replayed whenever
//! librdkafka has nothing in flight; once the spool is empty, records go
//! straight to librdkafka again. At shutdown what the broker did not take
//! by the deadline is purged from librdkafka into the spool; the next start
//! replays it first.
//!
//! Key components:
//! - [`spawn`]: starts one flush thread.
//! - [`spool`]: the segment files.
//! - [`crate::config::kafka`]: producer properties, Java names to librdkafka's.

pub mod spool;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig};
use rdkafka::{ClientConfig, ClientContext};

use super::DrainDeadline;
use crate::batch::{Batch, SinkMessage};
use crate::config::KafkaMode;
use crate::metrics::SinkMetrics;
use crate::plan::KafkaPlan;
use spool::Spool;

/// How long an idle flush thread waits for records before serving
/// delivery reports and retries.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// How long a failed replay waits before the segment is tried again.
const REPLAY_BACKOFF: Duration = Duration::from_secs(1);

/// Delivery opaque of a record sent from the lane (its retry is this
/// thread's to keep).
const FROM_LANE: usize = 0;
/// Delivery opaque of a record replayed from the spool (its segment keeps it).
const FROM_SPOOL: usize = 1;

/// What a flush thread needs to know.
#[derive(Debug, Clone)]
pub struct KafkaLane {
    /// Sink name, for logs.
    pub sink: String,
    /// Lane index within the sink.
    pub lane: usize,
    /// Lanes (flush threads) of the sink; they share its spool budget.
    pub lanes: usize,
    /// The sink's topic, framing, producer properties and spool.
    pub kafka: KafkaPlan,
}

/// A record whose delivery failed with a retriable error.
struct Retry {
    key: Vec<u8>,
    value: Vec<u8>,
    timestamp: Option<i64>,
}

/// Receives delivery reports (on the flush thread, inside `poll`).
struct Reports {
    sink: String,
    metrics: Arc<SinkMetrics>,
    retries: Mutex<Vec<Retry>>,
    /// Replayed records that failed retriably since the replay began.
    replay_failures: std::sync::atomic::AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl Reports {
    fn warn_at_most_once_a_second(&self, f: impl FnOnce()) {
        if crate::metrics::log_due(&mut self.last_warning.lock().unwrap_or_else(|e| e.into_inner())) {
            f();
        }
    }
}

/// Errors after which sending the same record again can succeed.
fn retriable(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::MessageTimedOut
            | C::RequestTimedOut
            | C::BrokerTransportFailure
            | C::AllBrokersDown
            | C::NetworkException
            | C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::QueueFull
            | C::OperationTimedOut
            | C::NotCoordinator
            | C::KafkaStorageError
            | C::PurgeQueue
            | C::PurgeInflight
    )
}

impl ClientContext for Reports {
    fn error(&self, error: KafkaError, reason: &str) {
        if matches!(error.rdkafka_error_code(), Some(RDKafkaErrorCode::AllBrokersDown)) {
            self.metrics.set_healthy(false);
        }
        self.warn_at_most_once_a_second(|| tracing::warn!(sink = %self.sink, %error, reason, "Kafka client error."));
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, origin: usize) {
        match result {
            Ok(_) => {
                self.metrics.set_healthy(true);
                self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                let code = error.rdkafka_error_code();
                if code.is_some_and(retriable) && origin == FROM_SPOOL {
                    self.replay_failures.fetch_add(1, Ordering::Relaxed);
                } else if code.is_some_and(retriable) {
                    let retry = Retry {
                        key: message.key().unwrap_or_default().to_vec(),
                        value: message.payload().unwrap_or_default().to_vec(),
                        timestamp: message.timestamp().to_millis(),
                    };
                    self.retries.lock().unwrap_or_else(|e| e.into_inner()).push(retry);
                } else {
                    self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                    self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    self.warn_at_most_once_a_second(|| {
                        tracing::error!(sink = %self.sink, %error, "Kafka rejected a record. Dropping it.");
                    });
                }
            }
        }
    }
}

/// Starts one flush thread producing to Kafka.
///
/// # Errors
/// librdkafka refuses the properties (an unknown key, a bad value).
pub fn spawn(
    lane: KafkaLane,
    rx: Receiver<SinkMessage>,
    metrics: Arc<SinkMetrics>,
    deadline: Arc<DrainDeadline>,
) -> Result<JoinHandle<()>, String> {
    let reports = Reports {
        sink: lane.sink.clone(),
        metrics: metrics.clone(),
        retries: Mutex::new(Vec::new()),
        replay_failures: std::sync::atomic::AtomicU64::new(0),
        last_warning: Mutex::new(None),
    };
    let spool = match &lane.kafka.spool {
        Some(cfg) => {
            let dir = std::path::Path::new(&cfg.directory).join(format!("{}-{}", lane.sink, lane.lane));
            let spool = Spool::open(dir, cfg.max_bytes / lane.lanes.max(1) as u64)
                .map_err(|e| format!("sink {}: spool {}: {e}", lane.sink, cfg.directory))?;
            if !spool.is_empty() {
                tracing::warn!(sink = %lane.sink, lane = lane.lane, bytes = spool.bytes(), "Records spooled by an earlier run are replayed first.");
            }
            if lane.lane == 0 {
                warn_about_orphaned_spools(&lane.sink, &cfg.directory, lane.lanes);
            }
            metrics.spool_bytes.fetch_add(spool.bytes(), Ordering::Relaxed);
            Some(spool)
        }
        None => None,
    };
    let mut config = ClientConfig::new();
    for (k, v) in &lane.kafka.properties.0 {
        config.set(k, v);
    }
    let producer: BaseProducer<Reports> = config.create_with_context(reports).map_err(|e| {
        let reason = crate::config::kafka::redact(&e.to_string(), &lane.kafka.properties.0);
        format!("sink {}: cannot create the Kafka producer: {reason}", lane.sink)
    })?;
    std::thread::Builder::new()
        .name(format!("sink-{}-{}", lane.sink, lane.lane))
        .spawn(move || {
            let spooling = spool.as_ref().is_some_and(|s| !s.is_empty());
            let replay = Replay { next: Instant::now(), in_progress: false };
            FlushThread { lane, producer, metrics, deadline, value: Vec::new(), spool, spooling, replay }.run(rx)
        })
        .map_err(|e| e.to_string())
}

struct FlushThread {
    lane: KafkaLane,
    producer: BaseProducer<Reports>,
    metrics: Arc<SinkMetrics>,
    deadline: Arc<DrainDeadline>,
    /// Framing scratch for confluent mode (librdkafka copies the payload).
    value: Vec<u8>,
    spool: Option<Spool>,
    /// Records go to the spool until it is empty again.
    spooling: bool,
    replay: Replay,
}

/// The state of replaying the oldest segment.
struct Replay {
    /// Not before this instant (after a failure).
    next: Instant,
    /// Its records are with librdkafka; the segment goes when they are delivered.
    in_progress: bool,
}

/// Where `send` left a record.
enum Sent {
    /// With librdkafka (or counted as failed, for a non-retriable error).
    Handed,
    /// librdkafka's queue is full and a spool is there to take it.
    QueueFull,
    /// The drain deadline passed while waiting.
    TimedOut,
}

impl FlushThread {
    fn run(mut self, rx: Receiver<SinkMessage>) {
        loop {
            self.resend_retries();
            if self.spooling {
                self.replay_step();
            }
            match rx.recv_timeout(IDLE_POLL) {
                Ok(SinkMessage::Records(batch)) => self.send_batch(&batch),
                Ok(SinkMessage::Drain) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.producer.poll(Duration::ZERO);
        }
        self.drain();
    }

    fn send_batch(&mut self, batch: &Batch) {
        let mut i = 0;
        while i < batch.len() && !self.spooling {
            let timestamp = Some(batch.records[i].timestamp);
            match self.send(batch.key(i), batch.value(i), timestamp, false, FROM_LANE) {
                Sent::Handed => i += 1,
                Sent::QueueFull => self.start_spooling("librdkafka's queue is full"),
                Sent::TimedOut => {
                    self.metrics.failed.fetch_add((batch.len() - i) as u64, Ordering::Relaxed);
                    i = batch.len();
                }
            }
        }
        if i < batch.len() {
            let records = (i..batch.len()).map(|j| (batch.key(j), batch.value(j), Some(batch.records[j].timestamp)));
            self.spool_records(records, false);
        }
        // The records now belong to librdkafka's queue or the spool, not the lane's.
        self.metrics.queued[self.lane.lane].fetch_sub(batch.len() as u64, Ordering::Relaxed);
    }

    fn start_spooling(&mut self, why: &str) {
        if !self.spooling {
            self.spooling = true;
            tracing::warn!(sink = %self.lane.sink, lane = self.lane.lane, why, "Spooling records to disk until the broker takes them again.");
        }
    }

    /// Appends records to the spool (framing lane records for the topic)
    /// and makes them durable; what passes the budget or cannot be written
    /// is counted as failed. After a write error (a full disk) the rest of
    /// the batch is failed and what was appended before it committed; a
    /// failed commit fails every record the spool had not made durable.
    fn spool_records<'r>(&mut self, records: impl Iterator<Item = (&'r [u8], &'r [u8], Option<i64>)>, framed: bool) {
        let Some(spool) = self.spool.as_mut() else { return };
        let (bytes_before, durable_before) = (spool.bytes(), spool.durable());
        let mut offered = 0u64;
        let mut error = None;
        let mut records = records;
        for (key, datum, timestamp) in records.by_ref() {
            offered += 1;
            let value = frame(&mut self.value, self.lane.kafka.mode, self.lane.kafka.confluent_id, datum, framed);
            if let Err(e) = spool.append(key, value, timestamp) {
                error = Some(e);
                break;
            }
        }
        offered += records.count() as u64;
        if let Err(e) = spool.commit() {
            error = Some(e);
        }
        let written = spool.durable() - durable_before;
        let lost = offered - written;
        // Never fewer bytes than before: a cut takes back only this call's
        // appends, as every call ends with a commit.
        let after = spool.bytes();
        self.metrics.spool_bytes.fetch_add(after - bytes_before, Ordering::Relaxed);
        self.metrics.spooled.fetch_add(written, Ordering::Relaxed);
        if lost > 0 {
            self.metrics.failed.fetch_add(lost, Ordering::Relaxed);
            self.metrics.errors.fetch_add(1, Ordering::Relaxed);
            let sink = &self.lane.sink;
            self.producer.context().warn_at_most_once_a_second(|| match &error {
                Some(error) => tracing::error!(sink = %sink, %error, records = lost, "Cannot write the spool. Dropping records."),
                None => tracing::error!(sink = %sink, records = lost, bytes = after, "The spool is at its max_bytes. Dropping records."),
            });
        }
    }

    /// Sends the oldest spooled segment when librdkafka has nothing else in
    /// flight, and deletes it once every record in it was delivered.
    fn replay_step(&mut self) {
        if self.producer.in_flight_count() > 0 || Instant::now() < self.replay.next {
            return;
        }
        let Some(spool) = self.spool.as_mut() else { return };
        if self.replay.in_progress {
            self.replay.in_progress = false;
            if self.producer.context().replay_failures.swap(0, Ordering::Relaxed) > 0 {
                self.replay.next = Instant::now() + REPLAY_BACKOFF;
                return;
            }
            let before = spool.bytes();
            if let Err(error) = spool.remove_oldest() {
                tracing::error!(sink = %self.lane.sink, %error, "Cannot delete a replayed spool segment; it will be sent again.");
            }
            self.metrics.spool_bytes.fetch_sub(before - spool.bytes(), Ordering::Relaxed);
        }
        let entries = match spool.oldest() {
            Ok(Some((entries, damaged))) => {
                if damaged > 0 {
                    tracing::warn!(sink = %self.lane.sink, bytes = damaged, "A spool segment ends in a damaged entry (a crash while writing); skipping it.");
                }
                entries
            }
            Ok(None) => {
                self.spooling = false;
                tracing::info!(sink = %self.lane.sink, lane = self.lane.lane, "Spool replayed; sending directly again.");
                return;
            }
            Err(error) => {
                tracing::error!(sink = %self.lane.sink, %error, "Cannot read the spool.");
                self.replay.next = Instant::now() + REPLAY_BACKOFF;
                return;
            }
        };
        self.producer.context().replay_failures.store(0, Ordering::Relaxed);
        self.replay.in_progress = true;
        for e in &entries {
            match self.send(&e.key, &e.value, e.timestamp, true, FROM_SPOOL) {
                Sent::Handed => {}
                // The segment stays and is sent again later, whole.
                Sent::QueueFull | Sent::TimedOut => {
                    self.producer.context().replay_failures.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }

    /// Hands one record to librdkafka; while its queue is full, waits, or
    /// says so when a spool can take the record. `framed` values (retries,
    /// spooled records) already carry the confluent header.
    fn send(&mut self, key: &[u8], datum: &[u8], timestamp: Option<i64>, framed: bool, origin: usize) -> Sent {
        let payload = frame(&mut self.value, self.lane.kafka.mode, self.lane.kafka.confluent_id, datum, framed);
        let mut record =
            BaseRecord::<[u8], [u8], usize>::with_opaque_to(&self.lane.kafka.topic, origin).key(key).payload(payload);
        if let Some(ts) = timestamp {
            record = record.timestamp(ts);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Sent::Handed,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if self.spool.is_some() {
                        return Sent::QueueFull;
                    }
                    if self.deadline.passed() {
                        return Sent::TimedOut;
                    }
                    self.producer.poll(Duration::from_millis(100));
                    record = back;
                }
                Err((error, _)) => {
                    self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                    self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    self.producer.context().warn_at_most_once_a_second(|| {
                        tracing::error!(sink = %self.lane.sink, %error, "Cannot hand a record to Kafka. Dropping it.");
                    });
                    return Sent::Handed;
                }
            }
        }
    }

    /// Sends retriable failures again, or spools them when there is a spool.
    fn resend_retries(&mut self) {
        let retries = std::mem::take(&mut *self.producer.context().retries.lock().unwrap_or_else(|e| e.into_inner()));
        if retries.is_empty() {
            return;
        }
        self.metrics.retried.fetch_add(retries.len() as u64, Ordering::Relaxed);
        if self.spool.is_some() {
            self.start_spooling("the broker failed records");
            self.spool_records(retries.iter().map(|r| (&r.key[..], &r.value[..], r.timestamp)), true);
            return;
        }
        for (i, r) in retries.iter().enumerate() {
            if !matches!(self.send(&r.key, &r.value, r.timestamp, true, FROM_LANE), Sent::Handed) {
                self.metrics.failed.fetch_add((retries.len() - i) as u64, Ordering::Relaxed);
                return;
            }
        }
    }

    /// Delivers what librdkafka holds (and what comes back for a retry, and
    /// the spool) until the drain deadline. Then, with a spool, purges
    /// librdkafka into it for the next start; without one, counts whatever
    /// is left as failed.
    fn drain(mut self) {
        loop {
            self.producer.poll(Duration::from_millis(100));
            self.resend_retries();
            if self.spooling {
                self.replay_step();
            }
            let pending = self.producer.in_flight_count();
            let retries_left = !self.producer.context().retries.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
            if pending == 0 && !retries_left && !self.spooling {
                break;
            }
            if !self.deadline.passed() {
                continue;
            }
            if self.spool.is_some() {
                self.producer.purge(PurgeConfig::default().queue().inflight());
                self.producer.poll(Duration::from_millis(100));
                self.resend_retries();
                let bytes = self.spool.as_ref().map_or(0, Spool::bytes);
                tracing::warn!(sink = %self.lane.sink, lane = self.lane.lane, bytes, "Shutdown timeout reached; undelivered records stay in the spool for the next start.");
            } else {
                self.metrics.failed.fetch_add(pending.max(0) as u64, Ordering::Relaxed);
                tracing::error!(sink = %self.lane.sink, records = pending, "Shutdown timeout reached with records undelivered.");
            }
            break;
        }
    }
}

/// Warns about spools of lanes this run does not have (`threads` was
/// lowered): nothing replays them until the lanes are back.
fn warn_about_orphaned_spools(sink: &str, directory: &str, lanes: usize) {
    let Ok(entries) = std::fs::read_dir(directory) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let lane = name.to_str().and_then(|n| n.strip_prefix(sink)?.strip_prefix('-')?.parse::<usize>().ok());
        let has_segments = std::fs::read_dir(entry.path()).is_ok_and(|mut d| d.next().is_some());
        if lane.is_some_and(|l| l >= lanes) && has_segments {
            tracing::warn!(sink = %sink, spool = %entry.path().display(), lanes, "A spool of a flush thread this run does not have holds records; set global.kafka.threads back to replay them.");
        }
    }
}

/// The value as produced: in confluent mode `0x00`, the schema id and the
/// datum, unless `framed` says it already is.
fn frame<'v>(scratch: &'v mut Vec<u8>, mode: KafkaMode, id: Option<i32>, datum: &'v [u8], framed: bool) -> &'v [u8] {
    match (mode, id) {
        (KafkaMode::Confluent, Some(id)) if !framed => {
            scratch.clear();
            scratch.push(0);
            scratch.extend_from_slice(&id.to_be_bytes());
            scratch.extend_from_slice(datum);
            scratch
        }
        _ => datum,
    }
}
