//! Append, scan, reopen, truncate and purge on the real filesystem and the simulator.

use std::ops::ControlFlow;

use mempulse_wal::{Error, Preallocate, Seq, SyncPolicy, Wal, WalConfig, test_utils::SimStorage};

use crate::common::{
    ALL_PREALLOCATE, assert_log, assert_prefix, open_sim, payload, payloads, small_config,
};

#[test]
fn append_scan_reopen_on_disk() {
    for prealloc in ALL_PREALLOCATE {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig::new(dir.path())
            .with_segment_size_bytes(16 << 10)
            .with_preallocate(prealloc)
            .with_sync(SyncPolicy::Always);
        let mut wal = Wal::open(config.clone()).unwrap();
        assert_eq!((wal.first_seq(), wal.last_seq()), (Seq(1), Seq(0)));
        for chunk in 0..20u64 {
            let range = wal.append(&payloads(chunk * 50 + 1, 50)).unwrap();
            assert_eq!((range.first, range.last), (Seq(chunk * 50 + 1), Seq(chunk * 50 + 50)));
        }
        assert_log(&wal.reader(), 1, 1000);
        drop(wal);
        let wal = Wal::open(config.clone()).unwrap();
        assert!(matches!(Wal::open(config), Err(Error::Locked { .. })), "one writer per log");
        assert_eq!(wal.last_seq(), Seq(1000));
        assert_log(&wal.reader(), 1, 1000);
        let report = mempulse_wal::verify(dir.path()).unwrap();
        assert_eq!((report.records, report.first_seq, report.last_seq), (1000, Seq(1), Seq(1000)));
        assert!(report.segments > 5, "rolled into {} segments", report.segments);
        assert_eq!(report.torn_tail, None);
        let stats = mempulse_wal::stats(dir.path()).unwrap();
        assert_eq!((stats.records, stats.segments), (1000, report.segments));
    }
}

