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
pub(crate) struct KeyedState {
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
pub(crate) struct KeyedHasher {
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

/// Slots a [`TxSlab`] can hold: its buckets name a slot in 32 bits (4 G values of any size
/// cannot be allocated anyway).
const SLOTS_MAX: usize = u32::MAX as usize - 1;

/// The first word of a hash, little-endian.
pub(crate) fn prefix(hash: &TxHash) -> u64 {
    let [a, b, c, d, e, f, g, h, ..] = hash.0;
    u64::from_le_bytes([a, b, c, d, e, f, g, h])
}

/// A slot of a [`TxSlab`]: the hash and the value (`None` while the slot is free).
#[derive(Clone, Debug)]
struct SlabSlot<V> {
    hash: TxHash,
    value: Option<V>,
}

/// Values by transaction hash in a slab, with stable `usize` handles, and lookups only (no
/// iteration).
///
/// The hash index is an open-addressing table of 8-byte buckets, linear probing, with
/// backward-shift deletion (no tombstones): a bucket holds the low 32 bits of the keyed hash of
/// the transaction hash's first word (its home bucket and a tag) and the slot number. A lookup
/// reads one or two cache lines of the table and the slot whose tag matches; the values live
/// in the slab and never move, so a handle stays valid until its value is removed (the
/// lifecycle index's finished queue keeps handles instead of 32-byte hashes), and a freed slot
/// is reused by the next insert. At 100 000 entries the table is 2 MiB (the `HashMap` it
/// replaced kept 32-byte keys with the values: 4 MiB of buckets plus control bytes, two cache
/// misses per cold lookup). Growing rehashes the buckets into a table twice the size; nothing
/// about the table's order ever leaves it.
#[derive(Clone, Debug)]
pub(crate) struct TxSlab<V> {
    /// `0`: empty; else `hash_low32 << 32 | (slot + 1)`.
    buckets: Vec<u64>,
    slots: Vec<SlabSlot<V>>,
    free: Vec<usize>,
    len: usize,
    key: KeyedState,
}

impl<V> Default for TxSlab<V> {
    fn default() -> Self {
        Self {
            buckets: vec![0; 16],
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
            key: KeyedState::default(),
        }
    }
}

impl<V> TxSlab<V> {
    /// A slab that holds `capacity` values without growing: the slots reserved (untouched
    /// memory until used) and the table at most three quarters full with that many. Growing
    /// copies the slots and rehashes every bucket at each doubling, and a replay from genesis
    /// would pay that on its way to the index's steady size.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let buckets = (capacity.saturating_mul(4) / 3).saturating_add(1).next_power_of_two();
        Self {
            buckets: vec![0; buckets.max(16)],
            slots: Vec::with_capacity(capacity),
            ..Self::default()
        }
    }

    /// The keyed hash of `hash`'s first word, low 32 bits.
    fn hash32(&self, hash: &TxHash) -> u32 {
        let mut h = self.key.build_hasher();
        h.write_u64(prefix(hash));
        #[allow(clippy::cast_possible_truncation, reason = "the low half of the keyed hash")]
        let low = h.finish() as u32;
        low
    }

    const fn mask(&self) -> usize {
        self.buckets.len() - 1
    }

