//! The store's small metadata file: the vote, the last purged log id and the index anchor,
//! replaced atomically (temp file, fsync, rename, directory fsync).
//!
//! # Byte layout
//! ```text
//! 4 bytes magic "MPRM" | u8 version (META_VERSION = 1)
//! Option<vote>     u8 0 | u8 1, u64 term, u64 node id, bool committed
//! Option<log id>   u8 0 | u8 1, u64 term, u64 leader node id, u64 index   (last purged)
//! u64 anchor seq | u64 anchor index
//! u32 crc32c of every preceding byte
//! ```

use std::{io, path::Path, sync::Arc};

use mempulse_primitives::{DecodeError, Reader, Seq};
use mempulse_wal::{FsStorage, Storage, StorageFile};

use crate::{
    codec::{decode_log_id, decode_vote, encode_log_id, encode_vote},
    error::{Error, MetaCorruptKind, MetaOp, Result},
    types::{LogId, Vote},
};

/// Magic bytes that open the metadata file.
const META_MAGIC: [u8; 4] = *b"MPRM";
/// Format version of the metadata file.
const META_VERSION: u8 = 1;
/// File name of the metadata file.
pub(crate) const META_FILE: &str = "raft-meta";
/// File name of the temporary file a new version is written to before the rename.
const META_TMP_FILE: &str = "raft-meta.tmp";

/// Where Raft log indexes sit in the WAL: the entry at `index` is the record at
/// `seq + (index - anchor.index)`, for every index `>= anchor.index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Anchor {
    /// A WAL seq.
    pub(crate) seq: Seq,
    /// The Raft index the record at `seq` holds.
    pub(crate) index: u64,
}

impl Anchor {
    /// WAL seq of `index` (which must be `>= self.index`).
    pub(crate) const fn seq_of(self, index: u64) -> Seq {
        Seq(self.seq.0 + (index - self.index))
    }

    /// Raft index held by the record at `seq` (which must be `>= self.seq`).
    pub(crate) const fn index_of(self, seq: Seq) -> u64 {
        self.index + (seq.0 - self.seq.0)
    }
}

/// The durable state that is not log entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LogMeta {
    /// The last vote saved.
    pub(crate) vote: Option<Vote>,
    /// The last purged log id.
    pub(crate) purged: Option<LogId>,
    /// The index ↔ seq mapping.
    pub(crate) anchor: Anchor,
}

impl Default for LogMeta {
    fn default() -> Self {
        // A fresh WAL starts at seq 1; a fresh Raft log at index 0.
        Self { vote: None, purged: None, anchor: Anchor { seq: Seq(1), index: 0 } }
    }
}

impl LogMeta {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        out.extend_from_slice(&META_MAGIC);
        out.push(META_VERSION);
        match &self.vote {
            None => out.push(0),
            Some(vote) => {
                out.push(1);
                encode_vote(vote, &mut out);
            }
        }
        match &self.purged {
            None => out.push(0),
            Some(log_id) => {
                out.push(1);
                encode_log_id(log_id, &mut out);
            }
        }
        out.extend_from_slice(&self.anchor.seq.0.to_le_bytes());
        out.extend_from_slice(&self.anchor.index.to_le_bytes());
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, MetaCorruptKind> {
        if bytes.get(..4) != Some(META_MAGIC.as_slice()) {
            return Err(MetaCorruptKind::BadMagic);
        }
        let Some(split) = bytes.len().checked_sub(4) else {
            return Err(MetaCorruptKind::BadMagic);
        };
        let (body, crc) = bytes.split_at(split);
        let crc = <[u8; 4]>::try_from(crc).map_err(|_| MetaCorruptKind::BadMagic)?;
        let crc = u32::from_le_bytes(crc);
        let mut r = Reader::new(body);
        r.bytes(4).map_err(MetaCorruptKind::Malformed)?;
        let version = r.u8().map_err(MetaCorruptKind::Malformed)?;
        if version != META_VERSION {
            return Err(MetaCorruptKind::UnsupportedVersion(version));
        }
        if crc32c::crc32c(body) != crc {
            return Err(MetaCorruptKind::Checksum);
        }
        Self::decode_fields(r).map_err(MetaCorruptKind::Malformed)
    }

    fn decode_fields(mut r: Reader<'_>) -> Result<Self, DecodeError> {
        let vote = if option_tag(&mut r)? { Some(decode_vote(&mut r)?) } else { None };
        let purged = if option_tag(&mut r)? { Some(decode_log_id(&mut r)?) } else { None };
        let anchor = Anchor { seq: Seq(r.u64()?), index: r.u64()? };
        if anchor.seq == Seq(0) {
            return Err(DecodeError::InvalidValue {
                offset: r.position() - 16,
                what: "anchor seq",
            });
        }
        let meta = Self { vote, purged, anchor };
        r.finish()?;
        Ok(meta)
    }
}

fn option_tag(r: &mut Reader<'_>) -> Result<bool, DecodeError> {
    let offset = r.position();
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        tag => Err(DecodeError::UnknownTag { offset, what: "option", tag }),
    }
}

/// The metadata file of one store directory, on the directory's [`Storage`] (the filesystem in
/// a node, an in-memory disk in a simulation).
#[derive(Debug)]
pub(crate) struct MetaFile {
    storage: Arc<dyn Storage>,
}

impl MetaFile {
    /// The metadata file in directory `dir` of the real filesystem.
    pub(crate) fn new(dir: &Path) -> Self {
        Self::on_storage(Arc::new(FsStorage::new(dir)))
    }

    /// The metadata file on `storage`.
    pub(crate) fn on_storage(storage: Arc<dyn Storage>) -> Self {
        Self { storage }
    }

