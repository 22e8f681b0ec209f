//! Decoding one signed EIP-2718 envelope into a normalized, sender-recovered [`Tx`].
//!
//! Order of work, cheapest first so junk costs little: size and type byte, RLP decode, exact
//! consumption and canonical re-encoding, hash, the stateless checks, and only then the
//! secp256k1 recovery that dominates the cost.

use alloy_consensus::{
    EthereumTxEnvelope, Signed, TxEip4844, TxLegacy,
    crypto::{SECP256K1N_HALF, secp256k1::recover_signer_unchecked},
    transaction::SignableTransaction,
};
use alloy_eips::{
    eip2718::{Decodable2718, Eip2718Error, Encodable2718},
    eip2930::AccessList,
};
use alloy_primitives::{B256, Signature, keccak256};
use bytes::Bytes;
use mempulse_primitives::{Address, Fees, Nonce, Tx, TxHash, TxType};

use crate::{
    CheckConfig,
    error::{CheckFailure, DecodeFailure, RlpFailure, TxError},
    gas::{GasInputs, required_gas},
};

/// The consensus form of every supported envelope: a blob transaction without its sidecar.
type Envelope = EthereumTxEnvelope<TxEip4844>;

/// Version byte of a KZG blob commitment hash (EIP-4844 `VERSIONED_HASH_VERSION_KZG`).
const BLOB_HASH_VERSION_KZG: u8 = 0x01;

/// Highest EIP-2718 type byte this decoder accepts (EIP-7702).
const TYPE_BYTE_MAX: u8 = 4;

/// Decodes, checks and sender-recovers one signed transaction.
///
/// `raw` must be exactly one EIP-2718 envelope: a legacy RLP list, or a type byte 1 to 4
/// followed by its RLP payload (a blob transaction without its sidecar). The returned
/// [`Tx::raw`] is `raw` itself (no copy) and [`Tx::hash`] is its keccak-256.
///
/// # Errors
/// [`TxError::Decode`] when the bytes are not one canonical signed transaction, and
/// [`TxError::Invalid`] (with the hash) when it breaks a stateless rule of `config`.
pub fn decode_tx(raw: Bytes, config: &CheckConfig) -> Result<Tx, TxError> {
    let envelope = decode_envelope(&raw, config.tx_bytes_max).map_err(TxError::Decode)?;
    let hash = TxHash(keccak256(&raw).0);
    let invalid = |check| TxError::Invalid { hash, check };
    let fields = Fields::of(&envelope);
    check(&fields, config).map_err(invalid)?;
    let sender = recover(&envelope).map_err(invalid)?;
    let encoded_size = u32::try_from(raw.len())
        .map_err(|_| TxError::Decode(oversize(raw.len(), config.tx_bytes_max)))?;
    Ok(Tx {
        hash,
        sender,
        nonce: Nonce(fields.nonce),
        gas_limit: fields.gas_limit,
        fees: fields.fees,
        tx_type: fields.tx_type,
        chain_id: fields.chain_id,
        encoded_size,
        raw,
    })
}

fn oversize(len: usize, max: u32) -> DecodeFailure {
    DecodeFailure::Oversize { len: u64::try_from(len).unwrap_or(u64::MAX), max }
}

