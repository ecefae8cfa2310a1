//! The configuration structs, one per section of the tree, with the
//! original's defaults. Every field's doc comment is user documentation; the
//! commented example in `config/divolte-collector.toml` repeats it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::{section, ConfigDuration, ConfigError};

/// A config object whose `type` key selects the struct the rest deserializes into.
pub(crate) trait Tagged: Sized {
    /// The accepted `type` values, for the error message.
    const KINDS: &'static str;
    /// Deserializes `value` (without its `type` key) as the variant `kind`.
    fn from_kind(kind: &str, value: toml::Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Self>;
}

impl Tagged for SourceConfig {
    const KINDS: &'static str = "browser or json";
    fn from_kind(kind: &str, value: toml::Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Self> {
        Some(match kind {
            "browser" => Self::Browser(Box::new(section(value, path, errors))),
            "json" => Self::Json(section(value, path, errors)),
            _ => return None,
        })
    }
}

impl Tagged for SinkConfig {
    const KINDS: &'static str = "hdfs, kafka, gcs, s3 or gcps";
    fn from_kind(kind: &str, value: toml::Value, path: &str, errors: &mut Vec<ConfigError>) -> Option<Self> {
        Some(match kind {
            "hdfs" => Self::Hdfs(section(value, path, errors)),
            "kafka" => Self::Kafka(section(value, path, errors)),
            "gcs" => Self::Gcs(section(value, path, errors)),
            "s3" => Self::S3(section(value, path, errors)),
            "gcps" => Self::Gcps(section(value, path, errors)),
            _ => return None,
        })
    }
}

/// The whole configuration (`divolte.*`).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Process-wide settings (`divolte.global`).
    pub global: GlobalConfig,
    /// Named event sources (`divolte.sources`); absent means one browser source named `browser`.
    pub sources: Option<BTreeMap<String, SourceConfig>>,
    /// Named mappings (`divolte.mappings`); absent means `default`, from all sources to all sinks.
    pub mappings: Option<BTreeMap<String, MappingConfig>>,
    /// Named sinks (`divolte.sinks`); absent means `hdfs` (file) and `kafka`.
    pub sinks: Option<BTreeMap<String, SinkConfig>>,
}

impl Config {
    /// Fills in the original's implicit sources, sinks and mappings where a
    /// section is absent, and the Kafka producer defaults that a user's
    /// `producer` table did not override.
    pub(crate) fn fill_implicit_defaults(&mut self) {
        let sources = self
            .sources
            .get_or_insert_with(|| BTreeMap::from([("browser".to_owned(), SourceConfig::Browser(Box::default()))]));
        let source_names: Vec<String> = sources.keys().cloned().collect();
        let sinks = self.sinks.get_or_insert_with(|| {
            BTreeMap::from([
                ("hdfs".to_owned(), SinkConfig::Hdfs(HdfsSinkConfig { replication: 1, ..HdfsSinkConfig::default() })),
                ("kafka".to_owned(), SinkConfig::Kafka(KafkaSinkConfig::default())),
            ])
        });
        let sink_names: Vec<String> = sinks.keys().cloned().collect();
        self.mappings.get_or_insert_with(|| {
            BTreeMap::from([(
                "default".to_owned(),
                MappingConfig { sources: Some(source_names), sinks: Some(sink_names), ..MappingConfig::default() },
            )])
        });
        let producer = &mut self.global.kafka.producer;
        for (k, v) in default_kafka_producer() {
            if !flattened_keys(producer).contains(&k) {
                producer.insert(k, v);
            }
        }
    }

