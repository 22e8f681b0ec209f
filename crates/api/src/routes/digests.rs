//! `GET /v1/state-root?index=N` (the replicated digest sealed through a Raft index) and
//! `GET /v1/replay?from=SEQ&to=SEQ&every=N` (an offline replay of this node's own durable log,
//! compared point by point with the live replayer's digests).
//!
//! Fencing: both are served while fenced. They read sealed history, and a fenced node is
//! exactly where an operator compares state roots and looks for the first divergence.

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
};
use mempulse_primitives::{Digest, RaftIndex, Seq};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{parse_digits, query_error};
use crate::{
    ApiError, ErrorCode, ReplayPoint, ReplayReport, ReplayRequest, ServiceError, StateRoot,
    StateRootLookup, Unavailable, state::AppState,
};

/// Query of `GET /v1/state-root`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StateRootQuery {
    /// Raft index to report the digest through (default: the latest sealed index).
    #[param(value_type = Option<u64>)]
    index: Option<String>,
}

/// A sealed digest of the replicated state.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StateRootBody {
    /// The index asked for (absent: the latest sealed one was asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    requested: Option<u64>,
    /// The Raft index the digest is through: the latest sealed index at or below the one asked
    /// for (Raft entries without facts leave the digest as it was).
    raft_index: u64,
    /// Seq, in this node's log, of the last fact of `raft_index` (differs across replicas).
    seq: u64,
    /// SHA-256 state digest as 0x hex; equal on every replica through the same index.
    digest: String,
}

impl StateRootBody {
    fn new(requested: Option<RaftIndex>, root: StateRoot) -> Self {
        Self {
            requested: requested.map(RaftIndex::get),
            raft_index: root.raft_index.get(),
            seq: root.seq.get(),
            digest: root.digest.to_string(),
        }
    }
}

/// The replicated state digest through a Raft index.
#[utoipa::path(
    get,
    path = "/v1/state-root",
    tag = "state",
    params(StateRootQuery),
    responses(
        (status = 200, description = "The digest sealed through the index", body = StateRootBody),
        (status = 400, description = "Bad or unknown query parameter", body = crate::error::ErrorBody),
        (status = 404, description = "The index is not sealed yet, or older than the digests kept", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn state_root(
    State(state): State<AppState>,
    query: Result<Query<StateRootQuery>, QueryRejection>,
) -> Result<Json<StateRootBody>, ApiError> {
    let Query(query) = query.map_err(|e| query_error(&e))?;
    let index = query.index.as_deref().map(|text| parse_u64("index", text, 0)).transpose()?;
    let index = index.map(RaftIndex);
    match state.services.state.state_root(index).await? {
        StateRootLookup::Found(root) => Ok(Json(StateRootBody::new(index, root))),
        StateRootLookup::NotSealed { latest } => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "raft index {} is not sealed yet: the latest sealed index is {}",
                index.map_or(0, RaftIndex::get),
                latest.raft_index
            ),
        )),
        StateRootLookup::NotRetained { oldest } => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "raft index {} is older than the digests this node keeps (oldest: {oldest})",
                index.map_or(0, RaftIndex::get),
            ),
        )),
    }
}

/// Query of `GET /v1/replay`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReplayQuery {
    /// First seq whose digest points are reported (required, at least 1).
    #[param(value_type = u64)]
    from: Option<String>,
    /// Last seq to replay (default: the last durable seq; clamped to it).
    #[param(value_type = Option<u64>)]
    to: Option<String>,
    /// A digest point after every seq that is a multiple of this (default 1000, at least 1).
    #[param(value_type = Option<u64>)]
    every: Option<String>,
}

