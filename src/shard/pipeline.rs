//! The shard's [`Service`]: routes a request and, for events, runs every
//! stage in order (event → enrich → mapping → avro → batch). This is the
//! only module that joins the stages.

use std::cell::RefCell;
use std::sync::Arc;
use std::time::Instant;

use crate::assets::{accepts_gzip, Tag, TEST_PAGE};
use crate::batch::ShardBatches;
use crate::enrich::dedup::Probe;
use crate::enrich::forwarded::forwarded_for;
use crate::enrich::useragent::UserAgentCache;
use crate::event::pixel::PixelScratch;
use crate::event::{json, Event, Rejected};
use crate::http::{self, DateCache, Method, Request, Response, Service, Status};
use crate::lifecycle::{PING_OK, PING_SHUTTING_DOWN};
use crate::mapping::{Dropped, Inputs, Scratch};
use crate::metrics::{Counter, ShardMetrics};

use super::commit::{GroupCommit, Ticket};
use super::{Endpoint, Routes, Runtime};

/// The fixed ETag of the pixel; a browser revalidating it gets a 304 and
/// the request is not logged as an event.
pub const PIXEL_ETAG: &str = "\"6b3edc43-20ec-4078-bc47-e965dd76b88a\"";

/// A transparent 1x1 GIF.
pub const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Cache headers of the pixel (and its 304), exactly as the original sends them.
const PIXEL_HEADERS: &[&str] = &[
    "ETag: \"6b3edc43-20ec-4078-bc47-e965dd76b88a\"\r\n",
    "Cache-Control: private, no-cache, proxy-revalidate\r\n",
    "Pragma: no-cache\r\n",
    "Expires: Fri, 14 Apr 1995 11:30:00 GMT\r\n",
];

/// Mutable per-shard state of the stages.
struct Stages {
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
    /// The duplicate memory's UTF-16 key.
    dedup_key: Vec<u8>,
    /// Mapping scripts' per-event buffers.
    mapping: Scratch,
    last_mapping_warning: Option<Instant>,
}

/// One shard's request handler.
pub struct Pipeline {
    rt: Arc<Runtime>,
    /// The public routes, or the admin address's.
    admin: bool,
    metrics: Arc<ShardMetrics>,
    date: DateCache,
    stages: RefCell<Stages>,
    commit: GroupCommit,
}

impl Pipeline {
    /// The pipeline of a shard whose counters are `metrics`.
    pub fn new(rt: Arc<Runtime>, metrics: Arc<ShardMetrics>) -> Self {
        let stages = Stages {
            pixel: PixelScratch::default(),
            after: AfterParse {
                user_agents: UserAgentCache::new(rt.user_agent_cache_size),
                batches: ShardBatches::new(&rt.sinks, metrics.clone()),
                record: Vec::with_capacity(1024),
                forwarded: Vec::with_capacity(40),
                dedup_key: Vec::with_capacity(256),
                mapping: Scratch::default(),
                last_mapping_warning: None,
            },
        };
        Self {
            rt,
            admin: false,
            metrics,
            date: DateCache::default(),
            stages: RefCell::new(stages),
            commit: GroupCommit::default(),
        }
    }

    /// The handler of the admin address: metrics and probes only.
    pub fn new_admin(rt: Arc<Runtime>, metrics: Arc<ShardMetrics>) -> Self {
        Self { admin: true, ..Self::new(rt, metrics) }
    }

    fn routes(&self) -> &Routes {
        if self.admin {
            &self.rt.admin_routes
        } else {
            &self.rt.routes
        }
    }

    /// The flusher task's body: hand off batches whenever a connection waits.
    pub async fn run_flusher(&self) {
        loop {
            self.commit.round_wanted().await;
            self.stages.borrow_mut().after.batches.hand_off_all();
            self.commit.complete_round();
        }
    }

    /// Hands off whatever is still batched (at shutdown).
    pub fn flush_now(&self) {
        self.stages.borrow_mut().after.batches.hand_off_all();
        self.commit.complete_round();
    }

