//! The flush thread of one Kafka lane: its state, the send loop, retries
//! and the drain.
//!
//! The thread is in one of three states ([`Delivery`]). Without a spool it
//! sends every record to librdkafka and waits while librdkafka's queue is
//! full (`Waiting`). With a spool that is empty it sends directly too
//! (`Direct`), but a full queue or a retriable failure moves it to
//! `Spooling`: every record goes to disk, and the oldest segment is
//! replayed whenever librdkafka has nothing in flight, until the spool is
//! empty and the thread is `Direct` again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, PurgeConfig};

use super::reports::{Origin, Reports};
use super::spool::Spool;
use super::KafkaLane;
use crate::batch::ack::Share;
use crate::batch::{Batch, SinkMessage};
use crate::config::KafkaMode;
use crate::metrics::SinkMetrics;
use crate::sink::DrainDeadline;

/// How long an idle flush thread waits for records before serving
/// delivery reports and retries.
const IDLE_POLL: Duration = Duration::from_millis(50);
/// The same wait while a durable answer waits for a delivery report.
const AWAITED_POLL: Duration = Duration::from_millis(1);

/// Where records go, and what happens when librdkafka cannot take them.
pub(super) enum Delivery {
    /// No spool: to librdkafka, waiting while its queue is full.
    Waiting,
    /// The spool is empty: to librdkafka; a full queue or a retriable
    /// failure starts spooling.
    Direct(Spool),
    /// To the spool; its oldest segment is replayed when librdkafka is idle.
    Spooling(Spool, Replay),
}

/// The replay of the oldest spooled segment.
#[derive(Debug, Clone, Copy)]
pub(super) enum Replay {
    /// The next replay is due at this instant (later after a failure).
    NotBefore(Instant),
    /// Its records are with librdkafka; the segment goes once they are delivered.
    InFlight,
}

impl Delivery {
    /// The state a thread starts in: spooling first when an earlier run
    /// left records in the spool.
    pub(super) fn start(spool: Option<Spool>) -> Self {
        match spool {
            None => Self::Waiting,
            Some(s) if s.is_empty() => Self::Direct(s),
            Some(s) => Self::Spooling(s, Replay::NotBefore(Instant::now())),
        }
    }

    /// The state after a full queue or a failure: spooling, when there is a spool.
    pub(super) fn into_spooling(self) -> Self {
        match self {
            Self::Direct(s) => Self::Spooling(s, Replay::NotBefore(Instant::now())),
            other => other,
        }
    }

    /// The state once the spool is empty: direct again.
    pub(super) fn into_direct(self) -> Self {
        match self {
            Self::Spooling(s, _) => Self::Direct(s),
            other => other,
        }
    }

    /// Takes the state out, leaving `Waiting` until it is put back.
    pub(super) fn take(&mut self) -> Self {
        std::mem::replace(self, Self::Waiting)
    }

    pub(super) fn spooling(&self) -> bool {
        matches!(self, Self::Spooling(..))
    }

    pub(super) fn spool(&self) -> Option<&Spool> {
        match self {
            Self::Waiting => None,
            Self::Direct(s) | Self::Spooling(s, _) => Some(s),
        }
    }
}

/// Where `send` left a record.
pub(super) enum Sent {
    /// With librdkafka (or counted as failed, for a non-retriable error).
    Handed,
    /// librdkafka's queue is full and a spool is there to take it; the
    /// record's origin comes back.
    QueueFull(Origin),
    /// The drain deadline passed while waiting.
    TimedOut,
}

/// One lane's flush thread.
pub(super) struct FlushThread {
    pub(super) lane: KafkaLane,
    pub(super) producer: BaseProducer<Reports>,
    pub(super) metrics: Arc<SinkMetrics>,
    deadline: Arc<DrainDeadline>,
    /// Framing scratch for confluent mode (librdkafka copies the payload).
    pub(super) value: Vec<u8>,
    pub(super) delivery: Delivery,
}

impl FlushThread {
    pub(super) fn new(
        lane: KafkaLane,
        producer: BaseProducer<Reports>,
        metrics: Arc<SinkMetrics>,
        deadline: Arc<DrainDeadline>,
        delivery: Delivery,
    ) -> Self {
        Self { lane, producer, metrics, deadline, value: Vec::new(), delivery }
    }

