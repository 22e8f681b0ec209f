//! Scenario tests: one per rejection code, building policies, commit, TTL, reorg, snapshot.

use mempulse_mempool::test_utils::{TxSpec, address, tx};
use mempulse_mempool::{
    BlockLimits, Command, CommitBlock, Error, Mempool, MempoolConfig, OrderingPolicy,
    OrphanedBlock, Reorg, SnapshotErrorKind,
};
use mempulse_primitives::{
    EventKind, EvictReason, Height, Nonce, RejectReason, Subpool, Tx, TxHash, ValidatorId,
};

use crate::props::{check_block, check_invariants};

fn small() -> MempoolConfig {
    MempoolConfig {
        max_txs: 4,
        max_pool_bytes: 10_000,
        max_tx_bytes: 200,
        max_txs_per_sender: 3,
        nonce_window: 2,
        committed_cache_size: 4,
        ttl_heights: 3,
        min_priority_fee_per_gas: 2,
        max_block_gas: 100_000,
        ..MempoolConfig::default()
    }
}

fn pool(config: MempoolConfig) -> Mempool {
    Mempool::new(config).unwrap()
}

fn rejected(facts: &[EventKind]) -> Option<RejectReason> {
    facts.iter().find_map(|f| match f {
        EventKind::TxRejected { reason, .. } => Some(*reason),
        _ => None,
    })
}

fn commit(p: &mut Mempool, height: u64, txs: &[&Tx]) -> Vec<EventKind> {
    let block = CommitBlock {
        height: Height(height),
        txs: txs.iter().map(|t| t.hash).collect(),
        ..CommitBlock::default()
    };
    let facts = p.commit_block(&block).unwrap();
    check_invariants(p);
    facts
}

fn hashes(txs: &[Tx]) -> Vec<TxHash> {
    txs.iter().map(|t| t.hash).collect()
}

#[test]
fn every_stateless_and_nonce_rejection_code() {
    let mut p = pool(small());
    let ok = tx(1, 0, 10);
    assert!(p.add_txs([ok.clone()]).iter().all(|f| matches!(f, EventKind::TxAdmitted { .. })));
    let cases = [
        (ok.clone(), RejectReason::Duplicate),
        (TxSpec { size: 201, ..TxSpec::new(2, 0, 10) }.build(), RejectReason::TxTooLarge),
        (
            TxSpec { gas_limit: 100_001, ..TxSpec::new(2, 0, 10) }.build(),
            RejectReason::GasLimitTooHigh,
        ),
        (tx(2, 0, 1), RejectReason::FeeTooLow),
        (tx(1, 4, 10), RejectReason::NonceGapTooLarge),
        (tx(1, u64::MAX, 10), RejectReason::NonceGapTooLarge),
        (
            TxSpec { tip: 10, max_fee: 10, salt: 1, ..TxSpec::new(1, 0, 10) }.build(),
            RejectReason::ReplacementUnderpriced,
        ),
    ];
    for (t, reason) in cases {
        assert_eq!(p.check_tx(&t), Err(reason), "{reason}");
        assert_eq!(rejected(&p.add_txs([t])), Some(reason));
    }
    // Window 2 from next nonce 1: nonce 3 is the farthest admissible.
    assert_eq!(p.check_tx(&tx(1, 3, 10)), Ok(()));

    commit(&mut p, 1, &[&ok]);
    assert_eq!(rejected(&p.add_txs([ok.clone()])), Some(RejectReason::AlreadyCommitted));
    assert_eq!(rejected(&p.add_txs([tx(1, 0, 50)])), Some(RejectReason::NonceTooLow));
    check_invariants(&p);
}

#[test]
fn sender_slots_full_and_pool_full() {
    let mut p = pool(small());
    p.add_txs([tx(1, 0, 10), tx(1, 1, 10), tx(1, 2, 10)]);
    assert_eq!(rejected(&p.add_txs([tx(1, 3, 90)])), Some(RejectReason::SenderSlotsFull));
    // A replacement does not need a free slot.
    assert!(rejected(&p.add_txs([tx(1, 2, 20)])).is_none());
    p.add_txs([tx(2, 0, 5)]);
    assert_eq!(p.len(), 4);
    // Not strictly better than the worst (tip 5): rejected, nothing evicted.
    let facts = p.add_txs([tx(3, 0, 5)]);
    assert_eq!(
        facts,
        vec![EventKind::TxRejected { hash: tx(3, 0, 5).hash, reason: RejectReason::PoolFull }]
    );
    // Better: the worst (sender 2) is evicted to make room.
    let facts = p.add_txs([tx(3, 0, 6)]);
    assert_eq!(
        facts[0],
        EventKind::TxEvicted { hash: tx(2, 0, 5).hash, reason: EvictReason::PoolFull }
    );
    assert!(matches!(facts[1], EventKind::TxAdmitted { subpool: Subpool::Pending, .. }));
    check_invariants(&p);
}

