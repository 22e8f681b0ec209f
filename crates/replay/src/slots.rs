//! [`SlotMap`]: the pool view's (sender, nonce) slots behind hash lookups, with each sender's
//! nonces kept in order beside them.
//!
//! The view needs a slot by its exact key on almost every fact (admit, replace, promote, evict,
//! include) and the slots in order only rarely: a sender's chain (an API query, a reopened
//! transaction's pending-or-queued choice) and the whole map (a checkpoint). A `BTreeMap` walked
//! three levels of ~1.2 KiB nodes per lookup, several cache lines each, on every fact; a hash
//! lookup reads one or two. Order comes from each sender's sorted nonces and, for the whole
//! map, from sorting the keys: neither the hash order nor anything derived from it is ever
//! returned, hashed or encoded.

use core::hash::{Hash, Hasher};
#[allow(clippy::disallowed_types, reason = "a private lookup map whose API cannot iterate it")]
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use mempulse_primitives::{Address, Nonce};

use crate::{
    lookup::KeyedState,
    state::{Slot, SlotKey, address_words},
};

/// One sender's nonces in ascending order; most senders hold one slot, kept without an
/// allocation.
#[derive(Clone, Debug)]
enum Nonces {
    One(Nonce),
    Many(Vec<Nonce>),
}

impl Nonces {
    fn as_slice(&self) -> &[Nonce] {
        match self {
            Self::One(nonce) => core::slice::from_ref(nonce),
            Self::Many(nonces) => nonces,
        }
    }

    fn insert(&mut self, nonce: Nonce) {
        match self {
            Self::One(only) if *only == nonce => {}
            Self::One(only) => {
                let pair = if *only < nonce { vec![*only, nonce] } else { vec![nonce, *only] };
                *self = Self::Many(pair);
            }
            Self::Many(nonces) => {
                if let Err(at) = nonces.binary_search(&nonce) {
                    nonces.insert(at, nonce);
                }
            }
        }
    }

    /// Removes `nonce`; `true` when none is left.
    fn remove(&mut self, nonce: Nonce) -> bool {
        match self {
            Self::One(only) => *only == nonce,
            Self::Many(nonces) => {
                if let Ok(at) = nonces.binary_search(&nonce) {
                    nonces.remove(at);
                }
                match nonces.as_slice() {
                    [] => true,
                    [last] => {
                        *self = Self::One(*last);
                        false
                    }
                    _ => false,
                }
            }
        }
    }
}

/// A sender as a map key hashed as three words (the derived `Hash` of a byte array feeds the
/// keyed hasher byte by byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sender(Address);

impl Hash for Sender {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (hi, mid, lo) = address_words(&self.0);
        state.write_u64(hi);
        state.write_u64(mid);
        state.write_u64(u64::from(lo));
    }
}

/// Slots by (sender, nonce), lookups only, plus each sender's nonces in order.
#[derive(Clone, Debug, Default)]
pub(crate) struct SlotMap {
    #[allow(clippy::disallowed_types, reason = "never iterated but to sort its keys")]
    slots: HashMap<SlotKey, Slot, KeyedState>,
    #[allow(clippy::disallowed_types, reason = "never iterated: the API has no iterator")]
    senders: HashMap<Sender, Nonces, KeyedState>,
}

impl SlotMap {
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn get(&self, key: &SlotKey) -> Option<&Slot> {
        self.slots.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &SlotKey) -> Option<&mut Slot> {
        self.slots.get_mut(key)
    }

    /// The slot of `key`, created empty when missing.
    pub(crate) fn get_or_default(&mut self, key: SlotKey) -> &mut Slot {
        match self.slots.entry(key) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => {
                match self.senders.entry(Sender(key.0)) {
                    Entry::Occupied(mut nonces) => nonces.get_mut().insert(key.1),
                    Entry::Vacant(nonces) => {
                        nonces.insert(Nonces::One(key.1));
                    }
                }
                slot.insert(Slot::default())
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &SlotKey) -> Option<Slot> {
        let slot = self.slots.remove(key)?;
        if let Entry::Occupied(mut nonces) = self.senders.entry(Sender(key.0))
            && nonces.get_mut().remove(key.1)
        {
            nonces.remove();
        }
        Some(slot)
    }

    /// The slots of one sender, in nonce order.
    pub(crate) fn sender(
        &self,
        sender: Address,
    ) -> impl DoubleEndedIterator<Item = (Nonce, &Slot)> {
        let nonces = self.senders.get(&Sender(sender)).map(Nonces::as_slice).unwrap_or_default();
        nonces.iter().filter_map(move |n| Some((*n, self.slots.get(&SlotKey(sender, *n))?)))
    }

    /// Every slot, in (sender, nonce) order (sorts the keys: for checkpoints and listings).
    pub(crate) fn sorted(&self) -> Vec<(&SlotKey, &Slot)> {
        #[allow(clippy::iter_over_hash_type, reason = "sorted right after")]
        let mut all: Vec<(&SlotKey, &Slot)> = self.slots.iter().collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Creations and removals give the slots, sender chains and order of a `BTreeMap`.
        #[test]
        fn behaves_as_an_ordered_map(ops in prop::collection::vec((any::<bool>(), 0..4u8, 0..6u64), 0..300)) {
            let (mut map, mut model) = (SlotMap::default(), BTreeMap::<SlotKey, Slot>::new());
            for (create, sender, nonce) in ops {
                let key = SlotKey(Address([sender; 20]), Nonce(nonce));
                if create {
                    map.get_or_default(key).replaced_total += 1;
                    model.entry(key).or_default().replaced_total += 1;
                } else {
                    prop_assert_eq!(map.remove(&key), model.remove(&key));
                }
                prop_assert_eq!(map.len(), model.len());
                prop_assert_eq!(map.get(&key), model.get(&key));
            }
            let sorted: Vec<_> = map.sorted().into_iter().map(|(k, s)| (*k, s.clone())).collect();
            let want: Vec<_> = model.iter().map(|(k, s)| (*k, s.clone())).collect();
            prop_assert_eq!(sorted, want);
            for sender in 0..4u8 {
                let sender = Address([sender; 20]);
                let chain: Vec<_> = map.sender(sender).map(|(n, s)| (n, s.clone())).collect();
                let want: Vec<_> = model
                    .range(SlotKey(sender, Nonce(0))..=SlotKey(sender, Nonce(u64::MAX)))
                    .map(|(k, s)| (k.1, s.clone()))
                    .collect();
                prop_assert_eq!(chain, want);
            }
        }
    }
}