/// Decodes exactly one canonical envelope from `raw`.
fn decode_envelope(raw: &[u8], tx_bytes_max: u32) -> Result<Envelope, DecodeFailure> {
    let Some(&first) = raw.first() else {
        return Err(DecodeFailure::Empty);
    };
    if u64::try_from(raw.len()).unwrap_or(u64::MAX) > u64::from(tx_bytes_max) {
        return Err(oversize(raw.len(), tx_bytes_max));
    }
    // 0x00..=0x7f is an EIP-2718 type byte; 0 is reserved (legacy is untagged).
    if first <= 0x7f && !(1..=TYPE_BYTE_MAX).contains(&first) {
        return Err(DecodeFailure::UnsupportedType { type_byte: first });
    }
    let mut buf = raw;
    // A legacy transaction is decoded directly: the envelope's own fallback path would hide the
    // RLP error behind "unexpected type 0".
    let decoded = if first > 0x7f {
        Signed::<TxLegacy>::fallback_decode(&mut buf).map(Envelope::Legacy)
    } else {
        Envelope::decode_2718(&mut buf)
    };
    let envelope = decoded.map_err(|err| match err {
        Eip2718Error::RlpError(rlp) => DecodeFailure::Rlp(RlpFailure::from(rlp)),
        Eip2718Error::UnexpectedType(type_byte) => DecodeFailure::UnsupportedType { type_byte },
        // `Eip2718Error` is non-exhaustive: a future variant is a value the decoder refused.
        _ => DecodeFailure::Rlp(RlpFailure::InvalidValue),
    })?;
    if !buf.is_empty() {
        return Err(DecodeFailure::TrailingBytes {
            extra: u64::try_from(buf.len()).unwrap_or(u64::MAX),
        });
    }
    // One transaction, one byte string: otherwise two encodings would carry two hashes.
    if envelope.encode_2718_len() != raw.len() || envelope.encoded_2718() != raw {
        return Err(DecodeFailure::NonCanonical);
    }
    Ok(envelope)
}

/// The fields the checks and the normalized [`Tx`] need, read from any envelope type.
#[derive(Debug)]
struct Fields<'a> {
    tx_type: TxType,
    chain_id: Option<u64>,
    nonce: u64,
    gas_limit: u64,
    fees: Fees,
    input: &'a [u8],
    is_create: bool,
    access_list: Option<&'a AccessList>,
    /// `Some` for EIP-7702: the number of authorizations.
    authorizations: Option<usize>,
    /// `Some` for EIP-4844: the versioned hashes.
    blob_hashes: Option<&'a [B256]>,
}

impl<'a> Fields<'a> {
    fn of(envelope: &'a Envelope) -> Self {
        match envelope {
            Envelope::Legacy(signed) => {
                let tx = signed.tx();
                Self {
                    tx_type: TxType::Legacy,
                    chain_id: tx.chain_id,
                    nonce: tx.nonce,
                    gas_limit: tx.gas_limit,
                    fees: Fees::legacy(tx.gas_price),
                    input: &tx.input,
                    is_create: tx.to.is_create(),
                    access_list: None,
                    authorizations: None,
                    blob_hashes: None,
                }
            }
            Envelope::Eip2930(signed) => {
                let tx = signed.tx();
                Self {
                    tx_type: TxType::AccessList,
                    chain_id: Some(tx.chain_id),
                    nonce: tx.nonce,
                    gas_limit: tx.gas_limit,
                    fees: Fees::legacy(tx.gas_price),
                    input: &tx.input,
                    is_create: tx.to.is_create(),
                    access_list: Some(&tx.access_list),
                    authorizations: None,
                    blob_hashes: None,
                }
            }
            Envelope::Eip1559(signed) => {
                let tx = signed.tx();
                Self {
                    tx_type: TxType::DynamicFee,
                    chain_id: Some(tx.chain_id),
                    nonce: tx.nonce,
                    gas_limit: tx.gas_limit,
                    fees: dynamic_fees(tx.max_fee_per_gas, tx.max_priority_fee_per_gas),
                    input: &tx.input,
                    is_create: tx.to.is_create(),
                    access_list: Some(&tx.access_list),
                    authorizations: None,
                    blob_hashes: None,
                }
            }
            Envelope::Eip4844(signed) => {
                let tx = signed.tx();
                Self {
                    tx_type: TxType::Blob,
                    chain_id: Some(tx.chain_id),
                    nonce: tx.nonce,
                    gas_limit: tx.gas_limit,
                    fees: dynamic_fees(tx.max_fee_per_gas, tx.max_priority_fee_per_gas),
                    input: &tx.input,
                    is_create: false,
                    access_list: Some(&tx.access_list),
                    authorizations: None,
                    blob_hashes: Some(&tx.blob_versioned_hashes),
                }
            }
            Envelope::Eip7702(signed) => {
                let tx = signed.tx();
                Self {
                    tx_type: TxType::SetCode,
                    chain_id: Some(tx.chain_id),
                    nonce: tx.nonce,
                    gas_limit: tx.gas_limit,
                    fees: dynamic_fees(tx.max_fee_per_gas, tx.max_priority_fee_per_gas),
                    input: &tx.input,
                    is_create: false,
                    access_list: Some(&tx.access_list),
                    authorizations: Some(tx.authorization_list.len()),
                    blob_hashes: None,
                }
            }
        }
    }
}

