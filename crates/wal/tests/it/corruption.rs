//! Damaged bytes: each is a truncated tail or a reported error, never wrong data.

use std::{ops::ControlFlow, sync::Arc};

use mempulse_wal::{
    Error, Preallocate, Seq, Wal,
    test_utils::{CrashMode, SimStorage},
};
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::common::{assert_log, open_sim, payload, payloads, small_config};

const HEADER_LEN: usize = 32;

/// Offsets of each frame of the segment starting at `first`, up to `last` inclusive.
fn frame_offsets(first: u64, last: u64) -> Vec<(u64, usize, usize)> {
    let mut at = HEADER_LEN;
    (first..=last)
        .map(|s| {
            let size = 8 + payload(s).len();
            let out = (s, at, size);
            at += size;
            out
        })
        .collect()
}

fn active_segment(sim: &SimStorage) -> (String, u64) {
    let name = sim.file_names().into_iter().filter(|n| n.ends_with(".seg")).max().unwrap();
    let first = name.trim_end_matches(".seg").parse().unwrap();
    (name, first)
}

fn build(records: u64) -> SimStorage {
    let sim = SimStorage::new();
    let mut wal = open_sim(&sim, small_config(Preallocate::Fallocate)).unwrap();
    wal.append(&payloads(1, records)).unwrap();
    wal.sync().unwrap();
    sim.crash_image(CrashMode::KeepUnsynced)
}

#[test]
fn every_byte_of_the_last_frame_flipped_or_cut() {
    let base = build(100);
    let (name, first) = active_segment(&base);
    let (last_seq, start, size) = *frame_offsets(first, 100).last().unwrap();
    assert_eq!(last_seq, 100);
    let original = base.file_bytes(&name).unwrap();
    for offset in start..start + size {
        for mask in [0x01u8, 0x80, 0xFF] {
            let image = base.crash_image(CrashMode::KeepUnsynced);
            let mut bytes = original.clone();
            bytes[offset] ^= mask;
            image.set_file_bytes(&name, bytes);
            let wal = open_sim(&image, small_config(Preallocate::Fallocate)).unwrap();
            assert_eq!(wal.last_seq(), Seq(99), "flip {mask:#x} at {offset}");
            assert_log(&wal.reader(), 1, 99);
        }
        let image = base.crash_image(CrashMode::KeepUnsynced);
        image.set_file_bytes(&name, original[..offset].to_vec());
        let wal = open_sim(&image, small_config(Preallocate::Fallocate)).unwrap();
        assert_eq!(wal.last_seq(), Seq(99), "cut at {offset}");
        assert_log(&wal.reader(), 1, 99);
    }
}

#[test]
fn damage_before_the_tail_is_an_error_with_location() {
    // A log whose active segment holds at least 6 frames.
    let (n, base) =
        (100..200).map(|n| (n, build(n))).find(|(n, b)| n - active_segment(b).1 >= 6).unwrap();
    let (name, first) = active_segment(&base);
    let frames = frame_offsets(first, n);
    let (_, start, _) = frames[frames.len() - 5];
    let mut bytes = base.file_bytes(&name).unwrap();
    bytes[start + 9] ^= 0x04; // payload byte of a frame followed by valid frames
    base.set_file_bytes(&name, bytes);
    let err = open_sim(&base, small_config(Preallocate::Fallocate)).unwrap_err();
    match err {
        Error::Corrupt { segment, offset, kind } => {
            assert_eq!((segment.as_str(), offset), (name.as_str(), start as u64));
            assert_eq!(kind, mempulse_wal::CorruptKind::FrameChecksum);
        }
        other => panic!("unexpected {other}"),
    }
}

/// A log of `n` records whose active segment holds at least 12 frames, with its frames.
fn active_with_frames() -> (SimStorage, String, Vec<(u64, usize, usize)>) {
    let (n, base) =
        (100..300).map(|n| (n, build(n))).find(|(n, b)| n - active_segment(b).1 >= 12).unwrap();
    let (name, first) = active_segment(&base);
    (base, name, frame_offsets(first, n))
}

