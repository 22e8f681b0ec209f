//! Checkpoint files: retention, atomic writes, and damaged checkpoints skipped, never trusted.

use std::{path::Path, sync::Arc};

use mempulse_primitives::{Event, Seq};
use mempulse_replay::{
    CheckpointDefect, CheckpointStore, Error, RULE_VERSION, Replayer,
    test_utils::{MixConfig, generate},
};
use mempulse_wal::test_utils::SimStorage;

use crate::{apply_all, config};

fn events() -> Vec<Event> {
    let mix = MixConfig { senders: 100, batch_txs: 16, pool_txs_max: 256, ..MixConfig::default() };
    generate(&mix, 4_000).unwrap()
}

/// Writes checkpoints at seqs 1000, 2000, 3000 into `dir` and returns the genesis replayer
/// over all events.
fn write_three(dir: &Path, events: &[Event]) -> Replayer {
    let store = CheckpointStore::open(dir, 3).unwrap();
    let mut r = Replayer::new(config(500));
    for chunk in 0..4 {
        apply_all(
            &mut r,
            chunk * 1000 + 1,
            &events[chunk as usize * 1000..(chunk as usize + 1) * 1000],
        );
        if chunk < 3 {
            store.write(&r).unwrap();
        }
    }
    r
}

fn path_of(dir: &Path, seq: u64) -> std::path::PathBuf {
    dir.join(format!("{seq:020}.ckpt"))
}

/// Loads the newest valid checkpoint, replays the rest, and checks the result against genesis.
fn resume_and_check(
    dir: &Path,
    events: &[Event],
    genesis: &Replayer,
) -> (Option<Seq>, Vec<(Seq, CheckpointDefect)>) {
    let store = CheckpointStore::open(dir, 3).unwrap();
    let newest = store.load_newest_valid(config(500), None).unwrap();
    let skipped = newest.skipped;
    let (mut r, at) = match newest.loaded {
        Some(l) => (l.replayer, Some(l.meta.seq)),
        None => (Replayer::new(config(500)), None),
    };
    let from = at.map_or(0, |s| s.0 as usize);
    apply_all(&mut r, from as u64 + 1, &events[from..]);
    assert_eq!(r.open_digest(), genesis.open_digest());
    assert_eq!(r.local_digest(), genesis.local_digest());
    (at, skipped)
}

