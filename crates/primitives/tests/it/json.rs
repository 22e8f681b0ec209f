//! The JSON view of events (feature `serde`).

use mempulse_primitives::{
    Event, EventKind, KindCode, Lane, Origin, RaftIndex, RejectReason, Seq, SequencedEvent, Source,
    TxHash, UnixMillis, test_utils::arb_event_kind_of,
};
use proptest::{prelude::*, strategy::ValueTree, test_runner::TestRunner};

#[test]
fn sequenced_event_is_one_flat_object() {
    let event = SequencedEvent {
        seq: Seq(42),
        event: Event {
            observed_at: UnixMillis(1_700_000_000_000),
            source: Source::Lane(Lane::Rpc),
            origin: Origin::Replicated { raft_index: RaftIndex(7) },
            kind: EventKind::TxRejected {
                hash: TxHash([0x11; 32]),
                reason: RejectReason::NonceTooLow,
            },
        },
    };
    let v: serde_json::Value = serde_json::to_value(&event).unwrap();
    assert_eq!(v["seq"], 42);
    assert_eq!(v["observed_at_ms"], 1_700_000_000_000u64);
    assert_eq!(v["source"], "lane:rpc");
    assert_eq!(v["origin"], "replicated");
    assert_eq!(v["raft_index"], 7);
    assert_eq!(v["kind"], "tx_rejected");
    assert_eq!(v["reason"], "nonce_too_low");
    assert_eq!(v["hash"], format!("0x{}", "11".repeat(32)));
}

#[test]
fn every_kind_serializes_with_its_stable_name() {
    let mut runner = TestRunner::deterministic();
    for &code in KindCode::ALL {
        let kind = arb_event_kind_of(code).new_tree(&mut runner).unwrap().current();
        let v = serde_json::to_value(&kind).unwrap();
        assert_eq!(v["kind"], code.as_str());
        assert!(v.as_object().unwrap().len() >= 2, "{code:?} has no fields in JSON");
    }
}
