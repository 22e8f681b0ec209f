//! How a stream's transactions were answered: counted by the server, sent to the client in the
//! last frame after the client's `Close{normal}`.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use mempulse_primitives::{DropReason, RejectReason};

use super::frame::FrameError;
use crate::{AdmissionError, PoolVerdict, TxOutcome, Verdict};

/// Entry classes of an encoded tally (part of the protocol: never renumber, only add).
const CLASS_REJECTED: u8 = 1;
const CLASS_DROPPED: u8 = 2;
const CLASS_UNAVAILABLE: u8 = 3;

/// Bytes of the fixed part: admitted, replaced, unanswered, entry count.
pub(crate) const TALLY_FIXED_BYTES: usize = 8 + 8 + 8 + 2;
/// Bytes of one entry: class, code, count.
const TALLY_ENTRY_BYTES: usize = 1 + 1 + 8;

/// Answers to one stream's transactions, by outcome and reason. Invalid transactions count
/// where their fact goes ([`crate::TxError::verdict`]): a `TxRejected` reason under `rejected`,
/// `decode_failed` under `dropped`. Maps are ordered and hold no zero counts, so one tally has
/// one encoding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamTally {
    /// Admitted by the pool.
    pub admitted: u64,
    /// Admitted in place of another transaction (same sender and nonce).
    pub replaced: u64,
    /// Refused by the pool or by the stateless checks, by reason.
    pub rejected: BTreeMap<RejectReason, u64>,
    /// Dropped at the lane (or undecodable), by reason.
    pub dropped: BTreeMap<DropReason, u64>,
    /// Valid, but the cluster did not answer for their batch, by error (retryable per
    /// [`AdmissionError::is_retryable`]).
    pub unavailable: BTreeMap<AdmissionError, u64>,
    /// Not answered before the stream ended (the server's close timeout).
    pub unanswered: u64,
}

impl StreamTally {
    /// Counts one answer.
    pub fn count(&mut self, outcome: &TxOutcome) {
        match outcome {
            TxOutcome::Accepted { verdict, .. } => match verdict {
                PoolVerdict::Admitted { .. } => self.admitted += 1,
                PoolVerdict::Replaced { .. } => self.replaced += 1,
                PoolVerdict::Rejected { reason } => bump(&mut self.rejected, *reason),
            },
            TxOutcome::Invalid(error) => match error.verdict() {
                Verdict::Reject(reason) => bump(&mut self.rejected, reason),
                Verdict::Drop(reason) => bump(&mut self.dropped, reason),
            },
            TxOutcome::Dropped { reason, .. } => bump(&mut self.dropped, *reason),
            TxOutcome::Unavailable(error) => bump(&mut self.unavailable, *error),
        }
    }

    /// Transactions in the pool because of this stream (admitted or replacing another).
    #[must_use]
    pub fn in_pool(&self) -> u64 {
        self.admitted.saturating_add(self.replaced)
    }

    /// Every transaction counted, answered or not.
    #[must_use]
    pub fn total(&self) -> u64 {
        let counts = self.rejected.values().chain(self.dropped.values());
        counts
            .chain(self.unavailable.values())
            .fold(self.in_pool().saturating_add(self.unanswered), |sum, n| sum.saturating_add(*n))
    }

