//! [`SlotMap`]: the pool view's (sender, nonce) slots behind one hash lookup by sender, each
//! sender's slots kept in nonce order in its entry.
//!
//! The view needs a slot by its exact key on almost every fact (admit, replace, promote, evict,
//! include) and the slots in order only rarely: a sender's chain (an API query, a reopened
//! transaction's pending-or-queued choice) and the whole map (a checkpoint). A `BTreeMap` walked
//! three levels of ~1.2 KiB nodes per lookup, several cache lines each, on every fact; a hash
//! lookup reads one or two. A sender holds few slots (most hold one, inline), so finding the
//! nonce among them is a short search; the map by (sender, nonce) with a second map of each
//! sender's nonces that this replaced made two hash lookups per slot created or removed
//! (`docs/design/replay.md`, "eighth look"). Order comes from each sender's sorted slots and,
//! for the whole map, from sorting the keys: neither the hash order nor anything derived from
//! it is ever returned, hashed or encoded.

use core::hash::{Hash, Hasher};
#[allow(clippy::disallowed_types, reason = "a private lookup map whose API cannot iterate it")]
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use mempulse_primitives::{Address, Nonce};

use crate::{
    lookup::KeyedState,
    state::{Slot, SlotKey, address_words},
};

/// One sender's slots in ascending nonce order; most senders hold one, kept without an
/// allocation.
#[derive(Clone, Debug)]
enum Chain {
    One((Nonce, Slot)),
    Many(Vec<(Nonce, Slot)>),
}

impl Chain {
    fn as_slice(&self) -> &[(Nonce, Slot)] {
        match self {
            Self::One(only) => core::slice::from_ref(only),
            Self::Many(slots) => slots,
        }
    }

    fn get(&self, nonce: Nonce) -> Option<&Slot> {
        let slots = self.as_slice();
        let at = slots.binary_search_by_key(&nonce, |(n, _)| *n).ok()?;
        slots.get(at).map(|(_, slot)| slot)
    }

    fn get_mut(&mut self, nonce: Nonce) -> Option<&mut Slot> {
        match self {
            Self::One((n, slot)) => (*n == nonce).then_some(slot),
            Self::Many(slots) => {
                let at = slots.binary_search_by_key(&nonce, |(n, _)| *n).ok()?;
                slots.get_mut(at).map(|(_, slot)| slot)
            }
        }
    }

    /// The slot of `nonce`, created empty when missing; `true` when created.
    fn get_or_default(&mut self, nonce: Nonce) -> (&mut Slot, bool) {
        if let Self::One((only, _)) = self
            && *only != nonce
        {
            let Self::One(first) = core::mem::replace(self, Self::Many(Vec::with_capacity(2)))
            else {
                unreachable!("matched One above")
            };
            if let Self::Many(slots) = self {
                slots.push(first);
            }
        }
        match self {
            Self::One((_, slot)) => (slot, false),
            Self::Many(slots) => match slots.binary_search_by_key(&nonce, |(n, _)| *n) {
                Ok(at) => (&mut slots[at].1, false),
                Err(at) => {
                    slots.insert(at, (nonce, Slot::default()));
                    (&mut slots[at].1, true)
                }
            },
        }
    }

    /// Removes the slot of `nonce` from a chain of two or more (a chain of one leaves the map
    /// whole); it goes back to one slot inline when one is left.
    fn remove_from_many(&mut self, nonce: Nonce) -> Option<Slot> {
        let Self::Many(slots) = self else { return None };
        let at = slots.binary_search_by_key(&nonce, |(n, _)| *n).ok()?;
        let (_, slot) = slots.remove(at);
        if slots.len() == 1
            && let Some(last) = slots.pop()
        {
            *self = Self::One(last);
        }
        Some(slot)
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

/// Slots by (sender, nonce): one lookup by sender, then the sender's few slots in nonce order.
/// Lookups only, but for the sorted listing.
#[derive(Clone, Debug, Default)]
pub(crate) struct SlotMap {
    #[allow(clippy::disallowed_types, reason = "never iterated but to sort its keys")]
    senders: HashMap<Sender, Chain, KeyedState>,
    len: usize,
}

impl SlotMap {
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, key: &SlotKey) -> Option<&Slot> {
        self.senders.get(&Sender(key.0))?.get(key.1)
    }

    pub(crate) fn get_mut(&mut self, key: &SlotKey) -> Option<&mut Slot> {
        self.senders.get_mut(&Sender(key.0))?.get_mut(key.1)
    }

    /// The slot of `key`, created empty when missing.
    pub(crate) fn get_or_default(&mut self, key: SlotKey) -> &mut Slot {
        match self.senders.entry(Sender(key.0)) {
            Entry::Occupied(chain) => {
                let (slot, created) = chain.into_mut().get_or_default(key.1);
                self.len += usize::from(created);
                slot
            }
            Entry::Vacant(chain) => {
                self.len += 1;
                let Chain::One((_, slot)) = chain.insert(Chain::One((key.1, Slot::default())))
                else {
                    unreachable!("inserted One")
                };
                slot
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &SlotKey) -> Option<Slot> {
        let Entry::Occupied(mut chain) = self.senders.entry(Sender(key.0)) else { return None };
        let slot = match chain.get_mut() {
            Chain::One((only, _)) if *only == key.1 => match chain.remove() {
                Chain::One((_, slot)) => slot,
                Chain::Many(_) => return None,
            },
            Chain::One(_) => return None,
            many @ Chain::Many(_) => many.remove_from_many(key.1)?,
        };
        self.len -= 1;
        Some(slot)
    }

    /// The slots of one sender, in nonce order.
    pub(crate) fn sender(
        &self,
        sender: Address,
    ) -> impl DoubleEndedIterator<Item = (Nonce, &Slot)> {
        let slots = self.senders.get(&Sender(sender)).map(Chain::as_slice).unwrap_or_default();
        slots.iter().map(|(nonce, slot)| (*nonce, slot))
    }

    /// Every slot, in (sender, nonce) order (sorts the keys: for checkpoints and listings).
    pub(crate) fn sorted(&self) -> Vec<(SlotKey, &Slot)> {
        #[allow(clippy::iter_over_hash_type, reason = "sorted right after")]
        let mut all: Vec<(SlotKey, &Slot)> = self
            .senders
            .iter()
            .flat_map(|(sender, chain)| {
                chain.as_slice().iter().map(move |(nonce, slot)| (SlotKey(sender.0, *nonce), slot))
            })
            .collect();
        all.sort_unstable_by_key(|(key, _)| *key);
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
            let sorted: Vec<_> = map.sorted().into_iter().map(|(k, s)| (k, s.clone())).collect();
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
