//! Dead letters: the record written for an event the collector refused or
//! could not map, so that it can be inspected and replayed instead of only
//! counted. Any sink can hold them (Avro, or JSON with `format = "json"`);
//! a dead-letter sink holds nothing else.

use apache_avro::Schema;

use super::{write_long, write_str};

/// The dead letters' schema.
pub const DEAD_LETTER_SCHEMA_JSON: &str = r#"{
  "type": "record", "name": "DeadLetter", "namespace": "io.divolte.record",
  "doc": "An event the collector refused or could not map.",
  "fields": [
    {"name": "reason", "type": "string", "doc": "Why: corrupt, invalid_party_id, invalid_session_id, incomplete, invalid_body, mapping_error or queue_full."},
    {"name": "detail", "type": ["null", "string"], "default": null, "doc": "The mapping and its error, or the sink whose queue was full."},
    {"name": "timestamp", "type": "long", "doc": "Receive time, ms since the epoch."},
    {"name": "remoteHost", "type": "string"},
    {"name": "source", "type": "string"},
    {"name": "request", "type": "string", "doc": "Method, path and query; cut at 8 KiB."},
    {"name": "body", "type": ["null", "string"], "default": null, "doc": "The body as text; cut at 8 KiB."},
    {"name": "headers", "type": {"type": "map", "values": "string"}, "doc": "Request headers (repeated ones joined with a comma), each cut at 1 KiB; credentials left out."}
  ]
}"#;

/// Longest request line and body kept.
pub const MAX_TEXT: usize = 8 * 1024;
/// Longest header value kept.
pub const MAX_HEADER: usize = 1024;

/// The dead letters' schema, parsed.
pub fn dead_letter_schema() -> Schema {
    Schema::parse_str(DEAD_LETTER_SCHEMA_JSON).expect("the built-in schema is valid")
}

/// One dead letter, borrowed from the request it describes; the fields
/// are the schema's.
#[allow(missing_docs)]
pub struct DeadLetter<'a> {
    pub reason: &'a str,
    pub detail: Option<&'a str>,
    pub timestamp: i64,
    pub remote_host: &'a str,
    pub source: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub body: &'a [u8],
    pub headers: &'a [httparse::Header<'a>],
}

/// Headers that carry credentials; never written.
fn is_credential(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("proxy-authorization")
}

/// `bytes` cut to at most `max`, at a character boundary of its lossy text.
fn text(bytes: &[u8], max: usize) -> String {
    let mut s = String::from_utf8_lossy(&bytes[..bytes.len().min(max)]).into_owned();
    while s.len() > max {
        s.pop();
    }
    s
}

impl DeadLetter<'_> {
    /// Appends the Avro binary datum to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        write_str(out, self.reason.as_bytes());
        optional(out, self.detail.map(str::as_bytes));
        write_long(out, self.timestamp);
        write_str(out, self.remote_host.as_bytes());
        write_str(out, self.source.as_bytes());
        let mut line = format!("{} {}", self.method, self.path);
        if let Some(q) = self.query {
            line.push('?');
            line.push_str(q);
        }
        write_str(out, text(line.as_bytes(), MAX_TEXT).as_bytes());
        optional(out, (!self.body.is_empty()).then(|| text(self.body, MAX_TEXT)).as_deref().map(str::as_bytes));
        // Repeated headers become one entry, their values joined.
        let mut entries: Vec<(String, String)> = Vec::new();
        for h in self.headers.iter().filter(|h| !is_credential(h.name)) {
            let name = h.name.to_ascii_lowercase();
            let value = text(h.value, MAX_HEADER);
            match entries.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) if v.len() < MAX_HEADER => {
                    v.push_str(", ");
                    v.push_str(&value);
                    *v = text(v.as_bytes(), MAX_HEADER);
                }
                Some(_) => {}
                None => entries.push((name, value)),
            }
        }
        if !entries.is_empty() {
            write_long(out, entries.len() as i64);
            for (k, v) in &entries {
                write_str(out, k.as_bytes());
                write_str(out, v.as_bytes());
            }
        }
        write_long(out, 0);
    }
}

/// A `["null", "string"]` union.
fn optional(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => write_long(out, 0),
        Some(v) => {
            write_long(out, 1);
            write_str(out, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::types::Value;

    #[test]
    fn a_dead_letter_reads_back_with_its_schema_and_leaves_credentials_out() {
        let headers = [
            httparse::Header { name: "Accept", value: b"a" },
            httparse::Header { name: "accept", value: b"b" },
            httparse::Header { name: "Authorization", value: b"Basic c2VjcmV0" },
        ];
        let body = vec![b'x'; MAX_TEXT + 10];
        let letter = DeadLetter {
            reason: "invalid_body",
            detail: None,
            timestamp: 42,
            remote_host: "10.0.0.1",
            source: "app",
            method: "POST",
            path: "/json",
            query: Some("p=1"),
            body: &body,
            headers: &headers,
        };
        let mut out = Vec::new();
        letter.encode(&mut out);
        let value = apache_avro::from_avro_datum(&dead_letter_schema(), &mut &out[..], None).unwrap();
        let Value::Record(fields) = value else { panic!() };
        let get = |n: &str| fields.iter().find(|(k, _)| k == n).unwrap().1.clone();
        assert_eq!(get("request"), Value::String("POST /json?p=1".into()));
        assert_eq!(get("timestamp"), Value::Long(42));
        let Value::Union(1, body) = get("body") else { panic!() };
        assert_eq!(*body, Value::String("x".repeat(MAX_TEXT)));
        let Value::Map(headers) = get("headers") else { panic!() };
        assert_eq!(headers.len(), 1, "{headers:?}");
        assert_eq!(headers["accept"], Value::String("a, b".into()));
    }
}
