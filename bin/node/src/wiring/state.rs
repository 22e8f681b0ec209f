//! The API's views of replicated state: state roots from the live replayer, bounded offline
//! replays of this node's own log compared with them, and the proposer schedule at the
//! current height in the cluster view. Glue only: `mempulse-replay` and `mempulse-schedule`
//! do the work.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use futures_util::future::BoxFuture;
use mempulse_api::{
    ClusterInfo, ClusterView, Limit, ReplayPoint, ReplayReport, ReplayRequest, ScheduleView,
    ServiceError, ServiceResult, StateRoot, StateRootLookup, StateRoots, Unavailable,
};
use mempulse_cluster::RaftNode;
use mempulse_primitives::{Height, RaftIndex, Seq, ValidatorId};
use mempulse_replay::{
    CheckpointStore, IndexedDigest, ReplayConfig, Replayer, Resumed, replay_wal, resume,
};
use mempulse_schedule::Schedule;
use mempulse_wal::WalReader;
use tokio::{sync::Semaphore, task::JoinHandle};
use tracing::warn;

use super::{History, NodeCluster};

/// Offline replays running at once; another one is refused with 503 while they run.
const REPLAYS_CONCURRENT_MAX: usize = 1;
/// How often the schedule view follows the pool's height.
const SCHEDULE_REFRESH_INTERVAL: Duration = Duration::from_millis(500);

/// The API's cluster view (with the proposer schedule when `schedule` names a validators file
/// and this node's validator) and state roots over the live replayer, whose checkpoints are in
/// `checkpoints`. The schedule view follows the pool's height in a task that ends with the
/// member.
pub(crate) async fn state_views(
    node: &Arc<RaftNode>,
    history: &History,
    checkpoints: PathBuf,
    schedule: Option<(Schedule, u64)>,
) -> (Arc<dyn ClusterInfo>, Arc<dyn StateRoots>) {
    let schedule = schedule.map(|(genesis, id)| NodeSchedule::new(genesis, ValidatorId(id)));
    let (cluster, _detached) = ScheduledCluster::start(node, schedule).await;
    let state = NodeState::new(history.clone(), checkpoints, ReplayConfig::default());
    (Arc::new(cluster), Arc::new(state))
}

/// [`StateRoots`] over the live replayer and the event log.
#[derive(Clone, Debug)]
pub(crate) struct NodeState {
    history: History,
    checkpoints: PathBuf,
    config: ReplayConfig,
    replays: Arc<Semaphore>,
}

impl NodeState {
    /// Digests from `history`; offline replays start from the checkpoints in `checkpoints`
    /// (opened read-only) with the live replayer's `config`.
    pub(crate) fn new(history: History, checkpoints: PathBuf, config: ReplayConfig) -> Self {
        Self {
            history,
            checkpoints,
            config,
            replays: Arc::new(Semaphore::new(REPLAYS_CONCURRENT_MAX)),
        }
    }

    fn lookup(&self, index: Option<RaftIndex>) -> StateRootLookup {
        self.history.read(|live| {
            let latest = root(live.digest());
            let Some(index) = index else { return StateRootLookup::Found(latest) };
            match live.digest_at(index) {
                Some(found) => StateRootLookup::Found(root(found)),
                None if index > latest.raft_index => StateRootLookup::NotSealed { latest },
                None => StateRootLookup::NotRetained {
                    oldest: live.index_digests().next().map_or(latest.raft_index, |d| d.raft_index),
                },
            }
        })
    }
}

const fn root(d: IndexedDigest) -> StateRoot {
    StateRoot { raft_index: d.raft_index, seq: d.seq, digest: d.digest }
}

impl StateRoots for NodeState {
    fn state_root(
        &self,
        index: Option<RaftIndex>,
    ) -> BoxFuture<'_, ServiceResult<StateRootLookup>> {
        let state = self.clone();
        Box::pin(async move {
            // The follower holds the replayer's lock while it applies a batch.
            tokio::task::spawn_blocking(move || state.lookup(index))
                .await
                .map_err(ServiceError::internal)
        })
    }

    fn replay(&self, request: ReplayRequest) -> BoxFuture<'_, ServiceResult<ReplayReport>> {
        let state = self.clone();
        Box::pin(async move {
            let permit = Arc::clone(&state.replays)
                .try_acquire_owned()
                .map_err(|_| ServiceError::Unavailable(Unavailable::Overloaded))?;
            // The permit goes with the work: a request that times out does not free it before
            // the replay it started has ended.
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let source = ReplaySource {
                    reader: state.history.reader(),
                    checkpoints: &state.checkpoints,
                    config: state.config,
                };
                let mut report = source.replay(request)?;
                state.history.read(|live| compare(live, &mut report));
                Ok(report)
            })
            .await
            .map_err(ServiceError::internal)?
        })
    }
}

