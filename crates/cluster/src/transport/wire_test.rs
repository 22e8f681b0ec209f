//! Round trips, truncations and arbitrary bytes for the wire protocol.

use mempulse_mempool::test_utils::tx;
use mempulse_primitives::UnixMillis;
use proptest::prelude::*;

use super::*;
use crate::{ClusterRequest, Entry, LeaderId, Payload};

fn log_id(term: u64, node: u64, index: u64) -> LogId {
    LogId { leader_id: LeaderId { term, node_id: NodeId(node) }, index }
}

fn vote(term: u64, node: u64, committed: bool) -> Vote {
    Vote { leader_id: LeaderId { term, node_id: NodeId(node) }, committed }
}

fn requests() -> Vec<Request> {
    let entry = Entry {
        log_id: log_id(2, 1, 5),
        payload: Payload::Normal(ClusterRequest::single(
            UnixMillis(9),
            ClusterCommand::AddTxs(vec![tx(1, 0, 5)]),
        )),
    };
    vec![
        Request::Hello { from: NodeId(1), to: NodeId(2), incarnation: 0xfeed },
        Request::Append(AppendEntriesRequest {
            vote: vote(2, 1, true),
            prev_log_id: Some(log_id(2, 1, 4)),
            entries: vec![entry, Entry { log_id: log_id(2, 1, 6), payload: Payload::Blank }],
            leader_commit: None,
        }),
        Request::Vote(VoteRequest {
            vote: vote(3, 2, false),
            last_log_id: None,
            leadership_transfer: true,
        }),
        Request::PreVote(VoteRequest {
            vote: vote(3, 2, false),
            last_log_id: Some(log_id(1, 1, 1)),
            leadership_transfer: false,
        }),
        Request::SnapshotBegin { vote: vote(2, 1, true), total_bytes: 77 },
        Request::SnapshotChunk(vec![1, 2, 3]),
        Request::TransferLeader(TransferLeaderRequest::new(
            vote(2, 1, true),
            NodeId(3),
            Some(log_id(2, 1, 9)),
        )),
        Request::Forward(ClusterCommand::AddTxs(vec![tx(2, 0, 7)])),
        Request::Admin(AdminRequest::Remove { id: NodeId(3) }),
    ]
}

fn answers() -> Vec<Answer> {
    let outcome = Outcome {
        facts: vec![],
        block: Some(BuiltBlock { txs: vec![tx(1, 0, 5)], total_bytes: 10, total_gas: 21_000 }),
    };
    vec![
        Answer::HelloAck(Ok(0xbeef)),
        Answer::HelloAck(Err(RefusalReason::NotAMember)),
        Answer::Append(AppendEntriesResponse::Success),
        Answer::Append(AppendEntriesResponse::PartialSuccess(Some(log_id(1, 1, 3)))),
        Answer::Append(AppendEntriesResponse::Conflict),
        Answer::Append(AppendEntriesResponse::HigherVote(vote(5, 2, true))),
        Answer::Vote(VoteResponse {
            vote: vote(4, 3, false),
            vote_granted: true,
            last_log_id: None,
        }),
        Answer::Snapshot(SnapshotResponse::new(vote(4, 3, true))),
        Answer::TransferLeader(Ok(())),
        Answer::TransferLeader(Err(TransferLeaderError::LogNotFlushed {
            expected: Some(log_id(1, 1, 2)),
            actual: None,
        })),
        Answer::Forward(Ok(ClusterResponse { index: RaftIndex(4), result: Ok(outcome) })),
        Answer::Forward(Ok(ClusterResponse {
            index: RaftIndex(5),
            result: Err(mempulse_mempool::Error::InvalidReorg {
                fork_height: Height(1),
                height: Height(3),
                current: Height(2),
            }),
        })),
        Answer::Forward(Err(ClientError::ForwardToLeader {
            leader_id: Some(NodeId(2)),
            leader: Some(ClusterNode::new("b:1", "b:2")),
        })),
        Answer::Forward(Err(ClientError::Overloaded { capacity: 4096 })),
        Answer::Admin(Ok(AdminReply::Done { log_index: Some(3) })),
        Answer::Admin(Err(AdminError::InProgress)),
        Answer::Failed(RemoteFailure::SnapshotTooLarge),
    ]
}

/// The frame's body (after the length prefix), checked against the prefix.
fn body(frame: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes(frame[..4].try_into().unwrap());
    assert_eq!(len as usize, frame.len() - 4);
    &frame[4..]
}

