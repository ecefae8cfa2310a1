//! The event stages of one shard, without HTTP: a parsed request becomes an
//! event (event), is checked against the duplicate memory and enriched with
//! the forwarded address and the user agent (enrich), goes through every
//! mapping of its source (mapping, avro), and lands in the sinks' batches
//! (batch). This is the only module that joins the stages.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::avro::DeadLetter;
use crate::batch::ack::Round;
use crate::batch::{ShardBatches, SinkLanes};
use crate::enrich::anonymize;
use crate::enrich::dedup::{DuplicateMemory, Probe};
use crate::enrich::forwarded::forwarded_for;
use crate::enrich::geo::GeoDatabase;
use crate::enrich::useragent::UserAgentCache;
use crate::event::pixel::{millis_since_epoch, PixelScratch};
use crate::event::{json, Event, Rejected};
use crate::http::Request;
use crate::mapping::{Dropped, Inputs, Mapping, Scratch};
use crate::metrics::{Counter, ShardMetrics};
use crate::plan::{EnrichmentPlan, SinkId, SourceId};

/// What the stages know of a source.
#[derive(Debug, Clone)]
pub struct SourceStage {
    /// Its name, written in its dead letters and shown on the operator page.
    pub name: String,
    /// Where its dead letters go, if anywhere.
    pub dead_letters: Option<SinkId>,
}

/// What every shard's stages share, read-only: the compiled mappings, the
/// duplicate memory and the geo database.
pub struct EventStages {
    mappings: Vec<Mapping>,
    /// For each source, the positions in `mappings` of those that read it.
    by_source: Vec<Vec<usize>>,
    /// Each source's name and dead-letter sink.
    sources: Vec<SourceStage>,
    /// Each shard's events by source, registered when its stages start.
    by_source_counts: std::sync::Mutex<Vec<Arc<[AtomicU64]>>>,
    duplicates: Arc<DuplicateMemory>,
    geo: Option<Arc<GeoDatabase>>,
    use_x_forwarded_for: bool,
    anonymize_ip: bool,
    user_agent_cache_size: usize,
}

impl EventStages {
    /// The stages from the enrichment part of the plan, for `sources`. The
    /// duplicate memory outlives a reload.
    pub fn new(
        plan: &EnrichmentPlan,
        mappings: Vec<Mapping>,
        sources: Vec<SourceStage>,
        geo: Option<Arc<GeoDatabase>>,
        duplicates: Arc<DuplicateMemory>,
    ) -> Self {
        let by_source = (0..sources.len())
            .map(|s| {
                mappings.iter().enumerate().filter(|(_, m)| m.sources.contains(&SourceId(s))).map(|(i, _)| i).collect()
            })
            .collect();
        Self {
            mappings,
            by_source,
            sources,
            by_source_counts: std::sync::Mutex::default(),
            duplicates,
            geo,
            use_x_forwarded_for: plan.use_x_forwarded_for,
            anonymize_ip: plan.anonymize_ip,
            user_agent_cache_size: plan.user_agent_cache_size,
        }
    }

    /// Events received so far by each source, summed over the shards (of
    /// this generation: a reload starts them over).
    pub fn events_by_source(&self) -> Vec<(&str, u64)> {
        let rows = self.by_source_counts.lock().unwrap_or_else(|e| e.into_inner());
        self.sources
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), rows.iter().map(|r| r[i].load(Ordering::Relaxed)).sum()))
            .collect()
    }

    /// A new row of per-source counters for one shard's stages. Locks, but
    /// only when a shard starts or moves to a generation.
    fn source_counters(&self) -> Arc<[AtomicU64]> {
        let row: Arc<[AtomicU64]> = self.sources.iter().map(|_| AtomicU64::new(0)).collect();
        self.by_source_counts.lock().unwrap_or_else(|e| e.into_inner()).push(row.clone());
        row
    }

    /// Whether client addresses are truncated before anything records them.
    pub fn anonymize_ip(&self) -> bool {
        self.anonymize_ip
    }

    /// The duplicate memory, for the next generation to keep.
    pub fn duplicates(&self) -> Arc<DuplicateMemory> {
        self.duplicates.clone()
    }
}

/// The ids of the last browser event whose checksum held, kept for the
/// answer's cookies.
#[derive(Debug, Default)]
pub struct EventIds {
    /// Party id, as recorded.
    pub party: String,
    /// Session id, as recorded.
    pub session: String,
    /// Whether an event set them since [`EventIds::clear`].
    pub seen: bool,
}

