//! A seeded event-log generator that drives the real mempool, for the determinism fixture, the
//! benches and `mempulse-bench replay`.
//!
//! [`generate`] plays a node: transactions from `mempulse_mempool::test_utils::Workload` arrive
//! on a lane (a local `tx_received`, or a local `tx_dropped` for some), go to the pool in
//! `AddTxs` batches, and every few batches a block is built (`block_proposed`) and committed
//! (`block_committed`, `tx_included`, recheck evictions, promotions, TTL expiry); some blocks are
//! orphaned by a reorg (`reorg_detected`, `tx_reopened`). Some transactions are re-sent with a
//! fee bump (`tx_replaced`) or held back one batch so a later nonce arrives first (queued, then
//! `tx_promoted`); the pool is small, so a full pool evicts (`tx_evicted{pool_full}`). Each
//! command gets the next Raft index and its facts are replicated events; the lane and leader
//! facts are local. Everything is a pure function of the [`MixConfig`]: no clock, no global RNG.

use std::path::Path;

use mempulse_mempool::{
    BlockLimits, Command, CommitBlock, Mempool, MempoolConfig, OrphanedBlock, Outcome, Reorg,
    test_utils::{SplitMix64, TxSpec, Workload},
};
use mempulse_primitives::{
    Digest, DropReason, Event, EventKind, Height, Lane, NodeId, Origin, RaftIndex, Source, Tx,
    TxHash, UnixMillis, ValidatorId,
};
use mempulse_wal::{Preallocate, SeqRange, SyncPolicy, Wal, WalConfig};

/// Shape of a generated log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MixConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Distinct senders.
    pub senders: u32,
    /// Transactions per `AddTxs` command.
    pub batch_txs: usize,
    /// A block is built and committed after every this many batches.
    pub block_every_batches: u32,
    /// Transactions a block aims at (through its byte limit).
    pub block_txs: u64,
    /// Capacity of the pool (small values force `pool_full` evictions).
    pub pool_txs_max: u32,
    /// Raw transaction bytes are cut to at most this many (small fixtures); `None` keeps the
    /// workload's 100..=600 bytes.
    pub raw_bytes_max: Option<u32>,
    /// Per mille of arrivals a lane drops (local `tx_dropped`).
    pub drop_per_mille: u64,
    /// Per mille of arrivals followed by a fee-bumped resend of a recent transaction.
    pub replace_per_mille: u64,
    /// Per mille of arrivals held back one batch.
    pub delay_per_mille: u64,
    /// Every this many blocks, the last block is orphaned by a reorg (`0`: never).
    pub reorg_every_blocks: u32,
}

impl Default for MixConfig {
    fn default() -> Self {
        Self {
            seed: 0x7265_706c,
            senders: 2_000,
            batch_txs: 64,
            block_every_batches: 4,
            block_txs: 200,
            pool_txs_max: 4_096,
            raw_bytes_max: None,
            drop_per_mille: 30,
            replace_per_mille: 40,
            delay_per_mille: 30,
            reorg_every_blocks: 25,
        }
    }
}

/// Mean raw size of a workload transaction (100..=600 bytes).
const MEAN_TX_BYTES: u64 = 350;

/// The node being simulated.
struct Node {
    config: MixConfig,
    rng: SplitMix64,
    workload: Workload,
    pool: Mempool,
    raft_index: u64,
    height: u64,
    blocks: u32,
    batches: u32,
    salt: u64,
    recent: Vec<Tx>,
    delayed: Vec<Tx>,
    last_block: Option<(Height, Vec<Tx>)>,
    events: Vec<Event>,
}

/// `n` events of a realistic mix (see the module docs), in log order.
///
/// # Errors
/// When the mempool refuses the generator's configuration or a command (`pool_txs_max` of 0,
/// or a bug in the generator).
pub fn generate(config: &MixConfig, n: usize) -> Result<Vec<Event>, mempulse_mempool::Error> {
    let (mut events, _) = generate_with_pool(config, n)?;
    events.truncate(n);
    Ok(events)
}

