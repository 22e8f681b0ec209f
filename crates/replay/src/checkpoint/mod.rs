//! Checkpoints: the derived state at one seq, in a versioned, checksummed file.

mod format;
mod store;

pub use format::{CHECKPOINT_FORMAT_VERSION, CHECKPOINT_MAGIC, CheckpointMeta};
pub use store::{CheckpointStore, LoadedCheckpoint, NewestValid};