    /// The active sinks: declared, referenced by a mapping or as a source's
    /// dead-letter sink, and of a type that is enabled globally (the
    /// original silently skips the others).
    pub fn active_sinks(&self) -> impl Iterator<Item = (&String, &SinkConfig)> {
        let dead_letters = self.sources.iter().flat_map(|s| s.values()).filter_map(SourceConfig::dead_letter_sink);
        let referenced: Vec<&str> = self
            .mappings
            .iter()
            .flat_map(|m| m.values())
            .flat_map(|m| m.sinks.iter().flatten())
            .map(String::as_str)
            .chain(dead_letters)
            .collect();
        self.sinks
            .iter()
            .flat_map(|s| s.iter())
            .filter(move |(name, sink)| referenced.contains(&name.as_str()) && self.global.sink_enabled(sink))
    }
}

/// `divolte.global`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GlobalConfig {
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Event processing settings.
    pub mapper: MapperConfig,
    /// File sinks (`type = "hdfs"`): on/off, flush threads, queue size.
    pub hdfs: FileSinksGlobal,
    /// Google Cloud Storage sinks.
    pub gcs: GcsGlobal,
    /// Not in the original. Amazon S3 (and S3-compatible) sinks.
    pub s3: S3Global,
    /// Kafka sinks.
    pub kafka: KafkaGlobal,
    /// Google Cloud Pub/Sub sinks (accepted for compatibility, not supported).
    pub gcps: GcpsGlobal,
}

impl GlobalConfig {
    /// Whether the sink's type is globally enabled.
    pub fn sink_enabled(&self, sink: &SinkConfig) -> bool {
        match sink {
            SinkConfig::Hdfs(_) => self.hdfs.enabled,
            SinkConfig::Kafka(_) => self.kafka.enabled,
            SinkConfig::Gcs(_) => self.gcs.enabled,
            SinkConfig::S3(_) => self.s3.enabled,
            SinkConfig::Gcps(_) => self.gcps.enabled,
        }
    }
}

/// Which CPUs run a shard (`divolte.global.server.cores`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Cores {
    /// The first N CPUs this process may run on.
    Count(usize),
    /// These CPU ids, one shard each.
    List(Vec<usize>),
}

/// `divolte.global.server`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to bind; Divolte default: loopback. Use `0.0.0.0` for all interfaces. Env: `DIVOLTE_HOST`.
    pub host: Option<String>,
    /// Port to bind; Divolte default 8290. Env: `DIVOLTE_PORT`.
    pub port: u16,
    /// Take the client address from the last `X-Forwarded-For` entry. Divolte default false.
    pub use_x_forwarded_for: bool,
    /// Serve the test page at `/`. Divolte default true.
    pub serve_static_resources: bool,
    /// Log every request at debug level. Divolte default false.
    pub debug_requests: bool,
    /// After SIGTERM, `/ping` answers 503 for this long while traffic is still served. Divolte default `0 ms`.
    pub shutdown_delay: ConfigDuration,
    /// After the delay, how long in-flight requests may take. Divolte default `2 minutes`.
    pub shutdown_timeout: ConfigDuration,
    /// CPUs to run shards on: a count or a list of CPU ids. Default: every CPU the process may use.
    pub cores: Option<Cores>,
    /// Limit on request line plus headers; longer gets 431 (414 when the request line alone is). Default 8192.
    #[serde(deserialize_with = "super::size::bytes")]
    pub max_header_bytes: usize,
    /// Limit on a request body where the endpoint sets none; larger gets 413. Default 65536.
    #[serde(deserialize_with = "super::size::bytes")]
    pub max_body_bytes: usize,
    /// A request's head must arrive within this time of its first byte, else 408. Default `10 seconds`.
    pub header_read_timeout: ConfigDuration,
    /// An idle keep-alive connection is closed after this long. Default `60 seconds`.
    pub idle_timeout: ConfigDuration,
    /// Open connections per shard; beyond it a new connection gets 503 and is closed. Default 16384.
    pub max_connections: usize,
    /// Not in the original. Serve `/metrics` (with `/ping` and `/ready`) on this port instead of the public one.
    pub metrics_port: Option<u16>,
    /// Not in the original. Address for `metrics_port`; default: the server's `host`.
    pub metrics_host: Option<String>,
    /// Not in the original. A shard that makes no progress for this long
    /// ends the process with an error, for the service manager to restart
    /// it; `0 seconds` turns the watchdog off. Default `10 seconds`.
    pub watchdog_timeout: ConfigDuration,
    /// Not in the original. When an event is answered: `fast` once its
    /// records are handed to their sinks' queues, `durable` once every
    /// sink made them durable (synced to disk, acknowledged by Kafka).
    /// Default `fast`.
    pub delivery: DeliveryMode,
    /// Not in the original. In `durable` mode, how long an answer waits
    /// for its records before it is 503. Default `5 seconds`.
    pub delivery_timeout: ConfigDuration,
    /// Not in the original. Reload when the configuration file or a
    /// mapping's schema or script file changes (SIGHUP always reloads).
    /// Default false.
    pub watch_config: bool,
}

