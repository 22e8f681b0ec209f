//! The normalized transaction: what every layer above the decoder sees.

use bytes::Bytes;

use crate::{Address, Nonce, TxHash};

/// EIP-2718 envelope type of a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TxType {
    /// Legacy transaction (with or without EIP-155 replay protection).
    Legacy,
    /// EIP-2930 access-list transaction.
    AccessList,
    /// EIP-1559 dynamic-fee transaction.
    DynamicFee,
    /// EIP-4844 blob transaction (without sidecar).
    Blob,
    /// EIP-7702 set-code transaction.
    SetCode,
}

impl TxType {
    /// Every variant, in code order.
    pub const ALL: &'static [Self] =
        &[Self::Legacy, Self::AccessList, Self::DynamicFee, Self::Blob, Self::SetCode];

    /// Stable wire code: the EIP-2718 type byte (0 for legacy).
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Legacy => 0,
            Self::AccessList => 1,
            Self::DynamicFee => 2,
            Self::Blob => 3,
            Self::SetCode => 4,
        }
    }

    /// Parses a stable wire code.
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Legacy,
            1 => Self::AccessList,
            2 => Self::DynamicFee,
            3 => Self::Blob,
            4 => Self::SetCode,
            _ => return None,
        })
    }

    /// Stable lowercase name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Legacy => "legacy",
            Self::AccessList => "eip2930",
            Self::DynamicFee => "eip1559",
            Self::Blob => "eip4844",
            Self::SetCode => "eip7702",
        }
    }
}

/// Fee fields, normalized: a legacy or EIP-2930 transaction has both equal to its gas price.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fees {
    /// Maximum total fee per gas the sender pays (`gas_price` for legacy).
    pub max_fee_per_gas: u128,
    /// Maximum tip per gas to the block producer (`gas_price` for legacy).
    pub max_priority_fee_per_gas: u128,
}

impl Fees {
    /// Fees of a legacy-priced transaction.
    #[must_use]
    pub const fn legacy(gas_price: u128) -> Self {
        Self { max_fee_per_gas: gas_price, max_priority_fee_per_gas: gas_price }
    }

    /// The tip per gas the producer earns at `base_fee`: `min(max_priority, max_fee - base_fee)`,
    /// or `None` when the transaction cannot pay the base fee. Integer math only.
    #[must_use]
    pub fn effective_tip(&self, base_fee: u128) -> Option<u128> {
        let headroom = self.max_fee_per_gas.checked_sub(base_fee)?;
        Some(headroom.min(self.max_priority_fee_per_gas))
    }
}

/// A decoded, sender-recovered, statelessly checked transaction.
///
/// `raw` holds the exact EIP-2718 bytes the hash was computed over; the other fields are derived
/// from them by the decoder in `mempulse-net` and are carried so that no layer above has to decode
/// Ethereum encodings again.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tx {
    /// Transaction hash.
    pub hash: TxHash,
    /// Recovered sender.
    pub sender: Address,
    /// Sender nonce.
    pub nonce: Nonce,
    /// Gas limit.
    pub gas_limit: u64,
    /// Fee fields.
    pub fees: Fees,
    /// Envelope type.
    pub tx_type: TxType,
    /// Chain id, when the transaction is replay-protected.
    pub chain_id: Option<u64>,
    /// Length of `raw` in bytes (kept explicit so limits never recount).
    pub encoded_size: u32,
    /// The signed EIP-2718 encoding.
    pub raw: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_tip_is_capped_by_fee_headroom() {
        let f = Fees { max_fee_per_gas: 100, max_priority_fee_per_gas: 10 };
        assert_eq!(f.effective_tip(50), Some(10));
        assert_eq!(f.effective_tip(95), Some(5));
        assert_eq!(f.effective_tip(101), None);
    }

    #[test]
    fn tx_type_codes_round_trip() {
        for code in 0..=255u8 {
            if let Some(t) = TxType::from_code(code) {
                assert_eq!(t.code(), code);
            }
        }
        assert_eq!(TxType::from_code(5), None);
    }
}
