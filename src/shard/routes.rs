//! The route tables: which exact path is served by what, on the public
//! address and on the admin address. Built once from the server's and the
//! sources' part of the plan; each endpoint carries what it needs, so
//! answering never looks anything up by position.

use super::cookies::ServerCookies;
use super::cors::Cors;
use super::privacy::OptOut;
use crate::assets::Tag;
use crate::plan::{MappingPlan, ServerPlan, SourceId, SourceKind, SourcePlan};

/// What a path routes to.
#[derive(Debug)]
pub enum Endpoint {
    /// A browser source's pixel.
    BrowserEvent(BrowserEndpoint),
    /// A browser source's batch endpoint.
    BrowserBatch(BrowserEndpoint, Cors),
    /// A JSON source's event path.
    JsonEvent(JsonEndpoint),
    /// A browser source's tracking tag.
    Tag(Box<Tag>),
    /// The test page.
    TestPage,
    /// Liveness.
    Ping,
    /// Readiness: live, every shard listening, every sink healthy.
    Ready,
    /// Prometheus metrics.
    Metrics,
    /// The operator page (admin address only).
    Status,
    /// The operator page's data.
    StatusJson,
    /// A mapping's schema, by mapping name.
    Schema(String),
}

/// What a browser source's event endpoints do besides handing events on.
#[derive(Debug, Clone)]
pub struct BrowserEndpoint {
    /// The source.
    pub source: SourceId,
    /// The pixel also takes `sendBeacon` POSTs.
    pub beacon: bool,
    /// The signals by which browsers opt out.
    pub opt_out: OptOut,
    /// The cookies answers set, with `server_cookies`.
    pub cookies: Option<ServerCookies>,
}

/// What a JSON source's endpoint checks.
#[derive(Debug, Clone)]
pub struct JsonEndpoint {
    /// The source.
    pub source: SourceId,
    /// Query parameter with the party id.
    pub party_parameter: String,
    /// Largest body, in whole 4 KiB buffers.
    pub max_body: usize,
    /// Which other origins may post.
    pub cors: Cors,
}

/// A route table.
pub type Routes = hashbrown::HashMap<String, Endpoint, ahash::RandomState>;

/// The public and the admin route tables.
#[derive(Debug)]
pub struct RouteTables {
    /// The public address's.
    pub public: Routes,
    /// The admin address's (empty when it is not apart).
    pub admin: Routes,
}

impl RouteTables {
    /// Routes for `server`, `sources` and (on the admin address) the
    /// schemas of `mappings`, with each browser source's tag built.
    ///
    /// # Errors
    /// A tag cannot be built.
    pub fn build(server: &ServerPlan, sources: &[SourcePlan], mappings: &[MappingPlan]) -> Result<Self, String> {
        let mut public = Routes::with_hasher(ahash::RandomState::new());
        let mut admin = Routes::with_hasher(ahash::RandomState::new());
        if server.serve_static_resources {
            public.insert("/".to_owned(), Endpoint::TestPage);
            public.insert("/index.html".to_owned(), Endpoint::TestPage);
        }
        public.insert("/ping".to_owned(), Endpoint::Ping);
        public.insert("/ready".to_owned(), Endpoint::Ready);
        // Metrics move to the admin address when there is one; the probes are served on both.
        if server.admin.is_some() {
            admin.insert("/metrics".to_owned(), Endpoint::Metrics);
            admin.insert("/ping".to_owned(), Endpoint::Ping);
            admin.insert("/ready".to_owned(), Endpoint::Ready);
            // The operator page shows the configuration: never on the public port.
            admin.insert("/status".to_owned(), Endpoint::Status);
            admin.insert("/status.json".to_owned(), Endpoint::StatusJson);
            for m in mappings {
                admin.insert(format!("/schema/{}", m.name), Endpoint::Schema(m.name.clone()));
            }
        } else {
            public.insert("/metrics".to_owned(), Endpoint::Metrics);
        }
        for (i, source) in sources.iter().enumerate() {
            let id = SourceId(i);
            match &source.kind {
                SourceKind::Json(j) => {
                    tracing::info!(source = %source.name, event_path = %j.event_path, "JSON source.");
                    // An exact JSON path wins over the test page, as in the original.
                    public.insert(
                        j.event_path.clone(),
                        Endpoint::JsonEvent(JsonEndpoint {
                            source: id,
                            party_parameter: j.party_parameter.clone(),
                            max_body: j.max_body,
                            cors: Cors::new(&j.cors_origins),
                        }),
                    );
                }
                SourceKind::Browser(b) => {
                    tracing::info!(source = %source.name, event_path = %b.event_path, tag_path = %b.tag_path, "Browser source.");
                    let tag = Tag::build(&b.tag, b.readable_tag).map_err(|e| format!("source {}: {e}", source.name))?;
                    let endpoint = BrowserEndpoint {
                        source: id,
                        beacon: b.beacon,
                        opt_out: OptOut { gpc: b.respect_gpc, dnt: b.respect_dnt },
                        cookies: b.server_cookies.then(|| ServerCookies::new(&b.tag)),
                    };
                    let batch = Endpoint::BrowserBatch(endpoint.clone(), Cors::new(&b.cors_origins));
                    public.insert(b.event_path.clone(), Endpoint::BrowserEvent(endpoint));
                    public.insert(b.batch_path.clone(), batch);
                    public.insert(b.tag_path.clone(), Endpoint::Tag(Box::new(tag)));
                }
            }
        }
        Ok(Self { public, admin })
    }
}
