//! Record schemas compiled into a flat list of fields for encoding.

use apache_avro::types::Value;
use apache_avro::Schema;

use super::names::Names;

/// The original's `io.divolte.record.DefaultEventRecord` (divolte-schema 0.9.0).
pub const DEFAULT_SCHEMA_JSON: &str = include_str!("default_event_record.avsc");

/// Why a schema cannot be used.
#[derive(Debug)]
pub enum SchemaError {
    /// Not JSON: where and why.
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the JSON parser expected.
        message: String,
    },
    /// Not a valid Avro schema.
    Parse(apache_avro::Error),
    /// The top-level type is not a record.
    NotARecord,
    /// A field's default does not match its type.
    BadDefault {
        /// Field name.
        field: String,
        /// Reason.
        reason: String,
    },
}

impl std::fmt::Display for SchemaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Syntax { line, column, message } => {
                write!(f, "not valid JSON at line {line}, column {column}: {message}")
            }
            // apache-avro quotes type names as JSON inside its messages.
            Self::Parse(e) => write!(f, "invalid Avro schema: {}", e.to_string().replace("\\\"", "")),
            Self::NotARecord => f.write_str("the schema's top-level type must be a record"),
            Self::BadDefault { field, reason } => {
                write!(f, "field {field:?} has an invalid default: {reason}")
            }
        }
    }
}

impl std::error::Error for SchemaError {}

/// How a field's value is written.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldKind {
    /// `boolean`
    Boolean,
    /// `int`
    Int,
    /// `long`
    Long,
    /// `float`
    Float,
    /// `double`
    Double,
    /// `string`
    String,
    /// `bytes`
    Bytes,
    /// `["null", T]` or `[T, "null"]`: the branch index of null, and T.
    Nullable {
        /// Union branch of `null`.
        null_branch: u8,
        /// The non-null branch.
        inner: Box<FieldKind>,
    },
    /// Any other schema (arrays, maps, records, enums, wider unions); written
    /// through `apache-avro` values by the mapping stages that produce them.
    Complex(Schema),
}

impl FieldKind {
    fn of(schema: &Schema) -> Self {
        match schema {
            Schema::Boolean => Self::Boolean,
            Schema::Int => Self::Int,
            Schema::Long => Self::Long,
            Schema::Float => Self::Float,
            Schema::Double => Self::Double,
            Schema::String => Self::String,
            Schema::Bytes => Self::Bytes,
            Schema::Union(u) if u.variants().len() == 2 => {
                let v = u.variants();
                match (&v[0], &v[1]) {
                    (Schema::Null, other) => Self::nullable(0, other, schema),
                    (other, Schema::Null) => Self::nullable(1, other, schema),
                    _ => Self::Complex(schema.clone()),
                }
            }
            other => Self::Complex(other.clone()),
        }
    }

    fn nullable(null_branch: u8, inner: &Schema, whole: &Schema) -> Self {
        match Self::of(inner) {
            Self::Complex(_) => Self::Complex(whole.clone()),
            k => Self::Nullable { null_branch, inner: Box::new(k) },
        }
    }
}

/// One field of a compiled record.
#[derive(Debug, Clone)]
pub struct FieldLayout {
    /// Field name.
    pub name: String,
    /// The field's schema as declared.
    pub schema: Schema,
    /// How values are written.
    pub kind: FieldKind,
    /// The default, already encoded; `None` when the field has none (it must be set).
    pub default: Option<Vec<u8>>,
}

/// A record schema compiled for encoding: fields in schema order.
#[derive(Debug, Clone)]
pub struct RecordLayout {
    /// The parsed schema (written into container file headers).
    pub schema: Schema,
    /// Fields in encoding order.
    pub fields: Vec<FieldLayout>,
    /// Named types, for following references.
    pub names: Names,
}

impl RecordLayout {
    /// Compiles a record schema.
    ///
    /// # Errors
    /// [`SchemaError`] when it is not a record or a default does not fit its field.
    pub fn compile(schema: Schema) -> Result<Self, SchemaError> {
        let Schema::Record(record) = &schema else {
            return Err(SchemaError::NotARecord);
        };
        let mut fields = Vec::with_capacity(record.fields.len());
        for f in &record.fields {
            let default = match &f.default {
                None => None,
                Some(json) => {
                    let bad = |reason: String| SchemaError::BadDefault { field: f.name.clone(), reason };
                    // Avro: a union's default belongs to its first branch.
                    let target = match &f.schema {
                        Schema::Union(u) => u.variants().first().cloned().unwrap_or(Schema::Null),
                        s => s.clone(),
                    };
                    let value = Value::from(json.clone()).resolve(&target).map_err(|e| bad(e.to_string()))?;
                    let mut bytes = apache_avro::to_avro_datum(&target, value).map_err(|e| bad(e.to_string()))?;
                    if matches!(f.schema, Schema::Union(_)) {
                        bytes.insert(0, 0); // branch 0, zig-zag encoded
                    }
                    Some(bytes)
                }
            };
            fields.push(FieldLayout {
                name: f.name.clone(),
                schema: f.schema.clone(),
                kind: FieldKind::of(&f.schema),
                default,
            });
        }
        let names = Names::of(&schema);
        Ok(Self { schema, fields, names })
    }