    /// Why the collector should not get traffic now, if it should not:
    /// starting, draining, or a sink that cannot deliver.
    fn not_ready(&self) -> Option<String> {
        if !self.rt.lifecycle.is_live() {
            return Some("not ready: shutting down".into());
        }
        if self.rt.listening.load(std::sync::atomic::Ordering::Relaxed) < self.rt.registry.shards.len() {
            return Some("not ready: starting".into());
        }
        let failing: Vec<&str> =
            self.rt.registry.sinks.iter().filter(|(_, m)| !m.is_healthy()).map(|(n, _)| n.as_str()).collect();
        (!failing.is_empty()).then(|| format!("not ready: sink(s) failing: {}", failing.join(", ")))
    }

    /// Runs a browser event through every stage; returns the ticket to wait
    /// for when a record was batched.
    fn browser_event(&self, req: &Request<'_>, source: usize) -> Option<Ticket> {
        self.metrics.inc(Counter::EventsReceived);
        let mut stages = self.stages.borrow_mut();
        let Stages { pixel, after } = &mut *stages;
        match pixel.parse(req, source) {
            Ok(parsed) => {
                // The duplicate memory's slot loads while the checksum is hashed.
                let probe = self.probe_duplicates(parsed.event(), after);
                self.enrich_map_batch(parsed.verify(), probe, req, after)
            }
            Err(reason) => self.rejected_event(req, reason),
        }
    }

    /// Runs a JSON event (body already framed and size-checked) through every stage.
    fn json_event(&self, req: &Request<'_>, source: usize, party: &str) -> Option<Ticket> {
        self.metrics.inc(Counter::EventsReceivedJson);
        let body = match json::parse_body(req.body) {
            Ok(b) => b,
            Err(reason) => return self.rejected_event(req, reason),
        };
        match json::event(&body, party, req, source) {
            Ok(event) => {
                let after = &mut self.stages.borrow_mut().after;
                let probe = self.probe_duplicates(&event, after);
                self.enrich_map_batch(event, probe, req, after)
            }
            Err(reason) => self.rejected_event(req, reason),
        }
    }

