//! One file from creation to publication: an Avro container file, or a
//! JSON lines file for sinks with `format = "json"`.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::lines::{self, LinesWriter};
use crate::avro::container::ContainerWriter;
use crate::avro::JsonWriter;

/// Numbers files uniquely within the process (the `<n>` of the name).
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Chooses file names: `<yyyyMMddHHmmss>-divolte-tracking-<host>-<n>.avro`
/// in local time, as the original (`.jsonl` for JSON lines).
pub struct FileNamer {
    staging: PathBuf,
    extension: &'static str,
    host: String,
    /// The first second this process names files in.
    not_before: std::time::SystemTime,
}

/// The machine's host name, as the original puts in file names.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes; gethostname
    // writes at most that many and we look only up to the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

impl FileNamer {
    /// Names files staged in `staging`. The counter restarts with the
    /// process, so a name is unique across runs only if no run names a file
    /// in a second an earlier run did: the first name waits for the next
    /// whole second after the namer was made (once, and on the flush thread).
    pub fn new(staging: PathBuf, format: &FileFormat) -> Self {
        let extension = match format {
            FileFormat::Avro(_) => "avro",
            FileFormat::Json(_) => "jsonl",
        };
        let now = std::time::SystemTime::now();
        let since_epoch = now.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let not_before = now
            + (std::time::Duration::from_secs(1)
                - std::time::Duration::from_nanos(u64::from(since_epoch.subsec_nanos())));
        Self { staging, extension, host: host_name(), not_before }
    }

    fn next_name(&self) -> String {
        if let Ok(wait) = self.not_before.duration_since(std::time::SystemTime::now()) {
            std::thread::sleep(wait);
        }
        let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
        let stamp = chrono::Local::now().format("%Y%m%d%H%M%S");
        format!("{stamp}-divolte-tracking-{}-{n}.{}", self.host, self.extension)
    }
}

/// What a sink's files hold.
#[derive(Clone)]
pub enum FileFormat {
    /// Avro container files of this schema.
    Avro(apache_avro::Schema),
    /// JSON lines of records of the writer's schema.
    Json(JsonWriter),
}

/// The writer of an open file, by format.
enum Body {
    Avro(ContainerWriter<File>),
    Json(Box<LinesWriter<File>>),
}

impl Body {
    fn file(&mut self) -> &mut File {
        match self {
            Self::Avro(w) => w.get_mut(),
            Self::Json(w) => w.get_mut(),
        }
    }

    fn pending(&self) -> usize {
        match self {
            Self::Avro(w) => w.pending(),
            Self::Json(w) => w.pending(),
        }
    }
}

/// An open file in the staging directory.
pub struct OpenFile {
    writer: Body,
    /// Bytes known to be on disk: the header and every synced block.
    durable_len: u64,
    working_path: PathBuf,
    /// Its name once published.
    name: String,
    opened: Instant,
    last_sync: Instant,
    synced: u64,
}

