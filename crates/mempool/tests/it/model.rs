//! A small, obviously-correct reference model of the mempool rules: a flat list of entries and
//! full scans everywhere. Slow by design; the real pool must produce the same facts and state.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use mempulse_mempool::{
    BlockLimits, BuiltBlock, MempoolConfig, OrderingPolicy, SKIPPED_MAX, is_sufficient_bump,
};
use mempulse_primitives::{
    Address, EventKind, EvictReason, Height, Nonce, RejectReason, Subpool, Tx, TxHash,
};

#[derive(Clone, Debug)]
pub struct MTx {
    pub tx: Tx,
    pub seq: u64,
    pub admitted_at: u64,
    pub pending: bool,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub cfg: MempoolConfig,
    pub height: u64,
    pub base_fee: u128,
    next_seq: u64,
    pub txs: Vec<MTx>,
    pub nonces: BTreeMap<Address, u64>,
    /// Oldest first.
    pub committed: Vec<TxHash>,
}

impl Model {
    pub fn new(cfg: MempoolConfig) -> Self {
        let base_fee = cfg.initial_base_fee_per_gas;
        Self {
            cfg,
            height: 0,
            base_fee,
            next_seq: 0,
            txs: Vec::new(),
            nonces: BTreeMap::new(),
            committed: Vec::new(),
        }
    }

    pub fn nonce(&self, a: &Address) -> u64 {
        self.nonces.get(a).copied().unwrap_or(0)
    }

    fn find(&self, a: &Address, n: u64) -> Option<usize> {
        self.txs.iter().position(|e| e.tx.sender == *a && e.tx.nonce.get() == n)
    }

    fn next(&self, a: &Address) -> u64 {
        let mut n = self.nonce(a);
        while self.find(a, n).is_some() {
            n += 1;
        }
        n
    }

    fn count_of(&self, a: &Address) -> usize {
        self.txs.iter().filter(|e| e.tx.sender == *a).count()
    }

    fn eff(&self, tx: &Tx) -> Option<u128> {
        tx.fees.effective_tip(self.base_fee)
    }

    /// Eviction fee: `min(tip, max_fee - base_fee)` in signed arithmetic.
    fn evict_fee(&self, tx: &Tx) -> i128 {
        let signed = |v: u128| i128::try_from(v).unwrap();
        signed(tx.fees.max_priority_fee_per_gas)
            .min(signed(tx.fees.max_fee_per_gas) - signed(self.base_fee))
    }

    /// The sender's chain from nonce `n` upward (all its entries with nonce >= n), nonce order.
    fn chain_from(&self, a: &Address, n: u64) -> Vec<TxHash> {
        let mut v: Vec<&MTx> =
            self.txs.iter().filter(|e| e.tx.sender == *a && e.tx.nonce.get() >= n).collect();
        v.sort_by_key(|e| e.tx.nonce);
        v.iter().map(|e| e.tx.hash).collect()
    }

    fn idx(&self, h: &TxHash) -> Option<usize> {
        self.txs.iter().position(|e| e.tx.hash == *h)
    }