    fn rejected_event(&self, req: &Request<'_>, reason: Rejected) -> Option<Ticket> {
        self.metrics.inc(match reason {
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
        None
    }

    /// Starts the duplicate memory's lookup of `event`; enrichment finishes it.
    fn probe_duplicates(&self, event: &Event<'_>, after: &mut AfterParse) -> Probe {
        self.rt.duplicates.probe(event.party_id, event.session_id, event.event_id, &mut after.dedup_key)
    }

    /// The stages after parsing: duplicate memory, proxy address, user
    /// agent, every mapping of the source, encoding, batching.
    fn enrich_map_batch<'a>(
        &self,
        mut event: Event<'a>,
        probe: Probe,
        req: &'a Request<'a>,
        after: &'a mut AfterParse,
    ) -> Option<Ticket> {
        let m = &self.metrics;
        let AfterParse { user_agents, batches, record, forwarded, mapping: scratch, last_mapping_warning, .. } = after;
        if event.corrupt {
            m.inc(Counter::EventsCorrupt);
        }
        event.duplicate = self.rt.duplicates.check(probe);
        if event.duplicate {
            m.inc(Counter::EventsDuplicate);
        }
        if self.rt.use_x_forwarded_for {
            if let Some(host) = forwarded_for(req.headers_named("x-forwarded-for"), forwarded) {
                event.remote_host = host;
            }
        }
        let user_agent = event.user_agent.map(|a| user_agents.get(a));
        let party_hash = batches.party_hash(event.party_id);
        let mut batched = false;
        let inputs = Inputs { event: &event, user_agent, geo: self.rt.geo.as_deref() };
        for &mi in &self.rt.mappings_by_source[event.source] {
            let mapping = &self.rt.mappings[mi];
            record.clear();
            match mapping.map_into(inputs, scratch, record) {
                Ok(()) => {}
                Err(Dropped::Corrupt) => {
                    m.inc(Counter::DiscardedCorrupt);
                    continue;
                }
                Err(Dropped::Duplicate) => {
                    m.inc(Counter::DiscardedDuplicate);
                    continue;
                }
                Err(Dropped::Invalid(error)) => {
                    m.inc(Counter::RecordsMappingFailed);
                    if crate::metrics::log_due(last_mapping_warning) {
                        let field = mapping.layout.fields.get(error.field()).map_or("?", |f| f.name.as_str());
                        tracing::error!(mapping = %mapping.name, ?error, field, "Cannot complete record. Dropping it.");
                    }
                    continue;
                }
            }
            for &sink in &mapping.sinks {
                batches.push(sink, party_hash, event.party_id, record, event.timestamp);
            }
            m.inc(Counter::RecordsMapped);
            batched = true;
        }
        m.set(Counter::UserAgentCacheHits, user_agents.hits);
        m.set(Counter::UserAgentCacheMisses, user_agents.misses);
        m.set(Counter::MappingJsonMismatches, scratch.json_mismatches);
        batched.then(|| self.commit.ticket())
    }
}

/// Whether an `If-None-Match` header names `etag` (weak comparison, lists allowed).
fn matches_etag(req: &Request<'_>, etag: &str) -> bool {
    req.headers_named("if-none-match").any(|v| {
        v.split(|&b| b == b',').any(|tag| {
            let tag = tag.trim_ascii();
            let tag = tag.strip_prefix(b"W/").unwrap_or(tag);
            tag == etag.as_bytes()
        })
    })
}

/// Exactly one `Content-Type`, and it is `application/json` (parameters such
/// as `charset=utf-8` allowed; the original refused them).
fn is_json_content_type(req: &Request<'_>) -> bool {
    let mut types = req.headers_named("content-type");
    match (types.next(), types.next()) {
        (Some(value), None) => {
            let media = value.split(|&b| b == b';').next().unwrap_or_default();
            media.trim_ascii().eq_ignore_ascii_case(b"application/json")
        }
        _ => false,
    }
}

/// Answers a tag request: the gzip variant when the client takes it, 304
/// when it already has this variant.
fn serve_tag(tag: &Tag, req: &Request<'_>, res: &mut Response<'_>) {
    let (body, etag, headers) = match &tag.gzip {
        Some(gz) if accepts_gzip(req.headers_named("accept-encoding")) => (gz, &tag.gzip_etag, &tag.gzip_headers),
        _ => (&tag.body, &tag.etag, &tag.plain_headers),
    };
    if matches_etag(req, etag) {
        res.send(Status::NOT_MODIFIED, &[headers], None, &[]);
    } else {
        res.send(Status::OK, &[headers], None, body);
    }
}

fn method_not_allowed(req: &Request<'_>, res: &mut Response<'_>, allow: &str) {
    let body = format!("HTTP method {} not allowed.", req.method_str);
    res.text(Status::METHOD_NOT_ALLOWED, &[allow], &body);
}

impl Service for Pipeline {
    type Ticket = Ticket;

    fn body_limit(&self, path: &str, default: usize) -> usize {
        match self.routes().get(path) {
            Some(Endpoint::JsonEvent { source }) => self.rt.json[*source].as_ref().map_or(default, |j| j.max_body),
            _ => default,
        }
    }

