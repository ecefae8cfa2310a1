//! The shard's [`Service`]: routes a request to its endpoint, answers
//! probes, the tag and the test page itself, and hands events to the
//! shard's [`ShardStages`]. An answer that acknowledges a batched event
//! waits for its batch's hand-off ([`GroupCommit`]), and in durable mode
//! for its sinks to make it durable.

use std::cell::{Ref, RefCell};
use std::rc::Rc;
use std::sync::Arc;

use crate::assets::{accepts_gzip, Tag, PIXEL_ETAG, PIXEL_GIF, PIXEL_HEADERS, STATUS_PAGE, TEST_PAGE};
use crate::enrich::anonymize;
use crate::event::{json, Rejected};
use crate::http::coding::{self, BodyError};
use crate::http::{self, DateCache, Method, Prepared, Request, Response, Service, Status};
use crate::lifecycle::{PING_OK, PING_SHUTTING_DOWN};
use crate::metrics::{Counter, ShardMetrics};
use crate::plan::Delivery;

use super::commit::{GroupCommit, Outcome, Ticket};
use super::cors::{Cors, Preflight};
use super::routes::{BrowserEndpoint, Endpoint, JsonEndpoint, Routes};
use super::stages::{EventIds, ShardStages};
use super::status::{self, History};
use super::{Generation, Runtime};

/// One shard's request handler.
pub struct ShardService {
    rt: Arc<Runtime>,
    /// The public routes, or the admin address's.
    admin: bool,
    /// The shard whose requests it answers (`None` for the admin address,
    /// which has no events).
    shard: Option<usize>,
    metrics: Arc<ShardMetrics>,
    date: DateCache,
    /// The generation it runs; it moves to a new one between requests.
    generation: RefCell<Arc<Generation>>,
    stages: RefCell<ShardStages>,
    commit: GroupCommit,
    /// The admin service's history for the operator page.
    history: Option<Rc<History>>,
    /// Header lines built for the answer at hand (cookies, CORS).
    headers: RefCell<String>,
    /// A compressed body, decoded.
    decoded: RefCell<Vec<u8>>,
    /// The ids the answer's cookies carry.
    ids: RefCell<EventIds>,
    /// The pixel's answer, its fixed lines written once.
    pixel: Prepared,
}

impl ShardService {
    /// The service of shard `shard`, whose counters are `metrics`.
    pub fn new(rt: Arc<Runtime>, metrics: Arc<ShardMetrics>, shard: usize) -> Self {
        let generation = rt.generation();
        let stages = stages_for(&rt, &generation, &metrics);
        Self {
            rt,
            admin: false,
            shard: Some(shard),
            metrics,
            date: DateCache::default(),
            generation: RefCell::new(generation),
            stages: RefCell::new(stages),
            commit: GroupCommit::default(),
            history: None,
            headers: RefCell::new(String::with_capacity(512)),
            decoded: RefCell::default(),
            ids: RefCell::default(),
            pixel: Prepared::new(Status::OK, PIXEL_HEADERS, Some("image/gif"), PIXEL_GIF),
        }
    }

    /// The handler of the admin address: metrics, probes and the operator
    /// page, which shows `history`.
    pub fn new_admin(rt: Arc<Runtime>, metrics: Arc<ShardMetrics>, history: Rc<History>) -> Self {
        Self { admin: true, shard: None, history: Some(history), ..Self::new(rt, metrics, 0) }
    }

    /// Moves to the runtime's current generation when a reload installed a
    /// new one: what the old one batched is handed to its sinks (and the
    /// answers waiting for it released), and the stages start over on the
    /// new mappings and sinks. Called between requests, so every event is
    /// handled by one generation whole.
    pub fn refresh(&self) {
        let number = self.rt.current_number();
        if number == self.generation.borrow().number {
            return;
        }
        let next = self.rt.generation();
        self.flush_now();
        *self.stages.borrow_mut() = stages_for(&self.rt, &next, &self.metrics);
        let number = next.number;
        *self.generation.borrow_mut() = next;
        if let Some(shard) = self.shard {
            self.rt.moved(shard, number);
        }
    }

