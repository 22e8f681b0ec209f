//! [`CheckpointStore`]: a directory of checkpoint files, written atomically, loaded newest
//! valid first, pruned to the last K.
//!
//! Files are named `<seq, 20 digits>.ckpt`. A write goes to `<name>.tmp`, is synced, renamed
//! over the final name, and the directory is synced: a crash leaves either the old set or the
//! new one, plus at worst a stray `.tmp` file that the next open removes.

use std::{io, path::Path, sync::Arc};

use mempulse_primitives::Seq;
use mempulse_wal::{FsStorage, Storage, StorageFile};

use super::format::{self, CheckpointMeta, HEADER_LEN};
use crate::{Error, IoOp, ReplayConfig, Replayer, Result};

const SUFFIX: &str = ".ckpt";
const TMP_SUFFIX: &str = ".ckpt.tmp";

/// A directory of checkpoints.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    storage: Arc<dyn Storage>,
    retain: usize,
}

/// A checkpoint loaded and checked.
#[derive(Debug)]
pub struct LoadedCheckpoint {
    /// Its header.
    pub meta: CheckpointMeta,
    /// The replayer it restores, ready to apply the event after `meta.seq`.
    pub replayer: Replayer,
}

/// What [`CheckpointStore::load_newest_valid`] found.
#[derive(Debug)]
pub struct NewestValid {
    /// The newest checkpoint that passed every check (`None`: replay from genesis).
    pub loaded: Option<LoadedCheckpoint>,
    /// Newer checkpoints skipped because they cannot be trusted, newest first, with why.
    pub skipped: Vec<(Seq, crate::CheckpointDefect)>,
}

