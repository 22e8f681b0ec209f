//! Why an administrative request failed ([`AdminError`]), with what a membership refusal
//! reports: how far a learner lags ([`LearnerLag`]) and how far a change got
//! ([`ChangeState`]). Split from `admin.rs`, which holds the requests and replies.
//!
//! # Byte layout (inside an admin answer, see `admin.rs`)
//! ```text
//! AdminError    u8 tag: 1 Client ClientError | 2 InProgress | 3 EmptyMembership
//!               | 4 LearnerNotFound u64 | 5 UnknownNode u64 | 6 Refused
//!               | 7 AlreadyMember u64 id, u8 voter (0|1) | 8 NotVoter u64
//!               | 9 LearnersBehind u32 n, n × LearnerLag
//!               | 10 LearnerNotCaughtUp LearnerLag, u64 log index, u64 waited ms
//!               | 11 ChangeTimedOut u8 0 not proposed | 1 proposed u64 | 2 committed u64,
//!                                   u64 waited ms
//! LearnerLag    u64 id | opt<u64 matched> | opt<u64 target> | opt<u64 last ack age ms>
//! ```

use mempulse_primitives::{
    DecodeError, NodeId,
    codec::{Decode, Encode, Reader, put_len},
};

use crate::{
    ClientError,
    config::{PROMOTE_ACK_AGE_MAX, PROMOTE_LAG_ENTRIES_MAX},
};

/// Why an administrative request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The request did not reach a leader that could serve it (not the leader, stopped, …).
    #[error("admin request failed")]
    Client(#[from] ClientError),
    /// Another membership change is still in progress; retry when it is done.
    #[error("another membership change is in progress")]
    InProgress,
    /// The change would leave no voter.
    #[error("the change would leave no voter")]
    EmptyMembership,
    /// A node to promote is not a learner.
    #[error("node {0} is not a learner")]
    LearnerNotFound(NodeId),
    /// The node named is not a member.
    #[error("node {0} is not a member")]
    UnknownNode(NodeId),
    /// The leader refused the change for another reason (see its log).
    #[error("membership change refused")]
    Refused,
    /// The node to add as a learner is already a member (the node itself included).
    #[error("node {id} is already a {role} of the cluster", role = if *voter { "voter" } else { "learner" })]
    AlreadyMember {
        /// The node.
        id: NodeId,
        /// Whether it votes (else it is a learner).
        voter: bool,
    },
    /// The node named is a member, but a learner where a voter is needed.
    #[error("node {0} is a learner, not a voter")]
    NotVoter(NodeId),
    /// Learners to promote lag the leader's commit index by more than
    /// [`PROMOTE_LAG_ENTRIES_MAX`] entries, hold nothing yet, or have not acknowledged
    /// anything for longer than [`PROMOTE_ACK_AGE_MAX`] (or twice the election timeout, when
    /// longer): promoting them could leave the cluster without a quorum. Nothing was proposed.
    #[error(
        "not promoted, nothing proposed: {} (a learner is promoted only within {PROMOTE_LAG_ENTRIES_MAX} entries of the commit index and heard from within the last {} ms)",
        LagList(.0),
        PROMOTE_ACK_AGE_MAX.as_millis()
    )]
    LearnersBehind(Vec<LearnerLag>),
    /// The learner was added (its membership entry committed) but its log did not reach that
    /// entry within the catch-up timeout. It stays a learner, which changes no quorum.
    #[error("node {} was added as a learner (membership entry {log_index}) but did not catch up within {waited_ms} ms: {lag}", lag.id)]
    LearnerNotCaughtUp {
        /// How far it is.
        lag: LearnerLag,
        /// The membership entry that added it.
        log_index: u64,
        /// How long the leader waited.
        waited_ms: u64,
    },
    /// A membership change did not finish within the request's timeout.
    #[error("membership change not finished within {waited_ms} ms: {state}")]
    ChangeTimedOut {
        /// How far it got.
        state: ChangeState,
        /// How long the leader waited.
        waited_ms: u64,
    },
}

