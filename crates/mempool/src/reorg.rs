//! Reorg: roll nonces back and reopen orphaned transactions. History is appended, never
//! rewritten: the facts say what happened, the earlier `tx_included` facts stay.

use std::collections::BTreeSet;

use mempulse_primitives::{Address, EventKind, Height, Nonce, RejectReason, Tx};

use crate::check::Plan;
use crate::pool::Known;
use crate::senders::Sender;
use crate::{Error, Mempool, Result};

/// One orphaned block with its transactions in block order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrphanedBlock {
    /// Height of the orphaned block.
    pub height: Height,
    /// Its transactions, in full, in block order.
    pub txs: Vec<Tx>,
}

/// A reorg reported by the chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reorg {
    /// Highest height still on the canonical chain; becomes the pool's height.
    pub fork_height: Height,
    /// The orphaned blocks, in any order (processed by ascending height).
    pub orphaned: Vec<OrphanedBlock>,
    /// Authoritative committed nonces after the reorg; they override the rollback the
    /// orphaned transactions imply, up or down.
    pub nonces: Vec<(Address, Nonce)>,
    /// Base fee per gas after the reorg, when the chain has one.
    pub base_fee_per_gas: Option<u128>,
}

impl Mempool {
    /// Applies a reorg.
    ///
    /// Facts, in order: `reorg_detected`; per orphaned transaction (ascending height, block
    /// order) `tx_reopened`, or `tx_rejected{reason}` with `reorg_conflict` when another
    /// transaction holds its sender and nonce (preceded by any `pool_full` evictions it caused);
    /// then per touched sender in address order `tx_evicted{stale}`, `tx_promoted` and
    /// `tx_evicted{sender_reset}` for pending transactions whose chain now has a gap.
    ///
    /// # Errors
    /// [`Error::InvalidReorg`] when the fork height is not below the current height, or an
    /// orphaned height is outside `fork_height + 1 ..= height` or repeated. The pool is
    /// unchanged.
    pub fn reorg(&mut self, reorg: Reorg) -> Result<Vec<EventKind>> {
        let mut blocks = reorg.orphaned;
        blocks.sort_by_key(|b| b.height);
        self.validate_reorg(reorg.fork_height, &blocks)?;
        let mut facts = vec![EventKind::ReorgDetected {
            fork_height: reorg.fork_height,
            orphaned: blocks.iter().map(|b| b.height).collect(),
        }];
        self.height = reorg.fork_height;
        if let Some(base_fee) = reorg.base_fee_per_gas {
            self.set_base_fee(base_fee);
        }
        let mut touched = BTreeSet::new();
        for tx in blocks.iter().flat_map(|b| &b.txs) {
            self.forget_committed(&tx.hash);
            let nonce = tx.nonce.get();
            match self.senders.get_mut(&tx.sender) {
                Some(s) => s.nonce = s.nonce.min(nonce),
                // A forgotten idle sender: the orphaned nonce is the best bound known.
                None => drop(self.senders.insert(tx.sender, Sender { nonce, ..Sender::default() })),
            }
            touched.insert(tx.sender);
        }
        for &(sender, nonce) in &reorg.nonces {
            self.senders.get_or_default(sender).nonce = nonce.get();
            touched.insert(sender);
        }
        // Until resettled, a touched sender's next nonce is the first gap from its new nonce;
        // entries keep their old flags so resettle can tell what changed.
        for sender in &touched {
            if let Some(s) = self.senders.get_mut(sender) {
                s.pending_end = s.nonce;
                while s.txs.contains_key(&s.pending_end) {
                    s.pending_end += 1;
                }
            }
        }
        let mut reopened = BTreeSet::new();
        for block in blocks {
            for tx in block.txs {
                self.reopen(tx, block.height, &mut reopened, &mut facts);
            }
        }
        for sender in touched {
            // Re-derive the whole run: flags still describe the pre-reorg chain.
            if let Some(s) = self.senders.get_mut(&sender) {
                s.pending_end = s.nonce;
            }
            self.resettle(sender, &reopened, &mut facts);
        }
        self.trim_idle();
        Ok(facts)
    }

    fn validate_reorg(&self, fork_height: Height, blocks: &[OrphanedBlock]) -> Result<()> {
        let current = self.height;
        if fork_height >= current {
            return Err(Error::InvalidReorg { fork_height, height: fork_height, current });
        }
        let mut previous = fork_height;
        for b in blocks {
            if b.height <= previous || b.height > current {
                return Err(Error::InvalidReorg { fork_height, height: b.height, current });
            }
            previous = b.height;
        }
        Ok(())
    }

    /// Re-admits one orphaned transaction as queued; resettle decides its subpool.
    fn reopen(
        &mut self,
        mut tx: Tx,
        orphaned_height: Height,
        reopened: &mut BTreeSet<u32>,
        facts: &mut Vec<EventKind>,
    ) {
        crate::check::normalize(&mut tx);
        if self.may_need_room(tx.encoded_size) {
            self.ensure_eviction_index();
        }
        let hash = tx.hash;
        let verdict = match self.known.get(&hash) {
            Some(Known::Pool(_)) => Err(RejectReason::Duplicate),
            _ => self.plan_reopen(&tx),
        };
        match verdict {
            Err(reason) => facts.push(EventKind::TxRejected { hash, reason }),
            Ok(plan) => {
                for victim in plan.victims {
                    self.evict_chain(
                        victim,
                        mempulse_primitives::EvictReason::PoolFull,
                        None,
                        facts,
                    );
                }
                let (sender, nonce) = (tx.sender, tx.nonce.get());
                let slot = self.insert(tx, false);
                reopened.insert(slot);
                // Keep the chain's end current for the window check of the next reopen;
                // flags are settled later.
                if let Some(s) = self.senders.get_mut(&sender)
                    && s.pending_end == nonce
                {
                    while s.txs.contains_key(&s.pending_end) {
                        s.pending_end += 1;
                    }
                }
                facts.push(EventKind::TxReopened { hash, orphaned_height });
            }
        }
    }

    /// CheckTx for a reopened transaction: the same checks, except that holding the same
    /// sender and nonce as a pooled transaction is a `reorg_conflict` (never a replacement).
    fn plan_reopen(&self, tx: &Tx) -> core::result::Result<Plan, RejectReason> {
        let occupied =
            self.senders.get(&tx.sender).is_some_and(|s| s.txs.contains_key(&tx.nonce.get()));
        if occupied {
            return Err(RejectReason::ReorgConflict);
        }
        self.plan(tx)
    }
}
