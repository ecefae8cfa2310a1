use super::*;

fn parse(text: &str) -> Result<Config, ConfigErrors> {
    from_toml_with_env(text, |_| None)
}

fn messages(text: &str) -> Vec<String> {
    parse(text).unwrap_err().0.iter().map(|e| e.to_string()).collect()
}

#[test]
fn embedded_defaults_match_the_original() {
    let c = parse("").unwrap();
    let s = &c.global.server;
    assert_eq!((s.host.as_deref(), s.port), (None, 8290));
    assert_eq!(s.shutdown_delay.0, std::time::Duration::ZERO);
    assert_eq!(s.shutdown_timeout.0, std::time::Duration::from_secs(120));
    assert!(s.serve_static_resources && !s.use_x_forwarded_for);
    assert_eq!(c.global.mapper.duplicate_memory_size, 1_000_000);
    assert_eq!(c.global.mapper.user_agent_parser.cache_size, 1000);
    assert!(c.global.hdfs.enabled && !c.global.kafka.enabled);
    let sources = c.sources.as_ref().unwrap();
    let SourceConfig::Browser(b) = &sources["browser"] else { panic!("default source is a browser source") };
    assert_eq!((b.prefix.as_str(), b.event_suffix.as_str(), b.party_cookie.as_str()), ("/", "csc-event", "_dvp"));
    assert_eq!(b.javascript.event_timeout.0, std::time::Duration::from_millis(750));
    let sinks = c.sinks.as_ref().unwrap();
    let SinkConfig::Hdfs(h) = &sinks["hdfs"] else { panic!("default hdfs sink") };
    assert_eq!(
        (h.replication, h.file_strategy.working_dir.as_str(), h.file_strategy.sync_file_after_records),
        (1, "/tmp", 1000)
    );
    let m = &c.mappings.as_ref().unwrap()["default"];
    assert_eq!(m.sources.as_deref(), Some(&["browser".to_owned()][..]));
    assert_eq!(m.sinks.as_deref(), Some(&["hdfs".to_owned(), "kafka".to_owned()][..]));
    assert_eq!(c.active_sinks().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["hdfs"], "kafka is disabled globally");
    let producer = flatten_table(&c.global.kafka.producer);
    assert!(producer.contains(&("compression.type".into(), toml::Value::String("lz4".into()))));
}

#[test]
fn accepts_a_divolte_root_table_and_hocon_durations() {
    let c = parse(
        r#"
        [divolte.global.server]
        port = 9999
        shutdown_delay = "20 seconds"
        [divolte.global.kafka.producer]
        bootstrap.servers = "broker:9092"
        "#,
    )
    .unwrap();
    assert_eq!(c.global.server.port, 9999);
    assert_eq!(c.global.server.shutdown_delay.0, std::time::Duration::from_secs(20));
    let producer = flatten_table(&c.global.kafka.producer);
    assert!(producer.contains(&("bootstrap.servers".into(), toml::Value::String("broker:9092".into()))));
    assert!(producer.iter().any(|(k, _)| k == "client.id"), "defaults kept beside the user's keys");
}

#[test]
fn reports_every_error_at_once_with_key_paths() {
    let errs = messages(
        r#"
        [global.server]
        port = "not a port"
        bogus = 1
        [global.mapper]
        threads = 1
        nonsense = true
        [sinks.files]
        type = "hdfs"
        file_strategy = { roll_evry = "1 hour" }
        [mappings.m]
        sources = ["nope"]
        sinks = ["files"]
        "#,
    );
    let joined = errs.join("\n");
    for expected in [
        "divolte.global.server.port",
        "divolte.global.mapper.nonsense: unknown key",
        "divolte.sinks.files.file_strategy.roll_evry: unknown key",
        "divolte.mappings.m.sources: unknown source \"nope\"",
    ] {
        assert!(joined.contains(expected), "missing {expected:?} in:\n{joined}");
    }
}

#[test]
fn enforces_the_original_cross_object_rules() {
    let errs = messages(
        r#"
        [sources.a]
        type = "browser"
        [sources.b]
        type = "browser"
        [sinks.a]
        type = "hdfs"
        [sinks.k]
        type = "kafka"
        mode = "confluent"
        [mappings.m]
        sources = ["a", "b"]
        sinks = ["a", "k"]
        [mappings.n]
        sinks = ["a"]
        "#,
    )
    .join("\n");
    assert!(errs.contains("divolte.sinks.a: a source is also named"), "{errs}");
    assert!(errs.contains("path /csc-event is already served by source \"a\""), "{errs}");
    assert!(errs.contains("divolte.mappings.m.confluent_id: required"), "{errs}");
    assert!(errs.contains("divolte.mappings.n.sources: required"), "{errs}");
}

