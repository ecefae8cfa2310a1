//! Where a file sink publishes a finished file: a local directory (a
//! rename), or a remote store ([`super::remote`]: S3 and GCS through
//! OpenDAL, HDFS through the native client).
//!
//! Every store is fed the same way: a complete Avro file that was written
//! and synced in the local staging directory. So a published file is
//! always whole, a sync costs a local `fdatasync` whatever the store, a
//! failed write can be cut back to the last good block (no remote store
//! can cut a file back), and what was synced survives a crash of the
//! collector: staged files are published at the next start. Publishing is
//! idempotent by name, so a file published just before a crash and
//! published again after it is one object.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::metrics::StoreErrorCause;
use crate::plan::StorePlan;

/// The longest a check, or a publish of an empty file, may take before it
/// counts as failed: a hung store (or the HDFS client retrying a refused
/// connection by itself) shows as an unhealthy sink within it.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(20);

/// A file sink's store.
pub enum Store {
    /// A local directory: a file is moved there.
    Local(PathBuf),
    /// S3, GCS or HDFS.
    #[cfg(feature = "remote-stores")]
    Remote(Box<super::remote::Remote>),
}

/// Why a store failed its check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckFailure {
    /// The store answered no: no such bucket or directory, credentials
    /// refused. Starting would only fill the staging directory.
    Refused(String),
    /// The store did not answer; it may come back.
    Unreachable(String),
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) => write!(f, "refused: {why}"),
            Self::Unreachable(why) => write!(f, "unreachable: {why}"),
        }
    }
}

/// The cause a failed publish is counted under.
pub fn cause(error: &io::Error) -> StoreErrorCause {
    let text = error.to_string().to_ascii_lowercase();
    match error.kind() {
        io::ErrorKind::PermissionDenied => StoreErrorCause::Refused,
        io::ErrorKind::QuotaExceeded => StoreErrorCause::Throttled,
        io::ErrorKind::TimedOut | io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset => {
            StoreErrorCause::Unreachable
        }
        io::ErrorKind::StorageFull | io::ErrorKind::NotFound => StoreErrorCause::Disk,
        _ if text.contains("connect") || text.contains("refused") || text.contains("dns") => {
            StoreErrorCause::Unreachable
        }
        _ => StoreErrorCause::Other,
    }
}

impl Store {
    /// Connects to the store of `plan` (no request is made yet).
    ///
    /// # Errors
    /// A client cannot be built (a bad URL, endpoint or credentials file),
    /// or this build has no remote stores.
    pub fn open(plan: &StorePlan) -> Result<Self, String> {
        match plan {
            StorePlan::Local { publish } => Ok(Self::Local(publish.clone())),
            #[cfg(feature = "remote-stores")]
            remote => super::remote::Remote::open(remote).map(|r| Self::Remote(Box::new(r))),
            #[cfg(not(feature = "remote-stores"))]
            _ => Err("this build has no remote stores (feature remote-stores)".to_owned()),
        }
    }

    /// Where files go, for logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(publish) => publish.display().to_string(),
            #[cfg(feature = "remote-stores")]
            Self::Remote(r) => r.describe(),
        }
    }

    /// Whether a local published file of this name exists (a name taken
    /// by an earlier run in this second, were it to happen). Remote stores
    /// are not asked, so that a store that is down does not hold up staging;
    /// names there are unique across runs by [`super::writer::FileNamer`].
    pub fn exists(&self, name: &str) -> bool {
        match self {
            Self::Local(publish) => publish.join(name).exists(),
            #[cfg(feature = "remote-stores")]
            Self::Remote(_) => false,
        }
    }

    /// Checks, within `limit`, that the store answers and that the publish
    /// location is there (the bucket; on HDFS the directories, created if
    /// missing).
    ///
    /// # Errors
    /// [`CheckFailure::Refused`] when the store answers no (no such bucket,
    /// credentials refused), [`CheckFailure::Unreachable`] when it does
    /// not answer.
    #[cfg_attr(not(feature = "remote-stores"), allow(unused_variables))]
    pub fn check(&self, limit: Duration) -> Result<(), CheckFailure> {
        match self {
            Self::Local(publish) => std::fs::read_dir(publish)
                .map(drop)
                .map_err(|e| CheckFailure::Refused(format!("{}: {e}", publish.display()))),
            #[cfg(feature = "remote-stores")]
            Self::Remote(r) => r.check(limit),
        }
    }

    /// Publishes the complete staged file `staged` as `name` and removes
    /// the staged file, taking at most `within` (the drain's time left).
    /// Returns where it went.
    ///
    /// # Errors
    /// The upload or rename failed; the staged file stays for another try.
    #[cfg_attr(not(feature = "remote-stores"), allow(unused_variables))]
    pub fn publish(&self, staged: &Path, name: &str, within: Option<Duration>) -> io::Result<String> {
        match self {
            Self::Local(publish) => {
                let target = publish.join(name);
                move_without_replacing(staged, &target)?;
                Ok(target.display().to_string())
            }
            #[cfg(feature = "remote-stores")]
            Self::Remote(r) => {
                let published = r.publish(staged, name, within)?;
                std::fs::remove_file(staged)?;
                Ok(published)
            }
        }
    }
}

/// Moves `from` to `to`, failing rather than replacing a file already at
/// `to`: a link and an unlink on one file system, a copy across two. A
/// move that a crash interrupted between the link and the unlink is
/// finished (both names are the same file).
fn move_without_replacing(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let (a, b) = (std::fs::metadata(from)?, std::fs::metadata(to)?);
            if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                std::fs::remove_file(from)
            } else {
                Err(e)
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let mut source = std::fs::File::open(from)?;
            let mut target = std::fs::OpenOptions::new().write(true).create_new(true).open(to)?;
            io::copy(&mut source, &mut target)?;
            target.sync_all()?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}