    pub fn check(&self, tx: &Tx) -> Result<(Option<TxHash>, Vec<TxHash>), RejectReason> {
        if self.idx(&tx.hash).is_some() {
            return Err(RejectReason::Duplicate);
        }
        if self.committed.contains(&tx.hash) {
            return Err(RejectReason::AlreadyCommitted);
        }
        let c = &self.cfg;
        if tx.encoded_size > c.max_tx_bytes {
            return Err(RejectReason::TxTooLarge);
        }
        if tx.gas_limit > c.max_block_gas {
            return Err(RejectReason::GasLimitTooHigh);
        }
        if tx.fees.max_priority_fee_per_gas < c.min_priority_fee_per_gas {
            return Err(RejectReason::FeeTooLow);
        }
        let n = tx.nonce.get();
        if n < self.nonce(&tx.sender) {
            return Err(RejectReason::NonceTooLow);
        }
        if n > self.next(&tx.sender) + c.nonce_window {
            return Err(RejectReason::NonceGapTooLarge);
        }
        let replaced = self.find(&tx.sender, n).map(|i| self.txs[i].tx.clone());
        if let Some(old) = &replaced {
            if !is_sufficient_bump(&old.fees, &tx.fees, c.replacement_bump_percent) {
                return Err(RejectReason::ReplacementUnderpriced);
            }
        } else if self.count_of(&tx.sender) >= c.max_txs_per_sender as usize {
            return Err(RejectReason::SenderSlotsFull);
        }
        let old_size = replaced.as_ref().map_or(0, |o| u64::from(o.encoded_size));
        let bytes: u64 = self.txs.iter().map(|e| u64::from(e.tx.encoded_size)).sum();
        let count = self.txs.len() + usize::from(replaced.is_none());
        let mut need_count = count.saturating_sub(c.max_txs as usize);
        let mut need_bytes =
            (bytes - old_size + u64::from(tx.encoded_size)).saturating_sub(c.max_pool_bytes);
        let mut victims = Vec::new();
        let mut seen = BTreeSet::new();
        let mut order: Vec<&MTx> = self.txs.iter().collect();
        order.sort_by_key(|e| (self.evict_fee(&e.tx), Reverse(e.seq)));
        let new_fee = self.evict_fee(tx);
        for e in order {
            if need_count == 0 && need_bytes == 0 {
                break;
            }
            if seen.contains(&e.tx.hash) {
                continue;
            }
            let own = e.tx.sender == tx.sender && e.tx.nonce <= tx.nonce;
            if self.evict_fee(&e.tx) >= new_fee || own {
                return Err(RejectReason::PoolFull);
            }
            victims.push(e.tx.hash);
            for h in self.chain_from(&e.tx.sender, e.tx.nonce.get()) {
                if seen.insert(h) {
                    need_count = need_count.saturating_sub(1);
                    need_bytes = need_bytes
                        .saturating_sub(u64::from(self.txs[self.idx(&h).unwrap()].tx.encoded_size));
                }
            }
        }
        if need_count > 0 || need_bytes > 0 {
            return Err(RejectReason::PoolFull);
        }
        Ok((replaced.map(|o| o.hash), victims))
    }

    fn remove(&mut self, h: &TxHash) -> MTx {
        let i = self.idx(h).unwrap();
        self.txs.remove(i)
    }

    fn evict_chain(
        &mut self,
        h: &TxHash,
        reason: EvictReason,
        cutoff: Option<u64>,
        facts: &mut Vec<EventKind>,
    ) {
        let e = self.txs[self.idx(h).unwrap()].clone();
        let chain = self.chain_from(&e.tx.sender, e.tx.nonce.get());
        for (i, h) in chain.iter().enumerate() {
            let r = self.remove(h);
            let reason = if i == 0 {
                reason
            } else if cutoff.is_some_and(|c| r.admitted_at <= c) {
                EvictReason::Expired
            } else {
                EvictReason::SenderReset
            };
            facts.push(EventKind::TxEvicted { hash: *h, reason });
        }
    }

    fn insert(&mut self, tx: Tx, pending: bool) {
        self.txs.push(MTx { tx, seq: self.next_seq, admitted_at: self.height, pending });
        self.next_seq += 1;
    }

    /// Marks the run from `from` pending (promoting queued ones, unless quiet).
    fn promote_from(
        &mut self,
        a: &Address,
        from: u64,
        quiet: &BTreeSet<TxHash>,
        facts: &mut Vec<EventKind>,
    ) -> u64 {
        let mut n = from;
        while let Some(i) = self.find(a, n) {
            if !self.txs[i].pending {
                self.txs[i].pending = true;
                if !quiet.contains(&self.txs[i].tx.hash) {
                    facts.push(EventKind::TxPromoted { hash: self.txs[i].tx.hash });
                }
            }
            n += 1;
        }
        n
    }

    pub fn add(&mut self, txs: Vec<Tx>) -> Vec<EventKind> {
        let mut facts = Vec::new();
        for tx in txs {
            match self.check(&tx) {
                Err(reason) => facts.push(EventKind::TxRejected { hash: tx.hash, reason }),
                Ok((replaced, victims)) => {
                    for v in victims {
                        self.evict_chain(&v, EvictReason::PoolFull, None, &mut facts);
                    }
                    if let Some(old) = replaced {
                        let o = self.remove(&old);
                        facts.push(EventKind::TxReplaced {
                            old,
                            new: tx.hash,
                            sender: tx.sender,
                            nonce: tx.nonce,
                        });
                        let subpool = if o.pending { Subpool::Pending } else { Subpool::Queued };
                        self.insert(tx.clone(), o.pending);
                        facts.push(EventKind::TxAdmitted { tx, subpool });
                    } else {
                        let (a, n) = (tx.sender, tx.nonce.get());
                        let pending = n == self.next(&a);
                        let subpool = if pending { Subpool::Pending } else { Subpool::Queued };
                        self.insert(tx.clone(), pending);
                        facts.push(EventKind::TxAdmitted { tx, subpool });
                        if pending {
                            self.promote_from(&a, n + 1, &BTreeSet::new(), &mut facts);
                        }
                    }
                }
            }
        }
        facts
    }

