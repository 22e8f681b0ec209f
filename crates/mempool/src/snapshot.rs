//! Snapshot, restore and digest: one canonical encoding of the whole state.
//!
//! Layout (all integers little-endian, fixed width; `opt<T>` is `u8 0` or `u8 1 | T`):
//! ```text
//! header    "MPMP" | u16 version (1)
//! config    u32 max_txs | u64 max_pool_bytes | u32 max_tx_bytes | u32 max_txs_per_sender
//!           | u64 nonce_window | u32 replacement_bump_percent | u32 committed_cache_size
//!           | u64 ttl_heights | u8 ordering | u128 min_priority_fee_per_gas
//!           | u64 max_block_gas | u128 initial_base_fee_per_gas | u32 max_idle_senders
//! state     u64 height | u128 base_fee | u64 next_seq | u64 next_cache_seq | u64 next_idle_seq
//! senders   u32 count | count × (address[20] | u64 nonce | opt<u64 idle_seq>), address order
//! txs       u32 count | count × (u64 seq | u64 admitted_at | u8 pending | tx), seq order
//!   tx      the `Tx` layout of `mempulse_primitives::codec` (golden-vectored there); its
//!           `encoded_size` is `raw.len()`, which admission guarantees
//! committed u32 count | count × (u64 cache_seq | hash[32]), cache-seq order
//! ```
//! Arena slots are not encoded: they are an implementation detail that never reaches output.
//! The digest is SHA-256 over exactly these bytes ([`DigestWriter`]), streamed without
//! building them.

use mempulse_primitives::codec::{Decode, Encode};
use mempulse_primitives::{Address, Digest, DigestWriter, Height, Tx, TxHash};

use crate::pool::Entry;
use crate::senders::Sender;
use crate::{Error, Mempool, MempoolConfig, OrderingPolicy, Result, SnapshotErrorKind};

/// First bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 4] = *b"MPMP";
/// Snapshot format version written by this build.
pub const SNAPSHOT_VERSION: u16 = 1;

/// Where encoded bytes go: a buffer or a hasher.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
    fn put_tx(&mut self, tx: &Tx);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    fn put_tx(&mut self, tx: &Tx) {
        tx.encode(self);
    }
}

impl Sink for DigestWriter {
    fn put(&mut self, bytes: &[u8]) {
        self.update(bytes);
    }

    fn put_tx(&mut self, tx: &Tx) {
        self.update_encoded(tx);
    }
}

