//! Mapping a value onto a field: the field exists, and the value's type
//! fits the field's schema (unions included).

use apache_avro::Schema;

use super::{err, literal_hint, Compiler};
use crate::avro::{is_long, Names};
use crate::mapping::script::error::{Pos, ScriptError};
use crate::mapping::script::program::{NodeId, Ty};

/// Whether a value of type `ty` can be written to a field of schema `s`
/// (a trivial union already unwrapped).
fn fits(ty: Ty, s: &Schema, names: &Names) -> bool {
    let s = names.resolve(s);
    let string_items = |items: &Schema| match names.resolve(items) {
        Schema::String => true,
        Schema::Union(u) => u.variants().len() == 1 && matches!(names.resolve(&u.variants()[0]), Schema::String),
        _ => false,
    };
    match ty {
        Ty::Str => matches!(s, Schema::String | Schema::Uuid),
        Ty::Bool => matches!(s, Schema::Boolean),
        Ty::Int => matches!(s, Schema::Int | Schema::Date | Schema::TimeMillis),
        Ty::Long => is_long(s),
        Ty::Float => matches!(s, Schema::Float),
        Ty::Double => matches!(s, Schema::Double),
        Ty::Bytes => matches!(s, Schema::Bytes),
        Ty::StrList => matches!(s, Schema::Array(a) if string_items(&a.items)),
        Ty::IntList => matches!(s, Schema::Array(a) if matches!(names.resolve(&a.items), Schema::Int)),
        Ty::Query => {
            matches!(s, Schema::Map(m) if matches!(names.resolve(&m.types), Schema::Array(a) if string_items(&a.items)))
        }
        Ty::Json => true,
        Ty::Uri | Ty::Matcher | Ty::UserAgent | Ty::Geo | Ty::Digest => false,
    }
}

/// The first union inside `s` that JSON values cannot be converted to.
fn unsupported_union(s: &Schema, names: &Names, seen: &mut Vec<String>) -> Option<String> {
    match s {
        Schema::Ref { .. } => match names.resolve(s) {
            Schema::Ref { .. } => None,
            named => unsupported_union(named, names, seen),
        },
        Schema::Union(u) => {
            let v = u.variants();
            let nulls = v.iter().filter(|s| matches!(s, Schema::Null)).count();
            if v.len() > 2 || (v.len() == 2 && nulls != 1) {
                return Some(schema_text(s));
            }
            v.iter().find_map(|b| unsupported_union(b, names, seen))
        }
        Schema::Record(r) => {
            let full = r.name.fullname(None);
            if seen.contains(&full) {
                return None;
            }
            seen.push(full);
            r.fields.iter().find_map(|f| unsupported_union(&f.schema, names, seen))
        }
        Schema::Array(a) => unsupported_union(&a.items, names, seen),
        Schema::Map(m) => unsupported_union(&m.types, names, seen),
        _ => None,
    }
}

fn schema_text(s: &Schema) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("{s:?}"))
}

impl Compiler<'_> {
    /// Schema position of `field` after checking that `value` fits it.
    pub(super) fn field_target(
        &mut self,
        value: NodeId,
        field: &str,
        pos: Pos,
        value_pos: Pos,
    ) -> Result<usize, ScriptError> {
        let Some(index) = self.layout.position(field) else {
            let names: Vec<&str> = self.layout.fields.iter().map(|f| f.name.as_str()).collect();
            return err(pos, format!("the schema has no field '{field}' (fields: {})", names.join(", ")));
        };
        let schema = &self.layout.fields[index].schema;
        let ty = self.ty(value);
        let non_trivial = || {
            err(
                pos,
                format!(
                    "field '{field}' is a union {}; only [\"null\", T] unions can be mapped onto",
                    schema_text(schema)
                ),
            )
        };
        let (branch, inner) = match schema {
            Schema::Union(u) => {
                let v = u.variants();
                match (v.len(), v.iter().position(|s| matches!(s, Schema::Null)), ty) {
                    (2, Some(null), _) => (Some((1 - null) as u8), &v[1 - null]),
                    // The original checked a two-branch union without null
                    // against its first branch; scripts written for it rely on that.
                    (2, None, t) if t != Ty::Json => (Some(0), &v[0]),
                    (1, _, Ty::Json) => (Some(0), &v[0]),
                    _ => return non_trivial(),
                }
            }
            s => (None, s),
        };
        if ty == Ty::Json {
            if let Some(bad) = unsupported_union(inner, self.names, &mut Vec::new()) {
                return err(
                    value_pos,
                    format!("field '{field}' holds the union {bad}; JSON values map only onto [\"null\", T] unions"),
                );
            }
        }
        if !fits(ty, inner, self.names) {
            let why = match ty {
                Ty::Uri | Ty::Matcher | Ty::UserAgent | Ty::Geo | Ty::Digest => {
                    format!("a {} cannot be mapped onto a field; map one of its parts", ty.name())
                }
                _ => format!(
                    "a {} value cannot be mapped onto field '{field}' of type {}{}",
                    ty.name(),
                    schema_text(schema),
                    if self.lit(value).is_some() {
                        literal_hint(match self.names.resolve(inner) {
                            Schema::Long => Ty::Long,
                            Schema::Float => Ty::Float,
                            Schema::Double => Ty::Double,
                            _ => ty,
                        })
                    } else {
                        ""
                    }
                ),
            };
            return err(value_pos, why);
        }
        self.targets[index] = Some(branch);
        Ok(index)
    }
}
