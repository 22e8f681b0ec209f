//! Simulated power loss through the storage trait: recovery returns exactly a prefix of what
//! was written that includes everything synced.

use mempulse_wal::{
    Seq,
    test_utils::{CrashMode, SimStorage},
};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::common::{ALL_PREALLOCATE, assert_log, open_sim, payload, payloads, small_config};

#[test]
fn drop_unsynced_keeps_every_synced_record() {
    let seed = 0x5EED_0001;
    println!("seed {seed:#x}");
    let mut rng = StdRng::seed_from_u64(seed);
    for prealloc in ALL_PREALLOCATE {
        let sim = SimStorage::new();
        let config = small_config(prealloc);
        let mut wal = open_sim(&sim, config.clone()).unwrap();
        let mut synced = 0u64;
        for round in 0..60 {
            let n = rng.random_range(1..40);
            let first = wal.last_seq().0 + 1;
            wal.append(&payloads(first, n)).unwrap();
            if rng.random_bool(0.3) {
                wal.sync().unwrap();
                synced = wal.last_seq().0;
            }
            if round % 10 == 9 {
                let written = wal.last_seq().0;
                for mode in [CrashMode::DropUnsynced, CrashMode::KeepUnsynced] {
                    let image = sim.crash_image(mode);
                    let reopened = open_sim(&image, config.clone()).unwrap();
                    let last = reopened.last_seq().0;
                    assert!(
                        last >= synced && last <= written,
                        "{last} outside {synced}..={written}"
                    );
                    if mode == CrashMode::KeepUnsynced {
                        assert_eq!(last, written);
                    }
                    assert_log(&reopened.reader(), 1, last);
                }
            }
        }
    }
}

/// Byte length of the frames of `first..first + count`.
fn frames_len(first: u64, count: u64) -> Vec<usize> {
    (first..first + count).map(|s| 8 + payload(s).len()).collect()
}

#[test]
fn torn_last_write_at_every_offset_recovers_a_prefix() {
    for prealloc in ALL_PREALLOCATE {
        let sim = SimStorage::new();
        let config = small_config(prealloc);
        let mut wal = open_sim(&sim, config.clone()).unwrap();
        wal.append(&payloads(1, 40)).unwrap();
        wal.sync().unwrap();
        let synced = wal.last_seq().0;
        // A group small enough to stay in the active segment: one write.
        let group = 6;
        wal.append(&payloads(synced + 1, group)).unwrap();
        let written = wal.last_seq().0;
        let torn_len = sim.last_write_len().unwrap();
        let sizes = frames_len(synced + 1, group);
        assert_eq!(torn_len, sizes.iter().sum::<usize>(), "group was one write");
        drop(wal);
        for keep in 0..=torn_len {
            let image = sim.crash_image(CrashMode::TearLastWrite { keep });
            let mut wal = open_sim(&image, config.clone()).unwrap();
            let complete = sizes.iter().scan(0, |end, s| {
                *end += s;
                Some(*end)
            });
            let expect = synced + complete.filter(|end| *end <= keep).count() as u64;
            assert_eq!(wal.last_seq(), Seq(expect), "keep {keep} of {torn_len}");
            assert!(expect <= written);
            assert_log(&wal.reader(), 1, expect);
            // Writing after the cut and losing power again still yields a clean prefix.
            wal.append(&payloads(expect + 1, 3)).unwrap();
            wal.sync().unwrap();
            let again =
                open_sim(&image.crash_image(CrashMode::DropUnsynced), config.clone()).unwrap();
            assert_log(&again.reader(), 1, expect + 3);
        }
    }
}

#[test]
fn crash_during_roll_and_purge_recovers() {
    // Tear every write around a segment roll (the group spans two segments).
    for prealloc in ALL_PREALLOCATE {
        let sim = SimStorage::new();
        let config = small_config(prealloc);
        let mut wal = open_sim(&sim, config.clone()).unwrap();
        wal.append(&payloads(1, 30)).unwrap();
        wal.purge_before(Seq(20)).unwrap();
        wal.sync().unwrap();
        let synced = wal.last_seq().0;
        wal.append(&payloads(synced + 1, 60)).unwrap();
        let written = wal.last_seq().0;
        let torn_len = sim.last_write_len().unwrap();
        for keep in (0..=torn_len).step_by(7) {
            for mode in [CrashMode::TearLastWrite { keep }, CrashMode::DropUnsynced] {
                let wal = open_sim(&sim.crash_image(mode), config.clone()).unwrap();
                let last = wal.last_seq().0;
                assert!((synced..=written).contains(&last), "{last}");
                assert_log(&wal.reader(), wal.first_seq().0, last);
            }
        }
    }
}

