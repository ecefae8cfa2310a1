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
//! Key components:
//! - [`spawn`]: starts one flush thread.
//! - [`crate::config::kafka`]: producer properties, Java names to librdkafka's.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};

use super::DrainDeadline;
use crate::batch::{Batch, SinkMessage};
use crate::config::KafkaMode;
use crate::metrics::SinkMetrics;

/// How long an idle flush thread waits for records before serving
/// delivery reports and retries.
const IDLE_POLL: Duration = Duration::from_millis(50);

/// What a flush thread needs to know.
#[derive(Debug, Clone)]
pub struct KafkaLane {
    /// Sink name, for logs.
    pub sink: String,
    /// Lane index within the sink.
    pub lane: usize,
    /// Topic to produce to.
    pub topic: String,
    /// Value framing.
    pub mode: KafkaMode,
    /// Schema id written in confluent mode.
    pub confluent_id: Option<i32>,
    /// librdkafka properties.
    pub properties: Vec<(String, String)>,
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
    last_warning: Mutex<Option<Instant>>,
}

impl Reports {
    fn warn_at_most_once_a_second(&self, f: impl FnOnce()) {
        let now = Instant::now();
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1)) {
            *last = Some(now);
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
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.metrics.set_healthy(true);
                self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                let code = error.rdkafka_error_code();
                if code.is_some_and(retriable) {
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
        last_warning: Mutex::new(None),
    };
    let mut config = ClientConfig::new();
    for (k, v) in &lane.properties {
        config.set(k, v);
    }
    let producer: BaseProducer<Reports> = config
        .create_with_context(reports)
        .map_err(|e| format!("sink {}: cannot create the Kafka producer: {e}", lane.sink))?;
    std::thread::Builder::new()
        .name(format!("sink-{}-{}", lane.sink, lane.lane))
        .spawn(move || FlushThread { lane, producer, metrics, deadline, value: Vec::new() }.run(rx))
        .map_err(|e| e.to_string())
}

struct FlushThread {
    lane: KafkaLane,
    producer: BaseProducer<Reports>,
    metrics: Arc<SinkMetrics>,
    deadline: Arc<DrainDeadline>,
    /// Framing scratch for confluent mode (librdkafka copies the payload).
    value: Vec<u8>,
}

impl FlushThread {
    fn run(mut self, rx: Receiver<SinkMessage>) {
        loop {
            self.resend_retries();
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
        for i in 0..batch.len() {
            let timestamp = batch.records[i].timestamp;
            if !self.send(batch.key(i), batch.value(i), Some(timestamp), false) {
                let lost = (batch.len() - i) as u64;
                self.metrics.failed.fetch_add(lost, Ordering::Relaxed);
                break;
            }
        }
        // The records now belong to librdkafka's queue, not the lane's.
        self.metrics.queued[self.lane.lane].fetch_sub(batch.len() as u64, Ordering::Relaxed);
    }

    /// Hands one record to librdkafka, waiting while its queue is full;
    /// `framed` values (retries) already carry the confluent header.
    /// Returns false when the drain deadline passed first.
    fn send(&mut self, key: &[u8], datum: &[u8], timestamp: Option<i64>, framed: bool) -> bool {
        let payload: &[u8] = match (self.lane.mode, self.lane.confluent_id) {
            (KafkaMode::Confluent, Some(id)) if !framed => {
                self.value.clear();
                self.value.push(0);
                self.value.extend_from_slice(&id.to_be_bytes());
                self.value.extend_from_slice(datum);
                &self.value
            }
            _ => datum,
        };
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.lane.topic).key(key).payload(payload);
        if let Some(ts) = timestamp {
            record = record.timestamp(ts);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return true,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if self.deadline.passed() {
                        return false;
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
                    return true;
                }
            }
        }
    }

    fn resend_retries(&mut self) {
        let retries = std::mem::take(&mut *self.producer.context().retries.lock().unwrap_or_else(|e| e.into_inner()));
        if retries.is_empty() {
            return;
        }
        self.metrics.retried.fetch_add(retries.len() as u64, Ordering::Relaxed);
        for (i, r) in retries.iter().enumerate() {
            if !self.send(&r.key, &r.value, r.timestamp, true) {
                self.metrics.failed.fetch_add((retries.len() - i) as u64, Ordering::Relaxed);
                return;
            }
        }
    }

    /// Delivers what librdkafka holds (and what comes back for a retry)
    /// until the drain deadline; counts whatever is left as failed.
    fn drain(mut self) {
        loop {
            self.producer.poll(Duration::from_millis(100));
            self.resend_retries();
            let pending = self.producer.in_flight_count();
            let retries_left = !self.producer.context().retries.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
            if pending == 0 && !retries_left {
                break;
            }
            if self.deadline.passed() {
                self.metrics.failed.fetch_add(pending.max(0) as u64, Ordering::Relaxed);
                tracing::error!(sink = %self.lane.sink, records = pending, "Shutdown timeout reached with records undelivered.");
                break;
            }
        }
    }
}