/// When an event's request is answered (`divolte.global.server.delivery`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// Once its records are in the sinks' queues.
    #[default]
    Fast,
    /// Once every sink made its records durable.
    Durable,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: None,
            port: 8290,
            use_x_forwarded_for: false,
            serve_static_resources: true,
            debug_requests: false,
            shutdown_delay: ConfigDuration::from_millis(0),
            shutdown_timeout: ConfigDuration::from_secs(120),
            cores: None,
            max_header_bytes: 8192,
            max_body_bytes: 65536,
            header_read_timeout: ConfigDuration::from_secs(10),
            idle_timeout: ConfigDuration::from_secs(60),
            max_connections: 16384,
            metrics_port: None,
            metrics_host: None,
            watchdog_timeout: ConfigDuration::from_secs(10),
            delivery: DeliveryMode::Fast,
            delivery_timeout: ConfigDuration::from_secs(5),
            watch_config: false,
        }
    }
}

/// `divolte.global.mapper`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MapperConfig {
    /// Accepted for compatibility; events are mapped on the shards, so there is no mapper queue. Divolte default 1048576.
    pub buffer_size: usize,
    /// Accepted for compatibility; mapping runs on every shard. Divolte default 1.
    pub threads: usize,
    /// Slots of the duplicate memory. Divolte default 1000000.
    pub duplicate_memory_size: usize,
    /// MaxMind GeoIP2/GeoLite2 database (`.mmdb` or `.mmdb.gz`). Unset by default.
    pub ip2geo_database: Option<PathBuf>,
    /// User-agent parsing.
    pub user_agent_parser: UserAgentParserConfig,
    /// Not in the original. Truncate client addresses (IPv4 to /24, IPv6 to
    /// /48) after the geo lookup, before mapping. Default false.
    pub anonymize_ip: bool,
}

impl Default for MapperConfig {
    fn default() -> Self {
        Self {
            buffer_size: 1_048_576,
            threads: 1,
            duplicate_memory_size: 1_000_000,
            ip2geo_database: None,
            user_agent_parser: UserAgentParserConfig::default(),
            anonymize_ip: false,
        }
    }
}

/// `divolte.global.mapper.user_agent_parser`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct UserAgentParserConfig {
    /// `non_updating`, `online_updating` or `caching_and_updating`; all use the built-in database. Divolte default `non_updating`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Parsed user agents cached per shard. Divolte default 1000.
    pub cache_size: usize,
}

impl Default for UserAgentParserConfig {
    fn default() -> Self {
        Self { kind: "non_updating".to_owned(), cache_size: 1000 }
    }
}

/// `divolte.global.hdfs`: settings shared by all file sinks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FileSinksGlobal {
    /// Divolte default true.
    pub enabled: bool,
    /// Flush threads per file sink; each writes its own file. Divolte default 2.
    pub threads: usize,
    /// Events queued per flush thread before new ones are dropped. Divolte default 1048576.
    pub buffer_size: usize,
    /// Hadoop client properties; accepted for compatibility, unused for local files.
    pub client: toml::Table,
}

impl Default for FileSinksGlobal {
    fn default() -> Self {
        Self { enabled: true, threads: 2, buffer_size: 1_048_576, client: toml::Table::new() }
    }
}

