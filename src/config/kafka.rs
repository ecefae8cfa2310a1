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
//!
//! A property's value is never reported: it may be a password, and
//! librdkafka's own messages quote the value they refuse
//! ([`redact`] takes every configured value out of them).

use super::property_strings;

/// Java producer keys without a librdkafka counterpart, dropped.
const JAVA_ONLY: &[&str] =
    &["key.serializer", "value.serializer", "max.block.ms", "partitioner.class", "interceptor.classes"];

/// The Java client's TLS keys that OpenSSL under librdkafka has no use for
/// (it picks protocols and algorithms itself), dropped with a warning.
const JAVA_ONLY_TLS: &[&str] = &[
    "ssl.protocol",
    "ssl.enabled.protocols",
    "ssl.provider",
    "ssl.keymanager.algorithm",
    "ssl.trustmanager.algorithm",
    "ssl.secure.random.implementation",
    "ssl.engine.factory.class",
];

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
    let java = property_strings(table);
    let setting = |key: &str| java.iter().find(|(k, _)| k == key).map(|(_, v)| v.to_ascii_uppercase());
    // The Java client reads sasl.* only over SASL; librdkafka would refuse
    // SASL credentials without a SASL protocol.
    let sasl = setting("security.protocol").is_some_and(|p| p.starts_with("SASL_"));
    // The Java client's store types: JKS unless set.
    let keystore = setting("ssl.keystore.type").unwrap_or_else(|| "JKS".into());
    let truststore = setting("ssl.truststore.type").unwrap_or_else(|| "JKS".into());
    let mut out = Vec::new();
    for (key, value) in java {
        match key.as_str() {
            k if JAVA_ONLY.contains(&k) || JAVA_ONLY_TLS.contains(&k) => {
                tracing::warn!(key = k, "Java producer property has no librdkafka counterpart; ignored.");
            }
            k if k.starts_with("sasl.") && !sasl => {
                tracing::info!(key = k, "SASL property ignored: security.protocol is not SASL_PLAINTEXT or SASL_SSL.");
            }
            "sasl.jaas.config" if value.trim().is_empty() => {}
            "sasl.mechanism" => out.push(("sasl.mechanisms".to_owned(), value)),
            "buffer.memory" => {
                let bytes: u64 = value.parse().map_err(|_| "buffer.memory must be a number of bytes".to_owned())?;
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
            // Java disables host name checks with an empty value.
            "ssl.endpoint.identification.algorithm" if value.is_empty() => out.push((key, "none".to_owned())),
            // Read with their stores, below.
            "ssl.keystore.type" | "ssl.truststore.type" => {}
            // librdkafka reads a PKCS#12 keystore under the same keys.
            "ssl.keystore.location" | "ssl.keystore.password" if keystore == "PKCS12" => out.push((key, value)),
            // A PEM truststore is a CA file; it has no password.
            "ssl.truststore.location" if truststore == "PEM" => out.push(("ssl.ca.location".to_owned(), value)),
            "ssl.truststore.password" if truststore == "PEM" => {}
            k if k.starts_with("ssl.truststore.") || k.starts_with("ssl.keystore.") => {
                return Err(format!("{k}: JKS stores are Java-only; use a PKCS12 keystore (ssl.keystore.type = \"PKCS12\"), a PEM truststore (ssl.truststore.type = \"PEM\"), or ssl.ca.location, ssl.certificate.location and ssl.key.location (PEM files)"));
            }
            _ => out.push((key, value)),
        }
    }
    if !out.iter().any(|(k, _)| k == "partitioner") {
        out.push(("partitioner".to_owned(), "murmur2_random".to_owned()));
    }
    Ok(out)
}

/// A property librdkafka refuses: its key, and the reason with every
/// configured value taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedProperty {
    /// The key as configured (after translation to librdkafka's name).
    pub key: String,
    /// Why, redacted.
    pub reason: String,
}

/// Checks `properties` as the producer will take them, without connecting:
/// librdkafka parses every key and value (unknown keys, a value of the
/// wrong type or out of range).
///
/// # Errors
/// Every property librdkafka refuses.
pub fn check_properties(properties: &[(String, String)]) -> Result<(), Vec<RefusedProperty>> {
    let refused: Vec<RefusedProperty> = properties
        .iter()
        .filter_map(|(key, value)| {
            let mut one = rdkafka::ClientConfig::new();
            one.set(key, value);
            let error = one.create_native_config().err()?;
            let reason = match error {
                rdkafka::error::KafkaError::ClientConfig(_, reason, _, _) => reason,
                other => other.to_string(),
            };
            Some(RefusedProperty { key: key.clone(), reason: redact(&reason, properties) })
        })
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(refused)
    }
}

