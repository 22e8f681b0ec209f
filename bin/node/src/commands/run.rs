//! `mempulse run`: opens the event log behind its sequencer and serves until a signal.

use std::process::ExitCode;

use anyhow::Context;
use mempulse_wal::{Sequencer, SequencerConfig, Wal};
use tracing::info;

use crate::{cli::RunArgs, config::NodeConfig};

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
    let wal_config = config.event_log()?;
    let dir = wal_config.dir.clone();
    let wal = tokio::task::spawn_blocking(move || Wal::open(wal_config))
        .await
        .context("event log open task")?
        .with_context(|| format!("opening the event log in {}", dir.display()))?;
    let (first, last) = (wal.first_seq(), wal.last_seq());
    let sequencer = Sequencer::start(wal, SequencerConfig::default())?;
    info!(dir = %dir.display(), first_seq = %first, last_seq = %last, "node started");
    shutdown_signal().await?;
    info!("shutting down");
    sequencer.shutdown().await.context("draining the event log")?;
    info!(durable_seq = %*sequencer.durable().borrow(), "node stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
