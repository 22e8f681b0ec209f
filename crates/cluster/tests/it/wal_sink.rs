//! The WAL fact sink: facts become durable records of the event log, and after a reopen the
//! sink reports how far the replicated facts reach, past interleaved local events.

use std::time::Duration;

use mempulse_cluster::{
    FACTS_CHUNK_BYTES_MAX, FactSink, WalFactSink, WrittenThrough, facts_in_log,
};
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
    open_with(WalConfig::new(dir).with_segment_size_bytes(1 << 20))
}

fn open_with(config: WalConfig) -> (WalFactSink, SequencerHandle) {
    let wal = Wal::open(config).unwrap();
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

/// A fact naming `txs` transactions (about 32 bytes each).
fn block(index: u64, n: u64, txs: u64) -> Event {
    Event {
        kind: EventKind::BlockCommitted {
            height: mempulse_primitives::Height(n),
            txs: (0..txs).map(|t| TxHash([u8::try_from(t % 251).unwrap(); 32])).collect(),
        },
        ..replicated(index, n)
    }
}

/// Every fact of `after ..= through` past the first `skip` of `after`, asked chunk by chunk
/// as a member installing a snapshot does; also returns the number of chunks.
fn fetch_all(
    reader: &mempulse_wal::WalReader,
    after: u64,
    skip: u32,
    through: u64,
) -> Option<(Vec<Event>, usize)> {
    let (mut after, mut skip, mut out, mut chunks) = (RaftIndex(after), skip, Vec::new(), 0);
    loop {
        let chunk = facts_in_log(reader, after, skip, RaftIndex(through)).unwrap()?;
        if chunk.events.is_empty() {
            return Some((out, chunks));
        }
        chunks += 1;
        let bytes: usize = chunk.events.iter().map(|e| e.to_bytes().len()).sum();
        assert!(bytes <= FACTS_CHUNK_BYTES_MAX, "{bytes}");
        for event in chunk.events {
            let index = event.origin.raft_index().unwrap();
            if index == after {
                skip += 1;
            } else {
                (after, skip) = (index, 1);
            }
            out.push(event);
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn facts_in_log_serves_any_index_range_in_bounded_chunks() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments, so the purge below frees some.
    let (sink, handle) = open_with(WalConfig::new(dir.path()).with_segment_size_bytes(256 << 10));
    // Indexes 1..=300 with 0, 1 or 2 facts each (index 200: 120 facts of ~16 KiB, more than
    // one chunk), each index after two local events.
    let mut all = Vec::new();
    for index in 1..=300u64 {
        sink.append(vec![event(Origin::Local, index), event(Origin::Local, index + 1)])
            .await
            .unwrap();
        let facts: Vec<Event> = match index {
            200 => (0..120).map(|n| block(index, n, 500)).collect(),
            _ => (0..index % 3).map(|n| replicated(index, n)).collect(),
        };
        if !facts.is_empty() {
            all.extend(facts.clone());
            sink.append(facts).await.unwrap();
        }
    }
    let reader = handle.reader();
    let expected = |after: u64, skip: usize, through: u64| -> Vec<Event> {
        let of = |i: u64| all.iter().filter(move |e| e.origin.raft_index() == Some(RaftIndex(i)));
        let mut out: Vec<Event> = of(after).skip(skip).cloned().collect();
        out.extend((after + 1..=through).flat_map(of).cloned());
        out
    };
    for (after, skip, through) in
        [(1, 0, 300), (5, 1, 9), (3, 0, 8), (199, 1, 201), (200, 37, 200), (299, 0, 300)]
    {
        let (got, _) = fetch_all(&reader, after, skip, through).unwrap();
        assert_eq!(got, expected(after, skip as usize, through), "{after} {skip} {through}");
    }
    let (_, chunks) = fetch_all(&reader, 200, 0, 200).unwrap();
    assert!(chunks >= 2, "{chunks}");
    assert_eq!(fetch_all(&reader, 301, 0, 400), Some((Vec::new(), 0)));

    // Once the head of the log is purged, a range that may start there is refused; a later
    // one is still served.
    let purge_to = reader.last_seq().0 - 100;
    handle.try_purge_before(mempulse_primitives::Seq(purge_to)).unwrap().await.unwrap();
    let reader = handle.reader();
    assert!(reader.first_seq().0 > 1);
    assert_eq!(fetch_all(&reader, 1, 0, 10), None);
    let (got, _) = fetch_all(&reader, 290, 0, 300).unwrap();
    assert_eq!(got, expected(290, 0, 300));
    drop(sink);
    handle.shutdown().await.unwrap();
}
