//! In-memory fakes of the service traits, for tests and benches (feature `test-utils`). They
//! are stand-ins for the node's components, not product code: no cluster, no decoding, no disk.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    sync::{Arc, Mutex, MutexGuard},
};

use bytes::Bytes;
use futures_util::{FutureExt as _, future::BoxFuture};
use mempulse_cluster::ClusterNode;
use mempulse_mempool::CommitBlock;
use mempulse_primitives::{
    Digest, Event, EventKind, Height, Lane, NodeId, Origin, RaftIndex, Seq, SequencedEvent, Source,
    Subpool, Tx, TxHash, UnixMillis,
};
use mempulse_wal::Record;
use tokio::sync::{Semaphore, watch};

use crate::{
    BlockOps, BlockOutcome, BuildRequest, ClusterInfo, ClusterView, EventLog, FenceState,
    PoolContent, PoolQuery, PoolStatus, ReorgRequest, ReplayPoint, ReplayReport, ReplayRequest,
    Services, StateRoot, StateRootLookup, StateRoots, TxHistory, TxSubmit, TxVerdict,
    service::ServiceResult,
};
use crate::{Consistency, Limit, Refusal, ServiceError, Unavailable};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An event log in memory: appends assign gapless seqs from 1, readers see everything
/// appended, waiters wake on each append.
#[derive(Debug)]
pub struct MemoryEventLog {
    records: Mutex<Vec<(Seq, Event)>>,
    first: Mutex<Seq>,
    last: watch::Sender<Seq>,
}

impl Default for MemoryEventLog {
    fn default() -> Self {
        Self {
            records: Mutex::new(Vec::new()),
            first: Mutex::new(Seq(1)),
            last: watch::channel(Seq(0)).0,
        }
    }
}

impl MemoryEventLog {
    /// An empty log.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one event and returns its seq.
    pub fn append(&self, event: Event) -> Seq {
        let mut records = lock(&self.records);
        let seq = Seq(self.last.borrow().0 + 1);
        records.push((seq, event));
        drop(records);
        self.last.send_replace(seq);
        seq
    }

    /// Appends a replicated fact from the mempool at `raft_index`.
    pub fn append_kind(&self, kind: EventKind) -> Seq {
        let raft_index = RaftIndex(self.last_seq().0 + 1);
        self.append(Event {
            observed_at: UnixMillis(1_700_000_000_000),
            source: Source::Mempool,
            origin: Origin::Replicated { raft_index },
            kind,
        })
    }

    /// Seq of the last record.
    #[must_use]
    pub fn last_seq(&self) -> Seq {
        *self.last.borrow()
    }

    /// Forgets records before `first` (as a purge would).
    pub fn purge_before(&self, first: Seq) {
        lock(&self.records).retain(|(seq, _)| *seq >= first);
        *lock(&self.first) = first;
    }

    fn read(&self, after: Seq, max: usize) -> ServiceResult<Vec<Record>> {
        let first = *lock(&self.first);
        if after != Seq(0) && after.0.saturating_add(1) < first.0 {
            return Err(ServiceError::Purged { first });
        }
        let records = lock(&self.records);
        let start = records.partition_point(|(seq, _)| *seq <= after);
        Ok(records
            .iter()
            .skip(start)
            .take(max)
            .map(|(seq, event)| Record { seq: *seq, payload: event.to_bytes() })
            .collect())
    }
}

impl EventLog for MemoryEventLog {
    fn read_after(&self, after: Seq, max: usize) -> BoxFuture<'_, ServiceResult<Vec<Record>>> {
        let result = self.read(after, max);
        async move { result }.boxed()
    }

    fn wait_after(&self, after: Seq, max: usize) -> BoxFuture<'_, ServiceResult<Vec<Record>>> {
        async move {
            let mut last = self.last.subscribe();
            if max == 0 {
                return Ok(Vec::new());
            }
            if last.wait_for(|l| *l > after).await.is_err() {
                return Err(ServiceError::Unavailable(Unavailable::ShuttingDown));
            }
            self.read(after, max)
        }
        .boxed()
    }
}

impl TxHistory for MemoryEventLog {
    fn lifecycle(
        &self,
        hash: TxHash,
        max: usize,
    ) -> BoxFuture<'_, ServiceResult<Vec<SequencedEvent>>> {
        let events = lock(&self.records)
            .iter()
            .filter(|(_, e)| e.kind.tx_hash() == Some(hash))
            .take(max)
            .map(|(seq, event)| SequencedEvent { seq: *seq, event: event.clone() })
            .collect();
        async move { Ok(events) }.boxed()
    }
}

