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
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::avro::{JsonWriter, Unions};
use crate::batch::{SinkLanes, SinkMessage};
use crate::config::JsonUnions;
use crate::metrics::{Part, SinkMetrics};
use crate::plan::{FilePlan, Format, SinkKind, SinkPlan, StorePlan};

/// How long a flush thread lets batches gather after it took one, when
/// its lane is empty and no answer waits for the thread.
const GATHER: Duration = Duration::from_millis(1);

/// Lets batches gather for [`GATHER`] after a fast-mode batch (`durable`
/// false) when the lane is empty. A thread blocked on its lane is woken by
/// every batch: below saturation each request is its own round, and each
/// hand-off cost a futex wake-up, two context switches and crossbeam's
/// spinning on the shard's core (a fifth of the process's CPU at 30,000
/// requests a second). A sleeping thread is not woken: the shard's send
/// is a plain enqueue, and the thread takes what gathered in one go. In
/// durable mode answers wait for the thread, so it does not sleep.
pub(crate) fn gather(rx: &Receiver<SinkMessage>, durable: bool) {
    if !durable && rx.is_empty() {
        std::thread::sleep(GATHER);
    }
}

/// One running sink: what shards send to, its flush threads, and what it
/// was started from (to tell at a reload whether it can stay).
pub struct RunningSink {
    plan: SinkPlan,
    /// Its schema's canonical form.
    schema: String,
    lanes: SinkLanes,
    threads: Vec<JoinHandle<()>>,
    /// When its flush threads that deliver over the network must give up.
    deadline: Arc<DrainDeadline>,
}

impl RunningSink {
    /// Tells its flush threads that no more records will come, with
    /// `deadline` for what they hold.
    fn stop(&self, deadline: Instant) {
        self.deadline.start(deadline);
        for lane in &self.lanes.lanes {
            let _ = lane.send(SinkMessage::Drain);
        }
    }

