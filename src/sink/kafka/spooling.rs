//! The spooling state of a flush thread: records go to disk, and the
//! oldest segment is replayed whenever librdkafka has nothing in flight; a
//! segment is deleted once every record of it was delivered.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::producer::Producer;

use super::flush::{frame, Delivery, FlushThread, Replay, Sent};
use super::reports::Origin;

/// How long a failed replay waits before the segment is tried again.
const REPLAY_BACKOFF: Duration = Duration::from_secs(1);

impl FlushThread {
    /// Moves to spooling (when there is a spool and it is not spooling yet).
    pub(super) fn start_spooling(&mut self, why: &str) {
        if let Delivery::Direct(_) = self.delivery {
            self.delivery = self.delivery.take().into_spooling();
            tracing::warn!(sink = %self.lane.sink, lane = self.lane.lane, why, "Spooling records to disk until the broker takes them again.");
        }
    }

    /// Appends records to the spool (framing lane records for the topic)
    /// and makes them durable; what passes the budget or cannot be written
    /// is counted as failed. After a write error (a full disk) the rest of
    /// the batch is failed and what was appended before it committed; a
    /// failed commit fails every record the spool had not made durable.
    /// Returns how many records were made durable.
    pub(super) fn spool_records<'r>(
        &mut self,
        records: impl Iterator<Item = (&'r [u8], &'r [u8], Option<i64>)>,
        framed: bool,
    ) -> u64 {
        let spool = match &mut self.delivery {
            Delivery::Waiting => return 0,
            Delivery::Direct(spool) | Delivery::Spooling(spool, _) => spool,
        };
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
        written
    }

    /// While spooling: sends the oldest segment when librdkafka has nothing
    /// else in flight, and deletes it once every record in it was
    /// delivered; sends directly again once the spool is empty.
    pub(super) fn replay_step(&mut self) {
        let Delivery::Spooling(spool, replay) = &mut self.delivery else { return };
        if self.producer.in_flight_count() > 0 {
            return;
        }
        match *replay {
            Replay::NotBefore(at) if Instant::now() < at => return,
            Replay::NotBefore(_) => {}
            Replay::InFlight => {
                // Nothing is in flight: every record of the segment was reported.
                if self.producer.context().replay_failures.swap(0, Ordering::Relaxed) > 0 {
                    *replay = Replay::NotBefore(Instant::now() + REPLAY_BACKOFF);
                    return;
                }
                let before = spool.bytes();
                if let Err(error) = spool.remove_oldest() {
                    tracing::error!(sink = %self.lane.sink, %error, "Cannot delete a replayed spool segment; it will be sent again.");
                }
                self.metrics.spool_bytes.fetch_sub(before - spool.bytes(), Ordering::Relaxed);
            }
        }
        let entries = match spool.oldest() {
            Ok(Some((entries, damaged))) => {
                if damaged > 0 {
                    tracing::warn!(sink = %self.lane.sink, bytes = damaged, "A spool segment ends in a damaged entry (a crash while writing); skipping it.");
                }
                entries
            }
            Ok(None) => {
                self.delivery = self.delivery.take().into_direct();
                tracing::info!(sink = %self.lane.sink, lane = self.lane.lane, "Spool replayed; sending directly again.");
                return;
            }
            Err(error) => {
                tracing::error!(sink = %self.lane.sink, %error, "Cannot read the spool.");
                *replay = Replay::NotBefore(Instant::now() + REPLAY_BACKOFF);
                return;
            }
        };
        *replay = Replay::InFlight;
        self.producer.context().replay_failures.store(0, Ordering::Relaxed);
        for e in &entries {
            match self.send(&e.key, &e.value, e.timestamp, true, Origin::Spool) {
                Sent::Handed => {}
                // The segment stays and is sent again later, whole.
                Sent::QueueFull(_) | Sent::TimedOut => {
                    self.producer.context().replay_failures.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
    }
}
