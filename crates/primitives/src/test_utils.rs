//! Proptest strategies for every schema type, for this crate's tests and other crates' tests.
//!
//! Enabled by the `test-utils` feature. Sizes are bounded (raw transactions up to
//! [`RAW_LEN_MAX`] bytes, lists up to [`LIST_LEN_MAX`] items) so that a few hundred cases stay
//! fast on a 2-core CI.
//!
//! [`arb_event_kind_of`] matches [`KindCode`] without a wildcard: a new event kind does not
//! compile until it has a strategy here.

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

use crate::{
    Address, Digest, DropReason, Event, EventKind, EvictReason, Fees, FenceReason, Height,
    KindCode, Lane, NodeId, Nonce, Origin, RaftIndex, RejectReason, Seq, Source, Subpool, Tx,
    TxHash, TxType, UnixMillis, ValidatorId,
};

/// Largest raw transaction the strategies generate, in bytes.
pub const RAW_LEN_MAX: usize = 96;
/// Largest list (block transactions, orphaned heights) the strategies generate.
pub const LIST_LEN_MAX: usize = 8;

/// Any transaction hash.
pub fn arb_tx_hash() -> impl Strategy<Value = TxHash> {
    any::<[u8; 32]>().prop_map(TxHash)
}

/// Any address.
pub fn arb_address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address)
}

/// Any digest.
pub fn arb_digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

/// Any envelope type.
pub fn arb_tx_type() -> impl Strategy<Value = TxType> {
    select(TxType::ALL)
}

/// Any fee pair (not necessarily consistent: the codec must carry whatever it is given).
pub fn arb_fees() -> impl Strategy<Value = Fees> {
    (any::<u128>(), any::<u128>()).prop_map(|(max_fee_per_gas, max_priority_fee_per_gas)| Fees {
        max_fee_per_gas,
        max_priority_fee_per_gas,
    })
}

/// A transaction of the given type with `encoded_size == raw.len()`.
pub fn arb_tx_of_type(tx_type: TxType) -> impl Strategy<Value = Tx> {
    (
        arb_tx_hash(),
        arb_address(),
        any::<u64>(),
        any::<u64>(),
        arb_fees(),
        proptest::option::of(any::<u64>()),
        vec(any::<u8>(), 0..=RAW_LEN_MAX),
    )
        .prop_map(move |(hash, sender, nonce, gas_limit, fees, chain_id, raw)| {
            let encoded_size = u32::try_from(raw.len()).unwrap_or(u32::MAX);
            Tx {
                hash,
                sender,
                nonce: Nonce(nonce),
                gas_limit,
                fees,
                tx_type,
                chain_id,
                encoded_size,
                raw: Bytes::from(raw),
            }
        })
}

/// A transaction of any type with `encoded_size == raw.len()`.
pub fn arb_tx() -> impl Strategy<Value = Tx> {
    arb_tx_type().prop_flat_map(arb_tx_of_type)
}

/// Any source.
pub fn arb_source() -> impl Strategy<Value = Source> {
    prop_oneof![
        select(Lane::ALL).prop_map(Source::Lane),
        any::<u64>().prop_map(|n| Source::Peer(NodeId(n))),
        Just(Source::Mempool),
        Just(Source::Cluster),
        Just(Source::Replay),
        Just(Source::Operator),
    ]
}

/// Any origin.
pub fn arb_origin() -> impl Strategy<Value = Origin> {
    prop_oneof![
        any::<u64>().prop_map(|i| Origin::Replicated { raft_index: RaftIndex(i) }),
        Just(Origin::Local),
    ]
}

fn arb_height() -> impl Strategy<Value = Height> {
    any::<u64>().prop_map(Height)
}

fn arb_raft_index() -> impl Strategy<Value = RaftIndex> {
    any::<u64>().prop_map(RaftIndex)
}

fn arb_hashes() -> impl Strategy<Value = Vec<TxHash>> {
    vec(arb_tx_hash(), 0..=LIST_LEN_MAX)
}

/// Any event kind: every variant is reachable.
pub fn arb_event_kind() -> impl Strategy<Value = EventKind> {
    select(KindCode::ALL).prop_flat_map(arb_event_kind_of)
}

