//! The sequencer: ordering, gapless acks, the bounded queue, fatal sync errors, cursors.

use std::{
    io,
    path::PathBuf,
    sync::{
        Arc, Condvar, Mutex,
        mpsc::{self, SyncSender},
    },
    time::Duration,
};

use mempulse_wal::{
    Error, Preallocate, Seq, SeqRange, Sequencer, SequencerConfig, Storage, StorageFile,
    SubmitError, SyncPolicy, Wal,
    test_utils::{CrashMode, SimStorage},
};

use crate::common::{assert_log, open_sim, payload, small_config};

const WAIT: Duration = Duration::from_secs(30);

/// The log as a power loss now would leave it (only synced bytes), reopened.
fn after_power_loss(sim: &SimStorage) -> Wal {
    open_sim(&sim.crash_image(CrashMode::DropUnsynced), small_config(Preallocate::Fallocate))
        .unwrap()
}

fn start(
    sim: &SimStorage,
    sync: SyncPolicy,
    config: SequencerConfig,
) -> mempulse_wal::SequencerHandle {
    let wal = open_sim(sim, small_config(Preallocate::Fallocate).with_sync(sync)).unwrap();
    Sequencer::start(wal, config).unwrap()
}

#[test]
fn concurrent_submitters_get_gapless_ordered_acks() {
    let sim = SimStorage::new();
    let seq = start(&sim, SyncPolicy::Always, SequencerConfig::default());
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let seq = seq.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..150u32 {
                    let n = 1 + (i % 7) as usize;
                    let batch: Vec<Vec<u8>> =
                        (0..n).map(|k| [&[t][..], &i.to_le_bytes(), &[k as u8]].concat()).collect();
                    let ticket = seq.try_submit(batch.clone()).unwrap();
                    let range = ticket.wait().unwrap();
                    assert_eq!(range.len(), n as u64);
                    acked.push((range, batch));
                }
                acked
            })
        })
        .collect();
    let mut all: Vec<(SeqRange, Vec<Vec<u8>>)> =
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    all.sort_by_key(|(r, _)| r.first);
    let reader = seq.reader();
    let mut next = 1;
    for (range, batch) in &all {
        assert_eq!(range.first, Seq(next), "gap or overlap");
        let got = reader.scan(range.first, batch.len()).unwrap();
        assert_eq!(
            got.iter().map(|r| &r.payload).collect::<Vec<_>>(),
            batch.iter().collect::<Vec<_>>()
        );
        next = range.last.0 + 1;
    }
    assert_eq!(*seq.durable().borrow(), Seq(next - 1));
    seq.shutdown_blocking().unwrap();
    assert!(matches!(seq.try_submit(vec![b"x".to_vec()]), Err(SubmitError::Closed)));
    let wal = open_sim(&sim, small_config(Preallocate::Fallocate)).unwrap();
    assert_eq!(wal.last_seq(), Seq(next - 1));
}

#[test]
fn pipelined_tickets_resolve_in_order() {
    for sync in
        [SyncPolicy::Always, SyncPolicy::Never, SyncPolicy::Interval(Duration::from_millis(1))]
    {
        let sim = SimStorage::new();
        let seq = start(&sim, sync, SequencerConfig::default().with_max_group_bytes(2000));
        let tickets: Vec<_> =
            (1..=500u64).map(|s| seq.try_submit(vec![payload(s)]).unwrap()).collect();
        for (i, ticket) in tickets.into_iter().enumerate() {
            let range = ticket.wait().unwrap();
            assert_eq!((range.first, range.last), (Seq(i as u64 + 1), Seq(i as u64 + 1)));
        }
        // Under `Interval` the records are published by the sync that covers them.
        seq.try_sync().unwrap().wait().unwrap();
        assert_log(&seq.reader(), 1, 500);
        seq.shutdown_blocking().unwrap();
        assert!(matches!(seq.shutdown_blocking(), Err(Error::Closed)));
    }
}

/// Storage whose segment writes (or syncs) block while the gate is closed, and report that
/// they started.
#[derive(Debug, Clone)]
struct GatedStorage {
    sim: SimStorage,
    gate: Arc<(Mutex<bool>, Condvar)>,
    started: Arc<Mutex<Option<SyncSender<()>>>>,
    /// Gate `sync_data` instead of writes.
    gate_syncs: bool,
}

impl GatedStorage {
    fn new(gate_syncs: bool) -> Self {
        Self {
            sim: SimStorage::new(),
            gate: Arc::new((Mutex::new(false), Condvar::new())),
            started: Arc::new(Mutex::new(None)),
            gate_syncs,
        }
    }
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn StorageFile>,
    storage: GatedStorage,
}

