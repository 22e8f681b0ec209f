//! What nodes tell each other: announcements (who, where, which tags, which Raft role) and
//! blocks another cluster built.

use futures_util::future::BoxFuture;
use mempulse_primitives::{Address, Height, NodeId, Nonce, TxHash, ValidatorId};
use mempulse_schedule::Tags;

/// A node's Raft role, as it announces it. Codes are part of the protocol: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeerRole {
    /// Leads its cluster (writes go here).
    Leader,
    /// Follows a leader.
    Follower,
    /// Campaigns for leadership.
    Candidate,
    /// Replicates without voting.
    Learner,
    /// Not known (starting, shutting down).
    Unknown,
}

impl PeerRole {
    /// Every role, in code order.
    pub const ALL: [Self; 5] =
        [Self::Leader, Self::Follower, Self::Candidate, Self::Learner, Self::Unknown];

    /// Stable wire code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Leader => 1,
            Self::Follower => 2,
            Self::Candidate => 3,
            Self::Learner => 4,
            Self::Unknown => 5,
        }
    }

    /// Parses a wire code.
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::Leader),
            2 => Some(Self::Follower),
            3 => Some(Self::Candidate),
            4 => Some(Self::Learner),
            5 => Some(Self::Unknown),
            _ => None,
        }
    }

    /// Stable lowercase name (the API's `role`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Leader => "leader",
            Self::Follower => "follower",
            Self::Candidate => "candidate",
            Self::Learner => "learner",
            Self::Unknown => "unknown",
        }
    }

    /// The role of a Raft status name (`leader`, `follower`, `candidate`, `learner`); anything
    /// else is [`PeerRole::Unknown`].
    #[must_use]
    pub fn from_name(name: &str) -> Self {
        Self::ALL.into_iter().find(|r| r.as_str() == name).unwrap_or(Self::Unknown)
    }
}

impl core::fmt::Display for PeerRole {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one node says about itself. A newer `version` of the same node replaces an older one
/// in every [`crate::peer::Catalog`]; the same version again only refreshes its expiry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// The announcing node (must be the node the connection authenticated).
    pub node: NodeId,
    /// The validator its cluster runs as.
    pub validator: ValidatorId,
    /// `host:port` of its tx-stream and peer listener.
    pub stream_addr: String,
    /// `host:port` of its HTTP API (empty when it has none).
    pub api_addr: String,
    /// Its cluster's tags at `height`.
    pub tags: Tags,
    /// Its Raft role.
    pub role: PeerRole,
    /// The height being proposed, as it sees it (one above its pool's last block).
    pub height: Height,
    /// Strictly increasing per node across restarts; a change of any other field comes with
    /// a new version.
    pub version: u64,
}

impl Announcement {
    /// Whether `self` and `other` say the same thing (all but the version).
    #[must_use]
    pub fn same_content(&self, other: &Self) -> bool {
        Self { version: other.version, ..self.clone() } == *other
    }
}

/// A block another cluster built and committed, for this cluster to commit through its own
/// Raft log (remove the included transactions, advance the senders' nonces, recheck).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockNotice {
    /// The block's height.
    pub height: Height,
    /// The round it was built in (0 unless earlier proposers missed their slot).
    pub round: u32,
    /// The validator that built it.
    pub proposer: ValidatorId,
    /// Included transactions, in block order.
    pub txs: Vec<TxHash>,
    /// The next nonce of every sender the block included, by ascending address (each once).
    pub nonces: Vec<(Address, Nonce)>,
    /// The block's base fee, when the chain has one.
    pub base_fee_per_gas: Option<u128>,
}

/// How a cluster answered a [`BlockNotice`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockAck {
    /// Committed through its Raft log (or already committed).
    Committed,
    /// Its pool is already past the block: its height is `height`.
    Stale {
        /// The height the receiving pool has committed.
        height: Height,
    },
    /// Not committed, for this reason (human-readable; at most [`REASON_BYTES_MAX`] bytes on
    /// the wire, longer ones are cut by [`BlockAck::refused`]).
    Refused {
        /// Why.
        reason: String,
    },
}

/// Most bytes of a [`BlockAck::Refused`] reason on the wire.
pub const REASON_BYTES_MAX: usize = 512;

impl BlockAck {
    /// [`BlockAck::Refused`] with `reason` cut to [`REASON_BYTES_MAX`] bytes at a character
    /// boundary.
    #[must_use]
    pub fn refused(reason: &str) -> Self {
        let mut end = reason.len().min(REASON_BYTES_MAX);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Self::Refused { reason: reason.get(..end).unwrap_or_default().to_owned() }
    }

    /// Stable name of the answer (logs, metrics).
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::Stale { .. } => "stale",
            Self::Refused { .. } => "refused",
        }
    }
}

/// Commits blocks other clusters built: implemented by the node, called by
/// [`crate::peer::serve_peer`] for every `Block` frame a peer sends (a bounded number at once
/// per session).
pub trait BlockHandler: Send + Sync + 'static {
    /// Commits `block`, which node `from` sent, and answers how it went.
    fn on_block(&self, from: NodeId, block: BlockNotice) -> BoxFuture<'static, BlockAck>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_by_code_and_name() {
        for (i, role) in PeerRole::ALL.iter().enumerate() {
            assert_eq!(usize::from(role.code()), i + 1);
            assert_eq!(PeerRole::from_code(role.code()), Some(*role));
            assert_eq!(PeerRole::from_name(role.as_str()), *role);
        }
        assert_eq!(PeerRole::from_code(0), None);
        assert_eq!(PeerRole::from_name("shutdown"), PeerRole::Unknown);
    }

    #[test]
    fn refusal_reasons_are_cut_at_a_character_boundary() {
        let long = "é".repeat(REASON_BYTES_MAX);
        let BlockAck::Refused { reason } = BlockAck::refused(&long) else { unreachable!() };
        assert_eq!(reason.len(), REASON_BYTES_MAX);
        assert_eq!(BlockAck::refused("no"), BlockAck::Refused { reason: "no".into() });
    }
}
