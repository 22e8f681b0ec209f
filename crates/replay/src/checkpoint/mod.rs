//! Checkpoints: the derived state at one seq, in a versioned, checksummed file.

mod format;
mod store;

pub use format::{CHECKPOINT_FORMAT_VERSION, CHECKPOINT_MAGIC, CheckpointMeta};
pub use store::{CheckpointStore, LoadedCheckpoint, NewestValid};

use crate::{CheckpointDefect, ReplayConfig, Replayer};

/// The checkpoint file bytes of `replayer` (what [`CheckpointStore::write`] writes), for sending
/// a checkpoint to another replica.
#[must_use]
pub fn checkpoint_bytes(replayer: &Replayer) -> Vec<u8> {
    format::encode(replayer)
}

/// Checks and decodes checkpoint bytes received from elsewhere, with every check a load from
/// disk makes (the file-name check aside).
///
/// # Errors
/// The [`CheckpointDefect`] that makes the bytes untrustworthy.
pub fn checkpoint_from_bytes(
    bytes: &[u8],
    config: ReplayConfig,
) -> Result<LoadedCheckpoint, CheckpointDefect> {
    format::decode(bytes, None, config).map(|(meta, replayer)| LoadedCheckpoint { meta, replayer })
}
