//! The simulated clients and the fault schedule ("nemesis").
//!
//! A client submits `AddTxs` commands of fresh transactions (every one from its own sender, so
//! each is admitted exactly once when applied once) to the node it believes leads, follows
//! `ForwardToLeader` answers, and retries a write whose outcome is unknown with the same
//! transactions (a second application is then a deterministic duplicate rejection, never a
//! second admission). An acknowledged write is recorded with the index and facts it was
//! answered with.
//!
//! The nemesis draws one action at a time: crash a node (power loss, process crash or a torn
//! last write), restart it, partition the cluster (isolate the leader, or a random split),
//! heal, or change the network's delays and loss rate. At most `faults_max` faults (nodes down
//! plus an active partition) hold at once.

use std::{sync::Arc, time::Duration};

use mempulse_mempool::test_utils::tx;
use mempulse_primitives::{NodeId, TxHash, UnixMillis};
use mempulse_wal::test_utils::CrashMode;
use openraft::{ServerState, async_runtime::WatchReceiver, type_config::TypeConfigExt};

use super::{
    SimConfig,
    cluster::{SimCluster, WriteFailure},
    history::{Ack, History},
    network::{NetworkFaults, SimNetwork},
    rng::SimRng,
};
use crate::{ClusterCommand, ClusterRequest, SimTypeConfig};

/// Attempts of one write before the client gives up (its outcome stays unknown).
const WRITE_ATTEMPTS_MAX: u32 = 12;
/// How long a client waits for one attempt.
const WRITE_TIMEOUT: Duration = Duration::from_millis(400);
/// Senders of one client are `client * SENDERS_PER_CLIENT + k`.
const SENDERS_PER_CLIENT: u64 = 1 << 32;

/// Runs client `client` until `until` (virtual time since the run started), then finishes the
/// write in hand (bounded by its attempts).
pub(crate) async fn client(
    cluster: Arc<SimCluster>,
    history: History,
    seed: u64,
    client: u64,
    until: Duration,
) {
    let mut rng = SimRng::new(seed, 10 + client);
    let ids = cluster.ids();
    let mut hint: Option<NodeId> = None;
    let mut next_sender = client * SENDERS_PER_CLIENT;
    while history.elapsed() < until && !history.failed() {
        SimTypeConfig::sleep(Duration::from_millis(rng.between(5, 40))).await;
        let count = rng.between(1, 3);
        let txs: Vec<_> = (0..count)
            .map(|_| {
                next_sender += 1;
                tx(next_sender, 0, u128::from(rng.between(1, 1000)))
            })
            .collect();
        let hashes: Vec<TxHash> = txs.iter().map(|t| t.hash).collect();
        history.submitted(&hashes);
        let stamp = UnixMillis(u64::try_from(history.elapsed().as_millis()).unwrap_or(u64::MAX));
        let request = ClusterRequest::single(stamp, ClusterCommand::AddTxs(txs));
        for attempt in 1..=WRITE_ATTEMPTS_MAX {
            let pick = usize::try_from(rng.below(ids.len() as u64)).unwrap_or(0);
            let target = hint.or_else(|| ids.get(pick).copied()).unwrap_or(NodeId(1));
            match cluster.write(target, request.clone(), WRITE_TIMEOUT).await {
                Ok(response) => {
                    let index = response.log_id.index;
                    let facts = response
                        .data
                        .results
                        .into_iter()
                        .flat_map(|r| r.map(|o| o.facts).unwrap_or_default())
                        .collect();
                    history.note(format_args!(
                        "c{client} ack index {index} via n{} attempt {attempt}",
                        target.0
                    ));
                    history.ack(Ack { index, txs: hashes, facts });
                    hint = Some(target);
                    break;
                }
                Err(WriteFailure::NotLeader(Some(leader))) if leader != target => {
                    hint = Some(leader);
                }
                Err(WriteFailure::NotLeader(_) | WriteFailure::Unknown) => {
                    hint = None;
                    SimTypeConfig::sleep(Duration::from_millis(rng.between(10, 60))).await;
                }
            }
            if attempt == WRITE_ATTEMPTS_MAX {
                history.note(format_args!("c{client} gave up a write (outcome unknown)"));
            }
        }
    }
}