#[test]
fn requests_round_trip_and_every_truncation_fails() {
    for request in requests() {
        let frame = request.to_frame(42);
        let parsed = parse_body(body(&frame)).unwrap();
        assert_eq!(parsed.id, 42);
        let decoded = Request::from_frame(&parsed).unwrap();
        assert_eq!(decoded.to_frame(42), frame, "{request:?}");
        for len in 0..parsed.payload.len() {
            let cut = Frame { kind: parsed.kind, id: 42, payload: &parsed.payload[..len] };
            assert!(Request::from_frame(&cut).is_err(), "{request:?} cut at {len}");
        }
    }
}

#[test]
fn answers_round_trip_and_every_truncation_fails() {
    for answer in answers() {
        let frame = answer.to_frame(7);
        let parsed = parse_body(body(&frame)).unwrap();
        let decoded = Answer::from_frame(&parsed).unwrap();
        assert_eq!(decoded.to_frame(7), frame, "{answer:?}");
        for len in 0..parsed.payload.len() {
            let cut = Frame { kind: parsed.kind, id: 7, payload: &parsed.payload[..len] };
            assert!(Answer::from_frame(&cut).is_err(), "{answer:?} cut at {len}");
        }
    }
}

#[test]
fn hello_layout_is_stable() {
    let frame = Request::Hello { from: NodeId(1), to: NodeId(2), incarnation: 3 }.to_frame(0);
    let mut expected = 38u32.to_le_bytes().to_vec();
    expected.extend_from_slice(&[WIRE_VERSION, KIND_HELLO]);
    expected.extend_from_slice(&0u64.to_le_bytes());
    expected.extend_from_slice(b"MPRT");
    expected.extend_from_slice(&1u64.to_le_bytes());
    expected.extend_from_slice(&2u64.to_le_bytes());
    expected.extend_from_slice(&3u64.to_le_bytes());
    assert_eq!(frame, expected);
    assert!(frame.len() - 4 <= HELLO_FRAME_MAX as usize);
}

#[test]
fn other_versions_and_kinds_are_refused() {
    let mut frame = Request::Hello { from: NodeId(1), to: NodeId(2), incarnation: 3 }.to_frame(0);
    frame[4] = WIRE_VERSION + 1;
    assert_eq!(parse_body(body(&frame)).unwrap_err(), BodyError::Version(WIRE_VERSION + 1));
    let unknown = Frame { kind: 99, id: 0, payload: &[] };
    assert!(matches!(Request::from_frame(&unknown), Err(BodyError::Kind(99))));
    assert!(matches!(Answer::from_frame(&unknown), Err(BodyError::Kind(99))));
    // An answer kind is not a request, and the other way round.
    let ack = Frame { kind: KIND_HELLO_ACK, id: 0, payload: &[0] };
    assert!(matches!(Request::from_frame(&ack), Err(BodyError::Kind(_))));
}

#[test]
fn only_the_mempool_errors_apply_produces_are_encodable() {
    let ok = ClusterResponse { index: RaftIndex(1), result: Ok(Outcome::default()) };
    assert!(is_encodable(&ok));
    let config = ClusterResponse {
        index: RaftIndex(1),
        result: Err(mempulse_mempool::Error::InvalidConfig {
            field: mempulse_mempool::ConfigField::MaxTxs,
        }),
    };
    assert!(!is_encodable(&config));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bodies_never_panic(kind in any::<u8>(), payload in proptest::collection::vec(any::<u8>(), 0..128)) {
        let frame = Frame { kind, id: 1, payload: &payload };
        if let Ok(request) = Request::from_frame(&frame) {
            prop_assert_eq!(body(&request.to_frame(1))[10..].to_vec(), payload.clone());
        }
        if let Ok(answer) = Answer::from_frame(&frame) {
            prop_assert_eq!(body(&answer.to_frame(1))[10..].to_vec(), payload);
        }
    }

    #[test]
    fn mutated_frames_never_panic(index in 0usize..9, at in any::<usize>(), byte in any::<u8>()) {
        let frame = requests()[index].to_frame(3);
        let mut bytes = body(&frame).to_vec();
        let at = at % bytes.len();
        bytes[at] = byte;
        if let Ok(parsed) = parse_body(&bytes) {
            let _ = Request::from_frame(&parsed);
            let _ = Answer::from_frame(&parsed);
        }
    }
}