    fn entries(&self) -> impl Iterator<Item = (u8, u8, u64)> + '_ {
        let rejected = self.rejected.iter().map(|(r, n)| (CLASS_REJECTED, r.code(), *n));
        let dropped = self.dropped.iter().map(|(r, n)| (CLASS_DROPPED, r.code(), *n));
        let unavailable = self.unavailable.iter().map(|(e, n)| (CLASS_UNAVAILABLE, e.code(), *n));
        rejected.chain(dropped).chain(unavailable).filter(|(_, _, n)| *n > 0)
    }

    /// Bytes of the encoded body (after the frame kind).
    pub(crate) fn encoded_len(&self) -> usize {
        TALLY_FIXED_BYTES + self.entries().count() * TALLY_ENTRY_BYTES
    }

    /// Appends the body: `u64 admitted | u64 replaced | u64 unanswered | u16 n |
    /// n × (u8 class | u8 code | u64 count)`, entries in (class, code) order.
    pub(crate) fn encode(&self, out: &mut BytesMut) {
        out.put_u64_le(self.admitted);
        out.put_u64_le(self.replaced);
        out.put_u64_le(self.unanswered);
        // At most one entry per reason code of three u8-coded enums: always fits.
        out.put_u16_le(u16::try_from(self.entries().count()).unwrap_or(u16::MAX));
        for (class, code, count) in self.entries() {
            out.put_u8(class);
            out.put_u8(code);
            out.put_u64_le(count);
        }
    }

    /// Decodes a body; entries must be strictly ordered, known and non-zero (one encoding per
    /// tally).
    pub(crate) fn decode(body: &mut Bytes) -> Result<Self, FrameError> {
        let truncated = FrameError::Truncated { kind: "tally" };
        if body.len() < TALLY_FIXED_BYTES {
            return Err(truncated);
        }
        let mut tally = Self {
            admitted: body.get_u64_le(),
            replaced: body.get_u64_le(),
            unanswered: body.get_u64_le(),
            ..Self::default()
        };
        let n = usize::from(body.get_u16_le());
        if body.len() < n.saturating_mul(TALLY_ENTRY_BYTES) {
            return Err(truncated);
        }
        let mut last: Option<(u8, u8)> = None;
        for _ in 0..n {
            let (class, code, count) = (body.get_u8(), body.get_u8(), body.get_u64_le());
            if count == 0 || last.is_some_and(|prev| prev >= (class, code)) {
                return Err(FrameError::UnorderedTally);
            }
            last = Some((class, code));
            let unknown = FrameError::UnknownTallyEntry { class, code };
            match class {
                CLASS_REJECTED => {
                    let reason = RejectReason::from_code(code).ok_or(unknown)?;
                    tally.rejected.insert(reason, count);
                }
                CLASS_DROPPED => {
                    let reason = DropReason::from_code(code).ok_or(unknown)?;
                    tally.dropped.insert(reason, count);
                }
                CLASS_UNAVAILABLE => {
                    let error = AdmissionError::from_code(code).ok_or(unknown)?;
                    tally.unavailable.insert(error, count);
                }
                _ => return Err(unknown),
            }
        }
        Ok(tally)
    }
}

fn bump<K: Ord>(map: &mut BTreeMap<K, u64>, key: K) {
    let count = map.entry(key).or_insert(0);
    *count = count.saturating_add(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(tally: &StreamTally) -> Result<StreamTally, FrameError> {
        let mut out = BytesMut::new();
        tally.encode(&mut out);
        assert_eq!(out.len(), tally.encoded_len());
        StreamTally::decode(&mut out.freeze())
    }

    #[test]
    fn tallies_round_trip_and_bad_entries_are_refused() {
        let mut tally =
            StreamTally { admitted: 3, replaced: 1, unanswered: 2, ..Default::default() };
        tally.rejected.insert(RejectReason::NonceTooLow, 4);
        tally.dropped.insert(DropReason::Duplicate, 5);
        tally.unavailable.insert(AdmissionError::NoLeader, 6);
        assert_eq!(round_trip(&tally), Ok(tally.clone()));
        assert_eq!(tally.total(), 3 + 1 + 2 + 4 + 5 + 6);
        assert_eq!(round_trip(&StreamTally::default()), Ok(StreamTally::default()));

        let body = |entries: &[(u8, u8, u64)]| {
            let mut out = BytesMut::new();
            out.put_slice(&[0; 24]);
            out.put_u16_le(u16::try_from(entries.len()).unwrap());
            for (class, code, count) in entries {
                out.put_u8(*class);
                out.put_u8(*code);
                out.put_u64_le(*count);
            }
            out.freeze()
        };
        let cases = [
            (body(&[(2, 1, 1), (1, 1, 1)]), FrameError::UnorderedTally),
            (body(&[(1, 1, 1), (1, 1, 1)]), FrameError::UnorderedTally),
            (body(&[(1, 1, 0)]), FrameError::UnorderedTally),
            (body(&[(9, 1, 1)]), FrameError::UnknownTallyEntry { class: 9, code: 1 }),
            (body(&[(3, 0, 1)]), FrameError::UnknownTallyEntry { class: 3, code: 0 }),
        ];
        for (mut bytes, want) in cases {
            assert_eq!(StreamTally::decode(&mut bytes), Err(want));
        }
        let mut short = body(&[(1, 1, 1)]).slice(..30);
        assert_eq!(StreamTally::decode(&mut short), Err(FrameError::Truncated { kind: "tally" }));
    }
}
