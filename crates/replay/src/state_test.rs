#![allow(
    clippy::panic,
    clippy::cast_possible_truncation,
    reason = "test code: fixed small values, and a failed assumption is a failed test"
)]

use mempulse_primitives::{Address, Fees, Reader, TxType};

use super::*;
use crate::REOPEN_WINDOW_HEIGHTS;

fn tx(sender: u8, nonce: u64, salt: u8) -> Tx {
    Tx {
        hash: TxHash([sender.wrapping_mul(31) ^ (nonce as u8).wrapping_mul(7) ^ salt; 32]),
        sender: Address([sender; 20]),
        nonce: Nonce(nonce),
        gas_limit: 21_000,
        fees: Fees::legacy(10),
        tx_type: TxType::Legacy,
        chain_id: None,
        encoded_size: 0,
        raw: Default::default(),
    }
}

struct Run {
    state: ReplicatedState,
    index: u64,
    displaced: Vec<TxHash>,
}

impl Run {
    fn new() -> Self {
        Self { state: ReplicatedState::default(), index: 0, displaced: Vec::new() }
    }

    #[allow(clippy::needless_pass_by_value, reason = "the tests build each kind inline")]
    fn apply(&mut self, kind: EventKind) {
        self.index += 1;
        let (seq, index) = (Seq(self.index), RaftIndex(self.index));
        self.state.apply(seq, index, &kind, &mut self.displaced);
    }

    /// The state rebuilt from its encoding: same digest means the running commitment equals
    /// the one computed from scratch.
    fn reloaded(&self) -> ReplicatedState {
        let mut bytes = Vec::new();
        self.state.encode(&mut bytes);
        let mut r = Reader::new(&bytes);
        let back = ReplicatedState::decode(&mut r).unwrap();
        r.finish().unwrap();
        let mut again = Vec::new();
        back.encode(&mut again);
        assert_eq!(again, bytes, "canonical encoding");
        back
    }

    fn check(&self) {
        let back = self.reloaded();
        assert_eq!(back.commitment, self.state.commitment);
        assert_eq!(back.pending, self.state.pending);
        assert_eq!(back.digest(), self.state.digest());
    }
}

fn admitted(tx: Tx, subpool: Subpool) -> EventKind {
    EventKind::TxAdmitted { tx, subpool }
}

#[test]
fn admission_replacement_promotion_and_removal_keep_the_commitment_exact() {
    let mut run = Run::new();
    let (a0, a1, a1b) = (tx(1, 0, 0), tx(1, 1, 0), tx(1, 1, 9));
    run.apply(admitted(a0.clone(), Subpool::Pending));
    run.apply(admitted(a1.clone(), Subpool::Queued));
    run.check();
    assert_eq!((run.state.pool_len(), run.state.pending), (2, 1));
    run.apply(EventKind::TxReplaced {
        old: a1.hash,
        new: a1b.hash,
        sender: a1.sender,
        nonce: a1.nonce,
    });
    run.apply(admitted(a1b.clone(), Subpool::Queued));
    run.check();
    let slot = run.state.slot(&a1.sender, a1.nonce).unwrap();
    assert_eq!((slot.replaced.as_slice(), slot.replaced_total), ([a1.hash].as_slice(), 1));
    run.apply(EventKind::TxPromoted { hash: a1b.hash });
    assert_eq!(run.state.pending, 2);
    run.check();
    run.apply(EventKind::BlockCommitted { height: Height(1), txs: vec![a0.hash] });
    run.apply(EventKind::TxIncluded { hash: a0.hash, height: Height(1) });
    run.apply(EventKind::TxEvicted {
        hash: a1b.hash,
        reason: mempulse_primitives::EvictReason::Stale,
    });
    run.check();
    assert_eq!((run.state.pool_len(), run.state.pending, run.state.anomalies), (0, 0, 0));
    assert_eq!(run.state.commitment, Commitment::default(), "an empty view commits to zero");
    assert_eq!(run.state.height, Height(1));
}

#[test]
fn replacement_history_is_capped_and_counted() {
    let mut run = Run::new();
    let mut current = tx(2, 0, 0);
    run.apply(admitted(current.clone(), Subpool::Pending));
    for salt in 1..=(REPLACEMENTS_PER_SLOT_MAX as u8 + 3) {
        let next = tx(2, 0, salt);
        let (sender, nonce) = (current.sender, current.nonce);
        run.apply(EventKind::TxReplaced { old: current.hash, new: next.hash, sender, nonce });
        run.apply(admitted(next.clone(), Subpool::Pending));
        current = next;
        run.check();
    }
    let slot = run.state.slot(&current.sender, current.nonce).unwrap();
    assert_eq!(slot.replaced.len(), REPLACEMENTS_PER_SLOT_MAX);
    assert_eq!(slot.replaced_total, REPLACEMENTS_PER_SLOT_MAX as u32 + 3);
    assert_eq!(slot.replaced.last(), Some(&tx(2, 0, REPLACEMENTS_PER_SLOT_MAX as u8 + 2).hash));
}