/// The node that leads the highest term among the running nodes, as they report it.
fn current_leader(cluster: &SimCluster) -> Option<NodeId> {
    let mut best: Option<(u64, NodeId)> = None;
    for id in cluster.ids() {
        let Some(raft) = cluster.raft(id) else { continue };
        let metrics = raft.metrics();
        let m = metrics.borrow_watched();
        if m.state == ServerState::Leader && best.is_none_or(|(term, _)| m.current_term > term) {
            best = Some((m.current_term, id));
        }
    }
    best.map(|(_, id)| id)
}

/// Injects faults until `until`, then heals the network and restarts every node.
pub(crate) async fn nemesis(
    cluster: Arc<SimCluster>,
    network: SimNetwork,
    history: History,
    config: SimConfig,
    seed: u64,
) {
    let mut rng = SimRng::new(seed, 2);
    let mut partitioned = false;
    while history.elapsed() < config.chaos && !history.failed() {
        let pause = rng.between(config.fault_every_min_ms, config.fault_every_max_ms);
        SimTypeConfig::sleep(Duration::from_millis(pause)).await;
        let down = cluster.down();
        let faults = down.len() + usize::from(partitioned);
        let ids = cluster.ids();
        let pick = |rng: &mut SimRng, from: &[NodeId]| {
            from.get(usize::try_from(rng.below(from.len() as u64)).unwrap_or(0)).copied()
        };
        match rng.below(10) {
            // Repair something, more eagerly the more is broken.
            0..=3 if faults > 0 => {
                if partitioned && (down.is_empty() || rng.chance(500)) {
                    network.heal();
                    partitioned = false;
                    history.note("network healed");
                } else if let Some(id) = pick(&mut rng, &down) {
                    cluster.start(id).await;
                }
            }
            _ if faults >= config.faults_max => {}
            4..=5 => {
                let target = if rng.chance(500) { current_leader(&cluster) } else { None };
                if let Some(id) = target.or_else(|| pick(&mut rng, &ids)) {
                    cluster.crash(id, crash_mode(&mut rng));
                }
            }
            6..=7 if !partitioned => {
                let groups = split(&mut rng, &ids, current_leader(&cluster));
                history.note(format_args!("partition {groups:?}"));
                network.partition(&groups);
                partitioned = true;
            }
            _ => {
                let faults = weather(&mut rng);
                history.note(format_args!(
                    "network loss {}‰ delay {}..{}µs",
                    faults.drop_per_mille,
                    faults.delay_min.as_micros(),
                    faults.delay_max.as_micros()
                ));
                network.set_faults(faults);
            }
        }
    }
    network.heal();
    network.set_faults(NetworkFaults::calm());
    history.note("chaos over: network healed and calm");
    for id in cluster.down() {
        cluster.start(id).await;
    }
}

fn crash_mode(rng: &mut SimRng) -> CrashMode {
    match rng.below(10) {
        0..=5 => CrashMode::DropUnsynced,
        6..=7 => CrashMode::KeepUnsynced,
        _ => CrashMode::TearLastWrite { keep: usize::try_from(rng.below(256)).unwrap_or(0) },
    }
}

/// Two partition groups: the leader alone (when known, half of the time), else a random
/// minority of one.
fn split(rng: &mut SimRng, ids: &[NodeId], leader: Option<NodeId>) -> Vec<Vec<NodeId>> {
    let alone = match leader {
        Some(id) if rng.chance(500) => id,
        _ => ids
            .get(usize::try_from(rng.below(ids.len() as u64)).unwrap_or(0))
            .copied()
            .unwrap_or(NodeId(1)),
    };
    vec![vec![alone], ids.iter().copied().filter(|id| *id != alone).collect()]
}

/// New network conditions: calm, lossy, slow, or reordering.
fn weather(rng: &mut SimRng) -> NetworkFaults {
    let calm = NetworkFaults::calm();
    match rng.below(4) {
        0 => calm,
        1 => NetworkFaults { drop_per_mille: rng.between(20, 200), ..calm },
        2 => NetworkFaults {
            delay_min: Duration::from_millis(5),
            delay_max: Duration::from_millis(rng.between(20, 80)),
            ..calm
        },
        _ => NetworkFaults {
            spike_per_mille: rng.between(50, 300),
            spike_max: Duration::from_millis(rng.between(50, 250)),
            drop_per_mille: rng.between(0, 50),
            ..calm
        },
    }
}
