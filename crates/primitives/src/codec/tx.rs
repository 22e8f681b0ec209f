//! Layout of [`Tx`] and [`Fees`].
//!
//! ```text
//! Fees (32 bytes)
//!   max_fee_per_gas           u128 LE
//!   max_priority_fee_per_gas  u128 LE
//!
//! Tx (106 bytes, + 8 with a chain id, + raw.len())
//!   hash        [u8; 32]
//!   sender      [u8; 20]
//!   nonce       u64 LE
//!   gas_limit   u64 LE
//!   fees        Fees
//!   tx_type     u8        EIP-2718 type byte (TxType::code)
//!   chain_id    u8 0 | u8 1, u64 LE
//!   raw         u32 LE len | len bytes
//! ```
//! `encoded_size` is not written: it is by definition `raw.len()`, and decoding sets it from the
//! length prefix. One source of truth on the wire means a durable record can never carry two
//! lengths that disagree.

use bytes::Bytes;

use super::{Decode, Encode, Reader, put_len};
use crate::{Address, DecodeError, Fees, Nonce, Tx, TxHash, TxType};

impl Encode for Fees {
    fn encode(&self, out: &mut Vec<u8>) {
        self.max_fee_per_gas.encode(out);
        self.max_priority_fee_per_gas.encode(out);
    }
    fn encoded_len(&self) -> usize {
        32
    }
}

impl Decode for Fees {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { max_fee_per_gas: r.u128()?, max_priority_fee_per_gas: r.u128()? })
    }
}

/// Bytes of a [`Tx`] encoding without the `chain_id` value and the raw bytes: the fixed fields,
/// the option marker and the length prefix.
const TX_FIXED_LEN: usize = 32 + 20 + 8 + 8 + 32 + 1 + 1 + 4;

impl Encode for Tx {
    fn encode(&self, out: &mut Vec<u8>) {
        encode_fields(self, out);
        put_len(out, self.raw.len());
        out.extend_from_slice(&self.raw);
    }
    fn encoded_len(&self) -> usize {
        TX_FIXED_LEN + if self.chain_id.is_some() { 8 } else { 0 } + self.raw.len()
    }
}

impl Decode for Tx {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        decode_tx(r, true)
    }
}

/// Every field before the raw bytes.
fn encode_fields(tx: &Tx, out: &mut Vec<u8>) {
    tx.hash.encode(out);
    tx.sender.encode(out);
    tx.nonce.encode(out);
    tx.gas_limit.encode(out);
    tx.fees.encode(out);
    tx.tx_type.encode(out);
    tx.chain_id.encode(out);
}

/// Reads what [`encode_fields`] wrote into a [`Tx`] with an empty `raw` and an `encoded_size`
/// of 0, for the caller to fill.
fn decode_fields(r: &mut Reader<'_>) -> Result<Tx, DecodeError> {
    Ok(Tx {
        hash: TxHash::decode(r)?,
        sender: Address::decode(r)?,
        nonce: Nonce::decode(r)?,
        gas_limit: r.u64()?,
        fees: Fees::decode(r)?,
        tx_type: TxType::decode(r)?,
        chain_id: Option::<u64>::decode(r)?,
        encoded_size: 0,
        raw: Bytes::new(),
    })
}

/// Writes a [`Tx`]'s fields as [`Encode`] does, with a `u32` `encoded_size` in place of the raw
/// bytes: for stores of transactions whose bytes live elsewhere (the replayed pool view keeps
/// them in the event log). [`decode_tx_without_raw`] reads it back.
pub fn encode_tx_without_raw(tx: &Tx, out: &mut Vec<u8>) {
    encode_fields(tx, out);
    tx.encoded_size.encode(out);
}

/// Reads what [`encode_tx_without_raw`] wrote: a [`Tx`] with an empty `raw` and its
/// `encoded_size`.
///
/// # Errors
/// Any [`DecodeError`] of its fields.
pub fn decode_tx_without_raw(r: &mut Reader<'_>) -> Result<Tx, DecodeError> {
    let mut tx = decode_fields(r)?;
    tx.encoded_size = r.u32()?;
    Ok(tx)
}

/// Reads a [`Tx`]; with `keep_raw` false the raw bytes are checked and skipped (`raw` is left
/// empty, `encoded_size` still gives their length), which spares an allocation and a copy.
pub(super) fn decode_tx(r: &mut Reader<'_>, keep_raw: bool) -> Result<Tx, DecodeError> {
    let mut tx = decode_fields(r)?;
    let raw = r.byte_string()?;
    // `byte_string` read a u32 prefix, so the length always fits; the error arm is only
    // there because the types cannot say so.
    tx.encoded_size = u32::try_from(raw.len())
        .map_err(|_| DecodeError::InvalidValue { offset: r.position(), what: "tx.raw" })?;
    if keep_raw {
        tx.raw = Bytes::copy_from_slice(raw);
    }
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::codec::{Encode, decode_exact, encode_to_vec};
    use crate::{Address, Fees, Nonce, Tx, TxHash, TxType};

    fn sample(chain_id: Option<u64>) -> Tx {
        Tx {
            hash: TxHash([1; 32]),
            sender: Address([2; 20]),
            nonce: Nonce(3),
            gas_limit: 21_000,
            fees: Fees { max_fee_per_gas: 5, max_priority_fee_per_gas: 4 },
            tx_type: TxType::DynamicFee,
            chain_id,
            encoded_size: 3,
            raw: Bytes::from_static(&[0x02, 0xc0, 0x80]),
        }
    }

    #[test]
    fn a_tx_without_raw_keeps_every_other_field_and_its_size() {
        for tx in [sample(Some(1)), sample(None)] {
            let mut out = Vec::new();
            super::encode_tx_without_raw(&tx, &mut out);
            let mut r = crate::Reader::new(&out);
            let back = super::decode_tx_without_raw(&mut r).unwrap();
            r.finish().unwrap();
            assert_eq!(back, Tx { raw: Bytes::new(), ..tx.clone() });
            assert_eq!(back.encoded_size, 3);
            for cut in 0..out.len() {
                assert!(
                    super::decode_tx_without_raw(&mut crate::Reader::new(&out[..cut])).is_err()
                );
            }
        }
    }

    #[test]
    fn tx_round_trips_and_encoded_len_is_exact() {
        for tx in [sample(Some(1)), sample(None)] {
            let bytes = encode_to_vec(&tx);
            assert_eq!(bytes.len(), tx.encoded_len());
            assert_eq!(decode_exact::<Tx>(&bytes).unwrap(), tx);
        }
    }

    #[test]
    fn encoded_size_comes_from_the_raw_length_prefix() {
        let mut tx = sample(None);
        tx.encoded_size = 999;
        let back = decode_exact::<Tx>(&encode_to_vec(&tx)).unwrap();
        assert_eq!(back.encoded_size, 3);
    }
}
