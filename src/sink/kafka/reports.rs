//! Delivery reports: librdkafka calls back on the flush thread (inside
//! `poll`) for every record. A delivered record is counted; a retriable
//! failure of a lane record is kept for the flush thread to send again; a
//! failure of a replayed record marks its segment for another replay;
//! anything else is counted as failed and logged.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::ClientContext;

use crate::metrics::SinkMetrics;

/// Delivery opaque of a record sent from the lane (its retry is this
/// thread's to keep).
pub(super) const FROM_LANE: usize = 0;
/// Delivery opaque of a record replayed from the spool (its segment keeps it).
pub(super) const FROM_SPOOL: usize = 1;

/// A record whose delivery failed with a retriable error.
pub(super) struct Retry {
    pub(super) key: Vec<u8>,
    pub(super) value: Vec<u8>,
    pub(super) timestamp: Option<i64>,
}

/// Receives delivery reports (on the flush thread, inside `poll`).
pub(super) struct Reports {
    sink: String,
    metrics: Arc<SinkMetrics>,
    /// Lane records that failed retriably, for the flush thread to send again.
    pub(super) retries: Mutex<Vec<Retry>>,
    /// Replayed records that failed retriably since the replay began.
    pub(super) replay_failures: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl Reports {
    /// Reports for `sink`, counting into `metrics`.
    pub(super) fn new(sink: String, metrics: Arc<SinkMetrics>) -> Self {
        Self {
            sink,
            metrics,
            retries: Mutex::new(Vec::new()),
            replay_failures: AtomicU64::new(0),
            last_warning: Mutex::new(None),
        }
    }

    /// Runs `f` (a log line) unless one ran less than a second ago.
    pub(super) fn warn_at_most_once_a_second(&self, f: impl FnOnce()) {
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
