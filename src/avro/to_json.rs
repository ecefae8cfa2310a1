//! Records as text: the Avro JSON encoding of an encoded datum, for sinks
//! with `format = "json"`. Both formats carry the same record: the JSON is
//! decoded from the very bytes an Avro sink would write.
//!
//! As the Avro specification's JSON encoding: records are objects in field
//! order, maps objects, arrays arrays, enums their symbol, bytes and fixed
//! strings of the code points 0-255, and a union value other than null an
//! object naming its branch (`{"string": "x"}`). `Unions::Plain` writes
//! union values bare instead, which most JSON readers prefer.

use apache_avro::schema::{Name, Schema};
use apache_avro::types::Value;

/// How union values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unions {
    /// `{"<branch>": value}`, as the Avro JSON encoding.
    Tagged,
    /// The value alone.
    Plain,
}

/// Writes JSON lines of datums of one schema.
#[derive(Debug, Clone)]
pub struct JsonWriter {
    schema: Schema,
    names: std::collections::HashMap<Name, Schema>,
    unions: Unions,
}

impl JsonWriter {
    /// A writer for datums of `schema`.
    ///
    /// # Errors
    /// A schema whose named types cannot be resolved.
    pub fn new(schema: &Schema, unions: Unions) -> Result<Self, String> {
        let resolved = apache_avro::schema::ResolvedSchema::try_from(schema).map_err(|e| e.to_string())?;
        let names = resolved.get_names().iter().map(|(n, s)| (n.clone(), (*s).clone())).collect();
        Ok(Self { schema: schema.clone(), names, unions })
    }

    /// Appends the JSON text of one binary `datum` to `out` (no newline).
    ///
    /// # Errors
    /// The datum does not decode with the schema.
    pub fn write(&self, mut datum: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let value = apache_avro::from_avro_datum(&self.schema, &mut datum, None).map_err(|e| e.to_string())?;
        self.value(&value, &self.schema, out);
        Ok(())
    }

    fn resolve<'s>(&'s self, schema: &'s Schema) -> &'s Schema {
        match schema {
            Schema::Ref { name } => self.names.get(name).unwrap_or(schema),
            other => other,
        }
    }

    fn value(&self, value: &Value, schema: &Schema, out: &mut Vec<u8>) {
        let schema = self.resolve(schema);
        match value {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(n) | Value::Date(n) | Value::TimeMillis(n) => {
                out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
            }
            Value::Long(n)
            | Value::TimeMicros(n)
            | Value::TimestampMillis(n)
            | Value::TimestampMicros(n)
            | Value::TimestampNanos(n)
            | Value::LocalTimestampMillis(n)
            | Value::LocalTimestampMicros(n)
            | Value::LocalTimestampNanos(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
            Value::Float(f) => number(f64::from(*f), out),
            Value::Double(f) => number(*f, out),
            Value::String(s) | Value::Enum(_, s) => string(s, out),
            Value::Uuid(u) => string(&u.to_string(), out),
            Value::Bytes(b) | Value::Fixed(_, b) => bytes(b, out),
            Value::Decimal(d) => bytes(&Vec::<u8>::try_from(d).unwrap_or_default(), out),
            Value::Union(i, inner) => {
                let branch = match schema {
                    Schema::Union(u) => u.variants().get(*i as usize).unwrap_or(schema),
                    _ => schema,
                };
                if self.unions == Unions::Plain || matches!(**inner, Value::Null) {
                    return self.value(inner, branch, out);
                }
                out.push(b'{');
                string(&branch_name(self.resolve(branch)), out);
                out.push(b':');
                self.value(inner, branch, out);
                out.push(b'}');
            }
            Value::Array(items) => {
                let item = match schema {
                    Schema::Array(a) => &*a.items,
                    _ => schema,
                };
                out.push(b'[');
                for (n, v) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    self.value(v, item, out);
                }
                out.push(b']');
            }
            Value::Map(entries) => {
                let item = match schema {
                    Schema::Map(m) => &*m.types,
                    _ => schema,
                };
                // Sorted, so that the same record is always the same text.
                let mut keys: Vec<&String> = entries.keys().collect();
                keys.sort();
                out.push(b'{');
                for (n, k) in keys.into_iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    string(k, out);
                    out.push(b':');
                    self.value(&entries[k], item, out);
                }
                out.push(b'}');
            }
            Value::Record(fields) => {
                let field_schemas = match schema {
                    Schema::Record(r) => Some(&r.fields),
                    _ => None,
                };
                out.push(b'{');
                for (n, (name, v)) in fields.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    string(name, out);
                    out.push(b':');
                    let field = field_schemas.and_then(|f| f.get(n)).map_or(schema, |f| &f.schema);
                    self.value(v, field, out);
                }
                out.push(b'}');
            }
            // Not produced by the types a collector schema may use.
            Value::BigDecimal(_) | Value::Duration(_) => out.extend_from_slice(b"null"),
        }
    }
}

