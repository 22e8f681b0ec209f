//! [`WalEventLog`] over a real `mempulse-wal` sequencer: scans see durable records only, and a
//! waiter wakes on the next durable append.

use mempulse_api::{EventLog as _, ServiceError, WalEventLog};
use mempulse_primitives::{Event, EventKind, Origin, Seq, Source, TxHash, UnixMillis};
use mempulse_wal::{Sequencer, SequencerConfig, Wal, WalConfig};

use crate::helpers::DEADLINE;

fn payload(i: u8) -> Vec<u8> {
    Event {
        observed_at: UnixMillis(1),
        source: Source::Mempool,
        origin: Origin::Local,
        kind: EventKind::TxPromoted { hash: TxHash([i; 32]) },
    }
    .to_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_and_waits_over_a_real_log() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(WalConfig::new(dir.path()).with_segment_size_bytes(1 << 20)).unwrap();
    let handle = Sequencer::start(wal, SequencerConfig::default()).unwrap();
    let log = WalEventLog::from_sequencer(&handle);
    assert!(log.read_after(Seq(0), 10).await.unwrap().is_empty());

    let range = handle.try_submit((1..=5).map(payload).collect()).unwrap().await.unwrap();
    assert_eq!((range.first, range.last), (Seq(1), Seq(5)));
    let all = log.read_after(Seq(0), 10).await.unwrap();
    assert_eq!(all.iter().map(|r| r.seq.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    assert_eq!(all[2].payload, payload(3));
    let page = log.read_after(Seq(2), 2).await.unwrap();
    assert_eq!(page.iter().map(|r| r.seq.0).collect::<Vec<_>>(), [3, 4]);
    assert!(log.read_after(Seq(u64::MAX), 10).await.unwrap().is_empty());

    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_after(Seq(5), 10).await })
    };
    handle.try_submit(vec![payload(6)]).unwrap().await.unwrap();
    let woke = tokio::time::timeout(DEADLINE, waiter).await.unwrap().unwrap().unwrap();
    assert_eq!(woke.iter().map(|r| r.seq.0).collect::<Vec<_>>(), [6]);

    handle.shutdown().await.unwrap();
    match log.wait_after(Seq(6), 10).await {
        Err(ServiceError::Unavailable(_)) => {}
        other => panic!("a closed log must end waiters, got {other:?}"),
    }
}
