//! The node-to-node wire protocol: frames and the messages they carry.
//!
//! Every layout follows the [`mempulse_primitives::codec`] rules (fixed-width little-endian
//! integers, `u32` counts checked before allocating, `opt<T>` as `u8 0 | u8 1 T`, strict
//! decoding: bytes that decode re-encode to themselves).
//!
//! # Frame
//! ```text
//! u32 len (bytes that follow; ≤ the connection's frame limit, checked before reading them)
//! u8  version (WIRE_VERSION = 2) | u8 kind | u64 request id | payload (by kind)
//! ```
//! An answer carries the id of its request. A frame that breaks any rule closes its
//! connection.
//!
//! # Requests (kind: payload)
//! ```text
//!  1 Hello           "MPRT" | u64 from | u64 to | u64 incarnation   first frame of every
//!                    connection (incarnation 0: an admin client, admin requests only)
//!  2 AppendEntries   vote | opt<log id> prev | opt<log id> commit | u32 n, n × (u32 len, entry)
//!  3 Vote            vote | opt<log id> last | bool leadership_transfer
//!  4 PreVote         as Vote
//!  5 SnapshotBegin   vote | u64 total bytes      followed by SnapshotChunk frames (no answer
//!  6 SnapshotChunk   u32 len | bytes              until the last byte arrived)
//!  7 TransferLeader  vote from | u64 to | opt<log id> last
//!  8 Forward         ClusterCommand (command.rs)
//!  9 Admin           AdminRequest (admin.rs; 6 StateRoot opt<u64 index>: a member's root)
//! ```
//! # Answers
//! ```text
//! 129 HelloAck       u8 0 accepted, u64 incarnation | u8 refusal code (metrics.rs)
//! 130 AppendEntries  u8 1 Success | 2 PartialSuccess opt<log id> | 3 Conflict | 4 HigherVote vote
//! 131 Vote           vote | bool granted | opt<log id> last
//! 132 Snapshot       vote
//! 133 TransferLeader u8 0 ok | 1 VoteChanged vote, vote | 2 LogNotFlushed opt<log id> ×2
//! 134 Forward        u8 0 | u64 index | Outcome result     or  u8 1 | ClientError
//! 135 Admin          u8 0 | AdminReply                      or  u8 1 | AdminError
//! 136 Failed         u8 code (RemoteFailure)
//! ```
//! `entry` is the log entry encoding (`codec.rs`, versioned), `vote` and `log id` as there.
//! `Outcome result`: `u8 0 | u32 n EventKind | opt<block: u32 n Tx | u64 bytes | u64 gas>`, or
//! `u8 1 | mempool error` (`1 HeightNotAscending u64 current, u64 got` |
//! `2 InvalidReorg u64 fork, u64 height, u64 current`).
//! `ClientError`: `1 ForwardToLeader opt<u64> opt<ClusterNode>` | `2 Indeterminate (same)` |
//! `3 Overloaded u64` | `4 TooLarge u64, u64` | `5 NoQuorum` | `6 Stopped` |
//! `7 LeaderUnreachable opt<u64>`.

use mempulse_mempool::{BuiltBlock, Outcome};
use mempulse_primitives::{
    DecodeError, EventKind, Height, NodeId, RaftIndex, Tx,
    codec::{Decode, Encode, Reader, put_len},
};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderError,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};

use crate::{
    AdminError, AdminReply, AdminRequest, ClientError, ClusterCommand, ClusterNode,
    ClusterResponse, TypeConfig,
    codec::{decode_entry, decode_log_id, decode_vote, encode_entry, encode_log_id, encode_vote},
    metrics::RefusalReason,
    types::{LogId, Vote},
};

/// Version byte of every frame (2: the hello and its answer carry incarnations).
pub const WIRE_VERSION: u8 = 2;
/// Magic that opens a hello payload.
pub(crate) const HELLO_MAGIC: [u8; 4] = *b"MPRT";
/// Largest hello or hello answer (the limit before a peer is authenticated).
pub(crate) const HELLO_FRAME_MAX: u32 = 64;