#[test]
fn eviction_takes_later_nonces_and_never_the_newcomers_own_chain() {
    let mut p = pool(MempoolConfig { max_txs: 3, ..small() });
    p.add_txs([tx(1, 0, 3), tx(1, 1, 30), tx(2, 0, 20)]);
    // The worst is sender 1's nonce 0; its nonce 1 goes with it (sender_reset).
    let facts = p.add_txs([tx(3, 0, 10)]);
    assert_eq!(
        &facts[..2],
        &[
            EventKind::TxEvicted { hash: tx(1, 0, 3).hash, reason: EvictReason::PoolFull },
            EventKind::TxEvicted { hash: tx(1, 1, 30).hash, reason: EvictReason::SenderReset },
        ]
    );
    // Sender 3's own nonce 0 is the worst now: its nonce 1 may not evict it.
    p.add_txs([tx(4, 0, 40)]);
    assert_eq!(rejected(&p.add_txs([tx(3, 1, 90)])), Some(RejectReason::PoolFull));
    check_invariants(&p);
}

#[test]
fn replacement_needs_the_bump_on_both_fees_and_keeps_the_subpool() {
    let mut p = pool(small());
    let old = TxSpec { max_fee: 100, tip: 10, ..TxSpec::new(1, 1, 0) }.build();
    p.add_txs([old.clone()]);
    let tip_only = TxSpec { max_fee: 100, tip: 20, ..TxSpec::new(1, 1, 0) }.build();
    assert_eq!(p.check_tx(&tip_only), Err(RejectReason::ReplacementUnderpriced));
    let both = TxSpec { max_fee: 110, tip: 11, ..TxSpec::new(1, 1, 0) }.build();
    let facts = p.add_txs([both.clone()]);
    assert_eq!(
        facts,
        vec![
            EventKind::TxReplaced {
                old: old.hash,
                new: both.hash,
                sender: address(1),
                nonce: Nonce(1)
            },
            EventKind::TxAdmitted { tx: both.clone(), subpool: Subpool::Queued },
        ]
    );
    assert!(p.get(&old.hash).is_none());
    assert_eq!(p.get(&both.hash).map(|(_, s)| s), Some(Subpool::Queued));
}

#[test]
fn gap_closing_promotes_in_nonce_order() {
    let mut p = pool(small());
    let facts = p.add_txs([tx(1, 2, 10), tx(1, 1, 10), tx(1, 0, 10)]);
    let promoted: Vec<_> = facts
        .iter()
        .filter_map(|f| match f {
            EventKind::TxPromoted { hash } => Some(*hash),
            _ => None,
        })
        .collect();
    assert_eq!(promoted, vec![tx(1, 1, 10).hash, tx(1, 2, 10).hash]);
    assert_eq!((p.pending_len(), p.queued_len()), (3, 0));
}

fn build_pool(ordering: OrderingPolicy) -> Mempool {
    let config = MempoolConfig { ordering, max_txs: 100, ..small() };
    let mut p = pool(config);
    // Sender 1's nonce 1 arrives first (queued), then sender 2, then sender 1's nonce 0.
    p.add_txs([tx(1, 1, 50), tx(2, 0, 5), tx(3, 0, 20), tx(1, 0, 10)]);
    p
}

#[test]
fn fifo_and_priority_order_blocks_differently() {
    let all = BlockLimits::default();
    let fifo = build_pool(OrderingPolicy::Fifo);
    let block = fifo.build_block(all);
    check_block(&fifo, all, &block);
    // Admission order; sender 1's nonce 1 waits for its nonce 0 and follows it at once.
    assert_eq!(
        hashes(&block.txs),
        vec![tx(2, 0, 5).hash, tx(3, 0, 20).hash, tx(1, 0, 10).hash, tx(1, 1, 50).hash]
    );

    let prio = build_pool(OrderingPolicy::Priority);
    let block = prio.build_block(all);
    check_block(&prio, all, &block);
    // Best head first: sender 3 (20), sender 1 (10) unlocks its nonce 1 (50), then sender 2.
    assert_eq!(
        hashes(&block.txs),
        vec![tx(3, 0, 20).hash, tx(1, 0, 10).hash, tx(1, 1, 50).hash, tx(2, 0, 5).hash]
    );
    assert_eq!(block.total_bytes, 400);
    assert_eq!(block.total_gas, 84_000);
}

