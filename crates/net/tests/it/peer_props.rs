//! The peer frame codec: every frame round-trips whatever the chunking, and any bytes decode to
//! frames or a typed error without panicking, with every decoded frame re-encoding to exactly
//! the bytes it came from.

use bytes::BytesMut;
use mempulse_net::{
    CloseReason,
    peer::{Announcement, BlockAck, BlockNotice, PeerFrame, PeerRole},
    test_utils::{check_any_bytes, decode_in_chunks},
};
use mempulse_primitives::{Address, Height, NodeId, Nonce, TxHash, ValidatorId};
use mempulse_schedule::{Tag, Tags};
use proptest::{collection::vec, prelude::*};

const MAX: u32 = 64 * 1024;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

fn announcement() -> impl Strategy<Value = Announcement> {
    (
        any::<u64>(),
        any::<u64>(),
        "[a-z0-9.:]{0,40}",
        "[a-z0-9.:]{0,40}",
        0u8..8,
        0usize..5,
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(node, validator, stream_addr, api_addr, bits, role, height, version)| {
            Announcement {
                node: NodeId(node),
                validator: ValidatorId(validator),
                stream_addr,
                api_addr,
                tags: Tag::ALL
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, t)| t)
                    .collect::<Tags>(),
                role: PeerRole::ALL[role],
                height: Height(height),
                version,
            }
        })
}

fn notice() -> impl Strategy<Value = BlockNotice> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        vec(any::<[u8; 32]>(), 0..8),
        proptest::collection::btree_map(any::<[u8; 20]>(), any::<u64>(), 0..8),
        proptest::option::of(any::<u128>()),
    )
        .prop_map(|(height, round, proposer, txs, nonces, base_fee_per_gas)| BlockNotice {
            height: Height(height),
            round,
            proposer: ValidatorId(proposer),
            txs: txs.into_iter().map(TxHash).collect(),
            nonces: nonces.into_iter().map(|(a, n)| (Address(a), Nonce(n))).collect(),
            base_fee_per_gas,
        })
}

fn frame() -> impl Strategy<Value = PeerFrame> {
    prop_oneof![
        (any::<u64>(), any::<u16>())
            .prop_map(|(node, version)| PeerFrame::Hello { node: NodeId(node), version }),
        announcement().prop_map(PeerFrame::Announce),
        Just(PeerFrame::Subscribe),
        vec(announcement(), 0..6).prop_map(|mut all| {
            all.sort_by_key(|a| a.node);
            all.dedup_by_key(|a| a.node);
            PeerFrame::Catalog(all)
        }),
        (any::<u64>(), notice()).prop_map(|(id, notice)| PeerFrame::Block { id, notice }),
        (any::<u64>(), 0u8..3, any::<u64>(), "[ -~]{0,60}").prop_map(|(id, kind, h, reason)| {
            let ack = match kind {
                0 => BlockAck::Committed,
                1 => BlockAck::Stale { height: Height(h) },
                _ => BlockAck::Refused { reason },
            };
            PeerFrame::BlockAck { id, ack }
        }),
        (0usize..CloseReason::ALL.len())
            .prop_map(|i| PeerFrame::Close { reason: CloseReason::ALL[i] }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn frames_round_trip_in_any_chunking(frames in vec(frame(), 1..6), chunk in 1usize..64) {
        let mut bytes = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut bytes, MAX).unwrap();
        }
        let (decoded, error) = decode_in_chunks::<PeerFrame>(MAX, &bytes, &[chunk]);
        prop_assert_eq!(error, None);
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn any_bytes_decode_or_fail_typed(bytes in vec(any::<u8>(), 0..512), chunk in 1usize..64) {
        check_any_bytes::<PeerFrame>(MAX, &bytes, &[chunk]);
    }

    #[test]
    fn mutated_frames_never_panic(
        frame in frame(),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = BytesMut::new();
        frame.encode(&mut bytes, MAX).unwrap();
        let mut bytes = bytes.to_vec();
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        let _ = decode_in_chunks::<PeerFrame>(MAX, &bytes, &[7]);
    }
}
