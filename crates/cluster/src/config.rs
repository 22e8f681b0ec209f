//! Configuration of the Raft log store, the Raft timings and the write batcher. `Default` is the
//! embedded default.

use std::{path::PathBuf, time::Duration};

use mempulse_wal::{DEFAULT_SEGMENT_SIZE_BYTES, Preallocate};

/// Capacity of the queue of write requests (appends, votes, truncations, purges) waiting for the
/// store's writer thread. A full queue makes `append` wait: backpressure on the Raft core.
pub const WRITE_QUEUE_CAPACITY: usize = 1024;

/// Most entries one `limited_get_log_entries` call returns (bounds one replication read).
pub const READ_BATCH_ENTRIES_MAX: u64 = 4096;

/// Most entries the Raft log store keeps in memory after writing them, so replication and
/// apply read them without going back to the WAL.
pub const TAIL_CACHE_ENTRIES_MAX: usize = 4096;

/// Most encoded bytes of those entries (the oldest go first).
pub const TAIL_CACHE_BYTES_MAX: usize = 32 << 20;

/// Name of the WAL directory inside the store's directory.
pub const WAL_DIR: &str = "log";

/// Configuration of a [`LogStore`](crate::LogStore).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogStoreConfig {
    /// Directory of the store: the metadata file and the `log/` WAL directory (must persist).
    pub dir: PathBuf,
    /// WAL segment size; purging frees whole segments.
    pub segment_size_bytes: u64,
    /// How WAL segments get their space.
    pub preallocate: Preallocate,
}

impl Default for LogStoreConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/raft"),
            segment_size_bytes: DEFAULT_SEGMENT_SIZE_BYTES,
            preallocate: Preallocate::Fallocate,
        }
    }
}

impl LogStoreConfig {
    /// The embedded default with another directory.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), ..Self::default() }
    }

    /// Sets the WAL segment size.
    #[must_use]
    pub const fn with_segment_size_bytes(mut self, bytes: u64) -> Self {
        self.segment_size_bytes = bytes;
        self
    }

    /// Sets the WAL preallocation strategy.
    #[must_use]
    pub const fn with_preallocate(mut self, preallocate: Preallocate) -> Self {
        self.preallocate = preallocate;
        self
    }
}

/// Most appends the writer thread groups under one `fdatasync` before it syncs anyway (bounds
/// the latency of the first append of a long burst).
pub const FLUSH_GROUP_MAX: usize = 64;

/// Most log entries the state machine applies before it writes their facts to the sink in one
/// batch (and answers their clients). Bounds the memory of one apply batch and the latency of
/// the first entry's answer.
pub const APPLY_BATCH_ENTRIES_MAX: usize = 256;

/// Snapshot files kept in a node's snapshot directory (the newest ones). Two, so a crash while
/// the newest is being replaced still leaves a complete one next to the temporary file.
pub const SNAPSHOTS_KEPT: usize = 2;

/// Event-log records read per step when the WAL fact sink looks for the last replicated fact
/// at start.
pub const TAIL_SCAN_WINDOW_RECORDS: u64 = 1024;

/// First wait of the WAL fact sink after the sequencer's queue was full.
pub const SINK_BACKOFF_FIRST: Duration = Duration::from_millis(1);

/// Longest wait between two tries of the WAL fact sink on a full queue.
pub const SINK_BACKOFF_MAX: Duration = Duration::from_millis(64);

/// Default bound on how long the WAL fact sink retries a full queue before it fails.
pub const SINK_FULL_WAIT_MAX: Duration = Duration::from_secs(30);

/// Capacity of a node's queue of client writes waiting for the batcher. A full queue refuses
/// the write with [`ClientError::Overloaded`](crate::ClientError::Overloaded).
pub const WRITE_QUEUE_CAPACITY_DEFAULT: usize = 4096;

/// Batches the batcher has proposed whose results it has not yet handed back (bounds the
/// pipeline between proposing and applying).
pub const WRITES_IN_FLIGHT_MAX: usize = 64;

/// Capacity of a node's inbox in the in-process network.
pub const INBOX_CAPACITY: usize = 256;

/// Inbound RPCs a node of the in-process network serves at once.
pub const INBOX_CONCURRENCY_MAX: usize = 16;

