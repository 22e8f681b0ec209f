//! Golden vectors: a fixed sample of every event kind and of a transaction of every type must
//! encode to exactly the bytes stored in `tests/vectors/`, and decode back to the same value.
//!
//! Any change to the encoding fails this test. When the change is deliberate (a new kind, or a
//! format change that comes with a `SCHEMA_VERSION` bump), regenerate the files and review the
//! diff:
//!
//! ```text
//! MEMPULSE_BLESS=1 cargo nextest run -p mempulse-primitives --all-features -E 'test(vectors)'
//! ```
//!
//! Each file holds the lowercase hex of one encoding on a single line. Event files hold the full
//! stored payload (`Event::to_bytes`, version byte included); `tx_*.hex` hold `encode_to_vec(&tx)`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use mempulse_primitives::{
    Address, Digest, DropReason, Event, EventKind, EvictReason, Fees, FenceReason, Height,
    KindCode, Lane, NodeId, Nonce, Origin, RaftIndex, RejectReason, Seq, Source, Subpool, Tx,
    TxHash, TxType, UnixMillis, ValidatorId, decode_exact, encode_to_vec,
};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("vectors")
}

fn blessing() -> bool {
    std::env::var_os("MEMPULSE_BLESS").is_some_and(|v| v == "1")
}

/// A deterministic transaction of each type; fields differ per type so vectors are distinct.
fn sample_tx(tx_type: TxType) -> Tx {
    let k = tx_type.code();
    let raw: Vec<u8> = (0..8 + k).map(|i| i.wrapping_mul(17).wrapping_add(k)).collect();
    Tx {
        hash: TxHash([0xa0 + k; 32]),
        sender: Address([0x10 + k; 20]),
        nonce: Nonce(u64::from(k) * 1000 + 7),
        gas_limit: 21_000 + u64::from(k),
        fees: Fees { max_fee_per_gas: 30_000_000_000, max_priority_fee_per_gas: 1_500_000_000 },
        tx_type,
        chain_id: if tx_type == TxType::Legacy { None } else { Some(1) },
        encoded_size: u32::try_from(raw.len()).unwrap(),
        raw: Bytes::from(raw),
    }
}

fn h(byte: u8) -> TxHash {
    TxHash([byte; 32])
}

/// The sample event kind for `code`. New kinds land in the wildcard arm (`KindCode` is
/// `#[non_exhaustive]` outside its crate) and fail `every_kind_has_a_vector` until added here.
fn sample_kind(code: KindCode) -> Option<EventKind> {
    Some(match code {
        KindCode::TxReceived => {
            EventKind::TxReceived { tx: sample_tx(TxType::Legacy), lane: Lane::Rpc }
        }
        KindCode::TxAdmitted => {
            EventKind::TxAdmitted { tx: sample_tx(TxType::DynamicFee), subpool: Subpool::Queued }
        }
        KindCode::TxRejected => {
            EventKind::TxRejected { hash: h(3), reason: RejectReason::ReplacementUnderpriced }
        }
        KindCode::TxReplaced => EventKind::TxReplaced {
            old: h(4),
            new: h(5),
            sender: Address([6; 20]),
            nonce: Nonce(77),
        },
        KindCode::TxDropped => EventKind::TxDropped {
            hash: Some(h(7)),
            reason: DropReason::QueueFull,
            lane: Lane::Stream,
            depth_current: 4096,
            depth_peak: 4097,
        },
        KindCode::TxEvicted => EventKind::TxEvicted { hash: h(8), reason: EvictReason::Expired },
        KindCode::TxPromoted => EventKind::TxPromoted { hash: h(9) },
        KindCode::TxIncluded => EventKind::TxIncluded { hash: h(10), height: Height(1_000_001) },
        KindCode::TxReopened => {
            EventKind::TxReopened { hash: h(11), orphaned_height: Height(1_000_000) }
        }
        KindCode::BlockProposed => EventKind::BlockProposed {
            height: Height(1_000_002),
            proposer: ValidatorId(3),
            txs: vec![h(12), h(13)],
            total_bytes: 250,
            total_gas: 42_000,
        },
        KindCode::BlockCommitted => {
            EventKind::BlockCommitted { height: Height(1_000_002), txs: vec![h(12)] }
        }
        KindCode::ReorgDetected => EventKind::ReorgDetected {
            fork_height: Height(999_998),
            orphaned: vec![Height(999_999), Height(1_000_000)],
        },
        KindCode::LeaderChanged => EventKind::LeaderChanged { term: 5, leader: Some(NodeId(2)) },
        KindCode::ProposerChanged => {
            EventKind::ProposerChanged { height: Height(1_000_003), proposer: ValidatorId(1) }
        }
        KindCode::CheckpointTaken => EventKind::CheckpointTaken {
            seq: Seq(123_456),
            raft_index: RaftIndex(120_000),
            digest: Digest([0xcc; 32]),
        },
        KindCode::DivergenceDetected => EventKind::DivergenceDetected {
            peer: NodeId(3),
            index: RaftIndex(120_001),
            ours: Digest([0xdd; 32]),
            theirs: Digest([0xee; 32]),
        },
        KindCode::Fenced => EventKind::Fenced { reason: FenceReason::Divergence, index: None },
        KindCode::Unfenced => {
            EventKind::Unfenced { index: RaftIndex(120_002), root: Digest([0xff; 32]) }
        }
        _ => return None,
    })
}