/// One digest point, replayed and live.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplayPointBody {
    /// Seq of the event after which it was taken.
    seq: u64,
    /// Events from the start of the log through `seq`.
    events: u64,
    /// The last complete Raft index at `seq`.
    raft_index: u64,
    /// The replayed digest through `raft_index` (0x hex).
    digest: String,
    /// The live replayer's digest through `raft_index`, when it holds one.
    live_digest: Option<String>,
    /// `matched`, `mismatched`, or `unverified` (the live replayer holds no digest for the
    /// index: too old, or not sealed there yet).
    status: &'static str,
}

impl From<&ReplayPoint> for ReplayPointBody {
    fn from(p: &ReplayPoint) -> Self {
        Self {
            seq: p.seq.get(),
            events: p.events,
            raft_index: p.raft_index.get(),
            digest: p.digest.to_string(),
            live_digest: p.live.map(|d| d.to_string()),
            status: Check::of(p).as_str(),
        }
    }
}

/// A replayed digest against the live one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    Matched,
    Mismatched { live: Digest },
    Unverified,
}

impl Check {
    fn of(p: &ReplayPoint) -> Self {
        match p.live {
            None => Self::Unverified,
            Some(live) if live == p.digest => Self::Matched,
            Some(live) => Self::Mismatched { live },
        }
    }

    const fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::Mismatched { .. } => "mismatched",
            Self::Unverified => "unverified",
        }
    }
}

/// The first point whose replayed digest differs from the live one.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MismatchBody {
    /// Its seq.
    seq: u64,
    /// Its Raft index.
    raft_index: u64,
    /// The replayed digest.
    replayed: String,
    /// The live replayer's digest.
    live: String,
}

/// The replay against the live replayer, over the points and the end state.
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct DiffSummary {
    /// Points whose digests agree.
    matched: u64,
    /// Points whose digests differ.
    mismatched: u64,
    /// Points the live replayer has no digest for.
    unverified: u64,
    /// The first mismatch in seq order.
    first_mismatch: Option<MismatchBody>,
}

impl DiffSummary {
    fn of<'a>(points: impl IntoIterator<Item = &'a ReplayPoint>) -> Self {
        let mut summary = Self::default();
        for p in points {
            match Check::of(p) {
                Check::Matched => summary.matched += 1,
                Check::Mismatched { live } => {
                    summary.mismatched += 1;
                    if summary.first_mismatch.is_none() {
                        summary.first_mismatch = Some(MismatchBody {
                            seq: p.seq.get(),
                            raft_index: p.raft_index.get(),
                            replayed: p.digest.to_string(),
                            live: live.to_string(),
                        });
                    }
                }
                Check::Unverified => summary.unverified += 1,
            }
        }
        summary
    }
}

/// What an offline replay found.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReplayBody {
    /// First seq reported.
    from: u64,
    /// Last seq replayed.
    to: u64,
    /// Distance between digest points.
    every: u64,
    /// Seq of the checkpoint the replay started from (null: the start of the log).
    checkpoint_seq: Option<u64>,
    /// Events applied, from that checkpoint (or the start of the log) through `to`.
    applied_events: u64,
    /// Digest points in `from..=to`, in seq order.
    points: Vec<ReplayPointBody>,
    /// The state after `to`: its last complete Raft index and digest.
    end: ReplayPointBody,
    /// Matched, mismatched and unverified counts over `points` and `end`.
    summary: DiffSummary,
}

impl ReplayBody {
    fn new(every: u64, report: &ReplayReport) -> Self {
        Self {
            from: report.from.get(),
            to: report.to.get(),
            every,
            checkpoint_seq: report.checkpoint.map(Seq::get),
            applied_events: report.applied,
            points: report.points.iter().map(ReplayPointBody::from).collect(),
            end: ReplayPointBody::from(&report.end),
            summary: DiffSummary::of(report.points.iter().chain([&report.end])),
        }
    }
}

