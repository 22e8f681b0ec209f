//! Rebasing a corrupted replica onto a healthy peer's checkpoint (`Replayer::rebase`): from the
//! installed index on, its digests are the healthy replica's own, and a checkpoint written
//! right after the rebase resumes to the same state as continuing in memory.

use mempulse_primitives::{Event, EventKind, Origin, RaftIndex, Seq};
use mempulse_replay::{
    Error, LifecycleLookup, RebaseRefusal, Replayer, checkpoint_bytes, checkpoint_from_bytes,
    replay_wal,
    test_utils::{MixConfig, generate, write_wal},
};
use proptest::prelude::*;

use crate::{apply_all, config};

fn replicated_index(event: &Event) -> Option<RaftIndex> {
    match event.origin {
        Origin::Replicated { raft_index } => Some(raft_index),
        Origin::Local => None,
    }
}

/// This replica's log: the healthy one without some of its local events (so its seqs differ)
/// and with the `nth` replicated admission's hash flipped. Returns it and the corrupted index.
fn corrupted_copy(healthy: &[Event], drop_every: usize, nth: usize) -> (Vec<Event>, RaftIndex) {
    let mut local: Vec<Event> = healthy
        .iter()
        .enumerate()
        .filter(|(i, e)| replicated_index(e).is_some() || drop_every == 0 || i % drop_every != 0)
        .map(|(_, e)| e.clone())
        .collect();
    let admissions: Vec<usize> = (0..local.len())
        .filter(|i| {
            matches!(local[*i].kind, EventKind::TxAdmitted { .. })
                && replicated_index(&local[*i]).is_some()
        })
        .collect();
    let at = admissions[nth % admissions.len()];
    let EventKind::TxAdmitted { tx, .. } = &mut local[at].kind else { unreachable!() };
    tx.hash.0[0] ^= 0xff;
    let bad = replicated_index(&local[at]).unwrap();
    (local, bad)
}

/// Position of the first replicated event with an index above `index`.
fn first_above(events: &[Event], index: RaftIndex) -> Option<usize> {
    events.iter().position(|e| replicated_index(e).is_some_and(|i| i > index))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn rebased_replica_has_the_healthy_digests_from_the_installed_index_on(
        seed in any::<u64>(),
        len in 600usize..2_500,
        drop_every in 0usize..5,
        nth in 0usize..64,
        at_per_mille in 0u64..=1000,
        lead in 0usize..200,
    ) {
        let mix = MixConfig {
            seed,
            senders: 40,
            batch_txs: 8,
            block_txs: 20,
            pool_txs_max: 64,
            reorg_every_blocks: 4,
            ..MixConfig::default()
        };
        let healthy = generate(&mix, len).unwrap();
        let (local_events, bad) = corrupted_copy(&healthy, drop_every, nth);

        // The peer's state through a complete index I ≥ the corrupted one.
        let mut indexes: Vec<RaftIndex> = healthy.iter().filter_map(replicated_index).collect();
        indexes.dedup();
        let candidates: Vec<RaftIndex> = indexes.iter().copied().filter(|i| *i >= bad).collect();
        let pick = (candidates.len() - 1) as u64 * at_per_mille / 1000;
        let through = candidates[pick as usize];
        let mut peer = Replayer::new(config(97));
        let peer_end = first_above(&healthy, through).unwrap_or(healthy.len());
        apply_all(&mut peer, 1, &healthy[..peer_end]);
        prop_assert_eq!(peer.seal_through(through).raft_index, through);
        let peer = checkpoint_from_bytes(&checkpoint_bytes(&peer), config(97)).unwrap().replayer;

        // This replica, a little past the point where it sealed I.
        let dir = tempfile::tempdir().unwrap();
        write_wal(dir.path(), &local_events, 32 << 10).unwrap();
        let reader = mempulse_wal::open_reader(dir.path()).unwrap();
        let sealed_at = first_above(&local_events, through).map_or(local_events.len(), |p| p + 1);
        let cut = (sealed_at + lead).min(local_events.len());
        let mut local = Replayer::new(config(97));
        replay_wal(&mut local, &reader, Some(Seq(cut as u64)), |_, _| Ok(())).unwrap();
        let mut unrepaired = local.clone();
        let before = (local.last_seq(), local.events(), local.next_seq());

        let rebased = local.rebase(peer, &reader).unwrap();
        prop_assert_eq!(rebased.installed.raft_index, through);
        prop_assert_eq!((local.last_seq(), local.events(), local.next_seq()), before);
        let restarted = checkpoint_from_bytes(&checkpoint_bytes(&local), config(97)).unwrap();
        let mut restarted = restarted.replayer;
        let later = replay_wal(&mut local, &reader, None, |_, _| Ok(())).unwrap();
        prop_assert_eq!(later as usize, local_events.len() - cut);
        replay_wal(&mut restarted, &reader, None, |_, _| Ok(())).unwrap();
        replay_wal(&mut unrepaired, &reader, None, |_, _| Ok(())).unwrap();

        let mut genesis = Replayer::new(config(97));
        apply_all(&mut genesis, 1, &healthy);
        for d in genesis.index_digests().filter(|d| d.raft_index >= through) {
            let mine = local.digest_at(d.raft_index).unwrap();
            prop_assert_eq!((mine.raft_index, mine.digest), (d.raft_index, d.digest));
        }
        let (ours, theirs) = (local.open_digest(), genesis.open_digest());
        prop_assert_eq!((ours.raft_index, ours.digest), (theirs.raft_index, theirs.digest));
        prop_assert_eq!(local.anomalies(), 0);
        prop_assert_ne!(unrepaired.open_digest().digest, theirs.digest, "the fault persists");

        // The lifecycle index follows the new pool view: pooled transactions are live, the
        // corrupted one (only this log named it) is finished.
        for event in healthy.iter().chain(&local_events) {
            let EventKind::TxAdmitted { tx, .. } = &event.kind else { continue };
            if let LifecycleLookup::Found(life) = local.lifecycle(&tx.hash) {
                prop_assert_eq!(life.in_pool, local.pooled(&tx.hash).is_some());
            }
        }

        // A restart from a checkpoint of the rebased state ends where continuing did.
        prop_assert_eq!(restarted.open_digest(), local.open_digest());
        prop_assert_eq!(restarted.local_digest(), local.local_digest());
        prop_assert!(restarted.index_digests().eq(local.index_digests()));
    }
}

