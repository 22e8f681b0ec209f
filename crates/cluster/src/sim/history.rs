//! What a simulated run observed: its event log (the run's trace, compared between two runs of
//! one seed), the leader of every term, sampled state digests and the acknowledged writes; and
//! the invariant violations found along the way.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

use mempulse_primitives::{Digest, EventKind, NodeId, TxHash};
use openraft::type_config::TypeConfigExt;
use openraft_rt_sim::SimInstant;

use crate::{SimTypeConfig, error::StartError};

/// An invariant a simulated run broke.
#[derive(Debug)]
#[non_exhaustive]
pub enum Violation {
    /// Two replicas hold different entries at one index of the committed log, or under one
    /// log id (Raft's log matching property).
    LogMismatch {
        /// The index.
        index: u64,
        /// One replica.
        first: NodeId,
        /// The other one.
        second: NodeId,
    },
    /// Two replicas had applied the same Raft index and held different states.
    DigestMismatch {
        /// The applied index.
        index: u64,
        /// One replica.
        first: NodeId,
        /// The other one.
        second: NodeId,
    },
    /// Two replicas wrote different facts for the same Raft index.
    FactsMismatch {
        /// The index.
        index: u64,
        /// One replica.
        first: NodeId,
        /// The other one.
        second: NodeId,
    },
    /// A replica's event log holds the facts of an index after those of a later index, or
    /// holds them twice (an entry applied twice).
    FactsOutOfOrder {
        /// The replica.
        node: NodeId,
        /// The index that came too late.
        index: u64,
    },
    /// A replica admitted the same transaction twice.
    DuplicateAdmission {
        /// The replica.
        node: NodeId,
        /// The transaction.
        hash: TxHash,
    },
    /// A client was told its write was applied, and a replica's final state lacks one of its
    /// transactions.
    LostWrite {
        /// The replica.
        node: NodeId,
        /// Raft index the acknowledgement named.
        index: u64,
        /// The missing transaction.
        hash: TxHash,
    },
    /// The facts a client was answered with differ from the facts a replica wrote at that
    /// index.
    AckMismatch {
        /// The replica.
        node: NodeId,
        /// The index.
        index: u64,
    },
    /// A crash took facts of an index the newest surviving snapshot covers: the restarted
    /// node never applies that entry again, so they are lost from its event log.
    FactsStranded {
        /// The replica.
        node: NodeId,
        /// Lowest Raft index of a lost fact.
        index: u64,
        /// Index the surviving snapshot covers.
        snapshot: u64,
    },
    /// A replica's event log lacks facts of an index other replicas hold, and no failed fill
    /// of the facts a snapshot covered explains it.
    FactsMissing {
        /// The replica.
        node: NodeId,
        /// The index.
        index: u64,
    },
    /// After the faults were healed the replicas did not agree on one applied log within the
    /// bound.
    NoConvergence {
        /// Virtual time waited.
        waited: Duration,
    },
    /// A replica's Raft log could not be read back.
    LogUnreadable {
        /// The replica.
        node: NodeId,
        /// Why.
        error: Arc<crate::Error>,
    },
    /// A node could not be started or restarted from its disks.
    Start {
        /// The node.
        node: NodeId,
        /// Why.
        error: Arc<StartError>,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LogMismatch { index, first, second } => {
                write!(
                    f,
                    "n{} and n{} hold different log entries at index {index}",
                    first.0, second.0
                )
            }
            Self::DigestMismatch { index, first, second } => {
                write!(f, "n{} and n{} differ at applied index {index}", first.0, second.0)
            }
            Self::FactsMismatch { index, first, second } => {
                write!(f, "n{} and n{} wrote different facts at index {index}", first.0, second.0)
            }
            Self::FactsOutOfOrder { node, index } => {
                write!(f, "n{} wrote the facts of index {index} out of order or twice", node.0)
            }
            Self::DuplicateAdmission { node, hash } => {
                write!(f, "n{} admitted tx {hash} twice", node.0)
            }
            Self::LostWrite { node, index, hash } => {
                write!(f, "n{} lost tx {hash} acknowledged at index {index}", node.0)
            }
            Self::AckMismatch { node, index } => {
                write!(f, "n{} wrote other facts at index {index} than the client was told", node.0)
            }
            Self::FactsStranded { node, index, snapshot } => write!(
                f,
                "n{} lost facts of index {index} that its snapshot at {snapshot} covers",
                node.0
            ),
            Self::FactsMissing { node, index } => {
                write!(f, "n{} lacks facts of index {index} that other replicas hold", node.0)
            }
            Self::NoConvergence { waited } => {
                write!(f, "replicas did not converge within {} ms", waited.as_millis())
            }
            Self::LogUnreadable { node, error } => {
                write!(f, "n{} raft log unreadable: {error}", node.0)
            }
            Self::Start { node, error } => write!(f, "n{} failed to start: {error}", node.0),
        }
    }
}