    fn fits(limits: &BlockLimits, b: &BuiltBlock, tx: &Tx) -> bool {
        limits.max_bytes.is_none_or(|m| b.total_bytes + u64::from(tx.encoded_size) <= m)
            && limits.max_gas.is_none_or(|m| b.total_gas + tx.gas_limit <= m)
    }

    fn push(b: &mut BuiltBlock, tx: &Tx) {
        b.total_bytes += u64::from(tx.encoded_size);
        b.total_gas += tx.gas_limit;
        b.txs.push(tx.clone());
    }

    pub fn build(&self, limits: BlockLimits) -> BuiltBlock {
        let mut b = BuiltBlock::default();
        let mut next: BTreeMap<Address, u64> = BTreeMap::new();
        let mut blocked: BTreeSet<Address> = BTreeSet::new();
        let mut skipped = 0u32;
        let pending = |a: &Address, n: u64| {
            self.find(a, n).filter(|&i| self.txs[i].pending).map(|i| &self.txs[i])
        };
        match self.cfg.ordering {
            OrderingPolicy::Priority => loop {
                if skipped >= SKIPPED_MAX {
                    break;
                }
                // Best next-needed pending transaction over all unblocked senders.
                let best = self
                    .txs
                    .iter()
                    .filter(|e| e.pending && !blocked.contains(&e.tx.sender))
                    .filter(|e| {
                        e.tx.nonce.get()
                            == next.get(&e.tx.sender).copied().unwrap_or(self.nonce(&e.tx.sender))
                    })
                    .filter(|e| self.eff(&e.tx).is_some())
                    .max_by_key(|e| (self.eff(&e.tx), Reverse(e.seq)));
                let Some(e) = best else { break };
                if Self::fits(&limits, &b, &e.tx) {
                    Self::push(&mut b, &e.tx);
                    skipped = 0;
                    next.insert(e.tx.sender, e.tx.nonce.get() + 1);
                } else {
                    skipped += 1;
                    blocked.insert(e.tx.sender);
                }
            },
            OrderingPolicy::Fifo => {
                let mut order: Vec<&MTx> = self.txs.iter().filter(|e| e.pending).collect();
                order.sort_by_key(|e| e.seq);
                for e in order {
                    if skipped >= SKIPPED_MAX {
                        break;
                    }
                    let a = e.tx.sender;
                    if blocked.contains(&a)
                        || e.tx.nonce.get() != next.get(&a).copied().unwrap_or(self.nonce(&a))
                    {
                        continue;
                    }
                    let mut cur = e;
                    loop {
                        if self.eff(&cur.tx).is_none() {
                            blocked.insert(a);
                            break;
                        }
                        if !Self::fits(&limits, &b, &cur.tx) {
                            skipped += 1;
                            blocked.insert(a);
                            break;
                        }
                        Self::push(&mut b, &cur.tx);
                        skipped = 0;
                        next.insert(a, cur.tx.nonce.get() + 1);
                        match pending(&a, cur.tx.nonce.get() + 1) {
                            Some(later) if later.seq < e.seq => cur = later,
                            _ => break,
                        }
                    }
                }
            }
        }
        b
    }

    fn remember(&mut self, h: TxHash) {
        self.committed.retain(|x| *x != h);
        self.committed.push(h);
        while self.committed.len() > self.cfg.committed_cache_size as usize {
            self.committed.remove(0);
        }
    }

    fn resettle(&mut self, a: &Address, quiet: &BTreeSet<TxHash>, facts: &mut Vec<EventKind>) {
        let nonce = self.nonce(a);
        let mut stale: Vec<&MTx> =
            self.txs.iter().filter(|e| e.tx.sender == *a && e.tx.nonce.get() < nonce).collect();
        stale.sort_by_key(|e| e.tx.nonce);
        let stale: Vec<TxHash> = stale.iter().map(|e| e.tx.hash).collect();
        for h in stale {
            self.remove(&h);
            facts.push(EventKind::TxEvicted { hash: h, reason: EvictReason::Stale });
        }
        let end = self.promote_from(a, nonce, quiet, facts);
        for h in self.chain_from(a, end) {
            if self.txs[self.idx(&h).unwrap()].pending {
                self.remove(&h);
                facts.push(EventKind::TxEvicted { hash: h, reason: EvictReason::SenderReset });
            }
        }
        if nonce == 0 {
            self.nonces.remove(a);
        }
    }

