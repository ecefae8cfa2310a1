//! The original's configuration files, read as they are: HOCON, with the
//! semantics of Typesafe Config (includes, `${path}` and `${?VAR}`
//! substitutions, concatenation, dotted keys, merging), parsed by the
//! `hocon-parser` crate and turned into the TOML tree the rest of the
//! configuration reads.
//!
//! Two things are ours: an include of the original's `reference.conf`
//! means the embedded defaults (they apply to every key left out anyway),
//! and the producer and Hadoop client properties that HOCON nests
//! (`bootstrap.servers = ...` unquoted) are flattened back into dotted
//! keys, as the original does.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use hocon::{HoconError, HoconValue, ParseOptions, ScalarType};

use super::{ConfigError, ROOT};

/// Subtrees whose keys are property names with dots in them.
const PROPERTY_TABLES: &[&[&str]] = &[&["global", "kafka", "producer"], &["global", "hdfs", "client"]];

/// A HOCON file as the configuration's TOML tree.
#[derive(Debug)]
pub struct Converted {
    /// The `divolte { }` tree.
    pub table: toml::Table,
    /// What was translated or dropped, and why (for `import-config`).
    pub notes: Vec<String>,
    /// The file has a `divolte { }` object.
    pub rooted: bool,
}

impl Converted {
    /// The tree as a TOML file, headed by comments on what was translated
    /// or dropped.
    pub fn to_toml(&self, origin: &str) -> Result<String, String> {
        let mut out = format!("# Translated from {origin} by `divolte-collector import-config`.\n");
        out.push_str("# Keys left out keep their defaults (see divolte-collector.toml in the docs).\n");
        for note in &self.notes {
            out.push_str(&format!("# - {note}\n"));
        }
        out.push('\n');
        // HOCON text is literal here; in TOML `${` would name a variable.
        let mut table = self.table.clone();
        super::env::escape(&mut table);
        out.push_str(&toml::to_string(&table).map_err(|e| e.to_string())?);
        Ok(out)
    }
}

/// Reads HOCON `text` (from `origin`, whose includes resolve against
/// `base_dir`), substituting from `env`.
///
/// # Errors
/// Syntax errors and unresolvable substitutions, with line and column; an
/// include of a file inside the original's jar.
pub fn convert(
    text: &str,
    origin: &str,
    base_dir: &Path,
    env: HashMap<String, String>,
) -> Result<Converted, Vec<ConfigError>> {
    let mut notes = Vec::new();
    let text = drop_reference_includes(text, origin, &mut notes)?;
    let mut read = BTreeSet::new();
    let text = substitute_environment(&text, &env, &mut read);
    if !read.is_empty() {
        let names: Vec<&str> = read.iter().map(String::as_str).collect();
        notes.push(format!(
            "{origin} reads the environment variables {}: the values they had here are written in; \
             a string value may name one instead (\"${{VAR}}\", \"${{?VAR}}\").",
            names.join(", ")
        ));
    }
    let options = ParseOptions::defaults()
        .with_base_dir(base_dir.to_path_buf())
        .with_env(env)
        .with_origin_description(origin.to_owned());
    let config = hocon::parse_string_with_options(&text, options).map_err(|e| vec![parse_error(origin, &e)])?;
    let root = config.get(ROOT);
    let rooted = root.is_some();
    let mut table = match root {
        Some(HoconValue::Object(root)) => object(root, ROOT, &mut notes),
        Some(_) => return Err(vec![ConfigError::new(ROOT, "must be an object")]),
        None => {
            notes.push(format!("{origin} has no `divolte {{ }}` object: every key keeps its default."));
            toml::Table::new()
        }
    };
    for path in PROPERTY_TABLES {
        flatten_properties(&mut table, path);
    }
    Ok(Converted { table, notes, rooted })
}