#[test]
fn reorg_reopens_included_bodies_and_infers_the_subpool() {
    let mut run = Run::new();
    let (b0, b1, b2) = (tx(3, 0, 0), tx(3, 1, 0), tx(3, 2, 0));
    for t in [&b0, &b1] {
        run.apply(admitted(t.clone(), Subpool::Pending));
    }
    run.apply(admitted(b2, Subpool::Queued));
    run.apply(EventKind::BlockCommitted { height: Height(5), txs: vec![b0.hash, b1.hash] });
    run.apply(EventKind::TxIncluded { hash: b0.hash, height: Height(5) });
    run.apply(EventKind::TxIncluded { hash: b1.hash, height: Height(5) });
    run.apply(EventKind::ReorgDetected { fork_height: Height(4), orphaned: vec![Height(5)] });
    // b0 is the sender's lowest pooled nonce: pending; b1 follows a pending b0: pending.
    run.apply(EventKind::TxReopened { hash: b0.hash, orphaned_height: Height(5) });
    run.apply(EventKind::TxReopened { hash: b1.hash, orphaned_height: Height(5) });
    run.check();
    assert_eq!(run.state.height, Height(4));
    assert_eq!(run.state.pooled(&b1.hash).map(|p| p.subpool), Some(Subpool::Pending));
    assert_eq!(run.state.pending, 2);
    // Reopening again (no body left) and promoting a pending tx are anomalies.
    run.apply(EventKind::TxReopened { hash: b1.hash, orphaned_height: Height(5) });
    run.apply(EventKind::TxPromoted { hash: b0.hash });
    assert_eq!(run.state.anomalies, 2);
    run.check();
}

#[test]
fn reopen_after_a_queued_lower_nonce_is_queued_and_bodies_leave_the_window() {
    let mut run = Run::new();
    let (c0, c2) = (tx(4, 0, 0), tx(4, 2, 0));
    run.apply(admitted(c0, Subpool::Queued));
    run.apply(admitted(c2.clone(), Subpool::Pending));
    run.apply(EventKind::TxIncluded { hash: c2.hash, height: Height(1) });
    run.apply(EventKind::TxReopened { hash: c2.hash, orphaned_height: Height(1) });
    assert_eq!(run.state.pooled(&c2.hash).map(|p| p.subpool), Some(Subpool::Queued));
    run.apply(EventKind::TxIncluded { hash: c2.hash, height: Height(2) });
    run.apply(EventKind::BlockCommitted { height: Height(2 + REOPEN_WINDOW_HEIGHTS), txs: vec![] });
    run.apply(EventKind::TxReopened { hash: c2.hash, orphaned_height: Height(2) });
    assert!(!run.state.contains(&c2.hash), "the body left the reopen window");
    assert_eq!(run.state.anomalies, 1);
    run.check();
}

#[test]
fn an_unannounced_slot_takeover_displaces_the_holder() {
    let mut run = Run::new();
    let (d, d2) = (tx(5, 0, 0), tx(5, 0, 1));
    run.apply(admitted(d.clone(), Subpool::Pending));
    run.apply(admitted(d2.clone(), Subpool::Pending));
    assert_eq!(run.displaced, [d.hash]);
    assert!(!run.state.contains(&d.hash) && run.state.contains(&d2.hash));
    assert_eq!((run.state.anomalies, run.state.pending), (1, 1));
    run.check();
}

#[test]
fn decoding_rejects_unordered_or_inconsistent_slots() {
    let mut run = Run::new();
    run.apply(admitted(tx(6, 0, 0), Subpool::Pending));
    run.apply(admitted(tx(7, 0, 0), Subpool::Pending));
    let mut bytes = Vec::new();
    run.state.encode(&mut bytes);
    // Swap the two slots' sender bytes: keys out of order.
    let first_sender = 40 + 4;
    bytes[first_sender] = 8;
    assert!(ReplicatedState::decode(&mut Reader::new(&bytes)).is_err());
}

#[test]
fn slot_keys_order_exactly_as_sender_then_nonce() {
    // Senders differing in the first, a middle, a word-boundary and the last byte, with low and
    // high byte values, so a word comparison in the wrong byte order would be caught.
    let mut senders = vec![Address([0; 20])];
    for at in [0, 7, 8, 15, 16, 19] {
        for value in [1u8, 0x7f, 0x80, 0xff] {
            let mut a = [0x40u8; 20];
            a[at] = value;
            senders.push(Address(a));
        }
    }
    let nonces = [Nonce(0), Nonce(1), Nonce(0x100), Nonce(u64::MAX)];
    let keys: Vec<(Address, Nonce)> =
        senders.iter().flat_map(|s| nonces.iter().map(move |n| (*s, *n))).collect();
    for a in &keys {
        for b in &keys {
            assert_eq!(SlotKey(a.0, a.1).cmp(&SlotKey(b.0, b.1)), a.cmp(b), "{a:?} vs {b:?}");
        }
    }
}