impl EventIds {
    /// Forgets the ids, keeping the buffers.
    pub fn clear(&mut self) {
        self.party.clear();
        self.session.clear();
        self.seen = false;
    }

    fn set(&mut self, party: &str, session: &str) {
        self.clear();
        self.party.push_str(party);
        self.session.push_str(session);
        self.seen = true;
    }
}

/// One shard's stages: the shared part and this shard's scratch state.
pub struct ShardStages {
    shared: Arc<EventStages>,
    metrics: Arc<ShardMetrics>,
    /// This shard's events by source.
    by_source: Arc<[AtomicU64]>,
    pixel: PixelScratch,
    after: AfterParse,
}

/// Stage state used once an event is parsed.
struct AfterParse {
    user_agents: UserAgentCache,
    batches: ShardBatches,
    /// One encoded record, copied into each sink's batch.
    record: Vec<u8>,
    /// The forwarded client address, as text.
    forwarded: Vec<u8>,
    /// The truncated client address, as text.
    anonymized: Vec<u8>,
    /// The duplicate memory's UTF-16 key.
    dedup_key: Vec<u8>,
    /// Mapping scripts' per-event buffers.
    mapping: Scratch,
    last_mapping_warning: Option<Instant>,
}

impl ShardStages {
    /// A shard's stages over `shared`, batching for `sinks`, counting in
    /// `metrics`; `durable` batches carry shares of the shard's round.
    pub fn new(shared: Arc<EventStages>, sinks: &[SinkLanes], metrics: Arc<ShardMetrics>, durable: bool) -> Self {
        let after = AfterParse {
            user_agents: UserAgentCache::new(shared.user_agent_cache_size),
            batches: ShardBatches::new(sinks, metrics.clone(), durable),
            record: Vec::with_capacity(1024),
            forwarded: Vec::with_capacity(40),
            anonymized: Vec::with_capacity(40),
            dedup_key: Vec::with_capacity(256),
            mapping: Scratch::default(),
            last_mapping_warning: None,
        };
        let by_source = shared.source_counters();
        Self { shared, metrics, by_source, pixel: PixelScratch::default(), after }
    }

    /// Hands every open batch to its sink and, in durable mode, closes the
    /// round they belong to.
    pub fn hand_off_all(&mut self) -> Option<Arc<Round>> {
        self.after.batches.hand_off_all();
        self.after.batches.close_round()
    }

    /// In durable mode, the round records batched now belong to.
    pub fn round(&self) -> Option<Arc<Round>> {
        self.after.batches.round()
    }

    /// Runs a pixel request of `source` through every stage; true when a
    /// record was batched. With `ids`, an event whose checksum holds leaves
    /// its party and session ids there (for the answer's cookies).
    pub fn browser_event(&mut self, req: &Request<'_>, source: SourceId, ids: Option<&mut EventIds>) -> bool {
        self.metrics.inc(Counter::EventsReceived);
        self.by_source[source.0].fetch_add(1, Ordering::Relaxed);
        let Self { shared, metrics, pixel, after, .. } = self;
        match pixel.parse(req, source) {
            Ok(parsed) => {
                // The duplicate memory's slot loads while the checksum is hashed.
                let probe = probe_duplicates(&shared.duplicates, parsed.event(), after);
                let event = parsed.verify();
                if let Some(ids) = ids.filter(|_| !event.corrupt) {
                    ids.set(event.party_id, event.session_id);
                }
                enrich_map_batch(shared, metrics, event, probe, req, after)
            }
            Err(reason) => rejected_event(shared, metrics, after, req, source, reason),
        }
    }

    /// Counts (and dead-letters) a browser event refused before it could
    /// be parsed (a batch line that is not a query string); true when a
    /// dead letter was batched.
    pub fn browser_refused(&mut self, req: &Request<'_>, source: SourceId, reason: Rejected) -> bool {
        self.metrics.inc(Counter::EventsReceived);
        self.by_source[source.0].fetch_add(1, Ordering::Relaxed);
        rejected_event(&self.shared, &self.metrics, &mut self.after, req, source, reason)
    }