/// Rewrites a checkpoint's bytes and fixes its CRC, so only the edited field is wrong.
fn edit_and_reseal(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    edit(&mut bytes);
    let n = bytes.len() - 4;
    let crc = crc32c::crc32c(&bytes[..n]);
    bytes[n..].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn intact_checkpoints_resume_to_the_genesis_state_and_retention_keeps_the_last_k() {
    let dir = tempfile::tempdir().unwrap();
    let events = events();
    let genesis = write_three(dir.path(), &events);
    let store = CheckpointStore::open(dir.path(), 2).unwrap();
    assert_eq!(store.seqs().unwrap(), [Seq(3000), Seq(2000), Seq(1000)]);
    let listed = store.list().unwrap();
    assert_eq!(listed.iter().map(|m| m.seq.0).collect::<Vec<_>>(), [3000, 2000, 1000]);
    assert!(listed.iter().all(|m| m.rule_version == RULE_VERSION && m.bytes > 0));
    let (at, skipped) = resume_and_check(dir.path(), &events, &genesis);
    assert_eq!((at, skipped.len()), (Some(Seq(3000)), 0));
    // A write through a store that keeps 2 prunes down to 2.
    store.write(&genesis).unwrap();
    assert_eq!(store.seqs().unwrap(), [Seq(4000), Seq(3000)]);
}

#[test]
fn truncated_flipped_and_foreign_checkpoints_are_skipped_for_older_ones() {
    let events = events();
    type Damage = fn(&Path);
    let cases: [(&str, Damage, fn(&CheckpointDefect) -> bool); 6] = [
        (
            "truncated to half",
            |p| {
                let len = std::fs::metadata(p).unwrap().len();
                std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(len / 2).unwrap();
            },
            |d| matches!(d, CheckpointDefect::Length { .. }),
        ),
        (
            "truncated to 10 bytes",
            |p| {
                std::fs::OpenOptions::new().write(true).open(p).unwrap().set_len(10).unwrap();
            },
            |d| matches!(d, CheckpointDefect::Truncated { len: 10 }),
        ),
        (
            "a body byte flipped",
            |p| {
                let mut b = std::fs::read(p).unwrap();
                let at = b.len() / 2;
                b[at] ^= 0x40;
                std::fs::write(p, b).unwrap();
            },
            |d| matches!(d, CheckpointDefect::Checksum),
        ),
        (
            "another rule version",
            |p| {
                edit_and_reseal(p, |b| {
                    b[10..12].copy_from_slice(&(RULE_VERSION + 1).to_le_bytes())
                });
            },
            |d| matches!(d, CheckpointDefect::RuleVersion { .. }),
        ),
        (
            "another format version",
            |p| {
                edit_and_reseal(p, |b| b[8..10].copy_from_slice(&9u16.to_le_bytes()));
            },
            |d| matches!(d, CheckpointDefect::UnsupportedFormat { found: 9, .. }),
        ),
        (
            "a consistent body with a wrong digest",
            |p| {
                edit_and_reseal(p, |b| b[72] ^= 1);
            },
            |d| matches!(d, CheckpointDefect::DigestMismatch),
        ),
    ];
    for (what, damage, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let genesis = write_three(dir.path(), &events);
        damage(&path_of(dir.path(), 3000));
        let (at, skipped) = resume_and_check(dir.path(), &events, &genesis);
        assert_eq!(at, Some(Seq(2000)), "{what}");
        assert_eq!(skipped.len(), 1, "{what}");
        assert!(expected(&skipped[0].1), "{what}: {:?}", skipped[0].1);
        let store = CheckpointStore::open(dir.path(), 3).unwrap();
        let err = store.load(Seq(3000), config(500)).unwrap_err();
        assert!(matches!(err, Error::Checkpoint { .. }) && err.is_bad_input(), "{what}");
    }
}

#[test]
fn with_every_checkpoint_damaged_replay_starts_from_genesis() {
    let dir = tempfile::tempdir().unwrap();
    let events = events();
    let genesis = write_three(dir.path(), &events);
    for seq in [1000, 2000, 3000] {
        edit_and_reseal(&path_of(dir.path(), seq), |b| b[10] ^= 0xff);
    }
    std::fs::rename(path_of(dir.path(), 1000), path_of(dir.path(), 1500)).unwrap();
    let (at, skipped) = resume_and_check(dir.path(), &events, &genesis);
    assert_eq!(at, None);
    assert_eq!(skipped.len(), 3);
    assert!(skipped.iter().any(|(_, d)| matches!(d, CheckpointDefect::NameMismatch { .. })
        || matches!(d, CheckpointDefect::RuleVersion { .. })));
}

#[test]
fn a_failed_write_keeps_the_previous_checkpoints_and_leaves_no_temp_file_behind() {
    let storage = Arc::new(SimStorage::new());
    let store = CheckpointStore::with_storage(storage.clone(), 3).unwrap();
    let events = events();
    let mut r = Replayer::new(config(500));
    apply_all(&mut r, 1, &events[..1000]);
    store.write(&r).unwrap();
    apply_all(&mut r, 1001, &events[1000..2000]);
    storage.set_fail_sync(true);
    let err = store.write(&r).unwrap_err();
    assert!(matches!(err, Error::Io { .. }) && !err.is_bad_input());
    storage.set_fail_sync(false);
    let names = storage.file_names();
    assert!(names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    let reopened = CheckpointStore::with_storage(storage.clone(), 3).unwrap();
    assert_eq!(storage.file_names(), ["00000000000000001000.ckpt"]);
    let loaded = reopened.load_newest_valid(config(500), None).unwrap().loaded.unwrap();
    assert_eq!(loaded.meta.seq, Seq(1000));
    // Newer than the log's end: left alone.
    assert!(reopened.load_newest_valid(config(500), Some(Seq(999))).unwrap().loaded.is_none());
}

/// One intact checkpoint file (at seq 1000 of [`events`]), written once for every case.
fn intact_checkpoint() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let events = events();
        let mut r = Replayer::new(config(500));
        apply_all(&mut r, 1, &events[..1000]);
        CheckpointStore::open(dir.path(), 1).unwrap().write(&r).unwrap();
        std::fs::read(path_of(dir.path(), 1000)).unwrap()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

    /// A checkpoint edited anywhere (bytes changed, or cut short) and resealed with a valid
    /// CRC, as a buggy writer or a peer sending one could produce: loading it either succeeds
    /// with a state that hashes to its header's digest (edits outside the replicated state) or
    /// is a bad-input error naming the defect; it never panics.
    #[test]
    fn an_edited_resealed_checkpoint_loads_or_is_a_defect(
        edits in proptest::collection::vec(
            (proptest::prelude::any::<proptest::sample::Index>(), 1..=255u8),
            1..6,
        ),
        cut in proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
    ) {
        let mut bytes = intact_checkpoint().to_vec();
        let body = bytes.len() - 4;
        for (at, flip) in &edits {
            let at = at.index(body);
            if let Some(b) = bytes.get_mut(at) {
                *b ^= flip;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(body).max(1));
            bytes.extend_from_slice(&[0; 4]);
        }
        let n = bytes.len() - 4;
        let crc = crc32c::crc32c(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path_of(dir.path(), 1000), &bytes).unwrap();
        let store = CheckpointStore::open(dir.path(), 1).unwrap();
        match store.load(Seq(1000), config(500)) {
            Ok((meta, loaded)) => proptest::prop_assert_eq!(loaded.last_seq(), meta.seq),
            Err(err) => {
                proptest::prop_assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
                proptest::prop_assert!(err.is_bad_input(), "{err}");
            }
        }
    }
}