    /// The bucket index of `hash` when held, else the first empty bucket of its probe run.
    fn probe(&self, hash: &TxHash, h32: u32) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = h32 as usize & mask;
        loop {
            let bucket = self.buckets.get(i).copied().unwrap_or(0);
            if bucket == 0 {
                return Err(i);
            }
            if (bucket >> 32) as u32 == h32 {
                let at = (bucket & 0xffff_ffff) as usize - 1;
                if self.slots.get(at).is_some_and(|s| s.hash == *hash) {
                    return Ok(i);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The handle of `hash`'s value.
    pub(crate) fn find(&self, hash: &TxHash) -> Option<usize> {
        let i = self.probe(hash, self.hash32(hash)).ok()?;
        self.buckets.get(i).map(|b| (b & 0xffff_ffff) as usize - 1)
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
    /// `None` when the value is missing and the slab holds [`SLOTS_MAX`] values.
    pub(crate) fn find_or_insert_with(
        &mut self,
        hash: TxHash,
        make: impl FnOnce() -> V,
    ) -> Option<(usize, bool)> {
        let h32 = self.hash32(&hash);
        let empty = match self.probe(&hash, h32) {
            Ok(i) => return self.buckets.get(i).map(|b| ((b & 0xffff_ffff) as usize - 1, false)),
            Err(empty) => empty,
        };
        if self.free.is_empty() && self.slots.len() >= SLOTS_MAX {
            return None;
        }
        let slot = SlabSlot { hash, value: Some(make()) };
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
        let bucket = (u64::from(h32) << 32) | (at as u64 + 1);
        self.len += 1;
        // At most three quarters full: probe runs stay within a cache line or two.
        if self.len * 4 > self.buckets.len() * 3 {
            self.grow();
            let empty = self.probe(&hash, h32).err();
            if let Some(b) = empty.and_then(|i| self.buckets.get_mut(i)) {
                *b = bucket;
            }
        } else if let Some(b) = self.buckets.get_mut(empty) {
            *b = bucket;
        }
        Some((at, true))
    }

    /// Doubles the table and puts every bucket at its new place.
    fn grow(&mut self) {
        let doubled = vec![0; self.buckets.len() * 2];
        let old = std::mem::replace(&mut self.buckets, doubled);
        let mask = self.mask();
        for bucket in old.into_iter().filter(|b| *b != 0) {
            let mut i = (bucket >> 32) as usize & mask;
            while self.buckets.get(i).is_some_and(|b| *b != 0) {
                i = (i + 1) & mask;
            }
            if let Some(b) = self.buckets.get_mut(i) {
                *b = bucket;
            }
        }
    }

    /// The tag [`TxSlab::forget`] takes for `hash`.
    pub(crate) fn tag(&self, hash: &TxHash) -> u32 {
        self.hash32(hash)
    }

    /// Forgets the value behind a handle, given its hash's [`TxSlab::tag`], without reading
    /// its slot: the slot is free for the next insert, which overwrites it. The handle must not
    /// be used again (it names a stale value, or the next one).
    pub(crate) fn forget(&mut self, at: usize, tag: u32) {
        let mask = self.mask();
        // Find the bucket naming `at` along the probe run of its hash.
        let mut i = tag as usize & mask;
        while let Some(&bucket) = self.buckets.get(i) {
            if bucket == 0 || (bucket & 0xffff_ffff) as usize == at + 1 {
                break;
            }
            i = (i + 1) & mask;
        }
        if self.buckets.get(i).is_none_or(|b| *b == 0) {
            // Not held: nothing to free.
            return;
        }
        // Backward shift: pull later buckets of the run into the hole unless their home bucket
        // lies cyclically after the hole.
        let mut j = i;
        loop {
            j = (j + 1) & mask;
            let Some(&bucket) = self.buckets.get(j) else { break };
            if bucket == 0 {
                break;
            }
            let home = (bucket >> 32) as usize & mask;
            let stays = if i <= j { i < home && home <= j } else { i < home || home <= j };
            if !stays {
                self.buckets.swap(i, j);
                i = j;
            }
        }
        if let Some(b) = self.buckets.get_mut(i) {
            *b = 0;
        }
        self.free.push(at);
        self.len -= 1;
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
    fn slab_finds_hashes_sharing_a_first_word_and_reuses_slots() {
        let mut slab = TxSlab::default();
        let hash = |first: u8, last: u8| {
            let mut h = TxHash([first; 32]);
            h.0[31] = last;
            h
        };
        let (a, b, c, d) = (hash(1, 1), hash(1, 2), hash(1, 3), hash(2, 1));
        let (ha, new) = slab.find_or_insert_with(a, || 10).unwrap();
        assert!(new);
        let (hb, _) = slab.find_or_insert_with(b, || 20).unwrap();
        let (hc, _) = slab.find_or_insert_with(c, || 30).unwrap();
        let (hd, _) = slab.find_or_insert_with(d, || 40).unwrap();
        assert_eq!(slab.find_or_insert_with(b, || 99), Some((hb, false)));
        assert_eq!((slab.len(), slab.lookup(&b), slab.lookup(&d)), (4, Some(&20), Some(&40)));
        // Forget from the middle of the probe run (twice: the second finds nothing), then its
        // start, then its end.
        slab.forget(hb, slab.tag(&b));
        slab.forget(hb, slab.tag(&b));
        assert_eq!((slab.find(&a), slab.find(&b), slab.find(&c)), (Some(ha), None, Some(hc)));
        assert_eq!(slab.len(), 3);
        slab.forget(ha, slab.tag(&a));
        assert_eq!((slab.find(&a), slab.find(&c)), (None, Some(hc)));
        // A freed slot is reused and its old handle names the new value.
        let (he, _) = slab.find_or_insert_with(hash(1, 9), || 50).unwrap();
        assert!(he == hb || he == ha);
        assert_eq!(slab.entry(he), Some((&hash(1, 9), &50)));
        slab.forget(hc, slab.tag(&c));
        assert_eq!(slab.find(&c), None);
        if let Some(v) = slab.get_mut(hd) {
            *v = 41;
        }
        assert_eq!((slab.get(hd), slab.len()), (Some(&41), 2));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Inserts and forgets against a `BTreeMap`, across growth and backward shifts, with
        /// hashes drawn from a small set of first words (long probe runs, equal tags).
        #[test]
        fn slab_behaves_as_a_map(ops in proptest::collection::vec((0..3u8, 0..6u8, 0..40u8), 0..400)) {
            use std::collections::BTreeMap;
            let mut slab = TxSlab::default();
            let mut model: BTreeMap<TxHash, (usize, u32)> = BTreeMap::new();
            for (step, (op, first, last)) in ops.into_iter().enumerate() {
                let mut h = TxHash([first; 32]);
                h.0[31] = last;
                let value = u32::try_from(step).unwrap();
                if op == 0 {
                    if let Some((at, _)) = model.remove(&h) {
                        slab.forget(at, slab.tag(&h));
                    }
                } else {
                    let (at, new) = slab.find_or_insert_with(h, || value).unwrap();
                    proptest::prop_assert_eq!(new, !model.contains_key(&h));
                    model.entry(h).or_insert((at, value));
                }
                proptest::prop_assert_eq!(slab.len(), model.len());
                for first in 0..6u8 {
                    for last in 0..40u8 {
                        let mut h = TxHash([first; 32]);
                        h.0[31] = last;
                        let want = model.get(&h).map(|(at, v)| (*at, *v));
                        let got = slab.find(&h).map(|at| (at, *slab.get(at).unwrap()));
                        proptest::prop_assert_eq!(got, want);
                    }
                }
            }
        }
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
