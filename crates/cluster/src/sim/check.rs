//! The end-of-run checks, once the healed cluster converged: equal states, consistent event
//! logs, and every acknowledged write present exactly once on every replica.

use std::collections::{BTreeMap, BTreeSet};

use mempulse_primitives::{Digest, Event, EventKind, NodeId};
use openraft::{ServerState, async_runtime::WatchReceiver};

use super::{
    cluster::SimCluster,
    history::{History, Violation},
};
use std::sync::Arc;

use crate::types::{Entry, LogId};

/// The facts of one replica's event log, by Raft index.
type FactsByIndex = BTreeMap<u64, Vec<Event>>;

/// Whether the cluster agrees: every node up, one leader that applied an entry of its own term
/// and everything it holds, and every replica applied exactly that far.
pub(crate) fn converged(cluster: &SimCluster) -> Option<LogId> {
    let mut target = None;
    for id in cluster.ids() {
        let raft = cluster.raft(id)?;
        let metrics = raft.metrics();
        let m = metrics.borrow_watched();
        if m.state == ServerState::Leader {
            let applied = m.last_applied?;
            let own_term = applied.leader_id.term == m.current_term;
            if !own_term || Some(applied.index) != m.last_log_index || target.is_some() {
                return None;
            }
            target = Some(applied);
        }
    }
    let target = target?;
    let all_there = cluster
        .ids()
        .into_iter()
        .all(|id| cluster.state(id).is_some_and(|s| s.applied() == Some(target)));
    all_there.then_some(target)
}

/// Samples the state digest of every running replica at its applied index.
pub(crate) fn sample_digests(cluster: &SimCluster, history: &History) {
    for id in cluster.ids() {
        let Some(state) = cluster.state(id) else { continue };
        let (applied, digest) = state.read(|v| (v.applied, v.mempool.digest()));
        if let Some(applied) = applied {
            history.digest(applied.index, id, digest);
        }
    }
}

/// Runs every end-of-run check on a converged cluster; returns the common state digest.
pub(crate) fn final_checks(
    cluster: &SimCluster,
    target: LogId,
    history: &History,
) -> Option<Digest> {
    sample_digests(cluster, history);
    let mut logs = BTreeMap::new();
    for id in cluster.ids() {
        let events = cluster.events(id).map(|sink| sink.events()).unwrap_or_default();
        logs.insert(id, facts_by_index(id, &events, history));
    }
    compare_raft_logs(cluster, target, history);
    compare_logs(&logs, history);
    check_acks(cluster, &logs, history);
    let digest = cluster
        .ids()
        .first()
        .and_then(|id| cluster.state(*id))
        .map(|s| s.read(|v| v.mempool.digest()));
    if history.failed() { None } else { digest }
}

/// Groups one replica's replicated facts by index, checking the order (an index never comes
/// back after a later one) and that no transaction is admitted twice.
fn facts_by_index(node: NodeId, events: &[Event], history: &History) -> FactsByIndex {
    let mut by_index: FactsByIndex = BTreeMap::new();
    let mut admitted = BTreeSet::new();
    let mut last = None;
    for event in events {
        let Some(index) = event.origin.raft_index() else { continue };
        if last.is_some_and(|l| index.0 < l) {
            history.violate(Violation::FactsOutOfOrder { node, index: index.0 });
        }
        last = Some(index.0);
        if let EventKind::TxAdmitted { tx, .. } = &event.kind
            && !admitted.insert(tx.hash)
        {
            history.violate(Violation::DuplicateAdmission { node, hash: tx.hash });
        }
        by_index.entry(index.0).or_default().push(event.clone());
    }
    by_index
}

/// Every replica holds the same entries up to the committed `target`, and above it one entry per
/// log id (a stale uncommitted tail may differ, by log id, until a leader overwrites it).
fn compare_raft_logs(cluster: &SimCluster, target: LogId, history: &History) {
    let mut first_seen: BTreeMap<u64, (NodeId, Entry)> = BTreeMap::new();
    for id in cluster.ids() {
        let Some(log) = cluster.log(id) else { continue };
        let entries = match log.entries(.., u64::MAX) {
            Ok(entries) => entries,
            Err(error) => {
                history.violate(Violation::LogUnreadable { node: id, error: Arc::new(error) });
                continue;
            }
        };
        for entry in entries {
            let index = entry.log_id.index;
            match first_seen.get(&index) {
                None => {
                    first_seen.insert(index, (id, entry));
                }
                Some((first, seen))
                    if *seen != entry && (index <= target.index || seen.log_id == entry.log_id) =>
                {
                    history.violate(Violation::LogMismatch { index, first: *first, second: id });
                }
                Some(_) => {}
            }
        }
    }
}

/// Every index two replicas both wrote facts for holds the same facts on both, or the facts of
/// one are a prefix of the other's (a crash that tears a write of the event log can keep the
/// first facts of an index); and every replica holds every fact any replica holds, unless a
/// snapshot install recorded that it could not fill them (`History::gap`): the rest of a torn
/// index is derived again when the entry is re-applied, or fetched with the facts a snapshot
/// covers (`docs/design/cluster-state-machine.md`). Losing facts to a snapshot of its own is
/// caught at the crash ([`Violation::FactsStranded`]).
fn compare_logs(logs: &BTreeMap<NodeId, FactsByIndex>, history: &History) {
    let mut longest: BTreeMap<u64, (NodeId, &Vec<Event>)> = BTreeMap::new();
    for (node, by_index) in logs {
        for (index, facts) in by_index {
            let (first, seen) = *longest.entry(*index).or_insert((*node, facts));
            if !seen.starts_with(facts) && !facts.starts_with(seen) {
                history.violate(Violation::FactsMismatch { index: *index, first, second: *node });
            } else if facts.len() > seen.len() {
                longest.insert(*index, (*node, facts));
            }
        }
    }
    for (node, by_index) in logs {
        for (index, (_, facts)) in &longest {
            let held = by_index.get(index).map_or(0, Vec::len);
            if held < facts.len() && !history.in_gap(*node, *index) {
                history.violate(Violation::FactsMissing { node: *node, index: *index });
            }
        }
    }
}

/// Every acknowledged transaction is in every replica's final pool, and every replica that
/// wrote facts for the acknowledged index wrote the facts the client was answered with.
fn check_acks(cluster: &SimCluster, logs: &BTreeMap<NodeId, FactsByIndex>, history: &History) {
    let acks = history.acks();
    for id in cluster.ids() {
        let Some(state) = cluster.state(id) else { continue };
        for ack in &acks {
            let missing =
                state.read(|v| ack.txs.iter().find(|h| v.mempool.get(h).is_none()).copied());
            if let Some(hash) = missing {
                history.violate(Violation::LostWrite { node: id, index: ack.index, hash });
            }
            let written = logs.get(&id).and_then(|l| l.get(&ack.index));
            if let Some(facts) = written {
                // A prefix, for the reasons `compare_logs` gives.
                let kinds: Vec<&EventKind> = facts.iter().map(|e| &e.kind).collect();
                if !ack.facts.iter().collect::<Vec<_>>().starts_with(&kinds) {
                    history.violate(Violation::AckMismatch { node: id, index: ack.index });
                }
            }
        }
    }
}