    pub fn commit(
        &mut self,
        height: u64,
        hashes: &[TxHash],
        nonces: &[(Address, Nonce)],
        base_fee: Option<u128>,
    ) -> Vec<EventKind> {
        let mut facts =
            vec![EventKind::BlockCommitted { height: Height(height), txs: hashes.to_vec() }];
        let mut touched = BTreeSet::new();
        for h in hashes {
            if let Some(i) = self.idx(h) {
                let e = self.txs.remove(i);
                let a = e.tx.sender;
                let n = self.nonce(&a).max(e.tx.nonce.get() + 1);
                self.nonces.insert(a, n);
                touched.insert(a);
                facts.push(EventKind::TxIncluded { hash: *h, height: Height(height) });
            }
            self.remember(*h);
        }
        for (a, n) in nonces {
            let v = self.nonce(a).max(n.get());
            self.nonces.insert(*a, v);
            touched.insert(*a);
        }
        for a in touched {
            self.resettle(&a, &BTreeSet::new(), &mut facts);
        }
        if let Some(b) = base_fee {
            self.base_fee = b;
        }
        self.height = height;
        let ttl = self.cfg.ttl_heights;
        if ttl > 0 && height >= ttl {
            let cutoff = height - ttl;
            while let Some(e) = self
                .txs
                .iter()
                .filter(|e| e.admitted_at <= cutoff)
                .min_by_key(|e| (e.admitted_at, e.seq))
            {
                let h = e.tx.hash;
                self.evict_chain(&h, EvictReason::Expired, Some(cutoff), &mut facts);
            }
        }
        facts
    }

    pub fn reorg(
        &mut self,
        fork: u64,
        blocks: &[(u64, Vec<Tx>)],
        nonces: &[(Address, Nonce)],
        base_fee: Option<u128>,
    ) -> Vec<EventKind> {
        let mut facts = vec![EventKind::ReorgDetected {
            fork_height: Height(fork),
            orphaned: blocks.iter().map(|b| Height(b.0)).collect(),
        }];
        self.height = fork;
        if let Some(b) = base_fee {
            self.base_fee = b;
        }
        let mut touched = BTreeSet::new();
        for tx in blocks.iter().flat_map(|b| &b.1) {
            self.committed.retain(|x| *x != tx.hash);
            let cur = self.nonces.get(&tx.sender).copied();
            let n = match cur {
                Some(c) => c.min(tx.nonce.get()),
                None if self.count_of(&tx.sender) > 0 => 0,
                None => tx.nonce.get(),
            };
            self.nonces.insert(tx.sender, n);
            touched.insert(tx.sender);
        }
        for (a, n) in nonces {
            self.nonces.insert(*a, n.get());
            touched.insert(*a);
        }
        let mut quiet = BTreeSet::new();
        for (h, txs) in blocks {
            for tx in txs {
                let verdict = if self.idx(&tx.hash).is_some() {
                    Err(RejectReason::Duplicate)
                } else if self.find(&tx.sender, tx.nonce.get()).is_some() {
                    Err(RejectReason::ReorgConflict)
                } else {
                    self.check_reopen(tx)
                };
                match verdict {
                    Err(reason) => facts.push(EventKind::TxRejected { hash: tx.hash, reason }),
                    Ok(victims) => {
                        for v in victims {
                            self.evict_chain(&v, EvictReason::PoolFull, None, &mut facts);
                        }
                        self.insert(tx.clone(), false);
                        quiet.insert(tx.hash);
                        facts.push(EventKind::TxReopened {
                            hash: tx.hash,
                            orphaned_height: Height(*h),
                        });
                    }
                }
            }
        }
        for a in touched {
            self.resettle(&a, &quiet, &mut facts);
        }
        facts
    }

    /// Reopen checks: `next` counts the whole contiguous run (flags are not settled yet).
    fn check_reopen(&self, tx: &Tx) -> Result<Vec<TxHash>, RejectReason> {
        self.check(tx).map(|(_, victims)| victims)
    }

    pub fn subpool_of(&self, h: &TxHash) -> Option<Subpool> {
        self.idx(h).map(|i| if self.txs[i].pending { Subpool::Pending } else { Subpool::Queued })
    }
}
