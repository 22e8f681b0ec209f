//! The API's services on top of this node's ingest lanes and Raft member. Glue only: each
//! method forwards to the crate that owns the behaviour and translates its answer.

use std::{net::IpAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::future::{BoxFuture, join_all};
use mempulse_api::{
    BlockOps, BlockOutcome, BuildRequest, ClusterInfo, ClusterView, Consistency, PoolContent,
    PoolQuery, PoolStatus, Refusal, ReorgRequest, ServiceError, ServiceResult, TxSubmit, TxVerdict,
    Unavailable,
};
use mempulse_cluster::{ClientError, ClusterCommand, RaftNode, ReadConsistency, StateView};
use mempulse_mempool::{CommitBlock, OrphanedBlock, Reorg};
use mempulse_net::{
    AdmissionError, CheckConfig, DecodeFailure, IngestHandle, PoolVerdict, SourceId, TxError,
    TxOutcome, Verdict, decode_tx,
};
use mempulse_primitives::{Lane, RaftIndex, Subpool, Tx, TxHash};

/// `eth_sendRawTransaction` and `POST /v1/txs` through the ingest lanes.
#[derive(Clone, Debug)]
pub(crate) struct LaneSubmit {
    ingest: IngestHandle,
}

impl LaneSubmit {
    pub(crate) const fn new(ingest: IngestHandle) -> Self {
        Self { ingest }
    }
}

impl TxSubmit for LaneSubmit {
    fn submit(
        &self,
        lane: Lane,
        client: Option<IpAddr>,
        raws: Vec<Bytes>,
    ) -> BoxFuture<'_, ServiceResult<Vec<TxVerdict>>> {
        let source = client.map_or(SourceId::Local, SourceId::Client);
        // Every submission takes its place in its lane now, in input order.
        let pending: Vec<_> =
            raws.into_iter().map(|raw| self.ingest.submit(lane, source, raw)).collect();
        Box::pin(async move { join_all(pending).await.into_iter().map(tx_verdict).collect() })
    }
}

/// One ingest outcome as the API reports it; a batch the cluster could not answer fails the
/// request as a whole (503, retry).
fn tx_verdict(outcome: TxOutcome) -> ServiceResult<TxVerdict> {
    Ok(match outcome {
        TxOutcome::Accepted { hash, verdict } => match verdict {
            PoolVerdict::Admitted { subpool } | PoolVerdict::Replaced { subpool, .. } => {
                TxVerdict::Accepted { hash, subpool: Some(subpool) }
            }
            PoolVerdict::Rejected { reason } => {
                TxVerdict::Refused { hash: Some(hash), refusal: Refusal::Rejected(reason) }
            }
            other => {
                tracing::error!(?other, "unknown pool verdict");
                return Err(ServiceError::Unavailable(Unavailable::Overloaded));
            }
        },
        TxOutcome::Invalid(error) => {
            TxVerdict::Refused { hash: error.hash(), refusal: refusal(&error) }
        }
        TxOutcome::Dropped { reason, hash } => {
            TxVerdict::Refused { hash, refusal: Refusal::Dropped(reason) }
        }
        TxOutcome::Unavailable(error) => return Err(unavailable(error)),
        other => {
            tracing::error!(?other, "unknown ingest outcome");
            return Err(ServiceError::Unavailable(Unavailable::Overloaded));
        }
    })
}

/// Why the bytes were refused, in the API's terms.
fn refusal(error: &TxError) -> Refusal {
    match (error, error.verdict()) {
        (TxError::Decode(DecodeFailure::UnsupportedType { .. }), _) => Refusal::UnsupportedType,
        (_, Verdict::Reject(reason)) => Refusal::Rejected(reason),
        (_, Verdict::Drop(mempulse_primitives::DropReason::Oversize)) => {
            Refusal::Dropped(mempulse_primitives::DropReason::Oversize)
        }
        _ => Refusal::Malformed,
    }
}

const fn unavailable(error: AdmissionError) -> ServiceError {
    ServiceError::Unavailable(match error {
        AdmissionError::NoLeader => Unavailable::NoLeader,
        AdmissionError::ShuttingDown => Unavailable::ShuttingDown,
        AdmissionError::Timeout | AdmissionError::Indeterminate => Unavailable::Timeout,
        _ => Unavailable::Overloaded,
    })
}

const fn client_error(error: &ClientError) -> Unavailable {
    match error {
        ClientError::Stopped => Unavailable::ShuttingDown,
        ClientError::Overloaded { .. } | ClientError::TooLarge { .. } => Unavailable::Overloaded,
        ClientError::Indeterminate { .. } => Unavailable::Timeout,
        _ => Unavailable::NoLeader,
    }
}

/// How long a linearizable pool read may wait for a read index from the leader (riding out
/// an election, ~300 ms with the default timings) and for this node to apply through it.
/// Well under the API's request timeout (10 s by default), so a refusal names its reason.
const LINEARIZABLE_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Pool queries on this node's replicated state: weak reads as the state is (a follower may
/// lag its leader slightly), linearizable reads after the read-index protocol
/// ([`RaftNode::read_linearizable`], served by any member).
#[derive(Clone, Debug)]
pub(crate) struct NodePool {
    node: Arc<RaftNode>,
}