/// How far a member's log is behind the leader's: a learner's before a promote, and every
/// member's in the leader's [`ClusterStatus`](crate::ClusterStatus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LearnerLag {
    /// The learner.
    pub id: NodeId,
    /// The last index the leader knows it holds (`None`: nothing acknowledged yet, as for an
    /// unreachable node).
    pub matched: Option<u64>,
    /// The leader's index it is measured against (commit index, or the entry that added it).
    pub target: Option<u64>,
    /// Milliseconds since the leader last heard from it (`None`: never).
    pub ack_age_ms: Option<u64>,
}

impl LearnerLag {
    /// Entries between `matched` and `target` (all of them when nothing matched).
    #[must_use]
    pub fn entries(&self) -> u64 {
        let next = |i: Option<u64>| i.map_or(0, |i| i.saturating_add(1));
        next(self.target).saturating_sub(next(self.matched))
    }
}

impl std::fmt::Display for LearnerLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let target = self.target.unwrap_or(0);
        match self.matched {
            None => write!(
                f,
                "node {} has acknowledged no entry yet (leader at index {target}; is it running and reachable at its raft address?)",
                self.id
            )?,
            Some(matched) => write!(
                f,
                "node {} is {} entries behind (at index {matched}, leader at {target})",
                self.id,
                self.entries()
            )?,
        }
        if let (Some(_), Some(age)) = (self.matched, self.ack_age_ms) {
            write!(f, ", last heard from {age} ms ago")?;
        }
        Ok(())
    }
}

/// `a; b; c` for a list of lags.
struct LagList<'a>(&'a [LearnerLag]);

impl std::fmt::Display for LagList<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, lag) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{lag}")?;
        }
        Ok(())
    }
}

/// How far a membership change got when its wait ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChangeState {
    /// No membership entry was written for it.
    NotProposed,
    /// Its membership entry is in the leader's log but not committed: it commits once a
    /// quorum of the old and of the new voters holds it, and stays in effect meanwhile.
    Proposed {
        /// The entry.
        log_index: u64,
    },
    /// Its membership entry committed (a later step of a joint change may not have).
    Committed {
        /// The entry.
        log_index: u64,
    },
}

impl std::fmt::Display for ChangeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotProposed => f.write_str("nothing was proposed"),
            Self::Proposed { log_index } => write!(
                f,
                "proposed at log index {log_index} but not committed (it needs a quorum of the old and of the new voters, and is in effect until then)"
            ),
            Self::Committed { log_index } => {
                write!(f, "committed at log index {log_index}, the change may not be complete")
            }
        }
    }
}

impl AdminError {
    /// Whether the same request may succeed later.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        match self {
            Self::Client(e) => e.is_retryable(),
            Self::InProgress | Self::LearnersBehind(_) => true,
            Self::EmptyMembership
            | Self::LearnerNotFound(_)
            | Self::UnknownNode(_)
            | Self::Refused
            | Self::AlreadyMember { .. }
            | Self::NotVoter(_)
            | Self::LearnerNotCaughtUp { .. }
            | Self::ChangeTimedOut { .. } => false,
        }
    }
}

const ERR_CLIENT: u8 = 1;
const ERR_IN_PROGRESS: u8 = 2;
const ERR_EMPTY: u8 = 3;
const ERR_LEARNER_NOT_FOUND: u8 = 4;
const ERR_UNKNOWN_NODE: u8 = 5;
const ERR_REFUSED: u8 = 6;
const ERR_ALREADY_MEMBER: u8 = 7;
const ERR_NOT_VOTER: u8 = 8;
const ERR_LEARNERS_BEHIND: u8 = 9;
const ERR_NOT_CAUGHT_UP: u8 = 10;
const ERR_CHANGE_TIMED_OUT: u8 = 11;

