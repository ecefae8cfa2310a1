//! A Kafka flush thread's disk spool: append-only segment files of records
//! the broker could not take, replayed oldest first.
//!
//! A segment is `<sequence>.seg`; each entry is `len: u32`, `crc32: u32`
//! (of what follows), `timestamp: i64`, `key_len: u32`, the key and the
//! value, all little-endian. Appends are made durable per batch
//! ([`Spool::commit`]). A failed write cuts off its partial entry; a failed
//! sync cuts the segment back to its last commit and closes it. Either way
//! what the spool holds is exactly what it reported durable. A crash can
//! leave a torn last entry: reading stops there and the segment's earlier
//! entries stand. A segment is deleted
//! only after every record in it was delivered, so a crash during a replay
//! sends its records again (at least once).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Segments roll at this size, so a replayed segment is deleted early.
const SEGMENT_BYTES: u64 = 4 << 20;
const ENTRY_HEAD: usize = 4 + 4;

/// One spooled record.
pub struct Entry {
    /// The record key (party id).
    pub key: Vec<u8>,
    /// The value as produced (framed for the sink's mode).
    pub value: Vec<u8>,
    /// The record timestamp.
    pub timestamp: Option<i64>,
}

/// The spool of one flush thread.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Sequence numbers of the segments on disk, oldest first.
    segments: std::collections::VecDeque<u64>,
    /// The segment being appended to.
    tail: Option<Tail>,
    /// Bytes on disk, unsynced appends included.
    bytes: u64,
    /// Records appended since the last commit.
    unsynced: u64,
    /// Records made durable since the spool was opened.
    durable: u64,
    entry: Vec<u8>,
}

struct Tail {
    file: File,
    size: u64,
    /// The size at the last successful commit.
    synced: u64,
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

impl Spool {
    /// Opens (creating) the spool in `dir`, finding what an earlier run left.
    ///
    /// # Errors
    /// The directory cannot be created or listed.
    pub fn open(dir: PathBuf, max_bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let mut segments = Vec::new();
        let mut bytes = 0;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(seq) = name.to_str().and_then(|n| n.strip_suffix(".seg")).and_then(|n| n.parse().ok()) else {
                continue;
            };
            bytes += entry.metadata()?.len();
            segments.push(seq);
        }
        segments.sort_unstable();
        Ok(Self {
            dir,
            max_bytes,
            segments: segments.into(),
            tail: None,
            bytes,
            unsynced: 0,
            durable: 0,
            entry: Vec::new(),
        })
    }

    /// Whether nothing is spooled.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Records made durable by commits since the spool was opened.
    pub fn durable(&self) -> u64 {
        self.durable
    }

    /// Appends one record; `Ok(false)` when it would pass the disk budget.
    ///
    /// # Errors
    /// The segment cannot be created or written. What was appended before
    /// stays for [`Spool::commit`] (unless a partly written entry could not
    /// be cut off; then the records appended since the last commit are
    /// discarded).
    pub fn append(&mut self, key: &[u8], value: &[u8], timestamp: Option<i64>) -> io::Result<bool> {
        let e = &mut self.entry;
        e.clear();
        e.extend_from_slice(&[0; ENTRY_HEAD]);
        e.extend_from_slice(&timestamp.unwrap_or(i64::MIN).to_le_bytes());
        e.extend_from_slice(&(key.len() as u32).to_le_bytes());
        e.extend_from_slice(key);
        e.extend_from_slice(value);
        let body_len = (e.len() - ENTRY_HEAD) as u32;
        let crc = crc32fast::hash(&e[ENTRY_HEAD..]);
        e[..4].copy_from_slice(&body_len.to_le_bytes());
        e[4..8].copy_from_slice(&crc.to_le_bytes());
        if self.bytes + e.len() as u64 > self.max_bytes {
            return Ok(false);
        }
        if self.tail.as_ref().is_none_or(|t| t.size >= SEGMENT_BYTES) {
            self.commit()?;
            let seq = self.segments.back().map_or(0, |s| s + 1);
            let file = OpenOptions::new().create_new(true).append(true).open(segment_path(&self.dir, seq))?;
            self.segments.push_back(seq);
            self.tail = Some(Tail { file, size: 0, synced: 0 });
        }
        let tail = self.tail.as_mut().expect("opened above");
        if let Err(e) = tail.file.write_all(&self.entry) {
            // A short write (a full disk) leaves part of the entry behind:
            // cut it off, so the appends before it can still be committed.
            if tail.file.set_len(tail.size).is_err() {
                self.discard_unsynced();
            }
            return Err(e);
        }
        tail.size += self.entry.len() as u64;
        self.bytes += self.entry.len() as u64;
        self.unsynced += 1;
        Ok(true)
    }

