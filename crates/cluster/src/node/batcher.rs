//! The leader's write batcher: many concurrent client commands become few log entries.
//!
//! ```text
//!  write() ──► queue (bounded) ──► batcher: take one, then every queued write that fits the
//!                                  limits ──► ClusterRequest { stamped_at, commands } ──► Raft
//!                                            (submitted in order, not awaited)
//!                                  in-flight (bounded) ──► completer: await each entry's
//!                                  ApplyResponse in order; result i goes to caller i
//! ```
//! Each command of an entry is applied on its own (one mempool call, one outcome), so a caller
//! gets exactly the facts of its own command: the split needs no bookkeeping beyond positions.

use std::time::{SystemTime, UNIX_EPOCH};

use mempulse_primitives::UnixMillis;
use openraft::{errors::ClientWriteError, impls::ProgressResponder, raft::ClientWriteResult};
use tokio::sync::{mpsc, oneshot};

use super::ClusterRaft;
use crate::{
    ClientError, ClusterCommand, ClusterRequest, ClusterResponse, TypeConfig,
    config::{BatchConfig, WRITES_IN_FLIGHT_MAX},
};

/// The answer channel of one client write.
pub(crate) type WriteReply = oneshot::Sender<Result<ClusterResponse, ClientError>>;

/// One client write waiting for the batcher.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub(crate) command: ClusterCommand,
    pub(crate) reply: WriteReply,
}

/// An entry proposed to Raft whose result has not been handed back yet.
struct InFlight {
    answer: oneshot::Receiver<ClientWriteResult<TypeConfig>>,
    replies: Vec<WriteReply>,
}

/// Bytes a transaction's fixed fields take in an entry besides its raw encoding (hash, sender,
/// nonce, gas, fees, type, chain id, lengths), rounded up.
const TX_OVERHEAD_BYTES: u64 = 128;

/// Bytes of `txs` in an entry (raw encodings plus fixed fields).
fn txs_bytes(txs: &[mempulse_primitives::Tx]) -> u64 {
    txs.iter().map(|tx| u64::from(tx.encoded_size).saturating_add(TX_OVERHEAD_BYTES)).sum()
}

/// Transactions a command adds and an upper estimate of its bytes in an entry.
pub(crate) fn weight(command: &ClusterCommand) -> (usize, u64) {
    match command {
        ClusterCommand::AddTxs(txs) => (txs.len(), txs_bytes(txs)),
        ClusterCommand::BuildBlock { .. } => (0, TX_OVERHEAD_BYTES),
        ClusterCommand::CommitBlock(block) => {
            let fields = (block.txs.len() + block.nonces.len()) as u64;
            (0, fields.saturating_mul(32).saturating_add(TX_OVERHEAD_BYTES))
        }
        ClusterCommand::Reorg(reorg) => {
            let txs = reorg.orphaned.iter().map(|b| txs_bytes(&b.txs)).sum::<u64>();
            let nonces = (reorg.nonces.len() as u64).saturating_mul(32);
            (0, txs.saturating_add(nonces).saturating_add(TX_OVERHEAD_BYTES))
        }
    }
}

/// The commands of one entry being assembled.
struct Batch {
    commands: Vec<ClusterCommand>,
    replies: Vec<WriteReply>,
    txs: usize,
    bytes: u64,
}

impl Batch {
    fn new() -> Self {
        Self { commands: Vec::new(), replies: Vec::new(), txs: 0, bytes: 0 }
    }

    /// Whether `write` may join (the first write always does, whatever its size).
    fn fits(&self, write: &PendingWrite, limits: &BatchConfig) -> bool {
        if self.commands.is_empty() {
            return true;
        }
        let (txs, bytes) = weight(&write.command);
        self.commands.len() < limits.commands_max
            && self.txs.saturating_add(txs) <= limits.txs_max
            && self.bytes.saturating_add(bytes) <= limits.tx_bytes_max
    }

    fn push(&mut self, write: PendingWrite) {
        let (txs, bytes) = weight(&write.command);
        self.txs = self.txs.saturating_add(txs);
        self.bytes = self.bytes.saturating_add(bytes);
        self.commands.push(write.command);
        self.replies.push(write.reply);
    }
}

/// Wall-clock milliseconds, never below the previous stamp of this batcher. Read by the leader
/// only; replicas copy the stamp from the entry.
fn stamp(last: &mut UnixMillis) -> UnixMillis {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let now = UnixMillis(u64::try_from(now.as_millis()).unwrap_or(u64::MAX));
    *last = now.max(*last);
    *last
}

