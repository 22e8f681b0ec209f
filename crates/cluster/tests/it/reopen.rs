//! Restart tests: what the store acknowledged is there after a reopen (vote, entries,
//! truncations, purges, re-anchoring after a purge past the end).

use mempulse_cluster::{
    ClusterCommand, ClusterRequest, Entry, Error, LeaderId, LogId, LogStore, LogStoreConfig,
    Payload, TypeConfig, Vote,
};
use mempulse_primitives::NodeId;
use mempulse_wal::MIN_SEGMENT_SIZE_BYTES;
use openraft::{
    RaftLogReader,
    storage::{IOFlushed, RaftLogStorage},
    type_config::TypeConfigExt,
};
use tempfile::TempDir;

fn log_id(term: u64, index: u64) -> LogId {
    LogId { leader_id: LeaderId { term, node_id: NodeId(1) }, index }
}

fn entry(term: u64, index: u64) -> Entry {
    let command = ClusterCommand::AddTxs(vec![mempulse_mempool::test_utils::tx(index, 0, 1)]);
    let request = ClusterRequest::single(mempulse_primitives::UnixMillis(index), command);
    Entry { log_id: log_id(term, index), payload: Payload::Normal(request) }
}

fn open(dir: &TempDir) -> LogStore {
    let config = LogStoreConfig::new(dir.path()).with_segment_size_bytes(MIN_SEGMENT_SIZE_BYTES);
    LogStore::open(&config).unwrap()
}

/// Appends and waits until the flush callback reports the entries durable.
async fn append(store: &mut LogStore, entries: Vec<Entry>) -> std::io::Result<()> {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await?;
    rx.await.map_err(std::io::Error::other)?
}

async fn all(store: &LogStore) -> Vec<Entry> {
    store.reader().try_get_log_entries(..).await.unwrap()
}

#[tokio::test]
async fn vote_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let vote = Vote { leader_id: LeaderId { term: 7, node_id: NodeId(3) }, committed: true };
    store.save_vote(&vote).await.unwrap();
    store.close().await;
    let store = open(&dir);
    assert_eq!(store.reader().read_vote().await.unwrap(), Some(vote));
    assert_eq!(store.vote(), Some(vote));
    store.close().await;
}

#[tokio::test]
async fn entries_survive_restart_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let entries: Vec<Entry> = (0..200).map(|i| entry(1 + i / 50, i)).collect();
    for chunk in entries.chunks(7) {
        append(&mut store, chunk.to_vec()).await.unwrap();
    }
    store.close().await;
    let store = open(&dir);
    assert_eq!(all(&store).await, entries);
    assert_eq!(store.log_state().last_log_id, Some(log_id(4, 199)));
    assert_eq!(store.log_state().last_purged_log_id, None);
    store.close().await;
}

#[tokio::test]
async fn truncation_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let entries: Vec<Entry> = (0..120).map(|i| entry(1, i)).collect();
    append(&mut store, entries.clone()).await.unwrap();
    store.truncate_after(Some(log_id(1, 10))).await.unwrap();
    assert_eq!(all(&store).await, entries[..=10].to_vec());
    store.close().await;

    let mut store = open(&dir);
    assert_eq!(store.log_state().last_log_id, Some(log_id(1, 10)));
    assert_eq!(all(&store).await, entries[..=10].to_vec());
    // A new leader's suffix continues where the kept prefix ends.
    append(&mut store, vec![entry(2, 11), entry(2, 12)]).await.unwrap();
    store.truncate_after(None).await.unwrap();
    assert!(all(&store).await.is_empty());
    store.close().await;
    let store = open(&dir);
    assert_eq!(store.log_state().last_log_id, None);
    store.close().await;
}

#[tokio::test]
async fn purge_survives_restart_and_frees_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    let entries: Vec<Entry> = (0..300).map(|i| entry(1, i)).collect();
    append(&mut store, entries.clone()).await.unwrap();
    let segments_before = std::fs::read_dir(dir.path().join("log")).unwrap().count();
    store.purge(log_id(1, 200)).await.unwrap();
    let segments_after = std::fs::read_dir(dir.path().join("log")).unwrap().count();
    assert!(segments_after < segments_before, "{segments_after} !< {segments_before}");
    assert_eq!(all(&store).await, entries[201..].to_vec());
    store.close().await;

    let store = open(&dir);
    assert_eq!(store.log_state().last_purged_log_id, Some(log_id(1, 200)));
    assert_eq!(store.log_state().last_log_id, Some(log_id(1, 299)));
    assert_eq!(all(&store).await, entries[201..].to_vec());
    store.close().await;
}

#[tokio::test]
async fn purge_past_the_end_re_anchors_durably() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    append(&mut store, (0..20).map(|i| entry(1, i)).collect()).await.unwrap();
    // As after installing a snapshot that covers more than the local log.
    store.purge(log_id(3, 1000)).await.unwrap();
    assert!(all(&store).await.is_empty());
    store.close().await;

    let mut store = open(&dir);
    assert_eq!(store.log_state().last_log_id, Some(log_id(3, 1000)));
    append(&mut store, vec![entry(3, 1001), entry(4, 1002)]).await.unwrap();
    store.close().await;

    let store = open(&dir);
    assert_eq!(all(&store).await, vec![entry(3, 1001), entry(4, 1002)]);
    assert_eq!(store.log_state().last_purged_log_id, Some(log_id(3, 1000)));
    store.close().await;
}

#[tokio::test]
async fn a_hole_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir);
    append(&mut store, vec![entry(1, 0), entry(1, 1)]).await.unwrap();
    let err = append(&mut store, vec![entry(1, 3)]).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    let err = append(&mut store, vec![entry(1, 2), entry(1, 4)]).await.unwrap_err();
    let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>());
    assert!(matches!(inner, Some(Error::NotContiguous { expected: 3, found: 4 })), "{err:?}");
    assert_eq!(all(&store).await, vec![entry(1, 0), entry(1, 1)]);
    store.close().await;
}

#[tokio::test]
async fn a_second_store_on_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let config = LogStoreConfig::new(dir.path());
    assert!(matches!(LogStore::open(&config), Err(Error::Wal(mempulse_wal::Error::Locked { .. }))));
    store.close().await;
}
