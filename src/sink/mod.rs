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

use crate::avro::{JsonWriter, Unions};
use crate::batch::{SinkLanes, SinkMessage};
use crate::config::JsonUnions;
use crate::metrics::SinkMetrics;
use crate::plan::{FilePlan, Format, SinkId, SinkKind, SinkPlan, StorePlan};

/// Running sinks: what shards send to, and the threads to join at shutdown.
pub struct Sinks {
    /// Sending side of each sink, by [`SinkId`].
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

    /// The time left once the drain started; `None` before.
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.at.get().map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// Whether the drain started and its time is up.
    pub fn passed(&self) -> bool {
        self.at.get().is_some_and(|at| Instant::now() >= *at)
    }
}

/// Starts every sink of the plan. `schema_of(id)` gives the schema the
/// mappings writing that sink use.
///
/// # Errors
/// A sink that cannot start: its directories cannot be created, or
/// librdkafka refuses the producer properties.
pub fn start(plans: &[SinkPlan], schema_of: impl Fn(SinkId) -> apache_avro::Schema) -> Result<Sinks, String> {
    let deadline = Arc::new(DrainDeadline::default());
    let mut sinks = Sinks { lanes: Vec::new(), threads: Vec::new(), deadline: deadline.clone() };
    for (id, plan) in plans.iter().enumerate() {
        let schema_of = || schema_of(SinkId(id));
        let name = &plan.name;
        let metrics = Arc::new(SinkMetrics::new(plan.lanes));
        // What an earlier run left staged is published by the first lane.
        let mut leftovers = match &plan.kind {
            SinkKind::File(file) => {
                check_remote_store(name, file, &metrics)?;
                file::recover(name, file).map_err(|e| format!("sink {name}: {e}"))?
            }
            SinkKind::Kafka(_) => Vec::new(),
        };
        let mut senders = Vec::with_capacity(plan.lanes);
        for lane in 0..plan.lanes {
            // The bound is in records, enforced by `SinkLanes::capacity`
            // before every send; as each batch holds at least one record the
            // channel never holds more than `buffer_size` batches. A channel
            // bounded in batches instead would either preallocate that many
            // slots or drop single-record batches long before the record
            // bound under light load.
            let (tx, rx) = crossbeam_channel::unbounded::<SinkMessage>();
            senders.push(tx);
            let handle = match &plan.kind {
                SinkKind::File(file) => {
                    let leftovers = std::mem::take(&mut leftovers);
                    let format = match json_writer(plan, schema_of)? {
                        None => file::writer::FileFormat::Avro(schema_of()),
                        Some(json) => file::writer::FileFormat::Json(json),
                    };
                    file::spawn(name, lane, file, format, leftovers, rx, metrics.clone(), deadline.clone())?
                }
                SinkKind::Kafka(kafka) => {
                    let json = json_writer(plan, schema_of)?;
                    let lane =
                        kafka::KafkaLane { sink: name.clone(), lane, lanes: plan.lanes, kafka: kafka.clone(), json };
                    kafka::spawn(lane, rx, metrics.clone(), deadline.clone())?
                }
            };
            sinks.threads.push(handle);
        }
        sinks.lanes.push(SinkLanes { name: name.clone(), lanes: senders, capacity: plan.buffer_size as u64, metrics });
    }
    Ok(sinks)
}

/// The JSON writer of a sink with `format = "json"`.
fn json_writer(plan: &SinkPlan, schema: impl Fn() -> apache_avro::Schema) -> Result<Option<JsonWriter>, String> {
    match plan.format {
        Format::Avro => Ok(None),
        Format::Json(unions) => {
            let unions = match unions {
                JsonUnions::Tagged => Unions::Tagged,
                JsonUnions::Plain => Unions::Plain,
            };
            JsonWriter::new(&schema(), unions).map(Some).map_err(|e| format!("sink {}: {e}", plan.name))
        }
    }
}

/// At startup, asks a remote store whether it takes files: a store that
/// refuses (no such bucket, credentials refused) stops the start with the
/// reason; one that does not answer is logged and the sink starts
/// unhealthy, holding its records until the store answers.
fn check_remote_store(name: &str, plan: &FilePlan, metrics: &SinkMetrics) -> Result<(), String> {
    if matches!(plan.store, StorePlan::Local { .. }) {
        return Ok(());
    }
    let store = file::store::Store::open(&plan.store).map_err(|e| format!("sink {name}: {e}"))?;
    // Short: a store that is down must not hold up the start for long.
    match store.check(std::time::Duration::from_secs(5)) {
        Ok(()) => Ok(()),
        Err(file::store::CheckFailure::Refused(why)) => Err(format!("sink {name}: the store refuses: {why}")),
        Err(file::store::CheckFailure::Unreachable(why)) => {
            metrics.set_healthy(false);
            tracing::warn!(sink = %name, reason = %why, "The store does not answer; starting with the sink unhealthy, records are held.");
            Ok(())
        }
    }
}

/// Asks every sink's store or broker whether it can be reached and takes
/// records (`check-config --connect`): one line per sink that cannot.
pub fn check_connections(plans: &[SinkPlan]) -> Vec<String> {
    let mut problems = Vec::new();
    for plan in plans {
        let name = &plan.name;
        match &plan.kind {
            SinkKind::File(file) => {
                let checked = file::store::Store::open(&file.store)
                    .and_then(|s| s.check(file::store::REQUEST_LIMIT).map_err(|e| e.to_string()));
                if let Err(e) = checked {
                    problems.push(format!("sink {name}: {e}"));
                }
            }
            SinkKind::Kafka(kafka) => {
                if let Err(e) = kafka::check_broker(kafka) {
                    problems.push(format!("sink {name}: {e}"));
                }
            }
        }
    }
    problems
}