/// Writes a collection length; every collection is bounded by `u32` config caps.
fn put_count(out: &mut impl Sink, n: usize) {
    out.put(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

impl Mempool {
    /// The canonical encoding of the whole state (see the module docs for the layout).
    #[must_use]
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(64 + self.len * 160 + usize::try_from(self.bytes).unwrap_or(0));
        self.encode(&mut out);
        out
    }

    /// SHA-256 of [`Self::snapshot`]: two replicas agree on it exactly when their states are
    /// equal.
    #[must_use]
    pub fn digest(&self) -> Digest {
        let mut w = DigestWriter::new();
        self.encode(&mut w);
        w.finish()
    }

    fn encode(&self, out: &mut impl Sink) {
        out.put(&SNAPSHOT_MAGIC);
        out.put(&SNAPSHOT_VERSION.to_le_bytes());
        encode_config(&self.config, out);
        out.put(&self.height.get().to_le_bytes());
        out.put(&self.base_fee.to_le_bytes());
        out.put(&self.next_seq.to_le_bytes());
        out.put(&self.next_cache_seq.to_le_bytes());
        out.put(&self.next_idle_seq.to_le_bytes());
        put_count(out, self.senders.len());
        for (addr, s) in self.senders.sorted() {
            out.put(&addr.0);
            out.put(&s.nonce.to_le_bytes());
            match s.idle_seq {
                None => out.put(&[0]),
                Some(seq) => {
                    out.put(&[1]);
                    out.put(&seq.to_le_bytes());
                }
            }
        }
        put_count(out, self.len);
        // Arena slots differ between replicas: order by the unique admission seq.
        let mut order: Vec<(u64, u32)> = (0..)
            .zip(&self.slab)
            .filter_map(|(slot, e)| e.as_ref().map(|e| (e.seq, slot)))
            .collect();
        order.sort_unstable();
        for (_, slot) in order {
            let e = self.entry(slot);
            out.put(&e.seq.to_le_bytes());
            out.put(&e.admitted_at.get().to_le_bytes());
            out.put(&[u8::from(e.pending)]);
            out.put_tx(&e.tx);
        }
        put_count(out, self.committed.len());
        for (seq, hash) in &self.committed {
            out.put(&seq.to_le_bytes());
            out.put(&hash.0);
        }
    }

    /// Rebuilds a pool from [`Self::snapshot`] bytes.
    ///
    /// # Errors
    /// [`Error::Snapshot`] with the byte offset and what was wrong: bad magic or version,
    /// truncation, trailing bytes, an unknown code, an invalid configuration, or values that
    /// break a pool invariant.
    pub fn restore(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        if r.array::<4>()? != SNAPSHOT_MAGIC {
            return Err(r.fail(SnapshotErrorKind::BadMagic));
        }
        let version = r.u16()?;
        if version != SNAPSHOT_VERSION {
            return Err(r.fail(SnapshotErrorKind::UnsupportedVersion(version)));
        }
        let config = decode_config(&mut r)?;
        let mut pool = Self::new(config).map_err(|_| r.fail(SnapshotErrorKind::InvalidConfig))?;
        pool.height = Height(r.u64()?);
        pool.base_fee = r.u128()?;
        pool.next_seq = r.u64()?;
        pool.next_cache_seq = r.u64()?;
        pool.next_idle_seq = r.u64()?;
        decode_senders(&mut pool, &mut r)?;
        decode_entries(&mut pool, &mut r)?;
        decode_committed(&mut pool, &mut r)?;
        if r.pos != bytes.len() {
            return Err(r.fail(SnapshotErrorKind::TrailingBytes));
        }
        if !pool.restored_state_is_consistent() {
            return Err(r.fail(SnapshotErrorKind::Inconsistent));
        }
        Ok(pool)
    }

    /// Checks what decoding alone cannot: caps, sender chains and the derived subpools.
    fn restored_state_is_consistent(&mut self) -> bool {
        let c = &self.config;
        if self.len > c.max_txs as usize || self.bytes > c.max_pool_bytes {
            return false;
        }
        if self.committed.len() > c.committed_cache_size as usize
            || self.idle.len() > c.max_idle_senders as usize
        {
            return false;
        }
        let too_big =
            |e: &Entry| e.tx.encoded_size > c.max_tx_bytes || e.tx.gas_limit > c.max_block_gas;
        if self.slab.iter().flatten().any(too_big) {
            return false;
        }
        for s in self.senders.values_unordered_mut() {
            if s.txs.len() > c.max_txs_per_sender as usize
                || s.idle_seq.is_some() != s.txs.is_empty()
            {
                return false;
            }
            if s.txs.is_empty() && s.nonce == 0 {
                return false;
            }
            if s.txs.first_key_value().is_some_and(|(&n, _)| n < s.nonce) {
                return false;
            }
            let mut end = s.nonce;
            while s.txs.contains_key(&end) {
                end += 1;
            }
            s.pending_end = end;
        }
        self.senders.values_unordered().all(|s| {
            s.txs.iter().all(|(&n, &slot)| {
                let Some(Some(e)) = self.slab.get(slot as usize) else { return false };
                e.pending == (n < s.pending_end) && e.seq < self.next_seq
            })
        })
    }
}

fn encode_config(c: &MempoolConfig, out: &mut impl Sink) {
    out.put(&c.max_txs.to_le_bytes());
    out.put(&c.max_pool_bytes.to_le_bytes());
    out.put(&c.max_tx_bytes.to_le_bytes());
    out.put(&c.max_txs_per_sender.to_le_bytes());
    out.put(&c.nonce_window.to_le_bytes());
    out.put(&c.replacement_bump_percent.to_le_bytes());
    out.put(&c.committed_cache_size.to_le_bytes());
    out.put(&c.ttl_heights.to_le_bytes());
    out.put(&[c.ordering.code()]);
    out.put(&c.min_priority_fee_per_gas.to_le_bytes());
    out.put(&c.max_block_gas.to_le_bytes());
    out.put(&c.initial_base_fee_per_gas.to_le_bytes());
    out.put(&c.max_idle_senders.to_le_bytes());
}

fn decode_config(r: &mut Reader<'_>) -> Result<MempoolConfig> {
    Ok(MempoolConfig {
        max_txs: r.u32()?,
        max_pool_bytes: r.u64()?,
        max_tx_bytes: r.u32()?,
        max_txs_per_sender: r.u32()?,
        nonce_window: r.u64()?,
        replacement_bump_percent: r.u32()?,
        committed_cache_size: r.u32()?,
        ttl_heights: r.u64()?,
        ordering: {
            let code = r.u8()?;
            OrderingPolicy::from_code(code)
                .ok_or_else(|| r.fail(SnapshotErrorKind::UnknownCode(code)))?
        },
        min_priority_fee_per_gas: r.u128()?,
        max_block_gas: r.u64()?,
        initial_base_fee_per_gas: r.u128()?,
        max_idle_senders: r.u32()?,
    })
}

fn decode_tx(r: &mut Reader<'_>) -> Result<Tx> {
    let rest = r.bytes.get(r.pos..).unwrap_or_default();
    let mut tx_reader = mempulse_primitives::Reader::new(rest);
    let tx = Tx::decode(&mut tx_reader).map_err(|e| r.fail(SnapshotErrorKind::InvalidTx(e)))?;
    r.pos += tx_reader.position();
    Ok(tx)
}

fn decode_senders(pool: &mut Mempool, r: &mut Reader<'_>) -> Result<()> {
    let count = r.u32()?;
    let mut previous: Option<Address> = None;
    for _ in 0..count {
        let addr = Address(r.array()?);
        let nonce = r.u64()?;
        let idle_seq = r.opt_u64()?;
        if previous.is_some_and(|p| p >= addr) || idle_seq.is_some_and(|s| s >= pool.next_idle_seq)
        {
            return Err(r.fail(SnapshotErrorKind::Inconsistent));
        }
        previous = Some(addr);
        if let Some(seq) = idle_seq
            && pool.idle.insert(seq, addr).is_some()
        {
            return Err(r.fail(SnapshotErrorKind::Inconsistent));
        }
        pool.senders
            .insert(addr, Sender { nonce, pending_end: nonce, txs: Default::default(), idle_seq });
    }
    Ok(())
}

fn decode_entries(pool: &mut Mempool, r: &mut Reader<'_>) -> Result<()> {
    let count = r.u32()?;
    let mut previous: Option<u64> = None;
    for _ in 0..count {
        let seq = r.u64()?;
        let admitted_at = Height(r.u64()?);
        let pending = match r.u8()? {
            0 => false,
            1 => true,
            code => return Err(r.fail(SnapshotErrorKind::UnknownCode(code))),
        };
        let tx = decode_tx(r)?;
        // A pooled nonce is never `u64::MAX` (CheckTx refuses it).
        let known_sender = tx.nonce.get() < u64::MAX
            && pool
                .senders
                .get(&tx.sender)
                .is_some_and(|s| s.idle_seq.is_none() && !s.txs.contains_key(&tx.nonce.get()));
        if previous.is_some_and(|p| p >= seq) || !known_sender || pool.known.contains_key(&tx.hash)
        {
            return Err(r.fail(SnapshotErrorKind::Inconsistent));
        }
        if pool.len >= pool.config.max_txs as usize {
            return Err(r.fail(SnapshotErrorKind::Inconsistent));
        }
        previous = Some(seq);
        pool.insert_entry(Entry::new(tx, seq, admitted_at, pending));
    }
    Ok(())
}

fn decode_committed(pool: &mut Mempool, r: &mut Reader<'_>) -> Result<()> {
    let count = r.u32()?;
    let mut previous: Option<u64> = None;
    for _ in 0..count {
        let seq = r.u64()?;
        let hash = TxHash(r.array()?);
        if previous.is_some_and(|p| p >= seq)
            || seq >= pool.next_cache_seq
            || pool.known.contains_key(&hash)
        {
            return Err(r.fail(SnapshotErrorKind::Inconsistent));
        }
        if pool.committed.len() >= pool.config.committed_cache_size as usize {
            return Err(r.fail(SnapshotErrorKind::Inconsistent));
        }
        previous = Some(seq);
        pool.committed.insert(seq, hash);
        pool.known.insert(hash, crate::pool::Known::Committed(seq));
    }
    Ok(())
}

/// A bounds-checked cursor over snapshot bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, kind: SnapshotErrorKind) -> Error {
        Error::Snapshot { offset: self.pos as u64, kind }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(slice) = end.and_then(|end| self.bytes.get(self.pos..end)) else {
            return Err(self.fail(SnapshotErrorKind::Truncated));
        };
        self.pos += n;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn u128(&mut self) -> Result<u128> {
        Ok(u128::from_le_bytes(self.array()?))
    }

    fn opt_u64(&mut self) -> Result<Option<u64>> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.u64()?)),
            code => Err(self.fail(SnapshotErrorKind::UnknownCode(code))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::tx;

    fn sample() -> Mempool {
        let mut p = Mempool::new(MempoolConfig::default()).unwrap();
        p.add_txs([tx(1, 0, 5), tx(1, 2, 5), tx(2, 0, 7)]);
        p
    }

    #[test]
    fn header_and_digest_match_the_bytes() {
        let p = sample();
        let bytes = p.snapshot();
        assert_eq!(&bytes[..4], b"MPMP");
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), SNAPSHOT_VERSION);
        assert_eq!(p.digest(), Digest::sha256(&bytes));
    }

    #[test]
    fn restore_rebuilds_links_and_subpools() {
        let p = sample();
        let q = Mempool::restore(&p.snapshot()).unwrap();
        assert_eq!((q.len(), q.pending_len(), q.bytes()), (p.len(), p.pending_len(), p.bytes()));
        assert_eq!(q.next_nonce(&tx(1, 0, 5).sender), mempulse_primitives::Nonce(1));
        let head = q.senders.get(&tx(2, 0, 7).sender).and_then(|s| s.txs.get(&0).copied()).unwrap();
        assert!(q.entry(head).pending && q.entry(head).next.is_none());
    }

    #[test]
    fn restore_refuses_a_flipped_pending_flag() {
        let p = sample();
        let mut bytes = p.snapshot();
        // The first entry's pending byte follows the header, config, state and senders.
        let config_len = 4 + 8 + 4 + 4 + 8 + 4 + 4 + 8 + 1 + 16 + 8 + 16 + 4;
        let senders_len = 4 + 2 * (20 + 8 + 1);
        let at = 6 + config_len + (8 + 16 + 8 + 8 + 8) + senders_len + 4 + 8 + 8;
        assert_eq!(bytes[at], 1);
        bytes[at] = 0;
        let err = Mempool::restore(&bytes).unwrap_err();
        assert!(matches!(err, Error::Snapshot { kind: SnapshotErrorKind::Inconsistent, .. }));
    }
}
