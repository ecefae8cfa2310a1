//! Shard-local batches of encoded records, and their hand-off to sinks.
//!
//! Each shard keeps one open [`Batch`] per sink lane (a lane is one flush
//! thread of one sink). Records of one party always go to the same lane, on
//! every shard, so a party's events stay in order within a sink thread.
//! Batches cross to the flush threads through crossbeam channels bounded in
//! records (see [`SinkLanes::capacity`]): a batch that does not fit is
//! dropped (counted, logged at most once a second) and the shard never
//! blocks. In durable mode each batch also carries a share of the shard's
//! current round ([`ack`]), which its sink confirms once the records are
//! durable.

pub mod ack;

use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::metrics::{Counter, ShardMetrics, SinkMetrics};
use crate::plan::SinkId;
use ack::{Round, Share};

/// Records per batch before it is handed off without waiting for the commit.
pub const MAX_BATCH_RECORDS: usize = 256;

/// What flush threads receive.
#[derive(Debug)]
pub enum SinkMessage {
    /// Records to deliver.
    Records(Batch),
    /// No more records will come: flush, publish and exit. Sent by `main`
    /// after every shard has stopped.
    Drain,
}

/// One record in a batch: ranges into [`Batch::data`].
#[derive(Debug, Clone)]
pub struct RecordMeta {
    /// Party id (Kafka key).
    pub key: Range<usize>,
    /// Avro binary datum.
    pub value: Range<usize>,
    /// Server receive time, ms since the epoch.
    pub timestamp: i64,
}

/// Encoded records, stored back to back in one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    /// Keys and values of all records.
    pub data: Vec<u8>,
    /// Where each record's parts are.
    pub records: Vec<RecordMeta>,
    /// In durable mode: the round's share to confirm once every record is
    /// durable.
    pub ack: Option<Share>,
}

impl Batch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there are no records.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// An empty batch with the room `other` had: a lane's batches stay
    /// sized for its busiest round instead of regrowing after a quiet one.
    /// Bounded: a batch holds at most [`MAX_BATCH_RECORDS`] records.
    pub fn with_capacity_of(other: &Batch) -> Self {
        Self {
            data: Vec::with_capacity(other.data.capacity()),
            records: Vec::with_capacity(other.records.capacity()),
            ack: None,
        }
    }

    /// Appends one record.
    pub fn push(&mut self, key: &str, value: &[u8], timestamp: i64) {
        self.push_bytes(key.as_bytes(), value, timestamp);
    }

    /// Appends one record whose key is bytes.
    pub fn push_bytes(&mut self, key: &[u8], value: &[u8], timestamp: i64) {
        let k = self.data.len();
        self.data.extend_from_slice(key);
        let v = self.data.len();
        self.data.extend_from_slice(value);
        self.records.push(RecordMeta { key: k..v, value: v..self.data.len(), timestamp });
    }

    /// The value bytes of record `i`.
    pub fn value(&self, i: usize) -> &[u8] {
        &self.data[self.records[i].value.clone()]
    }

    /// Every record's value bytes, in order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &[u8]> {
        self.records.iter().map(|r| &self.data[r.value.clone()])
    }

    /// The key bytes of record `i`.
    pub fn key(&self, i: usize) -> &[u8] {
        &self.data[self.records[i].key.clone()]
    }
}

/// The sending side of one sink: one channel per flush thread.
#[derive(Debug, Clone)]
pub struct SinkLanes {
    /// Sink name, for logs.
    pub name: String,
    /// One channel per flush thread, bounded by `capacity` records.
    pub lanes: Vec<Sender<SinkMessage>>,
    /// Records each lane may hold (the sink's `buffer_size`); a batch that
    /// would exceed it is dropped and counted. Counted in records, not
    /// batches: under light load a batch holds a single record.
    pub capacity: u64,
    /// The sink's counters; `queued[lane]` is the bound's running total.
    pub metrics: Arc<SinkMetrics>,
}

struct Lane {
    batch: Batch,
    tx: Sender<SinkMessage>,
}

struct SinkBatches {
    name: String,
    lanes: Vec<Lane>,
    capacity: u64,
    metrics: Arc<SinkMetrics>,
}

/// All open batches of one shard.
pub struct ShardBatches {
    sinks: Vec<SinkBatches>,
    hasher: ahash::RandomState,
    metrics: Arc<ShardMetrics>,
    last_drop_warning: Option<Instant>,
    /// In durable mode: the open round and the share that keeps it open.
    round: Option<(Arc<Round>, Share)>,
}

impl ShardBatches {
    /// Batches for `sinks` (indexed by [`SinkId`]); `durable` gives every
    /// batch a share of the shard's current round.
    pub fn new(sinks: &[SinkLanes], metrics: Arc<ShardMetrics>, durable: bool) -> Self {
        Self {
            sinks: sinks
                .iter()
                .map(|s| SinkBatches {
                    name: s.name.clone(),
                    lanes: s.lanes.iter().map(|tx| Lane { batch: Batch::default(), tx: tx.clone() }).collect(),
                    capacity: s.capacity,
                    metrics: s.metrics.clone(),
                })
                .collect(),
            // Fixed seeds: every shard must send a party to the same lane.
            hasher: ahash::RandomState::with_seeds(0x6469_766f, 0x006c_7465, 0x7061_7274, 0x7920),
            metrics,
            last_drop_warning: None,
            round: durable.then(Round::open),
        }
    }

