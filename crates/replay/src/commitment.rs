//! The running commitment over the replicated state: a multiset hash.
//!
//! Every entry of the replicated view (an occupied nonce slot, a replaced hash kept in a slot's
//! history) contributes `SHA-256(entry encoding)`, read as a 256-bit little-endian integer; the
//! commitment is the sum of the contributions modulo 2^256. Adding an entry adds its hash,
//! removing it subtracts it, so each event costs one or two SHA-256 calls over ~64 bytes and the
//! commitment never depends on the order entries were added in. A digest point then hashes a
//! fixed-size header around the commitment (`digest.rs`): O(1), so digests at every N events
//! never make replay quadratic.
//!
//! Entry encodings (fixed width, little-endian):
//! ```text
//! slot      b'S' | sender [20] | nonce u64 | hash [32] | subpool u8 (code)     62 bytes
//! replaced  b'R' | sender [20] | nonce u64 | hash [32] | ordinal u32           65 bytes
//! ```
//! `ordinal` is the slot's replacement count when the hash was replaced (0 for the first), so
//! the same hash replaced twice in one slot counts twice.
//!
//! Why a sum: an XOR would cancel an entry added twice; a Merkle tree costs O(log n) hashes per
//! update and memory per node; hashing the sorted snapshot at every point is O(pool) per point.
//! The sum's weakness (generalized-birthday attacks on 256-bit additive hashes need a chosen
//! multiset of entries *and* a replica that already diverged) does not matter for detecting
//! divergence between replicas of one cluster, which is its job.

use mempulse_primitives::{Address, Digest, Nonce, Subpool, TxHash};

/// The sum modulo 2^256 of the entry hashes, as four little-endian 64-bit limbs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Commitment([u64; 4]);

impl Commitment {
    /// Little-endian limbs of a digest.
    fn limbs(d: &Digest) -> [u64; 4] {
        let mut out = [0u64; 4];
        for (limb, chunk) in out.iter_mut().zip(d.0.chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(word);
        }
        out
    }

    /// Adds an entry hash.
    pub(crate) fn add(&mut self, d: &Digest) {
        let mut carry = false;
        for (a, b) in self.0.iter_mut().zip(Self::limbs(d)) {
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *a = s2;
            carry = c1 || c2;
        }
    }

    /// Subtracts an entry hash (removes an entry added before).
    pub(crate) fn sub(&mut self, d: &Digest) {
        let mut borrow = false;
        for (a, b) in self.0.iter_mut().zip(Self::limbs(d)) {
            let (s1, b1) = a.overflowing_sub(b);
            let (s2, b2) = s1.overflowing_sub(u64::from(borrow));
            *a = s2;
            borrow = b1 || b2;
        }
    }

    /// The 32 little-endian bytes of the sum.
    pub(crate) fn to_bytes(self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }
}

/// Hash of an occupied slot: `sender`'s `nonce` holds `hash` in `subpool`.
pub(crate) fn slot_entry(
    sender: &Address,
    nonce: Nonce,
    hash: &TxHash,
    subpool: Subpool,
) -> Digest {
    let mut buf = [0u8; 62];
    buf[0] = b'S';
    buf[1..21].copy_from_slice(&sender.0);
    buf[21..29].copy_from_slice(&nonce.0.to_le_bytes());
    buf[29..61].copy_from_slice(&hash.0);
    buf[61] = subpool.code();
    Digest::sha256(&buf)
}

/// Hash of a replaced transaction kept in a slot's history.
pub(crate) fn replaced_entry(
    sender: &Address,
    nonce: Nonce,
    hash: &TxHash,
    ordinal: u32,
) -> Digest {
    let mut buf = [0u8; 65];
    buf[0] = b'R';
    buf[1..21].copy_from_slice(&sender.0);
    buf[21..29].copy_from_slice(&nonce.0.to_le_bytes());
    buf[29..61].copy_from_slice(&hash.0);
    buf[61..65].copy_from_slice(&ordinal.to_le_bytes());
    Digest::sha256(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_sub_restores_and_order_does_not_matter() {
        let a = Digest([0xff; 32]);
        let b = Digest::sha256(b"b");
        let mut x = Commitment::default();
        x.add(&a);
        x.add(&b);
        let mut y = Commitment::default();
        y.add(&b);
        y.add(&a);
        assert_eq!(x, y);
        x.sub(&a);
        x.sub(&b);
        assert_eq!(x, Commitment::default());
        // 0xff..ff + 1 wraps to zero (mod 2^256).
        let mut one = [0u8; 32];
        one[0] = 1;
        let mut w = Commitment::default();
        w.add(&a);
        w.add(&Digest(one));
        assert_eq!(w.to_bytes(), [0u8; 32]);
    }

    #[test]
    fn entries_differ_by_every_field() {
        let (s, n, h) = (Address([1; 20]), Nonce(2), TxHash([3; 32]));
        let base = slot_entry(&s, n, &h, Subpool::Pending);
        assert_ne!(base, slot_entry(&s, n, &h, Subpool::Queued));
        assert_ne!(base, slot_entry(&s, Nonce(3), &h, Subpool::Pending));
        assert_ne!(replaced_entry(&s, n, &h, 0), replaced_entry(&s, n, &h, 1));
    }
}
