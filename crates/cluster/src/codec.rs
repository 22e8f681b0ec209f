//! Byte encodings of what the Raft log store keeps on disk: log entries (one WAL record each),
//! log ids, votes and memberships.
//!
//! Every layout follows the [`mempulse_primitives::codec`] rules: fixed-width little-endian
//! integers, `u32` counts checked against the remaining input before allocating, strict decoding
//! (any bytes that decode re-encode to themselves).
//!
//! # Entry (one WAL record)
//! ```text
//! u8  version (ENTRY_VERSION = 2; 1 carried a bare ClusterCommand)
//! u64 term | u64 leader node id | u64 index          the entry's log id
//! u8  kind: 1 blank | 2 normal | 3 membership
//!   normal:     ClusterRequest (request.rs): u64 stamped_at | u32 count | ClusterCommand*
//!   membership: u32 configs { u32 voters { u64 node id, strictly ascending } }
//!               | u32 nodes { u64 node id, strictly ascending | ClusterNode }
//! ClusterNode = u32 len | utf-8 raft_addr | u32 len | utf-8 api_addr
//! ```
//! A log id alone is `u64 term | u64 leader node id | u64 index`; a vote is
//! `u64 term | u64 node id | bool committed`.

use std::collections::{BTreeMap, BTreeSet};

use mempulse_primitives::{
    DecodeError, NodeId,
    codec::{Decode, Encode, Reader, decode_exact, put_len},
};

use crate::{
    ClusterRequest,
    types::{ClusterNode, Entry, LeaderId, LogId, Membership, Payload, Vote},
};

/// Format version that opens every encoded log entry.
pub const ENTRY_VERSION: u8 = 2;

const KIND_BLANK: u8 = 1;
const KIND_NORMAL: u8 = 2;
const KIND_MEMBERSHIP: u8 = 3;

impl Encode for ClusterNode {
    fn encode(&self, out: &mut Vec<u8>) {
        put_str(out, &self.raft_addr);
        put_str(out, &self.api_addr);
    }
}

impl Decode for ClusterNode {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { raft_addr: read_str(r, "raft_addr")?, api_addr: read_str(r, "api_addr")? })
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn read_str(r: &mut Reader<'_>, what: &'static str) -> Result<String, DecodeError> {
    let offset = r.position();
    let bytes = r.byte_string()?;
    core::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| DecodeError::InvalidValue { offset, what })
}

/// Appends `u64 term | u64 node id | u64 index`.
pub(crate) fn encode_log_id(log_id: &LogId, out: &mut Vec<u8>) {
    encode_leader_id(&log_id.leader_id, out);
    log_id.index.encode(out);
}

/// Reads a log id written by [`encode_log_id`].
///
/// # Errors
/// [`DecodeError::UnexpectedEnd`] when the input is too short.
pub(crate) fn decode_log_id(r: &mut Reader<'_>) -> Result<LogId, DecodeError> {
    let leader_id = decode_leader_id(r)?;
    Ok(LogId { leader_id, index: r.u64()? })
}

fn encode_leader_id(leader_id: &LeaderId, out: &mut Vec<u8>) {
    leader_id.term.encode(out);
    leader_id.node_id.encode(out);
}

fn decode_leader_id(r: &mut Reader<'_>) -> Result<LeaderId, DecodeError> {
    Ok(LeaderId { term: r.u64()?, node_id: NodeId::decode(r)? })
}

/// Appends `u64 term | u64 node id | bool committed`.
pub(crate) fn encode_vote(vote: &Vote, out: &mut Vec<u8>) {
    encode_leader_id(&vote.leader_id, out);
    vote.committed.encode(out);
}

/// Reads a vote written by [`encode_vote`].
///
/// # Errors
/// [`DecodeError::UnexpectedEnd`] when the input is too short, [`DecodeError::InvalidValue`] for
/// a `committed` byte other than 0 or 1.
pub(crate) fn decode_vote(r: &mut Reader<'_>) -> Result<Vote, DecodeError> {
    let leader_id = decode_leader_id(r)?;
    Ok(Vote { leader_id, committed: r.bool()? })
}

/// Appends the membership layout described in the module docs.
pub(crate) fn encode_membership(membership: &Membership, out: &mut Vec<u8>) {
    let configs = membership.get_joint_config();
    put_len(out, configs.len());
    for config in configs {
        put_len(out, config.len());
        for id in config {
            id.encode(out);
        }
    }
    // `nodes()` iterates a BTreeMap: ascending ids, deterministic.
    let nodes: Vec<(&NodeId, &ClusterNode)> = membership.nodes().collect();
    put_len(out, nodes.len());
    for (id, node) in nodes {
        id.encode(out);
        node.encode(out);
    }
}

