//! Reconciliation of a self-fenced replica (design rule 6, `docs/design/divergence.md`): when
//! its state machine diverged too, reinstall a healthy peer's mempool
//! (`AdminRequest::MempoolSnapshot`, `MempoolReinstaller`); then fetch the peer's replayer
//! checkpoint over the Raft transport (`AdminRequest::Checkpoint`, in chunks), install its
//! replicated state over this node's live replayer (`Replayer::rebase`), write a local
//! checkpoint of the result, and verify the new root against the peer before the fence is
//! lifted. Also the serving side: checkpoints and mempool exports taken on demand for a fenced
//! peer, and this node's mempool root (`AdminRequest::MempoolRoot`).

use std::{
    future::Future,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use mempulse_cluster::{
    AdminReply, AdminRequest, CHECKPOINT_CHUNK_BYTES_MAX, CheckpointChunk, ClusterNode,
    MempoolExport, MempoolRootReply, PeerClient, RaftNode, ReinstallError, Reinstalled,
    StateHandle,
};
use mempulse_primitives::{Digest, NodeId, RaftIndex, Seq};
use mempulse_replay::{
    CheckpointDefect, IndexedDigest, Rebased, checkpoint_bytes, checkpoint_from_bytes,
};
use tracing::{error, info, warn};

use super::History;

/// Largest checkpoint a fenced node accepts from a peer.
const CHECKPOINT_BYTES_MAX: u64 = 256 << 20;

/// Bound on one checkpoint chunk request (the first one takes the checkpoint).
const CHECKPOINT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Bound on one mempool-root request.
const MEMPOOL_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

/// Tries to observe this node and the peer at the same applied index.
const MEMPOOL_COMPARE_ATTEMPTS: u32 = 10;

/// Pause between two of those tries.
const MEMPOOL_COMPARE_PAUSE: Duration = Duration::from_millis(50);

/// Tries of the serving side to find its replayer complete through its open index.
const TAKE_ATTEMPTS_MAX: u32 = 50;

/// Pause between two of those tries (on a blocking thread).
const TAKE_PAUSE: Duration = Duration::from_millis(10);

/// How long a mempool reinstall waits for this node to apply the peer's index.
const REINSTALL_APPLIED_WAIT: Duration = Duration::from_secs(5);

/// Bound on the snapshot of the reinstalled state (so a restart starts from it).
const REINSTALL_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);

/// Checkpoints asked for until one reaches the floor (the peer's replayer catching up).
const FLOOR_FETCH_ATTEMPTS: u32 = 10;

/// Pause between two of those requests.
const FLOOR_FETCH_PAUSE: Duration = Duration::from_millis(100);

/// Why a reconciliation attempt failed (the node stays fenced; most are retried).
#[derive(Debug)]
pub(crate) enum Failure {
    /// The peer did not answer, or answered something else (an older build included).
    PeerUnreachable,
    /// The peer could not take a checkpoint now, or dropped the one being fetched.
    CheckpointUnavailable,
    /// The checkpoint announced is larger than [`CHECKPOINT_BYTES_MAX`].
    TooLarge(u64),
    /// The bytes received are not a trustworthy checkpoint, or not the one announced.
    Corrupt(Option<CheckpointDefect>),
    /// The peer's state ends before the first divergent index: it would not repair it.
    BeforeDivergence { installed: RaftIndex, first: RaftIndex },
    /// The mempools still differ at the same applied index after this node reinstalled the
    /// peer's.
    StateMachineDiverged { applied: RaftIndex, ours: Digest, theirs: Digest },
    /// The peer had no mempool export to send now, or dropped the one being fetched.
    MempoolUnavailable,
    /// The peer's mempool could not be installed here.
    Reinstall(ReinstallError),
    /// The replayer refused the peer's state (typically: it has not sealed that index yet).
    Rebase(mempulse_replay::Error),
    /// The local checkpoint of the repaired state could not be written.
    CheckpointWrite(mempulse_replay::Error),
    /// After the repair this node's root still differs from the peer's (or could not be
    /// compared).
    NotVerified,
}

