//! Raft snapshots of the mempool state machine: their byte format and the directory that keeps
//! the latest ones.
//!
//! # Byte layout (one file, and the bytes sent to a follower)
//! ```text
//! 4 bytes magic "MPCS" | u8 version (SNAPSHOT_FILE_VERSION = 1)
//! Option<log id>   u8 0 | u8 1, u64 term, u64 leader node id, u64 index   (last applied)
//! Option<log id>   the log id of the entry that set the membership
//! membership       as in a membership entry (codec.rs)
//! u64 len | len bytes: the mempool's deterministic snapshot (Mempool::snapshot)
//! u32 crc32c of every preceding byte
//! ```
//! A file is written to `<name>.tmp`, fsynced, renamed to `snap-<pos>-<term>-<node>` (`pos` is
//! the last applied index + 1, 0 for none; all zero-padded to 20 digits, so names sort in log
//! order) and the directory fsynced. The newest [`SNAPSHOTS_KEPT`] files are kept.

use std::{fs, io, path::PathBuf, sync::Arc};

use mempulse_primitives::{DecodeError, Reader};
use mempulse_wal::{FsStorage, Storage};

use crate::{
    codec::{decode_log_id, decode_membership, encode_log_id, encode_membership},
    config::SNAPSHOTS_KEPT,
    error::{MetaCorruptKind, MetaOp},
    meta::read_all,
    types::{LogId, SnapshotMeta, StoredMembership},
};

const MAGIC: [u8; 4] = *b"MPCS";
/// Format version of a snapshot file.
pub const SNAPSHOT_FILE_VERSION: u8 = 1;
const PREFIX: &str = "snap-";
const TMP_SUFFIX: &str = ".tmp";

/// The data of one Raft snapshot: the encoded file (header, membership, mempool bytes,
/// checksum), shared cheaply between the state machine, the store and the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterSnapshot {
    bytes: Arc<[u8]>,
}

impl ClusterSnapshot {
    /// Wraps encoded snapshot bytes (as received from a leader); checked when installed.
    #[must_use]
    pub fn from_bytes(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self { bytes: bytes.into() }
    }

    /// The encoded bytes (the layout in this module's docs).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Encodes a snapshot of `mempool` bytes taken at `meta`.
    pub(crate) fn encode(meta: &SnapshotMeta, mempool: &[u8]) -> Self {
        let mut out = Vec::with_capacity(mempool.len() + 256);
        out.extend_from_slice(&MAGIC);
        out.push(SNAPSHOT_FILE_VERSION);
        put_log_id(meta.last_log_id.as_ref(), &mut out);
        put_log_id(meta.last_membership.log_id().as_ref(), &mut out);
        encode_membership(meta.last_membership.membership(), &mut out);
        out.extend_from_slice(&(mempool.len() as u64).to_le_bytes());
        out.extend_from_slice(mempool);
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Self { bytes: out.into() }
    }

