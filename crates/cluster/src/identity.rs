//! Incarnations: which life of a node's Raft directory a member speaks for, and which life of
//! each peer this node has met. A member whose Raft directory was wiped (it lost its log and its
//! vote, so its old acknowledgements and votes no longer hold) comes back with a new
//! incarnation, and its peers refuse it until an operator re-adds it as a learner.
//!
//! ```text
//!  RaftNode::start ──► NodeIdentity::open(raft dir): raft-identity (own incarnation, created
//!                      once, random) + raft-peers (the incarnation met per peer id)
//!  transport hello ──► Hello{from, to, incarnation} ─► server: check(from, incarnation)
//!                  ◄── HelloAck{incarnation}       ◄─ client: check(to, incarnation)
//!  check: first meeting → bind (durable before the connection is used); same → accept;
//!         other, and the peer is a learner (or not a voter) in this node's membership → rebind;
//!         other, and the peer is a voter → refused (`incarnation_changed`)
//!  membership change ──► members no longer in the membership are forgotten (met anew)
//! ```
//! The rule and the alternatives rejected are in `docs/design/cluster-membership.md`.
//!
//! # Byte layouts
//! ```text
//! raft-identity  "MPRI" | u8 version (1) | u64 node id | u64 incarnation (≠ 0) | u32 crc32c
//! raft-peers     "MPRP" | u8 version (1) | u32 n | n × (u64 node id, u64 incarnation), ids
//!                strictly ascending | u32 crc32c
//! ```
//! Both are replaced atomically (temporary file, fsync, rename, directory fsync), like
//! `raft-meta`. The crc covers every preceding byte.

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    path::Path,
    sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError},
};

use mempulse_primitives::{DecodeError, NodeId, Reader};
use mempulse_wal::{FsStorage, Storage};
use openraft::{RaftMetrics, async_runtime::WatchReceiver, type_config::alias::WatchReceiverOf};

use crate::{
    ClusterNode, MembershipObserver, TypeConfig,
    error::{Error, MetaCorruptKind, MetaOp, Result},
    meta::read_all,
};

/// File holding this node's own incarnation.
pub const IDENTITY_FILE: &str = "raft-identity";
/// File holding the incarnation met per peer.
pub const PEERS_FILE: &str = "raft-peers";
const IDENTITY_MAGIC: [u8; 4] = *b"MPRI";
const PEERS_MAGIC: [u8; 4] = *b"MPRP";
const VERSION: u8 = 1;
/// Most peers recorded (a cluster has a handful of members; the bound keeps a damaged or
/// hostile file from allocating much).
const PEERS_MAX: usize = 1024;

/// The incarnation an admin client (no Raft state, e.g. `mempulse cluster status`) presents:
/// it may send admin requests and nothing else.
pub(crate) const NO_INCARNATION: u64 = 0;

/// What meeting a peer with an incarnation means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Meeting {
    /// Already met with this incarnation.
    Known,
    /// First meeting, or a learner (or non-voter) with a new incarnation: record it first.
    Bind {
        /// The incarnation met before, if any.
        previous: Option<u64>,
    },
    /// A voter with another incarnation than the one met: its Raft state was lost.
    Changed {
        /// The incarnation met before.
        recorded: u64,
    },
}

type MetricsReceiver = WatchReceiverOf<TypeConfig, RaftMetrics<TypeConfig>>;

/// A node's own incarnation and the incarnations it has met, kept in its Raft directory.
pub struct NodeIdentity {
    id: NodeId,
    incarnation: u64,
    storage: Arc<dyn Storage>,
    /// The incarnation met per peer; the lock is held across the file write of a change.
    peers: Mutex<BTreeMap<NodeId, u64>>,
    /// The node's Raft metrics (its membership), once the node runs.
    metrics: OnceLock<MetricsReceiver>,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("id", &self.id)
            .field("incarnation", &self.incarnation)
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// Opens the identity of node `id` in the Raft directory `dir` (which must exist),
    /// creating a new random incarnation when the directory has none (a new or wiped node).
    ///
    /// # Errors
    /// [`Error::MetaIo`] when a file cannot be read or written; [`Error::MetaCorrupt`] when a
    /// file is damaged or belongs to another node id.
    pub fn open(id: NodeId, dir: &Path) -> Result<Self> {
        Self::on_storage(id, Arc::new(FsStorage::new(dir)))
    }

