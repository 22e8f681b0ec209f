//! The replicated command carried in the Raft log, and its byte encoding.
//!
//! [`ClusterCommand`] is the mempool's own [`mempulse_mempool::Command`], re-exported: the
//! replicated command set and its codec (`u8 tag | body`, `command_codec.rs` in the mempool
//! crate) live in one place. That enum is exhaustive on purpose, so a new mempool command breaks
//! every `match` here until the log format learns it. A log entry embeds the bare tagged encoding
//! (no command version byte; the entry has its own version, see `codec.rs`).
//!
//! # Byte layout (inside a log entry, see `codec.rs`)
//! All integers little-endian, lists `u32 count | items`, options `u8 0 | u8 1 value`
//! (the [`mempulse_primitives::codec`] rules).
//! ```text
//! u8 tag
//!   1 AddTxs       Vec<Tx>
//!   2 BuildBlock   Option<u64> max_bytes | Option<u64> max_gas | u64 proposer
//!   3 CommitBlock  u64 height | Vec<TxHash> | nonces | Option<u128> base_fee_per_gas
//!   4 Reorg        u64 fork_height | u32 count { u64 height | Vec<Tx> } | nonces
//!                  | Option<u128> base_fee_per_gas
//! nonces = u32 count { 20-byte address | u64 nonce }
//! ```

/// One command replicated through the Raft log and applied to the mempool on every replica.
pub use mempulse_mempool::Command as ClusterCommand;

#[cfg(test)]
mod tests {
    use mempulse_mempool::{BlockLimits, CommitBlock, OrphanedBlock, Reorg, test_utils::tx};
    use mempulse_primitives::{
        Address, DecodeError, Height, Nonce, TxHash, ValidatorId, codec::Encode, decode_exact,
        encode_to_vec,
    };
    use proptest::prelude::*;

    use super::*;

    fn samples() -> Vec<ClusterCommand> {
        let address = Address([7; 20]);
        vec![
            ClusterCommand::AddTxs(vec![]),
            ClusterCommand::AddTxs(vec![tx(1, 0, 10), tx(2, 5, 99)]),
            ClusterCommand::BuildBlock {
                limits: BlockLimits { max_bytes: Some(1 << 20), max_gas: None },
                proposer: ValidatorId(3),
            },
            ClusterCommand::CommitBlock(CommitBlock {
                height: Height(9),
                txs: vec![TxHash([1; 32]), TxHash([2; 32])],
                nonces: vec![(address, Nonce(4))],
                base_fee_per_gas: Some(7),
            }),
            ClusterCommand::Reorg(Reorg {
                fork_height: Height(5),
                orphaned: vec![OrphanedBlock { height: Height(6), txs: vec![tx(3, 1, 20)] }],
                nonces: vec![],
                base_fee_per_gas: None,
            }),
        ]
    }

    #[test]
    fn every_variant_round_trips() {
        for command in samples() {
            let bytes = encode_to_vec(&command);
            assert_eq!(bytes.len(), command.encoded_len());
            assert_eq!(decode_exact::<ClusterCommand>(&bytes), Ok(command.clone()), "{command}");
        }
    }

    #[test]
    fn unknown_tag_is_an_error() {
        assert_eq!(
            decode_exact::<ClusterCommand>(&[0]),
            Err(DecodeError::UnknownTag { offset: 0, what: "mempool command", tag: 0 })
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        for command in samples() {
            let bytes = encode_to_vec(&command);
            for len in 0..bytes.len() {
                assert!(decode_exact::<ClusterCommand>(&bytes[..len]).is_err(), "{command} {len}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(command) = decode_exact::<ClusterCommand>(&bytes) {
                prop_assert_eq!(encode_to_vec(&command), bytes);
            }
        }

        #[test]
        fn mutated_encodings_never_panic(index in 0usize..5, at in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = encode_to_vec(&samples()[index]);
            let at = at % bytes.len();
            bytes[at] = byte;
            if let Ok(command) = decode_exact::<ClusterCommand>(&bytes) {
                prop_assert_eq!(encode_to_vec(&command), bytes);
            }
        }
    }
}
