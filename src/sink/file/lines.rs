//! JSON lines files (`format = "json"`): each record's Avro JSON text on a
//! line of its own, with the same sync discipline as a container file:
//! nothing reaches the file between syncs, and a sync writes whole lines.

use std::io::{self, Write};

use crate::avro::JsonWriter;

/// Writes one JSON lines file.
pub struct LinesWriter<W: Write> {
    out: W,
    json: JsonWriter,
    /// The lines appended since the last sync.
    lines: Vec<u8>,
    pending: usize,
}

impl<W: Write> LinesWriter<W> {
    /// Starts a file (JSON lines have no header).
    pub fn new(out: W, json: JsonWriter) -> Self {
        Self { out, json, lines: Vec::new(), pending: 0 }
    }

    /// Adds one encoded record as a line.
    ///
    /// # Errors
    /// The datum does not decode with the file's schema; nothing is added.
    pub fn append(&mut self, record: &[u8]) -> Result<(), String> {
        let start = self.lines.len();
        if let Err(e) = self.json.write(record, &mut self.lines) {
            self.lines.truncate(start);
            return Err(e);
        }
        self.lines.push(b'\n');
        self.pending += 1;
        Ok(())
    }

    /// Records appended since the last sync.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Writes the pending lines and flushes `out`.
    ///
    /// # Errors
    /// I/O errors from `out`; the pending lines are kept for a retry.
    pub fn sync(&mut self) -> io::Result<()> {
        self.out.write_all(&self.lines)?;
        self.out.flush()?;
        self.lines.clear();
        self.pending = 0;
        Ok(())
    }

    /// Forgets the lines appended since the last sync; returns how many.
    pub fn drop_pending(&mut self) -> usize {
        self.lines.clear();
        std::mem::take(&mut self.pending)
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

/// The longest prefix of a JSON lines file that is whole lines, as
/// `(length, records)`: a file cut off while a sync wrote it is valid up
/// to its last newline.
pub fn complete_prefix(bytes: &[u8]) -> (usize, u64) {
    let len = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (len, bytes[..len].iter().filter(|&&b| b == b'\n').count() as u64)
}