/// `u64 id | opt<u64 matched> | opt<u64 target> | opt<u64 last ack age ms>`.
impl Encode for LearnerLag {
    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out);
        self.matched.encode(out);
        self.target.encode(out);
        self.ack_age_ms.encode(out);
    }
}

impl Decode for LearnerLag {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            id: NodeId::decode(r)?,
            matched: Option::decode(r)?,
            target: Option::decode(r)?,
            ack_age_ms: Option::decode(r)?,
        })
    }
}

/// `u8 0 | 1 u64 proposed | 2 u64 committed`.
impl Encode for ChangeState {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::NotProposed => out.push(0),
            Self::Proposed { log_index } => {
                out.push(1);
                log_index.encode(out);
            }
            Self::Committed { log_index } => {
                out.push(2);
                log_index.encode(out);
            }
        }
    }
}

impl Decode for ChangeState {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        Ok(match r.u8()? {
            0 => Self::NotProposed,
            1 => Self::Proposed { log_index: r.u64()? },
            2 => Self::Committed { log_index: r.u64()? },
            tag => return Err(DecodeError::UnknownTag { offset, what: "change state", tag }),
        })
    }
}

impl Encode for AdminError {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Client(e) => {
                out.push(ERR_CLIENT);
                e.encode(out);
            }
            Self::InProgress => out.push(ERR_IN_PROGRESS),
            Self::EmptyMembership => out.push(ERR_EMPTY),
            Self::LearnerNotFound(id) => {
                out.push(ERR_LEARNER_NOT_FOUND);
                id.encode(out);
            }
            Self::UnknownNode(id) => {
                out.push(ERR_UNKNOWN_NODE);
                id.encode(out);
            }
            Self::Refused => out.push(ERR_REFUSED),
            Self::AlreadyMember { id, voter } => {
                out.push(ERR_ALREADY_MEMBER);
                id.encode(out);
                out.push(u8::from(*voter));
            }
            Self::NotVoter(id) => {
                out.push(ERR_NOT_VOTER);
                id.encode(out);
            }
            Self::LearnersBehind(lags) => {
                out.push(ERR_LEARNERS_BEHIND);
                put_len(out, lags.len());
                for lag in lags {
                    lag.encode(out);
                }
            }
            Self::LearnerNotCaughtUp { lag, log_index, waited_ms } => {
                out.push(ERR_NOT_CAUGHT_UP);
                lag.encode(out);
                log_index.encode(out);
                waited_ms.encode(out);
            }
            Self::ChangeTimedOut { state, waited_ms } => {
                out.push(ERR_CHANGE_TIMED_OUT);
                state.encode(out);
                waited_ms.encode(out);
            }
        }
    }
}

impl Decode for AdminError {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        Ok(match r.u8()? {
            ERR_CLIENT => Self::Client(ClientError::decode(r)?),
            ERR_IN_PROGRESS => Self::InProgress,
            ERR_EMPTY => Self::EmptyMembership,
            ERR_LEARNER_NOT_FOUND => Self::LearnerNotFound(NodeId::decode(r)?),
            ERR_UNKNOWN_NODE => Self::UnknownNode(NodeId::decode(r)?),
            ERR_REFUSED => Self::Refused,
            ERR_ALREADY_MEMBER => {
                let id = NodeId::decode(r)?;
                let offset = r.position();
                let voter = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::InvalidValue { offset, what: "voter flag" }),
                };
                Self::AlreadyMember { id, voter }
            }
            ERR_NOT_VOTER => Self::NotVoter(NodeId::decode(r)?),
            ERR_LEARNERS_BEHIND => {
                let count = r.count(8 + 1 + 1 + 1)?;
                let mut lags = Vec::with_capacity(count);
                for _ in 0..count {
                    lags.push(LearnerLag::decode(r)?);
                }
                Self::LearnersBehind(lags)
            }
            ERR_NOT_CAUGHT_UP => Self::LearnerNotCaughtUp {
                lag: LearnerLag::decode(r)?,
                log_index: r.u64()?,
                waited_ms: r.u64()?,
            },
            ERR_CHANGE_TIMED_OUT => {
                Self::ChangeTimedOut { state: ChangeState::decode(r)?, waited_ms: r.u64()? }
            }
            tag => return Err(DecodeError::UnknownTag { offset, what: "admin error", tag }),
        })
    }
}