    fn routes(&self) -> Ref<'_, Routes> {
        Ref::map(self.generation.borrow(), |g| if self.admin { &g.routes.admin } else { &g.routes.public })
    }

    /// The flusher task's body: hand off batches whenever a connection waits.
    pub async fn run_flusher(&self) {
        loop {
            self.commit.round_wanted().await;
            self.flush_now();
        }
    }

    /// The settler task's body (durable mode): answers wait for it.
    pub async fn run_settler(&self) {
        self.commit.run_settler().await;
    }

    /// The sweeper task's body (durable mode): answers that waited
    /// `timeout` for their sinks are sent as 503.
    pub async fn run_sweeper(&self, timeout: std::time::Duration) {
        self.commit.run_sweeper(timeout).await;
    }

    /// Hands off whatever is batched and releases the answers waiting for
    /// it (for the flusher, at a generation switch, and at shutdown).
    pub fn flush_now(&self) {
        let round = self.stages.borrow_mut().hand_off_all();
        self.commit.complete_round(round);
    }

    fn ticket(&self) -> Ticket {
        self.commit.ticket(self.stages.borrow().round())
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
        let sinks = self.rt.registry.sinks.load();
        let failing: Vec<&str> = sinks.iter().filter(|(_, m)| !m.is_healthy()).map(|(n, _)| n.as_str()).collect();
        (!failing.is_empty()).then(|| format!("not ready: sink(s) failing: {}", failing.join(", ")))
    }
}

