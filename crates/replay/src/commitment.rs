//! The running commitment over the replicated state: a multiset hash.
//!
//! Every entry of the replicated view (an occupied nonce slot, a replaced hash kept in a slot's
//! history) contributes a 256-bit entry hash, read as a little-endian integer; the commitment is
//! the sum of the contributions modulo 2^256. Adding an entry adds its hash, removing it
//! subtracts it, so the commitment never depends on the order entries were added in. A digest
//! point then hashes a fixed-size header around the commitment (`digest.rs`): O(1), so digests
//! at every N events never make replay quadratic.
//!
//! An entry is one 64-byte block (fixed width, little-endian):
//! ```text
//! slot      sender [20] | nonce u64 | hash [32] | subpool u32 (code)
//! replaced  sender [20] | nonce u64 | hash [32] | ordinal u32
//! ```
//! and its hash is one SHA-256 compression of that block from the chaining value after a first
//! block holding the kind's name (`SLOT_KIND`, `REPLACED_KIND`, zero-padded): the SHA-256
//! chaining value of the two-block message, without the final length block (every entry has
//! the same length, so that block would add nothing). One compression per entry; the 62- and
//! 65-byte encodings of rule version 1, hashed with `Digest::sha256`, took two. `ordinal` is
//! the slot's replacement count when the hash was replaced (0 for the first), so the same hash
//! replaced twice in one slot counts twice.
//!
//! Why a sum: an XOR would cancel an entry added twice; a Merkle tree costs O(log n) hashes per
//! update and memory per node; hashing the sorted snapshot at every point is O(pool) per point.
//! The sum's weakness (generalized-birthday attacks on 256-bit additive hashes need a chosen
//! multiset of entries *and* a replica that already diverged) does not matter for detecting
//! divergence between replicas of one cluster, which is its job.

use std::sync::LazyLock;

use mempulse_primitives::{Address, Digest, Nonce, Sha256Chain, Subpool, TxHash};

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

/// The chaining value entries of one kind start from: after the block holding `name`.
fn kind_chain(name: &[u8]) -> Sha256Chain {
    let mut block = [0u8; 64];
    let len = name.len().min(64);
    block[..len].copy_from_slice(&name[..len]);
    Sha256Chain::INITIAL.compress(&block)
}

static SLOT_CHAIN: LazyLock<Sha256Chain> = LazyLock::new(|| kind_chain(SLOT_KIND));
static REPLACED_CHAIN: LazyLock<Sha256Chain> = LazyLock::new(|| kind_chain(REPLACED_KIND));

const SLOT_KIND: &[u8] = b"mempulse replay commitment: slot entry";
const REPLACED_KIND: &[u8] = b"mempulse replay commitment: replaced entry";

/// The 64-byte entry block: `sender | nonce | hash | last` (little-endian).
fn entry(chain: &Sha256Chain, sender: &Address, nonce: Nonce, hash: &TxHash, last: u32) -> Digest {
    let mut block = [0u8; 64];
    block[..20].copy_from_slice(&sender.0);
    block[20..28].copy_from_slice(&nonce.0.to_le_bytes());
    block[28..60].copy_from_slice(&hash.0);
    block[60..].copy_from_slice(&last.to_le_bytes());
    chain.compress(&block).digest()
}

/// Hash of an occupied slot: `sender`'s `nonce` holds `hash` in `subpool`.
pub(crate) fn slot_entry(
    sender: &Address,
    nonce: Nonce,
    hash: &TxHash,
    subpool: Subpool,
) -> Digest {
    entry(&SLOT_CHAIN, sender, nonce, hash, u32::from(subpool.code()))
}

/// Hash of a replaced transaction kept in a slot's history.
pub(crate) fn replaced_entry(
    sender: &Address,
    nonce: Nonce,
    hash: &TxHash,
    ordinal: u32,
) -> Digest {
    entry(&REPLACED_CHAIN, sender, nonce, hash, ordinal)
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
        assert_ne!(base, slot_entry(&Address([4; 20]), n, &h, Subpool::Pending));
        assert_ne!(base, slot_entry(&s, n, &TxHash([4; 32]), Subpool::Pending));
        // Same bytes, other kind: the starting chain separates them.
        let code = u32::from(Subpool::Pending.code());
        assert_ne!(base, replaced_entry(&s, n, &h, code));
    }

    #[test]
    fn an_entry_is_the_compression_after_its_kind_block() {
        let (s, n, h) = (Address([1; 20]), Nonce(2), TxHash([3; 32]));
        let mut kind = [0u8; 64];
        kind[..SLOT_KIND.len()].copy_from_slice(SLOT_KIND);
        let mut block = [0u8; 64];
        block[..20].copy_from_slice(&[1; 20]);
        block[20..28].copy_from_slice(&2u64.to_le_bytes());
        block[28..60].copy_from_slice(&[3; 32]);
        block[60..].copy_from_slice(&u32::from(Subpool::Queued.code()).to_le_bytes());
        let want = Sha256Chain::INITIAL.compress(&kind).compress(&block).digest();
        assert_eq!(slot_entry(&s, n, &h, Subpool::Queued), want);
    }
}