/// A sample event around `kind`; source and origin vary so every tag of both is covered.
fn sample_event(code: KindCode, kind: EventKind) -> Event {
    let i = u64::from(code.code());
    let source = match i % 6 {
        0 => Source::Lane(Lane::Rest),
        1 => Source::Peer(NodeId(9)),
        2 => Source::Mempool,
        3 => Source::Cluster,
        4 => Source::Replay,
        _ => Source::Operator,
    };
    let origin = if i % 2 == 0 {
        Origin::Replicated { raft_index: RaftIndex(1000 + i) }
    } else {
        Origin::Local
    };
    Event { observed_at: UnixMillis(1_700_000_000_000 + i), source, origin, kind }
}

/// Compares `bytes` with the stored vector `name`, or rewrites it when blessing.
fn check_vector(name: &str, bytes: &[u8]) {
    let path = vectors_dir().join(format!("{name}.hex"));
    let encoded = hex::encode(bytes);
    if blessing() {
        std::fs::write(&path, format!("{encoded}\n")).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("missing vector {}: {e}; run with MEMPULSE_BLESS=1 to create it", path.display())
    });
    assert_eq!(
        stored.trim_end(),
        encoded,
        "encoding of {name} changed: a format change needs a SCHEMA_VERSION bump and a bless"
    );
}

fn all_vectors() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for &code in KindCode::ALL {
        let kind = sample_kind(code).unwrap_or_else(|| panic!("no sample for kind {code}"));
        assert_eq!(kind.code(), code, "sample for {code} has the wrong kind");
        let event = sample_event(code, kind);
        let payload = event.to_bytes();
        assert_eq!(Event::from_bytes(&payload).unwrap(), event, "{code} does not round-trip");
        out.push((format!("event_{}", code.as_str()), payload));
    }
    for &tx_type in TxType::ALL {
        let tx = sample_tx(tx_type);
        let bytes = encode_to_vec(&tx);
        assert_eq!(
            decode_exact::<Tx>(&bytes).unwrap(),
            tx,
            "{} does not round-trip",
            tx_type.as_str()
        );
        out.push((format!("tx_{}", tx_type.as_str()), bytes));
    }
    out
}

#[test]
fn every_kind_and_tx_type_matches_its_vector() {
    let vectors = all_vectors();
    if blessing() {
        remove_stale_vectors(&vectors);
    }
    for (name, bytes) in vectors {
        check_vector(&name, &bytes);
    }
}

/// When blessing: deletes `.hex` files that no sample produces any more.
fn remove_stale_vectors(vectors: &[(String, Vec<u8>)]) {
    let keep: BTreeSet<String> = vectors.iter().map(|(name, _)| format!("{name}.hex")).collect();
    for entry in std::fs::read_dir(vectors_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".hex") && !keep.contains(&name) {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

#[test]
fn every_kind_has_a_vector_and_no_vector_is_stale() {
    let expected: BTreeSet<String> =
        all_vectors().into_iter().map(|(name, _)| format!("{name}.hex")).collect();
    assert_eq!(expected.len(), KindCode::ALL.len() + TxType::ALL.len());
    if blessing() {
        // The bless run of the other test may still be rewriting the directory.
        return;
    }
    let present: BTreeSet<String> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(present, expected, "tests/vectors/ and the samples disagree");
}

#[test]
fn stored_payloads_decode_to_the_samples() {
    // Reads the files (not the fresh encodings) so that an old vector keeps decoding.
    if blessing() {
        return;
    }
    for &code in KindCode::ALL {
        let name = format!("event_{}.hex", code.as_str());
        let text = std::fs::read_to_string(vectors_dir().join(&name)).unwrap();
        let payload = hex::decode(text.trim_end()).unwrap();
        let expected = sample_event(code, sample_kind(code).unwrap());
        assert_eq!(Event::from_bytes(&payload).unwrap(), expected, "{name}");
        assert_eq!(Event::peek_kind(&payload).unwrap(), code, "{name}");
    }
}

#[test]
fn every_single_byte_substitution_is_an_error_or_canonical() {
    // Exhaustive over the samples: each byte of each payload replaced by each of the 256 values.
    // A decoder that accepted two encodings of one value (a lax tag, bool or option marker)
    // would decode some substitution and re-encode it differently.
    for &code in KindCode::ALL {
        let payload = sample_event(code, sample_kind(code).unwrap()).to_bytes();
        let mut mutated = payload.clone();
        for i in 0..payload.len() {
            for value in 0..=u8::MAX {
                mutated[i] = value;
                if let Ok(event) = Event::from_bytes(&mutated) {
                    assert_eq!(event.to_bytes(), mutated, "{code}: byte {i} = {value}");
                }
            }
            mutated[i] = payload[i];
        }
    }
}