impl ShardService {
    /// Runs one pixel query (or, for a batch, each line's) through the
    /// stages unless the browser opted out, and writes the answer's cookies
    /// into `self.headers`; true when a record was batched.
    fn browser_events<'q>(
        &self,
        endpoint: &BrowserEndpoint,
        req: &Request<'_>,
        queries: impl Iterator<Item = Option<&'q str>>,
    ) -> bool {
        let mut stages = self.stages.borrow_mut();
        let mut ids = self.ids.borrow_mut();
        ids.clear();
        let mut batched = false;
        let opted_out = endpoint.opt_out.signal(req);
        for query in queries {
            if let Some(signal) = opted_out {
                self.metrics.inc(signal);
                continue;
            }
            let line = Request { query, body: &[], ..*req };
            batched |= match query {
                Some(_) => stages.browser_event(&line, endpoint.source, endpoint.cookies.as_ref().map(|_| &mut *ids)),
                None => stages.browser_refused(&line, endpoint.source, Rejected::Incomplete),
            };
        }
        let mut headers = self.headers.borrow_mut();
        if let Some(cookies) = endpoint.cookies.as_ref().filter(|_| ids.seen) {
            cookies.write(&ids.party, &ids.session, req.received, &mut headers);
        }
        batched
    }

    /// A JSON event whose body is decoded.
    fn json_event(&self, endpoint: &JsonEndpoint, req: &Request<'_>, res: &mut Response<'_>) -> Option<Ticket> {
        let headers = self.headers.borrow();
        let Some(party) = json::party_id(req.query, &endpoint.party_parameter).filter(|_| !req.body.is_empty()) else {
            let reason = if req.body.is_empty() { Rejected::InvalidBody } else { Rejected::InvalidPartyId };
            let batched = self.stages.borrow_mut().json_refused(req, endpoint.source, reason);
            res.text_with(Status::BAD_REQUEST, &[], &headers, "");
            return batched.then(|| self.ticket());
        };
        let batched = self.stages.borrow_mut().json_event(req, endpoint.source, &party);
        res.send_with(Status::NO_CONTENT, &[], &headers, None, &[]);
        batched.then(|| self.ticket())
    }

    /// Answers what is not a `POST` to a CORS-capable endpoint: a preflight
    /// when the endpoint allows other origins, else 405. Starts the answer's
    /// header lines afresh; false when the request is answered.
    fn cors_checked(&self, cors: &Cors, req: &Request<'_>, res: &mut Response<'_>) -> bool {
        let mut headers = self.headers.borrow_mut();
        headers.clear();
        match req.method {
            Method::Post => return true,
            Method::Other if req.method_str == "OPTIONS" && cors.enabled() => {
                self.metrics.inc(Counter::RequestsPreflight);
                match cors.preflight(req, &mut headers) {
                    Preflight::Allowed => res.send_with(Status::NO_CONTENT, &[], &headers, None, &[]),
                    Preflight::Refused => res.text(Status::FORBIDDEN, &[], "Origin not allowed."),
                }
            }
            _ => {
                self.metrics.inc(Counter::RequestsMethodNotAllowed);
                let allow = if cors.enabled() { "Allow: POST, OPTIONS\r\n" } else { "Allow: POST\r\n" };
                method_not_allowed(req, res, allow);
            }
        }
        false
    }

    /// `req`'s body as its `Content-Encoding` says, decoded into `decoded`
    /// when compressed; `None` once a refusal (413, 415, 400) is answered.
    fn decode_body<'b>(
        &self,
        req: &Request<'b>,
        limit: usize,
        decoded: &'b mut Vec<u8>,
        res: &mut Response<'_>,
    ) -> Option<&'b [u8]> {
        let error = match coding::decode(req.body, req.headers_named("content-encoding"), limit, decoded) {
            Ok(body) => return Some(body),
            Err(e) => e,
        };
        let headers = self.headers.borrow();
        let (status, counter, text) = match error {
            BodyError::Unsupported => (
                Status::UNSUPPORTED_MEDIA_TYPE,
                Counter::ErrorUnsupportedMediaType,
                "Content-Encoding must be gzip, deflate or identity.",
            ),
            BodyError::TooLarge => {
                (Status::PAYLOAD_TOO_LARGE, Counter::ErrorDecodedTooLarge, "The decompressed body is too large.")
            }
            BodyError::Corrupt => (Status::BAD_REQUEST, Counter::ErrorMalformed, "The compressed body is corrupt."),
        };
        self.metrics.inc(counter);
        res.text_with(status, &[], &headers, text);
        None
    }

    /// The debug line of `debug_requests`, without the whole client
    /// address when addresses are anonymised.
    fn log_request(&self, req: &Request<'_>) {
        let query = req.query.unwrap_or("");
        let mut scratch = Vec::new();
        let peer = if self.generation.borrow().events.anonymize_ip() {
            anonymize::truncate(req.peer_host, &mut scratch)
        } else {
            req.peer_host
        };
        tracing::debug!(method = req.method_str, path = req.path, query, peer, "Request.");
    }
}

