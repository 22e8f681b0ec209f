//! The stream frame codec: round trips through arbitrary chunkings, and any bytes never panic
//! nor grow the decoder's buffer past one frame and one chunk.

use bytes::{Bytes, BytesMut};
use mempulse_net::{CloseReason, FrameDecoder, StreamFrame};
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

/// Feeds `bytes` in chunks of the given sizes (cycled), collecting frames until an error.
fn feed(bytes: &[u8], chunks: &[usize]) -> (Vec<StreamFrame>, Option<mempulse_net::FrameError>) {
    let mut decoder = FrameDecoder::new(MAX);
    let mut frames = Vec::new();
    let mut rest = bytes;
    let mut sizes = chunks.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        decoder.extend(chunk);
        // One partial frame (≤ prefix + MAX) plus the chunk just added.
        assert!(decoder.buffered() <= 4 + MAX as usize + n);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, None)
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
        let (decoded, error) = feed(&bytes, &chunks);
        prop_assert_eq!(error, None);
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_decoded_frames_re_encode_to_their_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        chunks in proptest::collection::vec(1usize..128, 1..4),
    ) {
        let (frames, error) = feed(&bytes, &chunks);
        let mut again = BytesMut::new();
        for frame in &frames {
            frame.encode(&mut again, MAX).unwrap();
        }
        // Decoded frames are a canonical prefix of the input.
        prop_assert!(bytes.starts_with(&again));
        if error.is_none() {
            prop_assert!(again.len() <= bytes.len());
        }
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
