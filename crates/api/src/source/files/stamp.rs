//! What tells a watched file changed without reading it: its length, modification time and
//! inode. Only metadata is read, so checking thousands of files costs microseconds each.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{list_files, scan, LoadError, SymlinkLoop};

/// The metadata of one file that changes whenever the file does.
///
/// The inode catches an atomic replacement (write a sibling, rename it over) that happens to
/// keep length and modification time, e.g. `cp -p` followed by `mv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Length in bytes.
    pub len: u64,
    /// Modification time, when the file system has one.
    pub modified: Option<SystemTime>,
    /// Inode number (0 where the platform has none).
    pub inode: u64,
}

impl FileStamp {
    /// The stamp of `meta`.
    pub fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(meta);
        #[cfg(not(unix))]
        let inode = 0;
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode,
        }
    }
}

/// The files a load would read, in load order, each with its [`FileStamp`]. Two equal
/// fingerprints mean a load would give the same result.
pub type Fingerprint = Vec<(PathBuf, FileStamp)>;

/// The current [`Fingerprint`] of `paths` (files and directories, as
/// [`super::load_paths`] takes them). Any listing or metadata error is returned: an
/// unreadable source is "unavailable", never "empty".
pub fn fingerprint(paths: &[impl AsRef<Path>]) -> Result<Fingerprint, LoadError> {
    stamps(list_files(paths)?)
}

/// [`fingerprint`] without logging, with the symlink loops the walk skipped (the watcher logs
/// each once per path until it changes).
pub fn fingerprint_scan(
    paths: &[impl AsRef<Path>],
) -> Result<(Fingerprint, Vec<SymlinkLoop>), LoadError> {
    let scan = scan(paths)?;
    let fp = stamps(scan.files)?;
    Ok((fp, scan.loops))
}

fn stamps(files: Vec<PathBuf>) -> Result<Fingerprint, LoadError> {
    files
        .into_iter()
        .map(|path| match std::fs::metadata(&path) {
            Ok(meta) => Ok((path, FileStamp::of(&meta))),
            Err(source) => Err(LoadError::Io { path, source }),
        })
        .collect()
}
