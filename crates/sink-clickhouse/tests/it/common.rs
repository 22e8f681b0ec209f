//! Shared helpers: the ClickHouse server, a database per test, and logs of generated events.

use std::{path::Path, process::Command, sync::OnceLock};

use bytes::Bytes;
use clickhouse::Client;
use mempulse_primitives::{
    Address, Digest, DropReason, Event, EventKind, EvictReason, Fees, FenceReason, Height, Lane,
    NodeId, Nonce, Origin, RaftIndex, RejectReason, Seq, Source, Subpool, Tx, TxHash, TxType,
    UnixMillis, ValidatorId,
};
use mempulse_sink_clickhouse::ClickHouseSinkConfig;
use mempulse_wal::{SyncPolicy, Wal, WalConfig};

/// The server the tests use: `MEMPULSE_CLICKHOUSE_URL`, or one `ci/clickhouse.sh start` starts
/// (or finds running) when the variable is unset. `ci/test.sh` sets the variable.
pub(crate) const URL_ENV: &str = "MEMPULSE_CLICKHOUSE_URL";

pub(crate) fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var(URL_ENV) {
            return url;
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ci/clickhouse.sh");
        let out = Command::new(&script).arg("start").output().unwrap_or_else(|e| {
            panic!("{URL_ENV} is unset and {} could not run: {e}", script.display())
        });
        assert!(
            out.status.success(),
            "{URL_ENV} is unset and `ci/clickhouse.sh start` failed ({}):\n{}\nStart a server \
             with `ci/clickhouse.sh start` and export {URL_ENV}=<the URL it prints>.",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

/// A database of its own for one test, dropped and created anew.
pub(crate) struct TestDb {
    pub(crate) name: String,
    pub(crate) client: Client,
}

impl TestDb {
    pub(crate) async fn new(test: &str) -> Self {
        let name = format!("sink_it_{test}");
        let root = Client::default().with_url(server_url());
        root.query_raw(&format!("DROP DATABASE IF EXISTS {name} SYNC")).execute().await.unwrap();
        root.query_raw(&format!("CREATE DATABASE {name}")).execute().await.unwrap();
        Self { client: root.with_database(&name), name }
    }

    /// A sink config for this database: small batches, short waits.
    pub(crate) fn config(&self) -> ClickHouseSinkConfig {
        ClickHouseSinkConfig {
            database: self.name.clone(),
            batch_rows_max: 1_000,
            flush_interval_ms: 20,
            retry_backoff_min_ms: 10,
            retry_backoff_max_ms: 200,
            request_timeout_ms: 30_000,
            ..ClickHouseSinkConfig::new(server_url())
        }
    }

    /// `(count(), uniqExact(seq), min(seq), max(seq))` of `table`, without `FINAL`.
    pub(crate) async fn stats(&self, table: &str) -> (u64, u64, u64, u64) {
        self.client
            .query_raw(&format!(
                "SELECT count(), uniqExact(seq), min(seq), max(seq) FROM {}.{table}",
                self.name
            ))
            .fetch_one()
            .await
            .unwrap()
    }
}

/// A transaction whose fields derive from `i`.
pub(crate) fn tx(i: u64) -> Tx {
    let raw = Bytes::from(i.to_le_bytes().repeat(4));
    Tx {
        hash: hash(i),
        sender: address(i % 97),
        nonce: Nonce(i / 97),
        gas_limit: 21_000 + i % 1_000,
        fees: Fees { max_fee_per_gas: u128::from(i) * 3, max_priority_fee_per_gas: 2 },
        tx_type: TxType::DynamicFee,
        chain_id: Some(1),
        encoded_size: u32::try_from(raw.len()).unwrap(),
        raw,
    }
}

pub(crate) fn hash(i: u64) -> TxHash {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&i.to_be_bytes());
    h[31] = 0xAB;
    TxHash(h)
}

pub(crate) fn address(i: u64) -> Address {
    let mut a = [0u8; 20];
    a[..8].copy_from_slice(&i.to_be_bytes());
    a[19] = 0xCD;
    Address(a)
}

/// The event kind with kind-code index `index` (0..18), fields derived from `i`.
pub(crate) fn kind_at(i: u64, index: u64) -> EventKind {
    let h = Height(i);
    match index {
        0 => EventKind::TxReceived { tx: tx(i), lane: Lane::ALL[0] },
        1 => EventKind::TxAdmitted { tx: tx(i), subpool: Subpool::ALL[0] },
        2 => EventKind::TxRejected { hash: hash(i), reason: RejectReason::ALL[1] },
        3 => EventKind::TxReplaced {
            old: hash(i),
            new: hash(i + 1),
            sender: address(i),
            nonce: Nonce(i),
        },
        4 => EventKind::TxDropped {
            hash: None,
            reason: DropReason::ALL[0],
            lane: Lane::ALL[0],
            depth_current: 3,
            depth_peak: 9,
        },
        5 => EventKind::TxEvicted { hash: hash(i), reason: EvictReason::ALL[0] },
        6 => EventKind::TxPromoted { hash: hash(i) },
        7 => EventKind::TxIncluded { hash: hash(i), height: h },
        8 => EventKind::TxReopened { hash: hash(i), orphaned_height: h },
        9 => EventKind::BlockProposed {
            height: h,
            proposer: ValidatorId(2),
            txs: vec![hash(i), hash(i + 1)],
            total_bytes: 64,
            total_gas: 42_000,
        },
        10 => EventKind::BlockCommitted { height: h, txs: vec![hash(i)] },
        11 => EventKind::ReorgDetected { fork_height: h, orphaned: vec![Height(i + 1)] },
        12 => EventKind::LeaderChanged { term: i, leader: Some(NodeId(1)) },
        13 => EventKind::ProposerChanged { height: h, proposer: ValidatorId(3) },
        14 => EventKind::CheckpointTaken {
            seq: Seq(i),
            raft_index: RaftIndex(i),
            digest: Digest([7; 32]),
        },
        15 => EventKind::DivergenceDetected {
            peer: NodeId(2),
            index: RaftIndex(i),
            ours: Digest([1; 32]),
            theirs: Digest([2; 32]),
        },
        16 => EventKind::Fenced { reason: FenceReason::ALL[0], index: Some(RaftIndex(i)) },
        17 => EventKind::Unfenced { index: RaftIndex(i), root: Digest([3; 32]) },
        _ => panic!("kind index {index} out of 0..18"),
    }
}

/// The event stored at seq `seq` of a generated log: kinds cycle, every third is local.
pub(crate) fn event(seq: u64) -> Event {
    let kind = kind_at(seq, seq % 18);
    let (source, origin) = if seq.is_multiple_of(3) {
        (Source::Peer(NodeId(seq % 5)), Origin::Local)
    } else {
        (Source::Mempool, Origin::Replicated { raft_index: RaftIndex(seq / 2) })
    };
    Event { observed_at: UnixMillis(1_700_000_000_000 + seq), source, origin, kind }
}

/// Appends the events of seqs `from..=to` to the log in `dir` (created if absent), synced.
pub(crate) fn write_log(dir: &Path, from: u64, to: u64) {
    let mut wal = Wal::open(
        WalConfig::new(dir).with_segment_size_bytes(1 << 20).with_sync(SyncPolicy::Never),
    )
    .unwrap();
    assert_eq!(wal.last_seq(), Seq(from - 1), "the log must end just before {from}");
    let mut seq = from;
    while seq <= to {
        let end = to.min(seq + 9_999);
        let records: Vec<Vec<u8>> = (seq..=end).map(|s| event(s).to_bytes()).collect();
        let range = wal.append(&records).unwrap();
        assert_eq!((range.first, range.last), (Seq(seq), Seq(end)));
        seq = end + 1;
    }
    wal.sync().unwrap();
}