impl CheckpointStore {
    /// Opens (creating it if missing) the directory `dir`, keeping the newest `retain`
    /// checkpoints (at least 1). Removes stray temporary files of an interrupted write.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created or listed.
    pub fn open(dir: impl AsRef<Path>, retain: usize) -> Result<Self> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            op: IoOp::CreateDir,
            path: dir.to_path_buf(),
            source,
        })?;
        Self::with_storage(Arc::new(FsStorage::new(dir)), retain)
    }

    /// Opens a directory read-only: loading works, writing fails. Nothing is created or removed.
    #[must_use]
    pub fn open_read_only(dir: impl AsRef<Path>) -> Self {
        Self { storage: Arc::new(FsStorage::read_only(dir.as_ref())), retain: usize::MAX }
    }

    /// A store over any [`Storage`] (tests inject faults with the WAL's simulated storage).
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be listed or a stray file removed.
    pub fn with_storage(storage: Arc<dyn Storage>, retain: usize) -> Result<Self> {
        let store = Self { storage, retain: retain.max(1) };
        for name in store.names()? {
            if name.ends_with(TMP_SUFFIX) {
                store.storage.remove(&name).map_err(|e| store.io(IoOp::Remove, &name, e))?;
            }
        }
        Ok(store)
    }

    fn io(&self, op: IoOp, name: &str, source: io::Error) -> Error {
        Error::Io { op, path: self.storage.path_of(name), source }
    }

    fn names(&self) -> Result<Vec<String>> {
        self.storage.list().map_err(|e| self.io(IoOp::List, "", e))
    }

    /// Seqs of the checkpoint files present, newest first (by name; contents unchecked).
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be listed.
    pub fn seqs(&self) -> Result<Vec<Seq>> {
        let mut seqs: Vec<Seq> = self.names()?.iter().filter_map(|n| parse_name(n)).collect();
        seqs.sort_unstable_by(|a, b| b.cmp(a));
        Ok(seqs)
    }

    /// Headers of the checkpoints present, newest first, without checking their bodies (for
    /// comparison and bisection over checkpoint digests). Unreadable headers are left out.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be listed.
    pub fn list(&self) -> Result<Vec<CheckpointMeta>> {
        let mut out = Vec::new();
        for seq in self.seqs()? {
            let name = file_name(seq);
            let Ok(bytes) = self.read_prefix(&name, HEADER_LEN) else { continue };
            if let Ok(meta) = format::read_meta(&bytes) {
                out.push(meta);
            }
        }
        Ok(out)
    }

    /// Writes a checkpoint of `replayer` atomically, then removes the oldest files beyond the
    /// retention count. Returns its header.
    ///
    /// # Errors
    /// [`Error::Io`] naming the failed step; a failed write leaves the previous checkpoints as
    /// they were.
    pub fn write(&self, replayer: &Replayer) -> Result<CheckpointMeta> {
        let bytes = format::encode(replayer);
        let name = file_name(replayer.last_seq());
        let tmp = format!("{name}.tmp");
        let file = self.storage.create(&tmp).map_err(|e| self.io(IoOp::Write, &tmp, e))?;
        file.write_all_at(&bytes, 0).map_err(|e| self.io(IoOp::Write, &tmp, e))?;
        file.sync_data().map_err(|e| self.io(IoOp::Sync, &tmp, e))?;
        drop(file);
        self.storage.rename(&tmp, &name).map_err(|e| self.io(IoOp::Rename, &name, e))?;
        self.storage.sync_dir().map_err(|e| self.io(IoOp::Sync, "", e))?;
        let meta = format::read_meta(&bytes)
            .map_err(|defect| Error::Checkpoint { name: name.clone(), defect })?;
        tracing::info!(
            seq = meta.seq.0,
            raft_index = meta.sealed.raft_index.0,
            bytes = meta.bytes,
            "checkpoint written"
        );
        self.prune()?;
        Ok(CheckpointMeta { sealed: replayer.digest(), ..meta })
    }

    /// Removes the oldest checkpoint files beyond the retention count.
    fn prune(&self) -> Result<()> {
        for seq in self.seqs()?.into_iter().skip(self.retain) {
            let name = file_name(seq);
            self.storage.remove(&name).map_err(|e| self.io(IoOp::Remove, &name, e))?;
        }
        Ok(())
    }

    /// Loads and checks the checkpoint at `seq`.
    ///
    /// # Errors
    /// [`Error::Checkpoint`] when it cannot be trusted, [`Error::Io`] when it cannot be read.
    pub fn load(&self, seq: Seq, config: ReplayConfig) -> Result<(CheckpointMeta, Replayer)> {
        let name = file_name(seq);
        let bytes = self.read_all(&name)?;
        format::decode(&bytes, Some(seq), config)
            .map_err(|defect| Error::Checkpoint { name, defect })
    }

    /// Loads the newest checkpoint that passes every check and whose seq is at most `max_seq`
    /// (the last seq of the log it will resume on; newer ones are left alone). A damaged or
    /// foreign one (other rule version included) is skipped with a warning and the next older
    /// one is tried; none loaded means replay from genesis.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be listed. Unreadable files are skipped.
    pub fn load_newest_valid(
        &self,
        config: ReplayConfig,
        max_seq: Option<Seq>,
    ) -> Result<NewestValid> {
        let mut skipped = Vec::new();
        for seq in self.seqs()? {
            if max_seq.is_some_and(|max| seq > max) {
                tracing::debug!(seq = seq.0, "checkpoint past the end of the log left alone");
                continue;
            }
            match self.load(seq, config) {
                Ok((meta, replayer)) => {
                    tracing::info!(
                        seq = seq.0,
                        raft_index = meta.sealed.raft_index.0,
                        "checkpoint loaded"
                    );
                    let loaded = Some(LoadedCheckpoint { meta, replayer });
                    return Ok(NewestValid { loaded, skipped });
                }
                Err(Error::Checkpoint { name, defect }) => {
                    tracing::warn!(checkpoint = %name, defect = %defect,
                        "checkpoint skipped: it cannot be trusted");
                    skipped.push((seq, defect));
                }
                Err(err) => {
                    tracing::warn!(seq = seq.0, error = %err, "checkpoint skipped: unreadable");
                }
            }
        }
        Ok(NewestValid { loaded: None, skipped })
    }

    fn read_all(&self, name: &str) -> Result<Vec<u8>> {
        let file = self.storage.open(name).map_err(|e| self.io(IoOp::Read, name, e))?;
        let size = file.size().map_err(|e| self.io(IoOp::Read, name, e))?;
        let len = usize::try_from(size).map_err(|_| {
            self.io(IoOp::Read, name, io::Error::new(io::ErrorKind::InvalidData, "file too large"))
        })?;
        let mut buf = vec![0u8; len];
        let read =
            read_full_at(file.as_ref(), &mut buf).map_err(|e| self.io(IoOp::Read, name, e))?;
        buf.truncate(read);
        Ok(buf)
    }

    fn read_prefix(&self, name: &str, len: usize) -> Result<Vec<u8>> {
        let file = self.storage.open(name).map_err(|e| self.io(IoOp::Read, name, e))?;
        let mut buf = vec![0u8; len];
        let read =
            read_full_at(file.as_ref(), &mut buf).map_err(|e| self.io(IoOp::Read, name, e))?;
        buf.truncate(read);
        Ok(buf)
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn read_full_at(file: &dyn StorageFile, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..) {
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
    Ok(done)
}

/// `<seq, 20 digits>.ckpt`.
fn file_name(seq: Seq) -> String {
    format!("{:020}{SUFFIX}", seq.0)
}

fn parse_name(name: &str) -> Option<Seq> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().map(Seq)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_others_are_ignored() {
        assert_eq!(file_name(Seq(42)), "00000000000000000042.ckpt");
        assert_eq!(parse_name(&file_name(Seq(42))), Some(Seq(42)));
        assert_eq!(parse_name("00000000000000000042.ckpt.tmp"), None);
        assert_eq!(parse_name("42.ckpt"), None);
        assert_eq!(parse_name("0000000000000000004x.ckpt"), None);
    }
}