/// Reads a membership written by [`encode_membership`] and checks it is valid (every voter is a
/// node, no config is empty).
///
/// # Errors
/// [`DecodeError::InvalidValue`] for ids that are not strictly ascending or an invalid
/// membership; the other [`DecodeError`]s for malformed bytes.
pub(crate) fn decode_membership(r: &mut Reader<'_>) -> Result<Membership, DecodeError> {
    let config_count = r.count(4)?;
    let mut configs = Vec::with_capacity(config_count);
    for _ in 0..config_count {
        let offset = r.position();
        let count = r.count(8)?;
        let mut voters = BTreeSet::new();
        for _ in 0..count {
            let id = NodeId::decode(r)?;
            if voters.last().is_some_and(|last| *last >= id) {
                return Err(DecodeError::InvalidValue { offset, what: "voter ids" });
            }
            voters.insert(id);
        }
        configs.push(voters);
    }
    let offset = r.position();
    let count = r.count(8 + 8)?;
    let mut nodes = BTreeMap::new();
    for _ in 0..count {
        let id = NodeId::decode(r)?;
        if nodes.last_key_value().is_some_and(|(last, _)| *last >= id) {
            return Err(DecodeError::InvalidValue { offset, what: "node ids" });
        }
        nodes.insert(id, ClusterNode::decode(r)?);
    }
    Membership::new(configs, nodes)
        .map_err(|_| DecodeError::InvalidValue { offset, what: "membership" })
}

/// The encoding of one log entry (one WAL record).
#[must_use]
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.push(ENTRY_VERSION);
    encode_log_id(&entry.log_id, &mut out);
    match &entry.payload {
        Payload::Blank => out.push(KIND_BLANK),
        Payload::Normal(command) => {
            out.push(KIND_NORMAL);
            command.encode(&mut out);
        }
        Payload::Membership(membership) => {
            out.push(KIND_MEMBERSHIP);
            encode_membership(membership, &mut out);
        }
    }
    out
}

/// Decodes one log entry written by [`encode_entry`].
///
/// # Errors
/// [`DecodeError::UnsupportedVersion`] for another format version; any other [`DecodeError`] for
/// bytes that are not a valid entry (including trailing bytes).
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, DecodeError> {
    decode_exact::<EntryBytes>(bytes).map(|e| e.0)
}

/// Reads only the log id of an encoded entry (for the last-entry lookup at open).
///
/// # Errors
/// As [`decode_entry`], but only the header is checked.
pub(crate) fn decode_entry_log_id(bytes: &[u8]) -> Result<LogId, DecodeError> {
    let mut r = Reader::new(bytes);
    read_version(&mut r)?;
    decode_log_id(&mut r)
}

fn read_version(r: &mut Reader<'_>) -> Result<(), DecodeError> {
    match r.u8()? {
        ENTRY_VERSION => Ok(()),
        found => Err(DecodeError::UnsupportedVersion { found, supported: ENTRY_VERSION }),
    }
}

/// Private wrapper so the entry decoder can be driven by [`decode_exact`].
struct EntryBytes(Entry);

impl Decode for EntryBytes {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_version(r)?;
        let log_id = decode_log_id(r)?;
        let offset = r.position();
        let payload = match r.u8()? {
            KIND_BLANK => Payload::Blank,
            KIND_NORMAL => Payload::Normal(ClusterRequest::decode(r)?),
            KIND_MEMBERSHIP => Payload::Membership(decode_membership(r)?),
            tag => return Err(DecodeError::UnknownTag { offset, what: "entry kind", tag }),
        };
        Ok(Self(Entry { log_id, payload }))
    }
}

#[cfg(test)]
mod tests {
    use mempulse_mempool::test_utils::tx;
    use mempulse_primitives::Reader;
    use proptest::prelude::*;

    use super::*;

    fn log_id(term: u64, node: u64, index: u64) -> LogId {
        LogId { leader_id: LeaderId { term, node_id: NodeId(node) }, index }
    }

    fn membership() -> Membership {
        let nodes = BTreeMap::from([
            (NodeId(1), ClusterNode::new("10.0.0.1:7000", "10.0.0.1:8080")),
            (NodeId(2), ClusterNode::new("10.0.0.2:7000", "10.0.0.2:8080")),
            (NodeId(3), ClusterNode::new("h3:7000", "")),
        ]);
        let configs = vec![BTreeSet::from([NodeId(1), NodeId(2)]), BTreeSet::from([NodeId(2)])];
        Membership::new(configs, nodes).unwrap()
    }