/// `divolte.global.kafka`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KafkaGlobal {
    /// Divolte default false.
    pub enabled: bool,
    /// Producer threads per Kafka sink. Divolte default 2.
    pub threads: usize,
    /// Events queued per producer thread. Divolte default 1048576.
    pub buffer_size: usize,
    /// Producer properties; keys the user leaves out keep the Divolte defaults.
    pub producer: toml::Table,
}

impl Default for KafkaGlobal {
    fn default() -> Self {
        Self { enabled: false, threads: 2, buffer_size: 1_048_576, producer: toml::Table::new() }
    }
}

/// The original's default producer properties.
fn default_kafka_producer() -> Vec<(String, toml::Value)> {
    let s = |v: &str| toml::Value::String(v.to_owned());
    vec![
        ("bootstrap.servers".into(), s("localhost:9092")),
        ("client.id".into(), s("divolte.collector")),
        ("acks".into(), s("1")),
        ("retries".into(), s("0")),
        ("compression.type".into(), s("lz4")),
        ("max.in.flight.requests.per.connection".into(), s("1")),
    ]
}

/// Producer keys with nested tables flattened to dotted names: TOML (like
/// HOCON) reads `bootstrap.servers = ...` as a nested table.
pub fn flattened_keys(table: &toml::Table) -> Vec<String> {
    flatten_table(table).into_iter().map(|(k, _)| k).collect()
}

/// Client properties (Kafka's, Hadoop's) as key and text: nested tables
/// flattened to dotted keys, lists joined with commas as the Java clients
/// read them.
pub fn property_strings(table: &toml::Table) -> Vec<(String, String)> {
    fn text(value: &toml::Value) -> String {
        match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        }
    }
    flatten_table(table).into_iter().map(|(k, v)| (k, text(&v))).collect()
}

/// A table with nested tables flattened to dotted keys.
pub fn flatten_table(table: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(inner) => {
                for (ik, iv) in flatten_table(inner) {
                    out.push((format!("{k}.{ik}"), iv));
                }
            }
            other => out.push((k.clone(), other.clone())),
        }
    }
    out
}

/// `divolte.global.gcs`: settings shared by all GCS sinks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GcsGlobal {
    /// Divolte default false.
    pub enabled: bool,
    /// Flush threads per GCS sink. Divolte default 1.
    pub threads: usize,
    /// Events queued per flush thread. Divolte default 1048576.
    pub buffer_size: usize,
}

impl Default for GcsGlobal {
    fn default() -> Self {
        Self { enabled: false, threads: 1, buffer_size: 1_048_576 }
    }
}

/// `divolte.global.s3` (not in the original): settings shared by all S3 sinks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct S3Global {
    /// Default false.
    pub enabled: bool,
    /// Flush threads per S3 sink. Default 1.
    pub threads: usize,
    /// Events queued per flush thread. Default 1048576.
    pub buffer_size: usize,
}

impl Default for S3Global {
    fn default() -> Self {
        Self { enabled: false, threads: 1, buffer_size: 1_048_576 }
    }
}

/// `divolte.global.gcps` (not supported; may not be enabled).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct GcpsGlobal {
    /// Divolte default false.
    pub enabled: bool,
    /// Divolte default 2.
    pub threads: usize,
    /// Divolte default 1048576.
    pub buffer_size: usize,
    /// Google Cloud project.
    pub project_id: Option<String>,
}

impl Default for GcpsGlobal {
    fn default() -> Self {
        Self { enabled: false, threads: 2, buffer_size: 1_048_576, project_id: None }
    }
}

/// `divolte.sources.<name>`, chosen by its `type` key.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// Pixel events from the JavaScript tag.
    Browser(Box<BrowserSourceConfig>),
    /// JSON events posted by apps and servers.
    Json(JsonSourceConfig),
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self::Browser(Box::default())
    }
}