    /// In durable mode, the round records pushed now belong to.
    pub fn round(&self) -> Option<Arc<Round>> {
        self.round.as_ref().map(|(round, _)| round.clone())
    }

    /// In durable mode: closes the current round (every batch of it must
    /// have been handed off) and opens the next; the closed round settles
    /// once its sinks confirmed or dropped their shares.
    pub fn close_round(&mut self) -> Option<Arc<Round>> {
        let (round, own) = std::mem::replace(self.round.as_mut()?, Round::open());
        own.confirm();
        Some(round)
    }

    /// The lane hash of a party id.
    pub fn party_hash(&self, party_id: &str) -> u64 {
        self.hasher.hash_one(party_id)
    }

    /// Whether one more record for `sink` (of a party with `party_hash`)
    /// fits its lane's queue now. Shards and flush threads move the count
    /// meanwhile, so this is a forecast: the hand-off checks again.
    pub fn fits(&self, SinkId(sink): SinkId, party_hash: u64) -> bool {
        let s = &self.sinks[sink];
        let lane = (party_hash % s.lanes.len() as u64) as usize;
        s.metrics.queued[lane].load(Ordering::Relaxed) + (s.lanes[lane].batch.len() as u64) < s.capacity
    }

    /// The name of `sink`.
    pub fn sink_name(&self, SinkId(sink): SinkId) -> &str {
        &self.sinks[sink].name
    }

    /// Appends a record for `sink`. A batch that reaches
    /// [`MAX_BATCH_RECORDS`] is handed off at once.
    pub fn push(&mut self, SinkId(sink): SinkId, party_hash: u64, key: &str, value: &[u8], timestamp: i64) {
        let s = &mut self.sinks[sink];
        let lane = (party_hash % s.lanes.len() as u64) as usize;
        s.lanes[lane].batch.push(key, value, timestamp);
        if s.lanes[lane].batch.len() >= MAX_BATCH_RECORDS {
            self.send(sink, lane);
        }
    }

    /// Hands every non-empty batch to its flush thread.
    pub fn hand_off_all(&mut self) {
        for sink in 0..self.sinks.len() {
            for lane in 0..self.sinks[sink].lanes.len() {
                if !self.sinks[sink].lanes[lane].batch.is_empty() {
                    self.send(sink, lane);
                }
            }
        }
    }

    fn send(&mut self, sink: usize, lane: usize) {
        let s = &mut self.sinks[sink];
        // The next batch starts with room for one like this, so a busy lane
        // does not regrow (and copy) its buffers every round.
        let sized_like = Batch::with_capacity_of(&s.lanes[lane].batch);
        let mut batch = std::mem::replace(&mut s.lanes[lane].batch, sized_like);
        batch.ack = self.round.as_ref().map(|(round, _)| round.share());
        let n = batch.len() as u64;
        let queued = &s.metrics.queued[lane];
        let error = if queued.fetch_add(n, Ordering::Relaxed) + n > s.capacity {
            "queue full"
        } else {
            // The channel is unbounded (the atomic count above bounds it),
            // so sending fails only when the flush thread is gone.
            match s.lanes[lane].tx.send(SinkMessage::Records(batch)) {
                Ok(()) => return,
                Err(_) => "flush thread stopped",
            }
        };
        queued.fetch_sub(n, Ordering::Relaxed);
        self.metrics.add(Counter::RecordsQueueFull, n);
        if crate::metrics::log_due(&mut self.last_drop_warning) {
            tracing::error!(sink = %s.name, records = n, error, "Failed to enqueue records for sink. Dropping them.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(n: usize, cap: usize) -> (SinkLanes, Vec<crossbeam_channel::Receiver<SinkMessage>>) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| crossbeam_channel::bounded(cap)).unzip();
        (SinkLanes { name: "s".into(), lanes: txs, capacity: 2, metrics: Arc::new(SinkMetrics::new(n)) }, rxs)
    }

    #[test]
    fn a_party_always_goes_to_the_same_lane() {
        let (sink, rxs) = lanes(4, 16);
        let metrics = Arc::new(ShardMetrics::default());
        let mut a = ShardBatches::new(std::slice::from_ref(&sink), metrics.clone(), false);
        let mut b = ShardBatches::new(&[sink], metrics, false);
        for batches in [&mut a, &mut b] {
            let h = batches.party_hash("0:abc:party");
            batches.push(SinkId(0), h, "0:abc:party", b"r", 1);
            batches.hand_off_all();
        }
        let per_lane: Vec<usize> = rxs.iter().map(|r| r.len()).collect();
        assert_eq!(per_lane.iter().sum::<usize>(), 2);
        assert!(per_lane.contains(&2), "both shards used one lane: {per_lane:?}");
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let (sink, rxs) = lanes(1, 16);
        let metrics = Arc::new(ShardMetrics::default());
        let mut b = ShardBatches::new(std::slice::from_ref(&sink), metrics.clone(), false);
        // Capacity is two records: two single-record batches fit, the rest is dropped.
        for i in 0..4 {
            b.push(SinkId(0), 0, "k", &[i], 0);
            b.hand_off_all();
        }
        assert_eq!(rxs[0].len(), 2);
        assert_eq!(metrics.get(Counter::RecordsQueueFull), 2);
        assert_eq!(sink.metrics.queued_total(), 2);
        let Ok(SinkMessage::Records(got)) = rxs[0].recv() else { panic!("expected records") };
        assert_eq!((got.key(0), got.value(0)), (&b"k"[..], &[0u8][..]));
    }
}