    /// Takes batches until the drain, then drains.
    pub(super) fn run(mut self, rx: Receiver<SinkMessage>) {
        loop {
            self.resend_retries();
            self.replay_step();
            let awaited = self.producer.context().awaited.load(Ordering::Relaxed) > 0;
            match rx.recv_timeout(if awaited { AWAITED_POLL } else { IDLE_POLL }) {
                Ok(SinkMessage::Records(batch)) => {
                    self.metrics.remember(batch.values());
                    let durable = batch.ack.is_some();
                    let batch = self.as_json(batch);
                    self.send_batch(batch);
                    crate::sink::gather(&rx, durable);
                }
                Ok(SinkMessage::Drain) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.producer.poll(Duration::ZERO);
        }
        self.drain();
    }

    /// With `format = "json"`, the batch with each value as its JSON text
    /// (so the spool, too, holds what goes to the topic).
    fn as_json(&self, mut batch: Batch) -> Batch {
        let Some(json) = &self.lane.json else { return batch };
        let mut out = Batch { ack: batch.ack.take(), ..Batch::default() };
        let mut text = Vec::new();
        for i in 0..batch.records.len() {
            text.clear();
            match json.write(batch.value(i), &mut text) {
                Ok(()) => out.push_bytes(batch.key(i), &text, batch.records[i].timestamp),
                Err(error) => {
                    // The shard encoded it with this schema: a bug, not bad input.
                    self.metrics.failed.fetch_add(1, Ordering::Relaxed);
                    self.metrics.queued[self.lane.lane].fetch_sub(1, Ordering::Relaxed);
                    tracing::error!(sink = %self.lane.sink, %error, "Cannot write a record as JSON. Dropping it.");
                    drop(out.ack.take());
                }
            }
        }
        out
    }

    /// Sends a batch's records; in durable mode each record sent takes a
    /// share of the batch's, and the batch's own share covers the records
    /// that go to the spool.
    fn send_batch(&mut self, mut batch: Batch) {
        let mut ack = batch.ack.take();
        let mut i = 0;
        while i < batch.len() && !self.delivery.spooling() {
            let timestamp = Some(batch.records[i].timestamp);
            let origin = Origin::Lane(ack.as_ref().map(Share::split));
            match self.send(batch.key(i), batch.value(i), timestamp, false, origin) {
                Sent::Handed => i += 1,
                Sent::QueueFull(origin) => {
                    origin.settle();
                    self.start_spooling("librdkafka's queue is full");
                }
                Sent::TimedOut => {
                    self.metrics.failed.fetch_add((batch.len() - i) as u64, Ordering::Relaxed);
                    i = batch.len();
                    drop(ack.take());
                }
            }
        }
        if i < batch.len() {
            let records = (i..batch.len()).map(|j| (batch.key(j), batch.value(j), Some(batch.records[j].timestamp)));
            if self.spool_records(records, false) < (batch.len() - i) as u64 {
                drop(ack.take());
            }
        }
        if let Some(ack) = ack {
            ack.confirm();
        }
        // The records now belong to librdkafka's queue or the spool, not the lane's.
        self.metrics.queued[self.lane.lane].fetch_sub(batch.len() as u64, Ordering::Relaxed);
    }

    /// Hands one record to librdkafka; while its queue is full, waits, or
    /// says so when a spool can take the record. `framed` values (retries,
    /// spooled records) already carry the confluent header.
    pub(super) fn send(
        &mut self,
        key: &[u8],
        datum: &[u8],
        timestamp: Option<i64>,
        framed: bool,
        origin: Origin,
    ) -> Sent {
        let awaited = origin.awaited();
        let payload = frame(&mut self.value, self.lane.kafka.mode, self.lane.kafka.confluent_id, datum, framed);
        let mut record =
            BaseRecord::<[u8], [u8], Origin>::with_opaque_to(&self.lane.kafka.topic, origin).key(key).payload(payload);
        if let Some(ts) = timestamp {
            record = record.timestamp(ts);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => {
                    if awaited {
                        self.producer.context().awaited.fetch_add(1, Ordering::Relaxed);
                    }
                    return Sent::Handed;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if self.delivery.spool().is_some() {
                        return Sent::QueueFull(back.delivery_opaque);
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
        if self.delivery.spool().is_some() {
            self.start_spooling("the broker failed records");
            let written = self.spool_records(retries.iter().map(|r| (&r.key[..], &r.value[..], r.timestamp)), true);
            // Which ones missed the spool is not known: unless all made
            // it, every round involved fails (its events may come twice).
            if written == retries.len() as u64 {
                retries.into_iter().filter_map(|r| r.ack).for_each(Share::confirm);
            }
            return;
        }
        let count = retries.len();
        for (i, r) in retries.into_iter().enumerate() {
            if !matches!(self.send(&r.key, &r.value, r.timestamp, true, Origin::Lane(r.ack)), Sent::Handed) {
                self.metrics.failed.fetch_add((count - i) as u64, Ordering::Relaxed);
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
            self.replay_step();
            let pending = self.producer.in_flight_count();
            let retries_left = !self.producer.context().retries.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
            if pending == 0 && !retries_left && !self.delivery.spooling() {
                break;
            }
            if !self.deadline.passed() {
                continue;
            }
            if self.delivery.spool().is_some() {
                self.producer.purge(PurgeConfig::default().queue().inflight());
                self.producer.poll(Duration::from_millis(100));
                self.resend_retries();
                let bytes = self.delivery.spool().map_or(0, Spool::bytes);
                tracing::warn!(sink = %self.lane.sink, lane = self.lane.lane, bytes, "Shutdown timeout reached; undelivered records stay in the spool for the next start.");
            } else {
                self.metrics.failed.fetch_add(pending.max(0) as u64, Ordering::Relaxed);
                tracing::error!(sink = %self.lane.sink, records = pending, "Shutdown timeout reached with records undelivered.");
            }
            break;
        }
    }
}

/// The value as produced: in confluent mode `0x00`, the schema id and the
/// datum, unless `framed` says it already is.
pub(super) fn frame<'v>(
    scratch: &'v mut Vec<u8>,
    mode: KafkaMode,
    id: Option<i32>,
    datum: &'v [u8],
    framed: bool,
) -> &'v [u8] {
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