#[test]
fn interval_policy_syncs_on_close() {
    let sim = SimStorage::new();
    let config = small_config(mempulse_wal::Preallocate::ZeroFill)
        .with_sync(mempulse_wal::SyncPolicy::Interval(std::time::Duration::from_secs(3600)));
    let mut wal = open_sim(&sim, config.clone()).unwrap();
    wal.append(&payloads(1, 50)).unwrap();
    // Not due yet: a power loss now may lose the tail (everything up to the last roll stays).
    let before = open_sim(&sim.crash_image(CrashMode::DropUnsynced), config.clone()).unwrap();
    assert!(before.last_seq() < Seq(50));
    drop(before);
    drop(wal);
    let after = open_sim(&sim.crash_image(CrashMode::DropUnsynced), config).unwrap();
    assert_log(&after.reader(), 1, 50);
}

/// A process crash leaves written frames in the page cache. Reopening under a syncing policy
/// makes them durable before the log is served; under `Never` the log promises nothing beyond
/// the OS, so a power loss after that reopen may still take the unsynced tail.
#[test]
fn open_syncs_the_recovered_tail_unless_the_policy_is_never() {
    for (sync, durable) in [
        (mempulse_wal::SyncPolicy::Always, true),
        (mempulse_wal::SyncPolicy::Interval(std::time::Duration::from_secs(3600)), true),
        (mempulse_wal::SyncPolicy::Never, false),
    ] {
        let sim = SimStorage::new();
        let unsynced = small_config(mempulse_wal::Preallocate::ZeroFill);
        let mut wal = open_sim(&sim, unsynced.clone()).unwrap();
        // Fewer bytes than one segment: no roll, so nothing has been synced yet.
        wal.append(&payloads(1, 20)).unwrap();
        drop(wal);
        let reopened = open_sim(&sim, unsynced.clone().with_sync(sync)).unwrap();
        assert_eq!(reopened.last_seq(), Seq(20), "{sync:?}");
        std::mem::forget(reopened);
        let after = open_sim(&sim.crash_image(CrashMode::DropUnsynced), unsynced).unwrap();
        if durable {
            assert_log(&after.reader(), 1, 20);
        } else {
            assert!(after.last_seq() < Seq(20), "{sync:?}: {}", after.last_seq());
        }
    }
}

/// Padding small unsynced writes with zeros (so the page cache holds whole blocks) must change
/// nothing a reader, a reopen or a power loss sees: the zeros lie past the log's end, every
/// segment's bytes up to its end are the same as without padding, and past it there are only
/// zeros.
#[test]
fn write_padding_changes_nothing_but_zeros_past_the_end() {
    let groups: Vec<u64> = (0..120).map(|i| 1 + (i * 37) % 9).collect();
    let run = |padding: u64| {
        let sim = SimStorage::new();
        let config = small_config(mempulse_wal::Preallocate::Fallocate)
            .with_segment_size_bytes(16 << 10)
            .with_write_padding_bytes(padding);
        let mut wal = open_sim(&sim, config.clone()).unwrap();
        let (mut next, mut padded_writes) = (1, 0);
        for &n in &groups {
            wal.append(&payloads(next, n)).unwrap();
            let framed: usize = frames_len(next, n).iter().sum();
            padded_writes += usize::from(sim.last_write_len().unwrap() > framed);
            next += n;
        }
        // Small writes crossing into a block carry zeros, and only then.
        assert_eq!(padded_writes > 0, padding > 0, "{padded_writes} padded writes");
        let last = next - 1;
        assert_log(&wal.reader(), 1, last);
        drop(wal);
        // The last write carries the padding: tear it anywhere, in the records or the zeros.
        let torn = sim.last_write_len().unwrap();
        let tears = [0, 1, torn / 2, torn.saturating_sub(1)];
        let modes = [CrashMode::KeepUnsynced, CrashMode::DropUnsynced]
            .into_iter()
            .chain(tears.map(|keep| CrashMode::TearLastWrite { keep }));
        for mode in modes {
            let image = sim.crash_image(mode);
            let wal = open_sim(&image, config.clone()).unwrap();
            let recovered = wal.reader().last_seq().0;
            assert_log(&wal.reader(), 1, recovered);
            if mode == CrashMode::KeepUnsynced {
                assert_eq!(recovered, last, "padding {padding}");
            }
        }
        (sim, last)
    };
    let (plain, last) = run(0);
    for padding in [512, 4096] {
        let (padded, padded_last) = run(padding);
        assert_eq!(padded_last, last);
        assert_eq!(padded.file_names(), plain.file_names());
        for name in plain.file_names() {
            let (a, b) = (plain.file_bytes(&name).unwrap(), padded.file_bytes(&name).unwrap());
            // Where the plain file's written bytes end (it has only zeros after them).
            let end = a.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
            assert_eq!(b.get(..end), a.get(..end), "{name} with padding {padding}");
            assert!(b.iter().skip(end).all(|&x| x == 0), "{name}: non-zero bytes past the end");
        }
    }
}
