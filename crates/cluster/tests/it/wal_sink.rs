//! The WAL fact sink: facts become durable records of the event log, and after a reopen the
//! sink reports how far the replicated facts reach, past interleaved local events.

use std::time::Duration;

use mempulse_cluster::{FactSink, WalFactSink, WrittenThrough};
use mempulse_primitives::{Event, EventKind, Origin, RaftIndex, Source, TxHash, UnixMillis};
use mempulse_wal::{Sequencer, SequencerConfig, SequencerHandle, Wal, WalConfig};

fn event(origin: Origin, n: u64) -> Event {
    let mut hash = [0; 32];
    hash[..8].copy_from_slice(&n.to_le_bytes());
    Event {
        observed_at: UnixMillis(n),
        source: Source::Mempool,
        origin,
        kind: EventKind::TxPromoted { hash: TxHash(hash) },
    }
}

fn replicated(index: u64, n: u64) -> Event {
    event(Origin::Replicated { raft_index: RaftIndex(index) }, n)
}

fn open(dir: &std::path::Path) -> (WalFactSink, SequencerHandle) {
    let wal = Wal::open(WalConfig::new(dir)).unwrap();
    let handle = Sequencer::start(wal, SequencerConfig::default()).unwrap();
    (WalFactSink::open(handle.clone(), Duration::from_secs(5)).unwrap(), handle)
}

#[tokio::test(flavor = "current_thread")]
async fn written_through_survives_reopen_past_many_local_events() {
    let dir = tempfile::tempdir().unwrap();
    let (sink, handle) = open(dir.path());
    assert_eq!(sink.written_through(), None);
    for index in 1..=5 {
        sink.append(vec![replicated(index, 1), replicated(index, 2)]).await.unwrap();
    }
    // The last index's facts span two appends, and more than one scan window of local events
    // follows them.
    sink.append(vec![replicated(6, 1), replicated(6, 2)]).await.unwrap();
    sink.append(vec![replicated(6, 3)]).await.unwrap();
    let locals: Vec<Event> = (0..1500).map(|n| event(Origin::Local, n)).collect();
    sink.append(locals).await.unwrap();
    assert_eq!(handle.reader().last_seq().0, 5 * 2 + 3 + 1500);
    drop(sink);
    handle.shutdown().await.unwrap();

    let (reopened, handle) = open(dir.path());
    assert_eq!(reopened.written_through(), Some(WrittenThrough { index: RaftIndex(6), facts: 3 }));
    let first = handle.reader().scan(mempulse_primitives::Seq(1), 1).unwrap();
    assert_eq!(Event::from_bytes(&first[0].payload).unwrap(), replicated(1, 1));
    handle.shutdown().await.unwrap();
}
