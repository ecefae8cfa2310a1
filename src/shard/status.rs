//! The operator page, on the admin address only: `/status` (a page that
//! refreshes itself from `/status.json`), and `/schema/<mapping>` (the
//! mapping's schema as `.avsc`). Everything it shows is read from atomics
//! the shards and sinks keep anyway, plus a history the admin shard
//! samples every few seconds; no request path takes part.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::Runtime;
use crate::avro::JsonWriter;
use crate::event::pixel::millis_since_epoch;
use crate::lifecycle::Phase;
use crate::metrics::Counter;
use crate::plan::SinkId;

/// How often the history is sampled, and how many samples it keeps (ten minutes).
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const SAMPLES: usize = 120;

/// What the page shows besides counters, fixed for a generation.
pub struct StatusInfo {
    /// The resolved configuration; client properties show their keys only.
    pub plan: String,
    /// Each mapping: name, schema (`.avsc` text) and sinks.
    pub mappings: Vec<MappingStatus>,
    /// For each sink, how its records read as JSON.
    pub sink_json: Vec<JsonWriter>,
}

/// One mapping as the page shows it.
pub struct MappingStatus {
    /// Its name.
    pub name: String,
    /// Its schema, as `.avsc` text.
    pub schema: String,
    /// The sinks it writes.
    pub sinks: Vec<SinkId>,
}

/// Counter totals at one moment.
#[derive(Clone)]
struct Sample {
    at_ms: i64,
    /// Events by source name (of the generation running then).
    sources: Vec<(String, u64)>,
    records: u64,
    dropped: u64,
}

/// The admin shard's history of samples, oldest first.
#[derive(Default)]
pub struct History {
    samples: RefCell<VecDeque<Sample>>,
}

/// Records dropped before a sink, by cause label.
const DROPS: [(Counter, &str); 9] = [
    (Counter::RejectedPartyId, "invalid party id"),
    (Counter::RejectedSessionId, "invalid session id"),
    (Counter::RejectedIncomplete, "incomplete"),
    (Counter::RejectedInvalidBody, "invalid JSON body"),
    (Counter::DiscardedCorrupt, "corrupt, discarded"),
    (Counter::DiscardedDuplicate, "duplicate, discarded"),
    (Counter::RecordsMappingFailed, "mapping error"),
    (Counter::RecordsQueueFull, "sink queue full"),
    (Counter::DurableLost, "not durable (503)"),
];

impl History {
    /// Adds a sample of `rt`'s counters now.
    pub fn sample(&self, rt: &Runtime) {
        let r = &rt.registry;
        let generation = rt.generation();
        let sources = generation.events.events_by_source().into_iter().map(|(n, c)| (n.to_owned(), c)).collect();
        let sample = Sample {
            at_ms: millis_since_epoch(SystemTime::now()),
            sources,
            records: r.total(Counter::RecordsMapped),
            dropped: DROPS.iter().map(|(c, _)| r.total(*c)).sum(),
        };
        let mut samples = self.samples.borrow_mut();
        if samples.len() == SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// The page's data: a JSON document.
    pub fn document(&self, rt: &Runtime) -> String {
        let r = &rt.registry;
        let generation = rt.generation();
        let status = &generation.status;
        let phase = match rt.lifecycle.phase() {
            Phase::Running => "running",
            Phase::Draining => "draining",
            Phase::Stopping => "stopping",
        };
        // Rates per second between consecutive samples.
        let samples = self.samples.borrow();
        let rates: Vec<Value> = samples
            .iter()
            .zip(samples.iter().skip(1))
            .map(|(a, b)| {
                let secs = (b.at_ms.saturating_sub(a.at_ms)).max(1) as f64 / 1000.0;
                let per_s = |x: u64, y: u64| (y.saturating_sub(x) as f64 / secs * 10.0).round() / 10.0;
                // A source new in `b` (a reload added it) counts from zero;
                // counts that a reload started over count as none.
                let sources: serde_json::Map<String, Value> = b
                    .sources
                    .iter()
                    .map(|(name, y)| {
                        let x = a.sources.iter().find(|(n, _)| n == name).map_or(0, |(_, x)| *x);
                        (name.clone(), json!(per_s(x, *y)))
                    })
                    .collect();
                json!({
                    "at": b.at_ms,
                    "sources": sources,
                    "records": per_s(a.records, b.records),
                    "dropped": per_s(a.dropped, b.dropped),
                })
            })
            .collect();
        let sinks: Vec<Value> = generation
            .sinks
            .iter()
            .enumerate()
            .map(|(id, lanes)| {
                let (name, m) = (&lanes.name, &lanes.metrics);
                let json = &status.sink_json[id];
                let recent: Vec<Value> = m
                    .recent
                    .load()
                    .iter()
                    .filter_map(|datum| {
                        let mut text = Vec::new();
                        json.write(datum, &mut text).ok()?;
                        serde_json::from_slice(&text).ok()
                    })
                    .collect();
                json!({
                    "name": name,
                    "healthy": m.is_healthy(),
                    "queued": m.queued_total(),
                    "delivered": m.delivered.load(Ordering::Relaxed),
                    "failed": m.failed.load(Ordering::Relaxed),
                    "retried": m.retried.load(Ordering::Relaxed),
                    "files_published": m.files_published.load(Ordering::Relaxed),
                    "spooled": m.spooled.load(Ordering::Relaxed),
                    "recent": recent,
                })
            })
            .collect();
        let mappings: Vec<Value> = status
            .mappings
            .iter()
            .map(|m| {
                let sinks: Vec<&str> = m.sinks.iter().map(|s| generation.sinks[s.0].name.as_str()).collect();
                json!({ "name": m.name, "sinks": sinks, "schema": format!("/schema/{}", m.name) })
            })
            .collect();
        let drops: serde_json::Map<String, Value> =
            DROPS.iter().map(|(c, label)| ((*label).to_owned(), json!(r.total(*c)))).collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "started": millis_since_epoch(rt.started),
            "generation": generation.number,
            "now": millis_since_epoch(SystemTime::now()),
            "phase": phase,
            "shards": r.shards.len(),
            "totals": {
                "browser events": r.total(Counter::EventsReceived),
                "json events": r.total(Counter::EventsReceivedJson),
                "records": r.total(Counter::RecordsMapped),
                "duplicates": r.total(Counter::EventsDuplicate),
                "corrupt": r.total(Counter::EventsCorrupt),
                "dead letters": r.total(Counter::DeadLetters),
                "connections": r.total(Counter::ConnectionsAccepted),
            },
            "drops": drops,
            "sources": generation.events.events_by_source().into_iter().map(|(n, c)| json!({"name": n, "events": c})).collect::<Vec<_>>(),
            "rates": rates,
            "sample_every_s": SAMPLE_EVERY.as_secs(),
            "sinks": sinks,
            "mappings": mappings,
            "config": status.plan,
        })
        .to_string()
    }
}

/// The schema of mapping `name`, as `.avsc` text.
pub fn schema(rt: &Runtime, name: &str) -> Option<String> {
    rt.generation().status.mappings.iter().find(|m| m.name == name).map(|m| m.schema.clone())
}
