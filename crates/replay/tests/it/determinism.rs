//! The CI determinism gate: a committed WAL fixture is replayed from genesis, again from genesis,
//! and from a checkpoint in the middle; every digest point must match across the runs (100 %)
//! and match the golden digests stored next to the fixture.
//!
//! The fixture is what `mempulse_replay::test_utils::generate(&fixture_mix(), EVENTS)` produces,
//! written by `test_utils::write_wal` (see `tests/fixtures/determinism/README.md`). A change of
//! the derivation rules (`RULE_VERSION`) or of the event schema changes the digests: regenerate
//! the fixture and the golden file, then review the diff:
//!
//! ```text
//! MEMPULSE_BLESS=1 cargo nextest run -p mempulse-replay --all-features -E 'test(determinism)'
//! ```

use std::path::{Path, PathBuf};

use mempulse_primitives::Seq;
use mempulse_replay::{
    CheckpointStore, DigestPoint, Replayer, replay_wal, resume,
    test_utils::{MixConfig, generate, write_wal},
};

use crate::config;

/// Events in the fixture.
const EVENTS: usize = 10_000;
/// Digest point distance.
const EVERY: u64 = 250;
/// Seq of the middle checkpoint.
const CHECKPOINT_AT: u64 = 5_000;
/// Segment size of the fixture log (several sealed segments).
const SEGMENT_BYTES: u64 = 256 << 10;

/// The generator settings of the fixture: small transactions, a small pool (evictions), frequent
/// reorgs and replacements.
fn fixture_mix() -> MixConfig {
    MixConfig {
        seed: 0x6669_7874,
        senders: 300,
        batch_txs: 24,
        block_every_batches: 3,
        block_txs: 50,
        pool_txs_max: 400,
        raw_bytes_max: Some(16),
        drop_per_mille: 40,
        replace_per_mille: 60,
        delay_per_mille: 40,
        reorg_every_blocks: 7,
    }
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/determinism")
}

fn blessing() -> bool {
    std::env::var_os("MEMPULSE_BLESS").is_some_and(|v| v == "1")
}

fn golden_lines(points: &[DigestPoint], end: &Replayer) -> String {
    let mut out = String::from(
        "# seq raft_index digest events (then: end last_seq open_index open_digest local_digest anomalies)\n",
    );
    for p in points {
        out.push_str(&format!("{} {} {} {}\n", p.seq, p.raft_index, p.digest, p.events));
    }
    let open = end.open_digest();
    out.push_str(&format!(
        "end {} {} {} {} {}\n",
        end.last_seq(),
        open.raft_index,
        open.digest,
        end.local_digest(),
        end.anomalies()
    ));
    out
}

fn replay_all(
    reader: &mempulse_wal::WalReader,
    mut replayer: Replayer,
) -> (Vec<DigestPoint>, Replayer) {
    let mut points = Vec::new();
    replay_wal(&mut replayer, reader, None, |_, p| {
        points.push(*p);
        Ok(())
    })
    .unwrap();
    (points, replayer)
}

#[test]
fn determinism_gate_fixture_replays_identically_from_genesis_and_from_a_checkpoint() {
    let wal_dir = fixture_dir().join("wal");
    let golden_path = fixture_dir().join("golden.txt");
    if blessing() {
        let _ = std::fs::remove_dir_all(&wal_dir);
        std::fs::create_dir_all(&wal_dir).unwrap();
        let events = generate(&fixture_mix(), EVENTS).unwrap();
        write_wal(&wal_dir, &events, SEGMENT_BYTES).unwrap();
        // The writer's lock file is not part of the log.
        std::fs::remove_file(wal_dir.join("LOCK")).unwrap();
    }
    let reader = mempulse_wal::open_reader(&wal_dir).unwrap();
    assert_eq!((reader.first_seq(), reader.last_seq()), (Seq(1), Seq(EVENTS as u64)));

    let (points, genesis) = replay_all(&reader, Replayer::new(config(EVERY)));
    assert_eq!(points.len(), EVENTS / EVERY as usize);
    assert_eq!(genesis.anomalies(), 0);
    let (again, second) = replay_all(&reader, Replayer::new(config(EVERY)));
    assert_eq!(again, points, "a second genesis replay differs");
    assert_eq!(second.local_digest(), genesis.local_digest());

    let ckpt_dir = tempfile::tempdir().unwrap();
    let store = CheckpointStore::open(ckpt_dir.path(), 1).unwrap();
    let mut first_half = Replayer::new(config(EVERY));
    replay_wal(&mut first_half, &reader, Some(Seq(CHECKPOINT_AT)), |_, _| Ok(())).unwrap();
    store.write(&first_half).unwrap();
    let resumed = resume(&reader, Some(&store), config(EVERY), None).unwrap();
    assert_eq!(resumed.checkpoint.map(|m| m.seq), Some(Seq(CHECKPOINT_AT)));
    let (later, from_checkpoint) = replay_all(&reader, resumed.replayer);
    let expected: Vec<_> = points.iter().filter(|p| p.seq.0 > CHECKPOINT_AT).copied().collect();
    assert_eq!(later, expected, "replay from the checkpoint differs");
    assert_eq!(from_checkpoint.open_digest(), genesis.open_digest());
    assert_eq!(from_checkpoint.local_digest(), genesis.local_digest());

    let lines = golden_lines(&points, &genesis);
    if blessing() {
        std::fs::write(&golden_path, &lines).unwrap();
    }
    let golden = std::fs::read_to_string(&golden_path).unwrap();
    assert!(
        golden == lines,
        "digests differ from {}: rules changed? see the module docs",
        golden_path.display()
    );
}