pub(crate) const KIND_HELLO: u8 = 1;
const KIND_APPEND: u8 = 2;
const KIND_VOTE: u8 = 3;
const KIND_PRE_VOTE: u8 = 4;
pub(crate) const KIND_SNAPSHOT_BEGIN: u8 = 5;
pub(crate) const KIND_SNAPSHOT_CHUNK: u8 = 6;
const KIND_TRANSFER: u8 = 7;
const KIND_FORWARD: u8 = 8;
pub(crate) const KIND_ADMIN: u8 = 9;
const KIND_HELLO_ACK: u8 = 129;
const KIND_APPEND_ANSWER: u8 = 130;
const KIND_VOTE_ANSWER: u8 = 131;
const KIND_SNAPSHOT_ANSWER: u8 = 132;
const KIND_TRANSFER_ANSWER: u8 = 133;
const KIND_FORWARD_ANSWER: u8 = 134;
const KIND_ADMIN_ANSWER: u8 = 135;
const KIND_FAILED: u8 = 136;

/// A request frame's message.
#[derive(Debug)]
pub(crate) enum Request {
    Hello { from: NodeId, to: NodeId, incarnation: u64 },
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    SnapshotBegin { vote: Vote, total_bytes: u64 },
    SnapshotChunk(Vec<u8>),
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    Forward(ClusterCommand),
    Admin(AdminRequest),
}

/// Why the serving node could not answer a request with its own kind of answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RemoteFailure {
    /// The serving node's Raft has stopped.
    Stopped,
    /// The snapshot is larger than the serving node accepts.
    SnapshotTooLarge,
    /// The serving node's answer could not be encoded.
    Unencodable,
}

impl RemoteFailure {
    const fn code(self) -> u8 {
        match self {
            Self::Stopped => 1,
            Self::SnapshotTooLarge => 2,
            Self::Unencodable => 3,
        }
    }
}

/// An answer frame's message.
#[derive(Debug)]
pub(crate) enum Answer {
    HelloAck(Result<u64, RefusalReason>),
    Append(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    Snapshot(SnapshotResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    Forward(Result<ClusterResponse, ClientError>),
    Admin(Result<AdminReply, AdminError>),
    Failed(RemoteFailure),
}

/// A frame body: its kind, request id and payload bytes.
#[derive(Debug)]
pub(crate) struct Frame<'a> {
    pub(crate) kind: u8,
    pub(crate) id: u64,
    pub(crate) payload: &'a [u8],
}

/// Why a frame body is not acceptable.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    Version(u8),
    Kind(u8),
    Decode(DecodeError),
}

/// Splits a frame body (after the length) into its header and payload.
pub(crate) fn parse_body(body: &[u8]) -> Result<Frame<'_>, BodyError> {
    let mut r = Reader::new(body);
    let version = r.u8().map_err(BodyError::Decode)?;
    if version != WIRE_VERSION {
        return Err(BodyError::Version(version));
    }
    let kind = r.u8().map_err(BodyError::Decode)?;
    let id = r.u64().map_err(BodyError::Decode)?;
    let payload = r.bytes(r.remaining()).map_err(BodyError::Decode)?;
    Ok(Frame { kind, id, payload })
}

/// A whole frame (length prefix included) of `kind` carrying `payload`.
fn frame(kind: u8, id: u64, write: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = vec![0; 4];
    out.push(WIRE_VERSION);
    out.push(kind);
    id.encode(&mut out);
    write(&mut out);
    let len = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&len.to_le_bytes());
    out
}

fn put_opt_log_id(log_id: Option<&LogId>, out: &mut Vec<u8>) {
    match log_id {
        None => out.push(0),
        Some(log_id) => {
            out.push(1);
            encode_log_id(log_id, out);
        }
    }
}

fn read_opt_log_id(r: &mut Reader<'_>) -> Result<Option<LogId>, DecodeError> {
    let offset = r.position();
    match r.u8()? {
        0 => Ok(None),
        1 => decode_log_id(r).map(Some),
        tag => Err(DecodeError::UnknownTag { offset, what: "option", tag }),
    }
}

fn put_vote_request(rpc: &VoteRequest<TypeConfig>, out: &mut Vec<u8>) {
    encode_vote(&rpc.vote, out);
    put_opt_log_id(rpc.last_log_id.as_ref(), out);
    rpc.leadership_transfer.encode(out);
}

fn read_vote_request(r: &mut Reader<'_>) -> Result<VoteRequest<TypeConfig>, DecodeError> {
    Ok(VoteRequest {
        vote: decode_vote(r)?,
        last_log_id: read_opt_log_id(r)?,
        leadership_transfer: r.bool()?,
    })
}