/// A shard's stages on `generation`'s mappings and sinks; in durable mode
/// their batches carry shares of the shard's round.
fn stages_for(rt: &Runtime, generation: &Generation, metrics: &Arc<ShardMetrics>) -> ShardStages {
    let durable = matches!(rt.server.delivery, Delivery::Durable(_));
    ShardStages::new(generation.events.clone(), &generation.sinks, metrics.clone(), durable)
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

impl Service for ShardService {
    type Ticket = Ticket;

    fn body_limit(&self, path: &str, default: usize) -> usize {
        self.refresh();
        match self.routes().get(path) {
            Some(Endpoint::JsonEvent(json)) => json.max_body,
            _ => default,
        }
    }

    fn call(&self, req: &Request<'_>, res: &mut Response<'_>) -> Option<Ticket> {
        self.refresh();
        if self.rt.server.debug_requests {
            self.log_request(req);
        }
        let m = &self.metrics;
        match self.routes().get(req.path) {
            Some(Endpoint::BrowserEvent(endpoint)) => {
                m.inc(Counter::RequestsEvent);
                // `navigator.sendBeacon` POSTs the same query, when the source allows it.
                let beacon = endpoint.beacon && req.method == Method::Post;
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
                self.headers.borrow_mut().clear();
                let batched = self.browser_events(endpoint, req, std::iter::once(req.query));
                let headers = self.headers.borrow();
                if beacon {
                    res.send_with(Status::NO_CONTENT, &[], &headers, None, &[]);
                } else {
                    res.send_prepared(&self.pixel, &headers);
                }
                batched.then(|| self.ticket())
            }
            Some(Endpoint::BrowserBatch(endpoint, cors)) => {
                m.inc(Counter::RequestsBatch);
                if !self.cors_checked(cors, req, res) {
                    return None;
                }
                let mut decoded = self.decoded.borrow_mut();
                let body = self.decode_body(req, self.rt.server.limits.max_body_bytes, &mut decoded, res)?;
                let lines = body.split(|&b| b == b'\n').map(<[u8]>::trim_ascii).filter(|l| !l.is_empty());
                // A line that is not a query string is refused as an incomplete pixel.
                let queries = lines.map(|l| {
                    let l = l.strip_prefix(b"?").unwrap_or(l);
                    std::str::from_utf8(l).ok().filter(|q| q.bytes().all(|b| b.is_ascii_graphic()))
                });
                let batched = self.browser_events(endpoint, req, queries);
                let mut headers = self.headers.borrow_mut();
                cors.answer_headers(req, &mut headers);
                res.send_with(Status::NO_CONTENT, &[], &headers, None, &[]);
                batched.then(|| self.ticket())
            }
            Some(Endpoint::JsonEvent(endpoint)) => {
                m.inc(Counter::RequestsJson);
                if !self.cors_checked(&endpoint.cors, req, res) {
                    return None;
                }
                endpoint.cors.answer_headers(req, &mut self.headers.borrow_mut());
                if !is_json_content_type(req) {
                    m.inc(Counter::ErrorUnsupportedMediaType);
                    let body = "Content type must be application/json.";
                    res.text_with(Status::UNSUPPORTED_MEDIA_TYPE, &[], &self.headers.borrow(), body);
                    return None;
                }
                let mut decoded = self.decoded.borrow_mut();
                let body = self.decode_body(req, endpoint.max_body, &mut decoded, res)?;
                self.json_event(endpoint, &Request { body, ..*req }, res)
            }
            Some(Endpoint::Tag(tag)) => {
                m.inc(Counter::RequestsTag);
                if req.method != Method::Get {
                    m.inc(Counter::RequestsMethodNotAllowed);
                    method_not_allowed(req, res, "Allow: GET\r\n");
                    return None;
                }
                serve_tag(tag, req, res);
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
            Some(Endpoint::Status) => {
                res.send(
                    Status::OK,
                    &["Cache-Control: no-store\r\n"],
                    Some("text/html; charset=utf-8"),
                    STATUS_PAGE.as_bytes(),
                );
                None
            }
            Some(Endpoint::StatusJson) => {
                let body = self.history.as_ref().map(|h| h.document(&self.rt)).unwrap_or_default();
                res.send(Status::OK, &["Cache-Control: no-store\r\n"], Some("application/json"), body.as_bytes());
                None
            }
            Some(Endpoint::Schema(name)) => {
                let body = status::schema(&self.rt, name).unwrap_or_default();
                res.send(Status::OK, &[], Some("application/json"), body.as_bytes());
                None
            }
            None => {
                m.inc(Counter::RequestsNotFound);
                res.text(Status::NOT_FOUND, &[], "Not found.");
                None
            }
        }
    }

    async fn settle(&self, ticket: Ticket) -> bool {
        match self.commit.wait(&ticket).await {
            Outcome::Accepted => return true,
            Outcome::Lost => self.metrics.inc(Counter::DurableLost),
            Outcome::TimedOut => self.metrics.inc(Counter::DurableTimedOut),
        }
        false
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