impl Failure {
    /// Stable name for logs.
    pub(crate) const fn as_str(&self) -> &'static str {
        match self {
            Self::PeerUnreachable => "peer_unreachable",
            Self::CheckpointUnavailable => "checkpoint_unavailable",
            Self::TooLarge(_) => "too_large",
            Self::Corrupt(_) => "corrupt",
            Self::BeforeDivergence { .. } => "before_divergence",
            Self::StateMachineDiverged { .. } => "state_machine_diverged",
            Self::MempoolUnavailable => "mempool_unavailable",
            Self::Reinstall(_) => "mempool_reinstall_refused",
            Self::Rebase(_) => "rebase_refused",
            Self::CheckpointWrite(_) => "checkpoint_write",
            Self::NotVerified => "not_verified",
        }
    }

    /// Whether another attempt may succeed (bytes that do not hash to what the peer
    /// announced, or do not restore, will not get better).
    pub(crate) const fn is_retryable(&self) -> bool {
        !matches!(
            self,
            Self::Reinstall(ReinstallError::DigestMismatch { .. } | ReinstallError::Corrupt(_))
        )
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PeerUnreachable => f.write_str("the peer did not answer"),
            Self::CheckpointUnavailable => f.write_str("the peer has no checkpoint to send now"),
            Self::TooLarge(bytes) => write!(f, "the peer's checkpoint has {bytes} bytes"),
            Self::Corrupt(Some(defect)) => write!(f, "the checkpoint received is {defect}"),
            Self::Corrupt(None) => f.write_str("the chunks received do not form one checkpoint"),
            Self::BeforeDivergence { installed, first } => {
                write!(f, "the peer's state ends at {installed}, before the divergence at {first}")
            }
            Self::StateMachineDiverged { applied, ours, theirs } => write!(
                f,
                "mempools still differ at applied index {applied} after the reinstall: {ours} \
                 here, {theirs} there"
            ),
            Self::MempoolUnavailable => f.write_str("the peer has no mempool export to send now"),
            Self::Reinstall(error) => write!(f, "{error}"),
            Self::Rebase(error) | Self::CheckpointWrite(error) => {
                write!(f, "{error}")?;
                let mut source = std::error::Error::source(error);
                while let Some(cause) = source {
                    write!(f, ": {cause}")?;
                    source = cause.source();
                }
                Ok(())
            }
            Self::NotVerified => f.write_str("the new root does not match the peer's"),
        }
    }
}

/// The peer that a fenced node reconciles with.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) id: NodeId,
    pub(crate) addr: ClusterNode,
}

/// One reconciliation attempt against `peer`: returns the installed state's digest (the peer's
/// through the index installed). The caller verifies the new root and lifts the fence.
///
/// `floor` is the lowest index the peer's checkpoint must reach: the first divergent index,
/// raised to the index a mempool reinstall brought this node to (the facts this node derived
/// up to there came from the diverged mempool, so the peer's must replace them). It is kept
/// across attempts.
pub(crate) async fn repair(
    node: &RaftNode,
    client: &PeerClient,
    history: &History,
    peer: &Peer,
    floor: &mut Option<RaftIndex>,
) -> Result<Rebased, Failure> {
    if let Some((applied, ours, theirs)) = mempools_differ(node, client, peer).await? {
        error!(
            peer = peer.id.0,
            applied = applied.get(),
            %ours,
            %theirs,
            "the state machine diverged: reinstalling the mempool from a peer"
        );
        let reinstalled = reinstall_mempool(node, client, peer).await?;
        *floor = (*floor).max(Some(reinstalled.through));
        if let Some((applied, ours, theirs)) = mempools_differ(node, client, peer).await? {
            return Err(Failure::StateMachineDiverged { applied, ours, theirs });
        }
        // A restart then starts from the repaired state, not from an older snapshot that
        // may hold the diverged one.
        match node.snapshot_now(REINSTALL_SNAPSHOT_TIMEOUT).await {
            Some(index) => info!(snapshot_index = index, "snapshot of the reinstalled mempool"),
            None => warn!("no snapshot of the reinstalled mempool yet; openraft takes one later"),
        }
    }
    // This node's own open index, sealed when complete, so the peer's index can be installed
    // as soon as this node has applied it.
    history.seal_applied(applied_index(node));
    let (announced, bytes) = fetch_checkpoint_through(client, history, node, peer, *floor).await?;
    if let Some(floor) = *floor
        && announced.raft_index < floor
    {
        return Err(Failure::BeforeDivergence { installed: announced.raft_index, first: floor });
    }
    let history = history.clone();
    tokio::task::spawn_blocking(move || install(&history, &announced, &bytes))
        .await
        .map_err(|_| Failure::NotVerified)?
}