    /// As [`open`](Self::open), on any storage.
    pub(crate) fn on_storage(id: NodeId, storage: Arc<dyn Storage>) -> Result<Self> {
        let incarnation = match read_file(storage.as_ref(), IDENTITY_FILE)? {
            Some(bytes) => {
                let (owner, incarnation) = decode_identity(&bytes).map_err(|source| {
                    Error::MetaCorrupt { path: storage.path_of(IDENTITY_FILE), source }
                })?;
                if owner != id {
                    return Err(Error::MetaCorrupt {
                        path: storage.path_of(IDENTITY_FILE),
                        source: MetaCorruptKind::Malformed(DecodeError::InvalidValue {
                            offset: 5,
                            what: "node id of another node",
                        }),
                    });
                }
                incarnation
            }
            None => {
                let incarnation = new_incarnation();
                write_file(storage.as_ref(), IDENTITY_FILE, &encode_identity(id, incarnation))?;
                tracing::info!(node = id.0, incarnation, "new raft incarnation");
                incarnation
            }
        };
        let peers = match read_file(storage.as_ref(), PEERS_FILE)? {
            Some(bytes) => decode_peers(&bytes).map_err(|source| Error::MetaCorrupt {
                path: storage.path_of(PEERS_FILE),
                source,
            })?,
            None => BTreeMap::new(),
        };
        Ok(Self { id, incarnation, storage, peers: Mutex::new(peers), metrics: OnceLock::new() })
    }

    /// This node's id.
    #[must_use]
    pub const fn id(&self) -> NodeId {
        self.id
    }

    /// This node's incarnation (never 0).
    #[must_use]
    pub const fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The incarnation met per peer, in id order.
    #[must_use]
    pub fn peers(&self) -> BTreeMap<NodeId, u64> {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<NodeId, u64>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lets the checks read the node's membership from now on.
    pub(crate) fn watch(&self, metrics: MetricsReceiver) {
        let _ = self.metrics.set(metrics);
    }

    /// Whether `peer` is a voter of this node's latest membership. Before the node runs the
    /// answer is `true` (the strict one: no rebinding).
    fn is_voter(&self, peer: NodeId) -> bool {
        self.metrics.get().is_none_or(|metrics| {
            let m = metrics.borrow_watched();
            m.membership_config.membership().voter_ids().any(|id| id == peer)
        })
    }

    /// The members of this node's latest membership other than itself, with their addresses.
    pub(crate) fn other_members(&self) -> Vec<(NodeId, ClusterNode)> {
        let Some(metrics) = self.metrics.get() else { return Vec::new() };
        let m = metrics.borrow_watched();
        m.membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != self.id)
            .map(|(id, node)| (*id, node.clone()))
            .collect()
    }

    /// Whether `peer` was met at all.
    pub(crate) fn has_met(&self, peer: NodeId) -> bool {
        self.lock().contains_key(&peer)
    }

    /// What meeting `peer` with `incarnation` means (no IO).
    pub(crate) fn meet(&self, peer: NodeId, incarnation: u64) -> Meeting {
        let recorded = self.lock().get(&peer).copied();
        match recorded {
            Some(known) if known == incarnation => Meeting::Known,
            Some(known) if self.is_voter(peer) => Meeting::Changed { recorded: known },
            previous => Meeting::Bind { previous },
        }
    }

