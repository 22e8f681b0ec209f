//! Private lookup indexes by transaction hash and by sender address, with a cheap keyed hash.
//!
//! Both maps are lookup indexes only: they are never iterated, so their order (which depends on
//! the hash key and on insertion history) never reaches an output.
//!
//! Transaction hashes are already uniformly random, so hashing their first 8 bytes is enough;
//! addresses are hashed whole (synthetic and vanity addresses share leading zero bytes). Each
//! word is mixed with a per-map random key by a folded 64×64→128-bit multiply, so the bucket an
//! input lands in cannot be predicted from the input alone (no collision flooding), at a
//! fraction of the cost of the default `SipHash` over 32 or 20 bytes.

use core::hash::{BuildHasher, Hash, Hasher};
#[allow(clippy::disallowed_types, reason = "private lookup index, never iterated")]
use std::collections::HashMap;
use std::hash::RandomState;

use mempulse_primitives::{Address, TxHash};

/// Odd 64-bit constants (from the fractional digits of pi) for the mixer.
const MUL_A: u64 = 0x243f_6a88_85a3_08d3;
const MUL_B: u64 = 0x1319_8a2e_0370_7344 | 1;

/// The two halves of `a * b` (128-bit), xored.
#[allow(clippy::cast_possible_truncation, reason = "folding the halves of a 128-bit product")]
const fn fold_mul(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds [`FoldHasher`]s with one random key per map.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FoldState {
    key: u64,
}

impl Default for FoldState {
    /// A key drawn from std's per-process random hash keys, as the default `HashMap` does.
    fn default() -> Self {
        Self { key: RandomState::new().hash_one(MUL_A) }
    }
}

impl BuildHasher for FoldState {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        FoldHasher { acc: self.key }
    }
}

/// Mixes whole words; the key types below only ever write `u64`s.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FoldHasher {
    acc: u64,
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word.get_mut(..chunk.len()).into_iter().for_each(|w| w.copy_from_slice(chunk));
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.acc = fold_mul(self.acc ^ word, MUL_A);
    }

    fn finish(&self) -> u64 {
        fold_mul(self.acc, MUL_B)
    }
}

/// Reads 8 bytes at `at` as a little-endian word (zero past the end).
fn word<const N: usize>(bytes: &[u8; N], at: usize) -> u64 {
    let mut w = [0u8; 8];
    if let Some(src) = bytes.get(at..) {
        let n = src.len().min(8);
        w[..n].copy_from_slice(&src[..n]);
    }
    u64::from_le_bytes(w)
}

/// A transaction hash as a map key: hashed by its first 8 bytes, compared whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HashKey(TxHash);

impl Hash for HashKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(word(&self.0.0, 0));
    }
}

/// An address as a map key: hashed by all 20 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AddressKey(pub(crate) Address);

impl Hash for AddressKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let a = &self.0.0;
        state.write_u64(word(a, 0));
        state.write_u64(word(a, 8));
        state.write_u64(word(a, 16));
    }
}

/// A map by address (never iterated).
#[allow(clippy::disallowed_types, reason = "private lookup index by address, never iterated")]
pub(crate) type AddressMap<V> = HashMap<AddressKey, V, FoldState>;

#[allow(clippy::disallowed_types, reason = "private lookup index by hash, never iterated")]
type HashKeyMap<V> = HashMap<HashKey, V, FoldState>;

/// A map by transaction hash (never iterated).
#[derive(Clone, Debug)]
pub(crate) struct HashIndex<V> {
    map: HashKeyMap<V>,
}

impl<V> Default for HashIndex<V> {
    fn default() -> Self {
        Self { map: HashKeyMap::default() }
    }
}

impl<V> HashIndex<V> {
    pub(crate) fn get(&self, hash: &TxHash) -> Option<&V> {
        self.map.get(&HashKey(*hash))
    }

    pub(crate) fn contains_key(&self, hash: &TxHash) -> bool {
        self.map.contains_key(&HashKey(*hash))
    }

    pub(crate) fn insert(&mut self, hash: TxHash, value: V) -> Option<V> {
        self.map.insert(HashKey(hash), value)
    }

    pub(crate) fn remove(&mut self, hash: &TxHash) -> Option<V> {
        self.map.remove(&HashKey(*hash))
    }

    /// Reserves room for `additional` more keys.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whole_and_hash_with_the_map_key() {
        let mut m = HashIndex::default();
        let mut a = [7u8; 32];
        let b = a;
        a[31] = 8; // same first 8 bytes, different hash
        assert_eq!(m.insert(TxHash(a), 1), None);
        assert_eq!(m.insert(TxHash(b), 2), None);
        assert_eq!((m.get(&TxHash(a)), m.get(&TxHash(b))), (Some(&1), Some(&2)));
        assert_eq!(m.remove(&TxHash(a)), Some(1));
        assert!(!m.contains_key(&TxHash(a)) && m.contains_key(&TxHash(b)));
        // Different keys give different hashes of the same input.
        let (s, t) = (FoldState { key: 1 }, FoldState { key: 2 });
        assert_ne!(s.hash_one(HashKey(TxHash(b))), t.hash_one(HashKey(TxHash(b))));
        assert_eq!(word(&[1u8, 2, 3], 1), 0x0302);
    }
}