/// Fetches the peer's mempool export and installs it over this node's state machine.
async fn reinstall_mempool(
    node: &RaftNode,
    client: &PeerClient,
    peer: &Peer,
) -> Result<Reinstalled, Failure> {
    let ask = |at, offset| ask_mempool_chunk(client, peer, at, offset);
    let (announced, bytes) = assemble(ask).await?;
    let export = MempoolExport { applied: announced.raft_index, digest: announced.digest, bytes };
    let reinstaller = node.mempool_reinstaller();
    let done =
        tokio::task::spawn_blocking(move || reinstaller.reinstall(&export, REINSTALL_APPLIED_WAIT))
            .await
            .map_err(|_| Failure::NotVerified)?
            .map_err(Failure::Reinstall)?;
    info!(
        peer = peer.id.0,
        from_index = done.from.get(),
        through_index = done.through.get(),
        reapplied = done.reapplied,
        digest = %done.digest,
        "mempool reinstalled from a peer"
    );
    Ok(done)
}

/// Fetches a checkpoint that reaches `floor`, asking again (a few times, briefly apart) while
/// the peer's replayer has not sealed that far yet.
async fn fetch_checkpoint_through(
    client: &PeerClient,
    history: &History,
    node: &RaftNode,
    peer: &Peer,
    floor: Option<RaftIndex>,
) -> Result<(IndexedDigest, Vec<u8>), Failure> {
    let mut attempt = 1;
    loop {
        let fetched = fetch_checkpoint(client, peer).await?;
        if floor.is_none_or(|floor| fetched.0.raft_index >= floor)
            || attempt >= FLOOR_FETCH_ATTEMPTS
        {
            return Ok(fetched);
        }
        attempt += 1;
        tokio::time::sleep(FLOOR_FETCH_PAUSE).await;
        history.seal_applied(applied_index(node));
    }
}

/// Decodes the checkpoint, installs it over the live replayer and writes a local checkpoint
/// of the result (so a restart resumes from the repaired state instead of replaying the bad
/// fact again).
fn install(history: &History, announced: &IndexedDigest, bytes: &[u8]) -> Result<Rebased, Failure> {
    let config = history.read(|live| *live.config());
    let loaded = checkpoint_from_bytes(bytes, config).map_err(|d| Failure::Corrupt(Some(d)))?;
    let sealed = loaded.meta.sealed;
    if (sealed.raft_index, sealed.digest) != (announced.raft_index, announced.digest) {
        return Err(Failure::Corrupt(None));
    }
    let reader = history.reader().clone();
    let rebased = history.update(|live| live.rebase(loaded.replayer, &reader));
    let rebased = rebased.map_err(Failure::Rebase)?;
    let written = history.read(|live| history.checkpoints().write(live));
    written.map_err(Failure::CheckpointWrite)?;
    Ok(rebased)
}

/// Fetches the peer's checkpoint chunk by chunk; returns what it announced and the bytes.
async fn fetch_checkpoint(
    client: &PeerClient,
    peer: &Peer,
) -> Result<(IndexedDigest, Vec<u8>), Failure> {
    let (announced, bytes) = assemble(|at, offset| ask_chunk(client, peer, at, offset)).await?;
    info!(
        peer = peer.id.0,
        raft_index = announced.raft_index.get(),
        bytes = bytes.len(),
        "peer checkpoint fetched"
    );
    Ok((announced, bytes))
}

