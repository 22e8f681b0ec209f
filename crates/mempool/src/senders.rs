//! The sender table: each sender's nonce chain, found by address in O(1).
//!
//! A private hash index maps addresses to arena slots; it is never iterated. Whatever needs an
//! order iterates [`SenderTable::sorted`] (address order). [`SenderTable::values_unordered`]
//! follows arena slots, which differ between replicas, so it is only for order-independent work
//! (a heap keyed by unique values, sums, checks).

use std::collections::BTreeMap;

use mempulse_primitives::Address;

use crate::lookup::{AddressKey, AddressMap};
use crate::pool::Slot;

/// One sender's nonce chain.
///
/// Invariant (between commands): every nonce in `[nonce, pending_end)` is in `txs` and pending,
/// `pending_end` is not in `txs`, every other entry of `txs` is above `pending_end` and queued.
#[derive(Clone, Debug, Default)]
pub(crate) struct Sender {
    /// Committed nonce: the next nonce the chain will accept from this sender.
    pub(crate) nonce: u64,
    /// First nonce at or above `nonce` that is not in the pool.
    pub(crate) pending_end: u64,
    /// The sender's transactions by nonce.
    pub(crate) txs: BTreeMap<u64, Slot>,
    /// Position in the idle queue while the sender has no transaction.
    pub(crate) idle_seq: Option<u64>,
}

impl Sender {
    /// The slot of the lowest nonce below `nonce`, if any.
    pub(crate) fn first_below(&self, nonce: u64) -> Option<Slot> {
        self.txs.first_key_value().filter(|(n, _)| **n < nonce).map(|(_, &slot)| slot)
    }
}

/// Senders by address.
#[derive(Clone, Debug, Default)]
pub(crate) struct SenderTable {
    ids: AddressMap<u32>,
    slab: Vec<Option<(Address, Sender)>>,
    free: Vec<u32>,
}

impl SenderTable {
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    pub(crate) fn get(&self, address: &Address) -> Option<&Sender> {
        let id = *self.ids.get(&AddressKey(*address))?;
        self.slab.get(id as usize)?.as_ref().map(|(_, s)| s)
    }

    pub(crate) fn get_mut(&mut self, address: &Address) -> Option<&mut Sender> {
        let id = *self.ids.get(&AddressKey(*address))?;
        self.slab.get_mut(id as usize)?.as_mut().map(|(_, s)| s)
    }

    /// The sender, created empty (nonce 0) when unknown.
    pub(crate) fn get_or_default(&mut self, address: Address) -> &mut Sender {
        let id = match self.ids.get(&AddressKey(address)) {
            Some(&id) => id,
            None => self.insert(address, Sender::default()),
        };
        match self.slab.get_mut(id as usize) {
            Some(Some((_, s))) => s,
            // `ids` only ever holds live slots; anything else is a bug in this module.
            _ => unreachable!("sender index points at a free slot"),
        }
    }

    /// Inserts or replaces a sender, returning its slot.
    pub(crate) fn insert(&mut self, address: Address, sender: Sender) -> u32 {
        if let Some(&id) = self.ids.get(&AddressKey(address)) {
            if let Some(slot) = self.slab.get_mut(id as usize) {
                *slot = Some((address, sender));
            }
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.slab.get_mut(id as usize) {
                    *slot = Some((address, sender));
                }
                id
            }
            None => {
                self.slab.push(Some((address, sender)));
                u32::try_from(self.slab.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.ids.insert(AddressKey(address), id);
        id
    }

    pub(crate) fn remove(&mut self, address: &Address) -> Option<Sender> {
        let id = self.ids.remove(&AddressKey(*address))?;
        self.free.push(id);
        self.slab.get_mut(id as usize)?.take().map(|(_, s)| s)
    }

    /// Every sender in arena order: only for order-independent work (see the module docs).
    pub(crate) fn values_unordered(&self) -> impl Iterator<Item = &Sender> {
        self.slab.iter().flatten().map(|(_, s)| s)
    }

    /// Every sender in arena order, mutably: only for order-independent work.
    pub(crate) fn values_unordered_mut(&mut self) -> impl Iterator<Item = &mut Sender> {
        self.slab.iter_mut().flatten().map(|(_, s)| s)
    }

    /// Every sender in address order.
    pub(crate) fn sorted(&self) -> Vec<(&Address, &Sender)> {
        let mut v: Vec<(&Address, &Sender)> =
            self.slab.iter().flatten().map(|(a, s)| (a, s)).collect();
        v.sort_unstable_by_key(|(a, _)| *a);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_order_comes_from_addresses() {
        let mut t = SenderTable::default();
        let (a, b, c) = (Address([3; 20]), Address([1; 20]), Address([2; 20]));
        t.get_or_default(a).nonce = 1;
        t.get_or_default(b).nonce = 2;
        assert_eq!(t.remove(&a).map(|s| s.nonce), Some(1));
        t.get_or_default(c).nonce = 3;
        assert_eq!(t.len(), 2);
        let order: Vec<u64> = t.sorted().iter().map(|(_, s)| s.nonce).collect();
        assert_eq!(order, vec![2, 3]);
        assert!(t.get(&a).is_none());
        assert_eq!(t.values_unordered().count(), 2);
    }
}