impl OpenFile {
    /// Creates `<name>.partial` in the staging directory and writes the
    /// header, if the format has one. `taken(name)` says whether a
    /// published file has that name.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(namer: &FileNamer, format: &FileFormat, taken: impl Fn(&str) -> bool) -> io::Result<Self> {
        // The counter restarts with the process: skip names a previous run
        // published in the same second.
        let (working_path, name) = loop {
            let name = namer.next_name();
            if !taken(&name) {
                break (namer.staging.join(format!("{name}.partial")), name);
            }
        };
        let file = OpenOptions::new().write(true).create_new(true).open(&working_path)?;
        let created = match format {
            FileFormat::Avro(schema) => ContainerWriter::create(file, schema).map(Body::Avro),
            FileFormat::Json(json) => Ok(Body::Json(Box::new(LinesWriter::new(file, json.clone())))),
        }
        .and_then(|mut w| {
            w.file().sync_data()?;
            Ok(w)
        });
        let mut writer = match created {
            Ok(w) => w,
            Err(e) => {
                // A half-written header (a full disk) is worth nothing.
                let _ = std::fs::remove_file(&working_path);
                return Err(e);
            }
        };
        let durable_len = writer.file().stream_position()?;
        let now = Instant::now();
        Ok(Self { writer, durable_len, working_path, name, opened: now, last_sync: now, synced: 0 })
    }

    /// Where the file is being written.
    pub fn working_path(&self) -> &Path {
        &self.working_path
    }

    /// When it was created.
    pub fn opened(&self) -> Instant {
        self.opened
    }

    /// When it was last synced.
    pub fn last_sync(&self) -> Instant {
        self.last_sync
    }

    /// Records appended but not yet synced.
    pub fn pending(&self) -> usize {
        self.writer.pending()
    }

    /// Records synced to disk.
    pub fn synced(&self) -> u64 {
        self.synced
    }

    /// Appends one encoded record.
    ///
    /// # Errors
    /// A JSON file's record that does not decode with its schema (it is
    /// not written).
    pub fn append(&mut self, record: &[u8]) -> Result<(), String> {
        match &mut self.writer {
            Body::Avro(w) => {
                w.append(record);
                Ok(())
            }
            Body::Json(w) => w.append(record),
        }
    }

    /// Writes pending records as a block and makes them durable.
    ///
    /// # Errors
    /// Write or fsync errors. The file is then cut back to its last synced
    /// block and the records stay pending, so a later sync can retry.
    pub fn sync(&mut self) -> io::Result<()> {
        let pending = self.writer.pending() as u64;
        if pending == 0 {
            return Ok(());
        }
        let flushed = match &mut self.writer {
            Body::Avro(w) => w.sync(),
            Body::Json(w) => w.sync(),
        };
        let written = flushed.and_then(|()| {
            let file = self.writer.file();
            file.sync_data()?;
            file.stream_position()
        });
        match written {
            Ok(len) => {
                self.durable_len = len;
                self.synced += pending;
                self.last_sync = Instant::now();
                Ok(())
            }
            Err(e) => {
                let file = self.writer.file();
                let _ = file.set_len(self.durable_len).and_then(|()| file.seek(SeekFrom::Start(self.durable_len)));
                Err(e)
            }
        }
    }

    /// Closes the (synced) file for publishing: its staged path, its
    /// published name and its record count. An empty file is deleted and
    /// gives `None`.
    ///
    /// # Errors
    /// An empty file cannot be deleted.
    pub fn close(self) -> io::Result<Option<Staged>> {
        let Self { writer, working_path, name, synced, .. } = self;
        drop(writer);
        if synced == 0 {
            std::fs::remove_file(&working_path)?;
            return Ok(None);
        }
        Ok(Some(Staged { path: working_path, name, records: synced }))
    }

    /// Gives up the records not yet synced (the synced ones stay in the
    /// file); returns how many there were.
    pub fn drop_pending(&mut self) -> u64 {
        (match &mut self.writer {
            Body::Avro(w) => w.drop_pending(),
            Body::Json(w) => w.drop_pending(),
        }) as u64
    }
}

/// A complete file in the staging directory, waiting to be published.
#[derive(Debug)]
pub struct Staged {
    /// Where it is staged.
    pub path: PathBuf,
    /// Its name once published.
    pub name: String,
    /// Records in it.
    pub records: u64,
}

/// Recovers the files a previous run left in `staging` (a crash or
/// `kill -9`, or a store that was down at shutdown): each `.avro.partial`
/// is cut back to its last whole block (a `.jsonl.partial` to its last
/// whole line), ready to be published; one without any record is deleted.
///
/// # Errors
/// The staging directory cannot be listed, or a file cannot be cut back.
pub fn recover(staging: &Path) -> io::Result<Vec<Staged>> {
    let mut recovered = Vec::new();
    for entry in std::fs::read_dir(staging)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".partial")) else {
            continue;
        };
        let complete = if name.ends_with(".avro") {
            |bytes: &[u8]| crate::avro::container::complete_prefix(bytes)
        } else if name.ends_with(".jsonl") {
            |bytes: &[u8]| Some(lines::complete_prefix(bytes))
        } else {
            continue;
        };
        let name = name.to_owned();
        let bytes = std::fs::read(&path)?;
        match complete(&bytes) {
            Some((len, records)) if records > 0 => {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(len as u64)?;
                file.sync_all()?;
                recovered.push(Staged { path, name, records });
            }
            _ => std::fs::remove_file(&path)?,
        }
    }
    recovered.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(recovered)
}