/// Raft timing, snapshot and replication settings. `Default` suits sub-second block times on a
/// LAN (see the tuning notes on each field).
///
/// **When a follower campaigns.** openraft gives every follower a leader lease of
/// `election_timeout_max` from the last message of the leader, during which it neither
/// campaigns nor grants a vote; its election timer, drawn from `[min, max)`, starts only
/// after the lease. So a follower campaigns after `max + [min, max)` of silence: the default
/// waits 250–300 ms, five to six heartbeats. That sum is what other Raft implementations call
/// the election timeout (etcd's `--election-timeout` T: a follower campaigns after `[T, 2T)`
/// of silence); to match an etcd timeout T, set `min + max = T`, e.g. `min = 0.4 T` and
/// `max = 0.6 T`. Failover after a leader crash takes that silence (less the age of the last
/// heartbeat at the crash), plus one pre-vote and one vote round trip with a vote fsync, plus
/// the first commit.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RaftConfig {
    /// Name of the cluster (shows in openraft's logs).
    pub cluster_name: String,
    /// How often the leader sends heartbeats. Default 50 ms: a follower campaigns after five
    /// silent heartbeat intervals at the earliest, and must stay below
    /// `election_timeout_min`.
    pub heartbeat_interval: Duration,
    /// Shortest election timer, counted after the leader lease (`election_timeout_max`) has
    /// run out. Default 100 ms. The earliest campaign comes `election_timeout_min +
    /// election_timeout_max` after the leader's last message: keep that sum 10-20× the
    /// network round trip plus the longest expected pause of a node (fsync stalls, a loaded
    /// host), or healthy leaders get replaced.
    pub election_timeout_min: Duration,
    /// Longest election timer, and openraft's leader lease: a follower grants no vote and
    /// starts no election until this long after the leader's last message. Default 150 ms.
    /// The width `max - min` spreads the followers' campaigns so that one usually wins the
    /// first round; it should be several times one vote round trip with its fsync (50 ms by
    /// default, against a few ms for a loopback round trip and a vote fsync).
    pub election_timeout_max: Duration,
    /// Timeout of one RPC to a peer (append entries, vote). Default 100 ms: a peer slower than
    /// that is treated as unreachable for this round.
    pub send_timeout: Duration,
    /// Timeout for sending and installing a whole snapshot. Default 10 s.
    pub install_snapshot_timeout: Duration,
    /// Build a snapshot once this many entries were applied since the last one. Default 5000.
    pub snapshot_logs_since_last: u64,
    /// Entries already in a snapshot kept in the log anyway, so a briefly lagging follower
    /// catches up by log rather than by snapshot. Default 1000.
    pub max_in_snapshot_log_to_keep: u64,
    /// A follower further behind than this many entries is sent a snapshot. Default 5000.
    pub replication_lag_threshold: u64,
    /// Most entries one append-entries RPC carries. Default 300.
    pub max_payload_entries: u64,
}

impl Default for RaftConfig {
    fn default() -> Self {
        Self {
            cluster_name: "mempulse".to_owned(),
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(100),
            election_timeout_max: Duration::from_millis(150),
            send_timeout: Duration::from_millis(100),
            install_snapshot_timeout: Duration::from_secs(10),
            snapshot_logs_since_last: 5000,
            max_in_snapshot_log_to_keep: 1000,
            replication_lag_threshold: 5000,
            max_payload_entries: 300,
        }
    }
}

impl RaftConfig {
    /// The openraft configuration these settings stand for, validated.
    ///
    /// # Errors
    /// [`openraft::ConfigError`] for inconsistent timings (for example a minimum election
    /// timeout not above the heartbeat interval, or min ≥ max).
    pub fn to_openraft(&self) -> Result<openraft::Config, openraft::ConfigError> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        openraft::Config {
            cluster_name: self.cluster_name.clone(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            install_snapshot_timeout: ms(self.install_snapshot_timeout),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: self.max_in_snapshot_log_to_keep,
            replication_lag_threshold: self.replication_lag_threshold,
            max_payload_entries: self.max_payload_entries,
            // A node cut off from the cluster must not disrupt the leader when it comes back
            // with an inflated term: it first asks whether it could win.
            enable_pre_vote: Some(true),
            // A restarted leader must win a new election, never resume its old term: a power
            // loss may have dropped log entries it had already sent to a follower, and
            // re-proposing that index in the same term would give two different entries one
            // log id, which followers cannot tell apart (found by the simulation, seed 129).
            enable_leader_restore: Some(false),
            ..openraft::Config::default()
        }
        .validate()
    }
}

