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

mod hadoop;
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
    /// When an event is answered.
    pub delivery: Delivery,
    /// Reload when a configuration, schema or script file changes.
    pub watch_config: bool,
}

/// When an event's request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Once its records are in the sinks' queues.
    Fast,
    /// Once every sink made them durable; 503 when that takes longer than this.
    Durable(Duration),
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
    /// Truncate client addresses after the geo lookup.
    pub anonymize_ip: bool,
}

/// One source.
#[derive(Debug, Clone, PartialEq)]
pub struct SourcePlan {
    /// Its name in the configuration.
    pub name: String,
    /// What it serves.
    pub kind: SourceKind,
    /// The sink of its dead letters, if it has one.
    pub dead_letters: Option<SinkId>,
}

/// A source by kind, with everything its endpoints need.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// The JavaScript tag and its pixel.
    Browser(Box<BrowserPlan>),
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
    /// The batch endpoint's path.
    pub batch_path: String,
    /// Answers set the party and session cookies.
    pub server_cookies: bool,
    /// Record nothing from browsers sending `Sec-GPC: 1`.
    pub respect_gpc: bool,
    /// Record nothing from browsers sending `DNT: 1`.
    pub respect_dnt: bool,
    /// Origins allowed to post to the batch endpoint with CORS.
    pub cors_origins: Vec<String>,
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
    /// Origins allowed to post with CORS.
    pub cors_origins: Vec<String>,
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
    /// How records are written.
    pub format: Format,
}

/// How a sink writes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Avro binary.
    Avro,
    /// Avro's JSON encoding, unions as given.
    Json(crate::config::JsonUnions),
}

/// A sink by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkKind {
    /// Avro container files, rolled and published to a store.
    File(Box<FilePlan>),
    /// A Kafka topic.
    Kafka(KafkaPlan),
}

/// A file sink: files are written and synced in a local directory, then
/// published to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct FilePlan {
    /// When files are synced, rolled and published.
    pub strategy: FileStrategyConfig,
    /// The local directory files are written and synced in (`working_dir`
    /// for a local store, `staging_dir` for a remote one).
    pub staging: PathBuf,
    /// Where finished files go.
    pub store: StorePlan,
    /// The pause between attempts after a write or publish failed.
    pub backoff: Backoff,
}

/// Where a file sink publishes.
#[derive(Debug, Clone, PartialEq)]
pub enum StorePlan {
    /// A local directory: a file is moved there.
    Local {
        /// The publish directory.
        publish: PathBuf,
    },
    /// HDFS: a file is uploaded as `<working>/<name>.partial` and renamed into `<publish>`.
    Hdfs {
        /// The namenode (`hdfs://host:port`): from a directory's URI, or `fs.defaultFS`.
        url: String,
        /// Hadoop client properties (`global.hdfs.client`); empty reads `HADOOP_CONF_DIR`.
        client: Properties,
        /// Directory for files being uploaded.
        working: String,
        /// Directory of published files.
        publish: String,
        /// Block replication of published files.
        replication: u16,
    },
    /// An S3 bucket: a file is uploaded as `<prefix>/<name>`.
    S3 {
        /// Bucket.
        bucket: String,
        /// Region, when configured.
        region: Option<String>,
        /// Endpoint of an S3-compatible store, when configured.
        endpoint: Option<String>,
        /// Object key prefix (`publish_dir` without its leading `/`).
        prefix: String,
        /// Attempts and timeout of one request.
        request: RequestRetry,
    },
    /// A Google Cloud Storage bucket: a file is uploaded as `<prefix>/<name>`.
    Gcs {
        /// Bucket.
        bucket: String,
        /// Object name prefix (`publish_dir` without its leading `/`).
        prefix: String,
        /// Attempts and timeout of one request.
        request: RequestRetry,
    },
}

impl StorePlan {
    /// Where files go, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Local { publish } => publish.display().to_string(),
            Self::Hdfs { url, publish, .. } => format!("{url}{publish}"),
            Self::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
            Self::Gcs { bucket, prefix, .. } => format!("gs://{bucket}/{prefix}"),
        }
    }
}

/// Retries of one request inside a store client.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestRetry {
    /// Attempts after the first.
    pub retries: usize,
    /// Longest time for one request with its retries.
    pub timeout: Duration,
    /// Backoff between them.
    pub backoff: Backoff,
}

/// A growing pause between attempts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The first pause.
    pub initial: Duration,
    /// Growth per failed attempt.
    pub multiplier: f64,
    /// The longest pause.
    pub max: Duration,
    /// Up to this much is added at random.
    pub jitter: Jitter,
}

/// Random extra delay of a [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Up to a fixed amount.
    Upto(Duration),
    /// Up to this fraction of the pause.
    Fraction(f64),
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
    pub properties: Properties,
    /// Disk spool for records the broker cannot take.
    pub spool: Option<SpoolConfig>,
}

/// Client properties (librdkafka's, Hadoop's). They hold credentials, so
/// their `Debug` shows keys only.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Properties(pub Vec<(String, String)>);

impl fmt::Debug for Properties {
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
    /// Drop events from crawlers, bots and headless browsers.
    pub discard_bots: bool,
}

impl Plan {
    /// The mappings that write `sink`.
    pub fn writers_of(&self, sink: SinkId) -> impl Iterator<Item = &MappingPlan> {
        self.mappings.iter().filter(move |m| m.sinks.contains(&sink))
    }
}
