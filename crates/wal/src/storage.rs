//! The storage the log runs on: a flat directory of files with positional IO.
//!
//! The codec, segment layout and recovery decisions only see these traits, so tests can swap
//! the filesystem for a simulated one that loses unsynced bytes or tears writes
//! (`SimStorage`, behind the `test-utils` feature).

use std::{
    fmt, fs, io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::Arc,
};

/// A directory of named files.
pub trait Storage: Send + Sync + fmt::Debug {
    /// Where a file lives, for error messages.
    fn path_of(&self, name: &str) -> PathBuf;
    /// Names of all files, in any order.
    ///
    /// # Errors
    /// The OS error.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens an existing file.
    ///
    /// # Errors
    /// The OS error (`NotFound` when missing).
    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>>;
    /// Creates a file, truncating one that exists.
    ///
    /// # Errors
    /// The OS error.
    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>>;
    /// Removes a file.
    ///
    /// # Errors
    /// The OS error.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Renames a file, replacing `to` if it exists.
    ///
    /// # Errors
    /// The OS error.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Makes creations, renames and removals durable.
    ///
    /// # Errors
    /// The OS error.
    fn sync_dir(&self) -> io::Result<()>;
}

/// One open file with positional reads and writes.
pub trait StorageFile: Send + Sync + fmt::Debug {
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read (0 at the end).
    ///
    /// # Errors
    /// The OS error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes all of `buf` at `offset`.
    ///
    /// # Errors
    /// The OS error.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Forces written data to stable storage (`fdatasync`).
    ///
    /// # Errors
    /// The OS error.
    fn sync_data(&self) -> io::Result<()>;
    /// Current length in bytes.
    ///
    /// # Errors
    /// The OS error.
    fn size(&self) -> io::Result<u64>;
    /// Truncates or extends (with zeros) to `len`.
    ///
    /// # Errors
    /// The OS error.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Reserves blocks for the first `len` bytes (`fallocate`); reads of new space return zeros.
    ///
    /// # Errors
    /// The OS error.
    fn allocate(&self, len: u64) -> io::Result<()>;
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
pub(crate) fn read_full_at(
    file: &dyn StorageFile,
    buf: &mut [u8],
    offset: u64,
) -> io::Result<usize> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..) {
        if rest.is_empty() {
            break;
        }
        let at = offset + done as u64;
        match file.read_at(rest, at) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The real filesystem: one directory.
#[derive(Clone, Debug)]
pub struct FsStorage {
    dir: PathBuf,
    read_only: bool,
}

impl FsStorage {
    /// Storage over `dir` (which must exist before files are created in it).
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), read_only: false }
    }

    /// Storage over `dir` that opens files read-only (for `verify` and `stats`).
    #[must_use]
    pub fn read_only(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), read_only: true }
    }

    /// The directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Storage for FsStorage {
    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file()
                && let Ok(name) = entry.file_name().into_string()
            {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let file =
            fs::OpenOptions::new().read(true).write(!self.read_only).open(self.path_of(name))?;
        Ok(Arc::new(FsFile { file }))
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path_of(name))?;
        Ok(Arc::new(FsFile { file }))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path_of(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path_of(from), self.path_of(to))
    }

    fn sync_dir(&self) -> io::Result<()> {
        fs::File::open(&self.dir)?.sync_all()
    }
}

#[derive(Debug)]
struct FsFile {
    file: fs::File,
}

impl StorageFile for FsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        rustix::fs::fallocate(&self.file, rustix::fs::FallocateFlags::empty(), 0, len)
            .map_err(io::Error::from)
    }
}
