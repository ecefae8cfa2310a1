//! [`Plan::resolve`]: from the configuration tree to the plan.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::{
    Backoff, BrowserPlan, Delivery, EnrichmentPlan, FilePlan, Format, Jitter, JsonPlan, KafkaPlan, MappingPlan, Plan,
    Properties, RequestRetry, ServerPlan, SinkId, SinkKind, SinkPlan, SourceId, SourceKind, SourcePlan, StorePlan,
};
use crate::assets::TagSettings;
use crate::config::{
    BrowserSourceConfig, Config, DeliveryMode, FileStrategyConfig, HdfsSinkConfig, KafkaMode, RecordFormat,
    RetrySettings, ServerConfig, SinkConfig, SourceConfig,
};
use crate::http::Limits;

impl Plan {
    /// Resolves a validated configuration.
    ///
    /// # Errors
    /// An address that is not an IP address, producer properties that
    /// cannot be translated, or a sink type that cannot run.
    pub fn resolve(config: &Config) -> Result<Self, String> {
        let sinks: Vec<SinkPlan> =
            config.active_sinks().map(|(name, sink)| sink_plan(config, name, sink)).collect::<Result<_, _>>()?;
        let sources: Vec<SourcePlan> = config
            .sources
            .iter()
            .flatten()
            .map(|(name, source)| SourcePlan {
                name: name.clone(),
                kind: source_kind(name, source),
                dead_letters: source
                    .dead_letter_sink()
                    .and_then(|d| sinks.iter().position(|s| s.name == d))
                    .map(SinkId),
            })
            .collect();
        let mut plan = Self {
            server: server(&config.global.server)?,
            enrichment: enrichment(config),
            sources,
            sinks,
            mappings: Vec::new(),
        };
        plan.mappings = mappings(config, &plan);
        // The Confluent id is the mappings' (validation allows one per sink).
        for i in 0..plan.sinks.len() {
            let id = plan.writers_of(SinkId(i)).find_map(|m| m.confluent_id);
            if let SinkKind::Kafka(kafka) = &mut plan.sinks[i].kind {
                kafka.confluent_id = id;
            }
        }
        Ok(plan)
    }
}

fn ip(host: &str, key: &str) -> Result<IpAddr, String> {
    host.parse().map_err(|e| format!("divolte.global.server.{key} = {host:?}: {e}"))
}