/// Blanks the lines that include the original's `reference.conf` (keeping
/// line numbers), and refuses other includes from its classpath.
fn drop_reference_includes(text: &str, origin: &str, notes: &mut Vec<String>) -> Result<String, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let lines: Vec<&str> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let statement = line.trim_start();
            if !statement.starts_with("include ") && !statement.starts_with("include\t") {
                return line;
            }
            if statement.contains("reference.conf") {
                notes.push(format!(
                    "{origin}:{}: the include of reference.conf is dropped: the original's defaults are built in.",
                    i + 1
                ));
                ""
            } else {
                if statement.contains("classpath(") {
                    errors.push(ConfigError::new(
                        format!("{origin}:{}", i + 1),
                        "a classpath include names a file inside the original's jar; include the file by its path",
                    ));
                }
                line
            }
        })
        .collect();
    if errors.is_empty() {
        Ok(lines.join("\n"))
    } else {
        Err(errors)
    }
}

/// Puts the values of environment variables (`${VAR}`, `${?VAR}` with an
/// upper-case name, the original's convention) into the text before the
/// parser sees it, and takes out a line that sets a key to an unset
/// `${?VAR}` and nothing else.
///
/// Typesafe Config would resolve them the same way. Doing it first matters
/// for the original's idiom `key = default` then `key = ${?VAR}`: the
/// parser loses the default when the same object is opened again after
/// it (`server.host = ...`, `server.host = ${?HOST}`, `server.port = ...`),
/// where the text alone keeps it. Names that are not upper case may be
/// paths of the configuration, and are left to the parser; so is an unset
/// `${?VAR}` inside a longer value, which the parser reads correctly.
fn substitute_environment(text: &str, env: &HashMap<String, String>, read: &mut BTreeSet<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_triple_quotes = false;
    for line in text.split_inclusive('\n') {
        let (body, end) = line.strip_suffix('\n').map_or((line, ""), |b| (b, "\n"));
        if !in_triple_quotes {
            if let Some(name) = sets_an_unset_variable(body, env) {
                read.insert(name.to_owned());
                out.push_str(end);
                continue;
            }
        }
        out.push_str(&substitute_line(body, env, &mut in_triple_quotes, read));
        out.push_str(end);
    }
    out
}

/// An environment variable name as the original's files write them.
fn variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// `key = ${?VAR}` (or `:`), alone on its line, with `VAR` unset: `VAR`.
fn sets_an_unset_variable<'a>(line: &'a str, env: &HashMap<String, String>) -> Option<&'a str> {
    let at = line.find(['=', ':'])?;
    let key = line[..at].trim();
    let mut value = line[at + 1..].trim();
    for comment in ["//", "#"] {
        if let Some(c) = value.find(comment) {
            value = value[..c].trim_end();
        }
    }
    let value = value.strip_suffix(',').unwrap_or(value).trim_end();
    let name = value.strip_prefix("${?").and_then(|v| v.strip_suffix('}'))?;
    let alone = !key.is_empty() && !key.contains(['{', '}', '"', '$']);
    (alone && variable_name(name) && !env.contains_key(name)).then_some(name)
}

/// One line with set variables replaced by their values as quoted strings,
/// outside quoted text and comments.
fn substitute_line(
    line: &str,
    env: &HashMap<String, String>,
    in_triple_quotes: &mut bool,
    read: &mut BTreeSet<String>,
) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while !rest.is_empty() {
        if *in_triple_quotes {
            match rest.find("\"\"\"") {
                Some(at) => {
                    out.push_str(&rest[..at + 3]);
                    rest = &rest[at + 3..];
                    *in_triple_quotes = false;
                }
                None => {
                    out.push_str(rest);
                    rest = "";
                }
            }
            continue;
        }
        if rest.starts_with("\"\"\"") {
            out.push_str("\"\"\"");
            rest = &rest[3..];
            *in_triple_quotes = true;
        } else if rest.starts_with('"') {
            let close = quoted_end(rest);
            out.push_str(&rest[..close]);
            rest = &rest[close..];
        } else if rest.starts_with("//") || rest.starts_with('#') {
            out.push_str(rest);
            rest = "";
        } else if let Some((_, name, len)) = super::env::reference(rest).filter(|(_, name, _)| variable_name(name)) {
            read.insert(name.to_owned());
            match env.get(name) {
                // A number or a boolean stays one, as Typesafe Config would
                // coerce it where a number is read.
                Some(value) if plain_scalar(value) => out.push_str(value),
                Some(value) => out.push_str(&quoted(value)),
                None => out.push_str(&rest[..len]),
            }
            rest = &rest[len..];
        } else {
            let c = rest.chars().next().unwrap_or_default();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The length of the quoted string at the start of `text`, quotes included
/// (all of `text` when it does not close on this line).
fn quoted_end(text: &str) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            _ => {}
        }
    }
    text.len()
}

