//! The data of one normal Raft log entry: a batch of commands stamped by the leader.
//!
//! The leader's batcher coalesces the commands of many concurrent callers into one
//! [`ClusterRequest`]; every replica applies them in order, one mempool call each, so each
//! caller gets exactly its own outcome back (see `node/batcher.rs`). The leader also stamps the
//! wall-clock time here, once per entry: replicas copy it into the `observed_at` of the facts the
//! entry produces, so no replica reads a clock while applying and all of them write identical
//! events.
//!
//! # Byte layout (the payload of a normal entry, see `codec.rs`)
//! ```text
//! u64 stamped_at (unix milliseconds, little-endian)
//! u32 count | count × ClusterCommand (command.rs)
//! ```

use core::fmt;

use mempulse_primitives::{
    DecodeError, UnixMillis,
    codec::{Decode, Encode, Reader},
};

use crate::ClusterCommand;

/// The replicated data of one normal log entry: commands applied in order, and the time the
/// leader proposed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterRequest {
    /// When the leader proposed the entry; copied into every fact the entry produces.
    pub stamped_at: UnixMillis,
    /// The commands, applied one after the other, each with its own outcome.
    pub commands: Vec<ClusterCommand>,
}

impl ClusterRequest {
    /// A request of one command.
    #[must_use]
    pub fn single(stamped_at: UnixMillis, command: ClusterCommand) -> Self {
        Self { stamped_at, commands: vec![command] }
    }
}

impl fmt::Display for ClusterRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request(at={}, commands=[", self.stamped_at.get())?;
        for (i, command) in self.commands.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{command}")?;
        }
        f.write_str("])")
    }
}

impl Encode for ClusterRequest {
    fn encode(&self, out: &mut Vec<u8>) {
        self.stamped_at.encode(out);
        self.commands.encode(out);
    }
}

impl Decode for ClusterRequest {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { stamped_at: UnixMillis::decode(r)?, commands: Vec::decode(r)? })
    }
}

#[cfg(test)]
mod tests {
    use mempulse_mempool::test_utils::tx;
    use mempulse_primitives::{decode_exact, encode_to_vec};

    use super::*;

    #[test]
    fn round_trips_and_layout_is_stable() {
        let request = ClusterRequest {
            stamped_at: UnixMillis(1_700_000_000_123),
            commands: vec![
                ClusterCommand::AddTxs(vec![tx(1, 0, 10)]),
                ClusterCommand::AddTxs(vec![]),
            ],
        };
        let bytes = encode_to_vec(&request);
        assert_eq!(bytes[..8], 1_700_000_000_123u64.to_le_bytes());
        assert_eq!(bytes[8..12], 2u32.to_le_bytes());
        assert_eq!(decode_exact::<ClusterRequest>(&bytes), Ok(request.clone()));
        for len in 0..bytes.len() {
            assert!(decode_exact::<ClusterRequest>(&bytes[..len]).is_err(), "{len}");
        }
        assert_eq!(
            request.to_string(),
            "request(at=1700000000123, commands=[add_txs(n=1), add_txs(n=0)])"
        );
    }
}
