//! Tests of the peer frame codec: golden layouts, chunked decoding, typed errors.

use super::*;
use crate::test_utils::decode_in_chunks;

fn encode(frame: &PeerFrame) -> Vec<u8> {
    let mut out = BytesMut::new();
    frame.encode(&mut out, u32::MAX).unwrap();
    out.to_vec()
}

fn announcement(node: u64) -> Announcement {
    Announcement {
        node: NodeId(node),
        validator: ValidatorId(2),
        stream_addr: "127.0.0.1:7500".into(),
        api_addr: String::new(),
        tags: Tags::one(Tag::ProposerNext),
        role: PeerRole::Leader,
        height: Height(9),
        version: 3,
    }
}

fn notice() -> BlockNotice {
    BlockNotice {
        height: Height(5),
        round: 1,
        proposer: ValidatorId(3),
        txs: vec![TxHash([7; 32]), TxHash([1; 32])],
        nonces: vec![(Address([1; 20]), Nonce(4)), (Address([2; 20]), Nonce(1))],
        base_fee_per_gas: Some(7),
    }
}

fn all_frames() -> Vec<PeerFrame> {
    vec![
        PeerFrame::Hello { node: NodeId(4), version: PEER_PROTOCOL_VERSION },
        PeerFrame::Announce(announcement(4)),
        PeerFrame::Subscribe,
        PeerFrame::Catalog(vec![announcement(1), announcement(5)]),
        PeerFrame::Catalog(Vec::new()),
        PeerFrame::Block { id: 1, notice: notice() },
        PeerFrame::Block { id: 2, notice: BlockNotice { base_fee_per_gas: None, ..notice() } },
        PeerFrame::BlockAck { id: 1, ack: BlockAck::Committed },
        PeerFrame::BlockAck { id: 2, ack: BlockAck::Stale { height: Height(8) } },
        PeerFrame::BlockAck { id: 3, ack: BlockAck::refused("not the leader") },
        PeerFrame::Close { reason: CloseReason::Normal },
    ]
}

#[test]
fn golden_layouts() {
    let hello = PeerFrame::Hello { node: NodeId(0x0102), version: 1 };
    assert_eq!(
        encode(&hello),
        [&[15, 0, 0, 0, 16][..], b"mppr", &[1, 0], &[2, 1, 0, 0, 0, 0, 0, 0]].concat()
    );
    assert_eq!(encode(&PeerFrame::Subscribe), [1, 0, 0, 0, 18]);
    let a = Announcement { stream_addr: "h:1".into(), ..announcement(1) };
    assert_eq!(
        encode(&PeerFrame::Announce(a)),
        [
            &[40, 0, 0, 0, 17][..],
            &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
            &[9, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0],
            &[2, 1, 3],
            b"h:1",
            &[0],
        ]
        .concat()
    );
    let ack = PeerFrame::BlockAck { id: 7, ack: BlockAck::Stale { height: Height(1) } };
    assert_eq!(
        encode(&ack),
        [&[18, 0, 0, 0, 21, 7, 0, 0, 0, 0, 0, 0, 0, 2][..], &[1, 0, 0, 0, 0, 0, 0, 0]].concat()
    );
    assert_eq!(
        encode(&PeerFrame::Close { reason: CloseReason::ShuttingDown }),
        [2, 0, 0, 0, 22, 2]
    );
    for frame in all_frames() {
        assert_eq!(encode(&frame).len(), frame.encoded_len(), "{frame:?}");
    }
}

#[test]
fn byte_by_byte_feeding_yields_the_same_frames() {
    let frames = all_frames();
    let bytes: Vec<u8> = frames.iter().flat_map(encode).collect();
    assert_eq!(decode_in_chunks::<PeerFrame>(1024, &bytes, &[1]), (frames, None));
}

