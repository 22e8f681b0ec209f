//! Deterministic simulation of a mempulse cluster (feature `sim`): the product's log store,
//! state machine and openraft on openraft's simulated runtime, with a seeded network (delays,
//! loss, reordering, partitions), crashes that keep only what the disks synced, restarts from
//! those disks, a client workload, and invariant checks. A seed reproduces the run exactly.
//!
//! ```text
//!  SimRuntime::with_seed(seed) ── one thread, FIFO tasks, virtual time, seeded randomness
//!   ├─ n nodes: LogStore (mempulse-wal on SimStorage; writer as a task, seeded fsync delay)
//!   │           ClusterStateMachine (mempool; snapshots on SimStorage; facts → event log)
//!   │           openraft::Raft<SimTypeConfig> ◄──► SimNetwork (seeded delays, loss, partitions)
//!   ├─ clients: AddTxs of fresh txs, follow ForwardToLeader, retry unknown outcomes
//!   ├─ nemesis: crash (power loss / process crash / torn write), restart, partition, heal
//!   └─ checks:  one leader per term, equal digests at equal indexes (sampled), and at the end,
//!               once healed and converged: equal states, equal facts per index, no index
//!               applied twice, every acknowledged write on every replica exactly once
//! ```
//! What is and is not simulated, and how to reproduce a seed: `docs/design/cluster-simulation.md`.

mod check;
mod cluster;
mod disk;
mod facts;
mod history;
mod network;
mod rng;
mod workload;

use std::{fmt, sync::Arc, time::Duration};

use mempulse_primitives::{Digest, NodeId};
use mempulse_wal::MIN_SEGMENT_SIZE_BYTES;
use openraft::{async_runtime::AsyncRuntime, type_config::TypeConfigExt};
use openraft_rt_sim::SimRuntime;

use self::{cluster::SimCluster, history::History};
pub use self::{
    history::Violation,
    network::{NetworkFaults, NetworkStats, SimConnection, SimFactory, SimLinkError, SimNetwork},
};
use crate::{ClusterStateMachine, LogStoreConfig, RaftConfig, SimTypeConfig, types::LogId};

/// The openraft handle of a simulated node.
pub type SimRaft = openraft::Raft<SimTypeConfig, ClusterStateMachine>;

/// The shape of a simulated run. `Default` is what CI runs for every seed.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SimConfig {
    /// Voters in the cluster.
    pub nodes: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// Virtual time during which clients write and faults are injected.
    pub chaos: Duration,
    /// Longest virtual time the healed cluster gets to converge before the run fails.
    pub settle_max: Duration,
    /// Shortest pause between two fault actions, in virtual ms.
    pub fault_every_min_ms: u64,
    /// Longest pause between two fault actions, in virtual ms.
    pub fault_every_max_ms: u64,
    /// Most faults (nodes down plus an active partition) at once.
    pub faults_max: usize,
    /// How often a running replica's state digest is sampled.
    pub sample_every: Duration,
    /// Raft settings: the product's defaults with snapshot thresholds small enough that runs
    /// build, send and install snapshots and purge the log.
    pub raft: RaftConfig,
    /// WAL segment size of the Raft log (small, so purges remove segments).
    pub segment_size_bytes: u64,
    /// Let a restarted leader resume its old term without an election (openraft's
    /// `enable_leader_restore`, which the product turns off). Unsafe under power loss: it
    /// exists so a test can show the checks catch the divergence it causes.
    pub leader_restore: bool,
    /// Record the simulated runtime's own trace (every spawn, poll, wake, timer and random
    /// draw) into [`SimReport::runtime_trace`]; costly, for determinism checks.
    pub record_runtime_trace: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 3,
            clients: 2,
            chaos: Duration::from_secs(2),
            settle_max: Duration::from_secs(30),
            fault_every_min_ms: 50,
            fault_every_max_ms: 400,
            faults_max: 2,
            sample_every: Duration::from_millis(100),
            raft: RaftConfig {
                snapshot_logs_since_last: 40,
                max_in_snapshot_log_to_keep: 8,
                replication_lag_threshold: 60,
                max_payload_entries: 32,
                ..RaftConfig::default()
            },
            segment_size_bytes: 4 * MIN_SEGMENT_SIZE_BYTES,
            leader_restore: false,
            record_runtime_trace: false,
        }
    }
}

/// What a run that kept every invariant did.
#[derive(Clone, Debug)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// The run's own event log: faults, restarts, leaders, acknowledgements, each stamped with
    /// virtual time. Two runs of one seed produce the same lines.
    pub trace: Vec<String>,
    /// The simulated runtime's scheduling trace (empty unless
    /// [`SimConfig::record_runtime_trace`]).
    pub runtime_trace: Vec<String>,
    /// Writes clients were told were applied.
    pub acked: usize,
    /// Transactions clients submitted.
    pub submitted: usize,
    /// The log id every replica applied at the end.
    pub applied: Option<LogId>,
    /// The state digest every replica holds at the end.
    pub digest: Option<Digest>,
    /// Terms that had a leader.
    pub terms: usize,
    /// Terms won by two candidates (openraft's advanced leader id allows it: the leader id is
    /// `(term, node)`, the higher one supersedes the lower, and their entries never share a
    /// log id).
    pub shared_terms: usize,
    /// What the network did.
    pub network: NetworkStats,
    /// Virtual time the run took.
    pub virtual_time: Duration,
}