/// The name a union branch goes by in the JSON encoding: a named type's
/// full name, otherwise its (underlying) type name.
fn branch_name(schema: &Schema) -> String {
    let primitive = match schema {
        Schema::Record(r) => return r.name.fullname(None),
        Schema::Enum(e) => return e.name.fullname(None),
        Schema::Fixed(f) => return f.name.fullname(None),
        Schema::Ref { name } => return name.fullname(None),
        Schema::Decimal(d) => return branch_name(&d.inner),
        Schema::Null => "null",
        Schema::Boolean => "boolean",
        Schema::Int | Schema::Date | Schema::TimeMillis => "int",
        Schema::Float => "float",
        Schema::Double => "double",
        Schema::Bytes | Schema::BigDecimal => "bytes",
        Schema::String | Schema::Uuid => "string",
        Schema::Array(_) => "array",
        Schema::Map(_) => "map",
        Schema::Union(_) => "union",
        _ => "long",
    };
    primitive.to_owned()
}

fn string(s: &str, out: &mut Vec<u8>) {
    // Writing a str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn bytes(b: &[u8], out: &mut Vec<u8>) {
    let text: String = b.iter().map(|&c| char::from(c)).collect();
    string(&text, out);
}

fn number(f: f64, out: &mut Vec<u8>) {
    // JSON has no NaN or infinities.
    match serde_json::Number::from_f64(f) {
        Some(n) => out.extend_from_slice(n.to_string().as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_is_written_as_the_avro_json_encoding() {
        let schema = Schema::parse_str(
            r#"{"type": "record", "name": "R", "namespace": "n", "fields": [
                {"name": "b", "type": "bytes"},
                {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A", "B"]}},
                {"name": "m", "type": {"type": "map", "values": "double"}},
                {"name": "a", "type": {"type": "array", "items": ["null", "E"]}},
                {"name": "r", "type": ["null", {"type": "record", "name": "In", "fields": [{"name": "x", "type": "long"}]}]},
                {"name": "again", "type": ["null", "In"]}
            ]}"#,
        )
        .unwrap();
        let value = Value::Record(vec![
            ("b".into(), Value::Bytes(vec![0, 0x41, 0xff])),
            ("e".into(), Value::Enum(1, "B".into())),
            ("m".into(), Value::Map([("z".into(), Value::Double(1.5)), ("a".into(), Value::Double(f64::NAN))].into())),
            (
                "a".into(),
                Value::Array(vec![
                    Value::Union(0, Box::new(Value::Null)),
                    Value::Union(1, Box::new(Value::Enum(0, "A".into()))),
                ]),
            ),
            ("r".into(), Value::Union(1, Box::new(Value::Record(vec![("x".into(), Value::Long(-3))])))),
            ("again".into(), Value::Union(1, Box::new(Value::Record(vec![("x".into(), Value::Long(7))])))),
        ]);
        let datum = apache_avro::to_avro_datum(&schema, value).unwrap();
        let write = |unions| {
            let mut out = Vec::new();
            JsonWriter::new(&schema, unions).unwrap().write(&datum, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        assert_eq!(
            write(Unions::Tagged),
            r#"{"b":"\u0000Aÿ","e":"B","m":{"a":null,"z":1.5},"a":[null,{"n.E":"A"}],"r":{"n.In":{"x":-3}},"again":{"n.In":{"x":7}}}"#
        );
        assert_eq!(
            write(Unions::Plain),
            r#"{"b":"\u0000Aÿ","e":"B","m":{"a":null,"z":1.5},"a":[null,"A"],"r":{"x":-3},"again":{"x":7}}"#
        );
    }
}