/// `divolte.sources.<name>` with `type = "browser"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BrowserSourceConfig {
    /// Path prefix of the tag and the event endpoint; a trailing `/` is added. Divolte default `/`.
    pub prefix: String,
    /// Event endpoint under the prefix. Divolte default `csc-event`.
    pub event_suffix: String,
    /// Party cookie name. Divolte default `_dvp`.
    pub party_cookie: String,
    /// Party cookie lifetime. Divolte default `730 days`.
    pub party_timeout: ConfigDuration,
    /// Session cookie name. Divolte default `_dvs`.
    pub session_cookie: String,
    /// Session cookie lifetime. Divolte default `30 minutes`.
    pub session_timeout: ConfigDuration,
    /// Cookie domain; unset means the page's host.
    pub cookie_domain: Option<String>,
    /// Not in the original. `SameSite` attribute of both cookies: `Strict`, `Lax` or `None`; unset sends none.
    pub cookie_same_site: Option<String>,
    /// Not in the original. Mark both cookies `Secure` (HTTPS pages only). Default false.
    pub cookie_secure: bool,
    /// Artificial delay before answering an event (testing only). Divolte default `0 seconds`.
    pub http_response_delay: ConfigDuration,
    /// The tag's settings.
    pub javascript: JavascriptConfig,
    /// Not in the original. Sink that receives a dead letter for every
    /// event of this source that is refused or cannot be mapped.
    pub dead_letter_sink: Option<String>,
    /// Not in the original. Batch endpoint under the prefix: a POST of pixel
    /// query strings, one per line. Default `csc-batch`.
    pub batch_suffix: String,
    /// Not in the original. Pixel and batch answers set the party and session
    /// cookies too (first-party cookies from the server). Default false.
    pub server_cookies: bool,
    /// Not in the original. Record nothing from browsers that send
    /// `Sec-GPC: 1` (Global Privacy Control). Default false.
    pub respect_gpc: bool,
    /// Not in the original. Record nothing from browsers that send `DNT: 1`. Default false.
    pub respect_dnt: bool,
    /// Not in the original. Origins whose pages may post to the batch
    /// endpoint with CORS (`["*"]` for any). Default none.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for BrowserSourceConfig {
    fn default() -> Self {
        Self {
            prefix: "/".to_owned(),
            event_suffix: "csc-event".to_owned(),
            party_cookie: "_dvp".to_owned(),
            party_timeout: ConfigDuration::from_secs(730 * 86_400),
            session_cookie: "_dvs".to_owned(),
            session_timeout: ConfigDuration::from_secs(30 * 60),
            cookie_domain: None,
            cookie_same_site: None,
            cookie_secure: false,
            http_response_delay: ConfigDuration::from_millis(0),
            javascript: JavascriptConfig::default(),
            dead_letter_sink: None,
            batch_suffix: "csc-batch".to_owned(),
            server_cookies: false,
            respect_gpc: false,
            respect_dnt: false,
            cors_allowed_origins: Vec::new(),
        }
    }
}

impl BrowserSourceConfig {
    /// The prefix with the trailing `/` the original always adds.
    pub fn normalized_prefix(&self) -> String {
        if self.prefix.ends_with('/') {
            self.prefix.clone()
        } else {
            format!("{}/", self.prefix)
        }
    }
}

/// `divolte.sources.<name>.javascript`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JavascriptConfig {
    /// Script file name, `^[A-Za-z0-9_-]+\.js$`. Divolte default `divolte.js`.
    pub name: String,
    /// Log to the browser console. Divolte default false.
    pub logging: bool,
    /// Serve the readable (unminified) tag. Divolte default false.
    pub debug: bool,
    /// Send a `pageView` event when a page view starts. Divolte default true.
    pub auto_page_view_event: bool,
    /// How long the tag waits for one event before sending the next. Divolte default `750 milliseconds`.
    pub event_timeout: ConfigDuration,
    /// Not in the original. Send the events queued or signalled while the
    /// page hides or unloads in one `navigator.sendBeacon` POST to the batch
    /// endpoint. Default false.
    pub use_beacon: bool,
    /// Not in the original. Set no cookies and send nothing until the page
    /// calls `divolte.consent(true)`. Default false.
    pub require_consent: bool,
}