/// A run that broke an invariant.
#[derive(Debug)]
pub struct SimFailure {
    /// The seed that reproduces it.
    pub seed: u64,
    /// The first invariant broken.
    pub violation: Violation,
    /// The run's event log up to the end.
    pub trace: Vec<String>,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "simulation seed {} failed: {}", self.seed, self.violation)
    }
}

impl std::error::Error for SimFailure {}

/// Runs one simulated cluster on a fresh simulated runtime seeded with `seed`.
///
/// # Errors
/// [`SimFailure`] with the first invariant the run broke and its event log.
///
/// # Panics
/// When the simulated runtime deadlocks (every task waits and no timer is pending), or when a
/// task of the product panics.
pub fn run_seed(seed: u64, config: &SimConfig) -> Result<SimReport, SimFailure> {
    let mut runtime = SimRuntime::with_seed(seed);
    runtime.record_trace(config.record_runtime_trace);
    let outcome = runtime.block_on(run(seed, config.clone()));
    let runtime_trace = runtime.take_trace();
    drop(runtime);
    let (mut report, violation) = outcome;
    match violation {
        None => {
            report.runtime_trace = runtime_trace;
            Ok(report)
        }
        Some(violation) => Err(SimFailure { seed, violation, trace: report.trace }),
    }
}

async fn run(seed: u64, config: SimConfig) -> (SimReport, Option<Violation>) {
    let history = History::new();
    let network = SimNetwork::new(seed);
    let log_config = LogStoreConfig::new("sim").with_segment_size_bytes(config.segment_size_bytes);
    let mut report = SimReport {
        seed,
        trace: Vec::new(),
        runtime_trace: Vec::new(),
        acked: 0,
        submitted: 0,
        applied: None,
        digest: None,
        terms: 0,
        shared_terms: 0,
        network: NetworkStats::default(),
        virtual_time: Duration::ZERO,
    };
    let cluster = match SimCluster::new(seed, &config, log_config, network.clone(), history.clone())
    {
        Ok(cluster) => Arc::new(cluster),
        Err(error) => {
            history.violate(Violation::Start { node: NodeId(0), error: Arc::new(error) });
            let (trace, violation) = history.finish();
            report.trace = trace;
            return (report, violation);
        }
    };
    chaos(&cluster, &network, &history, &config, seed).await;
    settle(&cluster, &history, &config, &mut report).await;
    cluster.shutdown().await;
    report.acked = history.acks().len();
    report.submitted = history.all_submitted().len();
    (report.terms, report.shared_terms) = history.terms();
    report.network = network.stats();
    report.virtual_time = history.elapsed();
    let (trace, violation) = history.finish();
    report.trace = trace;
    (report, violation)
}

/// Starts the cluster and runs the clients, the nemesis and the digest sampler until the
/// chaos phase is over and every client finished its last write.
async fn chaos(
    cluster: &Arc<SimCluster>,
    network: &SimNetwork,
    history: &History,
    config: &SimConfig,
    seed: u64,
) {
    for id in cluster.ids() {
        cluster.start(id).await;
    }
    if let Some(raft) = cluster.raft(NodeId(1))
        && let Err(e) = raft.initialize(cluster.members()).await
    {
        history.note(format_args!("initialize failed: {e}"));
    }
    let clients: Vec<_> = (0..config.clients)
        .map(|client| {
            SimTypeConfig::spawn(workload::client(
                Arc::clone(cluster),
                history.clone(),
                seed,
                client,
                config.chaos,
            ))
        })
        .collect();
    let nemesis = SimTypeConfig::spawn(workload::nemesis(
        Arc::clone(cluster),
        network.clone(),
        history.clone(),
        config.clone(),
        seed,
    ));
    while history.elapsed() < config.chaos && !history.failed() {
        SimTypeConfig::sleep(config.sample_every).await;
        check::sample_digests(cluster, history);
    }
    let _ = nemesis.await;
    for client in clients {
        let _ = client.await;
    }
}

/// Waits (bounded) for the healed cluster to converge, then runs the final checks.
async fn settle(
    cluster: &SimCluster,
    history: &History,
    config: &SimConfig,
    report: &mut SimReport,
) {
    if history.failed() {
        return;
    }
    let started = history.elapsed();
    loop {
        if let Some(applied) = check::converged(cluster) {
            history.note(format_args!("converged at index {}", applied.index));
            report.applied = Some(applied);
            report.digest = check::final_checks(cluster, applied, history);
            return;
        }
        let waited = history.elapsed() - started;
        if waited > config.settle_max {
            history.violate(Violation::NoConvergence { waited });
            return;
        }
        SimTypeConfig::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calm_run_converges_and_acknowledges_writes() {
        let config = SimConfig { faults_max: 0, ..SimConfig::default() };
        let report = run_seed(1, &config).unwrap();
        assert!(report.acked > 10, "{report:?}");
        assert!(report.digest.is_some());
    }
}