impl GatedStorage {
    fn set_closed(&self, closed: bool) {
        *self.gate.0.lock().unwrap() = closed;
        self.gate.1.notify_all();
    }

    fn wait_open(&self) {
        if let Some(tx) = self.started.lock().unwrap().as_ref() {
            let _ = tx.try_send(());
        }
        let (lock, cvar) = &*self.gate;
        let guard = lock.lock().unwrap();
        let (_guard, timeout) = cvar.wait_timeout_while(guard, WAIT, |closed| *closed).unwrap();
        assert!(!timeout.timed_out(), "gate never opened");
    }
}

impl StorageFile for GatedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if !self.storage.gate_syncs {
            self.storage.wait_open();
        }
        self.inner.write_all_at(buf, offset)
    }
    fn sync_data(&self) -> io::Result<()> {
        if self.storage.gate_syncs {
            self.storage.wait_open();
        }
        self.inner.sync_data()
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        self.inner.allocate(len)
    }
}

impl Storage for GatedStorage {
    fn path_of(&self, name: &str) -> PathBuf {
        self.sim.path_of(name)
    }
    fn list(&self) -> io::Result<Vec<String>> {
        self.sim.list()
    }
    fn open(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(GatedFile { inner: self.sim.open(name)?, storage: self.clone() }))
    }
    fn create(&self, name: &str) -> io::Result<Arc<dyn StorageFile>> {
        Ok(Arc::new(GatedFile { inner: self.sim.create(name)?, storage: self.clone() }))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        self.sim.remove(name)
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.sim.rename(from, to)
    }
    fn sync_dir(&self) -> io::Result<()> {
        self.sim.sync_dir()
    }
}

#[test]
fn full_queue_is_a_typed_error_and_nothing_is_lost() {
    let (tx, rx) = mpsc::sync_channel(16);
    let storage = GatedStorage::new(false);
    let wal =
        Wal::open_with_storage(small_config(Preallocate::Fallocate), Arc::new(storage.clone()))
            .unwrap();
    // Only writes after open are reported.
    *storage.started.lock().unwrap() = Some(tx);
    let capacity = 4;
    let seq =
        Sequencer::start(wal, SequencerConfig::default().with_queue_capacity(capacity)).unwrap();
    storage.set_closed(true);
    let first = seq.try_submit(vec![payload(1)]).unwrap();
    // The writer has taken the first batch and is blocked inside its write.
    rx.recv_timeout(WAIT).unwrap();
    let queued: Vec<_> =
        (2..=1 + capacity as u64).map(|s| seq.try_submit(vec![payload(s)]).unwrap()).collect();
    assert_eq!(seq.queue_depth(), capacity);
    match seq.try_submit(vec![payload(99)]) {
        Err(SubmitError::Full { depth, capacity: cap }) => {
            assert_eq!((depth, cap), (capacity, capacity))
        }
        other => panic!("expected Full, got {other:?}"),
    }
    storage.set_closed(false);
    assert_eq!(first.wait().unwrap().first, Seq(1));
    for (i, t) in queued.into_iter().enumerate() {
        assert_eq!(t.wait().unwrap().first, Seq(i as u64 + 2));
    }
    assert_log(&seq.reader(), 1, 1 + capacity as u64);
    seq.shutdown_blocking().unwrap();
}

#[test]
fn invalid_batches_are_refused_up_front() {
    let seq = start(&SimStorage::new(), SyncPolicy::Always, SequencerConfig::default());
    assert!(matches!(seq.try_submit(vec![]), Err(SubmitError::Invalid(Error::EmptyRecord))));
    assert!(matches!(seq.try_submit(vec![vec![]]), Err(SubmitError::Invalid(Error::EmptyRecord))));
    let huge = vec![0u8; 1 << 20];
    assert!(matches!(
        seq.try_submit(vec![huge]),
        Err(SubmitError::Invalid(Error::RecordTooLarge { .. }))
    ));
    seq.shutdown_blocking().unwrap();
}

#[test]
fn fsync_failure_is_fatal() {
    let sim = SimStorage::new();
    let seq = start(&sim, SyncPolicy::Always, SequencerConfig::default());
    assert_eq!(seq.try_submit(vec![payload(1)]).unwrap().wait().unwrap().last, Seq(1));
    sim.set_fail_sync(true);
    let err = seq.try_submit(vec![payload(2)]).unwrap().wait().unwrap_err();
    assert!(err.is_fatal(), "{err}");
    sim.set_fail_sync(false);
    // Never retried and then acknowledged: the log refuses every later batch.
    let err = seq.try_submit(vec![payload(3)]).unwrap().wait().unwrap_err();
    assert!(matches!(err, Error::Poisoned), "{err}");
    assert_eq!(*seq.durable().borrow(), Seq(1));
    assert_eq!(seq.reader().last_seq(), Seq(1));
    assert!(seq.shutdown_blocking().is_err());
}

