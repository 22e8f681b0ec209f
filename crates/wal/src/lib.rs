#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod codec;
mod config;
mod crc;
mod cursor;
mod error;
mod maintenance;
pub mod metrics;
mod prepare;
mod reader;
mod record;
mod recovery;
mod segment;
mod sequencer;
mod sequencer_writer;
mod state;
mod storage;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;
mod verify;
mod wal;
mod writeback;

pub use config::{
    DEFAULT_MAX_GROUP_BYTES, DEFAULT_SEGMENT_SIZE_BYTES, DEFAULT_WRITE_PADDING_BYTES,
    DEFAULT_WRITEBACK_BYTES, INDEX_INTERVAL_RECORDS, MAX_SEGMENT_SIZE_BYTES,
    MIN_SEGMENT_SIZE_BYTES, Preallocate, READ_CHUNK_BYTES, RECYCLE_POOL_MAX,
    SEQUENCER_QUEUE_CAPACITY, SYNC_QUEUE_CAPACITY, SequencerConfig, SyncPolicy, WalConfig,
};
pub use cursor::Cursor;
pub use error::{ConfigError, CorruptKind, Error, IoOp, Result, SubmitError};
pub use mempulse_primitives::Seq;
pub use reader::WalReader;
pub use record::{Record, SeqRange};
pub use sequencer::{AppendTicket, Sequencer, SequencerHandle, Ticket};
pub use storage::{FsStorage, Storage, StorageFile};
pub use verify::{
    TornTail, VerifyReport, WalStats, open_reader, open_reader_storage, stats, stats_storage,
    verify, verify_storage,
};
pub use wal::Wal;