impl Request {
    /// The whole frame of this request with id `id`.
    pub(crate) fn to_frame(&self, id: u64) -> Vec<u8> {
        match self {
            Self::Hello { from, to, incarnation } => frame(KIND_HELLO, id, |out| {
                out.extend_from_slice(&HELLO_MAGIC);
                from.encode(out);
                to.encode(out);
                incarnation.encode(out);
            }),
            Self::Append(rpc) => frame(KIND_APPEND, id, |out| put_append(rpc, out)),
            Self::Vote(rpc) => frame(KIND_VOTE, id, |out| put_vote_request(rpc, out)),
            Self::PreVote(rpc) => frame(KIND_PRE_VOTE, id, |out| put_vote_request(rpc, out)),
            Self::SnapshotBegin { vote, total_bytes } => frame(KIND_SNAPSHOT_BEGIN, id, |out| {
                encode_vote(vote, out);
                total_bytes.encode(out);
            }),
            Self::SnapshotChunk(bytes) => frame(KIND_SNAPSHOT_CHUNK, id, |out| {
                put_len(out, bytes.len());
                out.extend_from_slice(bytes);
            }),
            Self::TransferLeader(rpc) => frame(KIND_TRANSFER, id, |out| {
                encode_vote(rpc.from_leader(), out);
                rpc.to_node_id().encode(out);
                put_opt_log_id(rpc.last_log_id(), out);
            }),
            Self::Forward(command) => frame(KIND_FORWARD, id, |out| command.encode(out)),
            Self::Admin(request) => frame(KIND_ADMIN, id, |out| request.encode(out)),
        }
    }

    /// Decodes a request frame.
    pub(crate) fn from_frame(frame: &Frame<'_>) -> Result<Self, BodyError> {
        let mut r = Reader::new(frame.payload);
        let request = Self::decode_payload(frame.kind, &mut r)?;
        r.finish().map_err(BodyError::Decode)?;
        Ok(request)
    }

    fn decode_payload(kind: u8, r: &mut Reader<'_>) -> Result<Self, BodyError> {
        let d = BodyError::Decode;
        Ok(match kind {
            KIND_HELLO => {
                let offset = r.position();
                if r.array::<4>().map_err(d)? != HELLO_MAGIC {
                    return Err(d(DecodeError::InvalidValue { offset, what: "hello magic" }));
                }
                Self::Hello {
                    from: NodeId::decode(r).map_err(d)?,
                    to: NodeId::decode(r).map_err(d)?,
                    incarnation: r.u64().map_err(d)?,
                }
            }
            KIND_APPEND => Self::Append(read_append(r).map_err(d)?),
            KIND_VOTE => Self::Vote(read_vote_request(r).map_err(d)?),
            KIND_PRE_VOTE => Self::PreVote(read_vote_request(r).map_err(d)?),
            KIND_SNAPSHOT_BEGIN => Self::SnapshotBegin {
                vote: decode_vote(r).map_err(d)?,
                total_bytes: r.u64().map_err(d)?,
            },
            KIND_SNAPSHOT_CHUNK => Self::SnapshotChunk(r.byte_string().map_err(d)?.to_vec()),
            KIND_TRANSFER => {
                let from = decode_vote(r).map_err(d)?;
                let to = NodeId::decode(r).map_err(d)?;
                Self::TransferLeader(TransferLeaderRequest::new(
                    from,
                    to,
                    read_opt_log_id(r).map_err(d)?,
                ))
            }
            KIND_FORWARD => Self::Forward(ClusterCommand::decode(r).map_err(d)?),
            KIND_ADMIN => Self::Admin(AdminRequest::decode(r).map_err(d)?),
            kind => return Err(BodyError::Kind(kind)),
        })
    }
}

/// Encoded bytes of an append-entries request with no entries (its fixed part).
fn put_append_header(rpc: &AppendEntriesRequest<TypeConfig>, out: &mut Vec<u8>) {
    encode_vote(&rpc.vote, out);
    put_opt_log_id(rpc.prev_log_id.as_ref(), out);
    put_opt_log_id(rpc.leader_commit.as_ref(), out);
}

fn put_append(rpc: &AppendEntriesRequest<TypeConfig>, out: &mut Vec<u8>) {
    put_append_header(rpc, out);
    put_len(out, rpc.entries.len());
    for entry in &rpc.entries {
        let bytes = encode_entry(entry);
        put_len(out, bytes.len());
        out.extend_from_slice(&bytes);
    }
}

