//! Which Hadoop filesystem a file sink's plain paths resolve against, as
//! the original's Hadoop client decides: `fs.defaultFS` from
//! `global.hdfs.client`, or, when that table is empty, from
//! `$HADOOP_CONF_DIR/core-site.xml`.

use std::path::Path;

/// `fs.defaultFS` from the client properties, or from `HADOOP_CONF_DIR`
/// when there are none.
pub fn default_fs(client: &[(String, String)], conf_dir: Option<&Path>) -> Option<String> {
    if !client.is_empty() {
        return client.iter().find(|(k, _)| k == "fs.defaultFS").map(|(_, v)| v.clone());
    }
    let text = std::fs::read_to_string(conf_dir?.join("core-site.xml")).ok()?;
    property(&text, "fs.defaultFS")
}

/// A property of a Hadoop `*-site.xml` file.
fn property(xml: &str, name: &str) -> Option<String> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    doc.descendants().filter(|n| n.has_tag_name("property")).find_map(|p| {
        let child = |tag: &str| p.children().find(|c| c.has_tag_name(tag)).and_then(|c| c.text()).map(str::trim);
        (child("name") == Some(name)).then(|| child("value").unwrap_or_default().to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_properties_win_and_otherwise_core_site_is_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("core-site.xml"),
            "<?xml version=\"1.0\"?>\n<configuration>\n  <property><name>io.file.buffer.size</name><value>4096</value></property>\n  <property>\n    <name>fs.defaultFS</name>\n    <value> hdfs://nn.example:8020 </value>\n  </property>\n</configuration>\n",
        )
        .unwrap();
        assert_eq!(default_fs(&[], Some(dir.path())).as_deref(), Some("hdfs://nn.example:8020"));
        let client = vec![("fs.defaultFS".to_owned(), "hdfs://other:9000".to_owned())];
        assert_eq!(default_fs(&client, Some(dir.path())).as_deref(), Some("hdfs://other:9000"));
        let without = vec![("dfs.replication".to_owned(), "2".to_owned())];
        assert_eq!(default_fs(&without, Some(dir.path())), None, "a client table replaces the files");
        assert_eq!(default_fs(&[], None), None);
    }
}