/// Asks for a new checkpoint, then for its chunks in order until all of it arrived. Every
/// chunk must continue the bytes received, for the same checkpoint (index and size).
async fn assemble<F, Fut>(mut ask: F) -> Result<(IndexedDigest, Vec<u8>), Failure>
where
    F: FnMut(Option<RaftIndex>, u64) -> Fut,
    Fut: Future<Output = Result<CheckpointChunk, Failure>>,
{
    let first = ask(None, 0).await?;
    let total = first.total_bytes;
    if total > CHECKPOINT_BYTES_MAX {
        return Err(Failure::TooLarge(total));
    }
    let announced =
        IndexedDigest { raft_index: first.raft_index, seq: Seq(0), digest: first.digest };
    let mut bytes = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let mut chunk = first;
    loop {
        let continues = chunk.offset == bytes.len() as u64
            && chunk.total_bytes == total
            && (chunk.raft_index, chunk.digest) == (announced.raft_index, announced.digest);
        if !continues || chunk.bytes.is_empty() && (bytes.len() as u64) < total {
            return Err(Failure::Corrupt(None));
        }
        bytes.extend_from_slice(&chunk.bytes);
        if bytes.len() as u64 >= total {
            return Ok((announced, bytes));
        }
        chunk = ask(Some(announced.raft_index), bytes.len() as u64).await?;
    }
}

async fn ask_chunk(
    client: &PeerClient,
    peer: &Peer,
    at: Option<RaftIndex>,
    offset: u64,
) -> Result<CheckpointChunk, Failure> {
    let request = AdminRequest::Checkpoint { at, offset };
    ask_state_chunk(client, peer, request, Failure::CheckpointUnavailable).await
}

async fn ask_mempool_chunk(
    client: &PeerClient,
    peer: &Peer,
    at: Option<RaftIndex>,
    offset: u64,
) -> Result<CheckpointChunk, Failure> {
    let request = AdminRequest::MempoolSnapshot { at, offset };
    ask_state_chunk(client, peer, request, Failure::MempoolUnavailable).await
}

/// Sends a chunk request (checkpoint or mempool export); `unavailable` when the peer has none.
async fn ask_state_chunk(
    client: &PeerClient,
    peer: &Peer,
    request: AdminRequest,
    unavailable: Failure,
) -> Result<CheckpointChunk, Failure> {
    match client.admin(peer.id, &peer.addr, request, CHECKPOINT_REQUEST_TIMEOUT).await {
        Ok(Ok(AdminReply::Checkpoint(Some(chunk)) | AdminReply::MempoolSnapshot(Some(chunk)))) => {
            Ok(chunk)
        }
        Ok(Ok(AdminReply::Checkpoint(None) | AdminReply::MempoolSnapshot(None))) => {
            Err(unavailable)
        }
        _ => Err(Failure::PeerUnreachable),
    }
}

/// Compares this node's mempool digest with the peer's at the same applied index: `Some` when
/// they differ there, `None` when they agree or no common index was observed (the root
/// verification after the repair still guards that case).
async fn mempools_differ(
    node: &RaftNode,
    client: &PeerClient,
    peer: &Peer,
) -> Result<Option<(RaftIndex, Digest, Digest)>, Failure> {
    for _ in 0..MEMPOOL_COMPARE_ATTEMPTS {
        let request = AdminRequest::MempoolRoot;
        let theirs = match client.admin(peer.id, &peer.addr, request, MEMPOOL_REQUEST_TIMEOUT).await
        {
            Ok(Ok(AdminReply::MempoolRoot(Some(root)))) => root,
            Ok(Ok(AdminReply::MempoolRoot(None))) => return Ok(None),
            _ => return Err(Failure::PeerUnreachable),
        };
        // Hashing the mempool is O(pool): off the async workers.
        let state = node.state().clone();
        let ours = tokio::task::spawn_blocking(move || mempool_root_of(&state)).await;
        if let Ok(Some(ours)) = ours
            && ours.applied == theirs.applied
        {
            return Ok((ours.digest != theirs.digest).then_some((
                ours.applied,
                ours.digest,
                theirs.digest,
            )));
        }
        tokio::time::sleep(MEMPOOL_COMPARE_PAUSE).await;
    }
    warn!(peer = peer.id.0, "mempools not compared: no common applied index observed");
    Ok(None)
}

/// The last index the state machine reported applied (its facts are durable by then).
fn applied_index(node: &RaftNode) -> RaftIndex {
    RaftIndex(node.status().applied.unwrap_or(0))
}