fn read_append(r: &mut Reader<'_>) -> Result<AppendEntriesRequest<TypeConfig>, DecodeError> {
    let vote = decode_vote(r)?;
    let prev_log_id = read_opt_log_id(r)?;
    let leader_commit = read_opt_log_id(r)?;
    let count = r.count(4)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        entries.push(decode_entry(r.byte_string()?)?);
    }
    Ok(AppendEntriesRequest { vote, prev_log_id, entries, leader_commit })
}

/// The encoded size of one entry inside an append-entries frame.
pub(crate) fn entry_frame_len(entry: &crate::Entry) -> usize {
    4 + encode_entry(entry).len()
}

impl Answer {
    /// The whole frame of this answer to request `id`.
    pub(crate) fn to_frame(&self, id: u64) -> Vec<u8> {
        match self {
            Self::HelloAck(result) => frame(KIND_HELLO_ACK, id, |out| match result {
                Ok(incarnation) => {
                    out.push(0);
                    incarnation.encode(out);
                }
                Err(reason) => out.push(reason.code()),
            }),
            Self::Append(answer) => frame(KIND_APPEND_ANSWER, id, |out| match answer {
                AppendEntriesResponse::Success => out.push(1),
                AppendEntriesResponse::PartialSuccess(log_id) => {
                    out.push(2);
                    put_opt_log_id(log_id.as_ref(), out);
                }
                AppendEntriesResponse::Conflict => out.push(3),
                AppendEntriesResponse::HigherVote(vote) => {
                    out.push(4);
                    encode_vote(vote, out);
                }
            }),
            Self::Vote(answer) => frame(KIND_VOTE_ANSWER, id, |out| {
                encode_vote(&answer.vote, out);
                answer.vote_granted.encode(out);
                put_opt_log_id(answer.last_log_id.as_ref(), out);
            }),
            Self::Snapshot(answer) => {
                frame(KIND_SNAPSHOT_ANSWER, id, |out| encode_vote(&answer.vote, out))
            }
            Self::TransferLeader(answer) => frame(KIND_TRANSFER_ANSWER, id, |out| {
                put_transfer_answer(answer, out);
            }),
            Self::Forward(result) => frame(KIND_FORWARD_ANSWER, id, |out| match result {
                Ok(response) => {
                    out.push(0);
                    put_cluster_response(response, out);
                }
                Err(e) => {
                    out.push(1);
                    e.encode(out);
                }
            }),
            Self::Admin(result) => frame(KIND_ADMIN_ANSWER, id, |out| match result {
                Ok(reply) => {
                    out.push(0);
                    reply.encode(out);
                }
                Err(e) => {
                    out.push(1);
                    e.encode(out);
                }
            }),
            Self::Failed(failure) => frame(KIND_FAILED, id, |out| out.push(failure.code())),
        }
    }

    /// Decodes an answer frame.
    pub(crate) fn from_frame(frame: &Frame<'_>) -> Result<Self, BodyError> {
        let mut r = Reader::new(frame.payload);
        let answer = Self::decode_payload(frame.kind, &mut r).map_err(|e| match e {
            AnswerError::Kind => BodyError::Kind(frame.kind),
            AnswerError::Decode(e) => BodyError::Decode(e),
        })?;
        r.finish().map_err(BodyError::Decode)?;
        Ok(answer)
    }

