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
    /// Starts writing the dirty pages of the first `end` bytes back without waiting for them
    /// or for the metadata (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): no durability, only less
    /// left for the next [`sync_data`](Self::sync_data). Storage without such a call does
    /// nothing.
    ///
    /// # Errors
    /// The OS error.
    fn start_writeback(&self, end: u64) -> io::Result<()> {
        let _ = end;
        Ok(())
    }
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

    #[cfg(target_os = "linux")]
    #[allow(unsafe_code, reason = "sync_file_range has no safe binding in std or rustix")]
    fn start_writeback(&self, end: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // Length 0 would mean "to the end of the file": nothing to start.
        let Ok(len @ 1..) = i64::try_from(end) else {
            return Ok(());
        };
        // SAFETY: the descriptor is owned by `self.file` and open for the whole call; the
        // range is plain integers; the call reads no memory of ours.
        let rc = unsafe {
            libc::sync_file_range(self.file.as_raw_fd(), 0, len, libc::SYNC_FILE_RANGE_WRITE)
        };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_file_starts_writeback_and_keeps_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FsStorage::new(dir.path());
        let file = storage.create("seg").unwrap();
        file.allocate(1 << 20).unwrap();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        file.write_all_at(&bytes, 4096).unwrap();
        file.start_writeback(4096 + bytes.len() as u64).unwrap();
        file.write_all_at(b"after", 4096 + bytes.len() as u64).unwrap();
        file.start_writeback(1 << 20).unwrap();
        file.start_writeback(0).unwrap();
        file.sync_data().unwrap();
        let mut back = vec![0u8; bytes.len() + 5];
        assert_eq!(read_full_at(file.as_ref(), &mut back, 4096).unwrap(), back.len());
        assert_eq!(back.get(..bytes.len()), Some(bytes.as_slice()));
        assert_eq!(back.get(bytes.len()..), Some(b"after".as_slice()));
    }
}