/// Where an offline replay reads from: the durable log and the checkpoint directory, both
/// read-only.
struct ReplaySource<'a> {
    reader: &'a WalReader,
    checkpoints: &'a Path,
    config: ReplayConfig,
}

impl ReplaySource<'_> {
    /// Replays from the newest checkpoint before `request.from` (or the start of the log)
    /// through `request.to`, within the request's limits. Blocking.
    fn replay(&self, request: ReplayRequest) -> ServiceResult<ReplayReport> {
        let (first, last) = (self.reader.first_seq(), self.reader.last_seq());
        if request.from > last {
            return Err(ServiceError::BeyondLog { requested: request.from, last });
        }
        let to = request.to.map_or(last, |to| to.min(last));
        let every = request.every.max(1);
        let points = to.get() / every - (request.from.get() - 1) / every;
        if points > request.points_max {
            return Err(limit(Limit::ReplayPoints, points, request.points_max));
        }
        let config = ReplayConfig { digest_every_events: every, ..self.config };
        // No directory yet: no checkpoint was written, the replay starts from the log's start.
        let store =
            self.checkpoints.is_dir().then(|| CheckpointStore::open_read_only(self.checkpoints));
        let before = Seq(request.from.get() - 1);
        let Resumed { mut replayer, checkpoint } =
            resume(self.reader, store.as_ref(), config, Some(before)).map_err(replay_error)?;
        let start = replayer.next_seq().unwrap_or(first);
        if checkpoint.is_none() && first > Seq(1) {
            // The events before the first one kept are gone, and no checkpoint covers them.
            return Err(ServiceError::Purged { first });
        }
        let events = to.get().saturating_sub(start.get()).saturating_add(1);
        if events > request.events_max {
            return Err(limit(Limit::ReplayEvents, events, request.events_max));
        }
        let mut found = Vec::new();
        let applied = replay_wal(&mut replayer, self.reader, Some(to), |_, p| {
            if p.seq >= request.from {
                found.push(ReplayPoint {
                    seq: p.seq,
                    events: p.events,
                    raft_index: p.raft_index,
                    digest: p.digest,
                    live: None,
                });
            }
            Ok(())
        })
        .map_err(replay_error)?;
        let sealed = replayer.digest();
        let end = ReplayPoint {
            seq: replayer.last_seq(),
            events: replayer.events(),
            raft_index: sealed.raft_index,
            digest: sealed.digest,
            live: None,
        };
        Ok(ReplayReport {
            from: request.from,
            to: replayer.last_seq(),
            checkpoint: checkpoint.map(|c| c.seq),
            applied,
            points: found,
            end,
        })
    }
}

/// Fills in the live replayer's digest at each point's Raft index, where it holds exactly that
/// index (an older one has left its window; a newer one is not sealed there yet). Through
/// index 0 (no replicated fact yet) every replayer holds the empty state's digest.
fn compare(live: &Replayer, report: &mut ReplayReport) {
    let genesis = Replayer::new(*live.config()).digest().digest;
    for point in report.points.iter_mut().chain([&mut report.end]) {
        point.live = if point.raft_index == RaftIndex(0) {
            Some(genesis)
        } else {
            live.digest_at(point.raft_index)
                .filter(|d| d.raft_index == point.raft_index)
                .map(|d| d.digest)
        };
    }
}

const fn limit(limit: Limit, requested: u64, max: u64) -> ServiceError {
    ServiceError::LimitExceeded { limit, requested, max }
}

fn replay_error(error: mempulse_replay::Error) -> ServiceError {
    match error {
        mempulse_replay::Error::Purged { first, .. } => ServiceError::Purged { first },
        other => ServiceError::internal(other),
    }
}

/// The proposer schedule of the validators file, followed at the pool's height.
#[derive(Debug)]
pub(crate) struct NodeSchedule {
    /// The schedule as the file describes it (from the initial height).
    genesis: Schedule,
    /// This node's cluster's validator.
    validator: ValidatorId,
}

impl NodeSchedule {
    pub(crate) const fn new(genesis: Schedule, validator: ValidatorId) -> Self {
        Self { genesis, validator }
    }
}

/// The cluster view with the proposer schedule at the current height, when configured.
#[derive(Clone, Debug)]
pub(crate) struct ScheduledCluster {
    cluster: NodeCluster,
    view: Arc<Mutex<Option<ScheduleView>>>,
}