impl NodePool {
    pub(crate) const fn new(node: Arc<RaftNode>) -> Self {
        Self { node }
    }

    async fn read<R>(
        &self,
        consistency: Consistency,
        read: impl FnOnce(StateView<'_>) -> R,
    ) -> ServiceResult<R> {
        let result = match consistency {
            Consistency::Weak => self.node.read(ReadConsistency::Weak, read).await,
            Consistency::Linearizable => {
                self.node.read_linearizable(LINEARIZABLE_READ_TIMEOUT, read).await
            }
        };
        result.map_err(|e| ServiceError::Unavailable(read_error(&e)))
    }
}

/// Why a pool read failed, in the API's terms.
const fn read_error(error: &ClientError) -> Unavailable {
    match error {
        ClientError::NoQuorum => Unavailable::NoQuorum,
        ClientError::LeaderUnreachable { .. } => Unavailable::LeaderUnreachable,
        other => client_error(other),
    }
}

impl PoolQuery for NodePool {
    fn transaction(
        &self,
        hash: TxHash,
        consistency: Consistency,
    ) -> BoxFuture<'_, ServiceResult<Option<(Tx, Subpool)>>> {
        Box::pin(self.read(consistency, move |view| {
            view.mempool.get(&hash).map(|(tx, subpool)| (tx.clone(), subpool))
        }))
    }

    fn status(&self, consistency: Consistency) -> BoxFuture<'_, ServiceResult<PoolStatus>> {
        Box::pin(self.read(consistency, |view| PoolStatus {
            pending: view.mempool.pending_len() as u64,
            queued: view.mempool.queued_len() as u64,
            applied: view.applied.map(|a| RaftIndex(a.index)),
        }))
    }

    fn content(
        &self,
        max_txs: usize,
        consistency: Consistency,
    ) -> BoxFuture<'_, ServiceResult<PoolContent>> {
        Box::pin(self.read(consistency, move |view| {
            PoolContent {
                txs: view
                    .mempool
                    .senders()
                    .flat_map(|sender| sender.txs())
                    .take(max_txs)
                    .map(|(tx, subpool)| (tx.clone(), subpool))
                    .collect(),
                total: view.mempool.len() as u64,
            }
        }))
    }
}

/// Block build, commit and reorg as cluster writes.
#[derive(Clone, Debug)]
pub(crate) struct NodeBlocks {
    node: Arc<RaftNode>,
    check: CheckConfig,
}

impl NodeBlocks {
    pub(crate) const fn new(node: Arc<RaftNode>, check: CheckConfig) -> Self {
        Self { node, check }
    }

    async fn write(&self, command: ClusterCommand) -> ServiceResult<BlockOutcome> {
        let response = self
            .node
            .write(command)
            .await
            .map_err(|e| ServiceError::Unavailable(client_error(&e)))?;
        let outcome = response.result.map_err(ServiceError::Conflict)?;
        Ok(BlockOutcome {
            raft_index: Some(response.index),
            facts: outcome.facts,
            block: outcome.block,
        })
    }

    /// Decodes the orphaned blocks' transactions (the chain already included them, so only
    /// decoding and sender recovery matter; stateless rules are checked as for any lane).
    fn orphaned(&self, request: &ReorgRequest) -> ServiceResult<Vec<OrphanedBlock>> {
        request
            .orphaned
            .iter()
            .map(|block| {
                let txs = block
                    .txs
                    .iter()
                    .enumerate()
                    .map(|(index, raw)| {
                        decode_tx(raw.clone(), &self.check).map_err(|error| {
                            ServiceError::InvalidTx {
                                height: block.height,
                                index: u32::try_from(index).unwrap_or(u32::MAX),
                                refusal: refusal(&error),
                            }
                        })
                    })
                    .collect::<ServiceResult<Vec<Tx>>>()?;
                Ok(OrphanedBlock { height: block.height, txs })
            })
            .collect()
    }
}

impl BlockOps for NodeBlocks {
    fn build(&self, request: BuildRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        Box::pin(self.write(ClusterCommand::BuildBlock {
            limits: request.limits,
            proposer: request.proposer,
        }))
    }

    fn commit(&self, request: CommitBlock) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        Box::pin(self.write(ClusterCommand::CommitBlock(request)))
    }

    fn reorg(&self, request: ReorgRequest) -> BoxFuture<'_, ServiceResult<BlockOutcome>> {
        Box::pin(async move {
            let orphaned = self.orphaned(&request)?;
            let reorg = Reorg {
                fork_height: request.fork_height,
                orphaned,
                nonces: request.nonces,
                base_fee_per_gas: request.base_fee_per_gas,
            };
            self.write(ClusterCommand::Reorg(reorg)).await
        })
    }
}

/// Cluster status from the Raft metrics.
#[derive(Clone, Debug)]
pub(crate) struct NodeCluster {
    node: Arc<RaftNode>,
}

impl NodeCluster {
    pub(crate) const fn new(node: Arc<RaftNode>) -> Self {
        Self { node }
    }
}

impl ClusterInfo for NodeCluster {
    fn status(&self) -> ClusterView {
        ClusterView::from(&self.node.status())
    }
}
