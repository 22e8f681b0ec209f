//! Model-based and determinism property tests over random command sequences.

use std::collections::BTreeSet;

use mempulse_mempool::test_utils::{TxSpec, address};
use mempulse_mempool::{
    BlockLimits, BuiltBlock, Command, CommitBlock, Mempool, MempoolConfig, OrderingPolicy,
    OrphanedBlock, Reorg,
};
use mempulse_primitives::{EventKind, Height, Nonce, Subpool, Tx, ValidatorId};
use proptest::prelude::*;

use crate::model::Model;

const SENDERS: u64 = 5;

/// An abstract step, resolved against the current state into a concrete [`Command`].
#[derive(Clone, Debug)]
pub enum Op {
    Add(Vec<TxSpec>),
    /// Resubmits a pooled or committed transaction (duplicate / already committed).
    Resubmit(prop::sample::Index),
    Build {
        max_bytes: Option<u64>,
        max_gas: Option<u64>,
    },
    Commit {
        take: usize,
        external: Option<TxSpec>,
        nonce: Option<(u64, u64)>,
        base_fee: Option<u128>,
        skip: u64,
    },
    Reorg {
        depth: usize,
        nonce: Option<(u64, u64)>,
        base_fee: Option<u128>,
    },
}

fn spec() -> impl Strategy<Value = TxSpec> {
    (
        0..SENDERS,
        0..8u64,
        0..12u128,
        0..15u128,
        prop::sample::select(vec![21_000u64, 40_000, 70_000]),
    )
        .prop_flat_map(|(sender, nonce, tip, extra, gas_limit)| {
            (prop::sample::select(vec![100u32, 150, 300]), 0..3u64).prop_map(move |(size, salt)| {
                TxSpec { sender, nonce, max_fee: tip + extra, tip, gas_limit, size, salt }
            })
        })
}

fn op() -> impl Strategy<Value = Op> {
    let nonce = proptest::option::of((0..SENDERS, 0..10u64));
    let base_fee = proptest::option::of(0..8u128);
    prop_oneof![
        5 => prop::collection::vec(spec(), 1..5).prop_map(Op::Add),
        1 => (proptest::option::of(0..700u64), proptest::option::of(0..150_000u64))
            .prop_map(|(max_bytes, max_gas)| Op::Build { max_bytes, max_gas }),
        2 => (0..6usize, proptest::option::of(spec()), nonce.clone(), base_fee.clone(), 0..3u64)
            .prop_map(|(take, external, nonce, base_fee, skip)| Op::Commit { take, external, nonce, base_fee, skip }),
        1 => any::<prop::sample::Index>().prop_map(Op::Resubmit),
        1 => (0..3usize, nonce, base_fee).prop_map(|(depth, nonce, base_fee)| Op::Reorg { depth, nonce, base_fee }),
    ]
}

pub fn config(ordering: OrderingPolicy) -> MempoolConfig {
    MempoolConfig {
        max_txs: 8,
        max_pool_bytes: 1_000,
        max_tx_bytes: 250,
        max_txs_per_sender: 4,
        nonce_window: 3,
        replacement_bump_percent: 10,
        committed_cache_size: 6,
        ttl_heights: 4,
        ordering,
        min_priority_fee_per_gas: 1,
        max_block_gas: 60_000,
        initial_base_fee_per_gas: 3,
        max_idle_senders: 1_000,
    }
}

fn ordering() -> impl Strategy<Value = OrderingPolicy> {
    prop::sample::select(vec![OrderingPolicy::Fifo, OrderingPolicy::Priority])
}

/// Committed blocks still on the chain, with their full transactions (for reorgs).
#[derive(Clone, Debug, Default)]
pub struct Chain {
    blocks: Vec<(Height, Vec<Tx>)>,
}