impl Default for JavascriptConfig {
    fn default() -> Self {
        Self {
            name: "divolte.js".to_owned(),
            logging: false,
            debug: false,
            auto_page_view_event: true,
            event_timeout: ConfigDuration::from_millis(750),
            use_beacon: false,
            require_consent: false,
        }
    }
}

/// `divolte.sources.<name>` with `type = "json"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct JsonSourceConfig {
    /// Path events are posted to. Divolte default `/`.
    pub event_path: String,
    /// Query parameter holding the party id. Divolte default `p`.
    pub party_id_parameter: String,
    /// Largest accepted body in bytes. Divolte default 4096.
    #[serde(deserialize_with = "super::size::bytes")]
    pub maximum_body_size: usize,
    /// Not in the original. Sink that receives a dead letter for every
    /// event of this source that is refused or cannot be mapped.
    pub dead_letter_sink: Option<String>,
    /// Not in the original. Origins whose pages may post events with CORS
    /// (`["*"]` for any). Default none.
    pub cors_allowed_origins: Vec<String>,
}

impl Default for JsonSourceConfig {
    fn default() -> Self {
        Self {
            event_path: "/".to_owned(),
            party_id_parameter: "p".to_owned(),
            maximum_body_size: 4096,
            dead_letter_sink: None,
            cors_allowed_origins: Vec::new(),
        }
    }
}

impl SourceConfig {
    /// The sink of the source's dead letters, if it has one.
    pub fn dead_letter_sink(&self) -> Option<&str> {
        match self {
            Self::Browser(b) => b.dead_letter_sink.as_deref(),
            Self::Json(j) => j.dead_letter_sink.as_deref(),
        }
    }
}

/// `divolte.mappings.<name>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct MappingConfig {
    /// Sources whose events this mapping maps (required).
    pub sources: Option<Vec<String>>,
    /// Sinks that receive the records (required).
    pub sinks: Option<Vec<String>>,
    /// Avro schema (`.avsc`); only used together with a mapping script.
    pub schema_file: Option<PathBuf>,
    /// Mapping script; unset means the built-in default mapping and schema.
    pub mapping_script_file: Option<PathBuf>,
    /// Schema id written in Confluent wire format.
    pub confluent_id: Option<i32>,
    /// Drop events whose checksum does not match. Divolte default false.
    pub discard_corrupted: bool,
    /// Drop events seen before. Divolte default false.
    pub discard_duplicates: bool,
    /// Not in the original. Drop events whose user agent is a crawler, a
    /// bot or a headless browser. Default false.
    pub discard_bots: bool,
}

/// `divolte.sinks.<name>`, chosen by its `type` key.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// Avro container files on a file system.
    Hdfs(HdfsSinkConfig),
    /// Avro container files in a Google Cloud Storage bucket.
    Gcs(GcsSinkConfig),
    /// Not in the original. Avro container files in an S3 bucket.
    S3(S3SinkConfig),
    /// Kafka topic.
    Kafka(KafkaSinkConfig),
    /// Google Cloud Pub/Sub (not supported).
    Gcps(GcpsSinkConfig),
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self::Hdfs(HdfsSinkConfig::default())
    }
}

/// `divolte.sinks.<name>` with `type = "hdfs"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HdfsSinkConfig {
    /// HDFS replication of published files (unused for local files). Divolte default 3.
    pub replication: u16,
    /// When files are synced, rolled and published.
    pub file_strategy: FileStrategyConfig,
    /// Not in the original. On HDFS: the local directory files are written
    /// and synced in until they are published. Default
    /// `/var/tmp/divolte-collector/<sink name>`.
    pub staging_dir: Option<String>,
    /// Not in the original. `avro` (default) or `json`: JSON lines files,
    /// or JSON Kafka values, in Avro's JSON encoding of the same record.
    pub format: RecordFormat,
    /// Not in the original. With `format = "json"`: `tagged` (default)
    /// writes a union value as `{"<type>": value}`, `plain` bare.
    pub json_unions: JsonUnions,
}

