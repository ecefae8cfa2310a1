//! Reading what the collector published: apache-avro, and Python's
//! fastavro as an independent reader.

use std::path::Path;
use std::process::Command;

/// Every record of every published `.avro` file in `dir`, read with apache-avro.
pub fn read_avro_dir(dir: &Path) -> Vec<apache_avro::types::Value> {
    let mut records = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir).map(|d| d.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    files.sort();
    for f in files.into_iter().filter(|p| p.extension().is_some_and(|e| e == "avro")) {
        let reader = apache_avro::Reader::new(std::fs::File::open(&f).unwrap()).unwrap();
        for r in reader {
            records.push(r.unwrap());
        }
    }
    records
}

/// Field `name` of a record value.
pub fn field<'a>(record: &'a apache_avro::types::Value, name: &str) -> &'a apache_avro::types::Value {
    let apache_avro::types::Value::Record(fields) = record else { panic!("not a record: {record:?}") };
    &fields.iter().find(|(k, _)| k == name).unwrap_or_else(|| panic!("no field {name}")).1
}

/// A nullable string field's value.
pub fn opt_str(record: &apache_avro::types::Value, name: &str) -> Option<String> {
    match field(record, name) {
        apache_avro::types::Value::Union(_, v) => match &**v {
            apache_avro::types::Value::String(s) => Some(s.clone()),
            apache_avro::types::Value::Null => None,
            other => panic!("{name} is {other:?}"),
        },
        apache_avro::types::Value::String(s) => Some(s.clone()),
        other => panic!("{name} is {other:?}"),
    }
}

/// The published records as JSON, read by Python's fastavro (an independent reader).
pub fn read_with_fastavro(dir: &Path) -> Vec<serde_json::Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/read_avro.py");
    let out = Command::new("python3").arg(script).arg(dir).output().expect("python3 runs");
    assert!(out.status.success(), "fastavro reader failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}
