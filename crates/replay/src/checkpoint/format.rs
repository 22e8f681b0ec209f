//! The checkpoint file format (version [`CHECKPOINT_FORMAT_VERSION`]).
//!
//! ```text
//! offset  field          type      meaning
//! 0       magic          [8]       b"MPREPLAY"
//! 8       format         u16 LE    CHECKPOINT_FORMAT_VERSION (3)
//! 10      rule           u16 LE    RULE_VERSION of the writer
//! 12      schema         u8        mempulse_primitives::SCHEMA_VERSION of the writer
//! 13      reserved       [3]       zero
//! 16      seq            u64 LE    last seq applied (0: none)
//! 24      events         u64 LE    events applied from the start of the log
//! 32      raft_index     u64 LE    last sealed Raft index (0: none)
//! 40      digest         [32]      digest through raft_index
//! 72      state_digest   [32]      digest of the replicated state at seq (open index included)
//! 104     body_len       u64 LE
//! 112     body           body_len bytes, below
//! 112+n   crc            u32 LE    CRC32C of bytes 0 .. 112+n
//!
//! body (primitives codec: fixed-width LE, u32 counts, Option = u8 0 | u8 1 value)
//!   next_seq       Option<u64>
//!   sealed_seq     u64                        seq of the last fact of raft_index
//!   index_digests  u32 n | n × (u64 raft_index, u64 seq, [32] digest), ascending
//!   replicated     u64 height, u64 replicated_events, u64 anomalies, u64 last_index,
//!                  u64 last_seq,
//!                  u32 n | n × slot, ascending by (sender, nonce):
//!                      [20] sender, u64 nonce, Option<(TxFields, u8 subpool)> current,
//!                      u32 replaced_total, u32 k | k × [32] replaced (oldest first)
//!                  reopen window:
//!                  u32 h | h × (u64 height, u64 records), ascending by height
//!                  u32 n | n × (u64 height, TxFields), ascending by hash (each at a listed
//!                  height, at most its records there)
//!   lifecycle      u64 pruned_through,
//!                  u32 n | n × entry      live, in the slot order above
//!                  u32 n | n × entry      finished, ascending by (last_seq, hash)
//!                  entry = [32] hash, u32 omitted, u64 last_seq, u32 k | k × u64 (seq << 8 | kind)
//!   TxFields       a Tx's encoding with a u32 encoded_size in place of its raw bytes
//!                  (`encode_tx_without_raw`): the pool view keeps no transaction bytes
//! ```
//! Loading checks, in order: length, magic, format, CRC, rule and schema versions, the seq in
//! the file name, a strict decode of the body (every byte used, every list in order), and that
//! the decoded state hashes to `state_digest`. Any failure is a [`CheckpointDefect`].

use mempulse_primitives::{Decode, Digest, Encode, RaftIndex, Reader, SCHEMA_VERSION, Seq};

use crate::{
    CheckpointDefect, IndexedDigest, RULE_VERSION, ReplayConfig, Replayer,
    lifecycle::LifecycleIndex,
    replayer::ReplayerParts,
    state::{ReplicatedState, put_count},
};

/// Version of the checkpoint file layout.
/// Version 2: transactions without their raw bytes (version 1 carried them).
/// Version 3: the reopen window lists its heights' inclusion records before its bodies.
pub const CHECKPOINT_FORMAT_VERSION: u16 = 3;

/// First bytes of every checkpoint file.
pub const CHECKPOINT_MAGIC: [u8; 8] = *b"MPREPLAY";

/// Length of the fixed header.
pub(crate) const HEADER_LEN: usize = 112;

/// Length of the trailing checksum.
const CRC_LEN: usize = 4;

/// What a checkpoint's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointMeta {
    /// Last seq applied.
    pub seq: Seq,
    /// Events applied from the start of the log.
    pub events: u64,
    /// The digest through the last sealed Raft index (for comparison and bisection).
    pub sealed: IndexedDigest,
    /// Digest of the replicated state at `seq`.
    pub state_digest: Digest,
    /// Rule version of the writer.
    pub rule_version: u16,
    /// File size in bytes.
    pub bytes: u64,
}