fn expect_records_after_damage(image: &SimStorage, name: &str, at: usize) {
    match open_sim(image, small_config(Preallocate::Fallocate)).unwrap_err() {
        Error::Corrupt { segment, offset, kind } => {
            assert_eq!((segment.as_str(), offset), (name, at as u64));
            assert_eq!(kind, mempulse_wal::CorruptKind::RecordsAfterDamage);
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn zeroed_frames_with_records_after_them_are_an_error_not_the_end() {
    let (base, name, frames) = active_with_frames();
    let original = base.file_bytes(&name).unwrap();
    // Zero one frame, two frames, and a run that starts and ends inside frames (a lost
    // sector), each with valid frames after the hole.
    let k = frames.len() - 8;
    let (_, a, a_size) = frames[k];
    let (_, b, b_size) = frames[k + 1];
    for (from, to, walk_stops_at) in [(a, a + a_size, a), (a, b + b_size, a), (a + 3, b + 5, a)] {
        let image = base.crash_image(CrashMode::KeepUnsynced);
        let mut bytes = original.clone();
        bytes[from..to].fill(0);
        image.set_file_bytes(&name, bytes);
        expect_records_after_damage(&image, &name, walk_stops_at);
    }
}

#[test]
fn consecutive_damaged_frames_before_valid_ones_are_an_error() {
    let (base, name, frames) = active_with_frames();
    let mut bytes = base.file_bytes(&name).unwrap();
    let k = frames.len() - 8;
    for (_, start, _) in &frames[k..k + 3] {
        bytes[start + 9] ^= 0x10; // a payload byte of each of three frames in a row
    }
    base.set_file_bytes(&name, bytes);
    expect_records_after_damage(&base, &name, frames[k].1);
}

#[test]
fn zeros_and_stale_frames_after_the_end_are_not_damage() {
    // Truncation leaves nothing readable behind; a log reopened after it, and after more
    // appends over the cut, ends where its writer stopped.
    let sim = SimStorage::new();
    let mut wal = open_sim(&sim, small_config(Preallocate::Fallocate)).unwrap();
    wal.append(&payloads(1, 150)).unwrap();
    wal.sync().unwrap();
    wal.truncate_after(Seq(120)).unwrap();
    wal.append(&payloads(121, 5)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let wal = open_sim(&sim, small_config(Preallocate::Fallocate)).unwrap();
    assert_eq!(wal.last_seq(), Seq(125));
    assert_log(&wal.reader(), 1, 125);
    // A torn last frame stays a torn tail: nothing of the log follows it.
    let (name, first) = active_segment(&sim);
    let (_, start, size) = *frame_offsets(first, 125).last().unwrap();
    let mut bytes = sim.file_bytes(&name).unwrap();
    bytes[start + size - 1] ^= 0x01;
    sim.set_file_bytes(&name, bytes);
    let wal = open_sim(&sim, small_config(Preallocate::Fallocate)).unwrap();
    assert_eq!(wal.last_seq(), Seq(124));
}

#[test]
fn random_flips_in_sealed_segments_are_reported() {
    let seed = 0xC0FF_EE00_u64;
    println!("seed {seed:#x}");
    let mut rng = StdRng::seed_from_u64(seed);
    let base = build(1500);
    let (active, _) = active_segment(&base);
    let sealed: Vec<String> =
        base.file_names().into_iter().filter(|n| n.ends_with(".seg") && *n != active).collect();
    assert!(sealed.len() >= 3);
    let (mut reported, mut harmless) = (0, 0);
    for _ in 0..1000 {
        let image = base.crash_image(CrashMode::KeepUnsynced);
        let name = &sealed[rng.random_range(0..sealed.len())];
        let mut bytes = image.file_bytes(name).unwrap();
        let offset = rng.random_range(0..bytes.len());
        bytes[offset] ^= 1 << rng.random_range(0..8);
        image.set_file_bytes(name, bytes);
        let outcome = open_sim(&image, small_config(Preallocate::Fallocate)).and_then(|wal| {
            let reader = wal.reader();
            let mut expect = 1;
            reader.scan_with(Seq(1), usize::MAX, |seq, bytes| {
                assert_eq!((seq, bytes), (Seq(expect), payload(expect).as_slice()), "wrong data");
                expect += 1;
                ControlFlow::Continue(())
            })?;
            assert_eq!(expect, 1501);
            Ok(wal)
        });
        match outcome {
            Ok(_) => {
                harmless += 1;
                // Only bytes past the last frame (unused space) may change without notice.
                assert!(mempulse_wal::verify_storage(&image).is_ok());
            }
            Err(Error::Corrupt { segment, .. }) => {
                assert_eq!(&segment, name);
                assert!(mempulse_wal::verify_storage(&image).is_err());
                reported += 1;
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    println!("reported {reported}, harmless {harmless}");
    assert!(reported > 100);
}

#[test]
fn arbitrary_segment_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..300 {
        let sim = SimStorage::new();
        let mut bytes = vec![0u8; rng.random_range(0..3000)];
        rng.fill(bytes.as_mut_slice());
        if bytes.len() >= HEADER_LEN && rng.random_bool(0.5) {
            // A valid header over garbage frames.
            let good = build(1).file_bytes("00000000000000000001.seg").unwrap();
            bytes[..HEADER_LEN].copy_from_slice(&good[..HEADER_LEN]);
        }
        sim.set_file_bytes("00000000000000000001.seg", bytes);
        if let Ok(wal) =
            Wal::open_with_storage(small_config(Preallocate::Fallocate), Arc::new(sim.clone()))
        {
            let _ = wal.reader().scan(Seq(1), usize::MAX);
        }
        let _ = mempulse_wal::verify_storage(&sim);
        let _ = mempulse_wal::stats_storage(&sim);
    }
}

#[test]
fn verify_reports_a_torn_tail_without_failing() {
    let base = build(100);
    let (name, first) = active_segment(&base);
    let (_, start, size) = *frame_offsets(first, 100).last().unwrap();
    let mut bytes = base.file_bytes(&name).unwrap();
    bytes[start + size - 1] ^= 0x20;
    base.set_file_bytes(&name, bytes);
    let report = mempulse_wal::verify_storage(&base).unwrap();
    assert_eq!((report.records, report.last_seq), (99, Seq(99)));
    let torn = report.torn_tail.unwrap();
    assert_eq!((torn.segment.as_str(), torn.offset), (name.as_str(), start as u64));
    let stats = mempulse_wal::stats_storage(&base).unwrap();
    assert_eq!((stats.records, stats.first_seq, stats.last_seq), (99, Seq(1), Seq(99)));
}