/// A pool in memory: submissions are answered by a fixed rule, queries from a fixed list.
#[derive(Debug, Default)]
pub struct FakePool {
    txs: Mutex<Vec<(Tx, Subpool)>>,
    /// Every submission: the lane and the raw bytes.
    pub submitted: Mutex<Vec<(Lane, Bytes)>>,
    /// The client address of every submission call, in order.
    pub clients: Mutex<Vec<Option<IpAddr>>>,
    /// The consistency of every query, in order.
    pub reads: Mutex<Vec<Consistency>>,
    /// The applied index [`PoolQuery::status`] reports.
    pub applied: Mutex<Option<RaftIndex>>,
    refusal: Mutex<Option<Refusal>>,
    failure: Mutex<Option<Unavailable>>,
}

impl FakePool {
    /// A pool holding `txs`.
    #[must_use]
    pub fn with_txs(txs: Vec<(Tx, Subpool)>) -> Self {
        Self { txs: Mutex::new(txs), ..Self::default() }
    }

    /// From now on refuse every submission with `refusal` (`None`: accept).
    pub fn refuse_with(&self, refusal: Option<Refusal>) {
        *lock(&self.refusal) = refusal;
    }

    /// From now on fail every call with `failure` (`None`: serve).
    pub fn fail_with(&self, failure: Option<Unavailable>) {
        *lock(&self.failure) = failure;
    }

    fn check(&self) -> ServiceResult<()> {
        lock(&self.failure).map_or(Ok(()), |why| Err(ServiceError::Unavailable(why)))
    }

    /// Records a query at `consistency`, then answers as [`FakePool::check`].
    fn query(&self, consistency: Consistency) -> ServiceResult<()> {
        lock(&self.reads).push(consistency);
        self.check()
    }

    /// The fake hash of raw bytes: their first 32 bytes, zero-padded.
    #[must_use]
    pub fn fake_hash(raw: &[u8]) -> TxHash {
        let mut hash = [0u8; 32];
        for (dst, src) in hash.iter_mut().zip(raw) {
            *dst = *src;
        }
        TxHash(hash)
    }
}

impl TxSubmit for FakePool {
    fn submit(
        &self,
        lane: Lane,
        client: Option<IpAddr>,
        raws: Vec<Bytes>,
    ) -> BoxFuture<'_, ServiceResult<Vec<TxVerdict>>> {
        lock(&self.clients).push(client);
        let result = self.check().map(|()| {
            let refusal = *lock(&self.refusal);
            let mut submitted = lock(&self.submitted);
            raws.into_iter()
                .map(|raw| {
                    let hash = Self::fake_hash(&raw);
                    submitted.push((lane, raw));
                    match refusal {
                        Some(refusal) => TxVerdict::Refused { hash: Some(hash), refusal },
                        None => TxVerdict::Accepted { hash, subpool: Some(Subpool::Pending) },
                    }
                })
                .collect()
        });
        async move { result }.boxed()
    }
}

impl PoolQuery for FakePool {
    fn transaction(
        &self,
        hash: TxHash,
        consistency: Consistency,
    ) -> BoxFuture<'_, ServiceResult<Option<(Tx, Subpool)>>> {
        let result = self
            .query(consistency)
            .map(|()| lock(&self.txs).iter().find(|(tx, _)| tx.hash == hash).cloned());
        async move { result }.boxed()
    }

    fn status(&self, consistency: Consistency) -> BoxFuture<'_, ServiceResult<PoolStatus>> {
        let result = self.query(consistency).map(|()| {
            let txs = lock(&self.txs);
            let pending = txs.iter().filter(|(_, s)| *s == Subpool::Pending).count() as u64;
            PoolStatus {
                pending,
                queued: txs.len() as u64 - pending,
                applied: *lock(&self.applied),
            }
        });
        async move { result }.boxed()
    }

    fn content(
        &self,
        max_txs: usize,
        consistency: Consistency,
    ) -> BoxFuture<'_, ServiceResult<PoolContent>> {
        let result = self.query(consistency).map(|()| {
            let mut txs = lock(&self.txs).clone();
            txs.sort_by_key(|(tx, _)| (tx.sender, tx.nonce));
            let total = txs.len() as u64;
            txs.truncate(max_txs);
            PoolContent { txs, total }
        });
        async move { result }.boxed()
    }
}

/// Block commands in memory: commits must move the height up; every request is recorded.
#[derive(Debug, Default)]
pub struct FakeBlocks {
    height: Mutex<Height>,
    /// Every build request.
    pub builds: Mutex<Vec<BuildRequest>>,
    /// Every accepted commit.
    pub commits: Mutex<Vec<CommitBlock>>,
    /// Every reorg.
    pub reorgs: Mutex<Vec<ReorgRequest>>,
}

