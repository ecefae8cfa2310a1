//! Cross-object rules of the original (reference 7.7) plus the limits of this
//! collector, each reported with its key path and a way out.

use std::collections::BTreeMap;

use super::{Config, ConfigError, KafkaMode, SinkConfig, SourceConfig};

/// Checks the whole tree; returns every problem found.
pub fn validate(config: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let empty_sources = BTreeMap::new();
    let empty_sinks = BTreeMap::new();
    let sources = config.sources.as_ref().unwrap_or(&empty_sources);
    let sinks = config.sinks.as_ref().unwrap_or(&empty_sinks);
    validate_server(config, &mut errors);
    validate_sources(sources, &mut errors);

    for name in sources.keys() {
        if sinks.contains_key(name) {
            errors.push(ConfigError::new(
                format!("divolte.sinks.{name}"),
                format!("a source is also named {name:?}; source and sink names must differ"),
            ));
        }
    }

    let mut sink_schema: BTreeMap<&str, (&str, Option<&std::path::Path>)> = BTreeMap::new();
    let mut sink_confluent: BTreeMap<&str, (&str, i32)> = BTreeMap::new();
    for (mname, mapping) in config.mappings.iter().flatten() {
        let path = format!("divolte.mappings.{mname}");
        match &mapping.sources {
            None => errors
                .push(ConfigError::new(format!("{path}.sources"), "required: list the sources this mapping reads")),
            Some(list) if list.is_empty() => {
                errors.push(ConfigError::new(format!("{path}.sources"), "must name at least one source"))
            }
            Some(list) => {
                for s in list.iter().filter(|s| !sources.contains_key(*s)) {
                    errors.push(ConfigError::new(
                        format!("{path}.sources"),
                        format!("unknown source {s:?}; declared sources: {:?}", sources.keys().collect::<Vec<_>>()),
                    ));
                }
            }
        }
        let Some(sink_list) = &mapping.sinks else {
            errors.push(ConfigError::new(format!("{path}.sinks"), "required: list the sinks this mapping writes to"));
            continue;
        };
        if sink_list.is_empty() {
            errors.push(ConfigError::new(format!("{path}.sinks"), "must name at least one sink"));
        }
        for s in sink_list {
            let Some(sink) = sinks.get(s) else {
                errors.push(ConfigError::new(
                    format!("{path}.sinks"),
                    format!("unknown sink {s:?}; declared sinks: {:?}", sinks.keys().collect::<Vec<_>>()),
                ));
                continue;
            };
            let schema = mapping.schema_file.as_deref().filter(|_| mapping.mapping_script_file.is_some());
            if let Some((other, other_schema)) = sink_schema.insert(s, (mname, schema)) {
                if other_schema != schema {
                    errors.push(ConfigError::new(
                        format!("{path}.schema_file"),
                        format!("sink {s:?} also receives mapping {other:?} with a different schema; one sink takes one schema"),
                    ));
                }
            }
            if let SinkConfig::Kafka(k) = sink {
                if k.mode == KafkaMode::Confluent {
                    match mapping.confluent_id {
                        None => errors.push(ConfigError::new(
                            format!("{path}.confluent_id"),
                            format!("required because sink {s:?} uses mode = \"confluent\""),
                        )),
                        Some(id) => {
                            if let Some((other, other_id)) = sink_confluent.insert(s, (mname, id)) {
                                if other_id != id {
                                    errors.push(ConfigError::new(
                                        format!("{path}.confluent_id"),
                                        format!("sink {s:?} also receives mapping {other:?} with confluent_id {other_id}; one sink takes one schema id"),
                                    ));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // A dead-letter sink holds dead letters only: their own schema.
    for (name, source) in sources {
        let Some(sink) = source.dead_letter_sink() else { continue };
        let path = format!("divolte.sources.{name}.dead_letter_sink");
        if !sinks.contains_key(sink) {
            errors.push(ConfigError::new(
                path,
                format!("unknown sink {sink:?}; declared sinks: {:?}", sinks.keys().collect::<Vec<_>>()),
            ));
        } else if let Some((mapping, _)) = sink_schema.get(sink) {
            errors.push(ConfigError::new(
                path,
                format!("sink {sink:?} is written by mapping {mapping:?}; a dead-letter sink holds dead letters only"),
            ));
        } else if let Some(SinkConfig::Kafka(k)) = sinks.get(sink) {
            if k.mode == KafkaMode::Confluent {
                errors.push(ConfigError::new(path, format!("sink {sink:?} uses mode = \"confluent\", which needs a mapping's confluent_id; use mode = \"naked\"")));
            }
        }
    }

    for (name, sink) in config.active_sinks() {
        let path = format!("divolte.sinks.{name}");
        match sink {
            SinkConfig::Hdfs(h) => {
                let mut namenodes = Vec::new();
                for (key, dir) in
                    [("working_dir", &h.file_strategy.working_dir), ("publish_dir", &h.file_strategy.publish_dir)]
                {
                    match dir.split_once("://") {
                        None | Some(("file", _)) => {}
                        Some(("hdfs", rest)) => namenodes.push(rest.split('/').next().unwrap_or_default().to_owned()),
                        Some((scheme, _)) => errors.push(ConfigError::new(
                            format!("{path}.file_strategy.{key}"),
                            format!("{scheme}:// is not a file system of this sink: use a local path, file:// or hdfs:// (type = \"s3\" and \"gcs\" write to buckets)"),
                        )),
                    }
                }
                if namenodes.len() == 2 && namenodes[0] != namenodes[1] {
                    errors.push(ConfigError::new(
                        format!("{path}.file_strategy"),
                        "working_dir and publish_dir name different namenodes; a file is renamed from one to the other",
                    ));
                }
                check_strategy(&path, &h.file_strategy, &mut errors);
            }
            SinkConfig::Gcs(g) => {
                check_bucket(&path, g.bucket.as_deref(), &mut errors);
                check_strategy(&path, &g.file_strategy, &mut errors);
                check_retry(&path, &g.retry_settings, &mut errors);
            }
            SinkConfig::S3(s3) => {
                check_bucket(&path, s3.bucket.as_deref(), &mut errors);
                check_strategy(&path, &s3.file_strategy, &mut errors);
                check_retry(&path, &s3.retry_settings, &mut errors);
            }
            SinkConfig::Kafka(k) => {
                if k.topic.is_empty() {
                    errors.push(ConfigError::new(format!("{path}.topic"), "must not be empty"));
                }
                if let Some(spool) = &k.spool {
                    if spool.directory.is_empty() {
                        errors.push(ConfigError::new(format!("{path}.spool.directory"), "must be set"));
                    }
                    if spool.max_bytes == 0 {
                        errors.push(ConfigError::new(format!("{path}.spool.max_bytes"), "must be at least 1"));
                    }
                }
            }
            SinkConfig::Gcps(_) => errors.push(ConfigError::new(
                path,
                "Google Cloud Pub/Sub sinks are not supported; disable them (divolte.global.gcps.enabled = false)",
            )),
        }
    }
    let g = &config.global;
    if config.active_sinks().any(|(_, s)| matches!(s, SinkConfig::Kafka(_))) {
        match super::kafka::producer_properties(&g.kafka.producer) {
            Err(e) => errors.push(ConfigError::new("divolte.global.kafka.producer", e)),
            Ok(properties) => {
                for refused in super::kafka::check_properties(&properties).err().unwrap_or_default() {
                    errors.push(ConfigError::new(
                        format!("divolte.global.kafka.producer.\"{}\"", refused.key),
                        format!("librdkafka refuses it: {}", refused.reason),
                    ));
                }
            }
        }
    }
    for (key, threads, size) in [
        ("hdfs", g.hdfs.threads, g.hdfs.buffer_size),
        ("kafka", g.kafka.threads, g.kafka.buffer_size),
        ("gcs", g.gcs.threads, g.gcs.buffer_size),
        ("s3", g.s3.threads, g.s3.buffer_size),
    ] {
        if threads == 0 {
            errors.push(ConfigError::new(format!("divolte.global.{key}.threads"), "must be at least 1"));
        }
        if size == 0 {
            errors.push(ConfigError::new(format!("divolte.global.{key}.buffer_size"), "must be at least 1"));
        }
    }
    if g.mapper.duplicate_memory_size == 0 {
        errors.push(ConfigError::new("divolte.global.mapper.duplicate_memory_size", "must be at least 1"));
    }
    if g.mapper.user_agent_parser.cache_size == 0 {
        errors.push(ConfigError::new("divolte.global.mapper.user_agent_parser.cache_size", "must be at least 1"));
    }
    let kind = g.mapper.user_agent_parser.kind.to_ascii_lowercase();
    if !["non_updating", "online_updating", "caching_and_updating"].contains(&kind.as_str()) {
        errors.push(ConfigError::new(
            "divolte.global.mapper.user_agent_parser.type",
            "expected non_updating, online_updating or caching_and_updating",
        ));
    }
    errors
}

fn validate_server(config: &Config, errors: &mut Vec<ConfigError>) {
    let s = &config.global.server;
    let path = "divolte.global.server";
    if s.max_header_bytes < 256 {
        errors.push(ConfigError::new(format!("{path}.max_header_bytes"), "must be at least 256"));
    }
    if s.metrics_port == Some(s.port) {
        errors.push(ConfigError::new(format!("{path}.metrics_port"), "must differ from port"));
    }
    if let Some(host) = &s.metrics_host {
        if host.parse::<std::net::IpAddr>().is_err() {
            errors.push(ConfigError::new(format!("{path}.metrics_host"), format!("{host:?} is not an IP address")));
        }
    }
    if s.max_connections == 0 {
        errors.push(ConfigError::new(format!("{path}.max_connections"), "must be at least 1"));
    }
    // A shard beats four times a second; a shorter limit would end a
    // healthy collector.
    let watchdog = s.watchdog_timeout.0;
    if !watchdog.is_zero() && watchdog < std::time::Duration::from_secs(1) {
        errors.push(ConfigError::new(
            format!("{path}.watchdog_timeout"),
            "must be \"0 seconds\" (off) or at least 1 second",
        ));
    }
    for (key, timeout) in [
        ("header_read_timeout", s.header_read_timeout),
        ("idle_timeout", s.idle_timeout),
        ("delivery_timeout", s.delivery_timeout),
    ] {
        if timeout.0.is_zero() {
            errors.push(ConfigError::new(format!("{path}.{key}"), "must be greater than zero"));
        }
    }
    let no_cpus = match &s.cores {
        Some(super::Cores::Count(n)) => *n == 0,
        Some(super::Cores::List(l)) => l.is_empty(),
        None => false,
    };
    if no_cpus {
        errors.push(ConfigError::new(format!("{path}.cores"), "must name at least one CPU"));
    }
    if let Some(host) = &s.host {
        if host.parse::<std::net::IpAddr>().is_err() && host != "localhost" {
            errors.push(ConfigError::new(format!("{path}.host"), format!("{host:?} is not an IP address")));
        }
    }
}

fn validate_sources(sources: &BTreeMap<String, SourceConfig>, errors: &mut Vec<ConfigError>) {
    let mut paths: BTreeMap<String, String> = BTreeMap::new();
    let mut claim = |p: String, owner: &str, key: String, errors: &mut Vec<ConfigError>| {
        if let Some(other) = paths.insert(p.clone(), owner.to_owned()) {
            errors.push(ConfigError::new(key, format!("path {p} is already served by source {other:?}")));
        }
    };
    for (name, source) in sources {
        let path = format!("divolte.sources.{name}");
        match source {
            SourceConfig::Browser(b) => {
                if !b.prefix.starts_with('/') {
                    errors.push(ConfigError::new(format!("{path}.prefix"), "must start with /"));
                }
                let js = &b.javascript.name;
                let stem_ok = js.strip_suffix(".js").is_some_and(|stem| {
                    !stem.is_empty() && stem.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                });
                if !stem_ok {
                    errors
                        .push(ConfigError::new(format!("{path}.javascript.name"), "must match ^[A-Za-z0-9_-]+\\.js$"));
                }
                for (key, suffix) in [("event_suffix", &b.event_suffix), ("batch_suffix", &b.batch_suffix)] {
                    if suffix.is_empty() || suffix.contains('/') {
                        errors.push(ConfigError::new(format!("{path}.{key}"), "must be a non-empty path segment"));
                    }
                }
                check_origins(&path, &b.cors_allowed_origins, errors);
                if let Some(s) = &b.cookie_same_site {
                    if !["Strict", "Lax", "None"].contains(&s.as_str()) {
                        errors
                            .push(ConfigError::new(format!("{path}.cookie_same_site"), "must be Strict, Lax or None"));
                    }
                    if s == "None" && !b.cookie_secure {
                        errors.push(ConfigError::new(
                            format!("{path}.cookie_secure"),
                            "browsers drop SameSite=None cookies without Secure; set cookie_secure = true",
                        ));
                    }
                }
                let prefix = b.normalized_prefix();
                claim(format!("{prefix}{}", b.event_suffix), name, format!("{path}.event_suffix"), errors);
                claim(format!("{prefix}{}", b.batch_suffix), name, format!("{path}.batch_suffix"), errors);
                claim(format!("{prefix}{js}"), name, format!("{path}.javascript.name"), errors);
            }
            SourceConfig::Json(j) => {
                if !j.event_path.starts_with('/') {
                    errors.push(ConfigError::new(format!("{path}.event_path"), "must start with /"));
                }
                check_origins(&path, &j.cors_allowed_origins, errors);
                claim(j.event_path.clone(), name, format!("{path}.event_path"), errors);
            }
        }
    }
}

/// CORS origins: `"*"` alone, or origins as browsers send them
/// (`https://shop.example.com`, `http://127.0.0.1:8080`: no path).
fn check_origins(path: &str, origins: &[String], errors: &mut Vec<ConfigError>) {
    let key = format!("{path}.cors_allowed_origins");
    if origins.iter().any(|o| o == "*") {
        if origins.len() > 1 {
            errors.push(ConfigError::new(key, "\"*\" allows every origin; list it alone"));
        }
        return;
    }
    for origin in origins {
        let host = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
        let valid = host.is_some_and(|h| !h.is_empty() && !h.contains(['/', '?', '#', ' ', '*']));
        if !valid {
            errors.push(ConfigError::new(
                key.clone(),
                format!("{origin:?} is not an origin: scheme and host, as in \"https://shop.example.com\", no path"),
            ));
        }
    }
}

/// A file sink's sync threshold.
fn check_strategy(path: &str, strategy: &super::FileStrategyConfig, errors: &mut Vec<ConfigError>) {
    if strategy.sync_file_after_records == 0 {
        errors.push(ConfigError::new(format!("{path}.file_strategy.sync_file_after_records"), "must be at least 1"));
    }
}

/// An object store sink's bucket.
fn check_bucket(path: &str, bucket: Option<&str>, errors: &mut Vec<ConfigError>) {
    if bucket.is_none_or(str::is_empty) {
        errors.push(ConfigError::new(format!("{path}.bucket"), "required: the bucket files are published to"));
    }
}

/// A remote store's backoff (the original's GCS rules).
fn check_retry(path: &str, retry: &super::RetrySettings, errors: &mut Vec<ConfigError>) {
    if retry.jitter_delay.is_some() && retry.jitter_factor.is_some() {
        errors.push(ConfigError::new(
            format!("{path}.retry_settings"),
            "jitter_delay and jitter_factor exclude each other; set one",
        ));
    }
    if retry.retry_delay_multiplier.is_nan() || retry.retry_delay_multiplier < 1.0 {
        errors.push(ConfigError::new(format!("{path}.retry_settings.retry_delay_multiplier"), "must be at least 1"));
    }
    if retry.initial_retry_delay.0 > retry.max_retry_delay.0 {
        errors.push(ConfigError::new(
            format!("{path}.retry_settings.initial_retry_delay"),
            "must not be longer than max_retry_delay",
        ));
    }
}
