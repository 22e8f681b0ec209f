//! The stream frame codec: round trips through arbitrary chunkings, and any bytes never panic
//! nor grow the decoder's buffer past one frame and one chunk.

use bytes::{Bytes, BytesMut};
use mempulse_net::{
    CloseReason, FrameDecoder, StreamFrame,
    test_utils::{check_any_bytes, decode_in_chunks},
};
use mempulse_primitives::NodeId;
use proptest::prelude::*;

const MAX: u32 = 4096;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

fn arb_frame() -> impl Strategy<Value = StreamFrame> {
    prop_oneof![
        (any::<u64>(), any::<u16>())
            .prop_map(|(n, version)| StreamFrame::Hello { source: NodeId(n), version }),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8)
            .prop_map(|txs| StreamFrame::Txs(txs.into_iter().map(Bytes::from).collect())),
        (1u32..).prop_map(|txs| StreamFrame::Credit { txs }),
        proptest::sample::select(CloseReason::ALL).prop_map(|reason| StreamFrame::Close { reason }),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn frames_round_trip_through_any_chunking(
        frames in proptest::collection::vec(arb_frame(), 0..6),
        chunks in proptest::collection::vec(1usize..64, 1..8),
    ) {
        let mut bytes = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut bytes, MAX).unwrap();
        }
        let (decoded, error) = decode_in_chunks::<StreamFrame>(MAX, &bytes, &chunks);
        prop_assert_eq!(error, None);
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decoded_frames_re_encode_to_their_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        chunks in proptest::collection::vec(1usize..128, 1..4),
    ) {
        check_any_bytes::<StreamFrame>(MAX, &bytes, &chunks);
    }

    #[test]
    fn a_length_prefix_over_the_limit_is_refused(len in (MAX + 1)..) {
        let mut decoder = FrameDecoder::new(MAX);
        decoder.extend(&len.to_le_bytes());
        prop_assert_eq!(
            decoder.next_frame(),
            Err(mempulse_net::FrameError::TooLarge { len: u64::from(len), max: MAX })
        );
    }
}
