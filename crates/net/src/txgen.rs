//! Signed transfers from throwaway keys, for tx sources generating load (`mempulse txsource
//! --generate`). Keys derive from a seed, so a run can be repeated byte for byte; they are
//! public knowledge and must never hold funds.

use alloy_consensus::{
    EthereumTxEnvelope, SignableTransaction, TxEip1559, TxEip4844, crypto::secp256k1::sign_message,
};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes as AlloyBytes, TxKind, U256, keccak256};
use bytes::Bytes;

const GWEI: u128 = 1_000_000_000;
/// Fee cap of every generated transaction.
const MAX_FEE_PER_GAS: u128 = 30 * GWEI;
/// Tip of every generated transaction.
const MAX_PRIORITY_FEE_PER_GAS: u128 = 2 * GWEI;
/// A plain transfer's gas.
const TRANSFER_GAS: u64 = 21_000;
/// Where the transfers go (an address nobody holds a key for).
const RECIPIENT: Address = Address::repeat_byte(0x5e);

/// Why a generator cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// A generator needs at least one sender.
    #[error("at least one sender is needed")]
    NoSenders,
    /// The curve refused a derived key (never observed; a different seed avoids it).
    #[error("sender key {index} is not a valid secp256k1 key")]
    BadKey {
        /// The sender's index.
        index: u32,
    },
}

/// Signed EIP-1559 transfers of 1 wei from `senders` keys in turn, each sender's nonces rising
/// from zero: transaction `i` comes from sender `i mod senders` with nonce `i div senders`.
#[derive(Clone, Debug)]
pub struct TransferGenerator {
    chain_id: u64,
    keys: Vec<B256>,
    nonces: Vec<u64>,
    next: usize,
}

impl TransferGenerator {
    /// A generator on `chain_id` over `senders` keys derived from `seed`.
    ///
    /// # Errors
    /// [`GenerateError::NoSenders`] for zero senders; [`GenerateError::BadKey`] if a derived
    /// key fails to sign (checked up front, so [`Self::next_tx`] cannot fail for it later).
    pub fn new(chain_id: u64, senders: u32, seed: u64) -> Result<Self, GenerateError> {
        if senders == 0 {
            return Err(GenerateError::NoSenders);
        }
        let keys: Vec<B256> = (0..senders).map(|index| derive_key(seed, index)).collect();
        for (index, key) in (0..senders).zip(&keys) {
            sign_message(*key, B256::ZERO).map_err(|_| GenerateError::BadKey { index })?;
        }
        let nonces = vec![0; keys.len()];
        Ok(Self { chain_id, keys, nonces, next: 0 })
    }

    /// The address of sender `index` (as the node recovers it).
    #[must_use]
    pub fn sender(&self, index: u32) -> Option<Address> {
        let key = self.keys.get(usize::try_from(index).ok()?)?;
        let signature = sign_message(*key, B256::ZERO).ok()?;
        signature.recover_address_from_prehash(&B256::ZERO).ok()
    }

    /// The next signed transaction (EIP-2718 bytes).
    ///
    /// Returns `None` only if signing fails, which the keys checked in [`Self::new`] never do.
    pub fn next_tx(&mut self) -> Option<Bytes> {
        let index = self.next;
        self.next = (index + 1) % self.keys.len();
        let key = *self.keys.get(index)?;
        let nonce = self.nonces.get_mut(index)?;
        let tx = TxEip1559 {
            chain_id: self.chain_id,
            nonce: *nonce,
            gas_limit: TRANSFER_GAS,
            max_fee_per_gas: MAX_FEE_PER_GAS,
            max_priority_fee_per_gas: MAX_PRIORITY_FEE_PER_GAS,
            to: TxKind::Call(RECIPIENT),
            value: U256::from(1u64),
            access_list: alloy_eips::eip2930::AccessList::default(),
            input: AlloyBytes::new(),
        };
        let signature = sign_message(key, tx.signature_hash()).ok()?;
        *nonce = nonce.saturating_add(1);
        let envelope = EthereumTxEnvelope::<TxEip4844>::from(tx.into_signed(signature));
        Some(Bytes::from(envelope.encoded_2718()))
    }
}

/// Key `index` of `seed`: a keccak with the top bit cleared (below the curve order) and the low
/// bit set (never zero).
fn derive_key(seed: u64, index: u32) -> B256 {
    let input = [b"mempulse-txsource".as_slice(), &seed.to_le_bytes(), &index.to_le_bytes()];
    let mut key = keccak256(input.concat()).0;
    key[0] &= 0x7f;
    key[31] |= 1;
    B256::from(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CheckConfig, decode_tx};

    #[test]
    fn generated_transfers_decode_with_rising_nonces_per_sender() {
        assert_eq!(TransferGenerator::new(1, 0, 0).err(), Some(GenerateError::NoSenders));
        let mut generator = TransferGenerator::new(5, 2, 7).unwrap();
        let check = CheckConfig { chain_id: 5, ..CheckConfig::default() };
        let txs: Vec<_> =
            (0..4).map(|_| decode_tx(generator.next_tx().unwrap(), &check).unwrap()).collect();
        let senders = [generator.sender(0).unwrap(), generator.sender(1).unwrap()];
        assert_ne!(senders[0], senders[1]);
        let seen: Vec<_> = txs.iter().map(|tx| (tx.sender.0, tx.nonce.0)).collect();
        let want: Vec<_> =
            [(0, 0), (1, 0), (0, 1), (1, 1)].iter().map(|&(s, n)| (senders[s].0.0, n)).collect();
        assert_eq!(seen, want);
        // The same seed gives the same bytes.
        let again = TransferGenerator::new(5, 2, 7).unwrap().next_tx();
        assert_eq!(again, TransferGenerator::new(5, 2, 7).unwrap().next_tx());
        assert_ne!(again, TransferGenerator::new(5, 2, 8).unwrap().next_tx());
        assert_eq!(generator.sender(2), None);
    }
}