impl BlockOps for FakeBlocks {
    fn build(&self, request: BuildRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        lock(&self.builds).push(request);
        let height = Height(lock(&self.height).0 + 1);
        let fact = EventKind::BlockProposed {
            height,
            proposer: request.proposer,
            txs: Vec::new(),
            total_bytes: 0,
            total_gas: 0,
        };
        let block = mempulse_mempool::BuiltBlock::default();
        async move {
            Ok(BlockOutcome {
                raft_index: Some(RaftIndex(1)),
                facts: vec![fact],
                block: Some(block),
            })
        }
        .boxed()
    }

    fn commit(&self, request: CommitBlock) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        let mut height = lock(&self.height);
        let result = if request.height <= *height {
            Err(ServiceError::Conflict(mempulse_mempool::Error::HeightNotAscending {
                current: *height,
                got: request.height,
            }))
        } else {
            *height = request.height;
            let fact =
                EventKind::BlockCommitted { height: request.height, txs: request.txs.clone() };
            lock(&self.commits).push(request);
            Ok(BlockOutcome { raft_index: Some(RaftIndex(2)), facts: vec![fact], block: None })
        };
        drop(height);
        async move { result }.boxed()
    }

    fn reorg(&self, request: ReorgRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        let fact = EventKind::ReorgDetected {
            fork_height: request.fork_height,
            orphaned: request.orphaned.iter().map(|b| b.height).collect(),
        };
        *lock(&self.height) = request.fork_height;
        lock(&self.reorgs).push(request);
        async move {
            Ok(BlockOutcome { raft_index: Some(RaftIndex(3)), facts: vec![fact], block: None })
        }
        .boxed()
    }
}

/// A cluster view that tests set.
#[derive(Debug)]
pub struct FakeCluster(pub Mutex<ClusterView>);

impl FakeCluster {
    /// A one-node cluster led by node 1, caught up at index 5.
    #[must_use]
    pub fn leader() -> Self {
        Self(Mutex::new(ClusterView {
            node: NodeId(1),
            role: "leader",
            leader: Some(NodeId(1)),
            term: 2,
            last_log_index: Some(5),
            committed: Some(5),
            applied: Some(5),
            voters: BTreeSet::from([NodeId(1)]),
            members: BTreeMap::from([(
                NodeId(1),
                ClusterNode::new("127.0.0.1:7001", "127.0.0.1:8081"),
            )]),
            replication: BTreeMap::new(),
            schedule: None,
        }))
    }

    /// Changes the view.
    pub fn update(&self, f: impl FnOnce(&mut ClusterView)) {
        f(&mut lock(&self.0));
    }
}

impl ClusterInfo for FakeCluster {
    fn status(&self) -> ClusterView {
        lock(&self.0).clone()
    }
}

/// State roots and replays over a fake log of `last_seq` events where Raft index `i` is sealed
/// at seq `2 i` and every digest is the seq's low byte repeated: enough to exercise the routes'
/// parsing, limits and rendering.
#[derive(Debug)]
pub struct FakeStateRoots {
    /// Sealed digests, ascending by Raft index (the oldest kept first).
    pub roots: Mutex<Vec<StateRoot>>,
    /// Last durable seq of the fake log.
    pub last_seq: Mutex<Seq>,
    /// Seqs whose live digest differs from the replayed one.
    pub diverged: Mutex<BTreeSet<Seq>>,
    /// First seq still in the fake log (no checkpoint covers the ones before it).
    pub first_seq: Mutex<Seq>,
    /// Every replay request, in order.
    pub requests: Mutex<Vec<ReplayRequest>>,
    /// While `true`, a replay that started holds the one replay slot and waits until it turns
    /// `false`: a long replay, for tests of concurrent ones.
    pub hold: watch::Sender<bool>,
    /// One replay at a time, as the node runs them; another meanwhile is refused with
    /// [`Unavailable::Overloaded`].
    replays: Semaphore,
}

impl Default for FakeStateRoots {
    fn default() -> Self {
        let roots = (3..=10)
            .map(|i| StateRoot {
                raft_index: RaftIndex(i),
                seq: Seq(2 * i),
                digest: Self::digest_at(Seq(2 * i)),
            })
            .collect();
        Self {
            roots: Mutex::new(roots),
            last_seq: Mutex::new(Seq(100)),
            diverged: Mutex::default(),
            first_seq: Mutex::new(Seq(1)),
            requests: Mutex::default(),
            hold: watch::channel(false).0,
            replays: Semaphore::new(1),
        }
    }
}

impl FakeStateRoots {
    /// Replays running now (0 or 1).
    #[must_use]
    pub fn replays_running(&self) -> usize {
        1 - self.replays.available_permits().min(1)
    }

    /// The fake digest after `seq`.
    #[must_use]
    pub fn digest_at(seq: Seq) -> Digest {
        Digest([seq.get().to_le_bytes()[0]; 32])
    }

