//! The environment in a configuration: the original's `DIVOLTE_*`
//! overrides of defaults, and `${VAR}` / `${?VAR}` in string values.

use super::{ConfigError, ROOT};

/// Environment variables that override a default (not a value set in the
/// file), as the original's `reference.conf` does with `${?VAR}`.
const OVERRIDES: &[(&str, &[&str], Kind)] = &[
    ("DIVOLTE_HOST", &["global", "server", "host"], Kind::String),
    ("DIVOLTE_PORT", &["global", "server", "port"], Kind::Integer),
    ("DIVOLTE_KAFKA_BROKER_LIST", &["global", "kafka", "producer", "bootstrap.servers"], Kind::String),
    ("DIVOLTE_KAFKA_CLIENT_ID", &["global", "kafka", "producer", "client.id"], Kind::String),
];

#[derive(Clone, Copy)]
enum Kind {
    String,
    Integer,
}

/// Sets each overridden key the file leaves unset.
pub(super) fn apply_overrides(
    table: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    for (var, path, kind) in OVERRIDES {
        let Some(raw) = env(var) else { continue };
        let value = match kind {
            Kind::String => toml::Value::String(raw),
            Kind::Integer => match raw.trim().parse::<i64>() {
                Ok(n) => toml::Value::Integer(n),
                Err(_) => {
                    errors.push(ConfigError::new(
                        format!("{ROOT}.{}", path.join(".")),
                        format!("environment variable {var}={raw:?} is not a number"),
                    ));
                    continue;
                }
            },
        };
        insert_default(table, path, value);
    }
}

/// Sets `path` to `value` unless the file already set it (or a parent of it
/// is not a table, which validation reports).
fn insert_default(table: &mut toml::Table, path: &[&str], value: toml::Value) {
    match path {
        [] => {}
        [leaf] => {
            table.entry(leaf.to_string()).or_insert(value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                insert_default(inner, rest, value);
            }
        }
    }
}

/// Replaces `${VAR}` in every string value of `table` (at key `path`) with
/// the variable's value, as HOCON files do: an unset `${VAR}` is an error;
/// an unset `${?VAR}` is empty text, and a value that is nothing but an
/// unset `${?VAR}` is no value at all, so the key keeps its default.
/// `$${` is a literal `${`. Errors never quote the value (it may be a
/// password).
pub(super) fn substitute(
    table: &mut toml::Table,
    path: &str,
    env: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) {
    table.retain(|key, value| substitute_value(value, &format!("{path}.{key}"), env, errors));
}

/// Substitutes in `value`; false when it should be removed.
fn substitute_value(
    value: &mut toml::Value,
    path: &str,
    env: &impl Fn(&str) -> Option<String>,
    errors: &mut Vec<ConfigError>,
) -> bool {
    match value {
        toml::Value::String(text) if text.contains("${") => match expand(text, env) {
            Ok(Some(expanded)) => {
                *text = expanded;
                true
            }
            Ok(None) => false,
            Err(message) => {
                errors.push(ConfigError::new(path, message));
                true
            }
        },
        toml::Value::Table(inner) => {
            substitute(inner, path, env, errors);
            true
        }
        toml::Value::Array(items) => {
            let mut i = 0;
            items.retain_mut(|item| {
                i += 1;
                substitute_value(item, &format!("{path}[{}]", i - 1), env, errors)
            });
            true
        }
        _ => true,
    }
}

/// `text` with its `${VAR}` and `${?VAR}` replaced; `None` when it is one
/// unset `${?VAR}` and nothing else.
fn expand(text: &str, env: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut only_unset_optional = true;
    while let Some(at) = rest.find("${") {
        if rest[..at].ends_with('$') {
            out.push_str(&rest[..at - 1]);
            out.push_str("${");
            only_unset_optional = false;
            rest = &rest[at + 2..];
            continue;
        }
        out.push_str(&rest[..at]);
        only_unset_optional &= at == 0;
        let (optional, name, len) =
            reference(&rest[at..]).ok_or("\"${\" without a closing \"}\" (write $${ for a literal ${)")?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err("\"${...}\" must hold an environment variable's name (write $${ for a literal ${)".to_owned());
        }
        match env(name) {
            Some(value) => {
                out.push_str(&value);
                only_unset_optional = false;
            }
            None if optional => {}
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = &rest[at + len..];
    }
    out.push_str(rest);
    Ok((!(only_unset_optional && rest.is_empty())).then_some(out))
}

/// `${NAME}` or `${?NAME}` at the start of `text`: whether it is optional,
/// the name, and the reference's length.
pub(super) fn reference(text: &str) -> Option<(bool, &str, usize)> {
    let inner = text.strip_prefix("${")?;
    let end = inner.find('}')?;
    let (optional, name) = match inner[..end].strip_prefix('?') {
        Some(name) => (true, name),
        None => (false, &inner[..end]),
    };
    Some((optional, name, end + 3))
}

/// Writes every `${` in the string values of `table` as `$${`, so that
/// substitution gives the text back.
pub(super) fn escape(table: &mut toml::Table) {
    fn value(v: &mut toml::Value) {
        match v {
            toml::Value::String(s) if s.contains("${") => *s = s.replace("${", "$${"),
            toml::Value::Table(t) => escape(t),
            toml::Value::Array(items) => items.iter_mut().for_each(value),
            _ => {}
        }
    }
    for (_, v) in table.iter_mut() {
        value(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "DIR" => Some("/etc/divolte".into()),
            "HOST" => Some("kafka1".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_set_and_optional_variables() {
        assert_eq!(expand("${DIR}/mapping.groovy", &env), Ok(Some("/etc/divolte/mapping.groovy".into())));
        assert_eq!(expand("${?HOST}:9092", &env), Ok(Some("kafka1:9092".into())));
        assert_eq!(expand("a${?UNSET}b", &env), Ok(Some("ab".into())));
        assert_eq!(expand("${?UNSET}", &env), Ok(None), "no value: the default applies");
        assert_eq!(expand("x${?UNSET}", &env), Ok(Some("x".into())));
        assert_eq!(expand("${UNSET}", &env), Err("environment variable UNSET is not set".into()));
        assert_eq!(expand("pa$${DIR}ss", &env), Ok(Some("pa${DIR}ss".into())), "$${{ is a literal");
        let secret = "s3cr${t";
        assert!(!expand(secret, &env).unwrap_err().contains("s3cr"), "the value is not quoted");
        assert!(expand("${a.b}", &env).unwrap_err().contains("environment variable's name"));
    }

    #[test]
    fn substitutes_through_tables_and_arrays_and_drops_unset_optional_values() {
        let mut table: toml::Table = toml::from_str(
            r#"
            a = "${DIR}/x"
            b = "${?UNSET}"
            [nested]
            list = ["${HOST}:9092", "${?UNSET}", "k2:9092"]
            bad = "${UNSET}"
            "#,
        )
        .unwrap();
        let mut errors = Vec::new();
        substitute(&mut table, "divolte", &env, &mut errors);
        assert_eq!(table["a"].as_str(), Some("/etc/divolte/x"));
        assert!(!table.contains_key("b"));
        let list: Vec<&str> = table["nested"]["list"].as_array().unwrap().iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(list, ["kafka1:9092", "k2:9092"]);
        assert_eq!(errors, [ConfigError::new("divolte.nested.bad", "environment variable UNSET is not set")]);
    }
}
