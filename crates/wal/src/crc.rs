//! Frame checksums for a whole group, three frames at a time.
//!
//! The `crc32` instruction has a latency of about three cycles but issues every cycle, so one
//! short frame (a 256-byte record) leaves most of the unit idle. Interleaving three independent
//! frames keeps it busy; the values are exactly those of [`codec::frame_crc`].

use mempulse_primitives::Seq;

use crate::codec;

/// The checksums of three frames `(payload, seq)`.
#[inline]
pub(crate) fn frame_crc3(frames: [(&[u8], Seq); 3]) -> [u32; 3] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sse4.2") {
        return x86::crc3(frames.map(|(p, s)| (p, s.0)));
    }
    frames.map(|(p, s)| codec::frame_crc(s, p))
}

/// Fills `out` with the checksum of each record, the first at seq `first`.
pub(crate) fn frame_crcs<'a>(
    first: Seq,
    records: impl Iterator<Item = &'a [u8]>,
    out: &mut Vec<u32>,
) {
    out.clear();
    let mut pending: [(&[u8], Seq); 3] = [(&[], Seq(0)); 3];
    let mut n = 0;
    for (i, record) in records.enumerate() {
        pending[n] = (record, Seq(first.0.wrapping_add(i as u64)));
        n += 1;
        if n == 3 {
            out.extend_from_slice(&frame_crc3(pending));
            n = 0;
        }
    }
    out.extend(pending.iter().take(n).map(|(p, s)| codec::frame_crc(*s, p)));
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, reason = "the SSE 4.2 crc32 intrinsic, behind runtime detection")]
mod x86 {
    use std::arch::x86_64::{_mm_crc32_u8, _mm_crc32_u32, _mm_crc32_u64};

    use mempulse_primitives::Seq;

    use crate::codec;

    /// The checksums of three frames. The caller has checked that SSE 4.2 is available.
    pub(super) fn crc3(frames: [(&[u8], u64); 3]) -> [u32; 3] {
        debug_assert!(std::arch::is_x86_feature_detected!("sse4.2"));
        // SAFETY: `crc3_sse42` needs only SSE 4.2, which `frame_crcs` detected at run time
        // before calling here; it reads its inputs through bounds-checked slices.
        unsafe { crc3_sse42(frames) }
    }

    fn word(bytes: &[u8], at: usize) -> u64 {
        let raw: [u8; 8] = bytes.get(at..at + 8).and_then(|b| b.try_into().ok()).unwrap_or([0; 8]);
        u64::from_le_bytes(raw)
    }

    /// The checksums of three frames, computed in lockstep over their common length.
    #[target_feature(enable = "sse4.2")]
    fn crc3_sse42(frames: [(&[u8], u64); 3]) -> [u32; 3] {
        // Raw (un-inverted) CRC states after each frame's 12-byte prefix.
        let mut state = frames.map(|(payload, seq)| {
            let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
            // Same bytes as the codec's prefix: seq (u64 le) then len (u32 le).
            let after_seq = _mm_crc32_u64(u64::from(u32::MAX), seq);
            #[allow(clippy::cast_possible_truncation, reason = "crc32 state fits u32")]
            let after_len = _mm_crc32_u32(after_seq as u32, len);
            u64::from(after_len)
        });
        let common = frames.iter().map(|(p, _)| p.len()).min().unwrap_or(0) / 8 * 8;
        let [(a, _), (b, _), (c, _)] = frames;
        let mut at = 0;
        while at < common {
            state[0] = _mm_crc32_u64(state[0], word(a, at));
            state[1] = _mm_crc32_u64(state[1], word(b, at));
            state[2] = _mm_crc32_u64(state[2], word(c, at));
            at += 8;
        }
        let mut out = [0u32; 3];
        for (k, (payload, _)) in frames.iter().enumerate() {
            // Truncation is exact: the state is always a 32-bit CRC held in a u64.
            #[allow(clippy::cast_possible_truncation, reason = "crc32 state fits u32")]
            let partial = !(state[k] as u32);
            let rest = payload.get(common..).unwrap_or_default();
            out[k] = if rest.len() < 16 {
                let mut s = !partial;
                for &byte in rest {
                    s = _mm_crc32_u8(s, byte);
                }
                !s
            } else {
                crc32c::crc32c_append(partial, rest)
            };
        }
        debug_assert_eq!(out[0], codec::frame_crc(Seq(frames[0].1), frames[0].0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        #[test]
        fn matches_the_codec(
            first in 0u64..u64::MAX - 100,
            records in proptest::collection::vec(proptest::collection::vec(0u8.., 1..600), 0..12),
        ) {
            let mut out = Vec::new();
            frame_crcs(Seq(first), records.iter().map(Vec::as_slice), &mut out);
            let want: Vec<u32> = records
                .iter()
                .enumerate()
                .map(|(i, r)| codec::frame_crc(Seq(first + i as u64), r))
                .collect();
            proptest::prop_assert_eq!(out, want);
        }
    }
}
