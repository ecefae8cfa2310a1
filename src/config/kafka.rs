//! Kafka producer properties: the original's Java producer keys, as
//! librdkafka understands them.
//!
//! Most keys have the same name in both clients and pass through as they
//! are (`bootstrap.servers`, `client.id`, `acks`, `retries`,
//! `compression.type`, `linger.ms`, `security.protocol`...). The rest:
//!
//! | Java producer | librdkafka |
//! |---|---|
//! | `sasl.mechanism` | `sasl.mechanisms` |
//! | `sasl.jaas.config` (PlainLoginModule / ScramLoginModule) | `sasl.username`, `sasl.password` |
//! | `buffer.memory` (bytes) | `queue.buffering.max.kbytes` |
//! | `key.serializer`, `value.serializer`, `max.block.ms`, `partitioner.class`, `interceptor.classes` | dropped: Java-only, with a warning |
//! | `ssl.truststore.*`, `ssl.keystore.*` (JKS files) | refused: use `ssl.ca.location` / `ssl.certificate.location` (PEM) |
//!
//! A list value (`bootstrap.servers = ["a:9092", "b:9092"]`) is joined with commas.
//!
//! Unless set, `partitioner` is `murmur2_random`: the Java producer's
//! partitioning, so a party's records land on the partition the original
//! chose for it.

use super::flatten_table;

/// Java producer keys without a librdkafka counterpart, dropped.
const JAVA_ONLY: &[&str] =
    &["key.serializer", "value.serializer", "max.block.ms", "partitioner.class", "interceptor.classes"];

fn text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// The quoted value of `key=` in a JAAS line.
fn jaas_value(jaas: &str, key: &str) -> Option<String> {
    let at = jaas.find(&format!("{key}="))? + key.len() + 1;
    let rest = jaas[at..].trim_start();
    let quoted = rest.strip_prefix('"')?;
    Some(quoted[..quoted.find('"')?].to_owned())
}

/// Translates the `global.kafka.producer` table into librdkafka properties.
///
/// # Errors
/// A key that cannot be translated, with what to use instead.
pub fn producer_properties(table: &toml::Table) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (key, value) in flatten_table(table) {
        let value = text(&value);
        match key.as_str() {
            k if JAVA_ONLY.contains(&k) => {
                tracing::warn!(key = k, "Java producer property has no librdkafka counterpart; ignored.");
            }
            "sasl.mechanism" => out.push(("sasl.mechanisms".to_owned(), value)),
            "buffer.memory" => {
                let bytes: u64 =
                    value.parse().map_err(|_| format!("buffer.memory must be a number of bytes, not {value:?}"))?;
                out.push(("queue.buffering.max.kbytes".to_owned(), (bytes / 1024).max(1).to_string()));
            }
            "sasl.jaas.config" => {
                let (Some(user), Some(password)) = (jaas_value(&value, "username"), jaas_value(&value, "password"))
                else {
                    return Err("sasl.jaas.config: only username=\"...\" password=\"...\" logins translate; set sasl.username and sasl.password instead".into());
                };
                out.push(("sasl.username".to_owned(), user));
                out.push(("sasl.password".to_owned(), password));
            }
            k if k.starts_with("ssl.truststore.") || k.starts_with("ssl.keystore.") => {
                return Err(format!("{k}: JKS stores are Java-only; use ssl.ca.location, ssl.certificate.location and ssl.key.location (PEM files)"));
            }
            _ => out.push((key, value)),
        }
    }
    if !out.iter().any(|(k, _)| k == "partitioner") {
        out.push(("partitioner".to_owned(), "murmur2_random".to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_java_producer_keys() {
        let table: toml::Table = toml::from_str(
            r#"
            bootstrap.servers = ["k1:9092", "k2:9092"]
            acks = "all"
            "linger.ms" = 5
            "sasl.mechanism" = "PLAIN"
            "sasl.jaas.config" = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="alice" password="s3cr=t";'
            "buffer.memory" = 33554432
            "key.serializer" = "org.apache.kafka.common.serialization.StringSerializer"
            "#,
        )
        .unwrap();
        let props = producer_properties(&table).unwrap();
        let get = |k: &str| props.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("bootstrap.servers"), Some("k1:9092,k2:9092"));
        assert_eq!(get("acks"), Some("all"));
        assert_eq!(get("linger.ms"), Some("5"));
        assert_eq!(get("sasl.mechanisms"), Some("PLAIN"));
        assert_eq!(get("sasl.username"), Some("alice"));
        assert_eq!(get("sasl.password"), Some("s3cr=t"));
        assert_eq!(get("queue.buffering.max.kbytes"), Some("32768"));
        assert_eq!(get("key.serializer"), None);
        assert_eq!(get("partitioner"), Some("murmur2_random"), "Java's partitioning by default");
    }

    #[test]
    fn refuses_what_cannot_translate() {
        let table: toml::Table = toml::from_str("\"ssl.truststore.location\" = \"/etc/kafka.jks\"").unwrap();
        assert!(producer_properties(&table).unwrap_err().contains("ssl.ca.location"));
    }
}
