//! Shared helpers: deterministic payloads and log checks.

use std::{ops::ControlFlow, sync::Arc};

use mempulse_wal::{
    Preallocate, Seq, SyncPolicy, Wal, WalConfig, WalReader, test_utils::SimStorage,
};

/// The payload of `seq`: derivable, varying in length (1..=300 bytes) and content.
pub(crate) fn payload(seq: u64) -> Vec<u8> {
    let len = 1 + (seq.wrapping_mul(7919) % 300) as usize;
    let bytes = seq.to_le_bytes();
    (0..len).map(|i| bytes[i % 8] ^ (i as u8).wrapping_mul(31)).collect()
}

/// Payloads for `count` records starting at `first`.
pub(crate) fn payloads(first: u64, count: u64) -> Vec<Vec<u8>> {
    (first..first + count).map(payload).collect()
}

/// A small-segment config (forces frequent rolls). Segments are created in line (no helper
/// thread), so "the last write" of the simulated storage is always the writer's.
pub(crate) fn small_config(preallocate: Preallocate) -> WalConfig {
    WalConfig::new("sim")
        .with_segment_size_bytes(8 << 10)
        .with_sync(SyncPolicy::Never)
        .with_preallocate(preallocate)
        .with_prepare_ahead(false)
}

pub(crate) fn open_sim(storage: &SimStorage, config: WalConfig) -> mempulse_wal::Result<Wal> {
    Wal::open_with_storage(config, Arc::new(storage.clone()))
}

/// Asserts the reader sees exactly `first..=last` (and nothing after), each with its payload.
pub(crate) fn assert_log(reader: &WalReader, first: u64, last: u64) {
    assert_prefix(reader, first, last);
    assert_eq!(reader.last_seq(), Seq(last), "records after {last}");
}

/// Asserts `first..=last` are readable, in order, each with its derived payload.
pub(crate) fn assert_prefix(reader: &WalReader, first: u64, last: u64) {
    let mut expect = first;
    let limit = usize::try_from((last + 1).saturating_sub(first)).unwrap();
    reader
        .scan_with(Seq(first), limit, |seq, bytes| {
            assert_eq!(seq, Seq(expect), "gap or reorder");
            assert_eq!(bytes, payload(seq.0).as_slice(), "payload of {seq}");
            expect += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(expect, last + 1, "log ends at {} not {last}", expect - 1);
}

pub(crate) const ALL_PREALLOCATE: [Preallocate; 3] =
    [Preallocate::ZeroFill, Preallocate::Fallocate, Preallocate::Recycle];
