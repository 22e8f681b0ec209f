//! Replaying a real WAL directory: `replay_wal`, `resume` and `scan_lifecycle`.

use mempulse_primitives::{KindCode, Seq};
use mempulse_replay::{
    CheckpointStore, LifecycleLookup, ReplayConfig, Replayer, replay_wal, resume, scan_lifecycle,
    test_utils::{MixConfig, generate, write_wal},
};

use crate::config;

#[test]
fn replays_a_wal_resumes_from_its_checkpoint_and_scans_a_lifecycle() {
    let wal_dir = tempfile::tempdir().unwrap();
    let ckpt_dir = tempfile::tempdir().unwrap();
    let mix = MixConfig { senders: 100, batch_txs: 16, pool_txs_max: 256, ..MixConfig::default() };
    let events = generate(&mix, 3_000).unwrap();
    write_wal(wal_dir.path(), &events, 64 << 10).unwrap();
    let reader = mempulse_wal::open_reader(wal_dir.path()).unwrap();

    let mut genesis = Replayer::new(config(250));
    let mut points = Vec::new();
    let applied = replay_wal(&mut genesis, &reader, None, |_, p| {
        points.push(*p);
        Ok(())
    })
    .unwrap();
    assert_eq!((applied, points.len()), (3_000, 12));

    // Stop at 1 700 writing a checkpoint at every point, then resume from the newest.
    let store = CheckpointStore::open(ckpt_dir.path(), 2).unwrap();
    let mut first = Replayer::new(config(250));
    replay_wal(&mut first, &reader, Some(Seq(1_700)), |r, _| store.write(r).map(|_| ())).unwrap();
    assert_eq!(first.last_seq(), Seq(1_700));
    assert_eq!(store.seqs().unwrap(), [Seq(1_500), Seq(1_250)]);
    let resumed = resume(&reader, Some(&store), config(250), None).unwrap();
    assert_eq!(resumed.checkpoint.map(|m| m.seq), Some(Seq(1_500)));
    let mut r = resumed.replayer;
    let mut later = Vec::new();
    replay_wal(&mut r, &reader, None, |_, p| {
        later.push(*p);
        Ok(())
    })
    .unwrap();
    assert_eq!(later, points[6..]);
    assert_eq!(r.open_digest(), genesis.open_digest());

    // A transaction included early: the index holds it, and a full scan finds the same facts.
    let included = events
        .iter()
        .find_map(|e| match &e.kind {
            mempulse_primitives::EventKind::TxIncluded { hash, .. } => Some(*hash),
            _ => None,
        })
        .unwrap();
    let scanned = scan_lifecycle(&reader, &included, Seq(0), None).unwrap();
    let LifecycleLookup::Found(life) = genesis.lifecycle(&included) else { panic!("kept") };
    assert_eq!(
        life.facts.iter().map(|f| f.seq).collect::<Vec<_>>(),
        scanned.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
    assert!(life.facts.iter().any(|f| f.kind == KindCode::TxIncluded));

    // A tiny finished-lifecycle bound prunes it; the answer says so.
    let mut small = Replayer::new(ReplayConfig { finished_txs_max: 4, ..config(0) });
    replay_wal(&mut small, &reader, None, |_, _| Ok(())).unwrap();
    assert!(matches!(small.lifecycle(&included), LifecycleLookup::Pruned { .. }));
    assert_eq!(small.open_digest(), genesis.open_digest(), "the lifecycle bound is local");
}