    fn lookup(&self, index: Option<RaftIndex>) -> StateRootLookup {
        let roots = lock(&self.roots);
        let (Some(first), Some(latest)) = (roots.first(), roots.last()) else {
            let genesis =
                StateRoot { raft_index: RaftIndex(0), seq: Seq(0), digest: Digest([0; 32]) };
            return StateRootLookup::Found(genesis);
        };
        match index {
            None => StateRootLookup::Found(*latest),
            Some(i) if i > latest.raft_index => StateRootLookup::NotSealed { latest: *latest },
            Some(i) if i < first.raft_index => {
                StateRootLookup::NotRetained { oldest: first.raft_index }
            }
            Some(i) => {
                let pos = roots.partition_point(|r| r.raft_index <= i);
                StateRootLookup::Found(roots[pos - 1])
            }
        }
    }

    fn point(&self, seq: Seq) -> ReplayPoint {
        let digest = Self::digest_at(seq);
        let live = if lock(&self.diverged).contains(&seq) { Digest([0xee; 32]) } else { digest };
        ReplayPoint {
            seq,
            events: seq.get(),
            raft_index: RaftIndex(seq.get() / 2),
            digest,
            live: Some(live),
        }
    }

    fn run(&self, request: ReplayRequest) -> ServiceResult<ReplayReport> {
        lock(&self.requests).push(request);
        let last = *lock(&self.last_seq);
        if request.from > last {
            return Err(ServiceError::BeyondLog { requested: request.from, last });
        }
        let first = *lock(&self.first_seq);
        if first > Seq(1) {
            return Err(ServiceError::Purged { first });
        }
        let to = request.to.map_or(last, |to| to.min(last));
        let applied = to.get();
        if applied > request.events_max {
            return Err(ServiceError::LimitExceeded {
                limit: Limit::ReplayEvents,
                requested: applied,
                max: request.events_max,
            });
        }
        let every = request.every.max(1);
        let points = to.get() / every - (request.from.get() - 1) / every;
        if points > request.points_max {
            return Err(ServiceError::LimitExceeded {
                limit: Limit::ReplayPoints,
                requested: points,
                max: request.points_max,
            });
        }
        let points = (request.from.get()..=to.get())
            .filter(|s| s % every == 0)
            .map(|s| self.point(Seq(s)))
            .collect();
        Ok(ReplayReport {
            from: request.from,
            to,
            checkpoint: None,
            applied,
            points,
            end: self.point(to),
        })
    }
}

impl StateRoots for FakeStateRoots {
    fn state_root(
        &self,
        index: Option<RaftIndex>,
    ) -> BoxFuture<'_, ServiceResult<StateRootLookup>> {
        let lookup = self.lookup(index);
        async move { Ok(lookup) }.boxed()
    }

    fn replay(&self, request: ReplayRequest) -> BoxFuture<'_, ServiceResult<ReplayReport>> {
        async move {
            let Ok(_slot) = self.replays.try_acquire() else {
                return Err(ServiceError::Unavailable(Unavailable::Overloaded));
            };
            let mut hold = self.hold.subscribe();
            // The sender lives in `self`, so the wait ends only when the hold is released.
            let _released = hold.wait_for(|held| !*held).await;
            self.run(request)
        }
        .boxed()
    }
}

/// Every fake, wired as [`Services`].
#[derive(Debug)]
pub struct TestNode {
    /// The event log (also the lifecycle index).
    pub log: Arc<MemoryEventLog>,
    /// The pool (submissions and queries).
    pub pool: Arc<FakePool>,
    /// Block commands.
    pub blocks: Arc<FakeBlocks>,
    /// Cluster view.
    pub cluster: Arc<FakeCluster>,
    /// State roots and replays.
    pub state: Arc<FakeStateRoots>,
    /// The fence switch.
    pub fence: watch::Sender<FenceState>,
}

impl Default for TestNode {
    fn default() -> Self {
        Self::new(FakePool::default())
    }
}

impl TestNode {
    /// Fakes around `pool`, serving, with a one-node cluster.
    #[must_use]
    pub fn new(pool: FakePool) -> Self {
        Self {
            log: Arc::new(MemoryEventLog::new()),
            pool: Arc::new(pool),
            blocks: Arc::new(FakeBlocks::default()),
            cluster: Arc::new(FakeCluster::leader()),
            state: Arc::new(FakeStateRoots::default()),
            fence: watch::channel(FenceState::Serving).0,
        }
    }

    /// The services for [`crate::router`].
    #[must_use]
    pub fn services(&self) -> Services {
        Services {
            txs: self.pool.clone(),
            pool: self.pool.clone(),
            history: self.log.clone(),
            events: self.log.clone(),
            blocks: self.blocks.clone(),
            cluster: self.cluster.clone(),
            state: self.state.clone(),
            fence: self.fence.subscribe(),
            metrics: Arc::new(|| {
                "# TYPE mempulse_test_total counter\nmempulse_test_total 1\n".to_owned()
            }),
        }
    }
}