#[test]
fn building_respects_both_limits_and_skips_whole_senders() {
    for ordering in [OrderingPolicy::Fifo, OrderingPolicy::Priority] {
        let p = build_pool(ordering);
        let gas = BlockLimits { max_bytes: None, max_gas: Some(42_000) };
        let block = p.build_block(gas);
        check_block(&p, gas, &block);
        assert_eq!(block.txs.len(), 2);
        let bytes = BlockLimits::from_cometbft(250, -1);
        let block = p.build_block(bytes);
        check_block(&p, bytes, &block);
        assert_eq!(block.total_bytes, 200);
        let none = BlockLimits { max_bytes: Some(99), max_gas: None };
        assert!(p.build_block(none).txs.is_empty());
    }
    // A sender whose head cannot pay the base fee is skipped with its later nonces.
    let mut p = pool(MempoolConfig { max_txs: 100, ..small() });
    p.add_txs([
        TxSpec { max_fee: 4, tip: 4, ..TxSpec::new(1, 0, 0) }.build(),
        tx(1, 1, 90),
        tx(2, 0, 9),
    ]);
    commit(&mut p, 1, &[]);
    let block =
        CommitBlock { height: Height(2), base_fee_per_gas: Some(5), ..CommitBlock::default() };
    p.commit_block(&block).unwrap();
    assert_eq!(hashes(&p.build_block(BlockLimits::default()).txs), vec![tx(2, 0, 9).hash]);
}

#[test]
fn build_command_reports_the_proposal_and_changes_nothing() {
    let mut p = build_pool(OrderingPolicy::Priority);
    let before = p.digest();
    let out = p
        .apply(Command::BuildBlock { limits: BlockLimits::default(), proposer: ValidatorId(7) })
        .unwrap();
    let block = out.block.unwrap();
    assert_eq!(
        out.facts,
        vec![EventKind::BlockProposed {
            height: Height(1),
            proposer: ValidatorId(7),
            txs: hashes(&block.txs),
            total_bytes: block.total_bytes,
            total_gas: block.total_gas,
        }]
    );
    assert_eq!(p.digest(), before);
}

#[test]
fn commit_removes_included_evicts_stale_promotes_and_expires() {
    let mut p = pool(MempoolConfig { max_txs: 100, ..small() });
    let (a0, a1, a3) = (tx(1, 0, 10), tx(1, 1, 10), tx(1, 3, 10));
    let b1 = tx(2, 1, 10);
    p.add_txs([a0.clone(), a1.clone(), a3.clone(), b1.clone()]);
    assert_eq!(p.get(&b1.hash).map(|(_, s)| s), Some(Subpool::Queued));
    // Block 1 includes a0 and, from elsewhere, sender 1's nonce 1 and sender 2's nonce 0.
    let block = CommitBlock {
        height: Height(1),
        txs: vec![a0.hash, TxHash([9; 32])],
        nonces: vec![(address(1), Nonce(2)), (address(2), Nonce(1))],
        base_fee_per_gas: Some(1),
    };
    let facts = p.commit_block(&block).unwrap();
    assert_eq!(
        facts,
        vec![
            EventKind::BlockCommitted { height: Height(1), txs: block.txs.clone() },
            EventKind::TxIncluded { hash: a0.hash, height: Height(1) },
            EventKind::TxEvicted { hash: a1.hash, reason: EvictReason::Stale },
            EventKind::TxPromoted { hash: b1.hash },
        ]
    );
    assert_eq!((p.sender_nonce(&address(1)), p.base_fee_per_gas()), (Nonce(2), 1));
    assert!(p.is_recently_committed(&a0.hash) && p.is_recently_committed(&TxHash([9; 32])));
    assert_eq!(p.get(&a3.hash).map(|(_, s)| s), Some(Subpool::Queued));
    let err = p.commit_block(&CommitBlock { height: Height(1), ..CommitBlock::default() });
    assert_eq!(err, Err(Error::HeightNotAscending { current: Height(1), got: Height(1) }));
    // TTL 3: everything admitted at height 0 expires when height 3 commits.
    let late = tx(3, 0, 10);
    commit(&mut p, 2, &[]);
    p.add_txs([late.clone()]);
    let facts = commit(&mut p, 3, &[]);
    assert!(facts.contains(&EventKind::TxEvicted { hash: a3.hash, reason: EvictReason::Expired }));
    assert!(facts.contains(&EventKind::TxEvicted { hash: b1.hash, reason: EvictReason::Expired }));
    assert_eq!(p.len(), 1);
    assert!(p.get(&late.hash).is_some());
}