impl ScheduledCluster {
    /// The cluster view of `node`, with `schedule`'s view at the pool's height refreshed in the
    /// background (computed once before this returns). Returns the refresher's task, which
    /// ends with the member.
    pub(crate) async fn start(
        node: &Arc<RaftNode>,
        schedule: Option<NodeSchedule>,
    ) -> (Self, Option<JoinHandle<()>>) {
        let cluster = NodeCluster::new(Arc::clone(node));
        let view = Arc::new(Mutex::new(None));
        let Some(schedule) = schedule else { return (Self { cluster, view }, None) };
        let mut follower = ScheduleFollower {
            node: Arc::downgrade(node),
            schedule: Arc::new(Mutex::new(schedule.genesis.clone())),
            source: Arc::new(schedule),
            view: Arc::clone(&view),
        };
        follower.refresh().await;
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(SCHEDULE_REFRESH_INTERVAL);
            loop {
                tick.tick().await;
                if !follower.refresh().await {
                    return;
                }
            }
        });
        (Self { cluster, view }, Some(task))
    }
}

impl ClusterInfo for ScheduledCluster {
    fn status(&self) -> ClusterView {
        let mut view = self.cluster.status();
        view.schedule = self.view.lock().unwrap_or_else(PoisonError::into_inner).clone();
        view
    }
}

/// Moves a schedule's base along with the pool's height, so each refresh costs a few
/// increments rather than one per height since the chain's start.
#[derive(Debug)]
struct ScheduleFollower {
    node: Weak<RaftNode>,
    source: Arc<NodeSchedule>,
    schedule: Arc<Mutex<Schedule>>,
    view: Arc<Mutex<Option<ScheduleView>>>,
}

impl ScheduleFollower {
    /// Recomputes the view at the pool's height; `false` once the member is gone.
    async fn refresh(&mut self) -> bool {
        let Some(node) = self.node.upgrade() else { return false };
        let committed = pool_height(&node);
        drop(node);
        let (source, schedule) = (Arc::clone(&self.source), Arc::clone(&self.schedule));
        let computed =
            tokio::task::spawn_blocking(move || view_at(&source, &schedule, committed)).await;
        let view = match computed {
            Ok(Ok(view)) => Some(view),
            Ok(Err(error)) => {
                warn!(%error, height = %committed, "no proposer schedule at the pool's height");
                None
            }
            Err(error) => {
                warn!(%error, "schedule task failed");
                None
            }
        };
        *self.view.lock().unwrap_or_else(PoisonError::into_inner) = view;
        true
    }
}

/// The height of the last block the member's pool committed (read locally).
pub(crate) fn pool_height(node: &RaftNode) -> Height {
    node.state().read(|view| view.mempool.height())
}

/// The height being decided after `committed`: the next one, or the chain's initial height
/// before any block.
pub(crate) fn open_height(genesis: &Schedule, committed: Height) -> Height {
    committed.checked_next().unwrap_or(committed).max(genesis.base_height())
}

/// Moves `schedule`'s base to `height`, so queries near it cost a few increments.
pub(crate) fn follow(
    genesis: &Schedule,
    schedule: &mut Schedule,
    height: Height,
) -> mempulse_schedule::Result<()> {
    if height < schedule.base_height() {
        // A reorg moved the height below the base: start over from the file's schedule.
        *schedule = genesis.clone();
    }
    if height > schedule.base_height() {
        schedule.advance_base(height)?;
    }
    Ok(())
}

