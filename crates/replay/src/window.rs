//! The reopen window: bodies of recently included transactions, kept so a `tx_reopened` fact
//! (which names only a hash) can put the transaction back into the view after a reorg.
//!
//! Bounded by [`REOPEN_WINDOW_HEIGHTS`] heights and [`REOPEN_BODIES_MAX`] bodies, oldest heights
//! first. Each height keeps its bodies by value, in inclusion order, in one list; a lookup-only
//! [`TxIndex`] says where the body of a hash is (its height and place in that list). A body
//! reopened (or included again) leaves a stale copy in its old list, which the index no longer
//! names: dropping a height removes from the index only the bodies it still names, then clears
//! the list, whose memory the next height reuses. The encoding lists the bodies the index names,
//! sorted by hash, so it is the one a `BTreeMap` by hash gave (the first layout).
//!
//! Why by value: the pool view boxes each admitted transaction. The previous layout moved that
//! box into the window and freed it 64 heights later, a block's worth at a time, by when its
//! lines had left the cache; the allocator then handed those cold boxes to the next admissions,
//! whose writes and reads waited on them. Copying the body into the height's list instead frees
//! the box at once, while it is in the cache, for the next admission to reuse (see
//! `docs/design/replay.md`, "seventh look").

use std::collections::{BTreeMap, btree_map::Entry};

use mempulse_primitives::{
    Decode, DecodeError, Encode, Height, Reader, Tx, TxHash,
    codec::{decode_tx_without_raw, encode_tx_without_raw},
};

use crate::{
    config::{REOPEN_BODIES_MAX, REOPEN_WINDOW_HEIGHTS},
    lookup::TxIndex,
    state::put_count,
};

/// Included bodies by height, and where each hash's body is.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReopenWindow {
    /// The height and list position of every body held (one per hash).
    at: TxIndex<(Height, u32)>,
    /// Bodies included at each height, in inclusion order; some are stale (the index names
    /// another place for their hash, or none).
    by_height: BTreeMap<Height, Vec<Tx>>,
    /// The list of the last height dropped, emptied, for the next height to fill.
    spare: Vec<Tx>,
}

impl ReopenWindow {
    /// Keeps `tx`'s body, included at `height`, then drops the oldest heights beyond
    /// [`REOPEN_BODIES_MAX`] bodies.
    pub(crate) fn keep(&mut self, height: Height, mut tx: Tx) {
        if !tx.raw.is_empty() {
            tx.raw = Default::default();
        }
        let hash = tx.hash;
        // Included again at the same height: the new body takes the old one's place.
        if let Some(&(h, place)) = self.at.get(&hash)
            && h == height
            && let Some(old) =
                self.by_height.get_mut(&height).and_then(|l| l.get_mut(place as usize))
        {
            *old = tx;
            return;
        }
        let list = match self.by_height.entry(height) {
            Entry::Occupied(list) => list.into_mut(),
            Entry::Vacant(slot) => slot.insert(core::mem::take(&mut self.spare)),
        };
        // Included again: the new place wins, the old copy goes stale.
        push(&mut self.at, list, height, tx);
        while self.at.len() > REOPEN_BODIES_MAX {
            if !self.drop_lowest_height() {
                break;
            }
        }
    }

    /// Takes the body of `hash` out of the window, with the height it was included at.
    pub(crate) fn take(&mut self, hash: &TxHash) -> Option<(Height, Tx)> {
        let (height, place) = self.at.remove(hash)?;
        let body = self.by_height.get(&height)?.get(place as usize)?;
        Some((height, body.clone()))
    }

    /// Whether the index names `place` of `height` for `hash`.
    fn names(&self, hash: &TxHash, height: Height, place: usize) -> bool {
        self.at.get(hash).is_some_and(|at| is_at(at, height, place))
    }

    fn drop_lowest_height(&mut self) -> bool {
        let Some((height, mut list)) = self.by_height.pop_first() else { return false };
        for (place, body) in list.iter().enumerate() {
            // Only the copy the index names: a stale one's hash may be held elsewhere.
            self.at.remove_if(&body.hash, |at| is_at(at, height, place));
        }
        list.clear();
        if list.capacity() > self.spare.capacity() {
            self.spare = list;
        }
        true
    }

    /// Forgets bodies included at or below `height - REOPEN_WINDOW_HEIGHTS`.
    pub(crate) fn trim(&mut self, height: Height) {
        let keep_above = Height(height.0.saturating_sub(REOPEN_WINDOW_HEIGHTS));
        while self.by_height.first_key_value().is_some_and(|(h, _)| *h <= keep_above) {
            self.drop_lowest_height();
        }
    }

    /// Appends `u32 n | n × (height u64, Tx without its raw bytes)`, ascending by hash.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        let mut held: Vec<(&TxHash, Height, &Tx)> = self
            .by_height
            .iter()
            .flat_map(|(height, list)| list.iter().enumerate().map(move |(p, tx)| (*height, p, tx)))
            .filter(|(height, place, tx)| self.names(&tx.hash, *height, *place))
            .map(|(height, _, tx)| (&tx.hash, height, tx))
            .collect();
        held.sort_unstable_by_key(|(hash, _, _)| *hash);
        debug_assert_eq!(held.len(), self.at.len(), "every body is listed at its place");
        put_count(out, held.len());
        for (_, height, tx) in held {
            height.encode(out);
            encode_tx_without_raw(tx, out);
        }
    }

    /// Reads what [`ReopenWindow::encode`] wrote: bodies strictly ascending by hash.
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut window = Self::default();
        // A body encodes to at least 9 bytes.
        let count = r.count(9)?;
        let mut last: Option<TxHash> = None;
        for _ in 0..count {
            let offset = r.position();
            let height = Height::decode(r)?;
            let tx = decode_tx_without_raw(r)?;
            if last.is_some_and(|last| last >= tx.hash) {
                return Err(DecodeError::InvalidValue { offset, what: "replay included body" });
            }
            last = Some(tx.hash);
            push(&mut window.at, window.by_height.entry(height).or_default(), height, tx);
        }
        Ok(window)
    }
}