#[test]
fn committed_cache_is_bounded_fifo() {
    let mut p = pool(small());
    let txs: Vec<Tx> = (0..6).map(|i| tx(10 + i, 0, 10)).collect();
    for (i, t) in txs.iter().enumerate() {
        commit(&mut p, i as u64 + 1, &[t]);
    }
    assert_eq!(p.committed_len(), 4);
    assert!(!p.is_recently_committed(&txs[1].hash));
    assert!(p.is_recently_committed(&txs[2].hash));
}

#[test]
fn reorg_rolls_nonces_back_and_reopens_or_rejects() {
    let mut p = pool(MempoolConfig { max_txs: 100, ..small() });
    let (a0, a1) = (tx(1, 0, 10), tx(1, 1, 10));
    p.add_txs([a0.clone(), a1.clone()]);
    commit(&mut p, 1, &[&a0]);
    let a2 = tx(1, 2, 10);
    p.add_txs([a2.clone()]);
    // An external tx of sender 2 at nonce 1 was included; the pool holds another nonce 1.
    let foreign = TxSpec { salt: 5, ..TxSpec::new(2, 1, 10) }.build();
    p.add_txs([tx(2, 1, 10)]);
    commit(&mut p, 2, &[&foreign]);
    let reorg = Reorg {
        fork_height: Height(0),
        orphaned: vec![
            OrphanedBlock { height: Height(2), txs: vec![foreign.clone()] },
            OrphanedBlock { height: Height(1), txs: vec![a0.clone()] },
        ],
        ..Reorg::default()
    };
    let facts = p.reorg(reorg).unwrap();
    assert_eq!(
        facts,
        vec![
            EventKind::ReorgDetected {
                fork_height: Height(0),
                orphaned: vec![Height(1), Height(2)]
            },
            EventKind::TxReopened { hash: a0.hash, orphaned_height: Height(1) },
            EventKind::TxRejected { hash: foreign.hash, reason: RejectReason::ReorgConflict },
        ]
    );
    check_invariants(&p);
    assert_eq!(p.sender_nonce(&address(1)), Nonce(0));
    assert_eq!(p.height(), Height(0));
    assert!(!p.is_recently_committed(&a0.hash));
    for t in [&a0, &a1, &a2] {
        assert_eq!(p.get(&t.hash).map(|(_, s)| s), Some(Subpool::Pending));
    }
    let bad = Reorg { fork_height: Height(0), ..Reorg::default() };
    assert!(matches!(p.reorg(bad), Err(Error::InvalidReorg { .. })));
}

#[test]
fn reorg_override_below_the_pool_resets_the_broken_chain() {
    let mut p = pool(MempoolConfig { max_txs: 100, ..small() });
    p.add_txs([tx(1, 0, 10)]);
    let block = CommitBlock {
        height: Height(1),
        nonces: vec![(address(1), Nonce(5))],
        ..CommitBlock::default()
    };
    p.commit_block(&block).unwrap();
    let a5 = tx(1, 5, 10);
    p.add_txs([a5.clone()]);
    let reorg = Reorg {
        fork_height: Height(0),
        orphaned: vec![OrphanedBlock { height: Height(1), txs: vec![] }],
        nonces: vec![(address(1), Nonce(4))],
        base_fee_per_gas: None,
    };
    let facts = p.reorg(reorg).unwrap();
    assert_eq!(facts[1], EventKind::TxEvicted { hash: a5.hash, reason: EvictReason::SenderReset });
    check_invariants(&p);
}

#[test]
fn idle_senders_are_bounded() {
    let mut p = pool(MempoolConfig { max_idle_senders: 2, ..small() });
    let nonces = (1..=3).map(|s| (address(s), Nonce(7))).collect();
    p.commit_block(&CommitBlock { height: Height(1), nonces, ..CommitBlock::default() }).unwrap();
    assert_eq!(p.sender_nonce(&address(1)), Nonce(0), "oldest idle sender forgotten");
    assert_eq!(p.sender_nonce(&address(3)), Nonce(7));
}

