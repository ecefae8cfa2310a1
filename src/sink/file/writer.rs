//! One Avro file from creation to publication.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::avro::container::ContainerWriter;

/// Numbers files uniquely within the process (the `<n>` of the name).
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Chooses file names: `<yyyyMMddHHmmss>-divolte-tracking-<host>-<n>.avro`
/// in local time, as the original.
pub struct FileNamer {
    working: PathBuf,
    publish: PathBuf,
    host: String,
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
    /// Names files for these directories.
    pub fn new(working: PathBuf, publish: PathBuf) -> Self {
        Self { working, publish, host: host_name() }
    }

    fn next_name(&self) -> String {
        let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
        let stamp = chrono::Local::now().format("%Y%m%d%H%M%S");
        format!("{stamp}-divolte-tracking-{}-{n}.avro", self.host)
    }
}

/// An open file in the working directory.
pub struct AvroFile {
    writer: ContainerWriter<BufWriter<File>>,
    working_path: PathBuf,
    publish_path: PathBuf,
    opened: Instant,
    last_sync: Instant,
    synced: u64,
}

impl AvroFile {
    /// Creates `<name>.partial` in the working directory and writes the header.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(namer: &FileNamer, schema: &apache_avro::Schema) -> io::Result<Self> {
        let name = namer.next_name();
        let working_path = namer.working.join(format!("{name}.partial"));
        let publish_path = namer.publish.join(&name);
        let file = OpenOptions::new().write(true).create_new(true).open(&working_path)?;
        let mut writer = ContainerWriter::create(BufWriter::with_capacity(64 * 1024, file), schema)?;
        writer.sync()?;
        let now = Instant::now();
        Ok(Self { writer, working_path, publish_path, opened: now, last_sync: now, synced: 0 })
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
    pub fn append(&mut self, record: &[u8]) {
        self.writer.append(record);
    }

    /// Writes pending records as a block and makes them durable.
    ///
    /// # Errors
    /// Write or fsync errors.
    pub fn sync(&mut self) -> io::Result<()> {
        let pending = self.writer.pending() as u64;
        if pending == 0 {
            return Ok(());
        }
        self.writer.sync()?;
        self.writer.get_mut().get_ref().sync_data()?;
        self.synced += pending;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Moves the (synced) file to the publish directory; an empty file is
    /// deleted instead. Returns where it went.
    ///
    /// # Errors
    /// The rename (or, across file systems, the copy) fails; the file stays
    /// in the working directory.
    pub fn publish(self) -> io::Result<PathBuf> {
        let Self { writer, working_path, publish_path, synced, .. } = self;
        drop(writer);
        if synced == 0 {
            std::fs::remove_file(&working_path)?;
            return Ok(working_path);
        }
        if let Err(e) = std::fs::rename(&working_path, &publish_path) {
            if e.raw_os_error() != Some(libc::EXDEV) {
                return Err(e);
            }
            std::fs::copy(&working_path, &publish_path)?;
            File::open(&publish_path)?.sync_all()?;
            std::fs::remove_file(&working_path)?;
        }
        Ok(publish_path)
    }

    /// Deletes the file (after a write error).
    pub fn discard(self) {
        let path = self.working_path.clone();
        drop(self);
        let _ = std::fs::remove_file(path);
    }
}
