//! JSON values written as Avro, by the original's conversion rules: a
//! value is taken when it can be read as the field's type (numbers from
//! numeric strings, strings from numbers, base64 for bytes, a single value
//! for a one-element array and the other way round; unknown object
//! properties ignored). What cannot be read, an unknown enum symbol
//! included, is a [`Mismatch`]; the caller leaves the field as it was.

use apache_avro::Schema;
use base64::Engine;
use serde_json::Value;

use super::encode::{write_long, write_str};
use super::names::Names;

/// A JSON value that does not fit the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch;

/// Nesting limit; client JSON is already bounded in depth, this keeps a
/// recursive schema from recursing without end.
const MAX_DEPTH: usize = 128;

/// Appends `value` encoded as `schema`. On error `out` is as it was.
///
/// # Errors
/// [`Mismatch`] when the value cannot be read as the schema's type.
pub fn encode_json(schema: &Schema, names: &Names, value: &Value, out: &mut Vec<u8>) -> Result<(), Mismatch> {
    let start = out.len();
    encode(schema, names, value, out, 0).inspect_err(|_| out.truncate(start))
}

/// Whether `s` is written as an Avro `long` (plain, or a logical type on one).
pub fn is_long(s: &Schema) -> bool {
    matches!(
        s,
        Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos
    )
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn integer(value: &Value) -> Option<i64> {
    if let Value::Number(n) = value {
        if let Some(i) = n.as_i64() {
            return Some(i);
        }
    }
    if let Value::String(s) = value {
        if let Ok(i) = s.trim().parse::<i64>() {
            return Some(i);
        }
    }
    // Fractions are truncated; out-of-range values do not fit.
    number(value).filter(|f| f.is_finite() && f.abs() < 9.2e18).map(|f| f.trunc() as i64)
}

fn base64(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => base64::engine::general_purpose::STANDARD.decode(s).ok(),
        _ => None,
    }
}

fn encode(schema: &Schema, names: &Names, value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), Mismatch> {
    if depth > MAX_DEPTH {
        return Err(Mismatch);
    }
    let schema = names.resolve(schema);
    // A one-element array is read as its element where no array is wanted.
    if let Value::Array(items) = value {
        if items.len() == 1 && !matches!(schema, Schema::Array(_) | Schema::Union(_)) {
            return encode(schema, names, &items[0], out, depth + 1);
        }
    }
    match schema {
        Schema::Null => match value {
            Value::Null => Ok(()),
            _ => Err(Mismatch),
        },
        Schema::Boolean => {
            let b = match value {
                Value::Bool(b) => *b,
                Value::String(s) if s.eq_ignore_ascii_case("true") => true,
                Value::String(s) if s.eq_ignore_ascii_case("false") => false,
                _ => return Err(Mismatch),
            };
            out.push(u8::from(b));
            Ok(())
        }
        Schema::Int | Schema::Date | Schema::TimeMillis => {
            let n = integer(value).and_then(|n| i32::try_from(n).ok()).ok_or(Mismatch)?;
            write_long(out, i64::from(n));
            Ok(())
        }
        s if is_long(s) => {
            write_long(out, integer(value).ok_or(Mismatch)?);
            Ok(())
        }
        Schema::Float => {
            out.extend_from_slice(&(number(value).ok_or(Mismatch)? as f32).to_le_bytes());
            Ok(())
        }
        Schema::Double => {
            out.extend_from_slice(&number(value).ok_or(Mismatch)?.to_le_bytes());
            Ok(())
        }
        Schema::String | Schema::Uuid => {
            match value {
                Value::String(s) => write_str(out, s.as_bytes()),
                Value::Number(n) => write_str(out, n.to_string().as_bytes()),
                Value::Bool(b) => write_str(out, if *b { b"true" } else { b"false" }),
                _ => return Err(Mismatch),
            }
            Ok(())
        }
        Schema::Bytes => {
            write_str(out, &base64(value).ok_or(Mismatch)?);
            Ok(())
        }
        Schema::Fixed(f) => {
            let mut bytes = base64(value).ok_or(Mismatch)?;
            if bytes.len() < f.size {
                return Err(Mismatch);
            }
            bytes.truncate(f.size);
            out.extend_from_slice(&bytes);
            Ok(())
        }
        Schema::Enum(e) => {
            let Value::String(s) = value else { return Err(Mismatch) };
            let i = e.symbols.iter().position(|sym| sym == s).ok_or(Mismatch)?;
            write_long(out, i as i64);
            Ok(())
        }
        Schema::Array(a) => {
            let one;
            let items = match value {
                Value::Array(items) => items.as_slice(),
                other => {
                    one = [other.clone()];
                    &one[..]
                }
            };
            if !items.is_empty() {
                write_long(out, items.len() as i64);
                for item in items {
                    encode(&a.items, names, item, out, depth + 1)?;
                }
            }
            out.push(0);
            Ok(())
        }
        Schema::Map(m) => {
            let Value::Object(entries) = value else { return Err(Mismatch) };
            if !entries.is_empty() {
                write_long(out, entries.len() as i64);
                for (k, v) in entries {
                    write_str(out, k.as_bytes());
                    encode(&m.types, names, v, out, depth + 1)?;
                }
            }
            out.push(0);
            Ok(())
        }
        Schema::Record(r) => {
            let Value::Object(props) = value else { return Err(Mismatch) };
            for f in &r.fields {
                match (props.get(&f.name), &f.default) {
                    (Some(v), _) => encode(&f.schema, names, v, out, depth + 1)?,
                    (None, Some(default)) => encode_default(&f.schema, names, default, out, depth + 1)?,
                    (None, None) => return Err(Mismatch),
                }
            }
            Ok(())
        }
        Schema::Union(u) => {
            let v = u.variants();
            let null = v.iter().position(|s| matches!(s, Schema::Null));
            match (v.len(), null) {
                (1, None) => {
                    out.push(0);
                    encode(&v[0], names, value, out, depth + 1)
                }
                (2, Some(null)) => {
                    if value.is_null() {
                        write_long(out, null as i64);
                        return Ok(());
                    }
                    write_long(out, (1 - null) as i64);
                    encode(&v[1 - null], names, value, out, depth + 1)
                }
                _ => Err(Mismatch),
            }
        }
        _ => Err(Mismatch),
    }
}