    /// Forgets the peers outside `members` (blocking: call off the async workers), so a removed
    /// member that is added back is met anew; nothing when `members` is empty. A late call only
    /// forgets more: a peer met anew is bound again.
    ///
    /// # Errors
    /// [`Error::MetaIo`] when the file cannot be replaced; the records are then unchanged.
    pub(crate) fn forget_not_in(&self, members: &BTreeSet<NodeId>) -> Result<()> {
        if members.is_empty() {
            return Ok(());
        }
        let mut peers = self.lock();
        let next: BTreeMap<NodeId, u64> =
            peers.iter().filter(|(id, _)| members.contains(id)).map(|(k, v)| (*k, *v)).collect();
        if next.len() == peers.len() {
            return Ok(());
        }
        write_file(self.storage.as_ref(), PEERS_FILE, &encode_peers(&next))?;
        for id in peers.keys().filter(|id| !next.contains_key(id)) {
            tracing::info!(node = self.id.0, peer = id.0, "removed member forgotten");
        }
        *peers = next;
        Ok(())
    }

    /// Records `incarnation` for `peer` durably (blocking: call off the async workers).
    ///
    /// # Errors
    /// [`Error::MetaIo`] when the file cannot be replaced; the record is then unchanged.
    pub(crate) fn bind(&self, peer: NodeId, incarnation: u64) -> Result<()> {
        let mut peers = self.lock();
        if peers.get(&peer) == Some(&incarnation) {
            return Ok(());
        }
        let mut next = peers.clone();
        next.insert(peer, incarnation);
        write_file(self.storage.as_ref(), PEERS_FILE, &encode_peers(&next))?;
        *peers = next;
        Ok(())
    }
}

/// Memberships waiting for the forgetting task (membership changes are rare; past this many
/// waiting, one is forgotten out of order instead).
const MEMBERSHIPS_QUEUED_MAX: usize = 64;

/// The state machine's [`MembershipObserver`] for `identity`: every membership applied (or
/// installed with a snapshot) goes, in log order, to one task that forgets the peers outside
/// it ([`NodeIdentity::forget_not_in`], on the blocking pool), so a member removed and added
/// back is met anew however fast the two changes follow each other. (Sampling the Raft
/// metrics instead could see only the membership after both, and then a wiped member added
/// back would stay refused.) The task ends with the state machine.
pub(crate) fn forget_removed_members(identity: Arc<NodeIdentity>) -> MembershipObserver {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<BTreeSet<NodeId>>(MEMBERSHIPS_QUEUED_MAX);
    let forget = |identity: Arc<NodeIdentity>, members: BTreeSet<NodeId>| async move {
        match tokio::task::spawn_blocking(move || identity.forget_not_in(&members)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "cannot forget removed members"),
            Err(error) => tracing::error!(%error, "forget task failed"),
        }
    };
    let queued = Arc::clone(&identity);
    tokio::spawn(async move {
        while let Some(members) = rx.recv().await {
            forget(Arc::clone(&queued), members).await;
        }
    });
    Arc::new(move |members| {
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(members)) = tx.try_send(members) {
            // Out of order, which only forgets more (see `forget_not_in`).
            tokio::spawn(forget(Arc::clone(&identity), members));
        }
    })
}

/// A random non-zero incarnation from the TLS provider's secure random source (it names a life
/// of a directory; it is never replayed, hashed into state or compared for order).
fn new_incarnation() -> u64 {
    let random = rustls::crypto::ring::default_provider().secure_random;
    loop {
        let mut bytes = [0u8; 8];
        if random.fill(&mut bytes).is_ok() {
            let incarnation = u64::from_le_bytes(bytes);
            if incarnation != NO_INCARNATION {
                return incarnation;
            }
        }
    }
}

fn read_file(storage: &dyn Storage, name: &str) -> Result<Option<Vec<u8>>> {
    let err = |op| {
        let path = storage.path_of(name);
        move |source| Error::MetaIo { op, path, source }
    };
    let file = match storage.open(name) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(MetaOp::Read)(e)),
    };
    read_all(file.as_ref()).map(Some).map_err(err(MetaOp::Read))
}