    fn join(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// The running sinks, by [`SinkId`].
#[derive(Default)]
pub struct Sinks {
    running: Vec<RunningSink>,
}

/// Sinks a reload replaced or removed, to drain once no shard sends to them.
pub struct Retired {
    sinks: Vec<RunningSink>,
}

impl Retired {
    /// How many sinks left.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether none left.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Drains them as at shutdown: each flushes and publishes what it
    /// holds, or gives up at `deadline` what it cannot deliver.
    pub fn drain(self, deadline: Instant) {
        Sinks { running: self.sinks }.drain(deadline);
    }
}

impl Sinks {
    /// The sending side of each sink, by [`SinkId`].
    pub fn lanes(&self) -> Vec<SinkLanes> {
        self.running.iter().map(|r| r.lanes.clone()).collect()
    }

    /// Tells every flush thread that no more records will come, and waits
    /// until each has flushed and published what it holds, or until
    /// `deadline` for sinks that deliver over the network. Call only after
    /// every shard has stopped.
    pub fn drain(self, deadline: Instant) {
        for r in &self.running {
            r.stop(deadline);
        }
        for r in self.running {
            r.join();
        }
    }

    /// Moves to the sinks of a new plan (`schemas` by [`SinkId`]): a sink
    /// with the same plan and schema keeps running as it is, the others
    /// start. Returns the sinks left behind. On failure nothing changes.
    ///
    /// # Errors
    /// A sink that cannot start, or a Kafka sink with a spool that would
    /// change (its spool directory cannot be shared by two producers).
    pub fn reload(&mut self, plans: &[SinkPlan], schemas: &[apache_avro::Schema]) -> Result<Retired, String> {
        let mut old = std::mem::take(&mut self.running);
        let mut next: Vec<RunningSink> = Vec::with_capacity(plans.len());
        let mut started = Vec::new();
        for (id, plan) in plans.iter().enumerate() {
            let schema = schemas[id].canonical_form();
            if let Some(pos) = old.iter().position(|r| r.plan == *plan && r.schema == schema) {
                next.push(old.remove(pos));
                continue;
            }
            let before = old.iter().find(|r| r.plan.name == plan.name);
            let result = match before.map(|r| &r.plan.kind) {
                Some(SinkKind::Kafka(k)) if k.spool.is_some() => Err(format!(
                    "sink {}: a Kafka sink with a spool changes only with a restart (its spool cannot be shared)",
                    plan.name
                )),
                // Only a new sink takes over what an earlier run left
                // staged; a changed one's files belong to its old threads.
                _ => start_one(plan, schemas[id].clone(), before.is_none()),
            };
            match result {
                Ok(sink) => {
                    started.push(id);
                    next.push(sink);
                }
                Err(e) => {
                    // Undo: the new ones stop, the old ones stay.
                    let (new, kept): (Vec<_>, Vec<_>) =
                        next.into_iter().enumerate().partition(|(i, _)| started.contains(i));
                    Retired { sinks: new.into_iter().map(|(_, s)| s).collect() }.drain(Instant::now());
                    self.running = kept.into_iter().map(|(_, s)| s).chain(old).collect();
                    return Err(e);
                }
            }
        }
        self.running = next;
        Ok(Retired { sinks: old })
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

/// Starts every sink of the plan, each taking over what an earlier run
/// left staged. `schemas[id]` is the schema the mappings writing that sink
/// use.
///
/// # Errors
/// A sink that cannot start: its directories cannot be created, or
/// librdkafka refuses the producer properties.
pub fn start(plans: &[SinkPlan], schemas: &[apache_avro::Schema]) -> Result<Sinks, String> {
    let mut sinks = Sinks::default();
    for (id, plan) in plans.iter().enumerate() {
        match start_one(plan, schemas[id].clone(), true) {
            Ok(sink) => sinks.running.push(sink),
            Err(e) => {
                sinks.drain(Instant::now());
                return Err(e);
            }
        }
    }
    Ok(sinks)
}

/// Starts one sink; with `recover`, its first lane publishes what an
/// earlier run left in its staging directory.
fn start_one(plan: &SinkPlan, schema: apache_avro::Schema, recover: bool) -> Result<RunningSink, String> {
    let deadline = Arc::new(DrainDeadline::default());
    let name = &plan.name;
    let metrics = Arc::new(SinkMetrics::new(plan.lanes));
    let mut leftovers = match &plan.kind {
        SinkKind::File(file) => {
            check_remote_store(name, file, &metrics)?;
            if recover {
                file::recover(name, file).map_err(|e| format!("sink {name}: {e}"))?
            } else {
                Vec::new()
            }
        }
        SinkKind::Kafka(_) => Vec::new(),
    };
    // Built once for the sink, before any of its threads starts.
    let json = json_writer(plan, &schema)?;
    let mut senders = Vec::with_capacity(plan.lanes);
    let mut threads = Vec::with_capacity(plan.lanes);
    for lane in 0..plan.lanes {
        // The bound is in records, enforced by `SinkLanes::capacity`
        // before every send; as each batch holds at least one record the
        // channel never holds more than `buffer_size` batches. A channel
        // bounded in batches instead would either preallocate that many
        // slots or drop single-record batches long before the record
        // bound under light load.
        let (tx, rx) = crossbeam_channel::unbounded::<SinkMessage>();
        senders.push(tx);
        let spawned = match &plan.kind {
            SinkKind::File(file) => {
                let leftovers = std::mem::take(&mut leftovers);
                let format = match &json {
                    None => file::writer::FileFormat::Avro(schema.clone()),
                    Some(json) => file::writer::FileFormat::Json(json.clone()),
                };
                file::spawn(name, lane, file, format, leftovers, rx, metrics.clone(), deadline.clone())
            }
            SinkKind::Kafka(kafka) => {
                let json = json.clone();
                let lane = kafka::KafkaLane { sink: name.clone(), lane, lanes: plan.lanes, kafka: kafka.clone(), json };
                kafka::spawn(lane, rx, metrics.clone(), deadline.clone())
            }
        };
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                let lanes = SinkLanes { name: name.clone(), lanes: senders, capacity: 0, metrics };
                let partial = RunningSink { plan: plan.clone(), schema: String::new(), lanes, threads, deadline };
                partial.stop(Instant::now());
                partial.join();
                return Err(e);
            }
        }
    }
    Ok(RunningSink {
        plan: plan.clone(),
        schema: schema.canonical_form(),
        lanes: SinkLanes { name: name.clone(), lanes: senders, capacity: plan.buffer_size as u64, metrics },
        threads,
        deadline,
    })
}

/// The JSON writer of a sink with `format = "json"`.
fn json_writer(plan: &SinkPlan, schema: &apache_avro::Schema) -> Result<Option<JsonWriter>, String> {
    match plan.format {
        Format::Avro => Ok(None),
        Format::Json(unions) => {
            let unions = match unions {
                JsonUnions::Tagged => Unions::Tagged,
                JsonUnions::Plain => Unions::Plain,
            };
            JsonWriter::new(schema, unions).map(Some).map_err(|e| format!("sink {}: {e}", plan.name))
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
            metrics.set_healthy(Part::Store, false);
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