/// Turns an abstract step into a command against `pool`'s state.
pub fn resolve(op: &Op, pool: &Mempool, chain: &mut Chain) -> Command {
    match op {
        Op::Add(specs) => Command::AddTxs(specs.iter().map(TxSpec::build).collect()),
        Op::Resubmit(index) => {
            let pooled = pool.senders().flat_map(|v| v.txs().map(|(tx, _)| tx.clone()));
            let committed = chain.blocks.iter().flat_map(|(_, txs)| txs.iter().cloned());
            let all: Vec<Tx> = pooled.chain(committed).collect();
            Command::AddTxs(if all.is_empty() {
                Vec::new()
            } else {
                vec![all[index.index(all.len())].clone()]
            })
        }
        Op::Build { max_bytes, max_gas } => Command::BuildBlock {
            limits: BlockLimits { max_bytes: *max_bytes, max_gas: *max_gas },
            proposer: ValidatorId(1),
        },
        Op::Commit { take, external, nonce, base_fee, skip } => {
            let mut txs: Vec<Tx> =
                pool.build_block(BlockLimits::default()).txs.into_iter().take(*take).collect();
            txs.extend(external.map(|s| s.build()));
            let height = Height(pool.height().get() + 1 + skip);
            chain.blocks.push((height, txs.clone()));
            Command::CommitBlock(CommitBlock {
                height,
                txs: txs.iter().map(|t| t.hash).collect(),
                nonces: nonce.iter().map(|&(s, n)| (address(s), Nonce(n))).collect(),
                base_fee_per_gas: *base_fee,
            })
        }
        Op::Reorg { depth, nonce, base_fee } => {
            let keep = chain.blocks.len().saturating_sub(*depth);
            let orphaned: Vec<OrphanedBlock> = chain
                .blocks
                .drain(keep..)
                .rev() // newest first: the pool must sort them
                .map(|(height, txs)| OrphanedBlock { height, txs })
                .collect();
            let fork_height = match orphaned.last() {
                Some(b) => Height(b.height.get() - 1),
                // No orphaned block: roll the height back by one (refused at height 0); a
                // block recorded at the old height is dropped without reopening its txs.
                None => {
                    let fork = Height(pool.height().get().saturating_sub(1));
                    chain.blocks.retain(|(h, _)| *h <= fork);
                    fork
                }
            };
            Command::Reorg(Reorg {
                fork_height,
                orphaned,
                nonces: nonce.iter().map(|&(s, n)| (address(s), Nonce(n))).collect(),
                base_fee_per_gas: *base_fee,
            })
        }
    }
}

/// Applies a concrete command to the model; `None` when the pool must refuse it.
fn model_apply(m: &mut Model, cmd: &Command) -> Option<(Vec<EventKind>, Option<BuiltBlock>)> {
    match cmd {
        Command::AddTxs(txs) => Some((m.add(txs.clone()), None)),
        Command::BuildBlock { limits, proposer } => {
            let b = m.build(*limits);
            let fact = EventKind::BlockProposed {
                height: Height(m.height + 1),
                proposer: *proposer,
                txs: b.txs.iter().map(|t| t.hash).collect(),
                total_bytes: b.total_bytes,
                total_gas: b.total_gas,
            };
            Some((vec![fact], Some(b)))
        }
        Command::CommitBlock(c) => (c.height.get() > m.height)
            .then(|| (m.commit(c.height.get(), &c.txs, &c.nonces, c.base_fee_per_gas), None)),
        Command::Reorg(r) => {
            let mut heights: Vec<u64> = r.orphaned.iter().map(|b| b.height.get()).collect();
            heights.sort_unstable();
            let in_range = heights.iter().all(|&h| h > r.fork_height.get() && h <= m.height);
            heights.dedup();
            if r.fork_height.get() >= m.height || !in_range || heights.len() != r.orphaned.len() {
                return None;
            }
            let mut blocks: Vec<(u64, Vec<Tx>)> =
                r.orphaned.iter().map(|b| (b.height.get(), b.txs.clone())).collect();
            blocks.sort_by_key(|b| b.0);
            Some((m.reorg(r.fork_height.get(), &blocks, &r.nonces, r.base_fee_per_gas), None))
        }
    }
}