/// This node's mempool digest at its last applied index.
fn mempool_root_of(state: &StateHandle) -> Option<MempoolRootReply> {
    state.read(|view| {
        let applied = view.applied?;
        Some(MempoolRootReply { applied: RaftIndex(applied.index), digest: view.mempool.digest() })
    })
}

/// A checkpoint taken for a peer, held while it fetches the chunks.
#[derive(Clone, Debug)]
struct Taken {
    sealed: IndexedDigest,
    bytes: Arc<Vec<u8>>,
}

/// The chunk of `taken` at `offset` (at most [`CHECKPOINT_CHUNK_BYTES_MAX`] bytes; `None`
/// past the end).
fn slice(taken: &Taken, offset: u64) -> Option<CheckpointChunk> {
    let total = taken.bytes.len();
    let start = usize::try_from(offset).ok().filter(|start| *start <= total)?;
    let end = total.min(start.saturating_add(CHECKPOINT_CHUNK_BYTES_MAX as usize));
    Some(CheckpointChunk {
        raft_index: taken.sealed.raft_index,
        digest: taken.sealed.digest,
        total_bytes: total as u64,
        offset,
        bytes: taken.bytes.get(start..end)?.to_vec(),
    })
}

/// A chunk of a new state file (`at: None`: `take` makes it, and `held` keeps it) or of the
/// one `held` (`at: Some`); the file is dropped once its last chunk is served.
fn serve_chunk(
    held: &Mutex<Option<Taken>>,
    at: Option<RaftIndex>,
    offset: u64,
    take: impl FnOnce() -> Option<Taken>,
) -> Option<CheckpointChunk> {
    let mut held = held.lock().unwrap_or_else(PoisonError::into_inner);
    let taken = match at {
        None => {
            *held = None;
            let taken = take()?;
            *held = Some(taken.clone());
            taken
        }
        Some(index) => held.as_ref().filter(|t| t.sealed.raft_index == index)?.clone(),
    };
    let chunk = slice(&taken, offset)?;
    if chunk.offset + chunk.bytes.len() as u64 == chunk.total_bytes {
        *held = None;
    }
    Some(chunk)
}

/// The serving side: checkpoints of the live replayer and exports of the mempool, taken on
/// demand (one of each held at a time, dropped once its last chunk is served or a new one is
/// taken), and the mempool root.
#[derive(Debug)]
pub(crate) struct CheckpointServer {
    history: History,
    node: Weak<RaftNode>,
    taken: Mutex<Option<Taken>>,
    exported: Mutex<Option<Taken>>,
}

impl CheckpointServer {
    pub(crate) const fn new(history: History, node: Weak<RaftNode>) -> Self {
        Self { history, node, taken: Mutex::new(None), exported: Mutex::new(None) }
    }

    /// A chunk of a new checkpoint (`at: None`) or of the one held (`at: Some`). Blocking.
    pub(crate) fn chunk(&self, at: Option<RaftIndex>, offset: u64) -> Option<CheckpointChunk> {
        serve_chunk(&self.taken, at, offset, || self.take())
    }

    /// A chunk of a new mempool export (`at: None`) or of the one held (`at: Some`).
    /// Blocking (encodes the mempool under the state lock).
    pub(crate) fn mempool_chunk(
        &self,
        at: Option<RaftIndex>,
        offset: u64,
    ) -> Option<CheckpointChunk> {
        serve_chunk(&self.exported, at, offset, || {
            let export = self.node.upgrade()?.state().export_mempool()?;
            info!(
                applied = export.applied.get(),
                bytes = export.bytes.len(),
                "mempool exported for a peer"
            );
            let sealed =
                IndexedDigest { raft_index: export.applied, seq: Seq(0), digest: export.digest };
            Some(Taken { sealed, bytes: Arc::new(export.bytes) })
        })
    }

