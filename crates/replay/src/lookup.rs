//! [`TxIndex`]: a lookup index by transaction hash that cannot be iterated.
//!
//! The derived state keeps its ordered structures (`BTreeMap`s) for everything that is hashed,
//! encoded or listed; this index only answers "where is the entry for this hash" in O(1). Its
//! API has no iterator, so its order (which depends on a per-process random key and on insertion
//! history) can never reach a digest, a checkpoint or an answer.
//!
//! Transaction hashes are uniform, so the hasher reads their first 8 bytes and mixes them with
//! the per-index random key by a 64×64→128-bit multiply folded to 64 bits: much cheaper than
//! `SipHash` over 32 bytes, and the bucket of a hash cannot be predicted without the key.

use core::hash::{BuildHasher, Hash, Hasher};
#[allow(clippy::disallowed_types, reason = "a private lookup index whose API cannot iterate")]
use std::collections::HashMap;
use std::hash::RandomState;

use mempulse_primitives::TxHash;

/// An odd multiplier (the first 64 fractional bits of the golden ratio).
const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

/// `a * b` as 128 bits, high half xored into the low half.
#[allow(clippy::cast_possible_truncation, reason = "the two halves of a 128-bit product")]
const fn fold(a: u64, b: u64) -> u64 {
    let wide = (a as u128) * (b as u128);
    (wide as u64) ^ ((wide >> 64) as u64)
}

/// Builds [`KeyedHasher`]s sharing one random key.
#[derive(Clone, Copy, Debug)]
struct KeyedState {
    key: u64,
}

impl Default for KeyedState {
    fn default() -> Self {
        // std's per-process random keys, as its default hash map uses.
        Self { key: RandomState::new().hash_one(MIX) | 1 }
    }
}

impl BuildHasher for KeyedState {
    type Hasher = KeyedHasher;

    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher { state: self.key }
    }
}

/// Mixes the words it is given; [`Key`] writes exactly one.
#[derive(Clone, Copy, Debug)]
struct KeyedHasher {
    state: u64,
}

impl Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            for (dst, src) in word.iter_mut().zip(chunk) {
                *dst = *src;
            }
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.state = fold(self.state ^ word, MIX);
    }

    fn finish(&self) -> u64 {
        fold(self.state, self.state.rotate_left(29) | 1)
    }
}

/// A transaction hash as a map key that hashes only its first word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key(TxHash);

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.0.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
    }
}

/// A map from transaction hash to `V` with lookups only (no iteration).
#[derive(Clone, Debug)]
pub(crate) struct TxIndex<V> {
    #[allow(clippy::disallowed_types, reason = "never iterated: the API has no iterator")]
    map: HashMap<Key, V, KeyedState>,
}

impl<V> Default for TxIndex<V> {
    #[allow(clippy::disallowed_types, reason = "never iterated: the API has no iterator")]
    fn default() -> Self {
        Self { map: HashMap::default() }
    }
}

impl<V> TxIndex<V> {
    pub(crate) fn get(&self, hash: &TxHash) -> Option<&V> {
        self.map.get(&Key(*hash))
    }

    pub(crate) fn get_mut(&mut self, hash: &TxHash) -> Option<&mut V> {
        self.map.get_mut(&Key(*hash))
    }

    pub(crate) fn contains(&self, hash: &TxHash) -> bool {
        self.map.contains_key(&Key(*hash))
    }

    /// Inserts, returning the previous value.
    pub(crate) fn insert(&mut self, hash: TxHash, value: V) -> Option<V> {
        self.map.insert(Key(hash), value)
    }

    pub(crate) fn remove(&mut self, hash: &TxHash) -> Option<V> {
        self.map.remove(&Key(*hash))
    }

    /// The entry for `hash`, inserted with `make` when missing.
    pub(crate) fn get_or_insert_with(&mut self, hash: TxHash, make: impl FnOnce() -> V) -> &mut V {
        self.map.entry(Key(hash)).or_insert_with(make)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_insert_and_remove() {
        let mut index = TxIndex::default();
        let a = TxHash([1; 32]);
        let mut b = TxHash([1; 32]);
        b.0[31] = 2; // same first word: same bucket chain, still distinct keys
        assert_eq!(index.insert(a, 1), None);
        assert_eq!(index.insert(b, 2), None);
        assert_eq!(index.insert(a, 3), Some(1));
        assert_eq!((index.get(&a), index.get(&b), index.len()), (Some(&3), Some(&2), 2));
        *index.get_or_insert_with(TxHash([9; 32]), || 0) += 5;
        assert_eq!(index.get(&TxHash([9; 32])), Some(&5));
        assert_eq!(index.remove(&b), Some(2));
        assert!(!index.contains(&b));
        if let Some(v) = index.get_mut(&a) {
            *v = 7;
        }
        assert_eq!(index.get(&a), Some(&7));
    }

    #[test]
    fn hasher_mixes_every_word_written() {
        let state = KeyedState { key: 3 };
        let one = state.hash_one(Key(TxHash([1; 32])));
        assert_ne!(one, state.hash_one(Key(TxHash([2; 32]))));
        let mut h = state.build_hasher();
        h.write(&[1, 2, 3, 4, 5, 6, 7, 8, 9]);
        let mut g = state.build_hasher();
        g.write(&[1, 2, 3, 4, 5, 6, 7, 8, 10]);
        assert_ne!(h.finish(), g.finish());
    }
}