    fn call(&self, req: &Request<'_>, res: &mut Response<'_>) -> Option<Ticket> {
        if self.rt.debug_requests {
            tracing::debug!(method = req.method_str, path = req.path, query = req.query.unwrap_or(""), peer = %req.peer, "Request.");
        }
        let m = &self.metrics;
        match self.routes().get(req.path) {
            Some(Endpoint::BrowserEvent { source }) => {
                m.inc(Counter::RequestsEvent);
                // `navigator.sendBeacon` POSTs the same query, when the source allows it.
                let beacon = req.method == Method::Post && self.rt.beacon[*source];
                if req.method != Method::Get && !beacon {
                    m.inc(Counter::RequestsMethodNotAllowed);
                    method_not_allowed(req, res, "Allow: GET\r\n");
                    return None;
                }
                if !beacon && matches_etag(req, PIXEL_ETAG) {
                    m.inc(Counter::EventsNotModified);
                    res.send(Status::NOT_MODIFIED, PIXEL_HEADERS, None, &[]);
                    return None;
                }
                let ticket = self.browser_event(req, *source);
                if beacon {
                    res.send(Status::NO_CONTENT, &[], None, &[]);
                } else {
                    res.send(Status::OK, PIXEL_HEADERS, Some("image/gif"), PIXEL_GIF);
                }
                ticket
            }
            Some(Endpoint::JsonEvent { source }) => {
                m.inc(Counter::RequestsJson);
                let Some(endpoint) = &self.rt.json[*source] else { return None };
                if req.method != Method::Post {
                    m.inc(Counter::RequestsMethodNotAllowed);
                    method_not_allowed(req, res, "Allow: POST\r\n");
                    return None;
                }
                if !is_json_content_type(req) {
                    res.text(Status::UNSUPPORTED_MEDIA_TYPE, &[], "Content type must be application/json.");
                    return None;
                }
                let Some(party) = json::party_id(req.query, &endpoint.party_parameter).filter(|_| !req.body.is_empty())
                else {
                    m.inc(if req.body.is_empty() { Counter::RejectedInvalidBody } else { Counter::RejectedPartyId });
                    res.text(Status::BAD_REQUEST, &[], "");
                    return None;
                };
                let ticket = self.json_event(req, *source, &party);
                res.send(Status::NO_CONTENT, &[], None, &[]);
                ticket
            }
            Some(Endpoint::Tag { source }) => {
                m.inc(Counter::RequestsTag);
                if req.method != Method::Get {
                    m.inc(Counter::RequestsMethodNotAllowed);
                    method_not_allowed(req, res, "Allow: GET\r\n");
                    return None;
                }
                if let Some(tag) = &self.rt.tags[*source] {
                    serve_tag(tag, req, res);
                }
                None
            }
            Some(Endpoint::TestPage) => {
                m.inc(Counter::RequestsTestPage);
                if matches!(req.method, Method::Get | Method::Head) {
                    res.send(Status::OK, &[], Some("text/html; charset=utf-8"), TEST_PAGE.as_bytes());
                } else {
                    m.inc(Counter::RequestsMethodNotAllowed);
                    method_not_allowed(req, res, "Allow: GET, HEAD\r\n");
                }
                None
            }
            Some(Endpoint::Ping) => {
                m.inc(Counter::RequestsPing);
                if self.rt.lifecycle.is_live() {
                    res.text(Status::OK, &[], PING_OK);
                } else {
                    res.text(Status::SERVICE_UNAVAILABLE, &[], PING_SHUTTING_DOWN);
                }
                None
            }
            Some(Endpoint::Ready) => {
                m.inc(Counter::RequestsReady);
                match self.not_ready() {
                    None => res.text(Status::OK, &[], "ready"),
                    Some(why) => res.text(Status::SERVICE_UNAVAILABLE, &[], &why),
                }
                None
            }
            Some(Endpoint::Metrics) => {
                m.inc(Counter::RequestsMetrics);
                let body = self.rt.registry.render();
                res.send(Status::OK, &[], Some("text/plain; version=0.0.4; charset=utf-8"), body.as_bytes());
                None
            }
            None => {
                m.inc(Counter::RequestsNotFound);
                res.text(Status::NOT_FOUND, &[], "Not found.");
                None
            }
        }
    }

    async fn settle(&self, ticket: Ticket) {
        self.commit.wait(ticket).await;
    }

    fn draining(&self) -> bool {
        self.rt.lifecycle.phase() >= crate::lifecycle::Phase::Stopping
    }

    fn date(&self) -> &DateCache {
        &self.date
    }

    fn rejected(&self, error: http::Error) {
        self.metrics.inc(match error {
            http::Error::Malformed | http::Error::BadFraming => Counter::ErrorMalformed,
            http::Error::UriTooLong => Counter::ErrorUriTooLong,
            http::Error::HeaderTooLarge => Counter::ErrorHeaderTooLarge,
            http::Error::BodyTooLarge => Counter::ErrorBodyTooLarge,
            http::Error::HeadTimeout => Counter::ErrorTimeout,
            http::Error::UnsupportedTransferEncoding => Counter::ErrorUnsupportedEncoding,
        });
    }
}
