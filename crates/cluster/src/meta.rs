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

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use mempulse_primitives::{DecodeError, Reader, Seq};

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

/// The metadata file of one store directory.
#[derive(Debug)]
pub(crate) struct MetaFile {
    dir: PathBuf,
    path: PathBuf,
    tmp: PathBuf,
}

impl MetaFile {
    pub(crate) fn new(dir: &Path) -> Self {
        Self { dir: dir.to_owned(), path: dir.join(META_FILE), tmp: dir.join(META_TMP_FILE) }
    }

    fn err(op: MetaOp, path: &Path) -> impl FnOnce(io::Error) -> Error + use<> {
        let path = path.to_owned();
        move |source| Error::MetaIo { op, path, source }
    }

    /// Reads the metadata, or the default when there is none yet. A leftover temporary file (a
    /// crash before the rename) is removed: the previous version is the durable one.
    pub(crate) fn load(&self) -> Result<LogMeta> {
        match fs::remove_file(&self.tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Self::err(MetaOp::Remove, &self.tmp)(e)),
        }
        match fs::read(&self.path) {
            Ok(bytes) => LogMeta::decode(&bytes)
                .map_err(|source| Error::MetaCorrupt { path: self.path.clone(), source }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(LogMeta::default()),
            Err(e) => Err(Self::err(MetaOp::Read, &self.path)(e)),
        }
    }

    /// Replaces the metadata durably: when this returns `Ok`, a crash at any point leaves
    /// `meta` (never a mix of old and new).
    pub(crate) fn store(&self, meta: &LogMeta) -> Result<()> {
        let mut file = fs::File::create(&self.tmp).map_err(Self::err(MetaOp::Create, &self.tmp))?;
        file.write_all(&meta.encode()).map_err(Self::err(MetaOp::Write, &self.tmp))?;
        file.sync_all().map_err(Self::err(MetaOp::Sync, &self.tmp))?;
        drop(file);
        fs::rename(&self.tmp, &self.path).map_err(Self::err(MetaOp::Rename, &self.path))?;
        fs::File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(Self::err(MetaOp::SyncDir, &self.dir))
    }
}

#[cfg(test)]
mod tests {
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