/// Every invariant of the crate docs, through the public API only.
pub fn check_invariants(pool: &Mempool) {
    let c = pool.config();
    let (mut len, mut pending, mut bytes) = (0usize, 0usize, 0u64);
    let mut hashes = BTreeSet::new();
    for view in pool.senders() {
        let txs: Vec<(&Tx, Subpool)> = view.txs().collect();
        assert!(txs.len() <= c.max_txs_per_sender as usize, "sender over its slot cap");
        let mut in_run = true;
        let mut previous = None;
        for (expected, (tx, subpool)) in (view.nonce().get()..=u64::MAX).zip(&txs) {
            assert!(previous < Some(tx.nonce), "nonces strictly ascending, no duplicates");
            previous = Some(tx.nonce);
            assert!(tx.nonce >= view.nonce(), "no transaction below its sender's nonce");
            in_run = in_run && tx.nonce.get() == expected;
            assert_eq!(
                *subpool == Subpool::Pending,
                in_run,
                "pending is exactly the contiguous run"
            );
            assert!(hashes.insert(tx.hash), "duplicate hash");
            assert!(tx.encoded_size <= c.max_tx_bytes && tx.gas_limit <= c.max_block_gas);
            assert_eq!(
                pool.get(&tx.hash).map(|(t, s)| (t.clone(), s)),
                Some(((*tx).clone(), *subpool))
            );
            len += 1;
            pending += usize::from(*subpool == Subpool::Pending);
            bytes += u64::from(tx.encoded_size);
        }
    }
    assert_eq!((len, pending, bytes), (pool.len(), pool.pending_len(), pool.bytes()));
    assert!(len <= c.max_txs as usize && bytes <= c.max_pool_bytes, "pool caps hold");
    assert!(pool.committed_len() <= c.committed_cache_size as usize);
}

/// A built block respects its limits and each sender's nonce order from its committed nonce.
pub fn check_block(pool: &Mempool, limits: BlockLimits, block: &BuiltBlock) {
    assert!(limits.max_bytes.is_none_or(|m| block.total_bytes <= m));
    assert!(limits.max_gas.is_none_or(|m| block.total_gas <= m));
    let mut next = std::collections::BTreeMap::new();
    for tx in &block.txs {
        let expected = next.entry(tx.sender).or_insert_with(|| pool.sender_nonce(&tx.sender));
        assert_eq!(tx.nonce, *expected, "block breaks a sender's nonce order");
        *expected = Nonce(expected.get() + 1);
        assert_eq!(pool.get(&tx.hash).map(|(_, s)| s), Some(Subpool::Pending));
    }
    assert_eq!(
        block.total_bytes,
        block.txs.iter().fold(0u64, |a, t| a.saturating_add(u64::from(t.encoded_size)))
    );
    assert_eq!(block.total_gas, block.txs.iter().fold(0u64, |a, t| a.saturating_add(t.gas_limit)));
}

fn assert_same_state(pool: &Mempool, m: &Model) {
    assert_eq!(pool.len(), m.txs.len());
    assert_eq!(pool.height(), Height(m.height));
    assert_eq!(pool.base_fee_per_gas(), m.base_fee);
    for e in &m.txs {
        let got = pool.get(&e.tx.hash).map(|(t, s)| (t.clone(), s));
        assert_eq!(got, Some((e.tx.clone(), m.subpool_of(&e.tx.hash).unwrap())));
    }
    for s in 0..SENDERS {
        assert_eq!(
            pool.sender_nonce(&address(s)).get(),
            m.nonce(&address(s)),
            "nonce of sender {s}"
        );
    }
    assert_eq!(pool.committed_len(), m.committed.len());
    assert!(m.committed.iter().all(|h| pool.is_recently_committed(h)));
}