#[test]
fn a_peer_state_open_at_its_last_index_or_ahead_of_this_replica_is_refused() {
    let mix = MixConfig { senders: 20, batch_txs: 8, pool_txs_max: 64, ..MixConfig::default() };
    let events = generate(&mix, 800).unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_wal(dir.path(), &events, 32 << 10).unwrap();
    let reader = mempulse_wal::open_reader(dir.path()).unwrap();
    let mut open = Replayer::new(config(0));
    apply_all(&mut open, 1, &events);
    let sealed = open.digest().raft_index;
    assert!(open.last_raft_index() > sealed, "the last index is still open");

    let mut local = Replayer::new(config(0));
    apply_all(&mut local, 1, &events[..400]);
    let unchanged = local.open_digest();
    let refused = local.rebase(open.clone(), &reader).unwrap_err();
    assert!(matches!(refused, Error::Rebase(RebaseRefusal::PeerIndexOpen { .. })), "{refused}");
    let mut ahead = open;
    ahead.seal_through(ahead.last_raft_index());
    let refused = local.rebase(ahead, &reader).unwrap_err();
    assert!(matches!(refused, Error::Rebase(RebaseRefusal::LocalBehind { .. })), "{refused}");
    assert_eq!(local.open_digest(), unchanged);
}

#[test]
fn a_transaction_back_in_the_pool_view_is_live_in_the_lifecycle_index_again() {
    use mempulse_primitives::{Source, Subpool, UnixMillis};
    use mempulse_replay::test_utils::sample_tx;
    let fact = |index: u64, kind: EventKind| Event {
        observed_at: UnixMillis(0),
        source: Source::Mempool,
        origin: Origin::Replicated { raft_index: RaftIndex(index) },
        kind,
    };
    let (a, b) = (sample_tx(1, 0), sample_tx(2, 0));
    let mut wrong = a.clone();
    wrong.hash.0[0] ^= 0xff;
    let log = |first: &mempulse_primitives::Tx| {
        vec![
            fact(1, EventKind::TxAdmitted { tx: first.clone(), subpool: Subpool::Queued }),
            fact(2, EventKind::TxPromoted { hash: a.hash }),
            fact(3, EventKind::TxAdmitted { tx: b.clone(), subpool: Subpool::Pending }),
        ]
    };
    let mut peer = Replayer::new(config(0));
    apply_all(&mut peer, 1, &log(&a)[..2]);
    peer.seal_through(RaftIndex(2));
    let local_log = log(&wrong);
    let dir = tempfile::tempdir().unwrap();
    write_wal(dir.path(), &local_log, 32 << 10).unwrap();
    let reader = mempulse_wal::open_reader(dir.path()).unwrap();
    let mut local = Replayer::new(config(0));
    apply_all(&mut local, 1, &local_log);
    // Here the promotion of `a` found nothing to promote: `a` is known, but not pooled.
    let LifecycleLookup::Found(before) = local.lifecycle(&a.hash) else { panic!("a is indexed") };
    assert!(!before.in_pool);
    assert_eq!(local.anomalies(), 1);

    let rebased = local.rebase(peer.clone(), &reader).unwrap();
    assert_eq!((rebased.installed.raft_index, rebased.reapplied), (RaftIndex(2), 1));
    let LifecycleLookup::Found(after) = local.lifecycle(&a.hash) else { panic!("a is indexed") };
    assert!(after.in_pool && local.pooled(&a.hash).is_some());
    let LifecycleLookup::Found(gone) = local.lifecycle(&wrong.hash) else { panic!("indexed") };
    assert!(!gone.in_pool && local.pooled(&wrong.hash).is_none());
    assert_eq!((local.anomalies(), local.pool_len()), (0, 2));
    let mut healthy = Replayer::new(config(0));
    apply_all(&mut healthy, 1, &log(&a));
    assert_eq!(local.open_digest().digest, healthy.open_digest().digest);
}