/// Runs until the write queue closes (the node shuts down), then waits for the entries in
/// flight to be answered.
pub(crate) async fn run(
    raft: ClusterRaft,
    mut queue: mpsc::Receiver<PendingWrite>,
    limits: BatchConfig,
) {
    let (in_flight, proposed) = mpsc::channel(WRITES_IN_FLIGHT_MAX);
    let completer = tokio::spawn(complete(proposed));
    let mut carry: Option<PendingWrite> = None;
    let mut last_stamp = UnixMillis(0);
    loop {
        let first = match carry.take() {
            Some(write) => write,
            None => match queue.recv().await {
                Some(write) => write,
                None => break,
            },
        };
        let mut batch = Batch::new();
        batch.push(first);
        while let Ok(write) = queue.try_recv() {
            if !batch.fits(&write, &limits) {
                carry = Some(write);
                break;
            }
            batch.push(write);
        }
        let Batch { commands, replies, .. } = batch;
        tracing::debug!(commands = commands.len(), "proposing batch");
        let request = ClusterRequest { stamped_at: stamp(&mut last_stamp), commands };
        let (responder, answer) = ProgressResponder::complete_only();
        if raft.write(request).responder(responder).await.is_err() {
            for reply in replies {
                let _ = reply.send(Err(ClientError::Stopped));
            }
            continue;
        }
        if in_flight.send(InFlight { answer, replies }).await.is_err() {
            break;
        }
    }
    drop(in_flight);
    // The completer ends after answering everything in flight.
    let _ = completer.await;
}

/// Hands each proposed entry's results back to its callers, in proposal order.
async fn complete(mut proposed: mpsc::Receiver<InFlight>) {
    while let Some(InFlight { answer, replies }) = proposed.recv().await {
        let results: Vec<Result<ClusterResponse, ClientError>> = match answer.await {
            Ok(Ok(response)) => {
                let index = response.data.index;
                let mut results = response.data.results.into_iter();
                (0..replies.len())
                    .map(|_| {
                        // The entry holds exactly one command per reply, so the state machine
                        // returns one result per reply.
                        results
                            .next()
                            .map(|result| ClusterResponse { index, result })
                            .ok_or(ClientError::Stopped)
                    })
                    .collect()
            }
            Ok(Err(e)) => {
                let error = write_error(e);
                replies.iter().map(|_| Err(error.clone())).collect()
            }
            Err(_) => replies.iter().map(|_| Err(ClientError::Stopped)).collect(),
        };
        for (reply, result) in replies.into_iter().zip(results) {
            // A dropped receiver means the caller gave up waiting.
            let _ = reply.send(result);
        }
    }
}

fn write_error(e: ClientWriteError<TypeConfig>) -> ClientError {
    match e {
        ClientWriteError::ForwardToLeader(f) => ClientError::forward(f),
        ClientWriteError::LogEntryDiscarded(f) => {
            ClientError::Indeterminate { leader_id: f.leader_id, leader: f.leader_node }
        }
        // Normal entries carry no membership change and no precondition.
        ClientWriteError::ChangeMembershipError(_) | ClientWriteError::PreconditionFailed(_) => {
            ClientError::Stopped
        }
    }
}

#[cfg(test)]
mod tests {
    use mempulse_mempool::test_utils::tx;

    use super::*;

    fn write(command: ClusterCommand) -> PendingWrite {
        PendingWrite { command, reply: oneshot::channel().0 }
    }

    #[test]
    fn batch_limits_apply_after_the_first_write() {
        let limits = BatchConfig {
            commands_max: 3,
            txs_max: 4,
            tx_bytes_max: 1 << 20,
            ..BatchConfig::default()
        };
        let mut batch = Batch::new();
        let big = write(ClusterCommand::AddTxs((0..9).map(|i| tx(i, 0, 1)).collect()));
        assert!(batch.fits(&big, &limits), "the first write always fits");
        batch.push(write(ClusterCommand::AddTxs(vec![tx(1, 0, 1), tx(2, 0, 1)])));
        assert!(!batch.fits(&big, &limits), "txs over the limit");
        let two = write(ClusterCommand::AddTxs(vec![tx(3, 0, 1), tx(4, 0, 1)]));
        assert!(batch.fits(&two, &limits));
        batch.push(two);
        let reorg = write(ClusterCommand::BuildBlock {
            limits: mempulse_mempool::BlockLimits { max_bytes: None, max_gas: None },
            proposer: mempulse_primitives::ValidatorId(1),
        });
        assert!(batch.fits(&reorg, &limits));
        batch.push(reorg);
        let empty = write(ClusterCommand::AddTxs(vec![]));
        assert!(!batch.fits(&empty, &limits), "commands over the limit");
        assert_eq!(
            (batch.txs, batch.bytes),
            (4, 4 * (100 + TX_OVERHEAD_BYTES) + TX_OVERHEAD_BYTES)
        );
    }

    #[test]
    fn stamps_never_go_back() {
        let mut last = UnixMillis(u64::MAX - 1);
        assert_eq!(stamp(&mut last), UnixMillis(u64::MAX - 1));
        let mut last = UnixMillis(0);
        let first = stamp(&mut last);
        assert!(first.0 > 1_600_000_000_000);
        assert!(stamp(&mut last) >= first);
    }
}
