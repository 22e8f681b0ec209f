//! The live replayer: follows the durable event log in seq order (resuming from the newest
//! valid checkpoint), checkpoints it by the configured policy, and answers `GET /v1/txs/{hash}`
//! from its lifecycle index, reading the facts themselves back from the log.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Instant,
};

use anyhow::Context;
use futures_util::future::BoxFuture;
use mempulse_api::{ServiceError, ServiceResult, TxHistory};
use mempulse_primitives::{Event, RaftIndex, Seq, SequencedEvent, TxHash};
use mempulse_replay::{
    CheckpointPolicy, CheckpointStore, IndexedDigest, LifecycleLookup, ReplayConfig, Replayer,
    replay_wal, resume, scan_lifecycle,
};
use mempulse_wal::{Error as WalError, SequencerHandle, WalReader};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Records applied per step of the follower.
const FOLLOW_BATCH_RECORDS: usize = 4096;

/// Where and how often the live replayer checkpoints.
#[derive(Clone, Debug)]
pub(crate) struct HistoryOptions {
    /// Checkpoint directory.
    pub(crate) dir: PathBuf,
    /// Checkpoints kept.
    pub(crate) retain: usize,
    /// When to write one.
    pub(crate) policy: CheckpointPolicy,
    /// The replayer's bounds.
    pub(crate) replay: ReplayConfig,
}

/// The replayer shared by the follower task and the API.
#[derive(Clone, Debug)]
pub(crate) struct History {
    replayer: Arc<Mutex<Replayer>>,
    reader: WalReader,
    /// Where the follower (and a reconciliation) writes checkpoints.
    checkpoints: Arc<CheckpointStore>,
}

impl History {
    /// Restores the replayer from the newest usable checkpoint, applies the durable tail, and
    /// starts following the log. Blocking (disk reads); call from `spawn_blocking`.
    pub(crate) fn start_blocking(
        log: &SequencerHandle,
        options: &HistoryOptions,
    ) -> anyhow::Result<(Self, Follower)> {
        let started = Instant::now();
        let reader = log.reader();
        let store = CheckpointStore::open(&options.dir, options.retain)
            .with_context(|| format!("opening checkpoints in {}", options.dir.display()))?;
        let resumed =
            resume(&reader, Some(&store), options.replay, None).context("resuming replay")?;
        let mut replayer = resumed.replayer;
        let tail = replay_wal(&mut replayer, &reader, None, |_, _| Ok(()))
            .context("replaying the event log's tail")?;
        info!(
            checkpoint_seq = resumed.checkpoint.map(|c| c.seq.0),
            tail_events = tail,
            last_seq = replayer.last_seq().0,
            elapsed_ms = started.elapsed().as_millis(),
            "replay caught up"
        );
        let history =
            Self { replayer: Arc::new(Mutex::new(replayer)), reader, checkpoints: Arc::new(store) };
        let follower = Follower {
            task: tokio::runtime::Handle::current().spawn(follow(
                history.clone(),
                log.clone(),
                options.policy,
            )),
        };
        Ok((history, follower))
    }

