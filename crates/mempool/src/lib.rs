#![doc = include_str!("../README.md")]

mod add;
mod age;
mod build;
mod check;
mod command;
mod command_codec;
mod commit;
mod config;
mod error;
mod evict;
mod heads;
mod lookup;
mod pool;
mod query;
mod reorg;
mod senders;
mod snapshot;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

pub use build::{BlockLimits, BuiltBlock, SKIPPED_MAX};
pub use check::is_sufficient_bump;
pub use command::{Command, Outcome};
pub use command_codec::COMMAND_VERSION;
pub use commit::CommitBlock;
pub use config::{MempoolConfig, OrderingPolicy};
pub use error::{ConfigField, Error, Result, SnapshotErrorKind};
pub use pool::Mempool;
pub use query::SenderView;
pub use reorg::{OrphanedBlock, Reorg};
pub use snapshot::{SNAPSHOT_MAGIC, SNAPSHOT_VERSION};
