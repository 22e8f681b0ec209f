//! A simulated storage for fault injection: it loses unsynced bytes, tears the last write at
//! any offset, and fails syncs or writes on demand.
//!
//! Model: each file keeps the bytes as of its last `sync_data` plus the list of later writes and
//! length changes. A crash image replays a chosen subset of those pending operations. Directory
//! operations (create, rename, remove) are durable at once, as on a journaling filesystem that
//! the log additionally syncs.

use std::{
    collections::BTreeMap,
    io,
    path::PathBuf,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use crate::storage::{Storage, StorageFile};

/// How much of the unsynced data survives a simulated crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashMode {
    /// Power loss: only synced bytes survive.
    DropUnsynced,
    /// Process crash: everything written survives.
    KeepUnsynced,
    /// Every unsynced write survives except the last one, of which only the first `keep`
    /// bytes do.
    TearLastWrite {
        /// Bytes of the last write that reach the disk.
        keep: usize,
    },
}

#[derive(Debug, Clone)]
enum PendingOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

#[derive(Debug, Default, Clone)]
struct SimData {
    current: Vec<u8>,
    durable: Vec<u8>,
    pending: Vec<(u64, PendingOp)>,
}

#[derive(Debug, Default)]
struct Faults {
    next_op: AtomicU64,
    fail_sync: AtomicBool,
    fail_write: AtomicBool,
}

#[derive(Debug)]
struct SimFile {
    data: Mutex<SimData>,
    faults: Arc<Faults>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn apply(bytes: &mut Vec<u8>, op: &PendingOp) {
    match op {
        PendingOp::Write { offset, data } => {
            let start = usize::try_from(*offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(data.len());
            if bytes.len() < end {
                bytes.resize(end, 0);
            }
            if let Some(dst) = bytes.get_mut(start..end) {
                dst.copy_from_slice(data);
            }
        }
        PendingOp::SetLen(len) => bytes.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0),
    }
}

impl SimFile {
    fn push(&self, op: PendingOp) -> io::Result<()> {
        if self.faults.fail_write.load(Ordering::SeqCst) {
            return Err(io::Error::other("simulated write failure"));
        }
        let id = self.faults.next_op.fetch_add(1, Ordering::SeqCst);
        let mut data = lock(&self.data);
        apply(&mut data.current, &op);
        data.pending.push((id, op));
        Ok(())
    }
}

impl StorageFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let data = lock(&self.data);
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(data.current.len());
        let src = data.current.get(start..).unwrap_or_default();
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.push(PendingOp::Write { offset, data: buf.to_vec() })
    }

    fn sync_data(&self) -> io::Result<()> {
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("simulated sync failure"));
        }
        let mut data = lock(&self.data);
        data.durable = data.current.clone();
        data.pending.clear();
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(lock(&self.data).current.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.push(PendingOp::SetLen(len))
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        let current = self.size()?;
        if len > current { self.push(PendingOp::SetLen(len)) } else { Ok(()) }
    }
}

/// In-memory [`Storage`] with fault injection. Clones share the same files.
#[derive(Clone, Debug, Default)]
pub struct SimStorage {
    files: Arc<Mutex<BTreeMap<String, Arc<SimFile>>>>,
    faults: Arc<Faults>,
}

impl SimStorage {
    /// An empty storage.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every later `sync_data` fail (or succeed again).
    pub fn set_fail_sync(&self, fail: bool) {
        self.faults.fail_sync.store(fail, Ordering::SeqCst);
    }

    /// Makes every later write and length change fail (or succeed again).
    pub fn set_fail_writes(&self, fail: bool) {
        self.faults.fail_write.store(fail, Ordering::SeqCst);
    }

    /// Length of the most recent unsynced write, if any.
    #[must_use]
    pub fn last_write_len(&self) -> Option<usize> {
        self.last_write().map(|(_, len)| len)
    }

    fn last_write(&self) -> Option<(u64, usize)> {
        let files = lock(&self.files);
        files
            .values()
            .flat_map(|f| {
                lock(&f.data)
                    .pending
                    .iter()
                    .filter_map(|(id, op)| match op {
                        PendingOp::Write { data, .. } => Some((*id, data.len())),
                        PendingOp::SetLen(_) => None,
                    })
                    .collect::<Vec<_>>()
            })
            .max_by_key(|(id, _)| *id)
    }

    /// The disk as it would be found after a crash now: a new, independent storage.
    #[must_use]
    pub fn crash_image(&self, mode: CrashMode) -> Self {
        let last = self.last_write().map(|(id, _)| id);
        let image = Self::new();
        let files = lock(&self.files);
        let mut out = lock(&image.files);
        for (name, file) in files.iter() {
            let data = lock(&file.data);
            let mut bytes = data.durable.clone();
            for (id, op) in &data.pending {
                match mode {
                    CrashMode::DropUnsynced => {}
                    CrashMode::KeepUnsynced => apply(&mut bytes, op),
                    CrashMode::TearLastWrite { keep } => match op {
                        PendingOp::Write { offset, data } if Some(*id) == last => {
                            let kept = data.get(..keep.min(data.len())).unwrap_or_default();
                            apply(
                                &mut bytes,
                                &PendingOp::Write { offset: *offset, data: kept.to_vec() },
                            );
                        }
                        _ => apply(&mut bytes, op),
                    },
                }
            }
            let sim = SimData { current: bytes.clone(), durable: bytes, pending: Vec::new() };
            out.insert(
                name.clone(),
                Arc::new(SimFile { data: Mutex::new(sim), faults: Arc::clone(&image.faults) }),
            );
        }
        drop(out);
        image
    }

    /// Names of all files, sorted.
    #[must_use]
    pub fn file_names(&self) -> Vec<String> {
        lock(&self.files).keys().cloned().collect()
    }

    /// Current bytes of a file.
    #[must_use]
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        lock(&self.files).get(name).map(|f| lock(&f.data).current.clone())
    }

    /// Replaces a file's bytes, as synced (to inject corruption).
    pub fn set_file_bytes(&self, name: &str, bytes: Vec<u8>) {
        let file = Arc::new(SimFile {
            data: Mutex::new(SimData {
                current: bytes.clone(),
                durable: bytes,
                pending: Vec::new(),
            }),
            faults: Arc::clone(&self.faults),
        });
        lock(&self.files).insert(name.to_owned(), file);
    }
}

fn not_found(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no simulated file {name}"))
}

impl Storage for SimStorage {
    fn path_of(&self, name: &str) -> PathBuf {
        PathBuf::from("sim").join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.file_names())
    }

    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        let file = lock(&self.files).get(name).cloned().ok_or_else(|| not_found(name))?;
        Ok(file)
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        if self.faults.fail_write.load(Ordering::SeqCst) {
            return Err(io::Error::other("simulated create failure"));
        }
        let file = Arc::new(SimFile { data: Mutex::default(), faults: Arc::clone(&self.faults) });
        lock(&self.files).insert(name.to_owned(), Arc::clone(&file));
        Ok(file)
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        lock(&self.files).remove(name).map(|_| ()).ok_or_else(|| not_found(name))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = lock(&self.files);
        let file = files.remove(from).ok_or_else(|| not_found(from))?;
        files.insert(to.to_owned(), file);
        Ok(())
    }

    fn sync_dir(&self) -> io::Result<()> {
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::other("simulated directory sync failure"));
        }
        Ok(())
    }
}