    /// Checks the checksum and decodes the header; returns the metadata and the mempool bytes.
    ///
    /// # Errors
    /// [`MetaCorruptKind`] naming what is wrong: magic, version, checksum or a malformed field.
    pub(crate) fn decode(&self) -> Result<(SnapshotMeta, &[u8]), MetaCorruptKind> {
        let bytes = &*self.bytes;
        if bytes.get(..4) != Some(MAGIC.as_slice()) {
            return Err(MetaCorruptKind::BadMagic);
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let crc =
            u32::from_le_bytes(<[u8; 4]>::try_from(crc).map_err(|_| MetaCorruptKind::BadMagic)?);
        let mut r = Reader::new(body);
        r.bytes(4).map_err(MetaCorruptKind::Malformed)?;
        let version = r.u8().map_err(MetaCorruptKind::Malformed)?;
        if version != SNAPSHOT_FILE_VERSION {
            return Err(MetaCorruptKind::UnsupportedVersion(version));
        }
        if crc32c::crc32c(body) != crc {
            return Err(MetaCorruptKind::Checksum);
        }
        decode_fields(r).map_err(MetaCorruptKind::Malformed)
    }
}

fn put_log_id(log_id: Option<&LogId>, out: &mut Vec<u8>) {
    match log_id {
        None => out.push(0),
        Some(log_id) => {
            out.push(1);
            encode_log_id(log_id, out);
        }
    }
}

fn read_log_id(r: &mut Reader<'_>) -> Result<Option<LogId>, DecodeError> {
    let offset = r.position();
    match r.u8()? {
        0 => Ok(None),
        1 => decode_log_id(r).map(Some),
        tag => Err(DecodeError::UnknownTag { offset, what: "option", tag }),
    }
}

fn decode_fields(mut r: Reader<'_>) -> Result<(SnapshotMeta, &[u8]), DecodeError> {
    let last_log_id = read_log_id(&mut r)?;
    let membership_log_id = read_log_id(&mut r)?;
    let membership = decode_membership(&mut r)?;
    let offset = r.position();
    let len = usize::try_from(r.u64()?)
        .map_err(|_| DecodeError::InvalidValue { offset, what: "mempool length" })?;
    let mempool = r.bytes(len)?;
    r.finish()?;
    let last_membership = StoredMembership::new(membership_log_id, membership);
    Ok((SnapshotMeta { last_log_id, last_membership }, mempool))
}

/// Why a snapshot could not be stored, loaded or installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// A file operation failed.
    #[error("snapshot io failed: {op} {path}")]
    Io {
        /// What the store was doing.
        op: MetaOp,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The snapshot bytes are damaged or not a snapshot.
    #[error("snapshot corrupt")]
    Corrupt(#[source] MetaCorruptKind),
    /// The header decodes but the mempool state does not restore.
    #[error("snapshot mempool state does not restore")]
    Mempool(#[source] mempulse_mempool::Error),
    /// The snapshot's header names another log position than openraft's metadata for it.
    #[error("snapshot header does not match its metadata")]
    MetaMismatch,
}

impl SnapshotError {
    /// The `io::Error` openraft's storage traits expect.
    pub(crate) fn into_io(self) -> io::Error {
        let kind = match &self {
            Self::Io { .. } => io::ErrorKind::Other,
            Self::Corrupt(_) | Self::Mempool(_) | Self::MetaMismatch => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, self)
    }
}

/// The directory of snapshot files, on a [`Storage`].
#[derive(Clone, Debug)]
pub(crate) struct SnapshotStore {
    storage: Arc<dyn Storage>,
    /// The filesystem directory to create before the first write (`None` off the filesystem).
    create_dir: Option<PathBuf>,
}

impl SnapshotStore {
    /// The snapshot directory `dir` of the real filesystem (created when first written to).
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Self { storage: Arc::new(FsStorage::new(&dir)), create_dir: Some(dir) }
    }

    /// Snapshots on `storage`, whose operations return without blocking (an in-memory disk).
    pub(crate) fn in_memory(storage: Arc<dyn Storage>) -> Self {
        Self { storage, create_dir: None }
    }

    /// Whether its IO blocks (the filesystem), so it must run off the async workers.
    pub(crate) const fn blocks(&self) -> bool {
        self.create_dir.is_some()
    }

    fn io(&self, op: MetaOp, name: &str) -> impl FnOnce(io::Error) -> SnapshotError + use<> {
        let path = self.storage.path_of(name);
        move |source| SnapshotError::Io { op, path, source }
    }

    /// File name of the snapshot taken at `last`.
    fn file_name(meta: &SnapshotMeta) -> String {
        let (pos, term, node) = meta.last_log_id.map_or((0, 0, 0), |id| {
            (id.index.saturating_add(1), id.leader_id.term, id.leader_id.node_id.0)
        });
        format!("{PREFIX}{pos:020}-{term:020}-{node:020}")
    }

    /// Writes `snapshot` atomically (unless a file for the same log id exists), then removes
    /// all but the newest [`SNAPSHOTS_KEPT`] files. Blocking IO on the filesystem.
    ///
    /// # Errors
    /// [`SnapshotError::Io`] naming the failed operation.
    pub(crate) fn save(
        &self,
        meta: &SnapshotMeta,
        snapshot: &ClusterSnapshot,
    ) -> Result<(), SnapshotError> {
        if let Some(dir) = &self.create_dir {
            fs::create_dir_all(dir).map_err(|source| SnapshotError::Io {
                op: MetaOp::Create,
                path: dir.clone(),
                source,
            })?;
        }
        let name = Self::file_name(meta);
        if !self.list()?.contains(&name) {
            let tmp = format!("{name}{TMP_SUFFIX}");
            let file = self.storage.create(&tmp).map_err(self.io(MetaOp::Create, &tmp))?;
            file.write_all_at(snapshot.as_bytes(), 0).map_err(self.io(MetaOp::Write, &tmp))?;
            file.sync_data().map_err(self.io(MetaOp::Sync, &tmp))?;
            drop(file);
            self.storage.rename(&tmp, &name).map_err(self.io(MetaOp::Rename, &name))?;
            self.storage.sync_dir().map_err(self.io(MetaOp::SyncDir, ""))?;
        }
        self.prune()
    }

    /// Names of the snapshot files, oldest first; removes leftover temporary files.
    fn list(&self) -> Result<Vec<String>, SnapshotError> {
        let listed = match self.storage.list() {
            Ok(names) => names,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.io(MetaOp::Read, "")(e)),
        };
        let mut names = Vec::new();
        for name in listed {
            if !name.starts_with(PREFIX) {
                continue;
            }
            if name.ends_with(TMP_SUFFIX) {
                self.storage.remove(&name).map_err(self.io(MetaOp::Remove, &name))?;
                continue;
            }
            names.push(name);
        }
        names.sort_unstable();
        Ok(names)
    }

    fn prune(&self) -> Result<(), SnapshotError> {
        let names = self.list()?;
        let excess = names.len().saturating_sub(SNAPSHOTS_KEPT);
        for name in names.iter().take(excess) {
            self.storage.remove(name).map_err(self.io(MetaOp::Remove, name))?;
        }
        Ok(())
    }

    /// The newest snapshot file, decoded and checked. Blocking IO on the filesystem.
    ///
    /// # Errors
    /// [`SnapshotError::Io`] when it cannot be read; [`SnapshotError::Corrupt`] when it does not
    /// decode.
    pub(crate) fn load_latest(
        &self,
    ) -> Result<Option<(SnapshotMeta, ClusterSnapshot)>, SnapshotError> {
        let Some(name) = self.list()?.pop() else { return Ok(None) };
        let file = self.storage.open(&name).map_err(self.io(MetaOp::Read, &name))?;
        let bytes = read_all(file.as_ref()).map_err(self.io(MetaOp::Read, &name))?;
        let snapshot = ClusterSnapshot::from_bytes(bytes);
        let (meta, _) = snapshot.decode().map_err(SnapshotError::Corrupt)?;
        Ok(Some((meta, snapshot)))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use mempulse_primitives::NodeId;

    use super::*;
    use crate::types::{ClusterNode, LeaderId, Membership};

    fn meta(index: u64) -> SnapshotMeta {
        let nodes = BTreeMap::from([(NodeId(1), ClusterNode::new("a:1", "a:2"))]);
        let membership = Membership::new(vec![BTreeSet::from([NodeId(1)])], nodes).unwrap();
        let log_id = |index| LogId { leader_id: LeaderId { term: 2, node_id: NodeId(1) }, index };
        SnapshotMeta {
            last_log_id: Some(log_id(index)),
            last_membership: StoredMembership::new(Some(log_id(1)), membership),
        }
    }

    #[test]
    fn round_trips_and_every_corruption_is_detected() {
        let snapshot = ClusterSnapshot::encode(&meta(7), b"mempool-bytes");
        let (decoded, pool) = snapshot.decode().unwrap();
        assert_eq!(decoded, meta(7));
        assert_eq!(pool, b"mempool-bytes");
        let bytes = snapshot.as_bytes();
        for at in 0..bytes.len() {
            let mut damaged = bytes.to_vec();
            damaged[at] ^= 0x40;
            assert!(ClusterSnapshot::from_bytes(damaged).decode().is_err(), "flip at {at}");
        }
        for len in 0..bytes.len() {
            assert!(ClusterSnapshot::from_bytes(&bytes[..len]).decode().is_err(), "len {len}");
        }
    }

    #[test]
    fn store_keeps_the_newest_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = SnapshotStore::new(dir.path().join("snapshots"));
        assert!(store.load_latest().unwrap().is_none());
        for index in [3, 12, 9, 20] {
            let snapshot = ClusterSnapshot::encode(&meta(index), &index.to_le_bytes());
            store.save(&meta(index), &snapshot).unwrap();
        }
        // A leftover temporary file is removed, not loaded.
        fs::write(dir.path().join("snapshots/snap-9.tmp"), b"junk").unwrap();
        let (latest, snapshot) = store.load_latest().unwrap().unwrap();
        assert_eq!(latest, meta(20));
        assert_eq!(snapshot.decode().unwrap().1, 20u64.to_le_bytes());
        assert_eq!(store.list().unwrap().len(), SNAPSHOTS_KEPT);
    }
}