/// Like [`generate`], but runs the last command to its end (so at least `n` events) and also
/// returns the mempool that produced them: the reference a replayed pool view must equal.
///
/// # Errors
/// As [`generate`].
pub fn generate_with_pool(
    config: &MixConfig,
    n: usize,
) -> Result<(Vec<Event>, Mempool), mempulse_mempool::Error> {
    let pool_config = MempoolConfig {
        max_txs: config.pool_txs_max,
        ttl_heights: 12,
        committed_cache_size: 4_096,
        ..MempoolConfig::default()
    };
    let pool = Mempool::new(pool_config)?;
    let mut node = Node {
        config: *config,
        rng: SplitMix64::new(config.seed ^ 0x5eed),
        workload: Workload::new(config.seed, config.senders),
        pool,
        raft_index: 0,
        height: 0,
        blocks: 0,
        batches: 0,
        salt: 0,
        recent: Vec::new(),
        delayed: Vec::new(),
        last_block: None,
        events: Vec::with_capacity(n + 1024),
    };
    while node.events.len() < n {
        node.step()?;
    }
    Ok((node.events, node.pool))
}

impl Node {
    fn chance(&mut self, per_mille: u64) -> bool {
        self.rng.below(1000) < per_mille
    }

    fn observed_at(&self) -> UnixMillis {
        UnixMillis(1_700_000_000_000 + self.raft_index * 7)
    }

    fn local(&mut self, source: Source, kind: EventKind) {
        let observed_at = self.observed_at();
        self.events.push(Event { observed_at, source, origin: Origin::Local, kind });
    }

    /// Applies one command at the next Raft index and records its facts as replicated events.
    fn replicate(&mut self, command: Command) -> mempulse_mempool::Result<Outcome> {
        self.raft_index += 1;
        let outcome = self.pool.apply(command)?;
        let origin = Origin::Replicated { raft_index: RaftIndex(self.raft_index) };
        let observed_at = self.observed_at();
        for kind in &outcome.facts {
            let kind = kind.clone();
            self.events.push(Event { observed_at, source: Source::Mempool, origin, kind });
        }
        Ok(outcome)
    }

    fn next_tx(&mut self) -> Tx {
        let mut tx = self.workload.next_tx();
        if let Some(max) = self.config.raw_bytes_max {
            let len = tx.raw.len().min(max as usize);
            tx.raw = tx.raw.slice(..len);
            tx.encoded_size = u32::try_from(len).unwrap_or(max);
        }
        tx
    }

    /// A fee-bumped copy of a recent transaction with a new hash.
    fn bumped(&mut self) -> Option<Tx> {
        let pick = usize::try_from(self.rng.below(self.recent.len() as u64)).ok()?;
        let mut tx = self.recent.get(pick)?.clone();
        self.salt += 1;
        tx.fees.max_fee_per_gas = tx.fees.max_fee_per_gas * 5 / 4 + 1;
        tx.fees.max_priority_fee_per_gas = tx.fees.max_priority_fee_per_gas * 5 / 4 + 1;
        let mut seed = tx.hash.0.to_vec();
        seed.extend_from_slice(&self.salt.to_le_bytes());
        tx.hash = TxHash(Digest::sha256(&seed).0);
        Some(tx)
    }

    fn step(&mut self) -> mempulse_mempool::Result<()> {
        let mut batch = std::mem::take(&mut self.delayed);
        while batch.len() < self.config.batch_txs {
            let tx = self.next_tx();
            if self.chance(self.config.delay_per_mille) {
                self.delayed.push(tx);
                continue;
            }
            if self.chance(self.config.drop_per_mille) {
                let kind = EventKind::TxDropped {
                    hash: Some(tx.hash),
                    reason: DropReason::QueueFull,
                    lane: Lane::Rpc,
                    depth_current: 1024,
                    depth_peak: 1024,
                };
                self.local(Source::Lane(Lane::Rpc), kind);
                continue;
            }
            if self.chance(self.config.replace_per_mille)
                && let Some(bump) = self.bumped()
            {
                batch.push(bump);
            }
            if self.recent.len() < 256 {
                self.recent.push(tx.clone());
            } else {
                let at = usize::try_from(self.rng.below(256)).unwrap_or(0);
                if let Some(slot) = self.recent.get_mut(at) {
                    *slot = tx.clone();
                }
            }
            batch.push(tx);
        }
        for tx in &batch {
            let kind = EventKind::TxReceived { tx: tx.clone(), lane: Lane::Rest };
            self.local(Source::Lane(Lane::Rest), kind);
        }
        self.replicate(Command::AddTxs(batch))?;
        self.batches += 1;
        if self.batches.is_multiple_of(self.config.block_every_batches.max(1)) {
            self.block()?;
        }
        Ok(())
    }