const fn dynamic_fees(max_fee_per_gas: u128, max_priority_fee_per_gas: u128) -> Fees {
    Fees { max_fee_per_gas, max_priority_fee_per_gas }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// The stateless rules, cheapest first; see `docs/design/tx-decoding.md`.
fn check(fields: &Fields<'_>, config: &CheckConfig) -> Result<(), CheckFailure> {
    match fields.chain_id {
        Some(id) if id == config.chain_id => {}
        None if config.allow_unprotected => {}
        got => return Err(CheckFailure::WrongChainId { expected: config.chain_id, got }),
    }
    let Fees { max_fee_per_gas, max_priority_fee_per_gas } = fields.fees;
    if max_priority_fee_per_gas > max_fee_per_gas {
        return Err(CheckFailure::FeeFieldsInconsistent {
            max_fee_per_gas,
            max_priority_fee_per_gas,
        });
    }
    if fields.gas_limit > config.gas_limit_max {
        return Err(CheckFailure::GasLimitTooHigh {
            gas_limit: fields.gas_limit,
            max: config.gas_limit_max,
        });
    }
    if fields.is_create && count(fields.input.len()) > u64::from(config.initcode_bytes_max) {
        return Err(CheckFailure::InitcodeTooLarge {
            len: count(fields.input.len()),
            max: config.initcode_bytes_max,
        });
    }
    if let Some(hashes) = fields.blob_hashes {
        check_blob_hashes(hashes, config.blobs_per_tx_max)?;
    }
    if fields.authorizations == Some(0) {
        return Err(CheckFailure::EmptyAuthorizationList);
    }
    let (access_list_addresses, access_list_storage_keys) =
        fields.access_list.map_or((0, 0), |list| {
            let keys = list.0.iter().map(|item| item.storage_keys.len()).sum::<usize>();
            (count(list.0.len()), count(keys))
        });
    let inputs = GasInputs {
        input: fields.input,
        is_create: fields.is_create,
        access_list_addresses,
        access_list_storage_keys,
        authorizations: count(fields.authorizations.unwrap_or(0)),
    };
    let intrinsic = required_gas(&inputs, config.calldata_floor);
    if fields.gas_limit < intrinsic {
        return Err(CheckFailure::IntrinsicGasTooLow { gas_limit: fields.gas_limit, intrinsic });
    }
    Ok(())
}

fn check_blob_hashes(hashes: &[B256], blobs_per_tx_max: u32) -> Result<(), CheckFailure> {
    if hashes.is_empty() || count(hashes.len()) > u64::from(blobs_per_tx_max) {
        return Err(CheckFailure::BlobCount { count: count(hashes.len()), max: blobs_per_tx_max });
    }
    for (index, hash) in hashes.iter().enumerate() {
        if hash.0[0] != BLOB_HASH_VERSION_KZG {
            return Err(CheckFailure::BlobHashVersion {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                version: hash.0[0],
            });
        }
    }
    Ok(())
}

/// Recovers the sender, refusing high-s signatures (EIP-2) first.
fn recover(envelope: &Envelope) -> Result<Address, CheckFailure> {
    match envelope {
        Envelope::Legacy(signed) => recover_signed(signed),
        Envelope::Eip2930(signed) => recover_signed(signed),
        Envelope::Eip1559(signed) => recover_signed(signed),
        Envelope::Eip4844(signed) => recover_signed(signed),
        Envelope::Eip7702(signed) => recover_signed(signed),
    }
}

fn recover_signed<T: SignableTransaction<Signature>>(
    signed: &Signed<T>,
) -> Result<Address, CheckFailure> {
    let signature = signed.signature();
    if signature.s() > SECP256K1N_HALF {
        return Err(CheckFailure::HighS);
    }
    let sender = recover_signer_unchecked(signature, signed.signature_hash())
        .map_err(|_| CheckFailure::InvalidSignature)?;
    Ok(Address(sender.into_array()))
}
