//! Seeded synthetic transactions and workloads for tests, benches and `mempulse-bench mempool`.
//!
//! Everything here is a pure function of its inputs and seed: no clock, no global RNG.
//! Transactions carry synthetic `raw` bytes (zeros of the stated size) and a hash derived from
//! their fields, so two different transactions never share a hash.

use bytes::Bytes;
use mempulse_primitives::{Address, Digest, Fees, Nonce, Tx, TxHash, TxType};

/// Shared zero bytes backing synthetic `raw` payloads up to this size without allocating.
static ZEROS: [u8; 4096] = [0; 4096];

/// A deterministic 64-bit generator (SplitMix64): small, fast and seedable.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator with the given seed.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next value.
    pub const fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`0` when `n` is 0).
    pub const fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
}

/// The address of synthetic sender `id`.
#[must_use]
pub fn address(id: u64) -> Address {
    let mut a = [0u8; 20];
    a[12..].copy_from_slice(&id.to_be_bytes());
    Address(a)
}

/// A synthetic transaction, field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxSpec {
    /// Synthetic sender id (see [`address`]).
    pub sender: u64,
    /// Nonce.
    pub nonce: u64,
    /// Max fee per gas.
    pub max_fee: u128,
    /// Max priority fee per gas.
    pub tip: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Encoded size in bytes.
    pub size: u32,
    /// Distinguishes otherwise identical specs (different hash).
    pub salt: u64,
}

impl TxSpec {
    /// A 21 000-gas, 100-byte transaction with max fee and tip both `fee`.
    #[must_use]
    pub const fn new(sender: u64, nonce: u64, fee: u128) -> Self {
        Self { sender, nonce, max_fee: fee, tip: fee, gas_limit: 21_000, size: 100, salt: 0 }
    }

    /// The transaction.
    #[must_use]
    pub fn build(&self) -> Tx {
        let mut fields = Vec::with_capacity(76);
        fields.extend_from_slice(&self.sender.to_le_bytes());
        fields.extend_from_slice(&self.nonce.to_le_bytes());
        fields.extend_from_slice(&self.max_fee.to_le_bytes());
        fields.extend_from_slice(&self.tip.to_le_bytes());
        fields.extend_from_slice(&self.gas_limit.to_le_bytes());
        fields.extend_from_slice(&self.size.to_le_bytes());
        fields.extend_from_slice(&self.salt.to_le_bytes());
        let hash = Digest::sha256(&fields).0;
        let size = self.size as usize;
        let raw = match ZEROS.get(..size) {
            Some(zeros) => Bytes::from_static(zeros),
            None => Bytes::from(vec![0u8; size]),
        };
        Tx {
            hash: TxHash(hash),
            sender: address(self.sender),
            nonce: Nonce(self.nonce),
            gas_limit: self.gas_limit,
            fees: Fees { max_fee_per_gas: self.max_fee, max_priority_fee_per_gas: self.tip },
            tx_type: TxType::DynamicFee,
            chain_id: Some(1),
            encoded_size: self.size,
            raw,
        }
    }
}

/// Shorthand for [`TxSpec::new`]`(sender, nonce, fee).build()`.
#[must_use]
pub fn tx(sender: u64, nonce: u64, fee: u128) -> Tx {
    TxSpec::new(sender, nonce, fee).build()
}

/// A seeded stream of realistic admissions: many senders, each sending its nonces in order,
/// with random fees and sizes.
#[derive(Clone, Debug)]
pub struct Workload {
    rng: SplitMix64,
    next_nonce: Vec<u64>,
    salt: u64,
}

impl Workload {
    /// A workload over `senders` senders (at least 1) with the given seed.
    #[must_use]
    pub fn new(seed: u64, senders: u32) -> Self {
        Self { rng: SplitMix64::new(seed), next_nonce: vec![0; senders.max(1) as usize], salt: 0 }
    }

    /// The next transaction: a random sender's next nonce, tip 1..=1000, max fee tip plus
    /// 0..=1000, size 100..=600 bytes, gas 21 000..=121 000.
    pub fn next_tx(&mut self) -> Tx {
        let len = u64::try_from(self.next_nonce.len()).unwrap_or(u64::MAX);
        let sender = self.rng.below(len);
        let index = usize::try_from(sender).unwrap_or(usize::MAX);
        let nonce = self.next_nonce.get(index).copied().unwrap_or(0);
        if let Some(n) = self.next_nonce.get_mut(index) {
            *n += 1;
        }
        let tip = u128::from(self.rng.below(1000) + 1);
        self.salt += 1;
        TxSpec {
            sender,
            nonce,
            max_fee: tip + u128::from(self.rng.below(1001)),
            tip,
            gas_limit: 21_000 + self.rng.below(100_001),
            size: 100 + u32::try_from(self.rng.below(501)).unwrap_or(0),
            salt: self.salt,
        }
        .build()
    }

    /// The next `n` transactions.
    pub fn batch(&mut self, n: usize) -> Vec<Tx> {
        (0..n).map(|_| self.next_tx()).collect()
    }
}