/// Replaces `name` with `bytes` durably: temporary file, fsync, rename, directory fsync.
fn write_file(storage: &dyn Storage, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = format!("{name}.tmp");
    let err = |op, name: &str| {
        let path = storage.path_of(name);
        move |source| Error::MetaIo { op, path, source }
    };
    let file = storage.create(&tmp).map_err(err(MetaOp::Create, &tmp))?;
    file.write_all_at(bytes, 0).map_err(err(MetaOp::Write, &tmp))?;
    file.sync_data().map_err(err(MetaOp::Sync, &tmp))?;
    drop(file);
    storage.rename(&tmp, name).map_err(err(MetaOp::Rename, name))?;
    storage.sync_dir().map_err(err(MetaOp::SyncDir, ""))
}

fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks magic, version and crc; returns a reader over the fields.
fn open_sealed<'a>(bytes: &'a [u8], magic: [u8; 4]) -> Result<Reader<'a>, MetaCorruptKind> {
    if bytes.get(..4) != Some(magic.as_slice()) {
        return Err(MetaCorruptKind::BadMagic);
    }
    let split = bytes.len().checked_sub(4).ok_or(MetaCorruptKind::BadMagic)?;
    let (body, crc) = bytes.split_at(split);
    let crc = u32::from_le_bytes(<[u8; 4]>::try_from(crc).map_err(|_| MetaCorruptKind::BadMagic)?);
    let mut r = Reader::new(body);
    r.bytes(4).map_err(MetaCorruptKind::Malformed)?;
    let version = r.u8().map_err(MetaCorruptKind::Malformed)?;
    if version != VERSION {
        return Err(MetaCorruptKind::UnsupportedVersion(version));
    }
    if crc32c::crc32c(body) != crc {
        return Err(MetaCorruptKind::Checksum);
    }
    Ok(r)
}

fn encode_identity(id: NodeId, incarnation: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(25);
    out.extend_from_slice(&IDENTITY_MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&id.0.to_le_bytes());
    out.extend_from_slice(&incarnation.to_le_bytes());
    seal(out)
}

fn decode_identity(bytes: &[u8]) -> Result<(NodeId, u64), MetaCorruptKind> {
    let mut r = open_sealed(bytes, IDENTITY_MAGIC)?;
    let fields = (|| {
        let id = NodeId(r.u64()?);
        let offset = r.position();
        let incarnation = r.u64()?;
        if incarnation == NO_INCARNATION {
            return Err(DecodeError::InvalidValue { offset, what: "incarnation" });
        }
        r.finish()?;
        Ok((id, incarnation))
    })();
    fields.map_err(MetaCorruptKind::Malformed)
}

fn encode_peers(peers: &BTreeMap<NodeId, u64>) -> Vec<u8> {
    let mut out = Vec::with_capacity(13 + 16 * peers.len());
    out.extend_from_slice(&PEERS_MAGIC);
    out.push(VERSION);
    let count = u32::try_from(peers.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_le_bytes());
    for (id, incarnation) in peers {
        out.extend_from_slice(&id.0.to_le_bytes());
        out.extend_from_slice(&incarnation.to_le_bytes());
    }
    seal(out)
}

fn decode_peers(bytes: &[u8]) -> Result<BTreeMap<NodeId, u64>, MetaCorruptKind> {
    let mut r = open_sealed(bytes, PEERS_MAGIC)?;
    let fields = (|| {
        let offset = r.position();
        let count = r.count(16)?;
        if count > PEERS_MAX {
            return Err(DecodeError::InvalidValue { offset, what: "peer count" });
        }
        let mut peers = BTreeMap::new();
        let mut last = None;
        for _ in 0..count {
            let offset = r.position();
            let id = NodeId(r.u64()?);
            let incarnation = r.u64()?;
            if last.is_some_and(|last| last >= id) || incarnation == NO_INCARNATION {
                return Err(DecodeError::InvalidValue { offset, what: "peer record" });
            }
            last = Some(id);
            peers.insert(id, incarnation);
        }
        r.finish()?;
        Ok(peers)
    })();
    fields.map_err(MetaCorruptKind::Malformed)
}