/// Replays a range of this node's durable log offline and compares it with the live digests.
#[utoipa::path(
    get,
    path = "/v1/replay",
    tag = "state",
    params(ReplayQuery),
    responses(
        (status = 200, description = "Digest points, the end state and the diff summary", body = ReplayBody),
        (status = 400, description = "Bad parameter, or more events or points than the limits", body = crate::error::ErrorBody),
        (status = 404, description = "`from` is past the last durable seq", body = crate::error::ErrorBody),
        (status = 410, description = "The range was purged", body = crate::error::ErrorBody),
        (status = 503, description = "Another replay is already running", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn replay(
    State(state): State<AppState>,
    query: Result<Query<ReplayQuery>, QueryRejection>,
) -> Result<Json<ReplayBody>, ApiError> {
    let Query(query) = query.map_err(|e| query_error(&e))?;
    let request = parse_replay(&state, &query)?;
    let report = state.services.state.replay(request).await.map_err(|e| match e {
        ServiceError::Purged { first } => ApiError::new(
            ErrorCode::Purged,
            format!(
                "the log starts at seq {first} and no checkpoint at or before seq {} covers \
                 the events before it",
                request.from.get() - 1
            ),
        ),
        // The only reason the node gives for a replay it cannot start now: one runs already.
        ServiceError::Unavailable(Unavailable::Overloaded) => ApiError::new(
            ErrorCode::Unavailable,
            "another replay is already running on this node; retry when it ends",
        ),
        other => other.into(),
    })?;
    Ok(Json(ReplayBody::new(request.every, &report)))
}

fn parse_replay(state: &AppState, query: &ReplayQuery) -> Result<ReplayRequest, ApiError> {
    let from = query
        .from
        .as_deref()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidQuery, "from (a seq) is required"))?;
    let from = Seq(parse_u64("from", from, 1)?);
    let to = query.to.as_deref().map(|text| parse_u64("to", text, 1)).transpose()?.map(Seq);
    if let Some(to) = to
        && to < from
    {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("to ({to}) is below from ({from})"),
        ));
    }
    let every = match query.every.as_deref() {
        Some(text) => parse_u64("every", text, 1)?,
        None => state.config.replay_every_default.max(1),
    };
    Ok(ReplayRequest {
        from,
        to,
        every,
        events_max: state.config.replay_events_max,
        points_max: state.config.replay_points_max,
    })
}

/// A decimal integer of at least `min` (digits only: no sign, no hex, no spaces).
fn parse_u64(name: &str, text: &str, min: u64) -> Result<u64, ApiError> {
    parse_digits(text).filter(|v| *v >= min).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("{name} {text:?} is not a decimal integer from {min} to {}", u64::MAX),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(seq: u64, digest: u8, live: Option<u8>) -> ReplayPoint {
        ReplayPoint {
            seq: Seq(seq),
            events: seq,
            raft_index: RaftIndex(seq / 2),
            digest: Digest([digest; 32]),
            live: live.map(|l| Digest([l; 32])),
        }
    }

    #[test]
    fn the_summary_counts_each_status_and_names_the_first_mismatch() {
        let points = [
            point(2, 1, Some(1)),
            point(4, 2, None),
            point(6, 3, Some(9)),
            point(8, 4, Some(8)),
            point(10, 5, Some(5)),
        ];
        let summary = DiffSummary::of(&points);
        assert_eq!((summary.matched, summary.mismatched, summary.unverified), (2, 2, 1));
        let first = summary.first_mismatch.unwrap();
        assert_eq!((first.seq, first.raft_index), (6, 3));
        assert_eq!(first.live, Digest([9; 32]).to_string());
        assert!(DiffSummary::of(&[]).first_mismatch.is_none());
    }

    #[test]
    fn integers_are_plain_digits_within_their_minimum() {
        assert_eq!(parse_u64("every", "1", 1).unwrap(), 1);
        assert_eq!(parse_u64("index", "0", 0).unwrap(), 0);
        for bad in ["0", "", "-1", "+2", "0x10", "1.0", "18446744073709551616", " 3"] {
            let err = parse_u64("every", bad, 1).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidQuery, "{bad}");
            assert!(err.message.starts_with("every "), "{}", err.message);
        }
    }
}
