//! Sinks: dedicated flush threads that receive batches from the shards and
//! deliver them. Shards never call into a sink; they only send batches,
//! after the lane's atomic record count says they fit.
//!
//! Key components:
//! - [`start`]: spawns the flush threads of every active sink.
//! - [`mod@file`]: Avro container files, rolled and published.
//! - [`kafka`]: records to a Kafka topic through librdkafka.

pub mod file;
pub mod kafka;

use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::batch::{SinkLanes, SinkMessage};
use crate::config::{Config, SinkConfig};
use crate::metrics::SinkMetrics;

/// Running sinks: what shards send to, and the threads to join at shutdown.
pub struct Sinks {
    /// Sending side of each active sink, in a fixed order (sink index).
    pub lanes: Vec<SinkLanes>,
    /// Flush threads; each exits after [`Sinks::drain`].
    pub threads: Vec<JoinHandle<()>>,
    /// When flush threads that deliver over the network must give up.
    deadline: Arc<DrainDeadline>,
}

impl Sinks {
    /// Tells every flush thread that no more records will come, and waits
    /// until each has flushed and published what it holds, or until
    /// `deadline` for sinks that deliver over the network. Call only after
    /// every shard has stopped.
    pub fn drain(self, deadline: Instant) {
        self.deadline.start(deadline);
        for lane in self.lanes.iter().flat_map(|s| s.lanes.iter()) {
            let _ = lane.send(SinkMessage::Drain);
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// The deadline for delivering what is queued, set when the drain starts;
/// monotonic, so a clock step cannot shorten or stretch a drain.
#[derive(Debug, Default)]
pub struct DrainDeadline {
    at: OnceLock<Instant>,
}

impl DrainDeadline {
    /// Starts the drain: everything queued must be delivered by `at`.
    pub fn start(&self, at: Instant) {
        let _ = self.at.set(at);
    }

    /// Whether the drain started and its time is up.
    pub fn passed(&self) -> bool {
        self.at.get().is_some_and(|at| Instant::now() >= *at)
    }
}

/// The schema id the mappings writing to `sink` declare (validation allows one).
fn confluent_id(config: &Config, sink: &str) -> Option<i32> {
    config
        .mappings
        .iter()
        .flatten()
        .filter(|(_, m)| m.sinks.iter().flatten().any(|s| s == sink))
        .find_map(|(_, m)| m.confluent_id)
}

/// Starts every active sink. `schema_of(i)` gives the schema the mappings
/// of the `i`th active sink write (mappings name sinks by that index).
///
/// # Errors
/// A sink that cannot start: its directories cannot be created, or
/// librdkafka refuses the producer properties.
pub fn start(config: &Config, schema_of: impl Fn(usize) -> apache_avro::Schema) -> Result<Sinks, String> {
    let deadline = Arc::new(DrainDeadline::default());
    let mut sinks = Sinks { lanes: Vec::new(), threads: Vec::new(), deadline: deadline.clone() };
    for (index, (name, sink)) in config.active_sinks().enumerate() {
        let (threads, buffer_size) = match sink {
            SinkConfig::Hdfs(_) => (config.global.hdfs.threads, config.global.hdfs.buffer_size),
            SinkConfig::Kafka(_) => (config.global.kafka.threads, config.global.kafka.buffer_size),
            SinkConfig::Gcs(_) | SinkConfig::Gcps(_) => unreachable!("validation refuses Google Cloud sinks"),
        };
        let metrics = Arc::new(SinkMetrics::new(threads));
        let mut senders = Vec::with_capacity(threads);
        for lane in 0..threads {
            // The bound is in records, enforced by `SinkLanes::capacity`
            // before every send; as each batch holds at least one record the
            // channel never holds more than `buffer_size` batches. A channel
            // bounded in batches instead would either preallocate that many
            // slots or drop single-record batches long before the record
            // bound under light load.
            let (tx, rx) = crossbeam_channel::unbounded::<SinkMessage>();
            senders.push(tx);
            let handle = match sink {
                SinkConfig::Hdfs(cfg) => {
                    if lane == 0 {
                        file::recover(name, &cfg.file_strategy).map_err(|e| format!("sink {name}: {e}"))?;
                    }
                    let schema = schema_of(index);
                    file::spawn(name, lane, cfg.file_strategy.clone(), schema, rx, metrics.clone(), deadline.clone())
                        .map_err(|e| format!("sink {name}: {e}"))?
                }
                SinkConfig::Kafka(cfg) => {
                    let lane = kafka::KafkaLane {
                        sink: name.clone(),
                        lane,
                        lanes: threads,
                        topic: cfg.topic.clone(),
                        mode: cfg.mode,
                        confluent_id: confluent_id(config, name),
                        properties: crate::config::kafka::producer_properties(&config.global.kafka.producer)?,
                        spool: cfg.spool.clone(),
                    };
                    kafka::spawn(lane, rx, metrics.clone(), deadline.clone())?
                }
                SinkConfig::Gcs(_) | SinkConfig::Gcps(_) => unreachable!("validation refuses Google Cloud sinks"),
            };
            sinks.threads.push(handle);
        }
        sinks.lanes.push(SinkLanes { name: name.clone(), lanes: senders, capacity: buffer_size as u64, metrics });
    }
    Ok(sinks)
}
