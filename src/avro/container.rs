//! Avro object container files, written from pre-encoded records.
//!
//! The header (magic, schema, codec `null`, sync marker) comes from
//! `apache-avro`'s writer. Blocks are framed here because the records are
//! already encoded on the shards and `apache-avro` can only append values
//! it encodes itself: a block is the record count and byte size as Avro
//! longs, the concatenated records, then the sync marker. As in the
//! original, a block is written only when the file is synced, so a reader
//! sees whole blocks or nothing.

use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};

use apache_avro::Schema;
use integer_encoding::VarInt;

/// Writes one container file. Nothing is buffered between syncs: a block
/// goes to `out` whole when the file is synced.
pub struct ContainerWriter<W: Write> {
    out: W,
    marker: [u8; 16],
    block: Vec<u8>,
    block_records: usize,
}

/// A sync marker that differs between files, as the format asks.
fn new_marker() -> [u8; 16] {
    let state = std::collections::hash_map::RandomState::new();
    let mut marker = [0u8; 16];
    for (i, half) in marker.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    marker
}

fn avro_long(out: &mut Vec<u8>, n: usize) {
    let mut buf = [0u8; 10];
    let len = (n as i64).encode_var(&mut buf);
    out.extend_from_slice(&buf[..len]);
}

impl<W: Write> ContainerWriter<W> {
    /// Starts a file: writes the header for `schema` to `out`.
    ///
    /// # Errors
    /// I/O errors from `out`, or a header that cannot be built.
    pub fn create(mut out: W, schema: &Schema) -> io::Result<Self> {
        let marker = new_marker();
        let header = apache_avro::Writer::builder()
            .schema(schema)
            .writer(Vec::new())
            .marker(marker)
            .build()
            .into_inner()
            .map_err(io::Error::other)?;
        out.write_all(&header)?;
        Ok(Self { out, marker, block: Vec::new(), block_records: 0 })
    }

    /// Adds one encoded record to the pending block.
    pub fn append(&mut self, record: &[u8]) {
        self.block.extend_from_slice(record);
        self.block_records += 1;
    }

    /// Records appended since the last sync.
    pub fn pending(&self) -> usize {
        self.block_records
    }

    /// Writes the pending records as one block and flushes `out`.
    ///
    /// # Errors
    /// I/O errors from `out`; the pending records are kept for a retry.
    pub fn sync(&mut self) -> io::Result<()> {
        if self.block_records == 0 {
            return self.out.flush();
        }
        let mut head = Vec::with_capacity(20);
        avro_long(&mut head, self.block_records);
        avro_long(&mut head, self.block.len());
        self.out.write_all(&head)?;
        self.out.write_all(&self.block)?;
        self.out.write_all(&self.marker)?;
        self.out.flush()?;
        self.block.clear();
        self.block_records = 0;
        Ok(())
    }

    /// Forgets the records appended since the last sync; returns how many.
    pub fn drop_pending(&mut self) -> usize {
        self.block.clear();
        std::mem::take(&mut self.block_records)
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }
}

/// Reads an Avro long at `*pos`, advancing it.
fn read_long(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    let (n, len) = i64::decode_var(bytes.get(*pos..)?)?;
    *pos += len;
    Some(n)
}

/// Skips `len` bytes at `*pos`, if there are that many.
fn skip(bytes: &[u8], pos: &mut usize, len: i64) -> Option<()> {
    let end = pos.checked_add(usize::try_from(len).ok()?)?;
    (end <= bytes.len()).then(|| *pos = end)
}

