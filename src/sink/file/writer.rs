//! One Avro file from creation to publication.

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
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
    writer: ContainerWriter<File>,
    /// Bytes known to be on disk: the header and every synced block.
    durable_len: u64,
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
        // The counter restarts with the process: skip names a previous run
        // published in the same second.
        let (working_path, publish_path) = loop {
            let name = namer.next_name();
            let publish_path = namer.publish.join(&name);
            if !publish_path.exists() {
                break (namer.working.join(format!("{name}.partial")), publish_path);
            }
        };
        let file = OpenOptions::new().write(true).create_new(true).open(&working_path)?;
        let created = ContainerWriter::create(file, schema).and_then(|mut w| {
            w.get_mut().sync_data()?;
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
        let durable_len = writer.get_mut().stream_position()?;
        let now = Instant::now();
        Ok(Self { writer, durable_len, working_path, publish_path, opened: now, last_sync: now, synced: 0 })
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
    /// Write or fsync errors. The file is then cut back to its last synced
    /// block and the records stay pending, so a later sync can retry.
    pub fn sync(&mut self) -> io::Result<()> {
        let pending = self.writer.pending() as u64;
        if pending == 0 {
            return Ok(());
        }
        let written = self.writer.sync().and_then(|()| {
            let file = self.writer.get_mut();
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
                let file = self.writer.get_mut();
                let _ = file.set_len(self.durable_len).and_then(|()| file.seek(SeekFrom::Start(self.durable_len)));
                Err(e)
            }
        }
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
        move_without_replacing(&working_path, &publish_path)?;
        Ok(publish_path)
    }

    /// Gives up the records not yet synced (the synced ones stay in the
    /// file); returns how many there were.
    pub fn drop_pending(&mut self) -> u64 {
        self.writer.drop_pending() as u64
    }
}

/// Moves `from` to `to`, failing rather than replacing a file already at
/// `to`: a link and an unlink on one file system, a copy across two.
fn move_without_replacing(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let mut source = File::open(from)?;
            let mut target = OpenOptions::new().write(true).create_new(true).open(to)?;
            io::copy(&mut source, &mut target)?;
            target.sync_all()?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

/// Recovers the files a previous run left in `working` (a crash or
/// `kill -9`): each `.avro.partial` is cut back to its last whole block and
/// published to `publish`; one without any record is deleted. Returns the
/// published paths with their record counts.
///
/// # Errors
/// The working directory cannot be listed.
pub fn recover(working: &Path, publish: &Path) -> io::Result<Vec<(PathBuf, u64)>> {
    let mut recovered = Vec::new();
    for entry in std::fs::read_dir(working)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".partial")) else {
            continue;
        };
        if !name.ends_with(".avro") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        match crate::avro::container::complete_prefix(&bytes) {
            Some((len, records)) if records > 0 => {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(len as u64)?;
                file.sync_all()?;
                let target = publish.join(name);
                move_without_replacing(&path, &target)?;
                recovered.push((target, records));
            }
            _ => std::fs::remove_file(&path)?,
        }
    }
    Ok(recovered)
}