    /// Makes the appended records durable.
    ///
    /// # Errors
    /// fsync fails; the records appended since the last commit are then
    /// discarded.
    pub fn commit(&mut self) -> io::Result<()> {
        let Some(tail) = &mut self.tail else { return Ok(()) };
        if tail.synced == tail.size {
            return Ok(());
        }
        if let Err(e) = tail.file.sync_data() {
            self.discard_unsynced();
            return Err(e);
        }
        tail.synced = tail.size;
        self.durable += self.unsynced;
        self.unsynced = 0;
        Ok(())
    }

    /// Cuts the tail segment back to its last commit and closes it; later
    /// appends start a new segment. After a failed write or sync the tail's
    /// unsynced end cannot be trusted (a failed fsync may have dropped dirty
    /// pages), and none of it was reported durable.
    fn discard_unsynced(&mut self) {
        self.unsynced = 0;
        let Some(tail) = self.tail.take() else { return };
        self.bytes -= tail.size - tail.synced;
        let seq = *self.segments.back().expect("the tail is the newest segment");
        let cut = if tail.synced == 0 {
            self.segments.pop_back();
            std::fs::remove_file(segment_path(&self.dir, seq))
        } else {
            tail.file.set_len(tail.synced)
        };
        if let Err(error) = cut {
            // What stays beyond the last commit is replayed as well: records
            // that were counted as failed may arrive after all.
            tracing::error!(%error, segment = seq, "Cannot cut a spool segment back to its last commit.");
        }
    }

    /// The records of the oldest segment, with the number of damaged bytes
    /// skipped at its end (a torn entry, or a checksum that fails). Appends
    /// go to a new segment from here on, so this one no longer changes.
    ///
    /// # Errors
    /// The segment cannot be read.
    pub fn oldest(&mut self) -> io::Result<Option<(Vec<Entry>, usize)>> {
        let Some(&seq) = self.segments.front() else { return Ok(None) };
        if self.segments.len() == 1 {
            self.commit()?;
            self.tail = None;
        }
        let bytes = std::fs::read(segment_path(&self.dir, seq))?;
        let mut entries = Vec::new();
        let mut pos = 0;
        while let Some(head) = bytes.get(pos..pos + ENTRY_HEAD) {
            let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
            let Some(body) = bytes.get(pos + ENTRY_HEAD..pos + ENTRY_HEAD + len) else { break };
            if len < 12 || crc32fast::hash(body) != crc {
                break;
            }
            let timestamp = i64::from_le_bytes(body[..8].try_into().expect("8 bytes"));
            let key_len = u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
            let Some(key) = body.get(12..12 + key_len) else { break };
            entries.push(Entry {
                key: key.to_vec(),
                value: body[12 + key_len..].to_vec(),
                timestamp: (timestamp != i64::MIN).then_some(timestamp),
            });
            pos += ENTRY_HEAD + len;
        }
        Ok(Some((entries, bytes.len() - pos)))
    }

    /// Deletes the oldest segment once its records were delivered.
    ///
    /// # Errors
    /// The file cannot be removed.
    pub fn remove_oldest(&mut self) -> io::Result<()> {
        let Some(seq) = self.segments.pop_front() else { return Ok(()) };
        let path = segment_path(&self.dir, seq);
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        std::fs::remove_file(path)?;
        self.bytes = self.bytes.saturating_sub(len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_in_order_across_reopening_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path().to_owned(), 1 << 20).unwrap();
        for i in 0..100u32 {
            assert!(spool.append(&i.to_le_bytes(), format!("value {i}").as_bytes(), Some(i64::from(i))).unwrap());
        }
        spool.commit().unwrap();
        drop(spool);
        // A crash in the middle of an append.
        let seg = segment_path(dir.path(), 0);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[40, 0, 0, 0, 1, 2]).unwrap();
        let mut spool = Spool::open(dir.path().to_owned(), 1 << 20).unwrap();
        assert!(!spool.is_empty());
        let (entries, damaged) = spool.oldest().unwrap().unwrap();
        assert_eq!(damaged, 6);
        assert_eq!(entries.len(), 100);
        assert_eq!(entries[42].value, b"value 42");
        assert_eq!(entries[42].key, 42u32.to_le_bytes());
        assert_eq!(entries[42].timestamp, Some(42));
        // New appends go to a new segment.
        assert!(spool.append(b"k", b"new", None).unwrap());
        spool.remove_oldest().unwrap();
        let (entries, _) = spool.oldest().unwrap().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].timestamp, None);
        spool.remove_oldest().unwrap();
        assert!(spool.is_empty());
        assert_eq!(spool.bytes(), 0);
    }

    #[test]
    fn the_budget_refuses_what_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path().to_owned(), 100).unwrap();
        assert!(spool.append(b"k", &[0; 40], None).unwrap());
        assert!(!spool.append(b"k", &[0; 60], None).unwrap());
        assert!(spool.bytes() <= 100);
    }
}