/// A number or a boolean, written the same in HOCON and in the variable
/// and read back unchanged (`0123`, a password say, stays text).
fn plain_scalar(value: &str) -> bool {
    let integer = value.parse::<i64>().is_ok_and(|n| n.to_string() == value);
    let fraction = value.contains('.') && value.parse::<f64>().is_ok_and(|f| f.to_string() == value);
    integer || fraction || value == "true" || value == "false"
}

/// `value` as a HOCON quoted string.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn parse_error(origin: &str, error: &HoconError) -> ConfigError {
    match error {
        HoconError::Parse(e) => ConfigError::new(format!("{origin}:{}:{}", e.line, e.col), e.message.clone()),
        HoconError::Resolve(e) => ConfigError::new(
            format!("{origin}:{}:{}", e.line, e.col),
            format!("cannot resolve ${{{}}}: {}", e.path, e.message),
        ),
        other => ConfigError::new(origin, other.to_string()),
    }
}

fn object<'a>(
    fields: impl IntoIterator<Item = (&'a String, &'a HoconValue)>,
    path: &str,
    notes: &mut Vec<String>,
) -> toml::Table {
    let mut table = toml::Table::new();
    for (key, value) in fields {
        let at = format!("{path}.{key}");
        if let Some(v) = value_of(value, &at, notes) {
            table.insert(key.clone(), v);
        }
    }
    table
}

/// The TOML value of a HOCON value; `None` for null, which in Typesafe
/// Config leaves the key unset.
fn value_of(value: &HoconValue, path: &str, notes: &mut Vec<String>) -> Option<toml::Value> {
    Some(match value {
        HoconValue::Object(fields) => toml::Value::Table(object(fields, path, notes)),
        HoconValue::Array(items) => {
            toml::Value::Array(items.iter().filter_map(|item| value_of(item, path, notes)).collect())
        }
        HoconValue::Scalar(s) => match s.value_type {
            ScalarType::Boolean => toml::Value::Boolean(s.raw == "true"),
            // A number stays one only where that loses nothing of what was
            // written (`007`, `1.10` and numbers past 64 bits stay text).
            ScalarType::Number => match (s.raw.parse::<i64>(), s.raw.parse::<f64>()) {
                (Ok(n), _) if n.to_string() == s.raw => toml::Value::Integer(n),
                (_, Ok(f)) if f.to_string() == s.raw => toml::Value::Float(f),
                _ => toml::Value::String(s.raw.clone()),
            },
            ScalarType::Null => {
                notes.push(format!("{path} is null: left out, so it keeps its default."));
                return None;
            }
            _ => toml::Value::String(s.raw.clone()),
        },
        _ => return None,
    })
}