/// A field default: a union's default belongs to its first branch.
fn encode_default(
    schema: &Schema,
    names: &Names,
    default: &Value,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), Mismatch> {
    match names.resolve(schema) {
        Schema::Union(u) => {
            let first = u.variants().first().ok_or(Mismatch)?;
            out.push(0);
            encode(first, names, default, out, depth)
        }
        s => encode(s, names, default, out, depth),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value as Avro;
    use serde_json::json;

    fn roundtrip(schema: &str, value: Value) -> Option<Avro> {
        let schema = Schema::parse_str(schema).unwrap();
        let names = Names::of(&schema);
        let mut out = vec![];
        encode_json(&schema, &names, &value, &mut out).ok()?;
        Some(apache_avro::from_avro_datum(&schema, &mut &out[..], None).unwrap())
    }

    #[test]
    fn scalars_by_the_conversion_rules() {
        assert_eq!(roundtrip(r#""int""#, json!(42.9)), Some(Avro::Int(42)));
        assert_eq!(roundtrip(r#""int""#, json!("17")), Some(Avro::Int(17)));
        assert_eq!(roundtrip(r#""int""#, json!(3_000_000_000i64)), None);
        assert_eq!(roundtrip(r#""long""#, json!("-5")), Some(Avro::Long(-5)));
        assert_eq!(roundtrip(r#""double""#, json!("1.25")), Some(Avro::Double(1.25)));
        assert_eq!(roundtrip(r#""boolean""#, json!("true")), Some(Avro::Boolean(true)));
        assert_eq!(roundtrip(r#""boolean""#, json!(1)), None);
        assert_eq!(roundtrip(r#""string""#, json!(42)), Some(Avro::String("42".into())));
        assert_eq!(roundtrip(r#""string""#, json!(false)), Some(Avro::String("false".into())));
        assert_eq!(roundtrip(r#""string""#, json!({"a": 1})), None);
        assert_eq!(roundtrip(r#""bytes""#, json!("AQID")), Some(Avro::Bytes(vec![1, 2, 3])));
        assert_eq!(
            roundtrip(r#"{"type":"fixed","name":"F","size":2}"#, json!("AQID")),
            Some(Avro::Fixed(2, vec![1, 2]))
        );
        assert_eq!(roundtrip(r#""string""#, json!(["only"])), Some(Avro::String("only".into())));
    }

    #[test]
    fn containers_unions_and_enums() {
        let e = r#"["null",{"type":"enum","name":"E","symbols":["A","B"]}]"#;
        assert_eq!(roundtrip(e, json!("B")), Some(Avro::Union(1, Box::new(Avro::Enum(1, "B".into())))));
        assert_eq!(roundtrip(e, json!("C")), None, "an unknown symbol does not fit");
        assert_eq!(roundtrip(e, json!(null)), Some(Avro::Union(0, Box::new(Avro::Null))));
        assert_eq!(roundtrip(r#"{"type":"enum","name":"E","symbols":["A"]}"#, json!("C")), None);
        assert_eq!(roundtrip(r#"{"type":"array","items":"int"}"#, json!(7)), Some(Avro::Array(vec![Avro::Int(7)])));
        let rec = r#"{"type":"record","name":"R","fields":[
            {"name":"a","type":"int"},{"name":"b","type":["null","string"],"default":null},
            {"name":"c","type":{"type":"map","values":"long"}}]}"#;
        assert_eq!(
            roundtrip(rec, json!({"a": 1, "c": {"x": 2}, "extra": true})),
            Some(Avro::Record(vec![
                ("a".into(), Avro::Int(1)),
                ("b".into(), Avro::Union(0, Box::new(Avro::Null))),
                ("c".into(), Avro::Map([("x".to_owned(), Avro::Long(2))].into_iter().collect())),
            ]))
        );
        assert_eq!(roundtrip(rec, json!({"c": {}})), None, "a field without default is required");
        assert_eq!(roundtrip(r#"["int","string"]"#, json!(1)), None);
    }
}