/// The view at the height after `committed` (the chain's initial height before any block).
fn view_at(
    source: &NodeSchedule,
    schedule: &Mutex<Schedule>,
    committed: Height,
) -> mempulse_schedule::Result<ScheduleView> {
    let height = open_height(&source.genesis, committed);
    let mut schedule = schedule.lock().unwrap_or_else(PoisonError::into_inner);
    follow(&source.genesis, &mut schedule, height)?;
    let tags = schedule.tags_at(height)?;
    Ok(ScheduleView {
        height,
        proposer: tags.proposer,
        validator: source.validator,
        tags: tags.tags_of(source.validator).names().collect(),
    })
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::{
        Event, EventKind, Origin, RaftIndex, SequencedEvent, Source, UnixMillis,
    };
    use mempulse_schedule::ValidatorsConfig;
    use mempulse_wal::{Wal, WalConfig};

    use super::*;

    /// A log of `n` replicated facts, Raft index `i` on seqs `2i - 1` and `2i`.
    fn log(dir: &Path, n: u64) -> WalReader {
        let mut wal = Wal::open(WalConfig::new(dir).with_segment_size_bytes(1 << 20)).unwrap();
        let events: Vec<Vec<u8>> = (1..=n)
            .map(|seq| {
                let event = Event {
                    observed_at: UnixMillis(0),
                    source: Source::Mempool,
                    origin: Origin::Replicated { raft_index: RaftIndex(seq.div_ceil(2)) },
                    kind: EventKind::BlockCommitted { height: Height(seq), txs: Vec::new() },
                };
                event.to_bytes()
            })
            .collect();
        wal.append(&events).unwrap();
        wal.sync().unwrap();
        wal.reader()
    }

    fn live(reader: &WalReader, config: ReplayConfig) -> Replayer {
        let mut replayer = Replayer::new(config);
        replay_wal(&mut replayer, reader, None, |_, _| Ok(())).unwrap();
        replayer
    }

    fn request(from: u64, to: Option<u64>, every: u64) -> ReplayRequest {
        ReplayRequest { from: Seq(from), to: to.map(Seq), every, events_max: 1000, points_max: 100 }
    }

    #[test]
    fn an_offline_replay_matches_the_live_digests_point_by_point() {
        let dir = tempfile::tempdir().unwrap();
        let reader = log(&dir.path().join("wal"), 40);
        let config = ReplayConfig::default();
        let source = ReplaySource { reader: &reader, checkpoints: &dir.path().join("cp"), config };
        let mut report = source.replay(request(5, Some(30), 4)).unwrap();
        let seqs: Vec<u64> = report.points.iter().map(|p| p.seq.get()).collect();
        assert_eq!(seqs, [8, 12, 16, 20, 24, 28]);
        assert_eq!((report.to, report.applied, report.checkpoint), (Seq(30), 30, None));
        assert_eq!(report.end.raft_index, RaftIndex(14), "index 15 is still open at seq 30");
        compare(&live(&reader, config), &mut report);
        for point in report.points.iter().chain([&report.end]) {
            assert_eq!(point.live, Some(point.digest), "seq {}", point.seq);
        }
        // A replayer that saw a different history disagrees from the first differing index.
        let mut other = Replayer::new(config);
        for (seq, index) in (1..=40).zip(1_u64..) {
            let event = Event {
                observed_at: UnixMillis(0),
                source: Source::Mempool,
                origin: Origin::Replicated { raft_index: RaftIndex(index) },
                kind: EventKind::BlockCommitted { height: Height(seq), txs: Vec::new() },
            };
            other.apply(&SequencedEvent { seq: Seq(seq), event }).unwrap();
        }
        compare(&other, &mut report);
        assert!(report.points.iter().any(|p| p.live.is_some_and(|d| d != p.digest)));
    }

    #[test]
    fn replays_start_from_a_checkpoint_and_respect_their_limits() {
        let dir = tempfile::tempdir().unwrap();
        let reader = log(&dir.path().join("wal"), 40);
        let config = ReplayConfig::default();
        let checkpoints = dir.path().join("cp");
        let store = CheckpointStore::open(&checkpoints, 3).unwrap();
        let mut partial = Replayer::new(config);
        replay_wal(&mut partial, &reader, Some(Seq(20)), |_, _| Ok(())).unwrap();
        store.write(&partial).unwrap();
        let source = ReplaySource { reader: &reader, checkpoints: &checkpoints, config };
        let report = source.replay(request(25, None, 5)).unwrap();
        assert_eq!((report.checkpoint, report.applied, report.to), (Some(Seq(20)), 20, Seq(40)));
        assert_eq!(report.points.first().map(|p| p.seq), Some(Seq(25)));
        let genesis = source.replay(request(1, None, 5)).unwrap();
        assert_eq!(genesis.points.last(), report.points.last(), "same digests either way");

        let tight = ReplayRequest { events_max: 19, ..request(25, None, 5) };
        assert!(matches!(
            source.replay(tight),
            Err(ServiceError::LimitExceeded { limit: Limit::ReplayEvents, requested: 20, .. })
        ));
        let dense = ReplayRequest { points_max: 3, ..request(1, Some(20), 5) };
        assert!(matches!(
            source.replay(dense),
            Err(ServiceError::LimitExceeded { limit: Limit::ReplayPoints, requested: 4, .. })
        ));
        assert!(matches!(
            source.replay(request(41, None, 5)),
            Err(ServiceError::BeyondLog { requested: Seq(41), last: Seq(40) })
        ));
    }

    #[test]
    fn the_schedule_view_follows_the_height_and_restarts_after_a_reorg() {
        let file = r#"
initial-height = 1
[[validators]]
id = 1
address = "0x00000000000000000000000000000000000000a1"
power = 1
[[validators]]
id = 2
address = "0x00000000000000000000000000000000000000a2"
power = 3
"#;
        let genesis = ValidatorsConfig::from_toml_str(file).unwrap().to_schedule().unwrap();
        let source = NodeSchedule::new(genesis.clone(), ValidatorId(1));
        let schedule = Mutex::new(genesis.clone());
        for committed in [0, 1, 5, 2, 40, 3] {
            let view = view_at(&source, &schedule, Height(committed)).unwrap();
            let height = Height(committed + 1);
            let expected = genesis.tags_at(height).unwrap();
            assert_eq!(view.height, height);
            assert_eq!(view.proposer, expected.proposer, "height {height}");
            let tags: Vec<&str> = expected.tags_of(ValidatorId(1)).names().collect();
            assert_eq!(view.tags, tags, "height {height}");
        }
    }
}
