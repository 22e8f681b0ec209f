//! Decoding any bytes never panics; mutated real transactions never panic and never decode to a
//! transaction whose hash is not the hash of its bytes.

use bytes::Bytes;
use mempulse_net::{CheckConfig, decode_tx, test_utils::sample_txs};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_tx(Bytes::from(bytes), &CheckConfig::default());
    }

    #[test]
    fn typed_prefixes_with_arbitrary_bodies_never_panic(
        type_byte in 0u8..=5,
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![type_byte];
        bytes.extend(body);
        let _ = decode_tx(Bytes::from(bytes), &CheckConfig::default());
    }

    #[test]
    fn mutated_transactions_never_panic_and_keep_hash_and_bytes(
        index in 0usize..10,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let txs = sample_txs(10, 3);
        let mut bytes = txs[index].to_vec();
        for (at, value) in edits {
            let at = at.index(bytes.len());
            bytes[at] = value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let raw = Bytes::from(bytes);
        if let Ok(tx) = decode_tx(raw.clone(), &CheckConfig::default()) {
            prop_assert_eq!(&tx.raw, &raw);
            prop_assert_eq!(tx.hash.0, alloy_primitives::keccak256(&raw).0);
            prop_assert_eq!(tx.encoded_size as usize, raw.len());
        }
    }
}
