//! The replicated command carried in the Raft log, and its byte encoding.
//!
//! A [`ClusterCommand`] mirrors the mempool's [`Command`] one variant for one variant. It is our
//! own exhaustive enum (the mempool's is `#[non_exhaustive]`), so adding a mempool command breaks
//! this crate's build until the log format learns it, instead of falling into a wildcard.
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

use core::fmt;

use mempulse_mempool::{BlockLimits, Command, CommitBlock, Reorg};
use mempulse_primitives::{
    DecodeError, Tx, ValidatorId,
    codec::{Decode, Encode, Reader},
};

const TAG_ADD_TXS: u8 = 1;
const TAG_BUILD_BLOCK: u8 = 2;
const TAG_COMMIT_BLOCK: u8 = 3;
const TAG_REORG: u8 = 4;

/// One command replicated through the Raft log and applied to the mempool on every replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterCommand {
    /// Check and admit a batch of transactions, in order.
    AddTxs(Vec<Tx>),
    /// Build a block proposal for the next height (read-only on the pool).
    BuildBlock {
        /// Block limits.
        limits: BlockLimits,
        /// Validator the proposal is for.
        proposer: ValidatorId,
    },
    /// Commit a block, then recheck.
    CommitBlock(CommitBlock),
    /// Apply a reorg.
    Reorg(Reorg),
}

impl ClusterCommand {
    /// Stable lowercase name of the variant (for logs and metric labels).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::AddTxs(_) => "add_txs",
            Self::BuildBlock { .. } => "build_block",
            Self::CommitBlock(_) => "commit_block",
            Self::Reorg(_) => "reorg",
        }
    }
}

impl From<ClusterCommand> for Command {
    fn from(command: ClusterCommand) -> Self {
        match command {
            ClusterCommand::AddTxs(txs) => Self::AddTxs(txs),
            ClusterCommand::BuildBlock { limits, proposer } => {
                Self::BuildBlock { limits, proposer }
            }
            ClusterCommand::CommitBlock(block) => Self::CommitBlock(block),
            ClusterCommand::Reorg(reorg) => Self::Reorg(reorg),
        }
    }
}

impl fmt::Display for ClusterCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddTxs(txs) => write!(f, "add_txs(n={})", txs.len()),
            Self::BuildBlock { proposer, .. } => write!(f, "build_block(proposer={proposer})"),
            Self::CommitBlock(block) => {
                write!(f, "commit_block(height={}, txs={})", block.height, block.txs.len())
            }
            Self::Reorg(reorg) => write!(
                f,
                "reorg(fork_height={}, orphaned={})",
                reorg.fork_height,
                reorg.orphaned.len()
            ),
        }
    }
}

/// The tag byte is the cluster's; each body is the mempool's own encoding of that part
/// ([`BlockLimits`], [`CommitBlock`], [`Reorg`] implement the primitives codec), so the two
/// crates cannot drift apart on a payload layout.
impl Encode for ClusterCommand {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::AddTxs(txs) => {
                out.push(TAG_ADD_TXS);
                txs.encode(out);
            }
            Self::BuildBlock { limits, proposer } => {
                out.push(TAG_BUILD_BLOCK);
                limits.encode(out);
                proposer.encode(out);
            }
            Self::CommitBlock(block) => {
                out.push(TAG_COMMIT_BLOCK);
                block.encode(out);
            }
            Self::Reorg(reorg) => {
                out.push(TAG_REORG);
                reorg.encode(out);
            }
        }
    }
}

impl Decode for ClusterCommand {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        match r.u8()? {
            TAG_ADD_TXS => Ok(Self::AddTxs(Vec::<Tx>::decode(r)?)),
            TAG_BUILD_BLOCK => Ok(Self::BuildBlock {
                limits: BlockLimits::decode(r)?,
                proposer: ValidatorId::decode(r)?,
            }),
            TAG_COMMIT_BLOCK => Ok(Self::CommitBlock(CommitBlock::decode(r)?)),
            TAG_REORG => Ok(Self::Reorg(Reorg::decode(r)?)),
            tag => Err(DecodeError::UnknownTag { offset, what: "cluster command", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use mempulse_mempool::{OrphanedBlock, test_utils::tx};
    use mempulse_primitives::{Address, Height, Nonce, TxHash, decode_exact, encode_to_vec};
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
            assert_eq!(Command::from(command.clone()), Command::from(command));
        }
    }

    #[test]
    fn unknown_tag_is_an_error() {
        assert_eq!(
            decode_exact::<ClusterCommand>(&[0]),
            Err(DecodeError::UnknownTag { offset: 0, what: "cluster command", tag: 0 })
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
