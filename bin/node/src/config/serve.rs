//! `[api]`, `[ingest]` and `[replay]`: where the HTTP API (JSON-RPC, REST, events, metrics)
//! listens, the bounds of the ingest lanes behind it, and the live replayer's checkpoints.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, ensure};
use mempulse_api::ApiConfig;
use mempulse_net::{CheckConfig, IngestConfig, ThrottleConfig};
use mempulse_replay::{CheckpointPolicy, DEFAULT_CHECKPOINTS_RETAINED};
use mempulse_sink_clickhouse::ClickHouseSinkConfig;
use serde::Deserialize;

/// HTTP port of the embedded default (on 127.0.0.1): the JSON-RPC port wallets expect.
pub(crate) const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8545";

/// Largest `[api] body-bytes-max` accepted (a request body is held in memory).
pub(crate) const BODY_BYTES_MAX_LIMIT: usize = 256 << 20;

/// Largest `[api] rpc-batch-max` accepted (a batch is answered in one response).
pub(crate) const RPC_BATCH_MAX_LIMIT: usize = 100_000;

/// Largest `[api] connections-max` accepted (each connection holds a file descriptor).
pub(crate) const CONNECTIONS_MAX_LIMIT: usize = 16_384;

/// `[api]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ApiSection {
    /// Address the HTTP API listens on (JSON-RPC at `/`, REST under `/v1`, `/metrics`).
    pub(crate) http_addr: String,
    /// Largest request body in bytes.
    pub(crate) body_bytes_max: usize,
    /// Deadline of one request (live tails excepted).
    pub(crate) request_timeout_ms: u64,
    /// Most calls in one JSON-RPC batch.
    pub(crate) rpc_batch_max: usize,
    /// Time a connection has to deliver a whole request head (also how long an idle
    /// keep-alive connection stays open); 0 turns the timeout off.
    pub(crate) header_read_timeout_ms: u64,
    /// HTTP connections served at once; further clients wait in the listen backlog.
    pub(crate) connections_max: usize,
}

impl Default for ApiSection {
    fn default() -> Self {
        let api = ApiConfig::default();
        Self {
            http_addr: DEFAULT_HTTP_ADDR.to_owned(),
            body_bytes_max: api.body_bytes_max,
            request_timeout_ms: u64::try_from(api.request_timeout.as_millis()).unwrap_or(u64::MAX),
            rpc_batch_max: api.rpc_batch_max,
            header_read_timeout_ms: u64::try_from(api.header_read_timeout.as_millis())
                .unwrap_or(u64::MAX),
            connections_max: api.connections_max,
        }
    }
}

impl ApiSection {
    /// The listen address.
    pub(crate) fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        self.http_addr
            .parse()
            .with_context(|| format!("[api] http-addr `{}` is not ip:port", self.http_addr))
    }

    /// Checks the section: the address is `ip:port`, a body holds at least one largest
    /// transaction as hex in a JSON-RPC call and at most [`BODY_BYTES_MAX_LIMIT`], the
    /// timeout and batch bound are positive, and the connection bound is in
    /// 1..=[`CONNECTIONS_MAX_LIMIT`].
    pub(crate) fn check(&self) -> anyhow::Result<()> {
        self.listen_addr()?;
        let hex_tx = usize::try_from(mempulse_net::TX_BYTES_MAX).unwrap_or(usize::MAX);
        let min = hex_tx.saturating_mul(2).saturating_add(1024);
        let body = self.body_bytes_max;
        ensure!(
            (min..=BODY_BYTES_MAX_LIMIT).contains(&body),
            "[api] body-bytes-max must be in {min}..={BODY_BYTES_MAX_LIMIT} (one largest \
             transaction as hex, up to 256 MiB), got {body}"
        );
        ensure!(self.request_timeout_ms > 0, "[api] request-timeout-ms must be at least 1");
        ensure!(
            (1..=RPC_BATCH_MAX_LIMIT).contains(&self.rpc_batch_max),
            "[api] rpc-batch-max must be in 1..={RPC_BATCH_MAX_LIMIT}, got {}",
            self.rpc_batch_max
        );
        ensure!(
            (1..=CONNECTIONS_MAX_LIMIT).contains(&self.connections_max),
            "[api] connections-max must be in 1..={CONNECTIONS_MAX_LIMIT}, got {}",
            self.connections_max
        );
        Ok(())
    }

    /// The router's configuration.
    pub(crate) fn config(&self, chain_id: u64) -> ApiConfig {
        ApiConfig {
            chain_id,
            body_bytes_max: self.body_bytes_max,
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            rpc_batch_max: self.rpc_batch_max,
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            connections_max: self.connections_max,
            ..ApiConfig::default()
        }
    }
}

/// `[ingest]` section: the lanes' bounded queues, dedup cache and per-source rate limit.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct IngestSection {
    /// Capacity of the JSON-RPC lane's queue.
    pub(crate) rpc_queue_capacity: usize,
    /// Capacity of the REST lane's queue.
    pub(crate) rest_queue_capacity: usize,
    /// Capacity of the stream lane's queue.
    pub(crate) stream_queue_capacity: usize,
    /// Hashes the dedup cache remembers.
    pub(crate) dedup_capacity: usize,
    /// Sustained transactions per second one source may submit.
    pub(crate) source_rate_per_s: u32,
    /// Burst one source may submit above its rate.
    pub(crate) source_burst: u32,
    /// Whether legacy transactions without EIP-155 replay protection are accepted.
    pub(crate) allow_unprotected: bool,
}

