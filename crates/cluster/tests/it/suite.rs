//! openraft's own storage test suite against the WAL-backed log store.

use mempulse_cluster::{LogStore, LogStoreConfig, TypeConfig};
use mempulse_wal::MIN_SEGMENT_SIZE_BYTES;
use openraft::{
    StorageError, testing::log::StoreBuilder, testing::log::Suite, type_config::TypeConfigExt,
};
use tempfile::TempDir;

use crate::mem_sm::MemStateMachine;

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, MemStateMachine, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore, MemStateMachine), StorageError<TypeConfig>> {
        let dir =
            tempfile::tempdir().map_err(|e| StorageError::read(TypeConfig::err_from_error(&e)))?;
        // Small segments, so purges really remove files.
        let config =
            LogStoreConfig::new(dir.path()).with_segment_size_bytes(MIN_SEGMENT_SIZE_BYTES);
        let store = LogStore::open(&config)
            .map_err(|e| StorageError::read(TypeConfig::err_from_error(&e)))?;
        Ok((dir, store, MemStateMachine::default()))
    }
}

/// The suite sleeps a few seconds in total ("purge may be asynchronous"); a paused clock skips
/// them, and nothing in the store depends on time.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn openraft_storage_suite() {
    Suite::test_all(Builder).await.unwrap();
}