    fn samples() -> Vec<Entry> {
        vec![
            Entry { log_id: log_id(0, 0, 0), payload: Payload::Blank },
            Entry { log_id: log_id(7, 3, u64::MAX), payload: Payload::Blank },
            Entry {
                log_id: log_id(2, 1, 5),
                payload: Payload::Normal(ClusterRequest::single(
                    mempulse_primitives::UnixMillis(9),
                    crate::ClusterCommand::AddTxs(vec![tx(1, 0, 5)]),
                )),
            },
            Entry { log_id: log_id(3, 2, 6), payload: Payload::Membership(membership()) },
        ]
    }

    #[test]
    fn entries_round_trip() {
        for entry in samples() {
            let bytes = encode_entry(&entry);
            assert_eq!(decode_entry(&bytes).unwrap(), entry);
            assert_eq!(decode_entry_log_id(&bytes).unwrap(), entry.log_id);
        }
    }

    #[test]
    fn blank_entry_layout_is_stable() {
        let bytes = encode_entry(&Entry { log_id: log_id(2, 3, 4), payload: Payload::Blank });
        let mut expected = vec![ENTRY_VERSION];
        for v in [2u64, 3, 4] {
            expected.extend_from_slice(&v.to_le_bytes());
        }
        expected.push(KIND_BLANK);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn other_version_is_refused() {
        let mut bytes = encode_entry(&samples()[0]);
        bytes[0] = 1;
        assert_eq!(
            decode_entry(&bytes),
            Err(DecodeError::UnsupportedVersion { found: 1, supported: ENTRY_VERSION })
        );
    }

    #[test]
    fn unsorted_or_invalid_membership_is_refused() {
        // Voter 9 is not a node.
        let mut out = Vec::new();
        put_len(&mut out, 1);
        put_len(&mut out, 1);
        NodeId(9).encode(&mut out);
        put_len(&mut out, 0);
        assert!(matches!(
            decode_membership(&mut Reader::new(&out)),
            Err(DecodeError::InvalidValue { what: "membership", .. })
        ));
        // Voter ids out of order.
        let mut out = Vec::new();
        put_len(&mut out, 1);
        put_len(&mut out, 2);
        NodeId(2).encode(&mut out);
        NodeId(1).encode(&mut out);
        assert!(matches!(
            decode_membership(&mut Reader::new(&out)),
            Err(DecodeError::InvalidValue { what: "voter ids", .. })
        ));
    }

    #[test]
    fn votes_and_log_ids_round_trip() {
        for committed in [false, true] {
            let vote = Vote { leader_id: LeaderId { term: 9, node_id: NodeId(4) }, committed };
            let mut out = Vec::new();
            encode_vote(&vote, &mut out);
            let mut r = Reader::new(&out);
            assert_eq!(decode_vote(&mut r).unwrap(), vote);
            r.finish().unwrap();
        }
        let mut out = Vec::new();
        encode_log_id(&log_id(1, 2, 3), &mut out);
        assert_eq!(decode_log_id(&mut Reader::new(&out)).unwrap(), log_id(1, 2, 3));
    }

    #[test]
    fn every_truncation_is_an_error() {
        for entry in samples() {
            let bytes = encode_entry(&entry);
            for len in 0..bytes.len() {
                assert!(decode_entry(&bytes[..len]).is_err(), "{entry} {len}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(entry) = decode_entry(&bytes) {
                prop_assert_eq!(encode_entry(&entry), bytes);
            }
        }

        #[test]
        fn mutated_entries_never_panic(index in 0usize..4, at in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = encode_entry(&samples()[index]);
            let at = at % bytes.len();
            bytes[at] = byte;
            if let Ok(entry) = decode_entry(&bytes) {
                prop_assert_eq!(encode_entry(&entry), bytes);
            }
        }

        #[test]
        fn generated_memberships_round_trip(
            voters in proptest::collection::btree_set(0u64..16, 1..5),
            learners in proptest::collection::btree_set(16u64..32, 0..3),
        ) {
            let mut nodes = BTreeMap::new();
            for id in voters.iter().chain(&learners) {
                nodes.insert(NodeId(*id), ClusterNode::new(format!("n{id}:1"), format!("n{id}:2")));
            }
            let config = voters.into_iter().map(NodeId).collect::<BTreeSet<_>>();
            let membership = Membership::new(vec![config], nodes).unwrap();
            let entry = Entry { log_id: log_id(1, 1, 1), payload: Payload::Membership(membership) };
            prop_assert_eq!(decode_entry(&encode_entry(&entry)).unwrap(), entry);
        }
    }
}