/// `message` with every configured property value in it replaced by
/// `<redacted>`. A value counts where it stands as a whole word (not inside
/// a longer run of letters and digits), so that `0` does not eat the digits
/// of `1..1000`; a secret is a word of its own in any message.
pub fn redact(message: &str, properties: &[(String, String)]) -> String {
    let mut out = message.to_owned();
    // Longest first: a value that contains another is taken out whole.
    let mut values: Vec<&str> = properties.iter().map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()).collect();
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for value in values {
        out = redact_word(&out, value);
    }
    out
}

fn redact_word(text: &str, word: &str) -> String {
    let is_word_char = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    let (first, last) = (word.chars().next(), word.chars().next_back());
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (at, _) in text.match_indices(word) {
        let end = at + word.len();
        let starts_word = !is_word_char(text[..at].chars().next_back()) || !is_word_char(first);
        let ends_word = !is_word_char(text[end..].chars().next()) || !is_word_char(last);
        if starts_word && ends_word {
            out.push_str(&text[copied..at]);
            out.push_str("<redacted>");
            copied = end;
        }
    }
    out.push_str(&text[copied..]);
    out
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
            "security.protocol" = "SASL_SSL"
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

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn librdkafka_checks_keys_and_values_and_its_reasons_never_carry_a_value() {
        let secret = "Hunter2-not-real";
        assert_eq!(check_properties(&props(&[("sasl.password", secret), ("acks", "all")])), Ok(()));
        let bad = [("sasl.pasword", secret), ("sasl.password ", secret), ("message.timeout.ms", secret)];
        let refused = check_properties(&props(&[bad[0], ("sasl.username", "alice"), bad[1], bad[2]])).unwrap_err();
        assert_eq!(refused.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), bad.map(|(k, _)| k), "every one");
        for r in &refused {
            assert!(!r.reason.is_empty() && !r.reason.contains(secret), "{r:?}");
        }
        let refused = check_properties(&props(&[("linger.ms", "-5")])).unwrap_err();
        assert!(refused[0].reason.contains("<redacted>") && !refused[0].reason.contains("-5"), "{refused:?}");
    }

    #[test]
    fn redaction_takes_out_whole_values_only() {
        let p = props(&[("a", "0"), ("b", "s3cr=t"), ("c", "s3cr=t-longer")]);
        assert_eq!(
            redact("value 0 is outside 1..1000; \"s3cr=t-longer\" and s3cr=t", &p),
            "value <redacted> is outside 1..1000; \"<redacted>\" and <redacted>"
        );
    }

    #[test]
    fn sasl_keys_count_only_over_sasl_and_an_empty_jaas_line_is_unset() {
        let plain: toml::Table = toml::from_str(
            r#"
            "sasl.mechanism" = "PLAIN"
            "sasl.jaas.config" = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="b";'
            "#,
        )
        .unwrap();
        let props = producer_properties(&plain).unwrap();
        assert!(props.iter().all(|(k, _)| !k.starts_with("sasl.")), "{props:?}");
        let empty: toml::Table =
            toml::from_str("\"security.protocol\" = \"sasl_ssl\"\n\"sasl.jaas.config\" = \"\"").unwrap();
        let props = producer_properties(&empty).unwrap();
        assert!(props.iter().all(|(k, _)| !k.starts_with("sasl.")), "{props:?}");
        assert_eq!(check_properties(&props), Ok(()));
    }

    #[test]
    fn java_tls_keys_translate_or_are_dropped() {
        let table: toml::Table = toml::from_str(
            r#"
            "security.protocol" = "SSL"
            "ssl.protocol" = "TLSv1.2"
            "ssl.enabled.protocols" = "TLSv1.2,TLSv1.3"
            "ssl.keystore.type" = "PKCS12"
            "ssl.keystore.location" = "/etc/kafka/client.p12"
            "ssl.keystore.password" = "k"
            "ssl.truststore.type" = "PEM"
            "ssl.truststore.location" = "/etc/kafka/ca.pem"
            "ssl.endpoint.identification.algorithm" = ""
            "#,
        )
        .unwrap();
        let props = producer_properties(&table).unwrap();
        let get = |k: &str| props.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ssl.keystore.location"), Some("/etc/kafka/client.p12"));
        assert_eq!(get("ssl.keystore.password"), Some("k"));
        assert_eq!(get("ssl.ca.location"), Some("/etc/kafka/ca.pem"));
        assert_eq!(get("ssl.endpoint.identification.algorithm"), Some("none"));
        for dropped in ["ssl.protocol", "ssl.enabled.protocols", "ssl.keystore.type", "ssl.truststore.location"] {
            assert_eq!(get(dropped), None, "{dropped}");
        }
        assert_eq!(check_properties(&props), Ok(()), "librdkafka takes every translated key");
    }

    #[test]
    fn refuses_what_cannot_translate() {
        let table: toml::Table = toml::from_str("\"ssl.truststore.location\" = \"/etc/kafka.jks\"").unwrap();
        assert!(producer_properties(&table).unwrap_err().contains("ssl.ca.location"));
    }
}
