//! A Kafka password stays out of every output: `check-config`, a refused
//! start, the logs, `/metrics` and `/ready`, whether the property around it
//! is misspelt, refused by librdkafka, or right.

mod common;

use std::process::Command;

use common::{free_port, Collector, Options, Pixel};

/// Looks like a password; is one nowhere.
const SECRET: &str = "FAKE-SECRET-7d1c9e0b";

fn kafka_toml(producer: &str) -> String {
    format!(
        "[global.kafka]\nenabled = true\n[global.kafka.producer]\n\"bootstrap.servers\" = \"127.0.0.1:{}\"\n{producer}\n\
         [sinks.k]\ntype = \"kafka\"\ntopic = \"clicks\"\n[mappings.main]\nsources = [\"browser\"]\nsinks = [\"k\"]\n",
        free_port()
    )
}

fn output_text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn refused_producer_properties_are_named_without_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("collector.toml");
    // A typo, a key with a trailing space, a value librdkafka cannot parse.
    let producer = format!(
        "\"security.protocol\" = \"sasl_plaintext\"\n\"sasl.mechanism\" = \"PLAIN\"\n\"sasl.username\" = \"alice\"\n\
         \"sasl.pasword\" = \"{SECRET}\"\n\"sasl.password \" = \"{SECRET}\"\n\"message.timeout.ms\" = \"{SECRET}\"\n"
    );
    std::fs::write(&file, format!("[global.server]\nport = {}\n{}", free_port(), kafka_toml(&producer))).unwrap();

    let check = Command::new(env!("CARGO_BIN_EXE_divolte-collector")).arg("check-config").arg(&file).output().unwrap();
    let text = output_text(&check);
    assert_eq!(check.status.code(), Some(1), "check-config calls it valid:\n{text}");
    for key in ["\"sasl.pasword\"", "\"sasl.password \"", "\"message.timeout.ms\""] {
        assert!(text.contains(&format!("divolte.global.kafka.producer.{key}")), "{key} not reported:\n{text}");
    }
    assert!(!text.contains(SECRET), "check-config printed the secret:\n{text}");

    let start = Command::new(env!("CARGO_BIN_EXE_divolte-collector"))
        .arg("--config")
        .arg(&file)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let text = output_text(&start);
    assert_eq!(start.status.code(), Some(1), "{text}");
    assert!(text.contains("sasl.pasword"), "{text}");
    assert!(!text.contains(SECRET), "startup printed the secret:\n{text}");
}

#[test]
fn a_working_password_appears_in_no_log_metric_or_probe() {
    let jaas = format!(
        "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"{SECRET}\";"
    );
    // The broker is not there: librdkafka retries and reports, the sink is
    // not ready, and none of it may carry the password.
    let producer = format!(
        "\"security.protocol\" = \"sasl_plaintext\"\n\"sasl.mechanism\" = \"PLAIN\"\n\"sasl.jaas.config\" = '{jaas}'\n\
         \"message.timeout.ms\" = 2000\n\"debug\" = \"security,broker,conf\"\n"
    );
    // Undelivered records are retried until the drain's deadline.
    let toml = format!("shutdown_timeout = \"3 seconds\"\n{}", kafka_toml(&producer));
    let c = Collector::start(Options { toml, file_sink: false, ..Options::default() });
    for i in 0..5 {
        let q = Pixel { location: format!("http://secret/{i}"), ..Pixel::default() }.query();
        assert!(c.get(&format!("/csc-event?{q}"), "").starts_with("HTTP/1.1 200"));
    }
    common::eventually(std::time::Duration::from_secs(10), || c.log_text().contains("Kafka client error"));
    let metrics = c.get("/metrics", "");
    let ready = c.get("/ready", "");
    let (_, c) = c.stop();
    let log = c.log_text();
    for (what, text) in [("/metrics", &metrics), ("/ready", &ready), ("the log", &log)] {
        assert!(!text.contains(SECRET), "{what} carries the secret:\n{text}");
    }
}