fn server(s: &ServerConfig) -> Result<ServerPlan, String> {
    let listen_ip = match s.host.as_deref() {
        // Unset means loopback, as in the original.
        None | Some("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(h) => ip(h, "host")?,
    };
    let admin = match s.metrics_port {
        None => None,
        Some(port) => {
            let admin_ip = match s.metrics_host.as_deref() {
                Some(h) => ip(h, "metrics_host")?,
                None => listen_ip,
            };
            Some(SocketAddr::new(admin_ip, port))
        }
    };
    Ok(ServerPlan {
        listen: SocketAddr::new(listen_ip, s.port),
        admin,
        cores: s.cores.clone(),
        limits: Limits {
            max_head_bytes: s.max_header_bytes,
            max_body_bytes: s.max_body_bytes,
            request_timeout: s.header_read_timeout.0,
            idle_timeout: s.idle_timeout.0,
        },
        max_connections: s.max_connections,
        shutdown_delay: s.shutdown_delay.0,
        shutdown_timeout: s.shutdown_timeout.0,
        watchdog_timeout: s.watchdog_timeout.0,
        serve_static_resources: s.serve_static_resources,
        debug_requests: s.debug_requests,
        delivery: match s.delivery {
            DeliveryMode::Fast => Delivery::Fast,
            DeliveryMode::Durable => Delivery::Durable(s.delivery_timeout.0),
        },
        watch_config: s.watch_config,
    })
}

fn enrichment(config: &Config) -> EnrichmentPlan {
    let mapper = &config.global.mapper;
    EnrichmentPlan {
        duplicate_memory_size: mapper.duplicate_memory_size,
        user_agent_cache_size: mapper.user_agent_parser.cache_size,
        ip2geo_database: mapper.ip2geo_database.clone(),
        use_x_forwarded_for: config.global.server.use_x_forwarded_for,
        anonymize_ip: mapper.anonymize_ip,
    }
}

fn source_kind(name: &str, source: &SourceConfig) -> SourceKind {
    match source {
        SourceConfig::Json(j) => SourceKind::Json(JsonPlan {
            event_path: j.event_path.clone(),
            party_parameter: j.party_id_parameter.clone(),
            max_body: j.maximum_body_size.div_ceil(4096).max(1) * 4096,
            cors_origins: j.cors_allowed_origins.clone(),
        }),
        SourceConfig::Browser(b) => {
            if !b.http_response_delay.0.is_zero() {
                tracing::warn!(source = %name, "http_response_delay is not supported and is ignored.");
            }
            let prefix = b.normalized_prefix();
            SourceKind::Browser(Box::new(BrowserPlan {
                event_path: format!("{prefix}{}", b.event_suffix),
                tag_path: format!("{prefix}{}", b.javascript.name),
                tag: tag_settings(b),
                readable_tag: b.javascript.debug,
                beacon: b.javascript.use_beacon,
                batch_path: format!("{prefix}{}", b.batch_suffix),
                server_cookies: b.server_cookies,
                respect_gpc: b.respect_gpc,
                respect_dnt: b.respect_dnt,
                cors_origins: b.cors_allowed_origins.clone(),
            }))
        }
    }
}

/// What a browser source bakes into its tag.
fn tag_settings(b: &BrowserSourceConfig) -> TagSettings {
    TagSettings {
        party_cookie: b.party_cookie.clone(),
        // The original caps cookie lifetimes at Java's Integer.MAX_VALUE seconds.
        party_timeout_seconds: b.party_timeout.0.as_secs().min(i32::MAX as u64),
        session_cookie: b.session_cookie.clone(),
        session_timeout_seconds: b.session_timeout.0.as_secs().min(i32::MAX as u64),
        cookie_domain: b.cookie_domain.clone().unwrap_or_default(),
        same_site: b.cookie_same_site.clone().unwrap_or_default(),
        secure: b.cookie_secure,
        logging: b.javascript.logging,
        script_name: b.javascript.name.clone(),
        event_suffix: b.event_suffix.clone(),
        auto_page_view: b.javascript.auto_page_view_event,
        event_timeout_millis: b.javascript.event_timeout.0.as_millis() as u64,
        beacon: b.javascript.use_beacon,
        batch_suffix: b.batch_suffix.clone(),
        require_consent: b.javascript.require_consent,
        respect_gpc: b.respect_gpc,
        respect_dnt: b.respect_dnt,
    }
}

fn sink_plan(config: &Config, name: &str, sink: &SinkConfig) -> Result<SinkPlan, String> {
    let global = &config.global;
    let (lanes, buffer_size, kind) = match sink {
        SinkConfig::Hdfs(h) => {
            (global.hdfs.threads, global.hdfs.buffer_size, SinkKind::File(Box::new(hdfs(config, name, h))))
        }
        SinkConfig::Gcs(g) => {
            let store = StorePlan::Gcs {
                bucket: g.bucket.clone().unwrap_or_default(),
                prefix: key_prefix(&g.file_strategy.publish_dir),
                request: request_retry(&g.retry_settings),
            };
            let plan = remote(name, &g.file_strategy, g.staging_dir.as_deref(), store, &g.retry_settings);
            (global.gcs.threads, global.gcs.buffer_size, SinkKind::File(Box::new(plan)))
        }
        SinkConfig::S3(s3) => {
            let store = StorePlan::S3 {
                bucket: s3.bucket.clone().unwrap_or_default(),
                region: s3.region.clone(),
                endpoint: s3.endpoint.clone(),
                prefix: key_prefix(&s3.file_strategy.publish_dir),
                request: request_retry(&s3.retry_settings),
            };
            let plan = remote(name, &s3.file_strategy, s3.staging_dir.as_deref(), store, &s3.retry_settings);
            (global.s3.threads, global.s3.buffer_size, SinkKind::File(Box::new(plan)))
        }
        SinkConfig::Kafka(k) => (
            global.kafka.threads,
            global.kafka.buffer_size,
            SinkKind::Kafka(KafkaPlan {
                topic: k.topic.clone(),
                mode: k.mode,
                confluent_id: None,
                properties: Properties(crate::config::kafka::producer_properties(&global.kafka.producer)?),
                spool: k.spool.clone(),
            }),
        ),
        SinkConfig::Gcps(_) => {
            return Err(format!("divolte.sinks.{name}: Google Cloud Pub/Sub sinks are not supported"));
        }
    };
    let format = match sink.output() {
        (RecordFormat::Avro, _) => Format::Avro,
        (RecordFormat::Json, unions) => Format::Json(unions),
    };
    if let (Format::Json(_), SinkKind::Kafka(KafkaPlan { mode: KafkaMode::Confluent, .. })) = (format, &kind) {
        return Err(format!(
            "divolte.sinks.{name}.format: \"json\" values carry no schema id; use mode = \"naked\" with JSON"
        ));
    }
    Ok(SinkPlan { name: name.to_owned(), lanes, buffer_size, kind, format })
}

/// How long a local file sink waits before it tries a failed write again.
const LOCAL_RETRY: Duration = Duration::from_millis(500);

/// Where a remote store's files are staged when `staging_dir` is unset:
/// a directory that survives a reboot, as staged files must.
fn default_staging(sink: &str) -> PathBuf {
    PathBuf::from("/var/tmp/divolte-collector").join(sink)
}

/// An object key prefix from a directory setting: no leading or trailing `/`.
fn key_prefix(dir: &str) -> String {
    dir.trim_matches('/').to_owned()
}

/// A directory setting as a local path (`file://` allowed).
fn local_path(dir: &str) -> PathBuf {
    PathBuf::from(dir.strip_prefix("file://").unwrap_or(dir))
}

/// The pauses between attempts to publish, from the original's GCS keys.
fn backoff(retry: &RetrySettings) -> Backoff {
    Backoff {
        initial: retry.initial_retry_delay.0,
        multiplier: retry.retry_delay_multiplier,
        max: retry.max_retry_delay.0,
        jitter: match retry.jitter_factor {
            Some(f) => Jitter::Fraction(f),
            None => Jitter::Upto(retry.jitter_delay.map_or(Duration::from_secs(1), |d| d.0)),
        },
    }
}

/// One request's retries inside the store client: a few, within at most a
/// minute, so that a failing store shows as an unhealthy sink quickly.
fn request_retry(retry: &RetrySettings) -> RequestRetry {
    RequestRetry {
        retries: if retry.max_attempts == 0 { 3 } else { retry.max_attempts.saturating_sub(1) as usize },
        timeout: retry.total_timeout.0.min(Duration::from_secs(60)),
        backoff: backoff(retry),
    }
}

fn remote(
    sink: &str,
    strategy: &FileStrategyConfig,
    staging: Option<&str>,
    store: StorePlan,
    retry: &RetrySettings,
) -> FilePlan {
    FilePlan {
        strategy: strategy.clone(),
        staging: staging.map_or_else(|| default_staging(sink), local_path),
        store,
        backoff: backoff(retry),
    }
}

/// A `type = "hdfs"` sink: HDFS when a directory is an `hdfs://` URI or
/// the default filesystem is HDFS, else local directories.
fn hdfs(config: &Config, sink: &str, h: &HdfsSinkConfig) -> FilePlan {
    let strategy = &h.file_strategy;
    let client = crate::config::property_strings(&config.global.hdfs.client);
    let conf_dir = std::env::var_os("HADOOP_CONF_DIR").map(PathBuf::from);
    let namenode =
        |dir: &str| dir.strip_prefix("hdfs://").map(|rest| rest.split('/').next().unwrap_or_default().to_owned());
    let default_fs = super::hadoop::default_fs(&client, conf_dir.as_deref()).filter(|fs| fs.starts_with("hdfs://"));
    let url = namenode(&strategy.working_dir)
        .or_else(|| namenode(&strategy.publish_dir))
        .map(|n| format!("hdfs://{n}"))
        .or(default_fs);
    let Some(url) = url else {
        let local_store = StorePlan::Local { publish: local_path(&strategy.publish_dir) };
        let local =
            Backoff { initial: LOCAL_RETRY, multiplier: 1.0, max: LOCAL_RETRY, jitter: Jitter::Upto(Duration::ZERO) };
        return FilePlan {
            strategy: strategy.clone(),
            staging: local_path(&strategy.working_dir),
            store: local_store,
            backoff: local,
        };
    };
    // A path of an hdfs:// URI, or a plain path on the default filesystem.
    let path = |dir: &str| match dir.strip_prefix("hdfs://") {
        Some(rest) => rest.find('/').map_or_else(|| "/".to_owned(), |i| rest[i..].to_owned()),
        None => dir.to_owned(),
    };
    let store = StorePlan::Hdfs {
        url,
        client: Properties(client),
        working: path(&strategy.working_dir),
        publish: path(&strategy.publish_dir),
        replication: h.replication,
    };
    FilePlan {
        strategy: strategy.clone(),
        staging: h.staging_dir.as_deref().map_or_else(|| default_staging(sink), local_path),
        store,
        backoff: backoff(&RetrySettings::default()),
    }
}

/// Each mapping with its names turned into ids. A sink that is not active
/// (its type disabled) is left out, as the original does.
fn mappings(config: &Config, plan: &Plan) -> Vec<MappingPlan> {
    let source_id = |name: &String| plan.sources.iter().position(|s| &s.name == name).map(SourceId);
    let sink_id = |name: &String| plan.sinks.iter().position(|s| &s.name == name).map(SinkId);
    config
        .mappings
        .iter()
        .flatten()
        .map(|(name, m)| {
            let sinks: Vec<SinkId> = m.sinks.iter().flatten().filter_map(sink_id).collect();
            if sinks.is_empty() {
                tracing::warn!(mapping = %name, "Mapping writes to no enabled sink; its records go nowhere.");
            }
            let script_file = m.mapping_script_file.clone();
            if let (None, Some(schema)) = (&script_file, &m.schema_file) {
                tracing::warn!(mapping = %name, schema = %schema.display(), "schema_file is ignored without mapping_script_file; the built-in schema and mapping are used.");
            }
            MappingPlan {
                name: name.clone(),
                sources: m.sources.iter().flatten().filter_map(source_id).collect(),
                sinks,
                schema_file: script_file.as_ref().and(m.schema_file.clone()),
                script_file,
                confluent_id: m.confluent_id,
                discard_corrupted: m.discard_corrupted,
                discard_duplicates: m.discard_duplicates,
                discard_bots: m.discard_bots,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml_with_env;

    fn plan(toml: &str) -> Plan {
        Plan::resolve(&from_toml_with_env(toml, |_| None).unwrap()).unwrap()
    }

    #[test]
    fn the_embedded_defaults_are_one_browser_source_into_the_file_sink() {
        let p = plan("");
        assert_eq!(p.sources.len(), 1);
        assert!(
            matches!(&p.sources[0].kind, SourceKind::Browser(b) if b.event_path == "/csc-event" && b.tag_path == "/divolte.js")
        );
        assert_eq!(p.sinks.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["hdfs"], "Kafka is off by default");
        assert_eq!(p.mappings[0].sources, [SourceId(0)]);
        assert_eq!(p.mappings[0].sinks, [SinkId(0)]);
        assert_eq!(p.server.listen, "127.0.0.1:8290".parse().unwrap());
    }

    #[test]
    fn names_become_ids_and_a_sink_carries_its_mappings_confluent_id() {
        let p = plan(
            r#"
            [global.kafka]
            enabled = true
            threads = 3
            [global.kafka.producer]
            "sasl.password" = "hunter2"
            "security.protocol" = "SASL_SSL"
            [sources.app]
            type = "json"
            event_path = "/e"
            maximum_body_size = 5000
            [sources.web]
            type = "browser"
            prefix = "/t"
            [sinks.files]
            type = "hdfs"
            [sinks.topic]
            type = "kafka"
            topic = "clicks"
            mode = "confluent"
            [mappings.a]
            sources = ["web"]
            sinks = ["topic"]
            confluent_id = 7
            [mappings.b]
            sources = ["app", "web"]
            sinks = ["files", "topic"]
            confluent_id = 7
            "#,
        );
        assert_eq!(p.sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["app", "web"]);
        assert!(matches!(&p.sources[0].kind, SourceKind::Json(j) if j.max_body == 8192 && j.event_path == "/e"));
        assert!(matches!(&p.sources[1].kind, SourceKind::Browser(b) if b.event_path == "/t/csc-event"));
        let topic = p.sinks.iter().position(|s| s.name == "topic").map(SinkId).unwrap();
        assert_eq!(p.mappings[0].sinks, [topic]);
        assert_eq!(p.mappings[1].sources, [SourceId(0), SourceId(1)]);
        let SinkKind::Kafka(kafka) = &p.sinks[topic.0].kind else { panic!("not Kafka") };
        assert_eq!((kafka.topic.as_str(), kafka.confluent_id, p.sinks[topic.0].lanes), ("clicks", Some(7), 3));
        let shown = format!("{p:?}");
        assert!(shown.contains("sasl.password") && !shown.contains("hunter2"), "Debug shows keys, never values");
    }

    #[test]
    fn a_sink_of_a_disabled_type_is_left_out_of_its_mapping() {
        let p = plan("[global.hdfs]\nenabled = false\n[global.kafka]\nenabled = true\n");
        assert_eq!(p.sinks.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["kafka"]);
        assert_eq!(p.mappings[0].sinks, [SinkId(0)]);
    }

    #[test]
    fn file_sinks_resolve_to_their_store_and_staging_directory() {
        let p = plan(
            r#"
            [global.gcs]
            enabled = true
            [global.s3]
            enabled = true
            [sinks.local]
            type = "hdfs"
            [sinks.local.file_strategy]
            working_dir = "file:///data/in"
            publish_dir = "/data/out"
            [sinks.nn]
            type = "hdfs"
            replication = 2
            [sinks.nn.file_strategy]
            working_dir = "hdfs://nn:8020/divolte/in"
            publish_dir = "/divolte/out"
            [sinks.g]
            type = "gcs"
            bucket = "b"
            [sinks.g.file_strategy]
            publish_dir = "/divolte/published/"
            [sinks.s]
            type = "s3"
            bucket = "b"
            region = "eu-west-1"
            staging_dir = "/stage/s"
            [sinks.s.retry_settings]
            initial_retry_delay = "2 seconds"
            jitter_factor = 0.5
            "#,
        );
        let file = |name: &str| match &p.sinks.iter().find(|s| s.name == name).unwrap().kind {
            SinkKind::File(f) => f.clone(),
            SinkKind::Kafka(_) => panic!("{name} is not a file sink"),
        };
        let local = file("local");
        assert_eq!(local.store, StorePlan::Local { publish: PathBuf::from("/data/out") });
        assert_eq!(local.staging, PathBuf::from("/data/in"), "a local sink writes in its working_dir");
        let StorePlan::Hdfs { url, working, publish, replication, .. } = file("nn").store else { panic!("not HDFS") };
        assert_eq!(
            (url.as_str(), working.as_str(), publish.as_str(), replication),
            ("hdfs://nn:8020", "/divolte/in", "/divolte/out", 2)
        );
        assert_eq!(file("nn").staging, PathBuf::from("/var/tmp/divolte-collector/nn"));
        assert!(
            matches!(file("g").store, StorePlan::Gcs { ref bucket, ref prefix, .. } if bucket == "b" && prefix == "divolte/published")
        );
        let s3 = file("s");
        assert!(matches!(s3.store, StorePlan::S3 { ref region, .. } if region.as_deref() == Some("eu-west-1")));
        assert_eq!(s3.staging, PathBuf::from("/stage/s"));
        assert_eq!((s3.backoff.initial, s3.backoff.jitter), (Duration::from_secs(2), Jitter::Fraction(0.5)));
    }

    #[test]
    fn the_same_file_resolves_equal_and_a_changed_one_does_not() {
        let text = "[global.server]\nport = 9000\nmetrics_port = 9001\n";
        assert_eq!(plan(text), plan(text));
        assert_ne!(plan(text), plan("[global.server]\nport = 9000\n"));
        assert_eq!(plan(text).server.admin, Some("127.0.0.1:9001".parse().unwrap()));
    }
}
