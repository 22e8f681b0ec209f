//! The reopen window: bodies of recently included transactions, kept so a `tx_reopened` fact
//! (which names only a hash) can put the transaction back into the view after a reorg.
//!
//! Bounded by [`REOPEN_WINDOW_HEIGHTS`] heights and [`REOPEN_BODIES_MAX`] bodies, oldest heights
//! first. Bodies are found by hash in a lookup-only [`TxIndex`]; the heights are an ordered map
//! of hash lists with lazy deletion: a body reopened (or included again at another height)
//! leaves its hash in the old list, and dropping a height removes only the bodies still
//! included at that height. The encoding lists the bodies by hash, collected from the lists and
//! sorted, so it is the one a `BTreeMap` by hash gave (the previous layout, whose inserts and
//! removes compared 32-byte keys down a tree on every inclusion).

use std::collections::BTreeMap;

use mempulse_primitives::{
    Decode, DecodeError, Encode, Height, Reader, Tx, TxHash,
    codec::{decode_tx_without_raw, encode_tx_without_raw},
};

use crate::{
    config::{REOPEN_BODIES_MAX, REOPEN_WINDOW_HEIGHTS},
    lookup::TxIndex,
    state::put_count,
};

/// Included bodies by hash, and their hashes by height.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReopenWindow {
    bodies: TxIndex<(Height, Box<Tx>)>,
    /// Hashes included at each height; some may have left (reopened, or included again at
    /// another height) and are skipped.
    by_height: BTreeMap<Height, Vec<TxHash>>,
}

impl ReopenWindow {
    /// Keeps `tx`'s body, included at `height`, then drops the oldest heights beyond
    /// [`REOPEN_BODIES_MAX`] bodies.
    pub(crate) fn keep(&mut self, height: Height, tx: Box<Tx>) {
        let hash = tx.hash;
        let old = self.bodies.insert(hash, (height, tx));
        // Included again at the same height: its hash is in that list already.
        if old.is_none_or(|(old_height, _)| old_height != height) {
            self.by_height.entry(height).or_default().push(hash);
        }
        while self.bodies.len() > REOPEN_BODIES_MAX {
            if !self.drop_lowest_height() {
                break;
            }
        }
    }

    /// Takes the body of `hash` out of the window, with the height it was included at.
    pub(crate) fn take(&mut self, hash: &TxHash) -> Option<(Height, Box<Tx>)> {
        self.bodies.remove(hash)
    }

    fn drop_lowest_height(&mut self) -> bool {
        let Some((height, hashes)) = self.by_height.pop_first() else { return false };
        for hash in hashes {
            // One lookup: a body included again at another height since goes back.
            if let Some((at, body)) = self.bodies.remove(&hash)
                && at != height
            {
                self.bodies.insert(hash, (at, body));
            }
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
        let mut held: Vec<&TxHash> = self
            .by_height
            .iter()
            .flat_map(|(height, hashes)| hashes.iter().map(move |hash| (height, hash)))
            .filter(|(height, hash)| self.bodies.get(hash).is_some_and(|(h, _)| h == *height))
            .map(|(_, hash)| hash)
            .collect();
        held.sort_unstable();
        held.dedup();
        debug_assert_eq!(held.len(), self.bodies.len(), "every body is listed at its height");
        put_count(out, held.len());
        for hash in held {
            if let Some((height, tx)) = self.bodies.get(hash) {
                height.encode(out);
                encode_tx_without_raw(tx, out);
            }
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
            window.by_height.entry(height).or_default().push(tx.hash);
            window.bodies.insert(tx.hash, (height, Box::new(tx)));
        }
        Ok(window)
    }
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
                        window.keep(height, tx(n));
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
                prop_assert_eq!(window.bodies.len(), model.bodies.len());
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