    fn lock(&self) -> MutexGuard<'_, Replayer> {
        self.replayer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read` on the live replayer, holding its lock only for that call.
    pub(crate) fn read<R>(&self, read: impl FnOnce(&Replayer) -> R) -> R {
        read(&self.lock())
    }

    /// Runs `update` on the live replayer, holding its lock only for that call (the follower
    /// waits meanwhile).
    pub(crate) fn update<R>(&self, update: impl FnOnce(&mut Replayer) -> R) -> R {
        update(&mut self.lock())
    }

    /// The reader of the durable log the replayer follows.
    pub(crate) const fn reader(&self) -> &WalReader {
        &self.reader
    }

    /// The checkpoint directory the follower writes to.
    pub(crate) fn checkpoints(&self) -> &CheckpointStore {
        &self.checkpoints
    }

    /// Seals the replayer's open Raft index when every fact of it is known to be applied:
    /// the state machine reported `applied` (so the facts of every index up to it were written
    /// to the event log before), and the replayer has read the log through the seq written when
    /// this is called, after that. The written seq, not the published one: under an interval
    /// sync policy facts are published up to one interval after they are written, and sealing
    /// on the published seq would seal an index whose last facts are still to come. Returns the
    /// digest through the last sealed index. Without this, an index is sealed only when a fact
    /// of a later one arrives.
    pub(crate) fn seal_applied(&self, applied: RaftIndex) -> IndexedDigest {
        let written = self.reader.written_seq();
        let mut replayer = self.lock();
        if replayer.last_seq() >= written {
            replayer.seal_through(applied)
        } else {
            replayer.digest()
        }
    }

    /// The facts about `hash`, in seq order, at most `max`.
    fn lifecycle_blocking(&self, hash: &TxHash, max: usize) -> ServiceResult<Vec<SequencedEvent>> {
        let (lookup, applied) = {
            let replayer = self.lock();
            (replayer.lifecycle(hash), replayer.last_seq())
        };
        let mut events = match lookup {
            LifecycleLookup::Found(lifecycle) => {
                let mut events = Vec::with_capacity(lifecycle.facts.len().min(max));
                for fact in lifecycle.facts.iter().take(max) {
                    events.push(self.read_one(fact.seq)?);
                }
                events
            }
            LifecycleLookup::Pruned { .. } => {
                scan_lifecycle(&self.reader, hash, Seq(0), Some(applied)).map_err(internal)?
            }
            LifecycleLookup::Unknown => Vec::new(),
        };
        // Facts already durable but not yet applied by the follower.
        if let Some(next) = applied.checked_next() {
            events.extend(scan_lifecycle(&self.reader, hash, next, None).map_err(internal)?);
        }
        events.truncate(max);
        Ok(events)
    }

    fn read_one(&self, seq: Seq) -> ServiceResult<SequencedEvent> {
        let records = self.reader.scan(seq, 1).map_err(|e| match e {
            WalError::Purged { first, .. } => ServiceError::Purged { first },
            other => internal(other),
        })?;
        let record = records.first().filter(|r| r.seq == seq).ok_or_else(|| {
            ServiceError::internal(std::io::Error::other(format!("seq {seq} missing")))
        })?;
        let event = Event::from_bytes(&record.payload).map_err(internal)?;
        Ok(SequencedEvent { seq, event })
    }
}

fn internal(error: impl std::error::Error + Send + Sync + 'static) -> ServiceError {
    ServiceError::internal(error)
}

impl TxHistory for History {
    fn lifecycle(
        &self,
        hash: TxHash,
        max: usize,
    ) -> BoxFuture<'_, ServiceResult<Vec<SequencedEvent>>> {
        let history = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || history.lifecycle_blocking(&hash, max))
                .await
                .map_err(internal)?
        })
    }
}

/// The follower task; it ends when the event log closes.
#[derive(Debug)]
pub(crate) struct Follower {
    task: JoinHandle<()>,
}

impl Follower {
    /// Waits for the follower to finish (after the event log's shutdown).
    pub(crate) async fn stopped(self) {
        if let Err(error) = self.task.await {
            warn!(%error, "replay follower ended abnormally");
        }
    }
}

/// Applies every durable record in order and checkpoints by `policy`.
async fn follow(history: History, log: SequencerHandle, policy: CheckpointPolicy) {
    let from = history.lock().next_seq().unwrap_or(Seq(0));
    let mut cursor = log.cursor(from);
    let store = Arc::clone(&history.checkpoints);
    let (mut since, mut last_checkpoint) = (0_u64, Instant::now());
    loop {
        let batch = match cursor.next_batch(FOLLOW_BATCH_RECORDS).await {
            Ok(batch) => batch,
            Err(WalError::Closed) => break,
            Err(error) => {
                warn!(%error, "replay follower cannot read the event log; it stops");
                break;
            }
        };
        let applied = history.lock().apply_records(&batch);
        if let Err(error) = applied {
            warn!(%error, "replay follower refused a record; it stops (the log stays intact)");
            break;
        }
        since = since.saturating_add(batch.len() as u64);
        if policy.should_checkpoint(since, last_checkpoint.elapsed()) {
            let (history, store) = (history.clone(), Arc::clone(&store));
            let written = tokio::task::spawn_blocking(move || {
                let started = Instant::now();
                let written = store.write(&history.lock());
                super::metrics::checkpoint_written(started.elapsed(), written.as_ref().ok());
                written
            })
            .await;
            match written {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => warn!(%error, "checkpoint write failed; replay continues"),
                Err(error) => warn!(%error, "checkpoint task failed"),
            }
            (since, last_checkpoint) = (0, Instant::now());
        }
    }
}
