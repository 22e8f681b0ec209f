//! Read consistency of the routes that read the replicated pool: `weak` (this node's state as
//! it is) or `linearizable` (every write acknowledged before the request is visible).
//!
//! REST takes it as the query parameter `consistency=weak|linearizable`; JSON-RPC as an
//! optional trailing params object `{"consistency": "linearizable"}` (see `docs/design/api.md`
//! for why a params object rather than a header).

use std::fmt;

use crate::{ApiError, ErrorCode, ServiceError};

/// How fresh a read of the replicated pool must be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Consistency {
    /// Served from this node's replicated state as it is: any node, no round trip; a follower
    /// may lag its leader by the writes it has not applied yet.
    #[default]
    Weak,
    /// The leader confirms its leadership with a quorum and names its commit point (the read
    /// index); this node answers once it has applied through it, so every write acknowledged
    /// before the request is visible, on any node. Refused (503) when no leader can confirm
    /// one in time: never a stale answer.
    Linearizable,
}

impl Consistency {
    /// Every consistency, weakest first.
    pub const ALL: [Self; 2] = [Self::Weak, Self::Linearizable];

    /// Stable name (the parameter's value).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Weak => "weak",
            Self::Linearizable => "linearizable",
        }
    }

    /// The consistency named `name` (exact, lowercase).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Why `text` is not a consistency, for error messages.
    pub(crate) fn unknown(text: &str) -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|c| c.as_str()).collect();
        format!("consistency {text:?} is not one of {}", names.join(", "))
    }

    /// Parses the REST query parameter (absent: weak).
    pub(crate) fn parse_param(text: Option<&str>) -> Result<Self, ApiError> {
        text.map_or(Ok(Self::Weak), |text| {
            Self::from_name(text)
                .ok_or_else(|| ApiError::new(ErrorCode::InvalidConsistency, Self::unknown(text)))
        })
    }

    /// The API error of a failed pool read at this consistency: an unavailable linearizable
    /// read says so, with the reason.
    pub(crate) fn read_error(self, err: ServiceError) -> ApiError {
        match (self, err) {
            (Self::Linearizable, ServiceError::Unavailable(why)) => {
                ApiError::new(ErrorCode::Unavailable, format!("linearizable read refused: {why}"))
            }
            (_, err) => err.into(),
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Unavailable;

    #[test]
    fn names_round_trip_and_others_are_refused() {
        for c in Consistency::ALL {
            assert_eq!(Consistency::from_name(c.as_str()), Some(c));
        }
        assert_eq!(Consistency::parse_param(None).unwrap(), Consistency::Weak);
        for bad in ["", "Weak", "LINEARIZABLE", "strong", " weak", "linearizable "] {
            let err = Consistency::parse_param(Some(bad)).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidConsistency, "{bad:?}");
            assert!(err.message.contains("weak, linearizable"), "{}", err.message);
        }
    }

    #[test]
    fn an_unavailable_linearizable_read_names_its_reason() {
        let no_leader = || ServiceError::Unavailable(Unavailable::NoLeader);
        let err = Consistency::Linearizable.read_error(no_leader());
        assert_eq!(err.code, ErrorCode::Unavailable);
        assert_eq!(err.message, "linearizable read refused: the cluster has no leader");
        assert_eq!(Consistency::Weak.read_error(no_leader()).message, "the cluster has no leader");
    }
}