/// Limits of the leader's write batcher: how many client commands it coalesces into one log
/// entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Capacity of the queue of writes waiting for the batcher.
    pub queue_capacity: usize,
    /// Most commands in one entry. Default 1024.
    pub commands_max: usize,
    /// Most transactions (summed over the commands' `AddTxs`) in one entry. Default 8192.
    pub txs_max: usize,
    /// Most encoded transaction bytes in one entry. Default 4 MiB.
    pub tx_bytes_max: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            queue_capacity: WRITE_QUEUE_CAPACITY_DEFAULT,
            commands_max: 1024,
            txs_max: 8192,
            tx_bytes_max: 4 << 20,
        }
    }
}

/// How long a member installing a snapshot spends at most filling the facts it covers: below
/// the default `install_snapshot_timeout` (10 s) the leader waits on the install; past it the
/// snapshot is installed with the rest of the range left as a gap.
pub const BACKFILL_DEADLINE: Duration = Duration::from_secs(8);

/// How long a member installing a snapshot waits for each chunk of the facts it covers from
/// the leader (`AdminRequest::Facts`, at most 1 MiB of events read from the leader's log).
pub const BACKFILL_CHUNK_TIMEOUT: Duration = Duration::from_secs(5);

/// Default largest frame from an authenticated peer: a largest-size log entry (half a
/// 64 MiB segment) plus room for the request around it.
pub const FRAME_BYTES_MAX_DEFAULT: u32 = 72 << 20;

/// Default largest snapshot a node accepts from a leader.
pub const SNAPSHOT_BYTES_MAX_DEFAULT: u64 = 4 << 30;

/// Bytes of snapshot data per frame of a snapshot transfer.
pub const SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// Idle outbound connections kept per peer for reuse.
pub const POOL_IDLE_PER_PEER: usize = 4;

/// Outbound connections open to one peer at once (each carries one request at a time); a
/// call beyond waits for a slot within its timeout.
pub const CONNECTIONS_PER_PEER_MAX: usize = 16;

/// Inbound connections a node serves at once; a connection beyond is refused.
pub const INBOUND_CONNECTIONS_MAX: usize = 256;

/// Default first wait before redialling an unreachable peer (doubles per failure).
pub const BACKOFF_FIRST: Duration = Duration::from_millis(20);

/// Default longest wait before redialling an unreachable peer.
pub const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Default time a peer has for the TLS handshake and its hello.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Default idle time after which an inbound connection is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a follower keeps trying to forward one write or admin request to a leader
/// (waiting for an election, following leader changes) before it gives up.
pub const FORWARD_DEADLINE_DEFAULT: Duration = Duration::from_secs(5);

/// Most forwarding attempts of one request (each to the leader known at the time, or the one
/// an answer named). Waits between attempts end at a leader change or after a backoff from
/// 2 ms doubling up to the heartbeat interval, so the forward deadline, not this bound, ends a
/// request that finds no leader.
pub const FORWARD_ATTEMPTS_MAX: u32 = 256;

/// First backoff of a forwarded request between two attempts with no leader change to wake on
/// (doubles per wait, up to the heartbeat interval).
pub(crate) const FORWARD_RETRY_FIRST: Duration = Duration::from_millis(2);

/// How far a learner's acknowledged log may trail the leader's commit index for
/// [`crate::AdminRequest::Promote`] to make it a voter. A caught-up learner trails by the
/// entries in flight (a few under load, each a write batch); one that acknowledged nothing (not
/// running, wrong address) or trails further would, as a voter, count towards the quorum
/// without holding the log, and a one- or two-voter cluster would stop committing.
pub const PROMOTE_LAG_ENTRIES_MAX: u64 = 100;

/// Time a caller of a membership change keeps, out of its own timeout, for the leader's
/// answer after the leader stops waiting (for a learner to catch up, a change to commit): the
/// answer says how far the change got, while a caller that gives up first knows nothing.
/// [`crate::RaftNode::add_learner`] and [`crate::RaftNode::promote`] let the leader wait their
/// forward deadline less this.
pub const MEMBERSHIP_ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// How long ago a learner must last have acknowledged the leader (at least; twice the election
/// timeout when that is longer) for [`crate::AdminRequest::Promote`] to make it a voter: a
/// learner that caught up and then stopped holds the log but cannot vote, and promoting it
/// would stall a cluster whose quorum needs it.
pub const PROMOTE_ACK_AGE_MAX: Duration = Duration::from_secs(1);