    /// Counts (and dead-letters) a JSON request refused before its body
    /// was read as an event; true when a dead letter was batched.
    pub fn json_refused(&mut self, req: &Request<'_>, source: SourceId, reason: Rejected) -> bool {
        self.metrics.inc(Counter::EventsReceivedJson);
        self.by_source[source.0].fetch_add(1, Ordering::Relaxed);
        rejected_event(&self.shared, &self.metrics, &mut self.after, req, source, reason)
    }

    /// Runs a JSON request of `source` (body framed and size-checked, party
    /// id taken from the query) through every stage; true when a record was
    /// batched.
    pub fn json_event(&mut self, req: &Request<'_>, source: SourceId, party: &str) -> bool {
        self.metrics.inc(Counter::EventsReceivedJson);
        self.by_source[source.0].fetch_add(1, Ordering::Relaxed);
        let body = match json::parse_body(req.body) {
            Ok(b) => b,
            Err(reason) => return rejected_event(&self.shared, &self.metrics, &mut self.after, req, source, reason),
        };
        match json::event(&body, party, req, source) {
            Ok(event) => {
                let probe = probe_duplicates(&self.shared.duplicates, &event, &mut self.after);
                enrich_map_batch(&self.shared, &self.metrics, event, probe, req, &mut self.after)
            }
            Err(reason) => rejected_event(&self.shared, &self.metrics, &mut self.after, req, source, reason),
        }
    }
}

/// Counts a refused event and writes its dead letter; true when one was
/// batched.
fn rejected_event(
    shared: &EventStages,
    metrics: &ShardMetrics,
    after: &mut AfterParse,
    req: &Request<'_>,
    source: SourceId,
    reason: Rejected,
) -> bool {
    metrics.inc(match reason {
        Rejected::InvalidPartyId => Counter::RejectedPartyId,
        Rejected::InvalidSessionId => Counter::RejectedSessionId,
        Rejected::Incomplete => Counter::RejectedIncomplete,
        Rejected::InvalidBody => Counter::RejectedInvalidBody,
    });
    tracing::debug!(
        reason = reason.label(),
        path = req.path,
        query = req.query.unwrap_or(""),
        "Improper request. Event dropped."
    );
    let received = millis_since_epoch(req.received);
    let mut kept = Vec::new();
    let (remote_host, headers) = if shared.anonymize_ip {
        anonymize::apply(req.peer_host, req.headers, &mut after.anonymized, &mut kept)
    } else {
        (req.peer_host, req.headers)
    };
    let letter = Letter { reason: reason.label(), detail: None, timestamp: received, remote_host, headers };
    dead_letter(shared, metrics, &mut after.batches, &mut after.record, req, source, &letter)
}

/// What a dead letter says beyond its request.
struct Letter<'a> {
    reason: &'a str,
    detail: Option<&'a str>,
    timestamp: i64,
    remote_host: &'a str,
    /// The request's headers (without addresses when those are anonymised).
    headers: &'a [httparse::Header<'a>],
}

/// Batches a dead letter for `req` when its source has a dead-letter sink;
/// true when one was batched.
fn dead_letter(
    shared: &EventStages,
    metrics: &ShardMetrics,
    batches: &mut ShardBatches,
    record: &mut Vec<u8>,
    req: &Request<'_>,
    source: SourceId,
    letter: &Letter<'_>,
) -> bool {
    let SourceStage { name: source_name, dead_letters: Some(sink) } = &shared.sources[source.0] else { return false };
    record.clear();
    DeadLetter {
        reason: letter.reason,
        detail: letter.detail,
        timestamp: letter.timestamp,
        remote_host: letter.remote_host,
        source: source_name,
        method: req.method_str,
        path: req.path,
        query: req.query,
        body: req.body,
        headers: letter.headers,
    }
    .encode(record);
    let key = letter.remote_host;
    batches.push(*sink, batches.party_hash(key), key, record, letter.timestamp);
    metrics.inc(Counter::DeadLetters);
    true
}

/// Starts the duplicate memory's lookup of `event`; enrichment finishes it.
fn probe_duplicates(duplicates: &DuplicateMemory, event: &Event<'_>, after: &mut AfterParse) -> Probe {
    duplicates.probe(event.party_id, event.session_id, event.event_id, &mut after.dedup_key)
}

