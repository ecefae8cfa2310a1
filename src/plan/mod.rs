//! The resolved plan: a validated [`Config`](crate::config::Config) turned,
//! once, into what each stage is built from.
//!
//! The configuration tree says things the way users write them (names that
//! refer to each other, sinks of disabled types, defaults left implicit,
//! Java producer keys). The plan says them the way the collector runs them:
//! sources and sinks in fixed order with typed ids, mappings holding those
//! ids, each sink with its lanes and its resolved settings, the server with
//! its addresses and limits. Each stage takes only its own part. The plan is
//! plain data that compares equal when two configurations would run the
//! same, so a new file can be resolved and set beside the running one.
//!
//! Key components:
//! - [`Plan::resolve`]: the one place where names are joined.
//! - [`SourceId`], [`SinkId`]: positions in [`Plan::sources`] and [`Plan::sinks`].

mod resolve;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::assets::TagSettings;
use crate::config::{Cores, FileStrategyConfig, KafkaMode, SpoolConfig};
use crate::http::Limits;

/// A source's position in [`Plan::sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SourceId(pub usize);

/// A sink's position in [`Plan::sinks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SinkId(pub usize);

/// Everything the collector runs, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Listening, limits and the process's lifecycle.
    pub server: ServerPlan,
    /// Per-event work shared by all mappings.
    pub enrichment: EnrichmentPlan,
    /// Event sources, by [`SourceId`].
    pub sources: Vec<SourcePlan>,
    /// Active sinks (referenced by a mapping and of an enabled type), by [`SinkId`].
    pub sinks: Vec<SinkPlan>,
    /// Mappings, in name order.
    pub mappings: Vec<MappingPlan>,
}

/// `global.server`, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerPlan {
    /// The public address.
    pub listen: SocketAddr,
    /// The operators' address (metrics, probes), when it is apart.
    pub admin: Option<SocketAddr>,
    /// CPUs to run shards on; `None` means every CPU the process may use.
    pub cores: Option<Cores>,
    /// HTTP limits.
    pub limits: Limits,
    /// Open connections per shard.
    pub max_connections: usize,
    /// How long `/ping` fails before the listeners close.
    pub shutdown_delay: Duration,
    /// How long connections and then sinks may finish, counted once.
    pub shutdown_timeout: Duration,
    /// A silent shard ends the process after this long; zero is off.
    pub watchdog_timeout: Duration,
    /// Serve the test page at `/`.
    pub serve_static_resources: bool,
    /// Log every request.
    pub debug_requests: bool,
}

/// `global.mapper`, resolved: what every event goes through before mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrichmentPlan {
    /// Slots of the duplicate memory.
    pub duplicate_memory_size: usize,
    /// Parsed user agents cached per shard.
    pub user_agent_cache_size: usize,
    /// The ip2geo database, when configured.
    pub ip2geo_database: Option<PathBuf>,
    /// Take the client address from `X-Forwarded-For`.
    pub use_x_forwarded_for: bool,
}

/// One source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcePlan {
    /// Its name in the configuration.
    pub name: String,
    /// What it serves.
    pub kind: SourceKind,
}

/// A source by kind, with everything its endpoints need.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// The JavaScript tag and its pixel.
    Browser(BrowserPlan),
    /// JSON events posted by apps.
    Json(JsonPlan),
}

/// A browser source.
#[derive(Debug, Clone, PartialEq)]
pub struct BrowserPlan {
    /// The pixel's path.
    pub event_path: String,
    /// The tag's path.
    pub tag_path: String,
    /// What the tag is built with.
    pub tag: TagSettings,
    /// Serve the readable tag instead of the minified one.
    pub readable_tag: bool,
    /// The pixel also takes `sendBeacon` POSTs.
    pub beacon: bool,
}

/// A JSON source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPlan {
    /// The path events are posted to.
    pub event_path: String,
    /// Query parameter with the party id.
    pub party_parameter: String,
    /// Largest body, rounded up to whole 4 KiB buffers as the original does.
    pub max_body: usize,
}

/// One active sink.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkPlan {
    /// Its name in the configuration.
    pub name: String,
    /// Flush threads, each with its own channel.
    pub lanes: usize,
    /// Records queued per lane before new ones are dropped.
    pub buffer_size: usize,
    /// Where records go, with the settings of that kind.
    pub kind: SinkKind,
}

/// A sink by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    /// Avro container files, rolled and published.
    File(FileStrategyConfig),
    /// A Kafka topic.
    Kafka(KafkaPlan),
}

/// A Kafka sink, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaPlan {
    /// Topic.
    pub topic: String,
    /// Value framing.
    pub mode: KafkaMode,
    /// Schema id written in Confluent mode (declared by the sink's mappings).
    pub confluent_id: Option<i32>,
    /// librdkafka properties, translated from the Java client's.
    pub properties: ProducerProperties,
    /// Disk spool for records the broker cannot take.
    pub spool: Option<SpoolConfig>,
}

/// librdkafka properties. They hold credentials, so their `Debug` shows
/// keys only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ProducerProperties(pub Vec<(String, String)>);

impl fmt::Debug for ProducerProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(k, _)| k)).finish()
    }
}

/// One mapping: which sources it reads, which sinks it writes, and the
/// files its program is compiled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingPlan {
    /// Its name in the configuration.
    pub name: String,
    /// The sources it reads.
    pub sources: Vec<SourceId>,
    /// The active sinks it writes.
    pub sinks: Vec<SinkId>,
    /// The Avro schema; `None` is the built-in one.
    pub schema_file: Option<PathBuf>,
    /// The mapping script; `None` is the built-in mapping.
    pub script_file: Option<PathBuf>,
    /// Schema id its records carry in Confluent wire format.
    pub confluent_id: Option<i32>,
    /// Drop events whose checksum failed.
    pub discard_corrupted: bool,
    /// Drop events seen before.
    pub discard_duplicates: bool,
}

impl Plan {
    /// The mappings that write `sink`.
    pub fn writers_of(&self, sink: SinkId) -> impl Iterator<Item = &MappingPlan> {
        self.mappings.iter().filter(move |m| m.sinks.contains(&sink))
    }
}
