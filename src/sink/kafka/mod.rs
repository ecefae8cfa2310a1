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
//! - `flush.rs`: the flush thread: its state (waiting, direct, spooling),
//!   the send loop, retries and the drain.
//! - `spooling.rs`: the spooling state: records to disk, segments replayed.
//! - `reports.rs`: delivery reports from librdkafka.
//! - [`spool`]: the segment files.
//! - [`crate::config::kafka`]: producer properties, Java names to librdkafka's.

mod flush;
mod reports;
pub mod spool;
mod spooling;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use rdkafka::producer::BaseProducer;
use rdkafka::ClientConfig;

use super::DrainDeadline;
use crate::avro::JsonWriter;
use crate::batch::SinkMessage;
use crate::metrics::SinkMetrics;
use crate::plan::KafkaPlan;
use flush::{Delivery, FlushThread};
use reports::Reports;
use spool::Spool;

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
    /// With `format = "json"`: writes values as JSON text.
    pub json: Option<JsonWriter>,
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
    let reports = Reports::new(lane.sink.clone(), metrics.clone());
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
    let producer: BaseProducer<Reports> = client_config(&lane.kafka).create_with_context(reports).map_err(|e| {
        let reason = crate::config::kafka::redact(&e.to_string(), &lane.kafka.properties.0);
        format!("sink {}: cannot create the Kafka producer: {reason}", lane.sink)
    })?;
    std::thread::Builder::new()
        .name(format!("sink-{}-{}", lane.sink, lane.lane))
        .spawn(move || FlushThread::new(lane, producer, metrics, deadline, Delivery::start(spool)).run(rx))
        .map_err(|e| e.to_string())
}

/// librdkafka's configuration of a sink's producer.
fn client_config(kafka: &KafkaPlan) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (k, v) in &kafka.properties.0 {
        config.set(k, v);
    }
    config
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

/// Whether a broker of these properties answers with the topic's metadata
/// within ten seconds (`check-config --connect`).
///
/// # Errors
/// librdkafka refuses the properties, or no broker answers.
pub fn check_broker(kafka: &KafkaPlan) -> Result<(), String> {
    use rdkafka::producer::Producer;
    let redact = |e: &dyn std::fmt::Display| crate::config::kafka::redact(&e.to_string(), &kafka.properties.0);
    let producer: BaseProducer = client_config(kafka).create().map_err(|e| redact(&e))?;
    let metadata = producer
        .client()
        .fetch_metadata(Some(&kafka.topic), std::time::Duration::from_secs(10))
        .map_err(|e| format!("no broker answers: {}", redact(&e)))?;
    match metadata.topics().iter().find(|t| t.name() == kafka.topic) {
        Some(t) if t.error().is_none() => Ok(()),
        _ => Err(format!("the brokers answer, but topic {:?} is not there", kafka.topic)),
    }
}