#[test]
fn snapshot_round_trips_and_rejects_every_truncation() {
    let mut p = build_pool(OrderingPolicy::Fifo);
    commit(&mut p, 1, &[&tx(2, 0, 5)]);
    let bytes = p.snapshot();
    let q = Mempool::restore(&bytes).unwrap();
    assert_eq!(q.snapshot(), bytes);
    assert_eq!(q.digest(), p.digest());
    for cut in 0..bytes.len() {
        assert!(Mempool::restore(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(matches!(
        Mempool::restore(&extra),
        Err(Error::Snapshot { kind: SnapshotErrorKind::TrailingBytes, .. })
    ));
    let mut magic = bytes.clone();
    magic[0] = b'X';
    assert!(matches!(
        Mempool::restore(&magic),
        Err(Error::Snapshot { kind: SnapshotErrorKind::BadMagic, offset: 4 })
    ));
    let mut version = bytes;
    version[4] = 9;
    assert!(matches!(
        Mempool::restore(&version),
        Err(Error::Snapshot { kind: SnapshotErrorKind::UnsupportedVersion(9), .. })
    ));
}

/// Golden digest: any change to the snapshot format or to the rules that shape this state
/// changes it. Update it only with a format version bump or a deliberate rule change.
#[test]
fn digest_of_a_fixed_history_is_stable() {
    let mut p = build_pool(OrderingPolicy::Priority);
    commit(&mut p, 1, &[&tx(3, 0, 20)]);
    p.add_txs([tx(4, 0, 9), tx(4, 2, 9)]);
    assert_eq!(p.snapshot().len(), GOLDEN_LEN);
    assert_eq!(p.digest().to_string(), GOLDEN_DIGEST);
}

const GOLDEN_LEN: usize = 1474;
const GOLDEN_DIGEST: &str = "0x3e866332181e03d78686314e23a81b24bb0d4ab66ba94629e2c8901197673ebc";

/// Extreme values from the chain adapter or from transactions never panic or overflow.
#[test]
fn extreme_nonces_heights_and_fees_are_handled() {
    let mut p = pool(MempoolConfig { nonce_window: u64::MAX, ..small() });
    let near =
        TxSpec { max_fee: u128::MAX, tip: u128::MAX, ..TxSpec::new(1, u64::MAX - 1, 0) }.build();
    let nonces = vec![(address(1), Nonce(u64::MAX - 1)), (address(2), Nonce(u64::MAX))];
    let block = CommitBlock {
        height: Height(u64::MAX - 1),
        txs: Vec::new(),
        nonces,
        base_fee_per_gas: Some(u128::MAX),
    };
    p.commit_block(&block).unwrap();
    assert!(p.add_txs([near.clone()]).iter().any(|f| matches!(f, EventKind::TxAdmitted { .. })));
    assert_eq!(p.check_tx(&tx(2, u64::MAX, 10)), Err(RejectReason::NonceGapTooLarge));
    let all = BlockLimits::default();
    assert_eq!(hashes(&p.build_block(all).txs), vec![near.hash]);
    check_invariants(&p);
    let facts = commit(&mut p, u64::MAX, &[&near]);
    assert!(facts.contains(&EventKind::TxIncluded { hash: near.hash, height: Height(u64::MAX) }));
    assert_eq!(p.sender_nonce(&address(1)), Nonce(u64::MAX));
    let out = p.apply(Command::BuildBlock { limits: all, proposer: ValidatorId(0) }).unwrap();
    assert!(out.block.unwrap().txs.is_empty());
}

#[test]
fn admission_measures_raw_and_normalizes_encoded_size() {
    let mut p = pool(small());
    let mut t = tx(1, 0, 10);
    t.encoded_size = 1; // disagrees with the 100 raw bytes
    let facts = p.add_txs([t]);
    let EventKind::TxAdmitted { tx: admitted, .. } = &facts[0] else { panic!("{facts:?}") };
    assert_eq!(admitted.encoded_size, 100);
    assert_eq!(p.bytes(), 100);
    let mut big = TxSpec { size: 201, ..TxSpec::new(2, 0, 10) }.build();
    big.encoded_size = 10;
    assert_eq!(p.check_tx(&big), Err(RejectReason::TxTooLarge));
    assert_eq!(Mempool::restore(&p.snapshot()).unwrap().digest(), p.digest());
}