/// Appends `tx` to `list` (the bodies of `height`) and points the index at it.
fn push(at: &mut TxIndex<(Height, u32)>, list: &mut Vec<Tx>, height: Height, tx: Tx) {
    // A list never holds 2^32 bodies (they would not fit in memory).
    let place = u32::try_from(list.len()).unwrap_or(u32::MAX);
    at.insert(tx.hash, (height, place));
    list.push(tx);
}

/// Whether an index entry names `place` of `height`.
fn is_at(&(h, p): &(Height, u32), height: Height, place: usize) -> bool {
    h == height && p as usize == place
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use mempulse_primitives::{Address, Fees, Nonce, TxType};
    use proptest::prelude::*;

    use super::*;

    fn tx(n: u8) -> Box<Tx> {
        Box::new(Tx {
            hash: TxHash([n; 32]),
            sender: Address([n; 20]),
            nonce: Nonce(u64::from(n)),
            gas_limit: 21_000,
            fees: Fees { max_fee_per_gas: 2, max_priority_fee_per_gas: 1 },
            tx_type: TxType::DynamicFee,
            chain_id: None,
            encoded_size: 0,
            raw: Default::default(),
        })
    }

    /// The previous layout: bodies by hash, hash sets by height.
    #[derive(Default)]
    struct Model {
        bodies: BTreeMap<TxHash, (Height, Box<Tx>)>,
        by_height: BTreeMap<Height, BTreeSet<TxHash>>,
    }

    impl Model {
        fn keep(&mut self, height: Height, tx: Box<Tx>) {
            let hash = tx.hash;
            if let Some((old, _)) = self.bodies.insert(hash, (height, tx))
                && let Some(set) = self.by_height.get_mut(&old)
            {
                set.remove(&hash);
            }
            self.by_height.entry(height).or_default().insert(hash);
        }

        fn take(&mut self, hash: &TxHash) -> Option<(Height, Box<Tx>)> {
            let (height, tx) = self.bodies.remove(hash)?;
            if let Some(set) = self.by_height.get_mut(&height) {
                set.remove(hash);
            }
            Some((height, tx))
        }

        fn trim(&mut self, height: Height) {
            let keep_above = Height(height.0.saturating_sub(REOPEN_WINDOW_HEIGHTS));
            while self.by_height.first_key_value().is_some_and(|(h, _)| *h <= keep_above) {
                if let Some((_, set)) = self.by_height.pop_first() {
                    for hash in set {
                        self.bodies.remove(&hash);
                    }
                }
            }
        }

        fn encode(&self) -> Vec<u8> {
            let mut out = Vec::new();
            put_count(&mut out, self.bodies.len());
            for (height, tx) in self.bodies.values() {
                height.encode(&mut out);
                tx.encode(&mut out);
            }
            out
        }
    }

    #[test]
    fn including_a_body_again_at_its_height_replaces_it_in_place() {
        let mut window = ReopenWindow::default();
        for _ in 0..100 {
            window.keep(Height(5), *tx(1));
        }
        window.keep(Height(6), *tx(1));
        window.keep(Height(6), *tx(2));
        let lens: Vec<usize> = window.by_height.values().map(Vec::len).collect();
        assert_eq!(lens, [1, 2], "one copy at 5 (now stale), two bodies at 6");
        assert_eq!(window.at.len(), 2);
        window.trim(Height(5 + REOPEN_WINDOW_HEIGHTS));
        assert_eq!(window.by_height.len(), 1);
        assert_eq!(window.at.len(), 2, "dropping height 5 keeps the body included again at 6");
        assert_eq!(
            window.take(&TxHash([1; 32])).map(|(h, tx)| (h, tx.hash)),
            Some((Height(6), TxHash([1; 32])))
        );
        assert_eq!(window.take(&TxHash([1; 32])), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Inclusions (again at the same or another height), reopens and trims give the
        /// previous layout's bodies and encoding.
        #[test]
        fn the_window_behaves_as_the_model(
            ops in prop::collection::vec((0..3u8, 0..12u8, 0..200u64), 0..200),
        ) {
            let (mut window, mut model) = (ReopenWindow::default(), Model::default());
            for (op, n, height) in ops {
                let (hash, height) = (TxHash([n; 32]), Height(height));
                match op {
                    0 => {
                        window.keep(height, *tx(n));
                        model.keep(height, tx(n));
                    }
                    1 => {
                        let got = window.take(&hash).map(|(h, tx)| (h, tx.hash));
                        prop_assert_eq!(got, model.take(&hash).map(|(h, tx)| (h, tx.hash)));
                    }
                    _ => {
                        window.trim(height);
                        model.trim(height);
                    }
                }
                prop_assert_eq!(window.at.len(), model.bodies.len());
            }
            let mut bytes = Vec::new();
            window.encode(&mut bytes);
            prop_assert_eq!(&bytes, &model.encode());
            let mut r = Reader::new(&bytes);
            let back = ReopenWindow::decode(&mut r).unwrap();
            r.finish().unwrap();
            let mut again = Vec::new();
            back.encode(&mut again);
            prop_assert_eq!(again, bytes);
        }
    }
}