/// The file bytes of a checkpoint of `replayer`.
pub(crate) fn encode(replayer: &Replayer) -> Vec<u8> {
    let state = replayer.state();
    let mut out = Vec::with_capacity(HEADER_LEN + 64 + state.pool_len() * 256);
    out.extend_from_slice(&CHECKPOINT_MAGIC);
    CHECKPOINT_FORMAT_VERSION.encode(&mut out);
    RULE_VERSION.encode(&mut out);
    out.push(SCHEMA_VERSION);
    out.extend_from_slice(&[0; 3]);
    replayer.last_seq().encode(&mut out);
    replayer.events().encode(&mut out);
    let sealed = replayer.digest();
    sealed.raft_index.encode(&mut out);
    sealed.digest.encode(&mut out);
    state.digest().encode(&mut out);
    out.extend_from_slice(&[0; 8]); // body_len, patched below
    debug_assert_eq!(out.len(), HEADER_LEN);

    replayer.next_seq().map(|s| s.0).encode(&mut out);
    sealed.seq.encode(&mut out);
    put_count(&mut out, replayer.index_digest_list().len());
    for d in replayer.index_digest_list() {
        d.raft_index.encode(&mut out);
        d.seq.encode(&mut out);
        d.digest.encode(&mut out);
    }
    state.encode(&mut out);
    replayer.lifecycle_index().encode(state.pooled_hashes(), &mut out);

    let body_len = (out.len() - HEADER_LEN) as u64;
    out[HEADER_LEN - 8..HEADER_LEN].copy_from_slice(&body_len.to_le_bytes());
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The header fields, read without checking the checksum (for listings).
pub(crate) fn read_meta(bytes: &[u8]) -> Result<CheckpointMeta, CheckpointDefect> {
    let len = bytes.len() as u64;
    let header = bytes.get(..HEADER_LEN).ok_or(CheckpointDefect::Truncated { len })?;
    if header.get(..8) != Some(CHECKPOINT_MAGIC.as_slice()) {
        return Err(CheckpointDefect::BadMagic);
    }
    let mut r = Reader::new(header.get(8..).unwrap_or_default());
    let body = |_| CheckpointDefect::Truncated { len };
    let format = u16::decode(&mut r).map_err(body)?;
    if format != CHECKPOINT_FORMAT_VERSION {
        return Err(CheckpointDefect::UnsupportedFormat {
            found: format,
            supported: CHECKPOINT_FORMAT_VERSION,
        });
    }
    let rule_version = u16::decode(&mut r).map_err(body)?;
    let _schema = u8::decode(&mut r).map_err(body)?;
    let _reserved = r.bytes(3).map_err(body)?;
    let seq = Seq::decode(&mut r).map_err(body)?;
    let events = u64::decode(&mut r).map_err(body)?;
    let raft_index = RaftIndex::decode(&mut r).map_err(body)?;
    let digest = Digest::decode(&mut r).map_err(body)?;
    let state_digest = Digest::decode(&mut r).map_err(body)?;
    Ok(CheckpointMeta {
        seq,
        events,
        // The sealed seq lives in the body; listings do not need it.
        sealed: IndexedDigest { raft_index, seq: Seq(0), digest },
        state_digest,
        rule_version,
        bytes: len,
    })
}

/// Checks and decodes a whole checkpoint file. `named` is the seq in its file name.
pub(crate) fn decode(
    bytes: &[u8],
    named: Option<Seq>,
    config: ReplayConfig,
) -> Result<(CheckpointMeta, Replayer), CheckpointDefect> {
    let len = bytes.len() as u64;
    if bytes.len() < HEADER_LEN + CRC_LEN {
        return Err(CheckpointDefect::Truncated { len });
    }
    let mut meta = read_meta(bytes)?;
    let mut len_field = [0u8; 8];
    len_field.copy_from_slice(&bytes[HEADER_LEN - 8..HEADER_LEN]);
    let declared = u64::from_le_bytes(len_field);
    let actual = len - (HEADER_LEN + CRC_LEN) as u64;
    if declared != actual {
        return Err(CheckpointDefect::Length { declared, actual });
    }
    let (covered, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let mut stored = [0u8; 4];
    stored.copy_from_slice(crc);
    if crc32c::crc32c(covered) != u32::from_le_bytes(stored) {
        return Err(CheckpointDefect::Checksum);
    }
    if meta.rule_version != RULE_VERSION {
        return Err(CheckpointDefect::RuleVersion {
            found: meta.rule_version,
            current: RULE_VERSION,
        });
    }
    if bytes[12] != SCHEMA_VERSION {
        return Err(CheckpointDefect::SchemaVersion { found: bytes[12], current: SCHEMA_VERSION });
    }
    if bytes[13..16] != [0; 3] {
        return Err(CheckpointDefect::Body(mempulse_primitives::DecodeError::InvalidValue {
            offset: 13,
            what: "checkpoint reserved bytes",
        }));
    }
    if let Some(named) = named
        && named != meta.seq
    {
        return Err(CheckpointDefect::NameMismatch { named, header: meta.seq });
    }
    let parts =
        decode_body(&covered[HEADER_LEN..], &meta, config).map_err(CheckpointDefect::Body)?;
    if parts.state.digest() != meta.state_digest {
        return Err(CheckpointDefect::DigestMismatch);
    }
    meta.sealed = parts.sealed;
    Ok((meta, Replayer::from_parts(config, parts)))
}

fn decode_body(
    body: &[u8],
    meta: &CheckpointMeta,
    config: ReplayConfig,
) -> Result<ReplayerParts, mempulse_primitives::DecodeError> {
    use mempulse_primitives::DecodeError;
    let mut r = Reader::new(body);
    let next_seq = Option::<u64>::decode(&mut r)?.map(Seq);
    let sealed_seq = Seq::decode(&mut r)?;
    let count = r.count(48)?;
    let mut index_digests: Vec<IndexedDigest> = Vec::with_capacity(count);
    for _ in 0..count {
        let offset = r.position();
        let d = IndexedDigest {
            raft_index: RaftIndex::decode(&mut r)?,
            seq: Seq::decode(&mut r)?,
            digest: Digest::decode(&mut r)?,
        };
        if index_digests.last().is_some_and(|last| last.raft_index >= d.raft_index) {
            return Err(DecodeError::InvalidValue { offset, what: "index digests order" });
        }
        index_digests.push(d);
    }
    let state = ReplicatedState::decode(&mut r)?;
    let lifecycle =
        LifecycleIndex::decode(&mut r, config.finished_txs_max, config.refs_per_tx_max)?;
    r.finish()?;
    let consistent_seq = match next_seq {
        None => meta.seq == Seq(0),
        Some(next) => next.0.checked_sub(1) == Some(meta.seq.0),
    };
    if !consistent_seq {
        return Err(DecodeError::InvalidValue { offset: 0, what: "checkpoint next seq" });
    }
    let sealed = IndexedDigest {
        raft_index: meta.sealed.raft_index,
        seq: sealed_seq,
        digest: meta.sealed.digest,
    };
    Ok(ReplayerParts { state, lifecycle, next_seq, events: meta.events, sealed, index_digests })
}