    /// A checkpoint of the live replayer complete through its last sealed index: its open
    /// index is sealed once every fact of it is known applied, which a busy node may need a
    /// few tries to observe.
    fn take(&self) -> Option<Taken> {
        for _ in 0..TAKE_ATTEMPTS_MAX {
            let node = self.node.upgrade()?;
            self.history.seal_applied(applied_index(&node));
            drop(node);
            let taken = self.history.read(|live| {
                (live.last_raft_index() == live.digest().raft_index).then(|| Taken {
                    sealed: live.digest(),
                    bytes: Arc::new(checkpoint_bytes(live)),
                })
            });
            if let Some(taken) = taken {
                info!(
                    raft_index = taken.sealed.raft_index.get(),
                    bytes = taken.bytes.len(),
                    "checkpoint taken for a peer"
                );
                return Some(taken);
            }
            std::thread::sleep(TAKE_PAUSE);
        }
        warn!("no checkpoint for a peer: the replayer never caught up with the applied index");
        None
    }

    /// This node's mempool root. Blocking (hashes the mempool under the state lock).
    pub(crate) fn mempool_root(&self) -> Option<MempoolRootReply> {
        let node = self.node.upgrade()?;
        mempool_root_of(node.state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(len: usize) -> Taken {
        let sealed =
            IndexedDigest { raft_index: RaftIndex(7), seq: Seq(0), digest: Digest([9; 32]) };
        let bytes = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
        Taken { sealed, bytes: Arc::new(bytes) }
    }

    /// Fetches `taken` through [`slice`], with `tamper` applied to each chunk; returns the
    /// result and the requests made.
    async fn fetch(
        taken: &Taken,
        tamper: impl Fn(&mut CheckpointChunk),
    ) -> (Result<(IndexedDigest, Vec<u8>), Failure>, Vec<(Option<RaftIndex>, u64)>) {
        let asked = Mutex::new(Vec::new());
        let result = assemble(|at, offset| {
            asked.lock().unwrap().push((at, offset));
            let mut chunk = slice(taken, offset).ok_or(Failure::CheckpointUnavailable);
            if let Ok(chunk) = &mut chunk {
                tamper(chunk);
            }
            std::future::ready(chunk)
        })
        .await;
        (result, asked.into_inner().unwrap())
    }

    #[tokio::test]
    async fn a_checkpoint_arrives_in_bounded_chunks_and_is_reassembled() {
        let max = u64::from(CHECKPOINT_CHUNK_BYTES_MAX);
        let original = taken(2 * CHECKPOINT_CHUNK_BYTES_MAX as usize + 5);
        let (result, asked) = fetch(&original, |_| {}).await;
        let (announced, bytes) = result.unwrap();
        assert_eq!((announced.raft_index, announced.digest), (RaftIndex(7), Digest([9; 32])));
        assert_eq!(bytes, *original.bytes);
        let seven = Some(RaftIndex(7));
        assert_eq!(asked, [(None, 0), (seven, max), (seven, 2 * max)]);
        // One chunk for a small checkpoint, and an empty checkpoint is one empty chunk.
        assert_eq!(fetch(&taken(10), |_| {}).await.1.len(), 1);
        assert_eq!(fetch(&taken(0), |_| {}).await.0.unwrap().1, Vec::<u8>::new());
        assert!(slice(&original, 2 * max + 6).is_none(), "past the end");
    }

    #[tokio::test]
    async fn chunks_that_do_not_continue_the_same_checkpoint_are_refused() {
        let original = taken(CHECKPOINT_CHUNK_BYTES_MAX as usize + 1);
        let tampers: [&dyn Fn(&mut CheckpointChunk); 4] = [
            &|c| c.offset += u64::from(c.offset > 0),
            &|c| c.raft_index = RaftIndex(c.raft_index.0 + u64::from(c.offset > 0)),
            &|c| c.digest.0[0] ^= u8::from(c.offset > 0),
            &|c| c.bytes.truncate(if c.offset > 0 { 0 } else { c.bytes.len() }),
        ];
        for tamper in tampers {
            let (result, _) = fetch(&original, tamper).await;
            assert!(matches!(result, Err(Failure::Corrupt(None))), "{result:?}");
        }
        let huge = |c: &mut CheckpointChunk| c.total_bytes = CHECKPOINT_BYTES_MAX + 1;
        assert!(matches!(fetch(&original, huge).await.0, Err(Failure::TooLarge(_))));
    }
}
