//! `AddTxs`: CheckTx inline, then admission, replacement, eviction and promotion.

use mempulse_primitives::{EventKind, EvictReason, Subpool, Tx};

use crate::Mempool;
use crate::check::Plan;

impl Mempool {
    /// Checks and admits a batch in order, returning one or more facts per transaction.
    ///
    /// Per transaction, in order: `tx_evicted{pool_full}` for each chain head evicted to make
    /// room (and `tx_evicted{sender_reset}` for its later nonces), then either
    /// `tx_rejected{reason}`, or `tx_replaced` followed by `tx_admitted`, or `tx_admitted`
    /// followed by `tx_promoted` for each queued transaction whose gap it closed.
    pub fn add_txs(&mut self, txs: impl IntoIterator<Item = Tx>) -> Vec<EventKind> {
        let txs = txs.into_iter();
        // Usually one fact per transaction.
        let mut facts = Vec::with_capacity(txs.size_hint().0);
        self.reserve(txs.size_hint().0);
        for tx in txs {
            self.add_one(tx, &mut facts);
        }
        self.trim_idle();
        facts
    }

    fn add_one(&mut self, mut tx: Tx, facts: &mut Vec<EventKind>) {
        crate::check::normalize(&mut tx);
        if self.may_need_room(tx.encoded_size) {
            self.ensure_eviction_index();
        }
        match self.plan(&tx) {
            Err(reason) => facts.push(EventKind::TxRejected { hash: tx.hash, reason }),
            Ok(plan) => self.admit(tx, plan, facts),
        }
    }

    /// Applies a successful [`Plan`].
    pub(crate) fn admit(&mut self, tx: Tx, plan: Plan, facts: &mut Vec<EventKind>) {
        for victim in plan.victims {
            self.evict_chain(victim, EvictReason::PoolFull, None, facts);
        }
        if let Some(old_slot) = plan.replaced {
            let old = self.remove(old_slot);
            facts.push(EventKind::TxReplaced {
                old: old.tx.hash,
                new: tx.hash,
                sender: tx.sender,
                nonce: tx.nonce,
            });
            let subpool = old.subpool();
            self.insert(tx.clone(), old.pending);
            facts.push(EventKind::TxAdmitted { tx, subpool });
            return;
        }
        let (sender, nonce) = (tx.sender, tx.nonce.get());
        // Evicting later nonces of this sender (the only victims it can lose) never moves
        // its next nonce, so the planned one still holds.
        let pending = nonce == plan.next_nonce;
        let subpool = if pending { Subpool::Pending } else { Subpool::Queued };
        let slot = self.insert(tx.clone(), pending);
        facts.push(EventKind::TxAdmitted { tx, subpool });
        if pending {
            self.extend_pending(sender, slot, facts);
        }
    }

    /// Sets the sender's `pending_end` past the run that continues after the pending `slot`,
    /// promoting the queued entries it passes (with a `tx_promoted` fact each).
    fn extend_pending(
        &mut self,
        sender: mempulse_primitives::Address,
        slot: crate::pool::Slot,
        facts: &mut Vec<EventKind>,
    ) {
        let mut end = self.entry(slot).tx.nonce.get() + 1;
        let mut cursor = self.entry(slot).next;
        while let Some(slot) = cursor {
            if !self.entry(slot).pending {
                self.set_pending(slot, true);
                facts.push(EventKind::TxPromoted { hash: self.entry(slot).tx.hash });
            }
            end += 1;
            cursor = self.entry(slot).next;
        }
        if let Some(s) = self.senders.get_mut(&sender) {
            s.pending_end = end;
        }
    }
}
