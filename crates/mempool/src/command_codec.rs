//! The stable binary encoding of [`Command`]s, for the Raft log.
//!
//! This is the one encoding of the replicated command set: `mempulse-cluster` re-exports
//! [`Command`] as its `ClusterCommand` and embeds the bare `u8 tag | body` form ([`Encode`],
//! [`Decode`]) in its log entries, which carry their own version byte. Changing a tag or a
//! body changes the bytes in every stored Raft log.
//!
//! It follows the rules of `mempulse_primitives::codec` (fixed-width little-endian integers,
//! `u32` counts, `opt<T>` as `u8 0 | u8 1 T`, strict decoding) and reuses its `Tx` layout.
//! A stored payload is [`COMMAND_VERSION`] then the command:
//! ```text
//! command   u8 tag | body
//!   1 AddTxs       u32 count | count × tx
//!   2 BuildBlock   opt<u64 max_bytes> | opt<u64 max_gas> | u64 proposer
//!   3 CommitBlock  u64 height | u32 count | count × hash[32] | nonces | opt<u128 base_fee>
//!   4 Reorg        u64 fork_height | u32 count | count × (u64 height | u32 n | n × tx)
//!                  | nonces | opt<u128 base_fee>
//! nonces    u32 count | count × (address[20] | u64 nonce)
//! ```

use mempulse_primitives::codec::{Decode, Encode, put_len};
use mempulse_primitives::{Address, DecodeError, Height, Nonce, Reader, TxHash, ValidatorId};

use crate::{BlockLimits, Command, CommitBlock, OrphanedBlock, Reorg};

/// Version byte that opens every stored command payload ([`Command::to_bytes`]).
pub const COMMAND_VERSION: u8 = 1;

const TAG_ADD_TXS: u8 = 1;
const TAG_BUILD_BLOCK: u8 = 2;
const TAG_COMMIT_BLOCK: u8 = 3;
const TAG_REORG: u8 = 4;

impl Command {
    /// The stored payload: [`COMMAND_VERSION`], then the command's encoding.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![COMMAND_VERSION];
        self.encode(&mut out);
        out
    }

    /// Decodes a payload written by [`Command::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError::UnsupportedVersion`] for another version byte, or any error of the
    /// layout: truncation, an unknown tag, a count the input cannot hold, trailing bytes.
    pub fn from_bytes(payload: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(payload);
        let found = r.u8()?;
        if found != COMMAND_VERSION {
            return Err(DecodeError::UnsupportedVersion { found, supported: COMMAND_VERSION });
        }
        let command = Self::decode(&mut r)?;
        r.finish()?;
        Ok(command)
    }
}

fn encode_nonces(nonces: &[(Address, Nonce)], out: &mut Vec<u8>) {
    put_len(out, nonces.len());
    for (address, nonce) in nonces {
        address.encode(out);
        nonce.encode(out);
    }
}

fn decode_nonces(r: &mut Reader<'_>) -> Result<Vec<(Address, Nonce)>, DecodeError> {
    let count = r.count(20 + 8)?;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        out.push((Address::decode(r)?, Nonce::decode(r)?));
    }
    Ok(out)
}

/// `opt<u64 max_bytes> | opt<u64 max_gas>`.
impl Encode for BlockLimits {
    fn encode(&self, out: &mut Vec<u8>) {
        self.max_bytes.encode(out);
        self.max_gas.encode(out);
    }
}

impl Decode for BlockLimits {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { max_bytes: Option::decode(r)?, max_gas: Option::decode(r)? })
    }
}

/// `u64 height | u32 count | count × hash | nonces | opt<u128 base_fee>`.
impl Encode for CommitBlock {
    fn encode(&self, out: &mut Vec<u8>) {
        self.height.encode(out);
        self.txs.encode(out);
        encode_nonces(&self.nonces, out);
        self.base_fee_per_gas.encode(out);
    }
}

impl Decode for CommitBlock {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            height: Height::decode(r)?,
            txs: Vec::<TxHash>::decode(r)?,
            nonces: decode_nonces(r)?,
            base_fee_per_gas: Option::decode(r)?,
        })
    }
}

/// `u64 height | u32 count | count × tx`.
impl Encode for OrphanedBlock {
    fn encode(&self, out: &mut Vec<u8>) {
        self.height.encode(out);
        self.txs.encode(out);
    }
}

impl Decode for OrphanedBlock {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { height: Height::decode(r)?, txs: Vec::decode(r)? })
    }
}

/// `u64 fork_height | u32 count | count × orphaned block | nonces | opt<u128 base_fee>`.
impl Encode for Reorg {
    fn encode(&self, out: &mut Vec<u8>) {
        self.fork_height.encode(out);
        self.orphaned.encode(out);
        encode_nonces(&self.nonces, out);
        self.base_fee_per_gas.encode(out);
    }
}

impl Decode for Reorg {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            fork_height: Height::decode(r)?,
            orphaned: Vec::decode(r)?,
            nonces: decode_nonces(r)?,
            base_fee_per_gas: Option::decode(r)?,
        })
    }
}

/// `u8 tag | body`; see the module docs.
impl Encode for Command {
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

impl Decode for Command {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        match r.u8()? {
            TAG_ADD_TXS => Ok(Self::AddTxs(Vec::decode(r)?)),
            TAG_BUILD_BLOCK => Ok(Self::BuildBlock {
                limits: BlockLimits::decode(r)?,
                proposer: ValidatorId::decode(r)?,
            }),
            TAG_COMMIT_BLOCK => Ok(Self::CommitBlock(CommitBlock::decode(r)?)),
            TAG_REORG => Ok(Self::Reorg(Reorg::decode(r)?)),
            tag => Err(DecodeError::UnknownTag { offset, what: "mempool command", tag }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{address, tx};

    #[test]
    fn layout_of_a_build_command() {
        let c = Command::BuildBlock {
            limits: BlockLimits { max_bytes: Some(2), max_gas: None },
            proposer: ValidatorId(7),
        };
        let mut expected = vec![COMMAND_VERSION, TAG_BUILD_BLOCK, 1];
        expected.extend_from_slice(&2u64.to_le_bytes());
        expected.push(0);
        expected.extend_from_slice(&7u64.to_le_bytes());
        assert_eq!(c.to_bytes(), expected);
        assert_eq!(Command::from_bytes(&expected), Ok(c));
    }

    #[test]
    fn every_command_round_trips_and_rejects_bad_framing() {
        let commands = [
            Command::AddTxs(vec![tx(1, 0, 5), tx(2, 3, 9)]),
            Command::CommitBlock(CommitBlock {
                height: Height(4),
                txs: vec![tx(1, 0, 5).hash],
                nonces: vec![(address(2), Nonce(3))],
                base_fee_per_gas: Some(11),
            }),
            Command::Reorg(Reorg {
                fork_height: Height(2),
                orphaned: vec![OrphanedBlock { height: Height(3), txs: vec![tx(1, 0, 5)] }],
                nonces: vec![],
                base_fee_per_gas: None,
            }),
        ];
        for c in commands {
            let bytes = c.to_bytes();
            assert_eq!(Command::from_bytes(&bytes).as_ref(), Ok(&c));
            for cut in 0..bytes.len() {
                assert!(Command::from_bytes(&bytes[..cut]).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(matches!(Command::from_bytes(&longer), Err(DecodeError::TrailingBytes { .. })));
        }
        assert!(matches!(
            Command::from_bytes(&[2, 1]),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            Command::from_bytes(&[1, 9]),
            Err(DecodeError::UnknownTag { tag: 9, .. })
        ));
    }
}
