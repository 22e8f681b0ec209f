//! `mempulse run`: opens the event log behind its sequencer, starts this node's Raft member
//! (its facts go to the event log), the live replayer, the ingest lanes and the HTTP API, and
//! serves until a signal; then stops them in reverse, a leader handing leadership over first.

use std::{process::ExitCode, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use mempulse_api::{MetricsRender, Services, WalEventLog, router};
use mempulse_cluster::{
    NodeConfig as RaftNodeConfig, PeerClient, RaftNode, SINK_FULL_WAIT_MAX, TcpConfig,
    TcpTransport, WalFactSink,
};
use mempulse_net::{FactWriter, Ingest, IngestHandle};
use mempulse_primitives::ValidatorId;
use mempulse_replay::ReplayConfig;
use mempulse_sink_clickhouse::{ClickHouseSink, LogSource, Progress};
use mempulse_wal::{Sequencer, SequencerConfig, SequencerHandle, Wal};
use tokio::{
    net::TcpListener,
    signal::unix::{Signal, SignalKind, signal},
    sync::oneshot,
    task::JoinHandle,
};
use tracing::{info, warn};

use crate::wiring::{CatalogCluster, NodePeers, PeerPlan};
use crate::{
    cli::RunArgs,
    config::NodeConfig,
    wiring::{
        self, BlockLink, BlockProducer, ClusterAdmission, Fence, FencedAdmission, Follower,
        History, HistoryOptions, LaneSubmit, NodeBlockHandler, NodeBlocks, NodePool, Observed,
        PeerBlockLink, ProducerOptions, ReplayerRoots, StreamListener, StreamOptions,
    },
};

/// Bound on stopping the Raft node and closing its listener.
const NODE_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on draining the ingest lanes at shutdown.
const INGEST_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let config = NodeConfig::load(args)?;
    // Everything is checked before the data directory is created or opened.
    config.validate()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mempulse-worker")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(config: NodeConfig) -> anyhow::Result<()> {
    let metrics = wiring::install_metrics()?;
    let sequencer = open_event_log(&config).await?;
    let served = serve_node(&config, &sequencer, metrics).await;
    info!("draining the event log");
    let drained = sequencer.shutdown().await.context("draining the event log");
    let follower = served?;
    follower.stopped().await;
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

/// Runs the Raft member, the replayer, the ingest lanes and the HTTP API until a signal, then
/// stops them in reverse: the API, the lanes (drained), leadership handed over, the member.
/// Returns the replayer's follower, which ends once the event log is drained.
async fn serve_node(
    config: &NodeConfig,
    sequencer: &SequencerHandle,
    metrics: MetricsRender,
) -> anyhow::Result<Follower> {
    let mut signal = ShutdownSignal::install()?;
    let (node, transport) = start_member(config, sequencer).await?;
    let node = Arc::new(node);
    let leader_log = node.log_leader_changes();
    let bootstrapped = bootstrap(config, &node).await;
    let started = match bootstrapped {
        Ok(()) => start_front(config, sequencer, &node, transport.client(), metrics).await,
        Err(error) => Err(error),
    };
    let served = match started {
        Ok(front) => {
            info!(
                node = node.id().0,
                raft_dir = %config.raft_dir().display(),
                http = %front.http_addr,
                stream = %front.streams.local_addr(),
                "node started"
            );
            signal.recv().await;
            info!("shutting down");
            Ok(front.stop().await)
        }
        Err(error) => Err(error),
    };
    stop_member(config, node, transport).await;
    leader_log.abort();
    served
}

/// Opens the Raft member over the TCP transport; its facts go to the event log.
async fn start_member(
    config: &NodeConfig,
    sequencer: &SequencerHandle,
) -> anyhow::Result<(RaftNode, TcpTransport)> {
    let cluster = &config.cluster;
    let id = cluster.id()?;
    let members = cluster.members()?;
    let raft_dir = config.raft_dir();
    let node_config = RaftNodeConfig::new(id, &raft_dir)
        .with_log(cluster.log_store(&raft_dir)?)
        .with_raft(cluster.raft()?)
        .with_apply_fault(wiring::mempool_test_fault()?);
    let tcp = TcpConfig::new(id, cluster.listen_addr()?, config.tls.security()?)
        .with_bootstrap_members(members.keys().copied());
    let handle = sequencer.clone();
    let sink = tokio::task::spawn_blocking(move || WalFactSink::open(handle, SINK_FULL_WAIT_MAX))
        .await
        .context("fact sink open task")?
        .context("reading the event log's replicated tail")?;
    let transport = TcpTransport::bind(tcp).await.context("starting the raft transport")?;
    let sink = wiring::with_test_fault(Arc::new(sink))?;
    let node = RaftNode::start(node_config, sink, &transport)
        .await
        .with_context(|| format!("starting the raft node in {}", raft_dir.display()))?;
    Ok((node, transport))
}

/// Initializes the cluster when asked to and this node has never been part of one.
async fn bootstrap(config: &NodeConfig, node: &RaftNode) -> anyhow::Result<()> {
    if config.cluster.bootstrap {
        let members = config.cluster.members()?;
        let count = members.len();
        if node.initialize_if_new(members).await.context("initializing the cluster")? {
            info!(members = count, "cluster initialized");
        }
    }
    Ok(())
}

/// The replayer, the ingest lanes and the HTTP API over them.
async fn start_front(
    config: &NodeConfig,
    sequencer: &SequencerHandle,
    node: &Arc<RaftNode>,
    peers: Arc<PeerClient>,
    metrics: MetricsRender,
) -> anyhow::Result<Front> {
    let options = HistoryOptions {
        dir: config.checkpoint_dir(),
        retain: config.replay.checkpoints_retained,
        policy: config.replay.policy(),
        replay: ReplayConfig::default(),
    };
    let log = sequencer.clone();
    let (history, follower) =
        tokio::task::spawn_blocking(move || History::start_blocking(&log, &options))
            .await
            .context("replay start task")??;
    let (fence, fence_rx) = Fence::new(sequencer.clone());
    let roots = ReplayerRoots::new(history.clone(), Arc::downgrade(node));
    node.service().serve_state_roots(Arc::new(roots));
    let options = config.fence.options();
    wiring::watch_peers(Arc::downgrade(node), peers, history.clone(), fence.clone(), options);
    let check = config.ingest.check(config.chain_id);
    let admission =
        Arc::new(FencedAdmission::new(ClusterAdmission::new(Arc::clone(node)), fence_rx.clone()));
    let ingest = Ingest::start(
        config.ingest.config()?,
        check.clone(),
        admission,
        FactWriter::new(sequencer.clone()),
    )
    .context("starting the ingest lanes")?;
    let plan = PeerPlan::new(config)?;
    plan.set_block_handler(Arc::new(NodeBlockHandler::new(node, check.clone())));
    let mut streams = wiring::listen(StreamOptions::new(config)?, &plan, ingest.clone()).await?;
    let (cluster, state) =
        wiring::state_views(node, &history, config.checkpoint_dir(), config.schedule.load()?).await;
    wiring::observe(Observed {
        node: Arc::downgrade(node),
        history: history.clone(),
        log: sequencer.clone(),
        fence: fence_rx.clone(),
        dirs: vec![
            ("events", config.event_log()?.dir),
            ("raft", config.raft_dir()),
            ("checkpoints", config.checkpoint_dir()),
        ],
    });
    let services = Services {
        txs: Arc::new(LaneSubmit::new(ingest.clone())),
        pool: Arc::new(NodePool::new(Arc::clone(node))),
        history: Arc::new(history),
        events: Arc::new(WalEventLog::from_sequencer(sequencer)),
        blocks: Arc::new(NodeBlocks::new(Arc::clone(node), check)),
        cluster: Arc::new(CatalogCluster::new(cluster, plan.catalog().clone())),
        state,
        fence: fence_rx,
        metrics,
    };
    let api_config = config.api.config(config.chain_id);
    let serve_options = api_config.serve_options();
    let addr = config.api.listen_addr()?;
    let listener =
        TcpListener::bind(addr).await.with_context(|| format!("binding the HTTP API on {addr}"))?;
    let http_addr = listener.local_addr().context("reading the HTTP API address")?;
    let peers = plan.start(node, streams.local_addr(), http_addr)?;
    let producer = start_producer(config, node, &peers)?;
    streams.attach_peers(peers);
    let (stop_api, stopped) = oneshot::channel::<()>();
    let api = tokio::spawn(mempulse_api::serve_with(
        listener,
        router(api_config, services),
        async move {
            let _ = stopped.await;
        },
        serve_options,
    ));
    let sink = start_sink(config, sequencer)?;
    Ok(Front { http_addr, api, stop_api, ingest, streams, follower, sink, producer, _fence: fence })
}

/// The block producer, when `[blocks] produce` is set (`[schedule]` is then configured); it
/// hands its blocks to the other clusters over the peer links.
fn start_producer(
    config: &NodeConfig,
    node: &Arc<RaftNode>,
    peers: &NodePeers,
) -> anyhow::Result<Option<BlockProducer>> {
    if !config.blocks.produce {
        return Ok(None);
    }
    let (Some((genesis, validator)), Some(slot)) =
        (config.schedule.load()?, config.schedule.slot()?)
    else {
        bail!("[blocks] produce = true needs [schedule] validators and validator-id");
    };
    let options = ProducerOptions {
        genesis,
        validator: ValidatorId(validator),
        slot,
        limits: config.blocks.limits(),
        broadcast_timeout: config.blocks.broadcast_timeout(slot.slot_duration),
    };
    let link = peers.links().map(|links| {
        Arc::new(PeerBlockLink::new(links.clone(), peers.catalog().clone())) as Arc<dyn BlockLink>
    });
    let check = config.ingest.check(config.chain_id);
    Ok(Some(BlockProducer::start(node, check, options, link)))
}

/// The ClickHouse export, when configured: a cursor over the durable log, stopped with the API.
fn start_sink(config: &NodeConfig, sequencer: &SequencerHandle) -> anyhow::Result<Option<Sink>> {
    let sink_config = config.sink.clickhouse.clone();
    if !sink_config.is_enabled() {
        return Ok(None);
    }
    let sink =
        ClickHouseSink::new(sink_config).context("invalid [sink.clickhouse] configuration")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(sink.run(LogSource::live(sequencer), async move {
        let _ = stopped.await;
    }));
    info!("clickhouse export started");
    Ok(Some(Sink { stop, task }))
}

/// The running ClickHouse export.
struct Sink {
    stop: oneshot::Sender<()>,
    task: JoinHandle<mempulse_sink_clickhouse::Result<Progress>>,
}

/// What serves clients: the API server and the lanes behind it.
struct Front {
    http_addr: std::net::SocketAddr,
    api: JoinHandle<std::io::Result<()>>,
    stop_api: oneshot::Sender<()>,
    ingest: IngestHandle,
    streams: StreamListener,
    follower: Follower,
    sink: Option<Sink>,
    producer: Option<BlockProducer>,
    /// The fence the API and the lanes watch (its comparison rounds hold a clone).
    _fence: Fence,
}

impl Front {
    /// Stops the API (open requests get its grace period) and the stream listener's accepting,
    /// then drains the lanes (open streams get `Close{shutting_down}`).
    async fn stop(self) -> Follower {
        if let Some(producer) = self.producer {
            producer.stop();
        }
        let mut streams = self.streams;
        streams.stop_accepting();
        let _ = self.stop_api.send(());
        match self.api.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(%error, "the HTTP API stopped with an error"),
            Err(error) => warn!(%error, "the HTTP API task failed"),
        }
        if let Err(error) = self.ingest.shutdown(INGEST_DRAIN_TIMEOUT).await {
            warn!(%error, "the ingest lanes did not drain in time");
        }
        streams.stopped().await;
        if let Some(sink) = self.sink {
            let _ = sink.stop.send(());
            match sink.task.await {
                Ok(Ok(progress)) => info!(?progress, "clickhouse export stopped"),
                Ok(Err(error)) => warn!(%error, "clickhouse export stopped with an error"),
                Err(error) => warn!(%error, "clickhouse export task failed"),
            }
        }
        self.follower
    }
}

/// Hands leadership over, then stops the Raft member and its listener. The member is shared
/// with the API and the lanes, which are stopped by now; their last handles go within a bound.
async fn stop_member(config: &NodeConfig, node: Arc<RaftNode>, transport: TcpTransport) {
    let handover = Duration::from_millis(config.cluster.handover_timeout_ms);
    if let Some(leader) = node.hand_over_leadership(handover).await {
        info!(node = node.id().0, leader = leader.0, "leadership handed over");
    }
    let deadline = tokio::time::Instant::now() + NODE_STOP_TIMEOUT;
    let mut node = node;
    loop {
        match Arc::try_unwrap(node) {
            Ok(owned) => {
                owned.shutdown(NODE_STOP_TIMEOUT).await;
                break;
            }
            Err(shared) if tokio::time::Instant::now() < deadline => {
                node = shared;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                warn!("the raft node is still shared at shutdown; stopping without its drain");
                break;
            }
        }
    }
    if tokio::time::timeout(NODE_STOP_TIMEOUT, transport.stopped()).await.is_err() {
        warn!("raft listener did not close in time");
    }
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
