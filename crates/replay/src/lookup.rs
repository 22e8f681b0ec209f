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

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

/// No slot (end of a collision chain).
const NONE: usize = usize::MAX;

/// The first word of a hash, little-endian.
fn prefix(hash: &TxHash) -> u64 {
    let [a, b, c, d, e, f, g, h, ..] = hash.0;
    u64::from_le_bytes([a, b, c, d, e, f, g, h])
}

/// A slot of a [`TxSlab`]: the hash, the next slot whose hash has the same first word, and the
/// value (`None` while the slot is free).
#[derive(Clone, Debug)]
struct SlabSlot<V> {
    hash: TxHash,
    next: usize,
    value: Option<V>,
}

/// Values by transaction hash in a slab, with stable `usize` handles, and lookups only (no
/// iteration).
///
/// The hash index maps the first word of a hash to the slot of the last inserted value with
/// that first word; slots with the same first word are chained through `next` and told apart by
/// their full hash. So an index entry is 16 bytes instead of the 32-byte key plus the value,
/// the index stays small enough to stay in cache while the slab holds the values, and a value
/// never moves, so a handle stays valid until its value is removed (other structures, like the
/// lifecycle index's finished queue, keep handles instead of 32-byte hashes). A freed slot is
/// reused by the next insert.
#[derive(Clone, Debug)]
pub(crate) struct TxSlab<V> {
    #[allow(clippy::disallowed_types, reason = "never iterated: the API has no iterator")]
    heads: HashMap<u64, usize, KeyedState>,
    slots: Vec<SlabSlot<V>>,
    free: Vec<usize>,
    len: usize,
}

impl<V> Default for TxSlab<V> {
    #[allow(clippy::disallowed_types, reason = "never iterated: the API has no iterator")]
    fn default() -> Self {
        Self { heads: HashMap::default(), slots: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<V> TxSlab<V> {
    /// The handle of `hash`'s value.
    pub(crate) fn find(&self, hash: &TxHash) -> Option<usize> {
        let mut at = *self.heads.get(&prefix(hash))?;
        while let Some(slot) = self.slots.get(at) {
            if slot.hash == *hash && slot.value.is_some() {
                return Some(at);
            }
            at = slot.next;
        }
        None
    }

    /// The value behind a handle (`None` once it was removed).
    pub(crate) fn get(&self, at: usize) -> Option<&V> {
        self.slots.get(at)?.value.as_ref()
    }

    /// The value behind a handle, mutably.
    pub(crate) fn get_mut(&mut self, at: usize) -> Option<&mut V> {
        self.slots.get_mut(at)?.value.as_mut()
    }

    /// The hash and value behind a handle.
    pub(crate) fn entry(&self, at: usize) -> Option<(&TxHash, &V)> {
        let slot = self.slots.get(at)?;
        Some((&slot.hash, slot.value.as_ref()?))
    }

    /// The value of `hash`.
    pub(crate) fn lookup(&self, hash: &TxHash) -> Option<&V> {
        self.find(hash).and_then(|at| self.get(at))
    }

    /// The handle of `hash`'s value, inserting `make()` when missing; `true` when inserted.
    pub(crate) fn find_or_insert_with(
        &mut self,
        hash: TxHash,
        make: impl FnOnce() -> V,
    ) -> (usize, bool) {
        let head = self.heads.entry(prefix(&hash)).or_insert(NONE);
        let mut at = *head;
        while let Some(slot) = self.slots.get(at) {
            if slot.hash == hash {
                return (at, false);
            }
            at = slot.next;
        }
        let slot = SlabSlot { hash, next: *head, value: Some(make()) };
        let at = match self.free.pop() {
            Some(at) => {
                if let Some(free) = self.slots.get_mut(at) {
                    *free = slot;
                }
                at
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        *head = at;
        self.len += 1;
        (at, true)
    }

    /// Removes the value behind a handle; the handle is free for reuse.
    pub(crate) fn remove(&mut self, at: usize) -> Option<V> {
        let slot = self.slots.get_mut(at)?;
        let value = slot.value.take()?;
        let (key, next) = (prefix(&slot.hash), slot.next);
        slot.next = NONE;
        // Unlink `at` from its chain: it is the head, or some slot's `next`.
        let head = self.heads.get_mut(&key);
        match head {
            Some(head) if *head == at => {
                if next == NONE {
                    self.heads.remove(&key);
                } else {
                    *head = next;
                }
            }
            Some(head) => {
                let mut prev = *head;
                while let Some(slot) = self.slots.get_mut(prev) {
                    if slot.next == at {
                        slot.next = next;
                        break;
                    }
                    prev = slot.next;
                }
            }
            None => {}
        }
        self.free.push(at);
        self.len -= 1;
        Some(value)
    }

    /// Values held.
    pub(crate) const fn len(&self) -> usize {
        self.len
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
        assert_eq!(index.remove(&b), Some(2));
        assert!(!index.contains(&b));
        assert_eq!(index.get(&a), Some(&3));
    }

    #[test]
    fn slab_chains_hashes_with_one_first_word() {
        let mut slab = TxSlab::default();
        let hash = |first: u8, last: u8| {
            let mut h = TxHash([first; 32]);
            h.0[31] = last;
            h
        };
        let (a, b, c, d) = (hash(1, 1), hash(1, 2), hash(1, 3), hash(2, 1));
        let (ha, new) = slab.find_or_insert_with(a, || 10);
        assert!(new);
        let (hb, _) = slab.find_or_insert_with(b, || 20);
        let (hc, _) = slab.find_or_insert_with(c, || 30);
        let (hd, _) = slab.find_or_insert_with(d, || 40);
        assert_eq!(slab.find_or_insert_with(b, || 99), (hb, false));
        assert_eq!((slab.len(), slab.lookup(&b), slab.lookup(&d)), (4, Some(&20), Some(&40)));
        // Remove from the middle of the chain (c -> b -> a), then its head, then its tail.
        assert_eq!(slab.remove(hb), Some(20));
        assert_eq!(slab.remove(hb), None);
        assert_eq!((slab.find(&a), slab.find(&b), slab.find(&c)), (Some(ha), None, Some(hc)));
        assert_eq!(slab.remove(hc), Some(30));
        assert_eq!((slab.find(&a), slab.find(&c)), (Some(ha), None));
        // A freed slot is reused and its old handle names the new value.
        let (he, _) = slab.find_or_insert_with(hash(1, 9), || 50);
        assert!(he == hb || he == hc);
        assert_eq!(slab.entry(he), Some((&hash(1, 9), &50)));
        assert_eq!(slab.remove(ha), Some(10));
        assert_eq!(slab.find(&a), None);
        if let Some(v) = slab.get_mut(hd) {
            *v = 41;
        }
        assert_eq!((slab.get(hd), slab.len()), (Some(&41), 2));
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