impl Default for HdfsSinkConfig {
    fn default() -> Self {
        Self {
            replication: 3,
            file_strategy: FileStrategyConfig::default(),
            staging_dir: None,
            format: RecordFormat::Avro,
            json_unions: JsonUnions::Tagged,
        }
    }
}

/// How a sink writes records (`divolte.sinks.<name>.format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    /// Avro binary: container files, or Kafka values.
    #[default]
    Avro,
    /// Avro's JSON encoding: JSON lines files, or Kafka values.
    Json,
}

/// How JSON output writes union values (`divolte.sinks.<name>.json_unions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JsonUnions {
    /// `{"<type>": value}`, as Avro's JSON encoding.
    #[default]
    Tagged,
    /// The value alone.
    Plain,
}

impl SinkConfig {
    /// The sink's output format and union style.
    pub fn output(&self) -> (RecordFormat, JsonUnions) {
        match self {
            Self::Hdfs(c) => (c.format, c.json_unions),
            Self::Gcs(c) => (c.format, c.json_unions),
            Self::S3(c) => (c.format, c.json_unions),
            Self::Kafka(c) => (c.format, c.json_unions),
            Self::Gcps(_) => (RecordFormat::Avro, JsonUnions::Tagged),
        }
    }
}

/// `divolte.sinks.<name>.file_strategy`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct FileStrategyConfig {
    /// A file is published this long after it was opened. Divolte default `1 hour`.
    pub roll_every: ConfigDuration,
    /// Sync (write an Avro block and fsync) after this many records. Divolte default 1000.
    pub sync_file_after_records: usize,
    /// Sync pending records after this long. Divolte default `30 seconds`.
    pub sync_file_after_duration: ConfigDuration,
    /// Directory for files being written (`<name>.avro.partial`). Divolte default `/tmp`.
    pub working_dir: String,
    /// Directory finished files are moved to. Divolte default `/tmp`.
    pub publish_dir: String,
}

impl Default for FileStrategyConfig {
    fn default() -> Self {
        Self {
            roll_every: ConfigDuration::from_secs(3600),
            sync_file_after_records: 1000,
            sync_file_after_duration: ConfigDuration::from_secs(30),
            working_dir: "/tmp".to_owned(),
            publish_dir: "/tmp".to_owned(),
        }
    }
}

/// `divolte.sinks.<name>` with `type = "gcs"`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GcsSinkConfig {
    /// Bucket name (required).
    pub bucket: Option<String>,
    /// When files are synced, rolled and published; `publish_dir` is the
    /// object name prefix in the bucket.
    pub file_strategy: FileStrategyConfig,
    /// How failed requests are retried.
    pub retry_settings: RetrySettings,
    /// Not in the original. The local directory files are written and
    /// synced in until they are uploaded. Default
    /// `/var/tmp/divolte-collector/<sink name>`.
    pub staging_dir: Option<String>,
    /// Not in the original. `avro` (default) or `json`: JSON lines files,
    /// or JSON Kafka values, in Avro's JSON encoding of the same record.
    pub format: RecordFormat,
    /// Not in the original. With `format = "json"`: `tagged` (default)
    /// writes a union value as `{"<type>": value}`, `plain` bare.
    pub json_unions: JsonUnions,
}

/// `divolte.sinks.<name>` with `type = "s3"` (not in the original).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct S3SinkConfig {
    /// Bucket name (required).
    pub bucket: Option<String>,
    /// Region; default `AWS_REGION`/`AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store (default: AWS, or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// When files are synced, rolled and published; `publish_dir` is the
    /// object key prefix in the bucket.
    pub file_strategy: FileStrategyConfig,
    /// How failed requests are retried.
    pub retry_settings: RetrySettings,
    /// The local directory files are written and synced in until they are
    /// uploaded. Default `/var/tmp/divolte-collector/<sink name>`.
    pub staging_dir: Option<String>,
    /// Not in the original. `avro` (default) or `json`: JSON lines files,
    /// or JSON Kafka values, in Avro's JSON encoding of the same record.
    pub format: RecordFormat,
    /// Not in the original. With `format = "json"`: `tagged` (default)
    /// writes a union value as `{"<type>": value}`, `plain` bare.
    pub json_unions: JsonUnions,
}

