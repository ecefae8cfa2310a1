//! Field defaults as Avro 1.8 (the original's) took them: a default that
//! does not fit its field's type is not an error there, only never used.
//! Such defaults are taken out before the schema is parsed, each one
//! reported, so that a schema the original loaded loads here too, and the
//! field counts as having no default (a record that leaves it unset is
//! dropped and counted, as for any field without one).

use serde_json::Value as Json;

/// A default taken out of a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedDefault {
    /// The record and field, `Record.field`.
    pub field: String,
    /// Why it does not fit.
    pub reason: String,
}

impl std::fmt::Display for DroppedDefault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "field {}: {}; it counts as no default", self.field, self.reason)
    }
}

/// Takes every default that does not fit its field out of the schema
/// `json`, in every record it defines, and returns what it took.
pub fn drop_unfitting(json: &mut Json) -> Vec<DroppedDefault> {
    let mut dropped = Vec::new();
    visit(json, &mut dropped);
    dropped
}

fn visit(json: &mut Json, dropped: &mut Vec<DroppedDefault>) {
    match json {
        Json::Array(items) => items.iter_mut().for_each(|item| visit(item, dropped)),
        Json::Object(object) => {
            let record = object.get("name").and_then(Json::as_str).unwrap_or("record").to_owned();
            if let Some(Json::Array(fields)) = object.get_mut("fields") {
                for field in fields.iter_mut().filter_map(Json::as_object_mut) {
                    let name = field.get("name").and_then(Json::as_str).unwrap_or("?").to_owned();
                    if let (Some(ty), Some(default)) = (field.get("type"), field.get("default")) {
                        if let Some(reason) = misfit(ty, default) {
                            dropped.push(DroppedDefault { field: format!("{record}.{name}"), reason });
                            field.remove("default");
                        }
                    }
                    if let Some(ty) = field.get_mut("type") {
                        visit(ty, dropped);
                    }
                }
            }
            for key in ["items", "values"] {
                if let Some(inner) = object.get_mut(key) {
                    visit(inner, dropped);
                }
            }
        }
        _ => {}
    }
}

/// Why `default` does not fit `ty`, when it certainly does not. Types this
/// cannot judge (references to named types) are left to the parser.
fn misfit(ty: &Json, default: &Json) -> Option<String> {
    match ty {
        // Avro: a union's default belongs to its first branch.
        Json::Array(branches) => {
            let first = branches.first()?;
            misfit(first, default).map(|_| {
                format!("a union's default must fit its first branch ({}), and {default} does not", type_name(first))
            })
        }
        Json::String(name) => primitive_misfit(name, default),
        Json::Object(complex) => {
            let name = complex.get("type")?.as_str()?;
            let fits = match name {
                "record" | "map" => default.is_object(),
                "array" => default.is_array(),
                "enum" => default.as_str().is_some_and(|s| {
                    complex.get("symbols").and_then(Json::as_array).is_some_and(|v| v.iter().any(|x| x == s))
                }),
                "fixed" => default.is_string(),
                primitive => return primitive_misfit(primitive, default),
            };
            (!fits).then(|| format!("the default {default} does not fit its type {name}"))
        }
        _ => None,
    }
}

fn primitive_misfit(name: &str, default: &Json) -> Option<String> {
    let fits = match name {
        "null" => default.is_null(),
        "boolean" => default.is_boolean(),
        "int" => default.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
        "long" => default.is_i64(),
        "float" | "double" => default.is_number(),
        "string" | "bytes" => default.is_string(),
        _ => return None,
    };
    (!fits).then(|| format!("the default {default} does not fit its type {name}"))
}

fn type_name(ty: &Json) -> String {
    match ty {
        Json::String(s) => s.clone(),
        Json::Object(o) => o.get("type").and_then(Json::as_str).unwrap_or("?").to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_out_what_does_not_fit_and_keeps_what_does() {
        let mut schema: Json = serde_json::from_str(
            r#"{"type": "record", "name": "R", "fields": [
                {"name": "a", "type": "string", "default": null},
                {"name": "b", "type": ["null", "string"], "default": "x"},
                {"name": "c", "type": ["null", "string"], "default": null},
                {"name": "d", "type": "int", "default": 3},
                {"name": "e", "type": "int", "default": 3000000000},
                {"name": "f", "type": {"type": "enum", "name": "E", "symbols": ["X"]}, "default": "Y"},
                {"name": "g", "type": {"type": "record", "name": "Inner", "fields": [
                    {"name": "h", "type": "boolean", "default": "no"}]}},
                {"name": "i", "type": "Inner", "default": 1}
            ]}"#,
        )
        .unwrap();
        let dropped = drop_unfitting(&mut schema);
        let fields: Vec<&str> = dropped.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["R.a", "R.b", "R.e", "R.f", "Inner.h"]);
        assert_eq!(
            dropped[0].to_string(),
            "field R.a: the default null does not fit its type string; it counts as no default"
        );
        assert!(dropped[1].reason.contains("first branch (null)"), "{}", dropped[1].reason);
        let kept: Vec<bool> = schema["fields"].as_array().unwrap().iter().map(|f| f.get("default").is_some()).collect();
        assert_eq!(
            kept,
            [false, false, true, true, false, false, false, true],
            "named references are left to the parser"
        );
    }
}