    /// Parses and compiles a schema file's text. Like the original's parser,
    /// it takes `//` and `/* */` comments, which many published schemas have.
    ///
    /// # Errors
    /// [`SchemaError`] when the text is not a record schema.
    ///
    /// A default that does not fit its field is taken out with a warning,
    /// as Avro 1.8 loaded such schemas ([`super::defaults`]).
    pub fn parse(text: &str) -> Result<Self, SchemaError> {
        let mut json: serde_json::Value = serde_json::from_str(&strip_comments(text)).map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; the position is said apart.
            let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
            SchemaError::Syntax { line: e.line(), column: e.column(), message }
        })?;
        for dropped in super::defaults::drop_unfitting(&mut json) {
            tracing::warn!(field = %dropped.field, reason = %dropped.reason, "Schema default does not fit its field; it counts as no default.");
        }
        let schema = Schema::parse(&json).map_err(SchemaError::Parse)?;
        Self::compile(schema)
    }

    /// Position of the field called `name`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// `text` with JSON comments blanked out (strings left alone), so error
/// positions in the rest stay where they were.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                    out.push(' ');
                }
            }
            ('/', Some('*')) => {
                chars.next();
                out.push_str("  ");
                let mut last = ' ';
                for c in chars.by_ref() {
                    out.push(if c == '\n' { '\n' } else { ' ' });
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The built-in default schema, compiled.
pub fn default_schema() -> RecordLayout {
    let schema = Schema::parse_str(DEFAULT_SCHEMA_JSON).expect("the built-in schema is valid");
    RecordLayout::compile(schema).expect("the built-in schema compiles")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schema_has_the_original_field_order_and_defaults() {
        let layout = default_schema();
        let names: Vec<&str> = layout.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names.len(), 26);
        assert_eq!(
            &names[..6],
            ["detectedDuplicate", "detectedCorruption", "firstInSession", "timestamp", "clientTimestamp", "remoteHost"]
        );
        assert_eq!(names[15], "eventType");
        assert_eq!(names[25], "userAgentOsVendor");
        assert_eq!(layout.fields[0].default, None);
        assert_eq!(layout.fields[6].default, Some(vec![0]), "null branch");
        // "unknown" as an Avro string: length 7 zig-zag encoded, then the bytes.
        assert_eq!(layout.fields[15].default.as_deref(), Some(&b"\x0eunknown"[..]));
        assert!(matches!(layout.fields[8].kind, FieldKind::Nullable { null_branch: 0, .. }));
        assert!(layout.schema.canonical_form().contains("io.divolte.record.DefaultEventRecord"));
    }

    #[test]
    fn schema_files_may_have_comments() {
        let text = r#"// A schema with comments
        { "type": "record", "name": "R", /* inline */ "fields": [
            { "name": "url", "type": "string", "doc": "http://not/a/comment" } // trailing
        ]}"#;
        let layout = RecordLayout::parse(text).unwrap();
        assert_eq!(layout.fields[0].name, "url");
        assert!(matches!(RecordLayout::parse("{ /* open"), Err(SchemaError::Syntax { line: 1, .. })));
    }

    #[test]
    fn loads_what_avro_1_8_loaded_and_says_what_is_wrong_in_words() {
        let layout = RecordLayout::parse(
            r#"{"type": "record", "name": "R", "fields": [
                {"name": "a", "type": "string", "default": null},
                {"name": "b", "type": ["null", "string"], "default": "x"}]}"#,
        )
        .unwrap();
        assert_eq!((layout.fields[0].default.as_ref(), layout.fields[1].default.as_ref()), (None, None));
        let err = RecordLayout::parse(
            "{\"type\": \"record\",\n \"name\": \"R\", \"fields\": [\n  {\"name\": \"a\", \"type\": \"int\",}]}",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("not valid JSON at line 3, column"), "{err}");
        let err = RecordLayout::parse(r#"{"type": "record", "name": "R", "fields": [{"name": "a", "type": "strin"}]}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\\') && err.contains("strin"), "{err}");
    }

    #[test]
    fn rejects_non_records_and_bad_defaults() {
        assert!(matches!(RecordLayout::compile(Schema::Int), Err(SchemaError::NotARecord)));
        let bad =
            Schema::parse_str(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}"#);
        if let Ok(schema) = bad {
            assert!(matches!(RecordLayout::compile(schema), Err(SchemaError::BadDefault { .. })));
        }
    }
}
