//! Encoding one record's values as Avro binary.

use super::schema::{FieldKind, RecordLayout};

/// One field value, borrowed from the event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Datum<'a> {
    /// `null` (only for nullable fields).
    Null,
    /// `boolean`
    Boolean(bool),
    /// `int`
    Int(i32),
    /// `long`
    Long(i64),
    /// `float`
    Float(f32),
    /// `double`
    Double(f64),
    /// `string`
    String(&'a str),
    /// `bytes`
    Bytes(&'a [u8]),
}

/// Why a record could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// A field without default was not set (field index).
    MissingField(usize),
    /// A value does not fit its field's type (field index).
    TypeMismatch(usize),
}

impl EncodeError {
    /// Index of the field at fault.
    pub fn field(self) -> usize {
        match self {
            Self::MissingField(i) | Self::TypeMismatch(i) => i,
        }
    }
}

/// Appends an Avro `int`/`long`: zig-zag, then seven bits a byte, low
/// bits first. Inlined on purpose: it runs for every field of every record,
/// and the compiler's choice across codegen units moves with unrelated
/// changes (`write_str` stopped being inlined once, +340 instructions per
/// record; `benches/instructions.sh` shows it).
#[inline]
pub(crate) fn write_long(out: &mut Vec<u8>, n: i64) {
    // Pushed straight into `out`. integer-encoding (which reads them back
    // in `container`) writes into a slice, and on this path that cost a
    // `memcpy` or a `memset` per number, where most numbers are one byte.
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push(z as u8 | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends Avro `string`/`bytes`: length, then the bytes. Inlined on
/// purpose, as [`write_long`].
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    write_long(out, s.len() as i64);
    out.extend_from_slice(s);
}

fn write_value(kind: &FieldKind, d: Datum<'_>, out: &mut Vec<u8>) -> bool {
    match (kind, d) {
        (FieldKind::Nullable { null_branch, .. }, Datum::Null) => write_long(out, i64::from(*null_branch)),
        (FieldKind::Nullable { null_branch, inner }, d) => {
            write_long(out, i64::from(1 - *null_branch));
            return write_value(inner, d, out);
        }
        (FieldKind::Boolean, Datum::Boolean(b)) => out.push(u8::from(b)),
        (FieldKind::Int, Datum::Int(n)) => write_long(out, i64::from(n)),
        (FieldKind::Long, Datum::Long(n)) => write_long(out, n),
        (FieldKind::Long, Datum::Int(n)) => write_long(out, i64::from(n)),
        (FieldKind::Float, Datum::Float(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (FieldKind::Double, Datum::Double(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (FieldKind::Double, Datum::Float(f)) => out.extend_from_slice(&f64::from(f).to_le_bytes()),
        (FieldKind::String, Datum::String(s)) => write_str(out, s.as_bytes()),
        (FieldKind::Bytes, Datum::Bytes(b)) => write_str(out, b),
        _ => return false,
    }
    true
}

/// Appends the Avro binary encoding of a record to `out`. `values[i]` is the
/// value of field `i`; `None` takes the field's default. On error `out` is
/// left as it was.
///
/// # Errors
/// [`EncodeError`] when a field without default is unset or a value does
/// not fit its field.
pub fn encode_record(
    layout: &RecordLayout,
    values: &[Option<Datum<'_>>],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let start = out.len();
    for (i, field) in layout.fields.iter().enumerate() {
        let ok = match values.get(i).copied().flatten() {
            Some(d) => write_value(&field.kind, d, out),
            None => match &field.default {
                Some(bytes) => {
                    out.extend_from_slice(bytes);
                    true
                }
                None => {
                    out.truncate(start);
                    return Err(EncodeError::MissingField(i));
                }
            },
        };
        if !ok {
            out.truncate(start);
            return Err(EncodeError::TypeMismatch(i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::default_schema;
    use apache_avro::types::Value;

    #[test]
    fn longs_are_zig_zag_varints_like_apache_avros() {
        for n in [0, 1, -1, 63, -64, 64, -65, 8191, 1 << 40, -(1 << 40), i64::from(i32::MIN), i64::MAX, i64::MIN] {
            let mut ours = Vec::new();
            write_long(&mut ours, n);
            assert_eq!(ours, apache_avro::to_avro_datum(&apache_avro::Schema::Long, Value::Long(n)).unwrap(), "{n}");
        }
    }

    #[test]
    fn matches_apache_avro_byte_for_byte() {
        let layout = default_schema();
        let mut values: Vec<Option<Datum>> = vec![None; layout.fields.len()];
        values[0] = Some(Datum::Boolean(false));
        values[1] = Some(Datum::Boolean(true));
        values[2] = Some(Datum::Boolean(true));
        values[3] = Some(Datum::Long(1_700_000_000_123));
        values[4] = Some(Datum::Long(-5));
        values[5] = Some(Datum::String("192.0.2.1"));
        values[7] = Some(Datum::String("https://example.com/ü"));
        values[8] = Some(Datum::Int(1024));
        values[12] = Some(Datum::String("0:abc:def"));
        let mut ours = Vec::new();
        encode_record(&layout, &values, &mut ours).unwrap();

        let s = |v: &str| Value::Union(1, Box::new(Value::String(v.into())));
        let null = Value::Union(0, Box::new(Value::Null));
        let mut fields = vec![
            ("detectedDuplicate", Value::Boolean(false)),
            ("detectedCorruption", Value::Boolean(true)),
            ("firstInSession", Value::Boolean(true)),
            ("timestamp", Value::Long(1_700_000_000_123)),
            ("clientTimestamp", Value::Long(-5)),
            ("remoteHost", Value::String("192.0.2.1".into())),
            ("referer", null.clone()),
            ("location", s("https://example.com/ü")),
            ("viewportPixelWidth", Value::Union(1, Box::new(Value::Int(1024)))),
            ("viewportPixelHeight", null.clone()),
            ("screenPixelWidth", null.clone()),
            ("screenPixelHeight", null.clone()),
            ("partyId", s("0:abc:def")),
            ("sessionId", null.clone()),
            ("pageViewId", null.clone()),
            ("eventType", Value::String("unknown".into())),
        ];
        for name in [
            "userAgentString",
            "userAgentName",
            "userAgentFamily",
            "userAgentVendor",
            "userAgentType",
            "userAgentVersion",
            "userAgentDeviceCategory",
            "userAgentOsFamily",
            "userAgentOsVersion",
            "userAgentOsVendor",
        ] {
            fields.push((name, null.clone()));
        }
        let record = Value::Record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let theirs = apache_avro::to_avro_datum(&layout.schema, record).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn refuses_unset_required_fields_and_wrong_types() {
        let layout = default_schema();
        let mut out = vec![9];
        let values: Vec<Option<Datum>> = vec![None; layout.fields.len()];
        assert_eq!(encode_record(&layout, &values, &mut out), Err(EncodeError::MissingField(0)));
        let mut wrong = values.clone();
        wrong[0] = Some(Datum::String("yes"));
        assert_eq!(encode_record(&layout, &wrong, &mut out), Err(EncodeError::TypeMismatch(0)));
        assert_eq!(out, vec![9], "output untouched on error");
    }
}