/// `divolte.sinks.<name>.retry_settings`: the backoff between attempts to
/// publish a file to a remote store (the original's GCS keys). Unlike the
/// original, the collector never gives a file up after `max_attempts` or
/// `total_timeout`: it keeps its records and keeps trying at
/// `max_retry_delay` until the file is published or the drain deadline passes.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct RetrySettings {
    /// Attempts of one request inside the store client before the sink
    /// counts a failure and backs off; 0 means 3. Divolte default 0 (unlimited).
    pub max_attempts: u32,
    /// How long one request may take with the client's own retries. Divolte default `10 minutes`; capped at 1 minute.
    pub total_timeout: ConfigDuration,
    /// First backoff after a failed attempt. Divolte default `1 second`.
    pub initial_retry_delay: ConfigDuration,
    /// Growth of the backoff. Divolte default 2.
    pub retry_delay_multiplier: f64,
    /// Longest backoff. Divolte default `64 seconds`.
    pub max_retry_delay: ConfigDuration,
    /// Random extra delay up to this much. Divolte default `1 second`; exclusive with `jitter_factor`.
    pub jitter_delay: Option<ConfigDuration>,
    /// Random extra delay as a fraction of the backoff; exclusive with `jitter_delay`.
    pub jitter_factor: Option<f64>,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            max_attempts: 0,
            total_timeout: ConfigDuration::from_secs(600),
            initial_retry_delay: ConfigDuration::from_secs(1),
            retry_delay_multiplier: 2.0,
            max_retry_delay: ConfigDuration::from_secs(64),
            jitter_delay: None,
            jitter_factor: None,
        }
    }
}

/// Kafka record value framing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KafkaMode {
    /// Avro binary only.
    #[default]
    Naked,
    /// `0x00`, 4-byte big-endian schema id, Avro binary.
    Confluent,
}

/// `divolte.sinks.<name>` with `type = "kafka"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct KafkaSinkConfig {
    /// Topic. Divolte default `divolte`.
    pub topic: String,
    /// Value framing. Divolte default `naked`.
    pub mode: KafkaMode,
    /// Not in the original. Records the broker cannot take go to disk here
    /// and are replayed in order, also after a restart.
    pub spool: Option<SpoolConfig>,
    /// Not in the original. `avro` (default) or `json`: JSON lines files,
    /// or JSON Kafka values, in Avro's JSON encoding of the same record.
    pub format: RecordFormat,
    /// Not in the original. With `format = "json"`: `tagged` (default)
    /// writes a union value as `{"<type>": value}`, `plain` bare.
    pub json_unions: JsonUnions,
}

impl Default for KafkaSinkConfig {
    fn default() -> Self {
        Self {
            topic: "divolte".to_owned(),
            mode: KafkaMode::Naked,
            spool: None,
            format: RecordFormat::Avro,
            json_unions: JsonUnions::Tagged,
        }
    }
}

/// `divolte.sinks.<name>.spool`: a Kafka sink's disk spool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SpoolConfig {
    /// Directory of the segment files (one subdirectory per flush thread).
    pub directory: String,
    /// Disk budget in bytes for all of the sink's segments, shared evenly by
    /// its flush threads; records beyond it are dropped and counted.
    /// Default 1 GiB. Keep `global.kafka.threads` across restarts: each
    /// thread replays its own subdirectory.
    #[serde(deserialize_with = "super::size::bytes")]
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self { directory: String::new(), max_bytes: 1 << 30 }
    }
}

/// `divolte.sinks.<name>` with `type = "gcps"` (parsed, not supported).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct GcpsSinkConfig {
    /// Topic.
    pub topic: Option<String>,
    /// Retry settings.
    pub retry_settings: toml::Table,
    /// Batching settings.
    pub batching_settings: toml::Table,
}