#[test]
fn cursor_reads_behind_then_follows_live() {
    let sim = SimStorage::new();
    let seq = start(&sim, SyncPolicy::Always, SequencerConfig::default());
    for s in 1..=300 {
        seq.try_submit(vec![payload(s)]).unwrap().wait().unwrap();
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    let producer = {
        let seq = seq.clone();
        std::thread::spawn(move || {
            for s in 301..=1000u64 {
                let batch = vec![payload(s)];
                seq.try_submit(batch).unwrap().wait().unwrap();
            }
        })
    };
    let mut cursor = seq.cursor(Seq(1));
    let mut next = 1u64;
    rt.block_on(async {
        while next <= 1000 {
            let batch = tokio::time::timeout(WAIT, cursor.next_batch(64)).await.unwrap().unwrap();
            assert!(!batch.is_empty() && batch.len() <= 64);
            for record in batch {
                assert_eq!(record.seq, Seq(next), "gap or duplicate");
                assert_eq!(record.payload, payload(next));
                next += 1;
            }
        }
    });
    producer.join().unwrap();
    assert_eq!(cursor.next_seq(), Seq(1001));
    seq.shutdown_blocking().unwrap();
    let end =
        rt.block_on(async { tokio::time::timeout(WAIT, cursor.next_batch(8)).await.unwrap() });
    assert!(matches!(end, Err(Error::Closed)));
}

#[test]
fn shutdown_drains_and_syncs() {
    let sim = SimStorage::new();
    let seq = start(&sim, SyncPolicy::Never, SequencerConfig::default());
    let tickets: Vec<_> = (1..=200u64).map(|s| seq.try_submit(vec![payload(s)]).unwrap()).collect();
    seq.shutdown_blocking().unwrap();
    for t in tickets {
        t.wait().unwrap();
    }
    assert_log(&after_power_loss(&sim).reader(), 1, 200);
}

#[test]
fn purge_through_the_sequencer_keeps_order() {
    let sim = SimStorage::new();
    let wal = open_sim(&sim, small_config(Preallocate::Recycle)).unwrap();
    let seq = Sequencer::start(wal, SequencerConfig::default()).unwrap();
    for s in 1..=400 {
        drop(seq.try_submit(vec![payload(s)]).unwrap());
    }
    seq.try_purge_before(Seq(300)).unwrap().wait().unwrap();
    let first = seq.reader().first_seq();
    assert!(first > Seq(1) && first <= Seq(300));
    let last = seq.try_submit(vec![payload(401)]).unwrap().wait().unwrap().last;
    assert_eq!(last, Seq(401));
    assert_log(&seq.reader(), first.0, 401);
    seq.shutdown_blocking().unwrap();
}

#[test]
fn truncate_through_the_sequencer_waits_for_earlier_batches() {
    let sim = SimStorage::new();
    let seq = start(&sim, SyncPolicy::Always, SequencerConfig::default());
    let tickets: Vec<_> = (1..=50u64).map(|s| seq.try_submit(vec![payload(s)]).unwrap()).collect();
    seq.try_truncate_after(Seq(20)).unwrap().wait().unwrap();
    for (i, t) in tickets.into_iter().enumerate() {
        assert_eq!(t.wait().unwrap().first, Seq(i as u64 + 1));
    }
    assert_eq!(*seq.durable().borrow(), Seq(20));
    assert_log(&seq.reader(), 1, 20);
    let range = seq.try_submit(vec![payload(21)]).unwrap().wait().unwrap();
    assert_eq!(range.first, Seq(21));
    assert_eq!(seq.cursor(Seq(0)).next_seq(), Seq(1));
    seq.shutdown_blocking().unwrap();
    let wal = after_power_loss(&sim);
    assert_log(&wal.reader(), 1, 21);
}

#[test]
fn async_shutdown_releases_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let config = mempulse_wal::WalConfig::new(dir.path()).with_segment_size_bytes(64 << 10);
    let seq =
        Sequencer::start(Wal::open(config.clone()).unwrap(), SequencerConfig::default()).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let range = seq.try_submit(vec![payload(1), payload(2)]).unwrap().await.unwrap();
        assert_eq!(range.last, Seq(2));
        tokio::time::timeout(WAIT, seq.shutdown()).await.unwrap().unwrap();
    });
    let wal = Wal::open(config).unwrap();
    assert_log(&wal.reader(), 1, 2);
}

