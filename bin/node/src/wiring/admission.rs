//! The ingest lanes' [`Admission`] on top of the Raft cluster: each batch becomes one
//! `AddTxs` write, and the pool's replicated facts become one verdict per transaction.

use std::{collections::BTreeMap, sync::Arc};

use mempulse_cluster::{ClientError, ClusterCommand, RaftNode};
use mempulse_mempool::Outcome;
use mempulse_net::{Admission, AdmissionError, AdmissionFuture, PoolVerdict};
use mempulse_primitives::{EventKind, Tx, TxHash};

/// Writes ingest batches through the cluster (a follower forwards them to the leader).
#[derive(Clone, Debug)]
pub(crate) struct ClusterAdmission {
    node: Arc<RaftNode>,
}

impl ClusterAdmission {
    pub(crate) const fn new(node: Arc<RaftNode>) -> Self {
        Self { node }
    }
}

impl Admission for ClusterAdmission {
    fn admit(&self, txs: Vec<Tx>) -> AdmissionFuture {
        let node = Arc::clone(&self.node);
        let hashes: Vec<TxHash> = txs.iter().map(|tx| tx.hash).collect();
        Box::pin(async move {
            let response =
                node.write(ClusterCommand::AddTxs(txs)).await.map_err(|e| admission_error(&e))?;
            let outcome = response.result.map_err(|error| {
                tracing::warn!(%error, index = %response.index, "the pool refused an ingest batch");
                AdmissionError::Refused
            })?;
            verdicts(&hashes, &outcome)
        })
    }
}

/// One verdict per hash, in order, read from the facts applying the batch derived.
fn verdicts(hashes: &[TxHash], outcome: &Outcome) -> Result<Vec<PoolVerdict>, AdmissionError> {
    let mut by_hash: BTreeMap<TxHash, PoolVerdict> = BTreeMap::new();
    let mut replaced: BTreeMap<TxHash, TxHash> = BTreeMap::new();
    for fact in &outcome.facts {
        match fact {
            EventKind::TxReplaced { old, new, .. } => {
                replaced.insert(*new, *old);
            }
            EventKind::TxAdmitted { tx, subpool } => {
                let subpool = *subpool;
                let verdict = match replaced.get(&tx.hash) {
                    Some(&old) => PoolVerdict::Replaced { old, subpool },
                    None => PoolVerdict::Admitted { subpool },
                };
                by_hash.entry(tx.hash).or_insert(verdict);
            }
            EventKind::TxRejected { hash, reason } => {
                by_hash.entry(*hash).or_insert(PoolVerdict::Rejected { reason: *reason });
            }
            _ => {}
        }
    }
    hashes
        .iter()
        .map(|hash| {
            by_hash.get(hash).copied().ok_or_else(|| {
                tracing::error!(%hash, "the pool derived no admission fact for a transaction");
                AdmissionError::VerdictCountMismatch
            })
        })
        .collect()
}

const fn admission_error(error: &ClientError) -> AdmissionError {
    match error {
        ClientError::Overloaded { .. } => AdmissionError::Overloaded,
        ClientError::Indeterminate { .. } => AdmissionError::Indeterminate,
        ClientError::TooLarge { .. } => AdmissionError::Refused,
        ClientError::Stopped => AdmissionError::ShuttingDown,
        // Not the leader and none reachable, no quorum: nothing was written.
        _ => AdmissionError::NoLeader,
    }
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::{Address, Nonce, RejectReason, Subpool};

    use super::*;

    fn hash(n: u8) -> TxHash {
        TxHash([n; 32])
    }

    fn admitted(n: u8, subpool: Subpool) -> EventKind {
        let mut tx = mempulse_mempool::test_utils::tx(u64::from(n), 0, 1);
        tx.hash = hash(n);
        EventKind::TxAdmitted { tx, subpool }
    }

    #[test]
    fn facts_become_one_verdict_per_transaction_in_batch_order() {
        let facts = vec![
            EventKind::TxRejected { hash: hash(3), reason: RejectReason::NonceTooLow },
            EventKind::TxReplaced {
                old: hash(9),
                new: hash(2),
                sender: Address::default(),
                nonce: Nonce(0),
            },
            admitted(2, Subpool::Pending),
            admitted(1, Subpool::Queued),
        ];
        let outcome = Outcome { facts, block: None };
        let got = verdicts(&[hash(1), hash(2), hash(3)], &outcome).unwrap();
        assert_eq!(
            got,
            [
                PoolVerdict::Admitted { subpool: Subpool::Queued },
                PoolVerdict::Replaced { old: hash(9), subpool: Subpool::Pending },
                PoolVerdict::Rejected { reason: RejectReason::NonceTooLow },
            ]
        );
        assert_eq!(
            verdicts(&[hash(4)], &outcome),
            Err(AdmissionError::VerdictCountMismatch),
            "a transaction without a fact is an error, not a guess"
        );
    }

    #[test]
    fn client_errors_map_to_retryable_or_final_admission_errors() {
        assert_eq!(admission_error(&ClientError::Stopped), AdmissionError::ShuttingDown);
        assert_eq!(admission_error(&ClientError::NoQuorum), AdmissionError::NoLeader);
        assert_eq!(
            admission_error(&ClientError::Overloaded { capacity: 1 }),
            AdmissionError::Overloaded
        );
        assert_eq!(
            admission_error(&ClientError::TooLarge { bytes: 2, max: 1 }),
            AdmissionError::Refused
        );
    }
}