/// Runs `ops` and returns (facts per step, digest per step).
fn run(
    pool: &mut Mempool,
    ops: &[Op],
    chain: &mut Chain,
) -> (Vec<Vec<EventKind>>, Vec<mempulse_primitives::Digest>) {
    let mut facts = Vec::new();
    let mut digests = Vec::new();
    for op in ops {
        let cmd = resolve(op, pool, chain);
        facts.push(pool.apply(cmd).map(|o| o.facts).unwrap_or_default());
        digests.push(pool.digest());
    }
    (facts, digests)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pool_agrees_with_the_reference_model(ordering in ordering(), ops in prop::collection::vec(op(), 1..40)) {
        let mut pool = Mempool::new(config(ordering)).unwrap();
        let mut m = Model::new(config(ordering));
        let mut chain = Chain::default();
        for op in &ops {
            let cmd = resolve(op, &pool, &mut chain);
            for tx in match &cmd { Command::AddTxs(txs) => txs.as_slice(), _ => &[] } {
                prop_assert_eq!(pool.check_tx(tx), m.check(tx).map(|_| ()));
            }
            let before = pool.digest();
            let expected = model_apply(&mut m, &cmd);
            let got = pool.apply(cmd.clone());
            match (got, expected) {
                (Ok(outcome), Some((facts, block))) => {
                    prop_assert_eq!(&outcome.facts, &facts, "facts differ for {:?}", op);
                    prop_assert_eq!(&outcome.block, &block);
                    if let (Command::BuildBlock { limits, .. }, Some(b)) = (&cmd, &outcome.block) {
                        check_block(&pool, *limits, b);
                    }
                }
                (Err(_), None) => prop_assert_eq!(pool.digest(), before, "a refused command changed state"),
                (got, expected) => prop_assert!(false, "pool {:?} but model {:?}", got.map(|_| ()), expected.map(|_| ())),
            }
            check_invariants(&pool);
            assert_same_state(&pool, &m);
        }
    }

    #[test]
    fn same_commands_same_facts_and_digests_across_snapshot_restore(
        ordering in ordering(),
        ops in prop::collection::vec(op(), 2..40),
        split in any::<prop::sample::Index>(),
    ) {
        let mut a = Mempool::new(config(ordering)).unwrap();
        let (facts_a, digests_a) = run(&mut a, &ops, &mut Chain::default());

        let mut again = Mempool::new(config(ordering)).unwrap();
        let (facts_again, digests_again) = run(&mut again, &ops, &mut Chain::default());
        prop_assert_eq!(&facts_a, &facts_again);
        prop_assert_eq!(&digests_a, &digests_again);

        let at = split.index(ops.len());
        let mut b = Mempool::new(config(ordering)).unwrap();
        let mut chain = Chain::default();
        let (mut facts_b, mut digests_b) = run(&mut b, &ops[..at], &mut chain);
        let snapshot = b.snapshot();
        let mut restored = Mempool::restore(&snapshot).unwrap();
        prop_assert_eq!(restored.digest(), b.digest());
        prop_assert_eq!(restored.snapshot(), snapshot);
        let (rest_facts, rest_digests) = run(&mut restored, &ops[at..], &mut chain);
        facts_b.extend(rest_facts);
        digests_b.extend(rest_digests);
        prop_assert_eq!(&facts_a, &facts_b);
        prop_assert_eq!(&digests_a, &digests_b);
    }

    #[test]
    fn restore_never_panics_on_corrupt_bytes(
        ops in prop::collection::vec(op(), 1..15),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut pool = Mempool::new(config(OrderingPolicy::Fifo)).unwrap();
        run(&mut pool, &ops, &mut Chain::default());
        let mut bytes = pool.snapshot();
        for (i, v) in flips {
            let i = i.index(bytes.len());
            bytes[i] ^= v;
        }
        if let Ok(p) = Mempool::restore(&bytes) {
            check_invariants(&p);
            prop_assert_eq!(Mempool::restore(&p.snapshot()).unwrap().digest(), p.digest());
        }
        let cut = cut.index(bytes.len());
        prop_assert!(Mempool::restore(&bytes[..cut]).is_err());
    }
}

/// A stable label for a fact: its kind plus its reason or subpool.
fn label(fact: &EventKind) -> String {
    match fact {
        EventKind::TxRejected { reason, .. } => format!("rejected:{reason}"),
        EventKind::TxEvicted { reason, .. } => format!("evicted:{reason}"),
        EventKind::TxAdmitted { subpool, .. } => format!("admitted:{subpool}"),
        other => other.as_str().to_owned(),
    }
}

/// The random sequences above are not vacuous: across a fixed-seed sample they reach every
/// fact kind, rejection code and eviction reason the pool can produce.
#[test]
fn random_sequences_reach_every_outcome() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let mut seen = BTreeSet::new();
    for _ in 0..400 {
        let ordering = ordering().new_tree(&mut runner).unwrap().current();
        let ops = prop::collection::vec(op(), 1..40).new_tree(&mut runner).unwrap().current();
        let mut pool = Mempool::new(config(ordering)).unwrap();
        let (facts, _) = run(&mut pool, &ops, &mut Chain::default());
        seen.extend(facts.iter().flatten().map(label));
    }
    let expected = [
        "admitted:pending",
        "admitted:queued",
        "tx_replaced",
        "tx_promoted",
        "tx_included",
        "tx_reopened",
        "block_proposed",
        "block_committed",
        "reorg_detected",
        "evicted:pool_full",
        "evicted:stale",
        "evicted:expired",
        "evicted:sender_reset",
        "rejected:duplicate",
        "rejected:already_committed",
        "rejected:nonce_too_low",
        "rejected:nonce_gap_too_large",
        "rejected:gas_limit_too_high",
        "rejected:tx_too_large",
        "rejected:fee_too_low",
        "rejected:sender_slots_full",
        "rejected:pool_full",
        "rejected:replacement_underpriced",
        "rejected:reorg_conflict",
    ];
    let missing: Vec<_> = expected.iter().filter(|e| !seen.contains(**e)).collect();
    assert!(missing.is_empty(), "never reached: {missing:?} (seen {seen:?})");
}

