//! Synthetic transactions for the benches that write event logs directly (`scan`, `sink`):
//! deterministic in `i`, 10,000 senders, realistic sizes, no signature (never for a lane).

use mempulse_primitives::{Address, Fees, Nonce, Tx, TxHash, TxType};

/// Bytes of each synthetic transaction's `raw`.
pub(crate) const RAW_TX_BYTES: u8 = 120;

/// The hash of synthetic transaction `i`.
pub(crate) fn hash(i: u64) -> TxHash {
    let mut h = [0x5A; 32];
    h[..8].copy_from_slice(&i.to_le_bytes());
    TxHash(h)
}

/// Synthetic transaction `i`.
pub(crate) fn tx(i: u64) -> Tx {
    let mut sender = [0xC0; 20];
    sender[..8].copy_from_slice(&(i % 10_000).to_le_bytes());
    let raw: Vec<u8> = (0..RAW_TX_BYTES).map(|k| i.to_le_bytes()[0].wrapping_add(k)).collect();
    Tx {
        hash: hash(i),
        sender: Address(sender),
        nonce: Nonce(i / 10_000),
        gas_limit: 21_000,
        fees: Fees { max_fee_per_gas: 30_000_000_000, max_priority_fee_per_gas: 1_000_000_000 },
        tx_type: TxType::DynamicFee,
        chain_id: Some(1),
        encoded_size: u32::from(RAW_TX_BYTES),
        raw: raw.into(),
    }
}