#[cfg(test)]
mod tests {
    use mempulse_wal::test_utils::{CrashMode, SimStorage};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_new_directory_gets_an_incarnation_that_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first = NodeIdentity::open(NodeId(3), dir.path()).unwrap();
        assert_ne!(first.incarnation(), NO_INCARNATION);
        let again = NodeIdentity::open(NodeId(3), dir.path()).unwrap();
        assert_eq!(again.incarnation(), first.incarnation());
        // Wiped: a new life.
        let wiped = tempfile::tempdir().unwrap();
        let reborn = NodeIdentity::open(NodeId(3), wiped.path()).unwrap();
        assert_ne!(reborn.incarnation(), first.incarnation());
        // Another node's directory is refused.
        assert!(matches!(
            NodeIdentity::open(NodeId(4), dir.path()),
            Err(Error::MetaCorrupt { .. })
        ));
    }

    #[test]
    fn peers_are_bound_durably_and_a_changed_voter_is_refused() {
        let disk = SimStorage::new();
        let identity = NodeIdentity::on_storage(NodeId(1), Arc::new(disk.clone())).unwrap();
        assert_eq!(identity.meet(NodeId(2), 7), Meeting::Bind { previous: None });
        identity.bind(NodeId(2), 7).unwrap();
        assert_eq!(identity.meet(NodeId(2), 7), Meeting::Known);
        // Not running yet: every peer counts as a voter, so a new incarnation is refused.
        assert_eq!(identity.meet(NodeId(2), 8), Meeting::Changed { recorded: 7 });
        let image = disk.crash_image(CrashMode::DropUnsynced);
        let reopened = NodeIdentity::on_storage(NodeId(1), Arc::new(image)).unwrap();
        assert_eq!(reopened.incarnation(), identity.incarnation());
        assert_eq!(reopened.peers(), BTreeMap::from([(NodeId(2), 7)]));
    }

    #[test]
    fn files_round_trip_and_damage_is_detected() {
        let peers = BTreeMap::from([(NodeId(1), 5), (NodeId(9), u64::MAX)]);
        assert_eq!(decode_peers(&encode_peers(&peers)), Ok(peers.clone()));
        assert_eq!(decode_identity(&encode_identity(NodeId(4), 11)), Ok((NodeId(4), 11)));
        for bytes in [encode_peers(&peers), encode_identity(NodeId(4), 11)] {
            for at in 0..bytes.len() {
                let mut damaged = bytes.clone();
                damaged[at] ^= 0x01;
                assert!(
                    decode_peers(&damaged).is_err() && decode_identity(&damaged).is_err(),
                    "flip at {at}"
                );
            }
            for len in 0..bytes.len() {
                assert!(decode_peers(&bytes[..len]).is_err(), "truncated to {len}");
                assert!(decode_identity(&bytes[..len]).is_err(), "truncated to {len}");
            }
        }
        // Valid crc, invalid content: ids out of order, a zero incarnation.
        let mut body = PEERS_MAGIC.to_vec();
        body.push(VERSION);
        body.extend_from_slice(&2u32.to_le_bytes());
        for (id, inc) in [(5u64, 1u64), (5, 2)] {
            body.extend_from_slice(&id.to_le_bytes());
            body.extend_from_slice(&inc.to_le_bytes());
        }
        assert!(matches!(decode_peers(&seal(body)), Err(MetaCorruptKind::Malformed(_))));
        let mut zero = IDENTITY_MAGIC.to_vec();
        zero.push(VERSION);
        zero.extend_from_slice(&[0; 16]);
        assert!(matches!(decode_identity(&seal(zero)), Err(MetaCorruptKind::Malformed(_))));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_peers(&bytes);
            let _ = decode_identity(&bytes);
        }

        #[test]
        fn arbitrary_books_round_trip(
            peers in proptest::collection::btree_map(any::<u64>(), 1u64.., 0..8)
        ) {
            let peers: BTreeMap<NodeId, u64> =
                peers.into_iter().map(|(id, inc)| (NodeId(id), inc)).collect();
            prop_assert_eq!(decode_peers(&encode_peers(&peers)), Ok(peers));
        }
    }
}