#[test]
fn scan_limits_and_seeks() {
    let sim = SimStorage::new();
    let mut wal = open_sim(&sim, small_config(Preallocate::Fallocate)).unwrap();
    wal.append(&payloads(1, 3000)).unwrap();
    let reader = wal.reader();
    for from in [1u64, 2, 255, 256, 257, 1000, 2999, 3000] {
        let got = reader.scan(Seq(from), 7).unwrap();
        let want: Vec<u64> = (from..=(from + 6).min(3000)).collect();
        assert_eq!(got.iter().map(|r| r.seq.0).collect::<Vec<_>>(), want);
        assert!(got.iter().all(|r| r.payload == payload(r.seq.0)));
    }
    assert!(reader.scan(Seq(3001), 5).unwrap().is_empty());
    assert_eq!(reader.scan(Seq(0), 1).unwrap()[0].seq, Seq(1));
    let mut seen = 0;
    let n = reader
        .scan_with(Seq(10), 100, |_, _| {
            seen += 1;
            if seen == 3 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert_eq!((n, seen), (3, 3));
}

#[test]
fn rejects_bad_records_without_writing() {
    let sim = SimStorage::new();
    let mut wal = open_sim(&sim, small_config(Preallocate::Fallocate)).unwrap();
    assert!(matches!(wal.append(&[b"ok".as_slice(), b"".as_slice()]), Err(Error::EmptyRecord)));
    let huge = vec![1u8; 9 << 10];
    assert!(matches!(wal.append(&[huge]), Err(Error::RecordTooLarge { .. })));
    assert_eq!(wal.last_seq(), Seq(0));
    assert_eq!(wal.append(&[b"x"]).unwrap().first, Seq(1));
}

#[test]
fn truncate_after_then_append_and_reopen() {
    for prealloc in ALL_PREALLOCATE {
        let sim = SimStorage::new();
        let config = small_config(prealloc);
        let mut wal = open_sim(&sim, config.clone()).unwrap();
        wal.append(&payloads(1, 500)).unwrap();
        // Cut inside a sealed segment: later segments go, the segment becomes active.
        wal.truncate_after(Seq(123)).unwrap();
        assert_eq!(wal.last_seq(), Seq(123));
        assert_log(&wal.reader(), 1, 123);
        assert_eq!(wal.append(&payloads(124, 100)).unwrap().first, Seq(124));
        assert_log(&wal.reader(), 1, 223);
        wal.sync().unwrap();
        drop(wal);
        let mut wal = open_sim(&sim, config.clone()).unwrap();
        assert_log(&wal.reader(), 1, 223);
        wal.truncate_after(Seq(0)).unwrap();
        assert_eq!(wal.last_seq(), Seq(0));
        wal.append(&payloads(1, 10)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        // Truncated frames must not come back, even without zeroing by the writer.
        let wal =
            open_sim(&sim.crash_image(mempulse_wal::test_utils::CrashMode::DropUnsynced), config)
                .unwrap();
        assert_log(&wal.reader(), 1, 10);
    }
}

#[test]
fn purge_before_and_recycle() {
    for prealloc in ALL_PREALLOCATE {
        let sim = SimStorage::new();
        let config = small_config(prealloc);
        let mut wal = open_sim(&sim, config.clone()).unwrap();
        wal.append(&payloads(1, 400)).unwrap();
        wal.purge_before(Seq(200)).unwrap();
        let first = wal.first_seq();
        assert!(first > Seq(1) && first <= Seq(200), "first {first}");
        assert!(matches!(wal.reader().scan(Seq(1), 1), Err(Error::Purged { .. })));
        assert_log(&wal.reader(), first.0, 400);
        let recycled = sim.file_names().iter().filter(|n| n.ends_with(".recycle")).count();
        assert_eq!(recycled > 0, prealloc == Preallocate::Recycle);
        // New segments reuse recycled files; their stale frames never show up.
        wal.append(&payloads(401, 600)).unwrap();
        assert_log(&wal.reader(), first.0, 1000);
        wal.sync().unwrap();
        drop(wal);
        let wal = open_sim(&sim, config).unwrap();
        assert_eq!(wal.first_seq(), first);
        assert_log(&wal.reader(), first.0, 1000);
        assert!(matches!(
            open_sim(&sim, small_config(prealloc)).unwrap().truncate_after(Seq(first.0 - 2)),
            Err(Error::TruncateBeforeFirst { .. })
        ));
    }
}

#[test]
fn empty_log_starts_at_configured_seq() {
    let sim = SimStorage::new();
    let config = small_config(Preallocate::Fallocate).with_first_seq(Seq(1_000_000));
    let mut wal = open_sim(&sim, config.clone()).unwrap();
    assert_eq!((wal.first_seq(), wal.last_seq()), (Seq(1_000_000), Seq(999_999)));
    wal.append(&payloads(1_000_000, 5)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = open_sim(&sim, config).unwrap();
    assert_log(&wal.reader(), 1_000_000, 1_000_004);
}

#[test]
fn sync_failure_poisons() {
    let sim = SimStorage::new();
    let config = small_config(Preallocate::Fallocate).with_sync(SyncPolicy::Always);
    let mut wal = open_sim(&sim, config).unwrap();
    wal.append(&payloads(1, 3)).unwrap();
    sim.set_fail_sync(true);
    let err = wal.append(&payloads(4, 1)).unwrap_err();
    assert!(err.is_fatal() && matches!(err, Error::Io { .. }), "{err}");
    sim.set_fail_sync(false);
    assert!(matches!(wal.append(&payloads(5, 1)), Err(Error::Poisoned)));
    assert!(matches!(wal.sync(), Err(Error::Poisoned)));
}

#[test]
fn concurrent_readers_see_written_prefix() {
    let sim = SimStorage::new();
    let mut wal = open_sim(&sim, small_config(Preallocate::Fallocate)).unwrap();
    let reader = wal.reader();
    let scanner = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut max_seen = 0;
        while max_seen < 2000 {
            assert!(std::time::Instant::now() < deadline, "writer stalled");
            let last = reader.last_seq().0;
            if last > 0 {
                assert_prefix(&reader, 1, last);
            }
            max_seen = last;
        }
    });
    for i in 0..200 {
        wal.append(&payloads(i * 10 + 1, 10)).unwrap();
    }
    scanner.join().unwrap();
}

#[test]
fn rolls_use_segments_prepared_ahead() {
    for prealloc in ALL_PREALLOCATE {
        let dir = tempfile::tempdir().unwrap();
        let config = WalConfig::new(dir.path())
            .with_segment_size_bytes(16 << 10)
            .with_preallocate(prealloc)
            .with_prepare_ahead(true);
        let mut wal = Wal::open(config.clone()).unwrap();
        let names = || {
            let mut v: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        wal.append(&payloads(1, 300)).unwrap();
        drop(wal);
        // Each roll took the spare prepared while the previous segment filled (spares 0, 1, ..)
        // and asked for the next one, which is complete once the log is closed.
        let files = names();
        let rolls = files.iter().filter(|n| n.ends_with(".seg")).count() - 1;
        assert!(rolls >= 2, "{files:?}");
        let spares: Vec<&String> = files.iter().filter(|n| n.contains(".spare")).collect();
        assert_eq!(spares, [&format!("{rolls:020}.spare")], "{files:?}");
        let wal = Wal::open(config).unwrap();
        assert_log(&wal.reader(), 1, 300);
        assert_eq!(mempulse_wal::verify(dir.path()).unwrap().records, 300);
    }
}

#[test]
fn config_and_seq_space_limits() {
    let sim = SimStorage::new();
    let bad = small_config(Preallocate::Fallocate).with_first_seq(Seq(0));
    assert!(matches!(open_sim(&sim, bad), Err(Error::Config(_))));
    let tiny = small_config(Preallocate::Fallocate).with_segment_size_bytes(100);
    assert!(matches!(open_sim(&sim, tiny), Err(Error::Config(_))));
    let near_end = small_config(Preallocate::Fallocate).with_first_seq(Seq(u64::MAX - 2));
    let mut wal = open_sim(&sim, near_end).unwrap();
    assert_eq!(wal.append(&[b"a", b"b"]).unwrap().last, Seq(u64::MAX - 1));
    assert!(matches!(wal.append(&[b"c"]), Err(Error::SeqOverflow)));
    assert_eq!(wal.last_seq(), Seq(u64::MAX - 1));
}

#[test]
fn handles_are_shareable_across_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    shareable::<mempulse_wal::WalReader>();
    shareable::<mempulse_wal::SequencerHandle>();
    sendable::<Wal>();
    sendable::<mempulse_wal::Cursor>();
    sendable::<mempulse_wal::AppendTicket>();
}

#[test]
fn read_only_reader_sees_the_log_beside_a_live_writer_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // No helper thread may create or rename spare segments while the listing is compared.
    let config =
        WalConfig::new(dir.path()).with_segment_size_bytes(16 << 10).with_prepare_ahead(false);
    let mut wal = Wal::open(config).unwrap();
    wal.append(&payloads(1, 700)).unwrap();
    wal.sync().unwrap();
    let listing = |dir: &std::path::Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().len())
            })
            .collect();
        v.sort();
        v
    };
    let before = listing(dir.path());
    // The writer holds the directory lock; a read-only reader needs none.
    let reader = mempulse_wal::open_reader(dir.path()).unwrap();
    assert!(before.len() > 2, "several segments expected");
    assert_log(&reader, 1, 700);
    assert_eq!(listing(dir.path()), before, "a read-only open changed files");
    // An empty directory is an empty log.
    let empty = tempfile::tempdir().unwrap();
    let reader = mempulse_wal::open_reader(empty.path()).unwrap();
    assert_eq!(reader.last_seq(), Seq(0));
    assert!(reader.scan(Seq(1), 10).unwrap().is_empty());
}