/// A write a client was told was committed and applied.
#[derive(Clone, Debug)]
pub(crate) struct Ack {
    /// Raft index of the entry that carried it.
    pub(crate) index: u64,
    /// Its transactions.
    pub(crate) txs: Vec<TxHash>,
    /// The facts the client was answered with.
    pub(crate) facts: Vec<EventKind>,
}

#[derive(Debug, Default)]
struct Record {
    trace: Vec<String>,
    leaders: BTreeMap<u64, BTreeSet<NodeId>>,
    shared_terms: usize,
    digests: BTreeMap<u64, (NodeId, Digest)>,
    acks: Vec<Ack>,
    submitted: BTreeSet<TxHash>,
    /// Per node, the index ranges whose facts a snapshot install could not fill.
    gaps: BTreeMap<NodeId, Vec<(u64, u64)>>,
    violation: Option<Violation>,
}

/// The shared record of one run. Clones share it.
#[derive(Clone, Debug)]
pub(crate) struct History {
    start: SimInstant,
    record: Arc<Mutex<Record>>,
}

impl History {
    /// A record whose clock starts now (virtual time).
    pub(crate) fn new() -> Self {
        Self { start: SimTypeConfig::now(), record: Arc::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Virtual time since the run started.
    pub(crate) fn elapsed(&self) -> Duration {
        SimTypeConfig::now() - self.start
    }

    /// Appends a line to the run's trace, stamped with virtual time.
    pub(crate) fn note(&self, what: impl fmt::Display) {
        let micros = self.elapsed().as_micros();
        self.lock().trace.push(format!("{:>7}.{:03}ms {what}", micros / 1000, micros % 1000));
    }

    /// Records that `node` installs a snapshot without the facts of `after ..= through` (from
    /// the first one it asked for on): its event log may keep a gap there.
    pub(crate) fn gap(&self, node: NodeId, after: u64, through: u64) {
        self.note(format_args!("n{} keeps a gap in its facts: {after}..={through}", node.0));
        self.lock().gaps.entry(node).or_default().push((after, through));
    }

    /// The gaps `node` recorded that overlap `after ..= through`.
    pub(crate) fn gaps_within(&self, node: NodeId, after: u64, through: u64) -> Vec<(u64, u64)> {
        let record = self.lock();
        let gaps = record.gaps.get(&node).map(Vec::as_slice).unwrap_or_default();
        gaps.iter().filter(|(a, t)| *a <= through && *t >= after).copied().collect()
    }

    /// Whether `node` recorded a gap covering `index`.
    pub(crate) fn in_gap(&self, node: NodeId, index: u64) -> bool {
        self.lock()
            .gaps
            .get(&node)
            .is_some_and(|g| g.iter().any(|(a, t)| (*a..=*t).contains(&index)))
    }

    /// Records the first violation (later ones are consequences, mostly).
    pub(crate) fn violate(&self, violation: Violation) {
        self.note(format_args!("VIOLATION {violation}"));
        let mut record = self.lock();
        if record.violation.is_none() {
            record.violation = Some(violation);
        }
    }

    /// Whether a violation was recorded.
    pub(crate) fn failed(&self) -> bool {
        self.lock().violation.is_some()
    }

    /// Records that `node` leads `term`. openraft's advanced leader id is `(term, node)`: two
    /// candidates may both win one term, the higher node id superseding the lower (their
    /// entries carry different log ids), so this counts such terms instead of failing.
    pub(crate) fn leader(&self, term: u64, node: NodeId) {
        let mut record = self.lock();
        let leaders = record.leaders.entry(term).or_default();
        leaders.insert(node);
        if leaders.len() == 2 {
            record.shared_terms += 1;
        }
    }

    /// Records a replica's state digest at an applied index.
    pub(crate) fn digest(&self, index: u64, node: NodeId, digest: Digest) {
        let (first, seen) = *self.lock().digests.entry(index).or_insert((node, digest));
        if seen != digest {
            self.violate(Violation::DigestMismatch { index, first, second: node });
        }
    }

    /// Records transactions a client is about to submit.
    pub(crate) fn submitted(&self, txs: &[TxHash]) {
        self.lock().submitted.extend(txs.iter().copied());
    }

    /// Records an acknowledged write.
    pub(crate) fn ack(&self, ack: Ack) {
        self.lock().acks.push(ack);
    }

    /// The acknowledged writes, in acknowledgement order.
    pub(crate) fn acks(&self) -> Vec<Ack> {
        self.lock().acks.clone()
    }

    /// Every transaction a client submitted.
    pub(crate) fn all_submitted(&self) -> BTreeSet<TxHash> {
        self.lock().submitted.clone()
    }

    /// Terms that had a leader, and terms that had more than one.
    pub(crate) fn terms(&self) -> (usize, usize) {
        let record = self.lock();
        (record.leaders.len(), record.shared_terms)
    }

    /// Takes the trace and the violation.
    pub(crate) fn finish(&self) -> (Vec<String>, Option<Violation>) {
        let mut record = self.lock();
        (std::mem::take(&mut record.trace), record.violation.take())
    }
}