/// The stages after parsing: duplicate memory, proxy address, user agent,
/// every mapping of the source, encoding, batching.
fn enrich_map_batch<'a>(
    shared: &EventStages,
    m: &ShardMetrics,
    event: Event<'a>,
    probe: Probe,
    req: &'a Request<'a>,
    after: &'a mut AfterParse,
) -> bool {
    let AfterParse {
        user_agents, batches, record, forwarded, anonymized, mapping: scratch, last_mapping_warning, ..
    } = after;
    let mut kept_headers = Vec::new();
    let mut event: Event<'_> = event;
    if event.corrupt {
        m.inc(Counter::EventsCorrupt);
    }
    event.duplicate = shared.duplicates.check(probe);
    if event.duplicate {
        m.inc(Counter::EventsDuplicate);
    }
    if shared.use_x_forwarded_for {
        if let Some(host) = forwarded_for(req.headers_named("x-forwarded-for"), forwarded) {
            event.remote_host = host;
        }
    }
    // The geo lookup sees the whole address; nothing after it does.
    let geo_host = event.remote_host;
    if shared.anonymize_ip {
        (event.remote_host, event.headers) = anonymize::apply(geo_host, event.headers, anonymized, &mut kept_headers);
    }
    let user_agent = event.user_agent.map(|a| user_agents.get(a));
    let party_hash = batches.party_hash(event.party_id);
    let mut batched = false;
    // With a dead-letter sink, the first refusal of the event (however many
    // of its mappings refuse it) becomes its one dead letter.
    let dead_letters = shared.sources[event.source.0].dead_letters.is_some();
    let mut refused: Option<(&str, Option<String>)> = None;
    let inputs = Inputs { event: &event, user_agent, geo: shared.geo.as_deref(), geo_host };
    for &mi in &shared.by_source[event.source.0] {
        let mapping = &shared.mappings[mi];
        record.clear();
        match mapping.map_into(inputs, scratch, record) {
            Ok(()) => {}
            Err(Dropped::Corrupt) => {
                m.inc(Counter::DiscardedCorrupt);
                if dead_letters && refused.is_none() {
                    refused = Some(("corrupt", None));
                }
                continue;
            }
            Err(Dropped::Duplicate) => {
                m.inc(Counter::DiscardedDuplicate);
                continue;
            }
            Err(Dropped::Bot) => {
                m.inc(Counter::DiscardedBot);
                continue;
            }
            Err(Dropped::Invalid(error)) => {
                m.inc(Counter::RecordsMappingFailed);
                let field = mapping.layout.fields.get(error.field()).map_or("?", |f| f.name.as_str());
                if crate::metrics::log_due(last_mapping_warning) {
                    tracing::error!(mapping = %mapping.name, ?error, field, "Cannot complete record. Dropping it.");
                }
                if dead_letters && refused.is_none() {
                    let detail = format!("mapping {}: field {field} has no default and was left unset", mapping.name);
                    refused = Some(("mapping_error", Some(detail)));
                }
                continue;
            }
        }
        for &sink in &mapping.sinks {
            // A record its sink's queue cannot take becomes a dead letter
            // now, while its request is at hand.
            if dead_letters && !batches.fits(sink, party_hash) {
                m.inc(Counter::RecordsQueueFull);
                if refused.is_none() {
                    let detail =
                        format!("mapping {}: the queue of sink {} is full", mapping.name, batches.sink_name(sink));
                    refused = Some(("queue_full", Some(detail)));
                }
                continue;
            }
            batches.push(sink, party_hash, event.party_id, record, event.timestamp);
        }
        m.inc(Counter::RecordsMapped);
        batched = true;
    }
    if let Some((reason, detail)) = &refused {
        let detail = detail.as_deref();
        let letter = Letter {
            reason,
            detail,
            timestamp: event.timestamp,
            remote_host: event.remote_host,
            headers: event.headers,
        };
        batched |= dead_letter(shared, m, batches, record, req, event.source, &letter);
    }
    m.set(Counter::UserAgentCacheHits, user_agents.hits);
    m.set(Counter::UserAgentCacheMisses, user_agents.misses);
    m.set(Counter::MappingJsonMismatches, scratch.json_mismatches);
    batched
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value;
    use crossbeam_channel::Receiver;

    use super::*;
    use crate::avro::default_schema;
    use crate::batch::SinkMessage;
    use crate::mapping::default::DefaultMapping;
    use crate::mapping::Program;
    use crate::metrics::SinkMetrics;
    use crate::plan::SinkId;

    /// Stages with one built-in mapping per `(source, sinks)`, the sinks
    /// one lane each; returns the receivers of the sinks' lanes.
    fn stages(mappings: &[(usize, &[usize], bool)], sinks: usize) -> (ShardStages, Vec<Receiver<SinkMessage>>) {
        let layout = Arc::new(default_schema());
        let mappings = mappings
            .iter()
            .map(|&(source, to, discard_duplicates)| Mapping {
                sources: vec![SourceId(source)],
                sinks: to.iter().map(|&s| SinkId(s)).collect(),
                discard_duplicates,
                ..Mapping::standalone("m", layout.clone(), Program::Default(DefaultMapping::new(&layout).unwrap()))
            })
            .collect();
        let plan = EnrichmentPlan {
            duplicate_memory_size: 1024,
            user_agent_cache_size: 8,
            ip2geo_database: None,
            use_x_forwarded_for: false,
            anonymize_ip: false,
        };
        let shared = Arc::new(EventStages::new(
            &plan,
            mappings,
            ["a", "b"].map(|name| SourceStage { name: name.into(), dead_letters: None }).to_vec(),
            None,
            Arc::new(DuplicateMemory::new(1024)),
        ));
        let (lanes, rxs): (Vec<SinkLanes>, Vec<_>) = (0..sinks)
            .map(|i| {
                let (tx, rx) = crossbeam_channel::unbounded();
                let lanes = SinkLanes {
                    name: format!("s{i}"),
                    lanes: vec![tx],
                    capacity: 100,
                    metrics: Arc::new(SinkMetrics::new(1)),
                };
                (lanes, rx)
            })
            .unzip();
        (ShardStages::new(shared, &lanes, Arc::new(ShardMetrics::default()), false), rxs)
    }

    fn get(stages: &mut ShardStages, source: usize, query: &str) -> bool {
        let req = Request::test_get("/csc-event", query);
        stages.browser_event(&req, SourceId(source), None)
    }

    fn pixel(stages: &mut ShardStages, source: usize, location: &str) -> bool {
        get(stages, source, &format!("p=0%3Aa%3Ab&s=0%3Aa%3Ac&v=v&e=e{location}&c=1&n=t&f=f&l={location}&t=pageView"))
    }

    /// The `location` of every record handed to a sink.
    fn locations(rx: &Receiver<SinkMessage>) -> Vec<String> {
        let schema = default_schema().schema;
        let mut out = Vec::new();
        while let Ok(SinkMessage::Records(batch)) = rx.try_recv() {
            for i in 0..batch.len() {
                let value = apache_avro::from_avro_datum(&schema, &mut batch.value(i), None).unwrap();
                let Value::Record(fields) = value else { panic!("not a record") };
                let location = fields.iter().find(|(n, _)| n == "location").map(|(_, v)| v.clone());
                out.push(format!("{location:?}"));
            }
        }
        out
    }

    #[test]
    fn an_event_reaches_every_sink_of_every_mapping_of_its_source_and_no_other() {
        let (mut stages, rxs) = stages(&[(0, &[0, 1], false), (1, &[2], false)], 3);
        assert!(pixel(&mut stages, 0, "x"));
        stages.hand_off_all();
        for rx in &rxs[..2] {
            let got = locations(rx);
            assert_eq!(got.len(), 1);
            assert!(got[0].contains("\"x\""), "{got:?}");
        }
        assert!(locations(&rxs[2]).is_empty(), "the mapping of the other source did not run");
    }

    #[test]
    fn a_duplicate_is_dropped_by_a_mapping_that_discards_duplicates_and_counted() {
        let (mut stages, rxs) = stages(&[(0, &[0], true)], 1);
        assert!(pixel(&mut stages, 0, "y"));
        assert!(!pixel(&mut stages, 0, "y"), "the same event again maps to nothing");
        stages.hand_off_all();
        assert_eq!(locations(&rxs[0]).len(), 1);
        assert_eq!(stages.metrics.get(Counter::EventsDuplicate), 1);
        assert_eq!(stages.metrics.get(Counter::DiscardedDuplicate), 1);
    }

    #[test]
    fn an_incomplete_pixel_is_rejected_before_any_mapping() {
        let (mut stages, rxs) = stages(&[(0, &[0], false)], 1);
        assert!(!get(&mut stages, 0, "p=0%3Aa%3Ab"));
        stages.hand_off_all();
        assert!(locations(&rxs[0]).is_empty());
        assert_eq!(stages.metrics.get(Counter::RejectedSessionId), 1, "the first missing parameter is the session id");
    }
}
