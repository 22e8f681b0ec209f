//! Shared fixtures: a real event log in a temporary directory, and admissions that record what
//! they are given.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use mempulse_net::{
    Admission, AdmissionError, AdmissionFuture, CheckConfig, FactWriter, Ingest, IngestConfig,
    IngestHandle, ManualClock, PoolVerdict, ThrottleConfig,
};
use mempulse_primitives::{Event, EventKind, Seq, Subpool, Tx, TxHash, UnixMillis};
use mempulse_wal::{Sequencer, SequencerConfig, SequencerHandle, SyncPolicy, Wal, WalConfig};
use tokio::sync::watch;

/// A real WAL with a real sequencer, in a temporary directory.
pub struct EventLog {
    _dir: tempfile::TempDir,
    pub sequencer: SequencerHandle,
}

impl EventLog {
    pub fn open() -> Self {
        Self::with_queue_capacity(1024)
    }

    pub fn with_queue_capacity(capacity: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig::new(dir.path().join("events"))
            .with_segment_size_bytes(4 << 20)
            .with_sync(SyncPolicy::Never);
        let wal = Wal::open(config).unwrap();
        let sequencer =
            Sequencer::start(wal, SequencerConfig::default().with_queue_capacity(capacity))
                .unwrap();
        Self { _dir: dir, sequencer }
    }

    pub fn writer(&self) -> FactWriter {
        FactWriter::new(self.sequencer.clone())
    }

    /// Stops the sequencer (everything queued is written) and returns every event, in seq order.
    pub async fn events(&self) -> Vec<Event> {
        let reader = self.sequencer.reader();
        self.sequencer.shutdown().await.unwrap();
        let records = reader.scan(Seq(1), 1_000_000).unwrap();
        records.iter().map(|r| Event::from_bytes(&r.payload).unwrap()).collect()
    }
}

/// The kinds of `events`, for assertions.
pub fn kinds(events: &[Event]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind.clone()).collect()
}

type VerdictFn = dyn Fn(&Tx) -> Result<PoolVerdict, AdmissionError> + Send + Sync;

/// An admission that records each batch when called, waits for its gate to be open, then
/// answers each transaction with `verdict` (a batch fails with the first error).
pub struct Recording {
    pub batches: Mutex<Vec<Vec<TxHash>>>,
    /// The first hash of each batch, in the order the admission futures were first polled.
    pub first_polls: Arc<Mutex<Vec<TxHash>>>,
    gate: watch::Receiver<bool>,
    verdict: Box<VerdictFn>,
    /// When set, answers with this many verdicts whatever the batch size.
    pub verdict_count: Mutex<Option<usize>>,
}

impl Recording {
    pub fn admitting() -> (Arc<Self>, watch::Sender<bool>) {
        Self::with(|_| Ok(PoolVerdict::Admitted { subpool: Subpool::Pending }))
    }

    pub fn with(
        verdict: impl Fn(&Tx) -> Result<PoolVerdict, AdmissionError> + Send + Sync + 'static,
    ) -> (Arc<Self>, watch::Sender<bool>) {
        let (open, gate) = watch::channel(true);
        let admission = Arc::new(Self {
            batches: Mutex::new(Vec::new()),
            first_polls: Arc::new(Mutex::new(Vec::new())),
            gate,
            verdict: Box::new(verdict),
            verdict_count: Mutex::new(None),
        });
        (admission, open)
    }

    /// Every transaction hash the admission was given, in call order.
    pub fn hashes(&self) -> Vec<TxHash> {
        self.batches.lock().unwrap().iter().flatten().copied().collect()
    }

    pub fn batch_sizes(&self) -> Vec<usize> {
        self.batches.lock().unwrap().iter().map(Vec::len).collect()
    }
}

impl Admission for Recording {
    fn admit(&self, txs: Vec<Tx>) -> AdmissionFuture {
        self.batches.lock().unwrap().push(txs.iter().map(|tx| tx.hash).collect());
        let answer: Result<Vec<PoolVerdict>, AdmissionError> =
            txs.iter().map(|tx| (self.verdict)(tx)).collect();
        let answer = match (answer, *self.verdict_count.lock().unwrap()) {
            (Ok(mut verdicts), Some(n)) => {
                verdicts.truncate(n);
                Ok(verdicts)
            }
            (answer, _) => answer,
        };
        let mut gate = self.gate.clone();
        let first_polls = Arc::clone(&self.first_polls);
        let first = txs.first().map(|tx| tx.hash);
        Box::pin(async move {
            first_polls.lock().unwrap().extend(first);
            let _ = gate.wait_for(|open| *open).await;
            answer
        })
    }
}

/// Small, fast settings for tests: 2 decode threads, no rate limit unless asked.
pub fn config() -> IngestConfig {
    IngestConfig {
        decode_threads: core::num::NonZeroUsize::new(2),
        batch_txs_max: 8,
        throttle: ThrottleConfig { rate_per_s: 0, ..ThrottleConfig::default() },
        ..IngestConfig::default()
    }
}

pub const T0: UnixMillis = UnixMillis(1_700_000_000_000);

pub struct Rig {
    pub log: EventLog,
    pub clock: Arc<ManualClock>,
    pub ingest: IngestHandle,
}

pub fn start(config: IngestConfig, check: CheckConfig, admission: Arc<dyn Admission>) -> Rig {
    let log = EventLog::open();
    let clock = Arc::new(ManualClock::new(T0));
    let ingest =
        Ingest::start_with_clock(config, check, admission, log.writer(), clock.clone()).unwrap();
    Rig { log, clock, ingest }
}

/// Waits (bounded) until `condition` holds; polling, never as synchronization by duration.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