    fn err(&self, op: MetaOp, name: &str) -> impl FnOnce(io::Error) -> Error + use<> {
        let path = self.storage.path_of(name);
        move |source| Error::MetaIo { op, path, source }
    }

    /// Reads the metadata, or the default when there is none yet. A leftover temporary file (a
    /// crash before the rename) is removed: the previous version is the durable one.
    pub(crate) fn load(&self) -> Result<LogMeta> {
        match self.storage.remove(META_TMP_FILE) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.err(MetaOp::Remove, META_TMP_FILE)(e)),
        }
        let file = match self.storage.open(META_FILE) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LogMeta::default()),
            Err(e) => return Err(self.err(MetaOp::Read, META_FILE)(e)),
        };
        let bytes = read_all(file.as_ref()).map_err(self.err(MetaOp::Read, META_FILE))?;
        LogMeta::decode(&bytes)
            .map_err(|source| Error::MetaCorrupt { path: self.storage.path_of(META_FILE), source })
    }

    /// Replaces the metadata durably: when this returns `Ok`, a crash at any point leaves
    /// `meta` (never a mix of old and new).
    pub(crate) fn store(&self, meta: &LogMeta) -> Result<()> {
        let file =
            self.storage.create(META_TMP_FILE).map_err(self.err(MetaOp::Create, META_TMP_FILE))?;
        file.write_all_at(&meta.encode(), 0).map_err(self.err(MetaOp::Write, META_TMP_FILE))?;
        file.sync_data().map_err(self.err(MetaOp::Sync, META_TMP_FILE))?;
        drop(file);
        self.storage
            .rename(META_TMP_FILE, META_FILE)
            .map_err(self.err(MetaOp::Rename, META_FILE))?;
        self.storage.sync_dir().map_err(self.err(MetaOp::SyncDir, ""))
    }
}

/// Every byte of `file`.
pub(crate) fn read_all(file: &dyn StorageFile) -> io::Result<Vec<u8>> {
    let len = usize::try_from(file.size()?).unwrap_or(usize::MAX);
    let mut bytes = vec![0; len];
    let mut done = 0;
    while let Some(rest) = bytes.get_mut(done..) {
        if rest.is_empty() {
            break;
        }
        match file.read_at(rest, done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(done);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use mempulse_primitives::NodeId;
    use proptest::prelude::*;

    use super::*;
    use crate::types::LeaderId;

    fn sample() -> LogMeta {
        LogMeta {
            vote: Some(Vote {
                leader_id: LeaderId { term: 4, node_id: NodeId(2) },
                committed: true,
            }),
            purged: Some(LogId { leader_id: LeaderId { term: 3, node_id: NodeId(1) }, index: 77 }),
            anchor: Anchor { seq: Seq(12), index: 78 },
        }
    }

    #[test]
    fn round_trips() {
        for meta in [LogMeta::default(), sample()] {
            assert_eq!(LogMeta::decode(&meta.encode()), Ok(meta));
        }
    }

    #[test]
    fn damage_is_detected() {
        let bytes = sample().encode();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            assert!(LogMeta::decode(&damaged).is_err(), "flip at {at}");
        }
        for len in 0..bytes.len() {
            assert!(LogMeta::decode(&bytes[..len]).is_err(), "truncated to {len}");
        }
    }

    #[test]
    fn store_then_load() {
        let dir = tempfile::tempdir().unwrap();
        let file = MetaFile::new(dir.path());
        assert_eq!(file.load().unwrap(), LogMeta::default());
        file.store(&sample()).unwrap();
        fs::write(dir.path().join(META_TMP_FILE), b"half written").unwrap();
        assert_eq!(file.load().unwrap(), sample());
        assert!(!dir.path().join(META_TMP_FILE).exists());
        fs::write(dir.path().join(META_FILE), b"MPRM").unwrap();
        assert!(matches!(file.load(), Err(Error::MetaCorrupt { .. })));
    }

    #[test]
    fn a_stored_meta_survives_power_loss_on_simulated_storage() {
        use mempulse_wal::test_utils::{CrashMode, SimStorage};
        let disk = SimStorage::new();
        let file = MetaFile::on_storage(Arc::new(disk.clone()));
        file.store(&sample()).unwrap();
        let image = disk.crash_image(CrashMode::DropUnsynced);
        assert_eq!(MetaFile::on_storage(Arc::new(image)).load().unwrap(), sample());
    }

    #[test]
    fn anchor_maps_both_ways() {
        let anchor = Anchor { seq: Seq(10), index: 100 };
        assert_eq!(anchor.seq_of(100), Seq(10));
        assert_eq!(anchor.seq_of(105), Seq(15));
        assert_eq!(anchor.index_of(Seq(15)), 105);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..96)) {
            let _ = LogMeta::decode(&bytes);
        }

        #[test]
        fn arbitrary_metas_round_trip(
            vote in proptest::option::of((any::<u64>(), any::<u64>(), any::<bool>())),
            purged in proptest::option::of((any::<u64>(), any::<u64>(), any::<u64>())),
            seq in 1u64..,
            index in any::<u64>(),
        ) {
            let meta = LogMeta {
                vote: vote.map(|(term, node, committed)| Vote {
                    leader_id: LeaderId { term, node_id: NodeId(node) },
                    committed,
                }),
                purged: purged.map(|(term, node, index)| LogId {
                    leader_id: LeaderId { term, node_id: NodeId(node) },
                    index,
                }),
                anchor: Anchor { seq: Seq(seq), index },
            };
            prop_assert_eq!(LogMeta::decode(&meta.encode()), Ok(meta));
        }
    }
}