impl Default for IngestSection {
    fn default() -> Self {
        let ingest = IngestConfig::default();
        Self {
            rpc_queue_capacity: ingest.rpc_queue_capacity,
            rest_queue_capacity: ingest.rest_queue_capacity,
            stream_queue_capacity: ingest.stream_queue_capacity,
            dedup_capacity: ingest.dedup_capacity,
            source_rate_per_s: ingest.throttle.rate_per_s,
            source_burst: ingest.throttle.burst,
            allow_unprotected: CheckConfig::default().allow_unprotected,
        }
    }
}

impl IngestSection {
    /// The pipeline's configuration, validated.
    pub(crate) fn config(&self) -> anyhow::Result<IngestConfig> {
        let defaults = IngestConfig::default();
        let config = IngestConfig {
            rpc_queue_capacity: self.rpc_queue_capacity,
            rest_queue_capacity: self.rest_queue_capacity,
            stream_queue_capacity: self.stream_queue_capacity,
            dedup_capacity: self.dedup_capacity,
            throttle: ThrottleConfig {
                rate_per_s: self.source_rate_per_s,
                burst: self.source_burst,
                ..defaults.throttle
            },
            ..defaults
        };
        config.validate().context("invalid [ingest] configuration")?;
        Ok(config)
    }

    /// The stateless rules for `chain_id`.
    pub(crate) fn check(&self, chain_id: u64) -> CheckConfig {
        CheckConfig {
            chain_id,
            allow_unprotected: self.allow_unprotected,
            ..CheckConfig::default()
        }
    }
}

/// `[replay]` section: the live replayer's checkpoints.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ReplaySection {
    /// Checkpoint directory. Default `<data-dir>/checkpoints`.
    pub(crate) checkpoint_dir: Option<PathBuf>,
    /// Events between checkpoints (0: no event trigger).
    pub(crate) checkpoint_every_events: u64,
    /// Milliseconds between checkpoints (0: no time trigger).
    pub(crate) checkpoint_every_ms: u64,
    /// Checkpoints kept.
    pub(crate) checkpoints_retained: usize,
}

impl Default for ReplaySection {
    fn default() -> Self {
        let policy = CheckpointPolicy::default();
        Self {
            checkpoint_dir: None,
            checkpoint_every_events: policy.every_events,
            checkpoint_every_ms: u64::try_from(policy.every.as_millis()).unwrap_or(u64::MAX),
            checkpoints_retained: DEFAULT_CHECKPOINTS_RETAINED,
        }
    }
}

impl ReplaySection {
    /// When to checkpoint.
    pub(crate) const fn policy(&self) -> CheckpointPolicy {
        CheckpointPolicy {
            every_events: self.checkpoint_every_events,
            every: Duration::from_millis(self.checkpoint_every_ms),
        }
    }
}

/// `[sink]` section: exports of the event log. `[sink.clickhouse] url = "…"` turns the
/// ClickHouse export on; every other key has a default (see `mempulse-sink-clickhouse`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SinkSection {
    /// The ClickHouse export.
    pub(crate) clickhouse: ClickHouseSinkConfig,
}

/// `[schedule]` section: the shared validators file and the validator this node's cluster runs
/// as; with both, `GET /v1/cluster` shows the proposer and this cluster's tags at the current
/// height. Off unless `validators` is set.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ScheduleSection {
    /// Path of the validators file (`mempulse schedule --validators` reads the same file).
    pub(crate) validators: Option<PathBuf>,
    /// This cluster's validator id in that file.
    pub(crate) validator_id: Option<u64>,
}

impl ScheduleSection {
    /// The schedule the file describes and this node's validator, when configured.
    pub(crate) fn load(&self) -> anyhow::Result<Option<(mempulse_schedule::Schedule, u64)>> {
        let Some(path) = &self.validators else {
            anyhow::ensure!(
                self.validator_id.is_none(),
                "[schedule] validator-id needs validators"
            );
            return Ok(None);
        };
        let id = self.validator_id.context("[schedule] validators needs validator-id")?;
        let file = read_validators(path)?;
        let known = file.validators.iter().map(|v| v.id).chain(file.changes.iter().map(|c| c.id));
        anyhow::ensure!(
            known.into_iter().any(|v| v == id),
            "[schedule] validator-id {id} is not in {}",
            path.display()
        );
        let schedule =
            file.to_schedule().with_context(|| format!("validators file {}", path.display()))?;
        Ok(Some((schedule, id)))
    }

    /// The slot settings of the validators file, when one is configured.
    pub(crate) fn slot(&self) -> anyhow::Result<Option<mempulse_schedule::SlotConfig>> {
        let Some(path) = &self.validators else { return Ok(None) };
        let slot = read_validators(path)?.slot_config();
        Ok(Some(slot.with_context(|| format!("validators file {}", path.display()))?))
    }
}

fn read_validators(path: &Path) -> anyhow::Result<mempulse_schedule::ValidatorsConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading validators file {}", path.display()))?;
    mempulse_schedule::ValidatorsConfig::from_toml_str(&text)
        .with_context(|| format!("validators file {}", path.display()))
}