    fn decode_payload(kind: u8, r: &mut Reader<'_>) -> Result<Self, AnswerError> {
        let offset = r.position();
        Ok(match kind {
            KIND_HELLO_ACK => Self::HelloAck(match r.u8()? {
                0 => Ok(r.u64()?),
                code => Err(RefusalReason::from_code(code).ok_or(DecodeError::UnknownTag {
                    offset,
                    what: "refusal reason",
                    tag: code,
                })?),
            }),
            KIND_APPEND_ANSWER => Self::Append(match r.u8()? {
                1 => AppendEntriesResponse::Success,
                2 => AppendEntriesResponse::PartialSuccess(read_opt_log_id(r)?),
                3 => AppendEntriesResponse::Conflict,
                4 => AppendEntriesResponse::HigherVote(decode_vote(r)?),
                tag => return Err(unknown(offset, "append answer", tag)),
            }),
            KIND_VOTE_ANSWER => Self::Vote(VoteResponse {
                vote: decode_vote(r)?,
                vote_granted: r.bool()?,
                last_log_id: read_opt_log_id(r)?,
            }),
            KIND_SNAPSHOT_ANSWER => Self::Snapshot(SnapshotResponse::new(decode_vote(r)?)),
            KIND_TRANSFER_ANSWER => Self::TransferLeader(read_transfer_answer(r)?),
            KIND_FORWARD_ANSWER => Self::Forward(match r.u8()? {
                0 => Ok(read_cluster_response(r)?),
                1 => Err(ClientError::decode(r)?),
                tag => return Err(unknown(offset, "result", tag)),
            }),
            KIND_ADMIN_ANSWER => Self::Admin(match r.u8()? {
                0 => Ok(AdminReply::decode(r)?),
                1 => Err(AdminError::decode(r)?),
                tag => return Err(unknown(offset, "result", tag)),
            }),
            KIND_FAILED => Self::Failed(match r.u8()? {
                1 => RemoteFailure::Stopped,
                2 => RemoteFailure::SnapshotTooLarge,
                3 => RemoteFailure::Unencodable,
                tag => return Err(unknown(offset, "failure", tag)),
            }),
            _ => return Err(AnswerError::Kind),
        })
    }
}

enum AnswerError {
    Kind,
    Decode(DecodeError),
}

impl From<DecodeError> for AnswerError {
    fn from(e: DecodeError) -> Self {
        Self::Decode(e)
    }
}

fn unknown(offset: usize, what: &'static str, tag: u8) -> AnswerError {
    AnswerError::Decode(DecodeError::UnknownTag { offset, what, tag })
}

fn put_transfer_answer(answer: &TransferLeaderResponse<TypeConfig>, out: &mut Vec<u8>) {
    match answer {
        Ok(()) => out.push(0),
        Err(TransferLeaderError::VoteChanged { expected, actual }) => {
            out.push(1);
            encode_vote(expected, out);
            encode_vote(actual, out);
        }
        Err(TransferLeaderError::LogNotFlushed { expected, actual }) => {
            out.push(2);
            put_opt_log_id(expected.as_ref(), out);
            put_opt_log_id(actual.as_ref(), out);
        }
    }
}

fn read_transfer_answer(
    r: &mut Reader<'_>,
) -> Result<TransferLeaderResponse<TypeConfig>, AnswerError> {
    let offset = r.position();
    Ok(match r.u8()? {
        0 => Ok(()),
        1 => Err(TransferLeaderError::VoteChanged {
            expected: decode_vote(r)?,
            actual: decode_vote(r)?,
        }),
        2 => Err(TransferLeaderError::LogNotFlushed {
            expected: read_opt_log_id(r)?,
            actual: read_opt_log_id(r)?,
        }),
        tag => return Err(unknown(offset, "transfer answer", tag)),
    })
}

const MEMPOOL_HEIGHT_NOT_ASCENDING: u8 = 1;
const MEMPOOL_INVALID_REORG: u8 = 2;

/// Whether `response` can be encoded (its mempool error is one the wire carries).
pub(crate) fn is_encodable(response: &ClusterResponse) -> bool {
    matches!(
        &response.result,
        Ok(_)
            | Err(mempulse_mempool::Error::HeightNotAscending { .. }
                | mempulse_mempool::Error::InvalidReorg { .. })
    )
}

/// Callers check [`is_encodable`] first; another mempool error is written as `HeightNotAscending`
/// of zeros (never reached).
fn put_cluster_response(response: &ClusterResponse, out: &mut Vec<u8>) {
    response.index.encode(out);
    match &response.result {
        Ok(outcome) => {
            out.push(0);
            outcome.facts.encode(out);
            match &outcome.block {
                None => out.push(0),
                Some(block) => {
                    out.push(1);
                    block.txs.encode(out);
                    block.total_bytes.encode(out);
                    block.total_gas.encode(out);
                }
            }
        }
        Err(mempulse_mempool::Error::InvalidReorg { fork_height, height, current }) => {
            out.push(1);
            out.push(MEMPOOL_INVALID_REORG);
            fork_height.encode(out);
            height.encode(out);
            current.encode(out);
        }
        Err(e) => {
            let (current, got) = match e {
                mempulse_mempool::Error::HeightNotAscending { current, got } => (*current, *got),
                // Not reached: callers check `is_encodable` (the mempool's error enum is
                // non-exhaustive, so this arm must exist).
                _ => (Height(0), Height(0)),
            };
            out.push(1);
            out.push(MEMPOOL_HEIGHT_NOT_ASCENDING);
            current.encode(out);
            got.encode(out);
        }
    }
}

