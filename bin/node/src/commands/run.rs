//! `mempulse run`: opens the event log behind its sequencer, starts this node's Raft member
//! (its facts go to the event log), and serves until a signal; a leader hands leadership over
//! before it stops.

use std::{collections::BTreeMap, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use mempulse_cluster::{
    ClusterNode, FactSink, LogStoreConfig, NodeConfig as RaftNodeConfig, RaftNode,
    SINK_FULL_WAIT_MAX, TcpConfig, TcpTransport, WalFactSink,
};
use mempulse_primitives::NodeId;
use mempulse_wal::{Sequencer, SequencerConfig, SequencerHandle, Wal};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::info;

use crate::{cli::RunArgs, config::NodeConfig};

/// Bound on stopping the Raft node and closing its listener.
const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mempulse-worker")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: NodeConfig) -> anyhow::Result<()> {
    let sequencer = open_event_log(&config).await?;
    let served = serve_cluster(&config, &sequencer).await;
    info!("draining the event log");
    let drained = sequencer.shutdown().await.context("draining the event log");
    served?;
    drained?;
    info!(durable_seq = %*sequencer.durable().borrow(), "node stopped");
    Ok(())
}

async fn open_event_log(config: &NodeConfig) -> anyhow::Result<SequencerHandle> {
    let wal_config = config.event_log()?;
    let dir = wal_config.dir.clone();
    let wal = tokio::task::spawn_blocking(move || Wal::open(wal_config))
        .await
        .context("event log open task")?
        .with_context(|| format!("opening the event log in {}", dir.display()))?;
    let (first, last) = (wal.first_seq(), wal.last_seq());
    let sequencer = Sequencer::start(wal, SequencerConfig::default())?;
    info!(dir = %dir.display(), first_seq = %first, last_seq = %last, "event log opened");
    Ok(sequencer)
}

/// Runs the Raft member until a signal, then hands leadership over and stops it.
async fn serve_cluster(config: &NodeConfig, sequencer: &SequencerHandle) -> anyhow::Result<()> {
    let mut signal = ShutdownSignal::install()?;
    let cluster = &config.cluster;
    let id = cluster.id()?;
    let members = cluster.members()?;
    let raft_dir = config.raft_dir();
    let node_config = RaftNodeConfig::new(id, &raft_dir)
        .with_log(LogStoreConfig::new(&raft_dir))
        .with_raft(cluster.raft()?);
    let tcp = TcpConfig::new(id, cluster.listen_addr()?, config.tls.security()?)
        .with_bootstrap_members(members.keys().copied());
    let handle = sequencer.clone();
    let sink = tokio::task::spawn_blocking(move || WalFactSink::open(handle, SINK_FULL_WAIT_MAX))
        .await
        .context("fact sink open task")?
        .context("reading the event log's replicated tail")?;
    let transport = TcpTransport::bind(tcp).await.context("starting the raft transport")?;
    let sink: Arc<dyn FactSink> = Arc::new(sink);
    let node = RaftNode::start(node_config, sink, &transport)
        .await
        .with_context(|| format!("starting the raft node in {}", raft_dir.display()))?;
    let leader_log = node.log_leader_changes();
    let served = until_signal(config, &node, members, &mut signal).await;
    info!("shutting down");
    let handover = Duration::from_millis(cluster.handover_timeout_ms);
    if let Some(leader) = node.hand_over_leadership(handover).await {
        info!(node = id.0, leader = leader.0, "leadership handed over");
    }
    node.shutdown(NODE_STOP_TIMEOUT).await;
    leader_log.abort();
    if tokio::time::timeout(NODE_STOP_TIMEOUT, transport.stopped()).await.is_err() {
        tracing::warn!("raft listener did not close in time");
    }
    served
}

/// Initializes the cluster when asked to and this node has never been part of one, then waits
/// for a signal.
async fn until_signal(
    config: &NodeConfig,
    node: &RaftNode,
    members: BTreeMap<NodeId, ClusterNode>,
    signal: &mut ShutdownSignal,
) -> anyhow::Result<()> {
    if config.cluster.bootstrap {
        let count = members.len();
        if node.initialize_if_new(members).await.context("initializing the cluster")? {
            info!(members = count, "cluster initialized");
        }
    }
    info!(node = node.id().0, raft_dir = %config.raft_dir().display(), "node started");
    signal.recv().await;
    Ok(())
}

/// SIGTERM and SIGINT (Ctrl-C), installed before the node reports itself started, so a signal
/// that follows "node started" always takes the graceful path.
struct ShutdownSignal {
    term: Signal,
    interrupt: Signal,
}

impl ShutdownSignal {
    fn install() -> anyhow::Result<Self> {
        Ok(Self {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            interrupt: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    /// Resolves on the first of them.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