/// Joins the nested keys under `path` back into dotted property names
/// (`bootstrap { servers = ... }` -> `"bootstrap.servers"`).
fn flatten_properties(table: &mut toml::Table, path: &[&str]) {
    let [parents @ .., last] = path else { return };
    let mut at = table;
    for key in parents {
        let Some(toml::Value::Table(inner)) = at.get_mut(*key) else { return };
        at = inner;
    }
    if let Some(toml::Value::Table(properties)) = at.get_mut(*last) {
        *properties = super::flatten_table(properties).into_iter().collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn read(text: &str, vars: &[(&str, &str)]) -> Converted {
        convert(text, "test.conf", Path::new("."), env(vars)).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn every_construct_the_originals_files_use() {
        let text = r#"
            include "reference.conf"
            // comments of both kinds
            # ...
            divolte {
              global {
                server.host = "0.0.0.0"
                server.port = 8290
                server.port = ${?TEST_PORT}
                server.shutdown_timeout = 10 seconds
                kafka {
                  enabled = true
                  producer = {
                    bootstrap.servers = ["k1:9092", "k2:9092"]
                    "client.id" = divolte-${?HOSTNAME_X}"-a"
                    acks = all
                    linger.ms = 5
                  }
                }
              }
              global.server.use_x_forwarded_for = true
              sources.browser.type = browser
              mappings.m = {
                schema_file = ${DIR}"/schema.avsc"
                mapping_script_file = ${DIR}"/mapping.groovy"
                sources = [browser]
                sinks = [kafka]
              }
              mappings.m { confluent_id = ${divolte.global.server.port} }
              sinks.kafka { type = kafka, topic = clicks }
            }
            other.app.key = ignored
        "#;
        let c = read(text, &[("DIR", "/etc/divolte")]);
        let t = &c.table;
        let server = &t["global"]["server"];
        assert_eq!(server["host"].as_str(), Some("0.0.0.0"));
        assert_eq!(server["port"].as_integer(), Some(8290), "${{?TEST_PORT}} unset keeps the value before it");
        assert_eq!(server["shutdown_timeout"].as_str(), Some("10 seconds"));
        assert_eq!(server["use_x_forwarded_for"].as_bool(), Some(true), "a later dotted key merges");
        let producer = t["global"]["kafka"]["producer"].as_table().unwrap();
        assert_eq!(producer["bootstrap.servers"].as_array().unwrap().len(), 2, "unquoted dots flattened back");
        assert_eq!(producer["client.id"].as_str(), Some("divolte--a"));
        assert_eq!(producer["linger.ms"].as_integer(), Some(5));
        assert_eq!(producer["acks"].as_str(), Some("all"));
        let m = &t["mappings"]["m"];
        assert_eq!(m["schema_file"].as_str(), Some("/etc/divolte/schema.avsc"));
        assert_eq!(m["mapping_script_file"].as_str(), Some("/etc/divolte/mapping.groovy"));
        assert_eq!(m["confluent_id"].as_integer(), Some(8290), "a reference to another key");
        assert_eq!(m["sources"].as_array().unwrap()[0].as_str(), Some("browser"));
        assert_eq!(t["sinks"]["kafka"]["topic"].as_str(), Some("clicks"));
        assert!(c.notes.iter().any(|n| n.contains("reference.conf")), "{:?}", c.notes);

        let set = read(text, &[("DIR", "/d"), ("TEST_PORT", "9000"), ("HOSTNAME_X", "h1")]);
        assert_eq!(set.table["global"]["server"]["port"].as_integer(), Some(9000), "${{?VAR}} set overrides");
        assert_eq!(set.table["global"]["kafka"]["producer"]["client.id"].as_str(), Some("divolte-h1-a"));
    }

    #[test]
    fn a_default_survives_an_unset_override_when_its_object_is_opened_again() {
        let text = "divolte.global.server.host = \"0.0.0.0\"\ndivolte.global.server.host = ${?TEST_HOST}  # env\ndivolte.global.server.port = 1\n";
        let c = read(text, &[]);
        assert_eq!(c.table["global"]["server"]["host"].as_str(), Some("0.0.0.0"));
        let c = read(text, &[("TEST_HOST", "::1")]);
        assert_eq!(c.table["global"]["server"]["host"].as_str(), Some("::1"));
        assert!(c.notes.iter().any(|n| n.contains("environment variables TEST_HOST:")), "{:?}", c.notes);
    }

    #[test]
    fn variables_are_not_substituted_inside_quotes_or_comments() {
        assert!(plain_scalar("9000") && plain_scalar("-1.5") && plain_scalar("true"));
        assert!(!plain_scalar("1.2.3") && !plain_scalar("9000 ") && !plain_scalar("") && !plain_scalar("."));
        assert!(!plain_scalar("0123") && !plain_scalar("1.10") && !plain_scalar("99999999999999999999"));
        let vars = env(&[("X", "a\"b\\c")]);
        let (mut triple, mut seen) = (false, BTreeSet::new());
        assert_eq!(substitute_line("k = ${X}", &vars, &mut triple, &mut seen), "k = \"a\\\"b\\\\c\"");
        assert_eq!(substitute_line("k = \"${X}\" // ${X}", &vars, &mut triple, &mut seen), "k = \"${X}\" // ${X}");
        assert_eq!(
            substitute_line("k = ${?x.path} ${?lower}", &vars, &mut triple, &mut seen),
            "k = ${?x.path} ${?lower}"
        );
        assert_eq!(substitute_line("k = \"\"\"${X}", &vars, &mut triple, &mut seen), "k = \"\"\"${X}");
        assert!(triple);
        assert_eq!(substitute_line("${X}\"\"\" ${X}", &vars, &mut triple, &mut seen), "${X}\"\"\" \"a\\\"b\\\\c\"");
        let c = read("divolte.global.server.host = ${X}\n", &[("X", "a\"b\\c")]);
        assert_eq!(c.table["global"]["server"]["host"].as_str(), Some("a\"b\\c"));
    }

    #[test]
    fn includes_resolve_next_to_the_including_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("server.conf"), "divolte.global.server { port = 7000, host = \"::\" }\n")
            .unwrap();
        let text = "include \"server.conf\"\ndivolte.global.server.port = 7001\n";
        let c = convert(text, "main.conf", dir.path(), HashMap::new()).unwrap();
        assert_eq!(c.table["global"]["server"]["port"].as_integer(), Some(7001), "later keys override");
        assert_eq!(c.table["global"]["server"]["host"].as_str(), Some("::"), "objects merge");
    }

    #[test]
    fn errors_carry_file_line_and_column() {
        let errors =
            convert("divolte {\n  global {\n    server.port = = 1\n", "bad.conf", Path::new("."), HashMap::new())
                .unwrap_err();
        assert!(errors[0].path.starts_with("bad.conf:3:"), "{errors:?}");
        let errors = convert("divolte.x = ${NOPE_NOT_SET}\n", "bad.conf", Path::new("."), HashMap::new()).unwrap_err();
        assert!(errors[0].path.starts_with("bad.conf:1:") && errors[0].message.contains("NOPE_NOT_SET"), "{errors:?}");
        let errors = convert("include classpath(\"x.conf\")\n", "c.conf", Path::new("."), HashMap::new()).unwrap_err();
        assert_eq!(errors[0].path, "c.conf:1");
    }

    #[test]
    fn null_leaves_a_key_to_its_default() {
        let c = read("divolte.global.server { host = null, port = 1 }", &[]);
        assert!(!c.table["global"]["server"].as_table().unwrap().contains_key("host"));
        assert!(c.notes.iter().any(|n| n.contains("divolte.global.server.host is null")));
    }

    #[test]
    fn the_toml_rendering_reads_back_as_the_same_tree() {
        let c = read(
            "divolte { global.kafka.producer { bootstrap.servers = \"k:9092\" }, global.server.host = null, x = \"a${b}\" }",
            &[],
        );
        let text = c.to_toml("in.conf").unwrap();
        assert!(
            text.starts_with("# Translated from in.conf") && text.contains("# - divolte.global.server.host is null")
        );
        assert!(text.contains("\"bootstrap.servers\" = \"k:9092\""), "{text}");
        assert!(text.contains("x = \"a$${b}\""), "literal HOCON text stays literal in TOML: {text}");
        let mut table = text.parse::<toml::Table>().unwrap();
        let mut errors = Vec::new();
        super::super::env::substitute(&mut table, "divolte", &|_: &str| None, &mut errors);
        assert_eq!((table, errors), (c.table, Vec::new()));
    }
}