#[test]
fn malformed_frames_get_typed_errors() {
    let hello = encode(&PeerFrame::Hello { node: NodeId(1), version: 1 });
    let mut bad_magic = hello.clone();
    bad_magic[5] = b'x';
    let announce = encode(&PeerFrame::Announce(announcement(1)));
    let (mut tags, mut role, mut utf8) = (announce.clone(), announce.clone(), announce);
    tags[37] = 8;
    role[38] = 9;
    utf8[40] = 0xff;
    let block = encode(&PeerFrame::Block { id: 1, notice: notice() });
    let mut unordered = block.clone();
    // The second nonce's address equals the first.
    let second = 5 + 8 + 8 + 4 + 8 + 4 + 64 + 4 + 28;
    unordered[second..second + 20].copy_from_slice(&[1; 20]);
    let mut flag = block;
    let at = flag.len() - 17;
    flag[at] = 2;
    let cases: Vec<(Vec<u8>, PeerFrameError)> = vec![
        (vec![0, 0, 0, 0], PeerFrameError::Empty),
        (vec![1, 0, 0, 0, 99], PeerFrameError::UnknownKind { kind: 99 }),
        (vec![1, 0, 0, 0, 1], PeerFrameError::UnknownKind { kind: 1 }),
        (vec![2, 0, 0, 0, 18, 0], PeerFrameError::TrailingBytes { kind: "subscribe", extra: 1 }),
        (bad_magic, PeerFrameError::BadMagic),
        (tags, PeerFrameError::UnknownTags { bits: 8 }),
        (role, PeerFrameError::UnknownRole { code: 9 }),
        (utf8, PeerFrameError::NotUtf8 { field: "stream_addr" }),
        (unordered, PeerFrameError::Unordered { field: "nonces" }),
        (flag, PeerFrameError::BadFlag { flag: 2 }),
        (vec![2, 0, 0, 0, 22, 0], PeerFrameError::UnknownCloseReason { code: 0 }),
        (vec![10, 0, 0, 0, 21, 0, 0, 0, 0, 0, 0, 0, 0, 9], PeerFrameError::UnknownAck { code: 9 }),
        // A count far beyond the body fails before anything is allocated for it.
        (
            vec![5, 0, 0, 0, 19, 0xff, 0xff, 0xff, 0xff],
            PeerFrameError::Truncated { kind: "catalog" },
        ),
    ];
    for (bytes, want) in cases {
        let mut decoder = PeerFrameDecoder::new(1024);
        decoder.extend(&bytes);
        assert_eq!(decoder.next_frame(), Err(want), "{bytes:?}");
        assert_eq!(decoder.next_frame(), Err(want), "errors stick");
    }
    let mut decoder = PeerFrameDecoder::new(8);
    decoder.extend(&hello);
    let err = decoder.next_frame().unwrap_err();
    assert_eq!(err, PeerFrameError::TooLarge { len: 15, max: 8 });
    assert_eq!(err.close_reason(), CloseReason::FrameTooLarge);
}

#[test]
fn encode_refuses_what_the_decoder_would() {
    let mut out = BytesMut::new();
    let long = Announcement { api_addr: "x".repeat(256), ..announcement(1) };
    assert_eq!(
        PeerFrame::Announce(long).encode(&mut out, u32::MAX),
        Err(PeerFrameError::FieldTooLong { field: "address" })
    );
    let twice = PeerFrame::Catalog(vec![announcement(2), announcement(2)]);
    assert_eq!(
        twice.encode(&mut out, u32::MAX),
        Err(PeerFrameError::Unordered { field: "catalog" })
    );
    let reason = PeerFrame::BlockAck {
        id: 1,
        ack: BlockAck::Refused { reason: "x".repeat(REASON_BYTES_MAX + 1) },
    };
    assert_eq!(
        reason.encode(&mut out, u32::MAX),
        Err(PeerFrameError::FieldTooLong { field: "reason" })
    );
    let hello = PeerFrame::Hello { node: NodeId(1), version: 1 };
    assert_eq!(hello.encode(&mut out, 14), Err(PeerFrameError::TooLarge { len: 15, max: 14 }));
    assert!(out.is_empty());
}
