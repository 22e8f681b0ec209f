//! Property tests of the codec: round-trips, determinism, exact `encoded_len`, and robustness
//! against arbitrary and mutated input (an error or a value that re-encodes to the same bytes,
//! never a panic).

use mempulse_primitives::test_utils::{arb_event, arb_event_kind, arb_tx};
use mempulse_primitives::{
    Encode, Event, EventKind, KindCode, SCHEMA_VERSION, Tx, decode_exact, encode_to_vec,
};
use proptest::prelude::*;

/// Decodes `bytes` as a payload; when it decodes, it must re-encode to exactly `bytes`
/// (the encoding is canonical).
fn assert_payload_canonical(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(event) = Event::from_bytes(bytes) {
        prop_assert_eq!(event.to_bytes(), bytes);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn event_payload_round_trips(event in arb_event()) {
        // Determinism: an equal value built separately (a clone) gives the same bytes.
        let twin = event.clone();
        let bytes = event.to_bytes();
        prop_assert_eq!(twin.to_bytes(), bytes.as_slice());
        prop_assert_eq!(bytes[0], SCHEMA_VERSION);
        prop_assert_eq!(bytes.len(), 1 + event.encoded_len());
        prop_assert_eq!(Event::peek_kind(&bytes)?, event.kind.code());
        prop_assert_eq!(Event::from_bytes(&bytes)?, event);
    }

    #[test]
    fn event_kind_and_tx_round_trip(kind in arb_event_kind(), tx in arb_tx()) {
        let kind_bytes = encode_to_vec(&kind);
        prop_assert_eq!(kind_bytes.len(), kind.encoded_len());
        prop_assert_eq!(decode_exact::<EventKind>(&kind_bytes)?, kind);
        let tx_bytes = encode_to_vec(&tx);
        prop_assert_eq!(tx_bytes.len(), tx.encoded_len());
        prop_assert_eq!(decode_exact::<Tx>(&tx_bytes)?, tx);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        assert_payload_canonical(&bytes)?;
        if let Ok(kind) = decode_exact::<EventKind>(&bytes) {
            prop_assert_eq!(encode_to_vec(&kind), bytes.clone());
        }
        if let Ok(tx) = decode_exact::<Tx>(&bytes) {
            prop_assert_eq!(encode_to_vec(&tx), bytes);
        }
    }

    #[test]
    fn plausible_prefix_then_arbitrary_bytes_never_panic(
        kind in proptest::sample::select(KindCode::ALL),
        origin_tag in 0u8..4,
        source_tag in 0u8..8,
        tail in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        // Random bytes rarely get past the version and kind tags; this starts from valid tags so
        // the field decoders see the garbage.
        let mut bytes = vec![SCHEMA_VERSION, kind.code(), origin_tag];
        bytes.extend_from_slice(&tail[..tail.len().min(8)]);
        bytes.push(source_tag);
        bytes.extend_from_slice(&tail);
        assert_payload_canonical(&bytes)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_truncation_is_an_error(event in arb_event()) {
        let bytes = event.to_bytes();
        for len in 0..bytes.len() {
            prop_assert!(Event::from_bytes(&bytes[..len]).is_err(), "prefix of {} decoded", len);
        }
    }

    #[test]
    fn bit_flips_give_an_error_or_a_canonical_value(
        event in arb_event(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let mut bytes = event.to_bytes();
        for (index, bit) in flips {
            let i = index.index(bytes.len());
            bytes[i] ^= 1 << bit;
        }
        assert_payload_canonical(&bytes)?;
    }

    #[test]
    fn appended_bytes_are_trailing_errors(event in arb_event(), extra in 1usize..8) {
        let mut bytes = event.to_bytes();
        let len = bytes.len();
        bytes.resize(len + extra, 0);
        prop_assert_eq!(
            Event::from_bytes(&bytes),
            Err(mempulse_primitives::DecodeError::TrailingBytes { offset: len, count: extra })
        );
    }
}
