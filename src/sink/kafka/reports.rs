//! Delivery reports: librdkafka calls back on the flush thread (inside
//! `poll`) for every record. A delivered record is counted; a retriable
//! failure of a lane record is kept for the flush thread to send again; a
//! failure of a replayed record marks its segment for another replay;
//! anything else is counted as failed and logged.

use std::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::util::IntoOpaque;
use rdkafka::ClientContext;

use crate::batch::ack::Share;
use crate::metrics::{Part, SinkMetrics};

/// Where a record handed to librdkafka came from: its delivery opaque.
pub(super) enum Origin {
    /// From the lane (its retry is this thread's to keep), in durable mode
    /// with its share of the shard's round.
    Lane(Option<Share>),
    /// Replayed from the spool (its segment keeps it).
    Spool,
}

/// Opaque values of the two variants without a share; a share is an
/// aligned pointer, never one of these.
const LANE: usize = 0;
const SPOOL: usize = 1;

impl IntoOpaque for Origin {
    fn into_ptr(self) -> *mut c_void {
        match self {
            Self::Lane(None) => LANE as *mut c_void,
            Self::Spool => SPOOL as *mut c_void,
            Self::Lane(Some(share)) => share.into_raw(),
        }
    }

    unsafe fn from_ptr(ptr: *mut c_void) -> Self {
        match ptr as usize {
            LANE => Self::Lane(None),
            SPOOL => Self::Spool,
            // SAFETY: any other value came from `Share::into_raw` in
            // `into_ptr`, and librdkafka hands each opaque back once.
            _ => Self::Lane(Some(unsafe { Share::from_raw(ptr) })),
        }
    }
}

impl Origin {
    /// Whether a durable answer waits for this record.
    pub(super) fn awaited(&self) -> bool {
        matches!(self, Self::Lane(Some(_)))
    }

    /// The record is delivered, or covered by another share (the batch's,
    /// when it goes to the spool instead).
    pub(super) fn settle(self) {
        if let Self::Lane(Some(share)) = self {
            share.confirm();
        }
    }
}

/// A record whose delivery failed with a retriable error.
pub(super) struct Retry {
    pub(super) key: Vec<u8>,
    pub(super) value: Vec<u8>,
    pub(super) timestamp: Option<i64>,
    /// Its share, in durable mode.
    pub(super) ack: Option<Share>,
}

/// Receives delivery reports (on the flush thread, inside `poll`).
pub(super) struct Reports {
    sink: String,
    metrics: Arc<SinkMetrics>,
    /// Lane records that failed retriably, for the flush thread to send again.
    pub(super) retries: Mutex<Vec<Retry>>,
    /// Replayed records that failed retriably since the replay began.
    pub(super) replay_failures: AtomicU64,
    /// Records with librdkafka that a durable answer waits for.
    pub(super) awaited: AtomicU64,
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
            awaited: AtomicU64::new(0),
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
            self.metrics.set_healthy(Part::Brokers, false);
        }
        self.warn_at_most_once_a_second(|| tracing::warn!(sink = %self.sink, %error, reason, "Kafka client error."));
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = Origin;

    fn delivery(&self, result: &DeliveryResult<'_>, origin: Origin) {
        if origin.awaited() {
            self.awaited.fetch_sub(1, Ordering::Relaxed);
        }
        match result {
            Ok(_) => {
                self.metrics.set_healthy(Part::Brokers, true);
                self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
                origin.settle();
            }
            Err((error, message)) => {
                let code = error.rdkafka_error_code();
                if code.is_some_and(retriable) && matches!(origin, Origin::Spool) {
                    self.replay_failures.fetch_add(1, Ordering::Relaxed);
                } else if let (true, Origin::Lane(ack)) = (code.is_some_and(retriable), origin) {
                    let retry = Retry {
                        key: message.key().unwrap_or_default().to_vec(),
                        value: message.payload().unwrap_or_default().to_vec(),
                        timestamp: message.timestamp().to_millis(),
                        ack,
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