/// An event kind of the given code, with arbitrary fields.
#[expect(clippy::too_many_lines, reason = "one arm per event kind, each a few lines")]
pub fn arb_event_kind_of(code: KindCode) -> BoxedStrategy<EventKind> {
    match code {
        KindCode::TxReceived => (arb_tx(), select(Lane::ALL))
            .prop_map(|(tx, lane)| EventKind::TxReceived { tx, lane })
            .boxed(),
        KindCode::TxAdmitted => (arb_tx(), select(Subpool::ALL))
            .prop_map(|(tx, subpool)| EventKind::TxAdmitted { tx, subpool })
            .boxed(),
        KindCode::TxRejected => (arb_tx_hash(), select(RejectReason::ALL))
            .prop_map(|(hash, reason)| EventKind::TxRejected { hash, reason })
            .boxed(),
        KindCode::TxReplaced => (arb_tx_hash(), arb_tx_hash(), arb_address(), any::<u64>())
            .prop_map(|(old, new, sender, nonce)| EventKind::TxReplaced {
                old,
                new,
                sender,
                nonce: Nonce(nonce),
            })
            .boxed(),
        KindCode::TxDropped => (
            proptest::option::of(arb_tx_hash()),
            select(DropReason::ALL),
            select(Lane::ALL),
            any::<u32>(),
            any::<u32>(),
        )
            .prop_map(|(hash, reason, lane, depth_current, depth_peak)| EventKind::TxDropped {
                hash,
                reason,
                lane,
                depth_current,
                depth_peak,
            })
            .boxed(),
        KindCode::TxEvicted => (arb_tx_hash(), select(EvictReason::ALL))
            .prop_map(|(hash, reason)| EventKind::TxEvicted { hash, reason })
            .boxed(),
        KindCode::TxPromoted => {
            arb_tx_hash().prop_map(|hash| EventKind::TxPromoted { hash }).boxed()
        }
        KindCode::TxIncluded => (arb_tx_hash(), arb_height())
            .prop_map(|(hash, height)| EventKind::TxIncluded { hash, height })
            .boxed(),
        KindCode::TxReopened => (arb_tx_hash(), arb_height())
            .prop_map(|(hash, orphaned_height)| EventKind::TxReopened { hash, orphaned_height })
            .boxed(),
        KindCode::BlockProposed => {
            (arb_height(), any::<u64>(), arb_hashes(), any::<u64>(), any::<u64>())
                .prop_map(|(height, proposer, txs, total_bytes, total_gas)| {
                    EventKind::BlockProposed {
                        height,
                        proposer: ValidatorId(proposer),
                        txs,
                        total_bytes,
                        total_gas,
                    }
                })
                .boxed()
        }
        KindCode::BlockCommitted => (arb_height(), arb_hashes())
            .prop_map(|(height, txs)| EventKind::BlockCommitted { height, txs })
            .boxed(),
        KindCode::ReorgDetected => (arb_height(), vec(arb_height(), 0..=LIST_LEN_MAX))
            .prop_map(|(fork_height, orphaned)| EventKind::ReorgDetected { fork_height, orphaned })
            .boxed(),
        KindCode::LeaderChanged => (any::<u64>(), proptest::option::of(any::<u64>()))
            .prop_map(|(term, leader)| EventKind::LeaderChanged {
                term,
                leader: leader.map(NodeId),
            })
            .boxed(),
        KindCode::ProposerChanged => (arb_height(), any::<u64>())
            .prop_map(|(height, p)| EventKind::ProposerChanged { height, proposer: ValidatorId(p) })
            .boxed(),
        KindCode::CheckpointTaken => (any::<u64>(), arb_raft_index(), arb_digest())
            .prop_map(|(seq, raft_index, digest)| EventKind::CheckpointTaken {
                seq: Seq(seq),
                raft_index,
                digest,
            })
            .boxed(),
        KindCode::DivergenceDetected => {
            (any::<u64>(), arb_raft_index(), arb_digest(), arb_digest())
                .prop_map(|(peer, index, ours, theirs)| EventKind::DivergenceDetected {
                    peer: NodeId(peer),
                    index,
                    ours,
                    theirs,
                })
                .boxed()
        }
        KindCode::Fenced => (select(FenceReason::ALL), proptest::option::of(arb_raft_index()))
            .prop_map(|(reason, index)| EventKind::Fenced { reason, index })
            .boxed(),
        KindCode::Unfenced => (arb_raft_index(), arb_digest())
            .prop_map(|(index, root)| EventKind::Unfenced { index, root })
            .boxed(),
    }
}

/// Any event.
pub fn arb_event() -> impl Strategy<Value = Event> {
    (any::<u64>(), arb_source(), arb_origin(), arb_event_kind()).prop_map(
        |(observed_at, source, origin, kind)| Event {
            observed_at: UnixMillis(observed_at),
            source,
            origin,
            kind,
        },
    )
}