#[test]
fn rejects_unknown_types_and_bad_durations() {
    let errs = messages(
        r#"
        [global.server]
        shutdown_timeout = "3 fortnights"
        [sinks.x]
        type = "azure"
        "#,
    )
    .join("\n");
    assert!(errs.contains("divolte.global.server.shutdown_timeout: unknown duration unit"), "{errs}");
    assert!(errs.contains("divolte.sinks.x.type: unknown type \"azure\""), "{errs}");
}

#[test]
fn remote_file_sinks_need_their_bucket_and_a_file_system_they_can_write() {
    let errs = messages(
        r#"
        [global.gcs]
        enabled = true
        [global.s3]
        enabled = true
        [global.gcps]
        enabled = true
        [sinks.g]
        type = "gcs"
        [sinks.g.retry_settings]
        jitter_delay = "1 second"
        jitter_factor = 0.5
        [sinks.s]
        type = "s3"
        bucket = "b"
        [sinks.s.file_strategy]
        sync_file_after_records = 0
        [sinks.h]
        type = "hdfs"
        [sinks.h.file_strategy]
        working_dir = "s3a://bucket/in"
        [sinks.h2]
        type = "hdfs"
        [sinks.h2.file_strategy]
        working_dir = "hdfs://nn1:8020/in"
        publish_dir = "hdfs://nn2:8020/out"
        [sinks.p]
        type = "gcps"
        [mappings.m]
        sources = ["browser"]
        sinks = ["g", "s", "h", "h2", "p"]
        [sources.browser]
        type = "browser"
        "#,
    )
    .join("\n");
    assert!(errs.contains("divolte.sinks.g.bucket: required"), "{errs}");
    assert!(
        errs.contains("divolte.sinks.g.retry_settings: jitter_delay and jitter_factor exclude each other"),
        "{errs}"
    );
    assert!(errs.contains("divolte.sinks.s.file_strategy.sync_file_after_records: must be at least 1"), "{errs}");
    assert!(
        errs.contains("divolte.sinks.h.file_strategy.working_dir: s3a:// is not a file system of this sink"),
        "{errs}"
    );
    assert!(
        errs.contains("divolte.sinks.h2.file_strategy: working_dir and publish_dir name different namenodes"),
        "{errs}"
    );
    assert!(errs.contains("divolte.sinks.p: Google Cloud Pub/Sub sinks are not supported"), "{errs}");
}

#[test]
fn environment_overrides_defaults_but_not_the_file() {
    let env = |k: &str| match k {
        "DIVOLTE_PORT" => Some("7000".to_owned()),
        "DIVOLTE_KAFKA_BROKER_LIST" => Some("k1:9092,k2:9092".to_owned()),
        _ => None,
    };
    let c = from_toml_with_env("", env).unwrap();
    assert_eq!(c.global.server.port, 7000);
    assert!(flatten_table(&c.global.kafka.producer)
        .contains(&("bootstrap.servers".into(), toml::Value::String("k1:9092,k2:9092".into()))));
    let c = from_toml_with_env("[global.server]\nport = 8000", env).unwrap();
    assert_eq!(c.global.server.port, 8000);
    let bad = from_toml_with_env("", |k| (k == "DIVOLTE_PORT").then(|| "eighty".to_owned())).unwrap_err();
    assert!(bad.to_string().contains("DIVOLTE_PORT"));
}

#[test]
fn a_dead_letter_sink_must_exist_and_hold_dead_letters_only() {
    let base = "[sinks.files]\ntype = \"hdfs\"\n[mappings.m]\nsources = [\"browser\"]\nsinks = [\"files\"]\n";
    let unknown = messages(&format!("[sources.browser]\ntype = \"browser\"\ndead_letter_sink = \"nowhere\"\n{base}"));
    assert!(
        unknown.iter().any(|m| m.contains("divolte.sources.browser.dead_letter_sink") && m.contains("unknown sink")),
        "{unknown:?}"
    );
    let shared = messages(&format!("[sources.browser]\ntype = \"browser\"\ndead_letter_sink = \"files\"\n{base}"));
    assert!(shared.iter().any(|m| m.contains("written by mapping \"m\"")), "{shared:?}");
    let good = parse(&format!(
        "[sources.browser]\ntype = \"browser\"\ndead_letter_sink = \"dead\"\n[sinks.dead]\ntype = \"hdfs\"\n{base}"
    ))
    .unwrap();
    let active: Vec<&String> = good.active_sinks().map(|(n, _)| n).collect();
    assert_eq!(active, ["dead", "files"], "a dead-letter sink runs though no mapping names it");
}