fn wild_spec() -> impl Strategy<Value = TxSpec> {
    (0..4u64, any::<u64>(), any::<u128>(), any::<u128>(), any::<u64>(), any::<u32>(), any::<u64>())
        .prop_map(|(sender, nonce, max_fee, tip, gas_limit, size, salt)| TxSpec {
            sender,
            nonce: nonce % 4 + if salt % 5 == 0 { u64::MAX - 4 } else { 0 },
            max_fee,
            tip,
            gas_limit,
            size: size % 400,
            salt,
        })
}

/// Commands with extreme values (any fee, nonces near `u64::MAX`, any heights and nonce
/// updates, malformed reorgs) never panic, and the pool keeps its invariants.
fn wild_command() -> impl Strategy<Value = Command> {
    let nonces = prop::collection::vec((0..4u64, any::<u64>()), 0..3)
        .prop_map(|v| v.into_iter().map(|(s, n)| (address(s), Nonce(n))).collect::<Vec<_>>());
    prop_oneof![
        prop::collection::vec(wild_spec(), 1..6)
            .prop_map(|v| Command::AddTxs(v.iter().map(TxSpec::build).collect())),
        (
            any::<u64>(),
            prop::collection::vec(wild_spec(), 0..3),
            nonces.clone(),
            any::<Option<u128>>()
        )
            .prop_map(|(height, txs, nonces, base_fee_per_gas)| Command::CommitBlock(
                CommitBlock {
                    height: Height(height % 1_000),
                    txs: txs.iter().map(|s| s.build().hash).collect(),
                    nonces,
                    base_fee_per_gas,
                }
            )),
        (
            any::<u64>(),
            prop::collection::vec((any::<u64>(), prop::collection::vec(wild_spec(), 0..3)), 0..3),
            nonces
        )
            .prop_map(|(fork, blocks, nonces)| Command::Reorg(Reorg {
                fork_height: Height(fork % 1_000),
                orphaned: blocks
                    .into_iter()
                    .map(|(h, txs)| OrphanedBlock {
                        height: Height(h % 1_000),
                        txs: txs.iter().map(TxSpec::build).collect()
                    })
                    .collect(),
                nonces,
                base_fee_per_gas: None,
            })),
        (any::<Option<u64>>(), any::<Option<u64>>()).prop_map(|(max_bytes, max_gas)| {
            Command::BuildBlock {
                limits: BlockLimits { max_bytes, max_gas },
                proposer: ValidatorId(0),
            }
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn extreme_commands_never_panic(ordering in ordering(), cmds in prop::collection::vec(wild_command(), 1..30)) {
        let config = MempoolConfig { nonce_window: u64::MAX, max_block_gas: u64::MAX, ..config(ordering) };
        let mut pool = Mempool::new(config).unwrap();
        for cmd in cmds {
            let before = pool.digest();
            match pool.apply(cmd.clone()) {
                Ok(out) => {
                    if let (Command::BuildBlock { limits, .. }, Some(b)) = (&cmd, &out.block) {
                        check_block(&pool, *limits, b);
                    }
                }
                Err(_) => prop_assert_eq!(pool.digest(), before),
            }
            check_invariants(&pool);
        }
        prop_assert_eq!(Mempool::restore(&pool.snapshot()).unwrap().digest(), pool.digest());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn commands_round_trip_through_the_codec(cmd in wild_command()) {
        let bytes = cmd.to_bytes();
        prop_assert_eq!(Command::from_bytes(&bytes), Ok(cmd));
    }

    #[test]
    fn decoding_any_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(cmd) = Command::from_bytes(&bytes) {
            prop_assert_eq!(&cmd.to_bytes(), &bytes, "decoding is strict: one encoding per value");
        }
        let _ = Mempool::restore(&bytes);
    }
}