    fn block(&mut self) -> mempulse_mempool::Result<()> {
        let limits =
            BlockLimits { max_bytes: Some(self.config.block_txs * MEAN_TX_BYTES), max_gas: None };
        let proposer = ValidatorId(self.height % 4);
        let built =
            self.replicate(Command::BuildBlock { limits, proposer })?.block.unwrap_or_default();
        let height = self.height + 1;
        let commit = CommitBlock {
            height: Height(height),
            txs: built.txs.iter().map(|tx| tx.hash).collect(),
            ..CommitBlock::default()
        };
        self.replicate(Command::CommitBlock(commit))?;
        self.height = height;
        self.blocks += 1;
        self.last_block = Some((Height(height), built.txs));
        let every = self.config.reorg_every_blocks;
        if every > 0 && self.blocks.is_multiple_of(every) {
            self.reorg()?;
        }
        if self.blocks.is_multiple_of(10) {
            let leader = Some(NodeId(u64::from(self.blocks / 10 % 3) + 1));
            let kind = EventKind::LeaderChanged { term: u64::from(self.blocks), leader };
            self.local(Source::Cluster, kind);
        }
        Ok(())
    }

    fn reorg(&mut self) -> mempulse_mempool::Result<()> {
        let Some((height, txs)) = self.last_block.take() else { return Ok(()) };
        let fork = Height(height.0 - 1);
        let reorg = Reorg {
            fork_height: fork,
            orphaned: vec![OrphanedBlock { height, txs }],
            ..Reorg::default()
        };
        self.replicate(Command::Reorg(reorg))?;
        self.height = fork.0;
        Ok(())
    }
}

/// Writes `events` as a fresh log in `dir` (segments of `segment_size_bytes`, synced at the
/// end) and returns the seq range.
///
/// # Errors
/// Any WAL error.
pub fn write_wal(
    dir: &Path,
    events: &[Event],
    segment_size_bytes: u64,
) -> mempulse_wal::Result<SeqRange> {
    let config = WalConfig {
        prepare_ahead: false,
        ..WalConfig::new(dir)
            .with_segment_size_bytes(segment_size_bytes)
            .with_sync(SyncPolicy::Never)
            .with_preallocate(Preallocate::Fallocate)
    };
    let mut wal = Wal::open(config)?;
    let mut first = None;
    let mut last = mempulse_primitives::Seq(0);
    for chunk in events.chunks(4096) {
        let payloads: Vec<Vec<u8>> = chunk.iter().map(Event::to_bytes).collect();
        let range = wal.append(&payloads)?;
        first.get_or_insert(range.first);
        last = range.last;
    }
    wal.sync()?;
    Ok(SeqRange { first: first.unwrap_or(mempulse_primitives::Seq(1)), last })
}

/// A synthetic transaction (`mempulse_mempool::test_utils::TxSpec`, fee 10, 100 bytes).
#[must_use]
pub fn sample_tx(sender: u64, nonce: u64) -> Tx {
    TxSpec::new(sender, nonce, 10).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mempulse_primitives::KindCode;

    #[test]
    fn the_mix_holds_every_kind_it_promises_and_is_seeded() {
        let config = MixConfig { reorg_every_blocks: 3, ..MixConfig::default() };
        let events = generate(&config, 20_000).unwrap();
        assert_eq!(events.len(), 20_000);
        let codes: std::collections::BTreeSet<KindCode> =
            events.iter().map(|e| e.kind.code()).collect();
        for code in [
            KindCode::TxReceived,
            KindCode::TxAdmitted,
            KindCode::TxDropped,
            KindCode::TxReplaced,
            KindCode::TxPromoted,
            KindCode::TxEvicted,
            KindCode::TxIncluded,
            KindCode::TxReopened,
            KindCode::BlockProposed,
            KindCode::BlockCommitted,
            KindCode::ReorgDetected,
            KindCode::LeaderChanged,
        ] {
            assert!(codes.contains(&code), "{code} missing from the mix");
        }
        assert_eq!(generate(&config, 5_000).unwrap(), events[..5_000]);
    }
}