#[test]
fn next_group_is_written_while_the_previous_sync_runs() {
    let (tx, rx) = mpsc::sync_channel(16);
    let storage = GatedStorage::new(true);
    let config = small_config(Preallocate::Fallocate).with_sync(SyncPolicy::Always);
    let wal = Wal::open_with_storage(config, Arc::new(storage.clone())).unwrap();
    let reader = wal.reader();
    *storage.started.lock().unwrap() = Some(tx);
    storage.set_closed(true);
    let seq = Sequencer::start(wal, SequencerConfig::default()).unwrap();
    // Nothing is unsynced yet, so the sequencer's start-up sync does not reach the storage.
    let first = seq.try_submit(vec![payload(1)]).unwrap();
    // Group 1 is written and its fdatasync blocks in the sync thread ...
    rx.recv_timeout(WAIT).unwrap();
    let second = seq.try_submit(vec![payload(2)]).unwrap();
    // ... while group 2 is written behind it (a reader of written records sees it).
    let deadline = std::time::Instant::now() + WAIT;
    while reader.last_seq() < Seq(2) {
        assert!(std::time::Instant::now() < deadline, "group 2 not written during the sync");
        std::thread::yield_now();
    }
    assert_eq!(*seq.durable().borrow(), Seq(0), "nothing acknowledged before the sync");
    assert_eq!(seq.reader().last_seq(), Seq(0), "durable readers see nothing yet");
    storage.set_closed(false);
    assert_eq!(first.wait().unwrap().first, Seq(1));
    assert_eq!(second.wait().unwrap().first, Seq(2));
    seq.shutdown_blocking().unwrap();
}

/// Under `Interval` a batch is acknowledged once written, but readers, cursors and the durable
/// watch see it only once a sync covers it: after the interval passes with nothing more to
/// write, or at once on `try_sync`. A power loss before that sync takes exactly what no
/// consumer saw.
#[test]
fn interval_publishes_only_what_a_sync_covered() {
    let sim = SimStorage::new();
    let seq =
        start(&sim, SyncPolicy::Interval(Duration::from_secs(3600)), SequencerConfig::default());
    let range = seq.try_submit(vec![payload(1), payload(2)]).unwrap().wait().unwrap();
    assert_eq!(range.last, Seq(2), "acknowledged once written");
    assert_eq!(*seq.durable().borrow(), Seq(0));
    assert_eq!(seq.reader().last_seq(), Seq(0), "not published before a sync");
    let lost = after_power_loss(&sim);
    assert_eq!(lost.last_seq(), Seq(0), "a power loss now takes both records");
    drop(lost);

    seq.try_sync().unwrap().wait().unwrap();
    assert_eq!(*seq.durable().borrow(), Seq(2));
    assert_log(&seq.reader(), 1, 2);
    let kept = after_power_loss(&sim);
    assert_log(&kept.reader(), 1, 2);
    drop(kept);
    seq.shutdown_blocking().unwrap();

    // A short interval publishes on its own once it passes with nothing more to write.
    let sim = SimStorage::new();
    let seq =
        start(&sim, SyncPolicy::Interval(Duration::from_millis(20)), SequencerConfig::default());
    seq.try_submit(vec![payload(1)]).unwrap().wait().unwrap();
    let mut durable = seq.durable();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        tokio::time::timeout(WAIT, durable.wait_for(|s| *s >= Seq(1))).await.unwrap().unwrap();
    });
    assert_log(&seq.reader(), 1, 1);
    seq.shutdown_blocking().unwrap();
}

/// `try_sync` is ordered after the batches submitted before it and makes them durable under
/// every policy, `Never` included.
#[test]
fn try_sync_makes_earlier_batches_durable_under_every_policy() {
    for sync in
        [SyncPolicy::Always, SyncPolicy::Never, SyncPolicy::Interval(Duration::from_secs(3600))]
    {
        let sim = SimStorage::new();
        let seq = start(&sim, sync, SequencerConfig::default());
        let tickets: Vec<_> =
            (1..=40u64).map(|s| seq.try_submit(vec![payload(s)]).unwrap()).collect();
        seq.try_sync().unwrap().wait().unwrap();
        for ticket in tickets {
            ticket.wait().unwrap();
        }
        assert_eq!(*seq.durable().borrow(), Seq(40), "{sync:?}");
        let image = after_power_loss(&sim);
        assert_log(&image.reader(), 1, 40);
        drop(image);
        seq.shutdown_blocking().unwrap();
        assert!(matches!(seq.try_sync(), Err(SubmitError::Closed)), "{sync:?}");
    }
}