#[cfg(test)]
mod tests {
    use mempulse_primitives::{decode_exact, encode_to_vec};

    use super::*;

    #[test]
    fn errors_round_trip_and_truncations_fail() {
        let errors = [
            AdminError::Client(ClientError::NoQuorum),
            AdminError::InProgress,
            AdminError::EmptyMembership,
            AdminError::LearnerNotFound(NodeId(3)),
            AdminError::UnknownNode(NodeId(8)),
            AdminError::Refused,
            AdminError::AlreadyMember { id: NodeId(1), voter: true },
            AdminError::AlreadyMember { id: NodeId(2), voter: false },
            AdminError::NotVoter(NodeId(2)),
            AdminError::LearnersBehind(vec![lag(2, None, Some(4)), lag(3, Some(1), Some(400))]),
            AdminError::LearnerNotCaughtUp {
                lag: lag(2, None, Some(5)),
                log_index: 5,
                waited_ms: 4000,
            },
            AdminError::ChangeTimedOut { state: ChangeState::NotProposed, waited_ms: 1 },
            AdminError::ChangeTimedOut {
                state: ChangeState::Proposed { log_index: 6 },
                waited_ms: 2,
            },
            AdminError::ChangeTimedOut {
                state: ChangeState::Committed { log_index: 7 },
                waited_ms: 3,
            },
        ];
        for error in errors {
            let bytes = encode_to_vec(&error);
            assert_eq!(decode_exact::<AdminError>(&bytes), Ok(error.clone()));
            for len in 0..bytes.len() {
                assert!(decode_exact::<AdminError>(&bytes[..len]).is_err());
            }
        }
    }

    fn lag(id: u64, matched: Option<u64>, target: Option<u64>) -> LearnerLag {
        LearnerLag { id: NodeId(id), matched, target, ack_age_ms: matched.map(|_| 20) }
    }

    #[test]
    fn membership_refusals_say_what_happened() {
        assert_eq!(lag(2, None, Some(4)).entries(), 5);
        assert_eq!(lag(2, Some(4), Some(4)).entries(), 0);
        assert_eq!(lag(2, Some(9), Some(4)).entries(), 0);
        let behind =
            AdminError::LearnersBehind(vec![lag(2, None, Some(4)), lag(3, Some(1), Some(400))]);
        let text = behind.to_string();
        assert!(
            text.starts_with("not promoted, nothing proposed: node 2 has acknowledged no entry"),
            "{text}"
        );
        assert!(
            text.contains(
                "node 3 is 399 entries behind (at index 1, leader at 400), last heard from 20 ms ago"
            ),
            "{text}"
        );
        assert_eq!(
            AdminError::AlreadyMember { id: NodeId(1), voter: true }.to_string(),
            "node 1 is already a voter of the cluster"
        );
        assert_eq!(AdminError::NotVoter(NodeId(2)).to_string(), "node 2 is a learner, not a voter");
        let timed_out = AdminError::ChangeTimedOut {
            state: ChangeState::Proposed { log_index: 6 },
            waited_ms: 3500,
        };
        assert!(
            timed_out
                .to_string()
                .contains("within 3500 ms: proposed at log index 6 but not committed")
        );
        let not_caught_up = AdminError::LearnerNotCaughtUp {
            lag: lag(2, None, Some(5)),
            log_index: 5,
            waited_ms: 900,
        };
        assert!(not_caught_up.to_string().starts_with(
            "node 2 was added as a learner (membership entry 5) but did not catch up within 900 ms"
        ));
    }
}