/// The longest prefix of a container file that is its header and whole
/// blocks, as `(length, records)`; `None` when not even the header is whole.
/// A file cut off while a block was written (a crash between syncs) is
/// valid up to that length.
pub fn complete_prefix(bytes: &[u8]) -> Option<(usize, u64)> {
    if !bytes.starts_with(b"Obj\x01") {
        return None;
    }
    let mut pos = 4;
    loop {
        let mut count = read_long(bytes, &mut pos)?;
        if count == 0 {
            break;
        }
        if count < 0 {
            count = count.checked_neg()?;
            read_long(bytes, &mut pos)?;
        }
        for _ in 0..count {
            for _ in 0..2 {
                let len = read_long(bytes, &mut pos)?;
                skip(bytes, &mut pos, len)?;
            }
        }
    }
    let marker = bytes.get(pos..pos + 16)?;
    pos += 16;
    let (mut end, mut records) = (pos, 0u64);
    while let (Some(count), Some(size)) = (read_long(bytes, &mut pos), read_long(bytes, &mut pos)) {
        if count < 0 || skip(bytes, &mut pos, size).is_none() || bytes.get(pos..pos + 16) != Some(marker) {
            break;
        }
        pos += 16;
        (end, records) = (pos, records + count as u64);
    }
    Some((end, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::{default_schema, encode_record, Datum};

    #[test]
    fn a_file_cut_anywhere_is_valid_up_to_its_last_whole_block() {
        let layout = default_schema();
        let mut w = ContainerWriter::create(Vec::new(), &layout.schema).unwrap();
        let header = w.get_mut().len();
        let mut ends = vec![(header, 0u64)];
        let mut values: Vec<Option<Datum>> = vec![None; layout.fields.len()];
        for (i, v) in
            [Datum::Boolean(false), Datum::Boolean(false), Datum::Boolean(true), Datum::Long(1), Datum::Long(2)]
                .into_iter()
                .enumerate()
        {
            values[i] = Some(v);
        }
        values[5] = Some(Datum::String("192.0.2.1"));
        let mut rec = Vec::new();
        encode_record(&layout, &values, &mut rec).unwrap();
        for block in 1..=3u64 {
            for _ in 0..block {
                w.append(&rec);
            }
            w.sync().unwrap();
            ends.push((w.get_mut().len(), ends.last().unwrap().1 + block));
        }
        let bytes = w.get_mut().clone();
        assert_eq!(complete_prefix(&bytes[..header - 1]), None);
        for cut in header..=bytes.len() {
            let want = *ends.iter().rev().find(|(end, _)| *end <= cut).unwrap();
            assert_eq!(complete_prefix(&bytes[..cut]), Some(want), "cut at {cut}");
            let n = apache_avro::Reader::new(&bytes[..want.0]).unwrap().count() as u64;
            assert_eq!(n, want.1);
        }
    }

    #[test]
    fn apache_avro_reads_back_every_record() {
        let layout = default_schema();
        let mut w = ContainerWriter::create(Vec::new(), &layout.schema).unwrap();
        for i in 0..5i64 {
            let mut values: Vec<Option<Datum>> = vec![None; layout.fields.len()];
            values[0] = Some(Datum::Boolean(false));
            values[1] = Some(Datum::Boolean(false));
            values[2] = Some(Datum::Boolean(i == 0));
            values[3] = Some(Datum::Long(i));
            values[4] = Some(Datum::Long(i));
            values[5] = Some(Datum::String("127.0.0.1"));
            let mut rec = Vec::new();
            encode_record(&layout, &values, &mut rec).unwrap();
            w.append(&rec);
            if i == 2 {
                w.sync().unwrap();
            }
        }
        w.sync().unwrap();
        let bytes = std::mem::take(w.get_mut());
        let reader = apache_avro::Reader::new(&bytes[..]).unwrap();
        let records: Vec<_> = reader.map(|r| r.unwrap()).collect();
        assert_eq!(records.len(), 5);
        let apache_avro::types::Value::Record(fields) = &records[4] else { panic!("not a record") };
        assert_eq!(fields[3], ("timestamp".to_owned(), apache_avro::types::Value::Long(4)));
        assert_eq!(fields[15].1, apache_avro::types::Value::String("unknown".into()));
    }
}