fn read_cluster_response(r: &mut Reader<'_>) -> Result<ClusterResponse, AnswerError> {
    let index = RaftIndex::decode(r)?;
    let offset = r.position();
    let result = match r.u8()? {
        0 => {
            let facts = Vec::<EventKind>::decode(r)?;
            let offset = r.position();
            let block = match r.u8()? {
                0 => None,
                1 => Some(BuiltBlock {
                    txs: Vec::<Tx>::decode(r)?,
                    total_bytes: r.u64()?,
                    total_gas: r.u64()?,
                }),
                tag => return Err(unknown(offset, "option", tag)),
            };
            Ok(Outcome { facts, block })
        }
        1 => {
            let offset = r.position();
            Err(match r.u8()? {
                MEMPOOL_HEIGHT_NOT_ASCENDING => mempulse_mempool::Error::HeightNotAscending {
                    current: Height::decode(r)?,
                    got: Height::decode(r)?,
                },
                MEMPOOL_INVALID_REORG => mempulse_mempool::Error::InvalidReorg {
                    fork_height: Height::decode(r)?,
                    height: Height::decode(r)?,
                    current: Height::decode(r)?,
                },
                tag => return Err(unknown(offset, "mempool error", tag)),
            })
        }
        tag => return Err(unknown(offset, "result", tag)),
    };
    Ok(ClusterResponse { index, result })
}

const CLIENT_FORWARD: u8 = 1;
const CLIENT_INDETERMINATE: u8 = 2;
const CLIENT_OVERLOADED: u8 = 3;
const CLIENT_TOO_LARGE: u8 = 4;
const CLIENT_NO_QUORUM: u8 = 5;
const CLIENT_STOPPED: u8 = 6;
const CLIENT_LEADER_UNREACHABLE: u8 = 7;

impl Encode for ClientError {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::ForwardToLeader { leader_id, leader } => {
                out.push(CLIENT_FORWARD);
                leader_id.encode(out);
                leader.encode(out);
            }
            Self::Indeterminate { leader_id, leader } => {
                out.push(CLIENT_INDETERMINATE);
                leader_id.encode(out);
                leader.encode(out);
            }
            Self::Overloaded { capacity } => {
                out.push(CLIENT_OVERLOADED);
                (*capacity as u64).encode(out);
            }
            Self::TooLarge { bytes, max } => {
                out.push(CLIENT_TOO_LARGE);
                bytes.encode(out);
                max.encode(out);
            }
            Self::NoQuorum => out.push(CLIENT_NO_QUORUM),
            Self::Stopped => out.push(CLIENT_STOPPED),
            Self::LeaderUnreachable { leader_id } => {
                out.push(CLIENT_LEADER_UNREACHABLE);
                leader_id.encode(out);
            }
        }
    }
}

impl Decode for ClientError {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.position();
        Ok(match r.u8()? {
            CLIENT_FORWARD => Self::ForwardToLeader {
                leader_id: Option::decode(r)?,
                leader: Option::<ClusterNode>::decode(r)?,
            },
            CLIENT_INDETERMINATE => Self::Indeterminate {
                leader_id: Option::decode(r)?,
                leader: Option::<ClusterNode>::decode(r)?,
            },
            CLIENT_OVERLOADED => {
                let offset = r.position();
                let capacity = usize::try_from(r.u64()?)
                    .map_err(|_| DecodeError::InvalidValue { offset, what: "capacity" })?;
                Self::Overloaded { capacity }
            }
            CLIENT_TOO_LARGE => Self::TooLarge { bytes: r.u64()?, max: r.u64()? },
            CLIENT_NO_QUORUM => Self::NoQuorum,
            CLIENT_STOPPED => Self::Stopped,
            CLIENT_LEADER_UNREACHABLE => Self::LeaderUnreachable { leader_id: Option::decode(r)? },
            tag => return Err(DecodeError::UnknownTag { offset, what: "client error", tag }),
        })
    }
}

#[cfg(test)]
#[path = "wire_test.rs"]
mod tests;
